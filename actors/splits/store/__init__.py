"""Every SQL statement of the splits actor, over its own tables (the schema's splits
section), one module per feature: `groups` (groups, members), `invites`, `placeholders`
(members with no account), `expenses` (with their lines, history and recurrence),
`balances` (kept nets and settle plans), `settlements`, `activity` (the log and comments),
`reminders`, `insight` (search and sums), `recurring` (series' ends, the simplify
switch); `KEYS`, its idempotency keys.

Each function takes what runs the statement (`actors.runtime.Executor`): the pool
(autocommit) or an open `Transaction`. Times are passed in; the actor's clock is the only
one. A group's rows are written by the one shard that owns the group, so nothing here locks.
"""

from __future__ import annotations

from actors.runtime import KeyTable
from actors.splits.store import (
    activity,
    balances,
    expenses,
    groups,
    insight,
    invites,
    links,
    placeholders,
    recurring,
    reminders,
    settlements,
)

# what the splits commands' idempotency keys answered (the runtime's one helper)
KEYS = KeyTable("splits_idempotency")

__all__ = [
    "KEYS",
    "activity",
    "balances",
    "expenses",
    "groups",
    "insight",
    "invites",
    "links",
    "placeholders",
    "recurring",
    "reminders",
    "settlements",
]
