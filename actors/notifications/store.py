"""Every SQL statement of the notifications actor, over its own tables (the schema's
notifications section): deliveries and their attempts, the in-app feed, the preferences.

A delivery is one notification to one user over one channel, keyed by the event's
envelope id. It is `pending` until a try succeeds (`sent`) or the tries run out
(`failed`: the notifications' dead letter, which an admin reads with its attempts).

A try is claimed before it starts: the claim bumps `attempts` and pushes `next_attempt_at`
a lease ahead, in one row-locked statement, so two timers (or two nodes) never make the
same try, and a try whose outcome was never recorded (a crash mid-send) is retried when
its lease ends instead of being lost. An in-app delivery skips all that: it is stored
sent, with its feed item, in the transaction that records its event (`add_sent_items`).

Each function takes what runs the statement (`actors.runtime.Executor`): the pool, a
connection or a handler's `Transaction`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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


async def add_delivery(
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


# The in-app deliveries of one event, written in the transaction that records it: each a
# delivery already sent (its one try and the feed item, whose id is the delivery's), so
# an in-app notice costs no claim, try or second transaction. A delivery that exists
# (a redelivered event) writes nothing; the attempts' foreign key is checked at the end
# of the statement, after the deliveries are in.
_ADD_SENT_ITEMS = """
WITH n AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[])
        WITH ORDINALITY AS n(id, user_id, category, kind, title, body, data, ord)
), d AS (
    INSERT INTO notification_deliveries
        (id, event_id, event_type, user_id, channel, recipient, shard, status, attempts,
         last_answer, sent_at)
    SELECT n.id, $8, $9, n.user_id, 'inapp', n.user_id, $10, 'sent', 1, $11,
           clock_timestamp()
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
    event_id: str,
    event_type: str,
    shard: int,
    answer: str,
    items: Sequence[FeedItem],
    now: datetime,
) -> list[Any]:
    """Store the in-app deliveries of an event as sent, with their tries and feed items,
    in one statement; the feed rows written (none for a delivery that existed)."""
    if not items:
        return []
    columns = list(zip(*items, strict=True))
    rows: list[Any] = await db.fetch(
        _ADD_SENT_ITEMS,
        *(list(column) for column in columns),
        event_id,
        event_type,
        shard,
        answer,
        now,
    )
    return rows


async def find_delivery(db: Executor, event_id: str, user_id: str, channel: str) -> str | None:
    """The id of the delivery of this event to this user over this channel."""
    found: str | None = await db.fetchval(
        "SELECT id FROM notification_deliveries"
        " WHERE event_id = $1 AND user_id = $2 AND channel = $3",
        event_id,
        user_id,
        channel,
    )
    return found


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


# ── the in-app feed and the preferences ────────────────────────────────────────────────


async def add_item(
    db: Executor,
    *,
    item_id: str,
    user_id: str,
    category: str,
    kind: str,
    title: str,
    body: str,
    data: Mapping[str, Any],
    now: datetime,
) -> Any:
    """Store a feed item once (its id is the delivery's); the row, new or already there."""
    row = await db.fetchrow(
        """
        INSERT INTO notification_feed (id, user_id, category, kind, title, body, data,
            created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
        ON CONFLICT (id) DO NOTHING
        RETURNING id, user_id, category, kind, title, body, data, created_at, read_at
        """,
        item_id,
        user_id,
        category,
        kind,
        title,
        body,
        json.dumps(dict(data)),
        now,
    )
    if row is None:
        row = await db.fetchrow(
            "SELECT id, user_id, category, kind, title, body, data, created_at, read_at"
            " FROM notification_feed WHERE id = $1",
            item_id,
        )
    return row


async def page(
    db: Executor, user_id: str, *, unread_only: bool, limit: int, before: int | None
) -> list[Any]:
    rows: list[Any] = await db.fetch(
        """
        SELECT seq, id, category, kind, title, body, data, created_at, read_at
        FROM notification_feed
        WHERE user_id = $1 AND ($2::bool IS FALSE OR read_at IS NULL)
          AND ($3::bigint IS NULL OR seq < $3)
        ORDER BY seq DESC LIMIT $4
        """,
        user_id,
        unread_only,
        before,
        limit,
    )
    return rows


