"""Holds: money reserved on a wallet until it is captured, voided or expires."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.runtime import Executor


@dataclass(frozen=True, slots=True)
class HoldRow:
    """A hold as stored."""

    id: str
    user_id: str
    currency: str
    amount: int
    captured: int
    status: str
    reference: str | None
    expires_at: datetime
    created_at: datetime


_HOLD = "id, user_id, currency, amount, captured, status, reference, expires_at, created_at"


def _hold(row: Any) -> HoldRow | None:
    return None if row is None else HoldRow(**{name: row[name] for name in HoldRow.__slots__})


def _by_id(rows: Any) -> dict[str, HoldRow]:
    return {row["id"]: HoldRow(**{name: row[name] for name in HoldRow.__slots__}) for row in rows}


# Every change of a hold also rewrites its owner's wallet row (to the same values): the
# row's xmin is the version a kept wallet is checked against (store/accounts.py, `Marks`),
# and `held` may change with no money moving on the wallet (a hold captured in full). The
# callers have locked that row already (accounts are locked first, in id order).
_TOUCH_WALLET = """
    UPDATE payment_accounts a SET debits = a.debits FROM changed c
    WHERE a.owner_kind = 'user' AND a.owner = c.user_id AND a.currency = c.currency
"""


async def insert_holds(db: Executor, holds: Sequence[HoldRow]) -> None:
    """Insert a batch's holds in one statement (each owner's wallet row touched once)."""
    if not holds:
        return
    columns = [
        [getattr(hold, name) for hold in holds]
        for name in ("id", "user_id", "currency", "amount", "captured", "status", "reference")
    ]
    await db.execute(
        f"WITH changed AS (INSERT INTO payment_holds ({_HOLD}, updated_at)"
        " SELECT id, user_id, currency, amount, captured, status, reference, expires_at,"
        " created_at, created_at FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],"
        " $5::bigint[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])"
        " AS v(id, user_id, currency, amount, captured, status, reference, expires_at,"
        " created_at) RETURNING user_id, currency)" + _TOUCH_WALLET,
        *columns,
        [hold.expires_at for hold in holds],
        [hold.created_at for hold in holds],
    )


async def hold_by_id(db: Executor, hold_id: str) -> HoldRow | None:
    return _hold(await db.fetchrow(f"SELECT {_HOLD} FROM payment_holds WHERE id = $1", hold_id))


async def holds_by_ids(db: Executor, hold_ids: Sequence[str]) -> dict[str, HoldRow]:
    rows = await db.fetch(f"SELECT {_HOLD} FROM payment_holds WHERE id = ANY($1::text[])", hold_ids)
    return _by_id(rows)


async def close_holds(
    db: Executor, hold_ids: Sequence[str], *, status: str, now: datetime
) -> dict[str, HoldRow]:
    """Move these holds out of `held` with nothing captured, in one statement (conditional
    (WHERE status = 'held'): a hold closed already is left out of the answer)."""
    rows = await db.fetch(
        f"""
        WITH changed AS (
            UPDATE payment_holds SET status = $2, captured = 0, updated_at = $3
            WHERE id = ANY($1::text[]) AND status = 'held'
            RETURNING {_HOLD}
        ), touched AS ({_TOUCH_WALLET})
        SELECT {_HOLD} FROM changed
        """,
        hold_ids,
        status,
        now,
    )
    return _by_id(rows)


async def overdue_holds(db: Executor, now: datetime, limit: int = 500) -> list[str]:
    """Open holds past their expiry (their timers were lost with a restart)."""
    rows = await db.fetch(
        "SELECT id FROM payment_holds WHERE status = 'held' AND expires_at <= $1"
        " ORDER BY expires_at LIMIT $2",
        now,
        limit,
    )
    return [row["id"] for row in rows]


async def capture_holds(
    db: Executor, captured: Sequence[tuple[str, int]], now: datetime
) -> dict[str, HoldRow]:
    """Mark these holds (id, amount captured) captured in one statement, each owner's wallet
    row touched; conditional (WHERE status = 'held'): a hold closed already is left out."""
    if not captured:
        return {}
    rows = await db.fetch(
        f"""
        WITH changed AS (
            UPDATE payment_holds h SET status = 'captured', captured = v.captured,
                updated_at = $3
            FROM unnest($1::text[], $2::bigint[]) AS v(id, captured)
            WHERE h.id = v.id AND h.status = 'held'
            RETURNING h.id, h.user_id, h.currency, h.amount, h.captured, h.status,
                h.reference, h.expires_at, h.created_at
        ), touched AS ({_TOUCH_WALLET})
        SELECT {_HOLD} FROM changed
        """,
        [hold_id for hold_id, _ in captured],
        [amount for _, amount in captured],
        now,
    )
    return _by_id(rows)
