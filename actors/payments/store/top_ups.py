"""Top-ups and the provider events already applied."""

from __future__ import annotations

from typing import Any

from actors.payments.messages import TopUpView
from actors.runtime import Executor

_COLUMNS = (
    "id, user_id, idempotency_key, amount, currency, provider, checkout_id, checkout_url, status"
)


def top_up_view(row: Any) -> TopUpView:
    """A stored top-up as the API shows it."""
    return TopUpView(
        id=row["id"],
        status=row["status"],
        amount=row["amount"],
        currency=row["currency"],
        checkout_url=row["checkout_url"],
    )


async def insert_top_up(
    db: Executor,
    *,
    top_up_id: str,
    user_id: str,
    key: str,
    amount: int,
    currency: str,
    provider: str,
) -> Any:
    """The top-up for (user, key): this new one, or the one an earlier request made."""
    row = await db.fetchrow(
        f"""
        INSERT INTO payment_top_ups (id, user_id, idempotency_key, amount, currency, provider)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (user_id, idempotency_key) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        top_up_id, user_id, key, amount, currency, provider,
    )  # fmt: skip
    if row is not None:
        return row
    return await db.fetchrow(
        f"SELECT {_COLUMNS} FROM payment_top_ups WHERE user_id = $1 AND idempotency_key = $2",
        user_id,
        key,
    )


async def set_top_up_checkout(db: Executor, top_up_id: str, checkout_id: str, url: str) -> Any:
    return await db.fetchrow(
        f"""
        UPDATE payment_top_ups SET checkout_id = $2, checkout_url = $3, updated_at = now()
        WHERE id = $1 RETURNING {_COLUMNS}
        """,
        top_up_id,
        checkout_id,
        url,
    )


async def top_up_by_id(db: Executor, top_up_id: str) -> Any:
    return await db.fetchrow(f"SELECT {_COLUMNS} FROM payment_top_ups WHERE id = $1", top_up_id)


async def top_up_by_checkout(db: Executor, checkout_id: str) -> Any:
    return await db.fetchrow(
        f"SELECT {_COLUMNS} FROM payment_top_ups WHERE checkout_id = $1", checkout_id
    )


async def first_sighting(db: Executor, provider: str, event_id: str) -> bool:
    """Record the event as applied; False when it was applied before (a replay)."""
    inserted = await db.fetchval(
        "INSERT INTO payment_webhook_events (provider, event_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        provider,
        event_id,
    )
    return inserted is not None


async def lock_top_up(db: Executor, top_up_id: str) -> Any:
    return await db.fetchrow(
        f"SELECT {_COLUMNS} FROM payment_top_ups WHERE id = $1 FOR UPDATE", top_up_id
    )


async def set_top_up_status(db: Executor, top_up_id: str, status: str) -> None:
    await db.execute(
        "UPDATE payment_top_ups SET status = $2, updated_at = now() WHERE id = $1",
        top_up_id,
        status,
    )