async def unread_count(db: Executor, user_id: str) -> int:
    count = await db.fetchval(
        "SELECT count(*) FROM notification_feed WHERE user_id = $1 AND read_at IS NULL", user_id
    )
    return int(count)


async def mark_read(db: Executor, user_id: str, item_id: str, now: datetime) -> bool:
    """Mark one item read; False if the user has no such item."""
    found = await db.fetchval(
        "UPDATE notification_feed SET read_at = COALESCE(read_at, $3)"
        " WHERE id = $1 AND user_id = $2 RETURNING true",
        item_id,
        user_id,
        now,
    )
    return bool(found)


async def mark_all_read(db: Executor, user_id: str, now: datetime) -> int:
    status = await db.execute(
        "UPDATE notification_feed SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL",
        user_id,
        now,
    )
    return int(status.split()[-1])


async def preferences(db: Executor, user_id: str) -> list[tuple[str, str, bool]]:
    """The user's own switches: (category, channel, enabled), over the defaults."""
    rows = await db.fetch(
        "SELECT category, channel, enabled FROM notification_preferences WHERE user_id = $1",
        user_id,
    )
    return [(row["category"], row["channel"], row["enabled"]) for row in rows]


async def preferences_of(
    db: Executor, user_ids: Sequence[str]
) -> dict[str, list[tuple[str, str, bool]]]:
    """`preferences` of several users in one query (a user with none has an empty list)."""
    found: dict[str, list[tuple[str, str, bool]]] = {user_id: [] for user_id in user_ids}
    if not found:
        return found
    rows = await db.fetch(
        "SELECT user_id, category, channel, enabled FROM notification_preferences"
        " WHERE user_id = ANY($1::text[])",
        list(found),
    )
    for row in rows:
        found[row["user_id"]].append((row["category"], row["channel"], row["enabled"]))
    return found


async def set_preferences(
    db: Executor, user_id: str, changes: Mapping[str, Mapping[str, bool]]
) -> None:
    rows = [
        (category, channel, enabled)
        for category, channels in changes.items()
        for channel, enabled in channels.items()
    ]
    if not rows:
        return
    await db.execute(
        """
        INSERT INTO notification_preferences (user_id, category, channel, enabled)
        SELECT $1, c.category, c.channel, c.enabled
        FROM unnest($2::text[], $3::text[], $4::bool[]) AS c(category, channel, enabled)
        ON CONFLICT (user_id, category, channel) DO UPDATE SET enabled = EXCLUDED.enabled
        """,
        user_id,
        [row[0] for row in rows],
        [row[1] for row in rows],
        [row[2] for row in rows],
    )


# ── Web Push subscriptions ─────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class PushSubscriptionRow:
    """One browser a user turned push on in."""

    id: str
    user_id: str
    endpoint: str
    p256dh: str
    auth: str
    label: str
    created_at: datetime


_PUSH_COLUMNS = "id, user_id, endpoint, p256dh, auth, label, created_at"


async def add_push_subscription(
    db: Executor,
    *,
    subscription_id: str,
    user_id: str,
    endpoint: str,
    p256dh: str,
    auth: str,
    label: str,
    now: datetime,
) -> PushSubscriptionRow:
    """Keep a browser's subscription; the same endpoint again takes the new keys and
    owner (a browser that subscribed anew, or now signed in as someone else) and keeps
    its id."""
    row = await db.fetchrow(
        f"""
        INSERT INTO notification_push_subscriptions
            (id, user_id, endpoint, p256dh, auth, label, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (endpoint) DO UPDATE
        SET user_id = EXCLUDED.user_id, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
            label = EXCLUDED.label,
            created_at = CASE WHEN notification_push_subscriptions.user_id = EXCLUDED.user_id
                              THEN notification_push_subscriptions.created_at
                              ELSE EXCLUDED.created_at END
        RETURNING {_PUSH_COLUMNS}
        """,
        subscription_id,
        user_id,
        endpoint,
        p256dh,
        auth,
        label,
        now,
    )
    return PushSubscriptionRow(**dict(row))


