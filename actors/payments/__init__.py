"""The payments actor: a double-entry ledger with wallets, holds, transfers and top-ups.

Its parts:

- `messages` — the whole public interface: commands, replies, events, errors, the
  currency table and `format_money`;
- `ledger` — the ledger's rules with no IO (accounts, input checks, funds, capture legs);
- `store` — its SQL, one module per feature (accounts, transfers, booking,
  holds, top-ups);
- `providers` — the payment provider port and its adapters (`sandbox`, `stripe`);
- `actor` — the `Payments` actor (mailbox, handlers, transfer batching), composed of its
  feature parts, each given the runtime's `Context` (pool, clock, transactions, timers):
  `transfers` (batched transfers, the hot path), `holds` (place, capture, void, expire),
  `wallets` (balances and the statement), `topups` (checkouts, webhooks, crediting);
- `shared` — what the money-moving parts share: idempotent replies, transactions retried on
  a deadlock, the refusal of a payer without a wallet;
- `views` — stored rows as replies.
"""
