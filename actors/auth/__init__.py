"""The auth actor: accounts, passwords, tokens, sessions, social login and roles.

Its parts:

- `messages` — the whole public interface: commands, replies, events, errors, the email
  rule, and how to read an access token; a package split by feature (`fields`, `errors`,
  `tokens`, `sessions`, `accounts`, `social`, `provider`, `mfa`, `passkeys`, `deletion`),
  imported only as `actors.auth.messages`, which re-exports them all;
- `rules` — input rules with no IO (names, phone numbers, roles, redirect URIs);
- `tokens` — token rules with no IO (access JWTs, refresh and single-use tokens);
- `passwords` — argon2id hashing off the event loop, and the password policy;
- `limits` — when failed logins lock an email or an address out (no IO);
- `passkey_rules` — passkey rules with no IO (names, the signature counter, the relying
  party, reading a WebAuthn response); `passkeys` the part that registers passkeys and
  signs people in with them (the `webauthn` library);
- `mfa_rules` — TOTP and recovery-code rules with no IO (the time-step window, reuse, the
  codes' form, lockouts); `mfa` the part that sets TOTP up and completes two-step sign-ins;
- `provider_rules` — the OpenID Connect provider's rules with no IO (registered redirect
  URIs and exact matching, scopes, prompts, PKCE S256, answer URLs, claims by scope);
  `provider` the part that registers apps, answers authorization requests and keeps
  consents, with `provider_tokens` for the token endpoint and userinfo ("Sign in with
  splitgo");
- `store` — its SQL, one module per feature (users, sessions, one-time tokens, logins);
- `actor` — the `Auth` actor, composed of its feature parts: `accounts`, `sessions`,
  `verification`, `reset`, `social` (OAuth users), `telegram`, `deletion` (the data export's
  account part, and deleting an account);
- `context` — the one `AuthContext` those parts are given: the runtime's `Context` (database,
  clock, the shard's transactions and messages) with the signing keys, the password hasher,
  the login limits and the notifier; and how a user is shown;
- `oauth` — speaking OAuth 2.0 / OpenID Connect to the sign-in providers (`provider_config`
  says who they are): `discovery` reads an OpenID Connect issuer's endpoints from its
  discovery document, `id_tokens` verifies their ID tokens against a cache of their signing
  keys, `github` and `facebook` read who signed in from those APIs, `provider_http` makes
  each call to them.
"""
