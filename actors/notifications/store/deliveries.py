"""Deliveries and their attempts: claimed before a try, finished after it, found again
by their event; and the in-app notices stored as sent with their event (`add_sent_items`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from actors.runtime import Executor

Outcome = Literal["sent", "retry", "failed"]


class FeedItem(NamedTuple):
    """An in-app notice to store as sent with its event (`add_sent_items`); `data` is JSON."""

    id: str
    user_id: str
    category: str
    kind: str
    title: str
    body: str
    data: str


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
    """One try of a delivery and what the provider answered."""

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


class NewDelivery(NamedTuple):
    """A pending delivery to record with its event (`add_deliveries`); `payload` is JSON."""

    id: str
    event_id: str
    event_type: str
    user_id: str
    channel: str
    recipient: str
    payload: str


async def add_deliveries(db: Executor, *, shard: int, rows: Sequence[NewDelivery]) -> set[str]:
    """Record pending deliveries, due now, in one statement; the ids written (a delivery
    whose (event, user, channel) exists already writes nothing).

    `db` is the handler's transaction, so the rows commit with the inbox marks.
    """
    if not rows:
        return set()
    columns = list(zip(*rows, strict=True))
    written = await db.fetch(
        """
        INSERT INTO notification_deliveries
            (id, event_id, event_type, user_id, channel, recipient, shard, payload,
             next_attempt_at)
        SELECT r.id, r.event_id, r.event_type, r.user_id, r.channel, r.recipient, $8,
               r.payload::jsonb, clock_timestamp()
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                    $7::text[]) WITH ORDINALITY
            AS r(id, event_id, event_type, user_id, channel, recipient, payload, ord)
        ORDER BY r.ord
        ON CONFLICT ON CONSTRAINT notification_deliveries_once DO NOTHING
        RETURNING id
        """,
        *(list(column) for column in columns),
        shard,
    )
    return {row["id"] for row in written}


# The in-app deliveries of a run of events, written in the transaction that records them:
# each a delivery already sent (its one try and the feed item, whose id is the
# delivery's), so an in-app notice costs no claim, try or second transaction. A delivery
# that exists (a redelivered event) writes nothing; the attempts' foreign key is checked
# at the end of the statement, after the deliveries are in. Feed rows go in in the order
# given (their seq, the order each user's feed shows).
_ADD_SENT_ITEMS = """
WITH n AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[])
        WITH ORDINALITY AS n(id, user_id, category, kind, title, body, data, event_id,
                             event_type, ord)
), d AS (
    INSERT INTO notification_deliveries
        (id, event_id, event_type, user_id, channel, recipient, shard, status, attempts,
         last_answer, sent_at)
    SELECT n.id, n.event_id, n.event_type, n.user_id, 'inapp', n.user_id, $10, 'sent', 1,
           $11, clock_timestamp()
    FROM n ORDER BY n.ord
    ON CONFLICT ON CONSTRAINT notification_deliveries_once DO NOTHING
    RETURNING id
), a AS (
    INSERT INTO notification_attempts (delivery_id, attempt, status, provider_answer,
                                       started_at)
    SELECT d.id, 1, 'sent', $11, $12 FROM d
)
INSERT INTO notification_feed (id, user_id, category, kind, title, body, data, created_at)
SELECT n.id, n.user_id, n.category, n.kind, n.title, n.body, n.data::jsonb, $12
FROM n JOIN d ON d.id = n.id
ORDER BY n.ord
RETURNING id, user_id, category, kind, title, body, data, created_at, read_at
"""


async def add_sent_items(
    db: Executor,
    *,
    shard: int,
    answer: str,
    items: Sequence[tuple[str, str, FeedItem]],
    now: datetime,
) -> list[Any]:
    """Store the in-app deliveries of events as sent, with their tries and feed items, in
    one statement: `items` are (event id, event type, item) in feed order; the feed rows
    written, in that order (none for a delivery that existed)."""
    if not items:
        return []
    columns = [list(column) for column in zip(*(item for _, _, item in items), strict=True)]
    rows: list[Any] = await db.fetch(
        _ADD_SENT_ITEMS,
        *columns,
        [event_id for event_id, _, _ in items],
        [event_type for _, event_type, _ in items],
        shard,
        answer,
        now,
    )
    return rows


async def find_deliveries(
    db: Executor, event_ids: Sequence[str]
) -> dict[tuple[str, str, str], str]:
    """The deliveries of these events: (event id, user id, channel) -> delivery id."""
    if not event_ids:
        return {}
    rows = await db.fetch(
        "SELECT id, event_id, user_id, channel FROM notification_deliveries"
        " WHERE event_id = ANY($1::text[])",
        list(event_ids),
    )
    return {(row["event_id"], row["user_id"], row["channel"]): row["id"] for row in rows}


async def claim(
    db: Executor, delivery_id: str, attempts: int, lease_seconds: float
) -> Claimed | NotDue | None:
    """Start try number `attempts + 1` if the delivery is pending at `attempts` tries
    and due; NotDue when it is not due yet; None when it moved on (sent, failed, or
    this try was claimed already)."""
    row = await db.fetchrow(_CLAIM, delivery_id, attempts, lease_seconds)
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
    db: Executor,
    delivery_id: str,
    attempt: int,
    *,
    outcome: Outcome,
    answer: str,
    started_at: datetime,
    retry_in: float = 0.0,
) -> bool:
    """Record try `attempt` and move the delivery on; False when it had moved on
    already (a stale try: its attempt row is kept, the delivery is left alone).

    Run it in a transaction: the attempt row and the move go together.
    """
    status = "sent" if outcome == "sent" else "failed"
    await db.execute(_RECORD_ATTEMPT, delivery_id, attempt, status, answer, started_at)
    args: tuple[Any, ...] = (delivery_id, attempt, answer)
    if outcome == "retry":
        args = (*args, retry_in)
    result = await db.execute(_FINISH[outcome], *args)
    return result.endswith(" 1")


async def pending(db: Executor, shard: int, shards: int) -> list[tuple[str, int, float]]:
    """Pending deliveries this shard owns: (id, attempts, seconds until due).

    A shard owns the rows written by shard `n` where `n % shards` is its number, so
    rows of shards that no longer exist (fewer shards after a restart) are not lost.
    """
    rows = await db.fetch(
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


# ── reading deliveries (admin views, tests) ────────────────────────────────────────────


async def get(db: Executor, delivery_id: str) -> Delivery | None:
    row = await db.fetchrow(
        f"SELECT {_DELIVERY_COLUMNS} FROM notification_deliveries WHERE id = $1",
        delivery_id,
    )
    return Delivery(**dict(row)) if row is not None else None


async def list_deliveries(
    db: Executor,
    *,
    status: str | None = None,
    user_id: str | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """The newest deliveries first, optionally of one status and/or one user."""
    rows = await db.fetch(
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


async def attempts(db: Executor, delivery_id: str) -> list[Attempt]:
    rows = await db.fetch(
        "SELECT delivery_id, attempt, status, provider_answer, started_at, finished_at"
        " FROM notification_attempts WHERE delivery_id = $1 ORDER BY attempt",
        delivery_id,
    )
    return [Attempt(**dict(row)) for row in rows]
