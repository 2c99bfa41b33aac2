"""The notifications actor: turns other actors' events into deliveries, and delivers them.

For each event it handles, in one database transaction with the inbox mark, it records
one delivery per (event, user, channel); after the commit it makes the first try. A try
that fails is retried by a runtime timer after an exponential backoff with jitter, up to
`max_attempts` tries; then the delivery is marked failed (the notifications' dead letter)
and logged. Every try leaves an attempt row with its outcome and the provider's answer.

Delivery to the outside world is at least once: a crash between the provider's "accepted"
and the attempt row makes one more try. Everything else happens once: a redelivered event
finds its inbox mark (and its delivery key), a duplicate timer finds its try claimed.

Today the only channel is email, for auth's events; the Telegram, in-app and SMS channels
and per-user preferences plug in at `_targets` (who gets what, where) and `_send` (how).
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import msgspec
import structlog

from actors.auth.messages import (
    EmailVerificationRequested,
    PasswordChanged,
    PasswordResetRequested,
)
from actors.notifications.channels import DeliveryFailed, clip_answer
from actors.notifications.channels.email import EmailChannel
from actors.notifications.messages import RetryNotificationDelivery
from actors.notifications.store import Claimed, NotDue, NotificationStore
from actors.notifications.templates import EmailEvent, render_email
from actors.runtime import Actor, handles

log = structlog.get_logger("actors.notifications")

EMAIL = "email"
DEFAULT_MAX_ATTEMPTS = 6
# The events this actor decodes back from a delivery's payload, by message type name.
EVENT_TYPES: dict[str, type[EmailEvent]] = {
    t.__name__: t for t in (EmailVerificationRequested, PasswordResetRequested, PasswordChanged)
}


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
    """Delivers notifications: today auth's mails, over the email channel.

    `pool` holds the notification tables; `email` is the email channel (SmtpEmail, or
    FolderEmail on the embedded default); `public_url` is where the web edge is reached
    from a browser (links in mails start with it). `claim_seconds` is how long a try may
    take before it counts as lost and is made again; keep it above the channel's timeout.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        email: EmailChannel,
        *,
        public_url: str,
        backoff: Backoff | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        claim_seconds: float = 300.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not public_url.startswith(("http://", "https://")):
            raise ValueError(f"public_url {public_url!r} must start with http:// or https://")
        self.store = NotificationStore(pool)
        self.email = email
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

    @handles(EmailVerificationRequested, PasswordResetRequested, PasswordChanged)
    async def on_event(self, event: EmailEvent) -> None:
        envelope = self.envelope
        assert envelope is not None, "a handler always has its envelope"
        targets = self._targets(event)
        # render now: an event no template can render fails here, before anything is stored
        for channel, _recipient in targets:
            self._check_renders(channel, event)
        payload = msgspec.json.encode(event).decode()
        event_type = type(event).__name__
        ids: list[str] = []
        async with self.transaction() as tx:
            if not tx.duplicate:
                for channel, recipient in targets:
                    delivery_id = uuid.uuid4().hex
                    if await self.store.add_delivery(
                        tx,
                        delivery_id=delivery_id,
                        event_id=envelope.id,
                        event_type=event_type,
                        user_id=event.user_id,
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
            for channel, _recipient in targets:
                found = await self.store.find_delivery(envelope.id, event.user_id, channel)
                if found is not None and found not in ids:
                    ids.append(found)
        for delivery_id in ids:
            await self._attempt(delivery_id, attempts=0)

    @handles(RetryNotificationDelivery)
    async def on_retry(self, message: RetryNotificationDelivery) -> None:
        await self._attempt(message.delivery_id, attempts=message.attempts)

    # ── delivery ───────────────────────────────────────────────────────────────────────

    def _targets(self, event: EmailEvent) -> list[tuple[str, str]]:
        """(channel, recipient) pairs for this event. Auth's mails go to the address in the
        event, which may not be the account's yet (verification): never to a preference."""
        return [(EMAIL, event.email)]

    def _check_renders(self, channel: str, event: EmailEvent) -> None:
        if channel == EMAIL:
            render_email(event, public_url=self.public_url)
            return
        raise ValueError(f"unknown channel {channel!r}")

    async def _send(self, claimed: Claimed, event: EmailEvent) -> str:
        """One try over the delivery's channel; the provider's answer, or DeliveryFailed."""
        if claimed.channel == EMAIL:
            mail = render_email(event, public_url=self.public_url)
            if mail.to != claimed.recipient:
                mail = dataclasses.replace(mail, to=claimed.recipient)
            return await self.email.send(mail)
        raise DeliveryFailed(f"no channel {claimed.channel!r} on this node", permanent=True)

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
        try:
            event = msgspec.json.decode(claim.payload, type=EVENT_TYPES[claim.event_type])
            answer = clip_answer(await self._send(claim, event))
        except DeliveryFailed as error:
            answer, permanent = error.answer, error.permanent
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
        delay = self.backoff.delay(attempt)
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
