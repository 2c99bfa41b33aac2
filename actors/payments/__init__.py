"""The payments actor: a double-entry ledger with wallets, holds, transfers and top-ups."""
