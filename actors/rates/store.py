"""The rates actor's SQL and nothing else: the exchange rates it has fetched, per day.

One row per (source, day, currency): units of `currency` per 1 EUR as the source published
them that day, and when they were first fetched (splitgo/schema/0009_exchange_rates.sql).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from actors.runtime import Executor

ECB = "ecb"  # the source the ECB feed's rows are kept under
_CHUNK_ROWS = 5_000  # rows a statement writes: the whole history's window is a few thousand


@dataclass(frozen=True, slots=True)
class HeldDay:
    """One day held: its rates per EUR by currency."""

    day: date
    rates: dict[str, Decimal]


async def save(
    db: Executor,
    days: Mapping[date, Mapping[str, Decimal]],
    *,
    fetched_at: datetime,
    source: str = ECB,
) -> int:
    """Keep every rate of `days`; a rate already held unchanged keeps its first
    `fetched_at`, a corrected one is replaced. How many rows were written. Give it a
    transaction when several statements must land together (more than 5,000 rows)."""
    rows = [
        (day, currency, rate)
        for day in sorted(days)
        for currency, rate in sorted(days[day].items())
    ]
    written = 0
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        status = await db.execute(
            """
            INSERT INTO exchange_rates (source, day, currency, rate, fetched_at)
            SELECT $1, given.day, given.currency, given.rate, $5
            FROM unnest($2::date[], $3::text[], $4::numeric[]) AS given (day, currency, rate)
            ON CONFLICT (source, day, currency) DO UPDATE
                SET rate = EXCLUDED.rate, fetched_at = EXCLUDED.fetched_at
                WHERE exchange_rates.rate <> EXCLUDED.rate
            """,
            source,
            [row[0] for row in chunk],
            [row[1] for row in chunk],
            [row[2] for row in chunk],
            fetched_at,
        )
        written += int(status.rsplit(" ", 1)[-1])
    return written


async def nearest(
    db: Executor, *, on_or_before: date, not_before: date, source: str = ECB
) -> HeldDay | None:
    """The latest day held from `not_before` to `on_or_before` (inclusive), with its rates."""
    rows = await db.fetch(
        """
        SELECT day, currency, rate FROM exchange_rates
        WHERE source = $1 AND day = (
            SELECT max(day) FROM exchange_rates
            WHERE source = $1 AND day BETWEEN $2 AND $3
        )
        """,
        source,
        not_before,
        on_or_before,
    )
    if not rows:
        return None
    return HeldDay(rows[0]["day"], {row["currency"]: row["rate"] for row in rows})
