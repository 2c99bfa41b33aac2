"""Deliveries and their tries: a feature part of the Notifications actor.

For each event it handles, in one database transaction with the inbox mark, it records
one delivery per (event, user, channel); after the commit it makes the first try. A run of
events the shard took in one batch is recorded in one transaction (`record_run`), each
event's inbox mark by its envelope id, with the recipients' names, switches and devices
read once for the run. An
in-app notice needs no try: its delivery is stored sent, with its feed item and its one
attempt row, in that same transaction (issue 20: no claim, store and finish of its own),
and pushed live after the commit. A try that fails is retried by a runtime timer after an
exponential backoff with jitter, up to `max_attempts` tries; then the delivery is marked
failed (the notifications' dead letter) and logged. Every try leaves an attempt row with
its outcome and the provider's answer.

Delivery to the outside world is at least once: a crash between the provider's "accepted"
and the attempt row makes one more try. Everything else happens once: a redelivered event
finds its inbox mark (and its delivery key), a duplicate timer finds its try claimed.
A provider's own wait (Telegram's 429 `retry_after`) is honoured.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
import structlog

from actors.notifications import batching, store
from actors.notifications.channels import DeliveryFailed, clip_answer
from actors.notifications.feed import Feed
from actors.notifications.messages import (
    AttemptView,
    DeliveryList,
    DeliveryView,
    ListDeliveries,
    RetryNotificationDelivery,
)
from actors.notifications.notices import EVENTS, Notice, notices_for
from actors.notifications.routing import Routing
from actors.notifications.store import Claimed, NotDue, Outcome
from actors.runtime import Backoff, Context, Envelope, Message, rfc3339

log = structlog.get_logger("actors.notifications")

# Six tries spread over about half an hour: 60 s, 2, 4, 8 and 16 min between them (less
# jitter, so deliveries that failed together, a mail server outage, come back apart).
DELIVERY_BACKOFF = Backoff(60.0, 3600.0, jitter=0.5)
DEFAULT_MAX_ATTEMPTS = 6
RENDER_CACHE = 64  # events whose notices stay rendered (the oldest go first)
# notices (in-app items and deliveries) one transaction writes at most: a run of big
# groups' events is written in pieces
NOTICES_PER_WRITE = 5_000
CONCURRENT_TRIES = 4  # first tries a shard makes at once (each holds a database connection)
STOP_GRACE_SECONDS = 5.0
# The events this actor decodes back from a delivery's payload, by message type name.
EVENT_TYPES: dict[str, type[Message]] = {t.__name__: t for t in EVENTS}


class Deliveries:
    """Records an event's deliveries, makes their tries and retries, and lists them.

    `context` is the Notifications shard's (the delivery tables, its clock, transactions,
    timers and the envelope in hand); `routing` picks targets and sends; `feed` stores the
    in-app notices; `public_url` starts the links in notices; `backoff` spaces the tries,
    at most `max_attempts` of them. `claim_seconds` is how long a try may take before it
    counts as lost and is made again; keep it above the channel's timeout.
    """

    def __init__(
        self,
        context: Context,
        *,
        routing: Routing,
        feed: Feed,
        public_url: str,
        backoff: Backoff,
        max_attempts: int,
        claim_seconds: float,
    ) -> None:
        self._context = context
        self._pool = context.pool
        self._routing = routing
        self._feed = feed
        self._public_url = public_url
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._claim_seconds = claim_seconds
        self._renders: dict[tuple[str, str], tuple[Message, dict[str, Notice]]] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._tries = asyncio.Semaphore(CONCURRENT_TRIES)

    async def resume(self, *, shards: int) -> None:
        """Re-arm every pending delivery this shard owns (of `shards`, its type's count).

        In-memory timers die with the node (and a crash may leave a try claimed but not
        finished). A copy of a timer that survived (Redis keeps timers) finds its try
        claimed and is ignored.
        """
        context = self._context
        pending = await store.pending(self._pool, context.shard, shards)
        for delivery_id, attempts, wait in pending:
            context.schedule(
                wait, RetryNotificationDelivery(delivery_id=delivery_id, attempts=attempts)
            )
        if pending:
            log.info("notifications_resumed", shard=context.shard, pending=len(pending))

    async def record(self, event: Message) -> None:
        """Record the deliveries of the event in hand (a run of one) and make their first
        tries."""
        envelope = self._context.envelope
        assert envelope is not None, "a handler always has its envelope"
        await self.record_run([envelope])

    async def record_run(self, envelopes: Sequence[Envelope]) -> None:
        """Record the deliveries of a run of events (a batch's consecutive events) with
        their inbox marks, in ONE transaction per piece of at most `NOTICES_PER_WRITE`
        notices; then push the in-app ones live and make the other channels' first tries.

        The names (auth's GetNames), switches and Web Push devices of every recipient are
        read once for the whole run. Idempotent by envelope id: an event whose id the
        inbox holds (a redelivery, in this batch or after a crash) stores nothing again;
        a delivery of it that was committed but never tried is tried now (the claim lets
        only an untried delivery through, so this never makes a second first try).
        """
        firsts = batching.first_of_each([envelope.id for envelope in envelopes])
        envelopes = [e for e, first in zip(envelopes, firsts, strict=True) if first]
        # render now: an event no template can render fails here, before anything is stored
        rendered = await self._routing.named_all(
            [notices_for(e.body, public_url=self._public_url) for e in envelopes]
        )
        reach = await self._routing.reach([n for notices in rendered for n in notices])
        laid: list[batching.Laid] = []
        at = 0
        for notices in rendered:
            laid.append(batching.lay_out(notices, reach[at : at + len(notices)], _new_id))
            at += len(notices)
        sizes = [len(one.feed) + len(one.targets) for one in laid]
        for piece in batching.pieces(sizes, NOTICES_PER_WRITE):
            await self._write([envelopes[i] for i in piece], [laid[i] for i in piece])

    async def _write(self, envelopes: Sequence[Envelope], laid: Sequence[batching.Laid]) -> None:
        """One transaction: the events' inbox marks, in-app notices and deliveries."""
        context = self._context
        rows: list[store.NewDelivery] = []
        stored: list[Any] = []
        written: set[str] = set()
        async with context.transaction(dedupe=False) as tx:
            fresh = await tx.mark_handled([envelope.id for envelope in envelopes])
            items: list[tuple[str, str, store.FeedItem]] = []
            for envelope, one in zip(envelopes, laid, strict=True):
                if envelope.id not in fresh:
                    continue
                event_type = type(envelope.body).__name__
                items.extend((envelope.id, event_type, item) for item in one.feed)
                if one.targets:
                    payload = msgspec.json.encode(envelope.body).decode()
                    rows.extend(
                        store.NewDelivery(
                            id=_new_id(),
                            event_id=envelope.id,
                            event_type=event_type,
                            user_id=target.user_id,
                            channel=target.channel,
                            recipient=target.recipient,
                            payload=payload,
                        )
                        for target in one.targets
                    )
            # the in-app notices are sent by this commit: no try of their own
            stored = await store.add_sent_items(
                tx, shard=context.shard, answer=self._feed.answer, items=items, now=context.now()
            )
            written = await store.add_deliveries(tx, shard=context.shard, rows=rows)
        await self._feed.announce(stored)
        ids = [row.id for row in rows if row.id in written]
        again = [
            envelope.id
            for envelope, one in zip(envelopes, laid, strict=True)
            if one.targets and (envelope.id not in fresh or len(ids) < len(rows))
        ]
        if again:
            # Redelivered events: their deliveries exist; one that was committed but never
            # tried (a crash right after the commit) is tried now.
            log.info("notification_events_redelivered", event_ids=again)
            found = await store.find_deliveries(self._pool, again)
            for envelope, one in zip(envelopes, laid, strict=True):
                for target in one.targets:
                    known = found.get((envelope.id, target.user_id, target.channel))
                    if known is not None and known not in ids:
                        ids.append(known)
        for delivery_id in ids:
            self._try_soon(delivery_id)

    async def retry(self, message: RetryNotificationDelivery) -> None:
        await self._attempt(message.delivery_id, attempts=message.attempts)

    async def stop(self) -> None:
        """Let tries in hand finish (a send cut in half would be sent again), then stop."""
        if not self._in_flight:
            return
        _done, left = await asyncio.wait(set(self._in_flight), timeout=STOP_GRACE_SECONDS)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    async def listing(self, message: ListDeliveries) -> DeliveryList:
        """The newest deliveries with their tries (the admin view)."""
        deliveries = await store.list_deliveries(
            self._pool, status=message.status, user_id=message.user_id, limit=message.limit
        )
        views = []
        for delivery in deliveries:
            tries = await store.attempts(self._pool, delivery.id)
            views.append(_delivery_view(delivery, tries))
        return DeliveryList(items=views)

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

    async def _rendered(self, claim: Claimed) -> tuple[Message, dict[str, Notice]]:
        """The event of a delivery and its notices by user, decoded and rendered once for
        all of the event's deliveries (a group's expense makes one per member)."""
        key = (claim.event_type, claim.payload)
        cached = self._renders.get(key)
        if cached is None:
            event = msgspec.json.decode(claim.payload, type=EVENT_TYPES[claim.event_type])
            rendered = await self._routing.named(notices_for(event, public_url=self._public_url))
            notices = {n.user_id: n for n in rendered}
            cached = self._renders[key] = (event, notices)
            while len(self._renders) > RENDER_CACHE:
                self._renders.pop(next(iter(self._renders)))
        return cached

    async def _attempt(self, delivery_id: str, *, attempts: int) -> None:
        """Make try number `attempts + 1` of a delivery, if it is still due for it."""
        claim = await store.claim(self._pool, delivery_id, attempts, self._claim_seconds)
        if claim is None:
            log.debug("notification_try_skipped", delivery_id=delivery_id, attempts=attempts)
            return
        if isinstance(claim, NotDue):
            # an early timer (clocks of node and database differ): come back when due
            message = RetryNotificationDelivery(delivery_id=delivery_id, attempts=attempts)
            self._context.schedule(claim.seconds, message)
            return
        attempt = claim.attempt
        # If this try never records an outcome (the node dies mid-send, the database is
        # down afterwards), this timer makes the next try once the claim's lease is over.
        self._context.schedule(
            self._claim_seconds,
            RetryNotificationDelivery(delivery_id=delivery_id, attempts=attempt),
        )
        fields = {
            "delivery_id": delivery_id,
            "user_id": claim.user_id,
            "event_type": claim.event_type,
            "channel": claim.channel,
            "attempt": attempt,
        }
        started = self._context.now()
        permanent = False
        retry_after: float | None = None
        try:
            event, notices = await self._rendered(claim)
            answer = clip_answer(await self._routing.send(claim, event, notices))
        except DeliveryFailed as error:
            answer, permanent, retry_after = error.answer, error.permanent, error.retry_after
        except Exception as error:
            # A bug or an error no channel anticipated: counted as a failed try, so the
            # delivery is retried and finally marked failed, never left hanging.
            answer = clip_answer(f"{type(error).__name__}: {error}")
            # no traceback: a console renderer may print locals, and the event holds a token
            log.error("notification_try_crashed", error=answer, **fields)
        else:
            await self._finish(claim, "sent", answer, started)
            log.info("notification_sent", answer=answer, **fields)
            return
        if permanent or attempt >= self._max_attempts:
            await self._finish(claim, "failed", answer, started)
            log.error(
                "notification_failed",
                answer=answer,
                permanent=permanent,
                max_attempts=self._max_attempts,
                **fields,
            )
            return
        # the provider's own wait is an instruction, not a hint
        delay = retry_after if retry_after is not None else self._backoff.delay(attempt)
        if await self._finish(claim, "retry", answer, started, retry_in=delay):
            self._context.schedule(
                delay, RetryNotificationDelivery(delivery_id=delivery_id, attempts=attempt)
            )
        log.warning(
            "notification_retry_scheduled", answer=answer, retry_in_s=round(delay, 3), **fields
        )

    async def _finish(
        self,
        claim: Claimed,
        outcome: Outcome,
        answer: str,
        started: datetime,
        retry_in: float = 0.0,
    ) -> bool:
        """Record the try's outcome and move the delivery on, together; False when the
        delivery had moved on already (a stale try)."""
        async with self._pool.acquire() as connection, connection.transaction():
            moved: bool = await store.finish_attempt(
                connection,
                claim.id,
                claim.attempt,
                outcome=outcome,
                answer=answer,
                started_at=started,
                retry_in=retry_in,
            )
        return moved


def _new_id() -> str:
    """A delivery's id (an in-app one's is its feed item's too)."""
    return uuid.uuid4().hex


def _delivery_view(delivery: store.Delivery, tries: list[store.Attempt]) -> DeliveryView:
    return DeliveryView(
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
