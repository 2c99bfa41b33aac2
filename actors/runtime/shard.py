"""One shard's worker: takes messages from its mailbox in order and runs its actor.

Failures are isolated per key (as Akka restarts only the failing entity, and a Redis
consumer group sets a poison entry aside). A message whose handler crashes parks its key
(the route's key function; a message without a key parks the shard's keyless messages as
one key): it is tried again after a backoff (`Backoff` from the restart policy's figures,
with jitter) on its own schedule, up to `max_attempts`, then dead-lettered with its attempt
count; the key's later messages wait behind it in order and run once it is done. Every
other key keeps flowing meanwhile, and a transport entry is acked only when its message is
finally handled or dead-lettered.

A crash still replaces the actor instance (its state may be half-changed; what must
survive is rebuilt in `on_start`), but at once, between two messages: the backoff delays
the poisoned key's retries, never the shard, so other keys wait only for on_stop and
on_start. Restarts count toward the policy's intensity (R restarts in T seconds, then
escalation) only while the shard makes no progress: a message handled since the last crash
starts the count afresh. So a poison message now and then never escalates, while a shard
failing at everything (a start that fails, every message crashing) still does, and an
`on_start` that fails is restarted with the policy's backoff as before.

A batch whose `handle_batch` raises is handled again one by one by a fresh instance; a
poison message among them parks its own key, and later batches of other keys go on. Held
messages are bounded by the mailbox size: past it the shard takes no more until a parked
key moves on (backpressure, as a full mailbox). On Redis, held entries stay pending in the
stream: a node that dies or loses the shard leaves them to the next owner, which reclaims
them in order; the old node drops what it held instead of handling it twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from actors.runtime.actor import Actor
from actors.runtime.context import trace_id_var
from actors.runtime.errors import DomainError, refusal_for
from actors.runtime.handling import Crash, ShardCore, describe
from actors.runtime.supervision import RestartWindow
from transport import Envelope, Mailbox, MailboxClosed

if TYPE_CHECKING:
    from actors.runtime.group import ActorGroup

__all__ = ["ShardWorker", "describe"]

log = structlog.get_logger("actors.runtime")


class ShardWorker(ShardCore):
    """Runs one shard: one message at a time, crashes isolated per key, restarts, escalation."""

    def __init__(
        self, group: ActorGroup, shard: int, mailbox: Mailbox, factory: Callable[[], Actor]
    ) -> None:
        super().__init__(group, shard, mailbox)
        self._factory = factory
        self._actor: Actor | None = None
        self._window = RestartWindow(group.policy)
        self._handled_at_crash = 0
        self._rebuild_started: float | None = None
        self._stop_requested = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stop_requested = False
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"actor:{self.group.name}/{self.shard}"
        )

    def request_stop(self) -> None:
        """Stop after the message in hand; an idle worker stops at once."""
        self._stop_requested = True
        if self._task is not None and not self.busy:
            self._task.cancel()

    def cancel(self) -> None:
        """Stop now, even mid-message (the message stays in hand, see `unfinished`)."""
        if self._task is not None:
            self._task.cancel()

    async def wait_stopped(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def stopped(self) -> bool:
        return self._task is None or self._task.done()

    async def _run(self) -> None:
        try:
            while not self._stop_requested:
                try:
                    await self._start_actor()
                    self.state = "running"
                    self._note_rebuilt()
                    await self._loop()
                    return
                except Crash as crash:
                    if not await self._restart(crash):
                        return
        except (MailboxClosed, asyncio.CancelledError):
            pass
        finally:
            await self._stop_actor()
            if self.state != "escalated" and self.state != "failed":
                self.state = "stopped"

    async def _restart(self, crash: Crash) -> bool:
        """Replace the crashed instance: at once after an isolated crash, after the backoff
        when the start itself failed; False when the intensity is exceeded (escalated)."""
        await self._stop_actor()
        delay = self._next_restart_delay()
        if delay is None:
            self.state = "escalated"
            self.group.child_escalated(self, crash.error)
            return False
        self.stats.restarts += 1
        self.state = "restarting"
        if crash.isolated:
            self._rebuild_started = time.perf_counter()
            return True
        log.warning(
            "actor_restarting",
            actor=self.group.name,
            shard=self.shard,
            delay_s=round(delay, 3),
            error=describe(crash.error),
        )
        await asyncio.sleep(delay)
        return True

    def _note_rebuilt(self) -> None:
        """Log how long the shard's other keys waited for a fresh instance."""
        if self._rebuild_started is None:
            return
        took = time.perf_counter() - self._rebuild_started
        self._rebuild_started = None
        log.info(
            "actor_rebuilt", actor=self.group.name, shard=self.shard, took_ms=round(took * 1000, 3)
        )

    def _next_restart_delay(self) -> float | None:
        handled = self.stats.handled
        if handled != self._handled_at_crash:
            # progress since the last crash: poison messages, not a broken shard
            self._handled_at_crash = handled
            self._window.reset()
        return self._window.next_delay()

    async def _start_actor(self) -> None:
        actor = self._factory()
        actor.bind(name=self.group.name, shard=self.shard, system=self.group.system)
        # on Redis a shard may move away and back under one instance: its hot state asks
        mailbox = self.mailbox
        actor.tenure = lambda: getattr(mailbox, "tenure", 0)
        try:
            await actor.on_start()
        except Exception as error:
            actor.release_residents()
            self._note_failure(error)
            raise Crash(error) from error
        self._actor = actor

    async def _stop_actor(self) -> None:
        actor, self._actor = self._actor, None
        if actor is None:
            return
        try:
            await asyncio.shield(actor.on_stop())
        except Exception as error:
            log.warning("actor_on_stop_failed", actor=self.group.name, error=describe(error))
        # its hot state goes with it: whoever owns the shard next loads afresh
        actor.release_residents()
        await asyncio.shield(actor.cancel_jobs())

    async def _loop(self) -> None:
        mailbox = self.mailbox
        actor = self._actor
        assert actor is not None
        batching = type(actor).batch_size > 1
        pending = self.pending
        parked = self.parked.queues
        stats = self.stats
        clock = time.perf_counter
        dispatch = actor.dispatch
        bind = trace_id_var.set
        system = self.group.system
        ack = mailbox.ack
        # a retry cut off by a stop is due again at once
        self.parked.wake_idle(time.monotonic())
        while not self._stop_requested:
            if pending or parked:
                # a key is parked, or taken messages wait: the careful path, one step
                await self._attend(actor, batching)
                continue
            envelope = mailbox.get_nowait()
            if envelope is None:
                envelope = await mailbox.get()
            if batching:
                await self._take_batch(actor, envelope)
                continue
            handler = dispatch.get(type(envelope.body))
            kind = envelope.kind
            if handler is None or kind == "reply" or envelope.attempt:
                await self._one(actor, envelope)
                continue
            asking = kind == "ask"
            if asking and envelope.deadline is not None and envelope.deadline < time.time():
                # the asker has given up; doing the work now would be a surprise to it
                stats.expired += 1
                ack(envelope)
                continue
            # the hot path, inlined: a tell or ask with a handler. `current` keeps the
            # message visible to stop() while it is in hand.
            self.current = actor.envelope = envelope
            bind(envelope.trace_id)
            # time one message in four: the percentiles stay honest, the clock calls cost less
            timed = not stats.handled & 3
            started = clock() if timed else 0.0
            try:
                result = await handler(envelope.body)
            except DomainError as error:
                result = self._refused(envelope, error)
            except Exception as error:
                refusal = refusal_for(error, asking=asking)
                if refusal is None:
                    await self._crashed(envelope, error)
                result = self._refused(envelope, refusal, cause=error)
            if asking:
                system.reply(envelope, result)
            if timed:
                stats.record(clock() - started)
            stats.handled += 1
            ack(envelope)
            self.current = None

    # ── the careful path: while keys are parked ─────────────────────────────────────────

    async def _attend(self, actor: Actor, batching: bool) -> None:
        """One step: a parked message whose retry is due, else the next message in order."""
        if self._moved():
            return
        key = self.parked.due(time.monotonic())
        if key is not None:
            retry = self.current = self.parked.take_head(key)
            await self._process(actor, retry)
            self.current = None
            return
        if self._singles:
            # what a failed batch left, one by one through the handlers
            self._singles -= 1
            await self._one(actor, self.pending.popleft())
            return
        envelope = await self._next()
        if envelope is None:
            return
        if batching:
            await self._take_batch(actor, envelope)
        else:
            await self._one(actor, envelope)

    def _moved(self) -> bool:
        """The shard was taken from this node (on Redis: its lease lost or handed back).

        What it holds is still pending in the stream, and the next owner reclaims it in
        order: drop it here, unacked, rather than handle it twice.
        """
        if getattr(self.mailbox, "owned", True):
            return False
        dropped = len(self.unfinished())
        self.forget_unfinished()
        log.warning(
            "shard_moved_held_dropped", actor=self.group.name, shard=self.shard, dropped=dropped
        )
        return True

    async def _next(self) -> Envelope | None:
        """What comes next: a waiting taken message, else the mailbox's next one; None when
        a parked message's retry falls due first."""
        if self.pending:
            return self.pending.popleft()
        due = self.parked.next_due()
        if self.parked.full and due is not None:
            # as many held as a mailbox holds: take no more until a parked key moves on
            await asyncio.sleep(max(due - time.monotonic(), 0.0))
            return None
        envelope = self.mailbox.get_nowait()
        if envelope is not None:
            return envelope
        if due is None:
            return await self.mailbox.get()
        try:
            # a time-out cancels the get before it takes anything: nothing is lost
            async with asyncio.timeout(max(due - time.monotonic(), 0.0)):
                return await self.mailbox.get()
        except TimeoutError:
            return None
