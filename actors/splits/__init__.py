"""The splits actor: groups, expenses, balances and settle-up."""
