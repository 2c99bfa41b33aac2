"""Settlements: cash ones recorded at once, wallet ones pending until payments answers
(splits_settlements). A settlement in another currency than its group's keeps its rate and
its amount in the group's currency, as an expense does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from actors.runtime import Executor


@dataclass(slots=True)
class SettlementRow:
    """A settlement as stored (status: pending, completed or failed)."""

    id: str
    group_id: str
    from_user_id: str
    to_user_id: str
    amount: int
    currency: str
    method: str
    status: str
    created_at: datetime
    transfer_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    rate: Decimal | None = None  # group currency per 1 unit (another currency than the group's)
    rate_source: str | None = None
    rate_day: date | None = None
    group_amount: int | None = None


async def insert_settlement(db: Executor, row: SettlementRow, settled_at: datetime | None) -> bool:
    inserted = await db.fetchval(
        """
        INSERT INTO splits_settlements (id, group_id, from_user_id, to_user_id, amount,
            currency, method, status, created_at, settled_at, rate, rate_source, rate_day,
            group_amount)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (id) DO NOTHING RETURNING true
        """,
        row.id,
        row.group_id,
        row.from_user_id,
        row.to_user_id,
        row.amount,
        row.currency,
        row.method,
        row.status,
        row.created_at,
        settled_at,
        row.rate,
        row.rate_source,
        row.rate_day,
        row.group_amount,
    )
    return bool(inserted)


async def settlement(db: Executor, settlement_id: str) -> SettlementRow | None:
    row = await db.fetchrow(
        "SELECT id, group_id, from_user_id, to_user_id, amount, currency, method, status,"
        " created_at, transfer_id, failure_code, failure_message, rate, rate_source, rate_day,"
        " group_amount"
        " FROM splits_settlements WHERE id = $1",
        settlement_id,
    )
    return None if row is None else SettlementRow(**dict(row))


async def finish_settlement(
    db: Executor,
    settlement_id: str,
    status: str,
    now: datetime,
    *,
    transfer_id: str | None = None,
    failure: tuple[str, str] | None = None,
) -> bool:
    """Move a pending settlement to completed or failed; False if it was not pending."""
    done = await db.fetchval(
        "UPDATE splits_settlements SET status = $2, settled_at = $3, transfer_id = $4,"
        " failure_code = $5, failure_message = $6 WHERE id = $1 AND status = 'pending'"
        " RETURNING true",
        settlement_id,
        status,
        now,
        transfer_id,
        None if failure is None else failure[0],
        None if failure is None else failure[1],
    )
    return bool(done)
