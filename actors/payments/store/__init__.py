"""Every SQL statement of the payments actor, over its own tables (the schema's payments
section).

One module per feature — `accounts` (accounts and wallets), `transfers` (transfers and the
statement), `booking` (a transaction's postings, written in one statement), `idempotency`
(first replies by key), `holds`, `top_ups` (top-ups and provider events) — all re-exported
here, so callers write `store.lock_accounts(...)`.

Each function takes what runs the statement (an `actors.runtime.Executor`): the pool
(autocommit) or an open `Transaction`. Times are passed in, never taken from the database's
clock, so the actor's clock is the only one. Deadlock freedom rests on two rules kept here:

- accounts are created (`ensure_accounts`) in autocommit statements, in key order, before
  the transaction that moves money, so no transaction waits on another's uncommitted
  INSERT of an account row;
- a transaction locks every account it touches in one statement, ordered by id
  (`lock_accounts`), before it writes, and locks nothing else of the ledger.

Transfers and entries are append-only (a trigger refuses UPDATE and DELETE); balances on
`payment_accounts` are kept with them in the same transaction, and its CHECK refuses a
wallet whose debits exceed its credits, whatever the code above does.
"""

from __future__ import annotations

from actors.payments.store.accounts import (
    AccountRow,
    Marks,
    WalletRow,
    ensure_accounts,
    existing_accounts,
    lock_accounts,
    marked_wallet,
    sums_by_currency,
    user_currencies,
    wallet,
    wallet_marks,
)
from actors.payments.store.booking import Booking
from actors.payments.store.holds import (
    HoldRow,
    close_holds,
    hold_by_id,
    holds_by_ids,
    insert_holds,
    overdue_holds,
)
from actors.payments.store.top_ups import (
    first_sighting,
    insert_top_up,
    lock_top_up,
    set_top_up_checkout,
    set_top_up_status,
    top_up_by_checkout,
    top_up_by_id,
    top_up_view,
)
from actors.payments.store.transfers import (
    StatementRow,
    TransferRow,
    statement,
    transfer_by_external_id,
    transfer_by_id,
)
from actors.runtime.idempotency import KeyTable

# the first replies to money-moving requests, by (scope, key): the runtime's one helper
KEYS = KeyTable("payments_idempotency")

__all__ = [
    "KEYS",
    "AccountRow",
    "Booking",
    "HoldRow",
    "Marks",
    "StatementRow",
    "TransferRow",
    "WalletRow",
    "close_holds",
    "ensure_accounts",
    "existing_accounts",
    "first_sighting",
    "hold_by_id",
    "holds_by_ids",
    "insert_holds",
    "insert_top_up",
    "lock_accounts",
    "lock_top_up",
    "marked_wallet",
    "overdue_holds",
    "set_top_up_checkout",
    "set_top_up_status",
    "statement",
    "sums_by_currency",
    "top_up_by_checkout",
    "top_up_by_id",
    "top_up_view",
    "transfer_by_external_id",
    "transfer_by_id",
    "user_currencies",
    "wallet",
    "wallet_marks",
]
