"""The auth actor: accounts, passwords, tokens, sessions, social login and roles."""
