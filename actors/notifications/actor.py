"""The notifications actor: turns other actors' events into deliveries, and delivers them.

For each event it handles, in one database transaction with the inbox mark, it records
one delivery per (event, user, channel); after the commit it makes the first try. A try
that fails is retried by a runtime timer after an exponential backoff with jitter, up to
`max_attempts` tries; then the delivery is marked failed (the notifications' dead letter)
and logged. Every try leaves an attempt row with its outcome and the provider's answer.

Delivery to the outside world is at least once: a crash between the provider's "accepted"
and the attempt row makes one more try. Everything else happens once: a redelivered event
finds its inbox mark (and its delivery key), a duplicate timer finds its try claimed.

Who hears about an event and what each channel says is in `notices.py`; where it goes
depends on the user's preferences (security messages ignore them) and contacts (asked of
auth). Channels: email, Telegram (several bots in turn), in-app (the stored feed, pushed
live to the user's WebSockets through `push`) and SMS. A provider's own wait (Telegram's
429 `retry_after`) is honoured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from actors.auth.messages import Contacts, GetContacts, UserNotFound
from actors.notifications import feed_store
from actors.notifications.channels import DeliveryFailed, clip_answer
from actors.notifications.channels.email import EmailChannel
from actors.notifications.channels.sms import SmsChannel
from actors.notifications.channels.telegram import TelegramChannel
from actors.notifications.messages import (
    Acknowledged,
    AttemptView,
    DeliveryList,
    DeliveryView,
    GetPreferences,
    InvalidPreference,
    ListDeliveries,
    ListNotifications,
    MarkAllRead,
    MarkRead,
    NotificationNotFound,
    NotificationPage,
    NotificationView,
    Preferences,
    RetryNotificationDelivery,
    SetPreferences,
)
from actors.notifications.notices import CATEGORIES, CHANNELS, EVENTS, Notice, notices_for
from actors.notifications.store import Claimed, NotDue, NotificationStore
from actors.notifications.templates import render_email, simple_mail
from actors.runtime import Actor, Message, handles
from actors.runtime.clock import rfc3339

log = structlog.get_logger("actors.notifications")

EMAIL, TELEGRAM, INAPP, SMS = CHANNELS[0], CHANNELS[1], CHANNELS[2], CHANNELS[3]
DEFAULT_MAX_ATTEMPTS = 6
RENDER_CACHE = 64  # events whose notices stay rendered (the oldest go first)
CONCURRENT_TRIES = 4  # first tries a shard makes at once (each holds a database connection)
STOP_GRACE_SECONDS = 5.0
# The events this actor decodes back from a delivery's payload, by message type name.
EVENT_TYPES: dict[str, type[Message]] = {t.__name__: t for t in EVENTS}
# auth's own mails (links with tokens) keep their templates
AUTH_MAILS = ("EmailVerificationRequested", "PasswordResetRequested", "PasswordChanged")
SECURITY_KINDS = [*AUTH_MAILS, "TelegramLinked"]
Push = Callable[[str, bytes], Awaitable[None]]
ContactsLookup = Callable[[str], Awaitable[Contacts | None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds to wait after failed try number n: exponential, capped, with jitter.

    The base delay is `initial * factor**(n-1)`, at most `maximum`; jitter takes a random
    part of up to `jitter` (a fraction) off it, so deliveries that failed together (a mail
    server outage) do not all come back at the same instant. The defaults spread six
    tries over about half an hour: 60 s, 2, 4, 8 and 16 min (less jitter).
    """

    initial: float = 60.0
    maximum: float = 3600.0
    factor: float = 2.0
    jitter: float = 0.5
    random: Callable[[], float] = dataclasses.field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("backoff: need 0 < initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff: jitter is a fraction between 0 and 1")

    def base(self, attempt: int) -> float:
        """The delay before jitter after failed try `attempt` (1, 2, ...)."""
        exponent = min(max(attempt - 1, 0), 64)  # 2**64 is past any sane maximum already
        return float(min(self.initial * self.factor**exponent, self.maximum))

    def delay(self, attempt: int) -> float:
        return self.base(attempt) * (1.0 - self.jitter * self.random())


