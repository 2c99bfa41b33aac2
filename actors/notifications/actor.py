"""The Notifications actor: turns other actors' events into deliveries, and delivers them.

One handler per message, each handing it to the feature part that owns it: `deliveries`
(recording an event's deliveries, tries, retries with backoff, the admin listing),
`routing` (who is told where, and the send over each channel), `feed` (the in-app feed,
pushed live to the user's WebSockets), `preferences` (each user's switches) and `replies`
(the chat notices in Telegram an answer can be posted from). Each part
is given the shard's runtime `Context` (database, clock, transactions, messages, timers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from actors.auth.messages import AccountDeleted
from actors.notifications import batching
from actors.notifications.channels.email import EmailChannel
from actors.notifications.channels.sms import SmsChannel
from actors.notifications.channels.webpush import WebPushChannel
from actors.notifications.deliveries import DEFAULT_MAX_ATTEMPTS, DELIVERY_BACKOFF, Deliveries
from actors.notifications.feed import Feed, Push
from actors.notifications.forgetting import Forgetting
from actors.notifications.messages import (
    Acknowledged,
    AddPushSubscription,
    ChatReplyTarget,
    DeliveryList,
    FindChatReplyTarget,
    GetPreferences,
    GetPushKey,
    ListDeliveries,
    ListNotifications,
    ListPushSubscriptions,
    MarkAllRead,
    MarkRead,
    NotificationPage,
    Preferences,
    PushKey,
    PushSubscriptionList,
    PushSubscriptionView,
    RemovePushSubscription,
    RetryNotificationDelivery,
    SetPreferences,
)
from actors.notifications.notices import EVENTS
from actors.notifications.preferences import UserPreferences
from actors.notifications.push_devices import PushDevices
from actors.notifications.replies import ChatReplies
from actors.notifications.routing import ContactsLookup, Routing
from actors.runtime import (
    Actor,
    Backoff,
    Clock,
    Envelope,
    Message,
    bind_trace_id,
    handles,
    wall_clock,
)

if TYPE_CHECKING:
    from actors.notifications.channels.telegram import TelegramChannel  # aiogram: slow to import

# messages one batch takes at most; the events among them are written together
BATCH_SIZE = 64


_EVENT_TYPES = frozenset(EVENTS)


def _is_event(envelope: Envelope) -> bool:
    return type(envelope.body) in _EVENT_TYPES


class Notifications(Actor):
    """Delivers notifications over email, Telegram, the in-app feed, SMS and Web Push.

    `pool` holds the notification tables; `email` is the email channel (SmtpEmail, or
    FolderEmail on the embedded default); `telegram`, `sms` and `webpush` are optional
    (None: that channel is off on this node); `push` sends a user's new in-app item to their live
    WebSockets; `contacts` finds where a user is reached (default: ask auth).
    `public_url` is where the web edge is reached from a browser (links in mails start
    with it). `backoff` spaces the tries of a delivery, at most `max_attempts` of them.
    `claim_seconds` is how long a try may take before it counts as lost and is made
    again; keep it above the channel's timeout. `clock` is what time it is.

    Events are recorded in batches: the shard takes up to `batch_size` waiting messages
    at once (see `handle_envelopes`).
    """

    batch_size = BATCH_SIZE

    def __init__(
        self,
        pool: asyncpg.Pool,
        email: EmailChannel,
        *,
        public_url: str,
        telegram: TelegramChannel | None = None,
        sms: SmsChannel | None = None,
        webpush: WebPushChannel | None = None,
        push: Push | None = None,
        contacts: ContactsLookup | None = None,
        backoff: Backoff = DELIVERY_BACKOFF,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        claim_seconds: float = 300.0,
        clock: Clock = wall_clock,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not public_url.startswith(("http://", "https://")):
            raise ValueError(f"public_url {public_url!r} must start with http:// or https://")
        public_url = public_url.rstrip("/")
        context = self.context(pool, clock)
        self.preferences = UserPreferences(context)
        self.feed = Feed(context, push=push)
        self.devices = PushDevices(context, channel=webpush)
        self.replies = ChatReplies(context)
        self.forgetting = Forgetting(context)  # issue 19: a deleted account
        self.routing = Routing(
            context,
            email=email,
            telegram=telegram,
            sms=sms,
            feed=self.feed,
            devices=self.devices,
            preferences=self.preferences,
            replies=self.replies,
            contacts=contacts,
            public_url=public_url,
        )
        self.deliveries = Deliveries(
            context,
            routing=self.routing,
            feed=self.feed,
            public_url=public_url,
            backoff=backoff,
            max_attempts=max_attempts,
            claim_seconds=claim_seconds,
        )

    async def handle_envelopes(self, envelopes: Sequence[Envelope]) -> Sequence[Any]:
        """A batch (issue 20): each run of consecutive events recorded together, by their
        envelope ids (`Deliveries.record_run`); anything else alone by its handler, in
        mailbox order. A batch that raises is handled again one by one, and the events
        it committed find their inbox marks then."""
        results: list[Any] = []
        for events, run in batching.runs(envelopes, _is_event):
            if events:
                bind_trace_id(run[0].trace_id)
                await self.deliveries.record_run(run)
                results.extend([None] * len(run))
            else:
                results.append(await self.handle_single(run[0]))
        return results

    async def on_start(self) -> None:
        await self.deliveries.resume(shards=self.system.routes().get(self.name, 1))

    async def on_stop(self) -> None:
        await self.deliveries.stop()

    # ── deliveries ─────────────────────────────────────────────────────────────────────

    @handles(*EVENTS)
    async def on_event(self, event: Message) -> None:
        await self.deliveries.record(event)

    @handles(RetryNotificationDelivery)
    async def on_retry(self, message: RetryNotificationDelivery) -> None:
        await self.deliveries.retry(message)

    @handles(ListDeliveries)
    async def list_deliveries(self, message: ListDeliveries) -> DeliveryList:
        return await self.deliveries.listing(message)

    # ── the in-app feed and preferences ────────────────────────────────────────────────

    @handles(ListNotifications)
    async def list_notifications(self, message: ListNotifications) -> NotificationPage:
        return await self.feed.page(message)

    @handles(MarkRead)
    async def mark_read(self, message: MarkRead) -> Acknowledged:
        return await self.feed.mark_read(message)

    @handles(MarkAllRead)
    async def mark_all_read(self, message: MarkAllRead) -> Acknowledged:
        return await self.feed.mark_all_read(message)

    @handles(GetPreferences)
    async def get_preferences(self, message: GetPreferences) -> Preferences:
        return await self.preferences.get(message)

    @handles(SetPreferences)
    async def set_preferences(self, message: SetPreferences) -> Preferences:
        return await self.preferences.set(message)

    # ── answers to chat notices in Telegram ────────────────────────────────────────────

    @handles(FindChatReplyTarget)
    async def find_chat_reply_target(self, message: FindChatReplyTarget) -> ChatReplyTarget:
        return await self.replies.find(message)

    # ── Web Push devices ───────────────────────────────────────────────────────────────

    @handles(GetPushKey)
    async def get_push_key(self, message: GetPushKey) -> PushKey:
        return self.devices.key(message)

    @handles(AddPushSubscription)
    async def add_push_subscription(self, message: AddPushSubscription) -> PushSubscriptionView:
        return await self.devices.add(message)

    @handles(ListPushSubscriptions)
    async def list_push_subscriptions(self, message: ListPushSubscriptions) -> PushSubscriptionList:
        return await self.devices.listing(message)

    @handles(RemovePushSubscription)
    async def remove_push_subscription(self, message: RemovePushSubscription) -> Acknowledged:
        return await self.devices.remove(message)

    # ── a deleted account (issue 19) ───────────────────────────────────────────────────

    @handles(AccountDeleted)
    async def on_account_deleted(self, event: AccountDeleted) -> None:
        await self.forgetting.account_deleted(event)
