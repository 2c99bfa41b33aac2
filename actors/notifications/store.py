"""SQL of the notifications actor: deliveries and their attempts (schema.sql, notifications).

A delivery is one notification to one user over one channel, keyed by the event's
envelope id. It is `pending` until a try succeeds (`sent`) or the tries run out
(`failed`: the notifications' dead letter, which an admin reads with its attempts).

A try is claimed before it starts: the claim bumps `attempts` and pushes `next_attempt_at`
a lease ahead, in one row-locked statement, so two timers (or two nodes) never make the
same try, and a try whose outcome was never recorded (a crash mid-send) is retried when
its lease ends instead of being lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import asyncpg

Outcome = Literal["sent", "retry", "failed"]


class Executor(Protocol):
    """What the store needs to run a statement: a pool, a connection or a Transaction."""

    async def fetchrow(self, query: str, *args: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery as an admin reads it (the payload, which may hold a token, is left out)."""

    id: str
    event_id: str
    event_type: str
    user_id: str
    channel: str
    recipient: str
    shard: int
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_answer: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    attempt: int
    status: str
    provider_answer: str
    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class Claimed:
    """A try that may start now: number `attempt`, with what it needs to render."""

    id: str
    event_type: str
    user_id: str
    channel: str
    recipient: str
    payload: str
    attempt: int


@dataclass(frozen=True, slots=True)
class NotDue:
    """The delivery waits for its next try (an early timer): come back in `seconds`."""

    seconds: float


_DELIVERY_COLUMNS = """
    id, event_id, event_type, user_id, channel, recipient, shard, status, attempts,
    next_attempt_at, last_answer, created_at, updated_at, sent_at, failed_at
"""

_CLAIM = """
WITH target AS (
    SELECT id, EXTRACT(EPOCH FROM next_attempt_at - clock_timestamp())::float8 AS wait
    FROM notification_deliveries
    WHERE id = $1 AND status = 'pending' AND attempts = $2
    FOR UPDATE
), claimed AS (
    UPDATE notification_deliveries d
    SET attempts = d.attempts + 1,
        next_attempt_at = clock_timestamp() + make_interval(secs => $3),
        updated_at = clock_timestamp()
    FROM target
    WHERE d.id = target.id AND (target.wait IS NULL OR target.wait <= 0)
    RETURNING d.id, d.event_type, d.user_id, d.channel, d.recipient, d.payload::text AS payload,
              d.attempts
)
SELECT target.wait, claimed.*
FROM target LEFT JOIN claimed ON claimed.id = target.id
"""

_RECORD_ATTEMPT = """
INSERT INTO notification_attempts (delivery_id, attempt, status, provider_answer, started_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (delivery_id, attempt) DO NOTHING
"""

# Each outcome moves the delivery on only if it still stands at this try: a stale writer
# (a try whose lease ran out and was claimed again) changes nothing.
_FINISH: dict[Outcome, str] = {
    "sent": """
        UPDATE notification_deliveries
        SET status = 'sent', sent_at = clock_timestamp(), updated_at = clock_timestamp(),
            payload = NULL, next_attempt_at = NULL, last_answer = $3
        WHERE id = $1 AND attempts = $2 AND status = 'pending'
    """,
    "failed": """
        UPDATE notification_deliveries
        SET status = 'failed', failed_at = clock_timestamp(), updated_at = clock_timestamp(),
            payload = NULL, next_attempt_at = NULL, last_answer = $3
        WHERE id = $1 AND attempts = $2 AND status = 'pending'
    """,
    "retry": """
        UPDATE notification_deliveries
        SET next_attempt_at = clock_timestamp() + make_interval(secs => $4),
            updated_at = clock_timestamp(), last_answer = $3
        WHERE id = $1 AND attempts = $2 AND status = 'pending'
    """,
}


