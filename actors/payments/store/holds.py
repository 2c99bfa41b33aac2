"""Holds: money reserved on a wallet until it is captured, voided or expires."""

from __future__ import annotations

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


async def insert_hold(db: Executor, hold: HoldRow) -> None:
    await db.execute(
        f"INSERT INTO payment_holds ({_HOLD}, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        hold.id,
        hold.user_id,
        hold.currency,
        hold.amount,
        hold.captured,
        hold.status,
        hold.reference,
        hold.expires_at,
        hold.created_at,
    )


async def hold_by_id(db: Executor, hold_id: str) -> HoldRow | None:
    return _hold(await db.fetchrow(f"SELECT {_HOLD} FROM payment_holds WHERE id = $1", hold_id))


async def close_hold(
    db: Executor, hold_id: str, *, status: str, captured: int, now: datetime
) -> HoldRow | None:
    """Move a hold out of `held` (one conditional UPDATE: a second closer gets None)."""
    return _hold(
        await db.fetchrow(
            f"""
            UPDATE payment_holds SET status = $2, captured = $3, updated_at = $4
            WHERE id = $1 AND status = 'held'
            RETURNING {_HOLD}
            """,
            hold_id,
            status,
            captured,
            now,
        )
    )


async def overdue_holds(db: Executor, now: datetime, limit: int = 500) -> list[str]:
    """Open holds past their expiry (their timers were lost with a restart)."""
    rows = await db.fetch(
        "SELECT id FROM payment_holds WHERE status = 'held' AND expires_at <= $1"
        " ORDER BY expires_at LIMIT $2",
        now,
        limit,
    )
    return [row["id"] for row in rows]
