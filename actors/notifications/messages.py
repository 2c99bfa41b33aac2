"""The notifications actor's public interface.

Other actors tell it their events; today it handles auth's
(`actors.auth.messages`): `EmailVerificationRequested`, `PasswordResetRequested` and
`PasswordChanged`, each mailed to the address in the event. Send them through the
reliable hand-off (`tx.tell("notifications", event, key=event.user_id)`): the envelope id
is the event's identity, so a redelivered event is delivered once.

It also hears the chat actor's `ChatMessagePosted` (mentions, and messages after a quiet
spell: the `chat` category). A chat notice sent over Telegram is remembered by the message
Telegram made for it; `FindChatReplyTarget` tells the bot which conversation an answer to
that message belongs to, and for whom.

`RetryNotificationDelivery` is the actor's own timer message (a message type must be
registered to cross a transport, timers included); no other actor sends it.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from actors.runtime import DomainError, InvalidInput, Message
from actors.runtime.bounds import Id, Limit, check_bounds

NOTIFICATIONS = "notifications"


class NotificationsInput(Message, frozen=True):
    """What the notifications actor handles of its own (commands and its timer): the
    fields' bounds hold wherever one is made or decoded (actors/runtime/bounds.py), or it
    is InvalidInput naming the field (`$.limit`)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidInput)


def notifications_key(message: Any) -> str | None:
    """The shard key: the user the notification is for (None: any shard).

    One user's notifications are handled in order by one shard; a retry timer always
    returns to the shard that armed it, whatever its key. A chat message's notices go by
    its conversation (a busy group's conversations spread over the shards, and one
    conversation's notices keep their order); a look-up of a Telegram answer by its chat.
    """
    for field in ("user_id", "conversation_id", "group_id", "from_user_id", "chat_id"):
        value = getattr(message, field, None)
        if value:
            return str(value)
    return None


class RetryNotificationDelivery(NotificationsInput, frozen=True):
    """Internal timer: try delivery `delivery_id` again.

    `attempts` is how many tries the delivery had when the timer was armed; a timer that
    no longer matches (the delivery moved on, or a copy already fired) is ignored.
    """

    delivery_id: Id
    attempts: Annotated[int, Meta(ge=0, le=1_000)]


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


class ListNotifications(NotificationsInput, frozen=True):
    user_id: Id
    unread_only: bool = False
    limit: Limit = 50
    cursor: str | None = None


class MarkRead(NotificationsInput, frozen=True):
    user_id: Id
    notification_id: Id


class MarkAllRead(NotificationsInput, frozen=True):
    user_id: Id


class Preferences(Message, frozen=True):
    """category -> channel -> on; `locked` names what cannot be switched off."""

    categories: dict[str, dict[str, bool]]
    locked: list[str]


class GetPreferences(NotificationsInput, frozen=True):
    user_id: Id


class SetPreferences(NotificationsInput, frozen=True):
    """Change some switches (the rest stay as they are)."""

    user_id: Id
    changes: dict[str, dict[str, bool]]

    def __post_init__(self) -> None:
        check_bounds(self, InvalidPreference)


class ListDeliveries(NotificationsInput, frozen=True):
    """Admin: the delivery records, newest first (`status` pending, sent or failed)."""

    status: Annotated[str, Meta(max_length=20)] | None = None
    user_id: Id | None = None
    limit: Limit = 50


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


# ── answers to chat notices in Telegram ──────────────────────────────────────────────

TelegramId = Annotated[int, Meta(ge=-(2**52), le=2**52)]  # Telegram's ids fit in 52 bits


class FindChatReplyTarget(NotificationsInput, frozen=True):
    """Which conversation an answer to Telegram message `message_id` in chat `chat_id`
    belongs to, and for whom that chat notice was: `ChatReplyTarget`, or
    `ChatReplyTargetNotFound` (not a chat notice, or one too old to answer)."""

    chat_id: TelegramId
    message_id: TelegramId


class ChatReplyTarget(Message, frozen=True):
    user_id: str
    conversation_id: str
    title: str  # the conversation's, as the notice named it


class ChatReplyTargetNotFound(DomainError):
    """The message is no chat notice this node sent (or one older than it remembers)."""

    code = "chat_reply_target_not_found"
    category = "not_found"


# ── Web Push subscriptions ─────────────────────────────────────────────────────────────

Base64Url = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-+/]+=*$")]


class PushSubscriptionView(Message, frozen=True):
    """One browser that gets the user's notifications by Web Push."""

    id: str
    endpoint: str
    label: str
    created_at: str


class PushSubscriptionList(Message, frozen=True):
    items: list[PushSubscriptionView]


class AddPushSubscription(NotificationsInput, frozen=True):
    """Keep a browser's push subscription (what `PushManager.subscribe` gave it): its
    push service's `endpoint` and the `p256dh` key and `auth` secret messages are
    encrypted for. The same endpoint again replaces its keys."""

    user_id: Id
    endpoint: Annotated[str, Meta(min_length=1, max_length=1000)]
    p256dh: Base64Url
    auth: Base64Url
    label: Annotated[str, Meta(max_length=100)] = ""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidPushSubscription)


class ListPushSubscriptions(NotificationsInput, frozen=True):
    user_id: Id


class RemovePushSubscription(NotificationsInput, frozen=True):
    user_id: Id
    subscription_id: Id


class GetPushKey(NotificationsInput, frozen=True):
    """The node's VAPID public key, which browsers subscribe with."""


class PushKey(Message, frozen=True):
    public_key: str  # 65 octets of a P-256 point, base64url


class Acknowledged(Message, frozen=True):
    """A command with nothing to return did what it was asked."""


class NotificationNotFound(DomainError):
    code = "notification_not_found"
    category = "not_found"


class InvalidPreference(DomainError):
    """A category or channel that does not exist, or a value that is not true/false."""

    code = "invalid_preference"
    category = "invalid"


class InvalidPushSubscription(DomainError):
    """An endpoint that is no push service's URL, or keys that are no P-256 key and
    16-octet secret."""

    code = "invalid_push_subscription"
    category = "invalid"


class PushSubscriptionNotFound(DomainError):
    code = "push_subscription_not_found"
    category = "not_found"


class WebPushNotConfigured(DomainError):
    """This node sends no Web Push (its notifications actor has no VAPID keys)."""

    code = "webpush_not_configured"
    category = "conflict"