class NotificationStore:
    """Every statement on notification_deliveries and notification_attempts."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add_delivery(
        self,
        db: Executor,
        *,
        delivery_id: str,
        event_id: str,
        event_type: str,
        user_id: str,
        channel: str,
        recipient: str,
        shard: int,
        payload: str,
    ) -> bool:
        """Record a pending delivery, due now; False when (event, user, channel) exists.

        `db` is the handler's transaction, so the row commits with the inbox mark.
        """
        row = await db.fetchrow(
            """
            INSERT INTO notification_deliveries
                (id, event_id, event_type, user_id, channel, recipient, shard, payload,
                 next_attempt_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, clock_timestamp())
            ON CONFLICT ON CONSTRAINT notification_deliveries_once DO NOTHING
            RETURNING id
            """,
            delivery_id,
            event_id,
            event_type,
            user_id,
            channel,
            recipient,
            shard,
            payload,
        )
        return row is not None

    async def find_delivery(self, event_id: str, user_id: str, channel: str) -> str | None:
        """The id of the delivery of this event to this user over this channel."""
        found: str | None = await self.pool.fetchval(
            "SELECT id FROM notification_deliveries"
            " WHERE event_id = $1 AND user_id = $2 AND channel = $3",
            event_id,
            user_id,
            channel,
        )
        return found

    async def claim(
        self, delivery_id: str, attempts: int, lease_seconds: float
    ) -> Claimed | NotDue | None:
        """Start try number `attempts + 1` if the delivery is pending at `attempts` tries
        and due; NotDue when it is not due yet; None when it moved on (sent, failed, or
        this try was claimed already)."""
        row = await self.pool.fetchrow(_CLAIM, delivery_id, attempts, lease_seconds)
        if row is None:
            return None
        if row["id"] is None:
            return NotDue(max(float(row["wait"]), 0.0))
        return Claimed(
            id=row["id"],
            event_type=row["event_type"],
            user_id=row["user_id"],
            channel=row["channel"],
            recipient=row["recipient"],
            payload=row["payload"],
            attempt=row["attempts"],
        )

    async def finish_attempt(
        self,
        delivery_id: str,
        attempt: int,
        *,
        outcome: Outcome,
        answer: str,
        started_at: datetime,
        retry_in: float = 0.0,
    ) -> bool:
        """Record try `attempt` and move the delivery on; False when it had moved on
        already (a stale try: its attempt row is kept, the delivery is left alone)."""
        status = "sent" if outcome == "sent" else "failed"
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                _RECORD_ATTEMPT, delivery_id, attempt, status, answer, started_at
            )
            args: tuple[Any, ...] = (delivery_id, attempt, answer)
            if outcome == "retry":
                args = (*args, retry_in)
            result: str = await connection.execute(_FINISH[outcome], *args)
        return result.endswith(" 1")

    async def pending(self, shard: int, shards: int) -> list[tuple[str, int, float]]:
        """Pending deliveries this shard owns: (id, attempts, seconds until due).

        A shard owns the rows written by shard `n` where `n % shards` is its number, so
        rows of shards that no longer exist (fewer shards after a restart) are not lost.
        """
        rows = await self.pool.fetch(
            """
            SELECT id, attempts,
                   GREATEST(EXTRACT(EPOCH FROM next_attempt_at - clock_timestamp()), 0)::float8
                       AS wait
            FROM notification_deliveries
            WHERE status = 'pending' AND shard % $2 = $1
            ORDER BY next_attempt_at
            """,
            shard,
            max(shards, 1),
        )
        return [(row["id"], row["attempts"], row["wait"] or 0.0) for row in rows]

    # ── reading (admin views, tests) ───────────────────────────────────────────────────

    async def get(self, delivery_id: str) -> Delivery | None:
        row = await self.pool.fetchrow(
            f"SELECT {_DELIVERY_COLUMNS} FROM notification_deliveries WHERE id = $1",
            delivery_id,
        )
        return Delivery(**dict(row)) if row is not None else None

    async def list_deliveries(
        self,
        *,
        status: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """The newest deliveries first, optionally of one status and/or one user."""
        rows = await self.pool.fetch(
            f"""
            SELECT {_DELIVERY_COLUMNS} FROM notification_deliveries
            WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR user_id = $2)
            ORDER BY created_at DESC, id DESC
            LIMIT $3
            """,
            status,
            user_id,
            max(1, min(limit, 500)),
        )
        return [Delivery(**dict(row)) for row in rows]

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        rows = await self.pool.fetch(
            "SELECT delivery_id, attempt, status, provider_answer, started_at, finished_at"
            " FROM notification_attempts WHERE delivery_id = $1 ORDER BY attempt",
            delivery_id,
        )
        return [Attempt(**dict(row)) for row in rows]