async def push_subscriptions(db: Executor, user_id: str) -> list[PushSubscriptionRow]:
    """A user's subscriptions, oldest first."""
    rows = await db.fetch(
        f"SELECT {_PUSH_COLUMNS} FROM notification_push_subscriptions"
        " WHERE user_id = $1 ORDER BY created_at, id",
        user_id,
    )
    return [PushSubscriptionRow(**dict(row)) for row in rows]


async def has_push_subscription(db: Executor, user_id: str) -> bool:
    found = await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM notification_push_subscriptions WHERE user_id = $1)",
        user_id,
    )
    return bool(found)


async def with_push_subscriptions(db: Executor, user_ids: Sequence[str]) -> set[str]:
    """Which of these users have a Web Push subscription (one query)."""
    if not user_ids:
        return set()
    rows = await db.fetch(
        "SELECT DISTINCT user_id FROM notification_push_subscriptions"
        " WHERE user_id = ANY($1::text[])",
        list(user_ids),
    )
    return {row["user_id"] for row in rows}


async def remove_push_subscription(
    db: Executor, subscription_id: str, *, user_id: str | None = None
) -> bool:
    """Forget a subscription (only the user's own when `user_id` is given); False when
    there was none."""
    found = await db.fetchval(
        "DELETE FROM notification_push_subscriptions"
        " WHERE id = $1 AND ($2::text IS NULL OR user_id = $2) RETURNING true",
        subscription_id,
        user_id,
    )
    return bool(found)


# ── answers to chat notices in Telegram ────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class ChatReplyRow:
    """A chat notice sent over Telegram: who it was for and which conversation it is of."""

    user_id: str
    conversation_id: str
    title: str
    created_at: datetime


async def add_chat_reply(
    db: Executor,
    *,
    chat_id: int,
    message_id: int,
    user_id: str,
    conversation_id: str,
    title: str,
    now: datetime,
    forget_before: datetime,
) -> None:
    """Remember the Telegram message of a chat notice, and forget the chat's ones sent
    before `forget_before` (the chat's own rows: the primary key's prefix finds them)."""
    await db.execute(
        "DELETE FROM notification_chat_replies WHERE chat_id = $1 AND created_at < $2",
        chat_id,
        forget_before,
    )
    await db.execute(
        """
        INSERT INTO notification_chat_replies
            (chat_id, message_id, user_id, conversation_id, title, created_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (chat_id, message_id) DO UPDATE
            SET user_id = EXCLUDED.user_id,
                conversation_id = EXCLUDED.conversation_id,
                title = EXCLUDED.title,
                created_at = EXCLUDED.created_at
        """,
        chat_id,
        message_id,
        user_id,
        conversation_id,
        title,
        now,
    )


async def chat_reply(db: Executor, chat_id: int, message_id: int) -> ChatReplyRow | None:
    row = await db.fetchrow(
        """
        SELECT user_id, conversation_id, title, created_at FROM notification_chat_replies
        WHERE chat_id = $1 AND message_id = $2
        """,
        chat_id,
        message_id,
    )
    return None if row is None else ChatReplyRow(**dict(row))


# ── a deleted account (issue 19) ───────────────────────────────────────────────────────


async def forget_user(db: Executor, user_id: str, now: datetime) -> None:
    """Forget how to reach a deleted account: its push devices, switches, in-app feed and
    Telegram answers go; its delivery records stay (what was sent when) with no address
    and no payload, and what was still pending fails ("account deleted")."""
    for table in (
        "notification_push_subscriptions",
        "notification_preferences",
        "notification_feed",
        "notification_chat_replies",
    ):
        await db.execute(f"DELETE FROM {table} WHERE user_id = $1", user_id)
    await db.execute(
        """
        UPDATE notification_deliveries SET
            recipient = '',
            payload = NULL,
            last_answer = CASE WHEN status = 'pending' THEN 'account deleted'
                               ELSE last_answer END,
            failed_at = CASE WHEN status = 'pending' THEN $2 ELSE failed_at END,
            next_attempt_at = NULL,
            status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
            updated_at = $2
        WHERE user_id = $1
        """,
        user_id,
        now,
    )