class Notifications(Actor):
    """Delivers notifications over email, Telegram, the in-app feed and SMS.

    `pool` holds the notification tables; `email` is the email channel (SmtpEmail, or
    FolderEmail on the embedded default); `telegram` and `sms` are optional (None: that
    channel is off on this node); `push` sends a user's new in-app item to their live
    WebSockets; `contacts` finds where a user is reached (default: ask auth).
    `public_url` is where the web edge is reached from a browser (links in mails start
    with it). `claim_seconds` is how long a try may take before it counts as lost and is
    made again; keep it above the channel's timeout.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        email: EmailChannel,
        *,
        public_url: str,
        telegram: TelegramChannel | None = None,
        sms: SmsChannel | None = None,
        push: Push | None = None,
        contacts: ContactsLookup | None = None,
        backoff: Backoff | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        claim_seconds: float = 300.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not public_url.startswith(("http://", "https://")):
            raise ValueError(f"public_url {public_url!r} must start with http:// or https://")
        self.store = NotificationStore(pool)
        self.pool = pool
        self.email = email
        self.telegram = telegram
        self.sms = sms
        self.push = push
        self._contacts_lookup = contacts
        self._renders: dict[tuple[str, str], tuple[Message, dict[str, Notice]]] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._tries = asyncio.Semaphore(CONCURRENT_TRIES)
        self.public_url = public_url.rstrip("/")
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self.claim_seconds = claim_seconds

    async def on_start(self) -> None:
        # In-memory timers die with the node (and a crash may leave a try claimed but not
        # finished): re-arm every pending delivery this shard owns. A copy of a timer that
        # survived (Redis keeps timers) finds its try claimed and is ignored.
        shards = self.system.routes().get(self.name, 1)
        pending = await self.store.pending(self.shard, shards)
        for delivery_id, attempts, wait in pending:
            self.schedule(
                wait, RetryNotificationDelivery(delivery_id=delivery_id, attempts=attempts)
            )
        if pending:
            log.info("notifications_resumed", shard=self.shard, pending=len(pending))

    # ── events ─────────────────────────────────────────────────────────────────────────

    @handles(*EVENTS)
    async def on_event(self, event: Message) -> None:
        envelope = self.envelope
        assert envelope is not None, "a handler always has its envelope"
        # render now: an event no template can render fails here, before anything is stored
        notices = notices_for(event, public_url=self.public_url)
        # each recipient's preferences and contacts at once, not one after another
        reach = await asyncio.gather(*(self._targets(notice) for notice in notices))
        targets = [
            (notice.user_id, channel, recipient)
            for notice, pairs in zip(notices, reach, strict=True)
            for channel, recipient in pairs
        ]
        payload = msgspec.json.encode(event).decode()
        event_type = type(event).__name__
        ids: list[str] = []
        async with self.transaction() as tx:
            if not tx.duplicate:
                for user_id, channel, recipient in targets:
                    delivery_id = uuid.uuid4().hex
                    if await self.store.add_delivery(
                        tx,
                        delivery_id=delivery_id,
                        event_id=envelope.id,
                        event_type=event_type,
                        user_id=user_id,
                        channel=channel,
                        recipient=recipient,
                        shard=self.shard,
                        payload=payload,
                    ):
                        ids.append(delivery_id)
        if len(ids) < len(targets):
            # A redelivered event. Its deliveries exist; one that was committed but never
            # tried (a crash right after the commit) is tried now. The claim lets only an
            # untried delivery through, so this never makes a second first try.
            log.info("notification_event_redelivered", event_id=envelope.id, event_type=event_type)
            for user_id, channel, _recipient in targets:
                found = await self.store.find_delivery(envelope.id, user_id, channel)
                if found is not None and found not in ids:
                    ids.append(found)
        for delivery_id in ids:
            self._try_soon(delivery_id)

    def _try_soon(self, delivery_id: str) -> None:
        """Make a delivery's first try beside the mailbox, so one slow channel or a big
        group's fan-out does not hold up the next event or a feed read. A try touches only
        its own claimed delivery row; a try cut off by a stop is made again when its claim
        runs out (the timer `_attempt` arms)."""

        async def attempt() -> None:
            async with self._tries:
                await self._attempt(delivery_id, attempts=0)

        task = asyncio.get_running_loop().create_task(attempt(), name=f"notify:{delivery_id}")
        self._in_flight.add(task)
        task.add_done_callback(self._tried)

    def _tried(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("notification_try_failed", error=repr(task.exception()))

    async def on_stop(self) -> None:
        if not self._in_flight:
            return
        # let tries in hand finish (a send cut in half would be sent again), then stop
        _done, left = await asyncio.wait(set(self._in_flight), timeout=STOP_GRACE_SECONDS)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    @handles(RetryNotificationDelivery)
    async def on_retry(self, message: RetryNotificationDelivery) -> None:
        await self._attempt(message.delivery_id, attempts=message.attempts)

    # ── delivery ───────────────────────────────────────────────────────────────────────

    async def _contacts(self, user_id: str) -> Contacts | None:
        if self._contacts_lookup is not None:
            return await self._contacts_lookup(user_id)
        try:
            contacts: Contacts = await self.ask("auth", GetContacts(user_id=user_id))
        except UserNotFound:
            return None
        return contacts

    async def _targets(self, notice: Notice) -> list[tuple[str, str]]:
        """(channel, recipient) pairs for one notice: the channels it may use, that this
        node has, that the user left on (security notices ignore that), where the user
        can be reached. An address named by the event (verification) beats the account's."""
        allowed = notice.only or CHANNELS
        switches = None
        if not notice.security:
            switches = (await feed_store.preferences(self.pool, notice.user_id))[notice.category]
        wanted = [c for c in allowed if switches is None or switches.get(c, False)]
        contacts = None
        if any(self._recipient(c, notice, None) is None and self._reachable(c) for c in wanted):
            contacts = await self._contacts(notice.user_id)
        targets: list[tuple[str, str]] = []
        for channel in wanted:
            recipient = self._recipient(channel, notice, contacts)
            if recipient:
                targets.append((channel, recipient))
        return targets

    def _reachable(self, channel: str) -> bool:
        """Whether this node has the channel at all."""
        return {TELEGRAM: self.telegram, SMS: self.sms}.get(channel, True) is not None

    def _recipient(self, channel: str, notice: Notice, contacts: Contacts | None) -> str | None:
        if channel == EMAIL:
            return notice.email_to or (contacts.email if contacts else None)
        if channel == TELEGRAM and self.telegram is not None:
            chat = notice.telegram_chat_id or (contacts.telegram_chat_id if contacts else None)
            return None if chat is None else str(chat)
        if channel == SMS and self.sms is not None and contacts and contacts.phone_verified:
            return contacts.phone
        if channel == INAPP:
            return notice.user_id
        return None

    def _rendered(self, claim: Claimed) -> tuple[Message, dict[str, Notice]]:
        """The event of a delivery and its notices by user, decoded and rendered once for
        all of the event's deliveries (a group's expense makes one per member)."""
        key = (claim.event_type, claim.payload)
        cached = self._renders.get(key)
        if cached is None:
            event = msgspec.json.decode(claim.payload, type=EVENT_TYPES[claim.event_type])
            notices = {n.user_id: n for n in notices_for(event, public_url=self.public_url)}
            cached = self._renders[key] = (event, notices)
            while len(self._renders) > RENDER_CACHE:
                self._renders.pop(next(iter(self._renders)))
        return cached

    async def _send(self, claimed: Claimed, event: Message, notices: dict[str, Notice]) -> str:
        """One try over the delivery's channel; the provider's answer, or DeliveryFailed."""
        notice = notices.get(claimed.user_id)
        if notice is None:
            raise DeliveryFailed("the event no longer concerns this user", permanent=True)
        if claimed.channel == EMAIL:
            if claimed.event_type in AUTH_MAILS:
                mail = render_email(event, public_url=self.public_url)  # type: ignore[arg-type]
                mail = dataclasses.replace(mail, to=claimed.recipient)
            else:
                mail = simple_mail(claimed.recipient, notice.title, notice.text, kind=notice.kind)
            return await self.email.send(mail)
        if claimed.channel == TELEGRAM and self.telegram is not None:
            return await self.telegram.send(int(claimed.recipient), notice.telegram)
        if claimed.channel == SMS and self.sms is not None:
            return await self.sms.send(claimed.recipient, f"{notice.title}: {notice.text}")
        if claimed.channel == INAPP:
            return await self._store_and_push(claimed, notice)
        raise DeliveryFailed(f"no channel {claimed.channel!r} on this node", permanent=True)

    async def _store_and_push(self, claimed: Claimed, notice: Notice) -> str:
        row = await feed_store.add_item(
            self.pool,
            item_id=claimed.id,
            user_id=notice.user_id,
            category=notice.category,
            kind=notice.kind,
            title=notice.title,
            body=notice.text,
            data=notice.data,
            now=datetime.now(UTC),
        )
        if self.push is None:
            return "stored"
        item = msgspec.to_builtins(_item(row))
        item.pop("msg_type", None)
        frame = msgspec.json.encode({"type": "notification", "notification": item})
        await self.push(notice.user_id, frame)
        return "stored and pushed"

    async def _attempt(self, delivery_id: str, *, attempts: int) -> None:
        """Make try number `attempts + 1` of a delivery, if it is still due for it."""
        claim = await self.store.claim(delivery_id, attempts, self.claim_seconds)
        if claim is None:
            log.debug("notification_try_skipped", delivery_id=delivery_id, attempts=attempts)
            return
        if isinstance(claim, NotDue):
            # an early timer (clocks of node and database differ): come back when due
            message = RetryNotificationDelivery(delivery_id=delivery_id, attempts=attempts)
            self.schedule(claim.seconds, message)
            return
        attempt = claim.attempt
        # If this try never records an outcome (the node dies mid-send, the database is
        # down afterwards), this timer makes the next try once the claim's lease is over.
        self.schedule(
            self.claim_seconds,
            RetryNotificationDelivery(delivery_id=delivery_id, attempts=attempt),
        )
        context = {
            "delivery_id": delivery_id,
            "user_id": claim.user_id,
            "event_type": claim.event_type,
            "channel": claim.channel,
            "attempt": attempt,
        }
        started = datetime.now(UTC)
        permanent = False
        retry_after: float | None = None
        try:
            event, notices = self._rendered(claim)
            answer = clip_answer(await self._send(claim, event, notices))
        except DeliveryFailed as error:
            answer, permanent, retry_after = error.answer, error.permanent, error.retry_after
        except Exception as error:
            # A bug or an error no channel anticipated: counted as a failed try, so the
            # delivery is retried and finally marked failed, never left hanging.
            answer = clip_answer(f"{type(error).__name__}: {error}")
            # no traceback: a console renderer may print locals, and the event holds a token
            log.error("notification_try_crashed", error=answer, **context)
        else:
            await self.store.finish_attempt(
                delivery_id, attempt, outcome="sent", answer=answer, started_at=started
            )
            log.info("notification_sent", answer=answer, **context)
            return
        if permanent or attempt >= self.max_attempts:
            await self.store.finish_attempt(
                delivery_id, attempt, outcome="failed", answer=answer, started_at=started
            )
            log.error(
                "notification_failed",
                answer=answer,
                permanent=permanent,
                max_attempts=self.max_attempts,
                **context,
            )
            return
        # the provider's own wait is an instruction, not a hint
        delay = retry_after if retry_after is not None else self.backoff.delay(attempt)
        moved = await self.store.finish_attempt(
            delivery_id, attempt, outcome="retry", answer=answer, started_at=started, retry_in=delay
        )
        if moved:
            self.schedule(
                delay, RetryNotificationDelivery(delivery_id=delivery_id, attempts=attempt)
            )
        log.warning(
            "notification_retry_scheduled", answer=answer, retry_in_s=round(delay, 3), **context
        )

    # ── the in-app feed, preferences, delivery records ─────────────────────────────────

    @handles(ListNotifications)
    async def list_notifications(self, message: ListNotifications) -> NotificationPage:
        limit = max(1, min(message.limit, 200))
        before = _cursor(message.cursor)
        rows = await feed_store.page(
            self.pool,
            message.user_id,
            unread_only=message.unread_only,
            limit=limit + 1,
            before=before,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return NotificationPage(
            items=[_item(row) for row in rows],
            next_cursor=str(rows[-1]["seq"]) if more else None,
            unread=await feed_store.unread_count(self.pool, message.user_id),
        )

    @handles(MarkRead)
    async def mark_read(self, message: MarkRead) -> Acknowledged:
        now = datetime.now(UTC)
        if not await feed_store.mark_read(self.pool, message.user_id, message.notification_id, now):
            raise NotificationNotFound("No such notification among yours.")
        return Acknowledged()

    @handles(MarkAllRead)
    async def mark_all_read(self, message: MarkAllRead) -> Acknowledged:
        await feed_store.mark_all_read(self.pool, message.user_id, datetime.now(UTC))
        return Acknowledged()

    @handles(GetPreferences)
    async def get_preferences(self, message: GetPreferences) -> Preferences:
        chosen = await feed_store.preferences(self.pool, message.user_id)
        return Preferences(categories=chosen, locked=SECURITY_KINDS)

    @handles(SetPreferences)
    async def set_preferences(self, message: SetPreferences) -> Preferences:
        for category, channels in message.changes.items():
            if category not in CATEGORIES:
                raise InvalidPreference(
                    f"{category!r} is not a category; use one of {', '.join(CATEGORIES)}",
                    details={"field": f"$.{category}"},
                )
            for channel, enabled in channels.items():
                if channel not in CHANNELS or not isinstance(enabled, bool):
                    raise InvalidPreference(
                        f"{category}.{channel}: channels are {', '.join(CHANNELS)}, each"
                        " true or false",
                        details={"field": f"$.{category}.{channel}"},
                    )
        await feed_store.set_preferences(self.pool, message.user_id, message.changes)
        return await self.get_preferences(GetPreferences(user_id=message.user_id))

    @handles(ListDeliveries)
    async def list_deliveries(self, message: ListDeliveries) -> DeliveryList:
        deliveries = await self.store.list_deliveries(
            status=message.status, user_id=message.user_id, limit=message.limit
        )
        views = []
        for delivery in deliveries:
            tries = await self.store.attempts(delivery.id)
            views.append(
                DeliveryView(
                    id=delivery.id,
                    event_type=delivery.event_type,
                    user_id=delivery.user_id,
                    channel=delivery.channel,
                    status=delivery.status,
                    attempts=delivery.attempts,
                    last_answer=delivery.last_answer,
                    created_at=rfc3339(delivery.created_at),
                    tries=[
                        AttemptView(
                            attempt=t.attempt,
                            status=t.status,
                            provider_answer=t.provider_answer,
                            started_at=rfc3339(t.started_at),
                        )
                        for t in tries
                    ],
                )
            )
        return DeliveryList(items=views)


def _item(row: Any) -> NotificationView:
    data = row["data"]
    return NotificationView(
        id=row["id"],
        category=row["category"],
        kind=row["kind"],
        title=row["title"],
        body=row["body"],
        data=json.loads(data) if isinstance(data, str) else dict(data or {}),
        created_at=rfc3339(row["created_at"]),
        read=row["read_at"] is not None,
    )


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidPreference("cursor is not one this API gave out", details={"field": "cursor"})
    return int(raw)
