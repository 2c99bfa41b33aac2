"""How to reach a person beyond email: Web Push subscriptions, and the Telegram notices
whose answers go back to a chat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from actors.runtime import Executor

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
