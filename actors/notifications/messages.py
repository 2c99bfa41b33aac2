"""The notifications actor's public interface.

Other actors tell it their events; today it handles auth's
(`actors.auth.messages`): `EmailVerificationRequested`, `PasswordResetRequested` and
`PasswordChanged`, each mailed to the address in the event. Send them through the
reliable hand-off (`tx.tell("notifications", event, key=event.user_id)`): the envelope id
is the event's identity, so a redelivered event is delivered once.

`RetryNotificationDelivery` is the actor's own timer message (a message type must be
registered to cross a transport, timers included); no other actor sends it.
"""

from __future__ import annotations

from typing import Any

from actors.runtime import DomainError, Message

NOTIFICATIONS = "notifications"


def notifications_key(message: Any) -> str | None:
    """The shard key: the user the notification is for (None: any shard).

    One user's notifications are handled in order by one shard; a retry timer always
    returns to the shard that armed it, whatever its key.
    """
    for field in ("user_id", "group_id", "from_user_id"):
        value = getattr(message, field, None)
        if value:
            return str(value)
    return None


class RetryNotificationDelivery(Message, frozen=True):
    """Internal timer: try delivery `delivery_id` again.

    `attempts` is how many tries the delivery had when the timer was armed; a timer that
    no longer matches (the delivery moved on, or a copy already fired) is ignored.
    """

    delivery_id: str
    attempts: int


# ── the in-app feed and preferences ────────────────────────────────────────────────────


class NotificationView(Message, frozen=True):
    id: str
    category: str
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: str
    read: bool


class NotificationPage(Message, frozen=True):
    items: list[NotificationView]
    next_cursor: str | None
    unread: int


class ListNotifications(Message, frozen=True):
    user_id: str
    unread_only: bool = False
    limit: int = 50
    cursor: str | None = None


class MarkRead(Message, frozen=True):
    user_id: str
    notification_id: str


class MarkAllRead(Message, frozen=True):
    user_id: str


class Preferences(Message, frozen=True):
    """category -> channel -> on; `locked` names what cannot be switched off."""

    categories: dict[str, dict[str, bool]]
    locked: list[str]


class GetPreferences(Message, frozen=True):
    user_id: str


class SetPreferences(Message, frozen=True):
    """Change some switches (the rest stay as they are)."""

    user_id: str
    changes: dict[str, dict[str, bool]]


class ListDeliveries(Message, frozen=True):
    """Admin: the delivery records, newest first (`status` pending, sent or failed)."""

    status: str | None = None
    user_id: str | None = None
    limit: int = 50


class AttemptView(Message, frozen=True):
    attempt: int
    status: str
    provider_answer: str
    started_at: str


class DeliveryView(Message, frozen=True):
    id: str
    event_type: str
    user_id: str
    channel: str
    status: str
    attempts: int
    last_answer: str | None
    created_at: str
    tries: list[AttemptView]


class DeliveryList(Message, frozen=True):
    items: list[DeliveryView]


class Acknowledged(Message, frozen=True):
    """A command with nothing to return did what it was asked."""


class NotificationNotFound(DomainError):
    code = "notification_not_found"
    category = "not_found"


class InvalidPreference(DomainError):
    """A category or channel that does not exist, or a value that is not true/false."""

    code = "invalid_preference"
    category = "invalid"
