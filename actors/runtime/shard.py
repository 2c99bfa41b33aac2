"""One shard's worker: takes messages from its mailbox in order and runs its actor."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec
import structlog

from actors.runtime.actor import Actor
from actors.runtime.context import bind_trace_id, trace_id_var
from actors.runtime.errors import (
    DomainError,
    Failure,
    HandlerFailed,
    UnhandledMessage,
    refusal_for,
)
from actors.runtime.redaction import without_secrets
from actors.runtime.stats import ShardState, ShardStats
from actors.runtime.supervision import RestartWindow
from transport import Envelope, Mailbox, MailboxClosed

if TYPE_CHECKING:
    from actors.runtime.group import ActorGroup

log = structlog.get_logger("actors.runtime")


class _Crash(Exception):
    """The actor instance crashed and must be replaced (carries the original error)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class ShardWorker:
    """Runs one shard: one message at a time, restarts on crash, retries then dead-letters.

    Envelopes taken from the mailbox wait in `pending` until they are finished, so a crash
    retries the same message first (per-key order holds) and a stop can account for it.
    """

    def __init__(
        self, group: ActorGroup, shard: int, mailbox: Mailbox, factory: Callable[[], Actor]
    ) -> None:
        self.group = group
        self.shard = shard
        self.mailbox = mailbox
        self.state: ShardState = "starting"
        self.stats = ShardStats()
        self._busy = False
        self.pending: deque[Envelope] = deque()
        self.current: Envelope | None = None
        self._factory = factory
        self._actor: Actor | None = None
        self._window = RestartWindow(group.policy)
        self._stop_requested = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stop_requested = False
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"actor:{self.group.name}/{self.shard}"
        )

    @property
    def busy(self) -> bool:
        """In the middle of a message (the hot path marks that by `current` alone)."""
        return self._busy or self.current is not None

    def request_stop(self) -> None:
        """Stop after the message in hand; an idle worker stops at once."""
        self._stop_requested = True
        if self._task is not None and not self.busy:
            self._task.cancel()

    def cancel(self) -> None:
        """Stop now, even mid-message (the message stays in `pending`)."""
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
                    await self._loop()
                    return
                except _Crash as crash:
                    await self._stop_actor()
                    delay = self._window.next_delay()
                    if delay is None:
                        self.state = "escalated"
                        self.group.child_escalated(self, crash.error)
                        return
                    self.stats.restarts += 1
                    self.state = "restarting"
                    log.warning(
                        "actor_restarting",
                        actor=self.group.name,
                        shard=self.shard,
                        delay_s=round(delay, 3),
                        error=describe(crash.error),
                    )
                    await asyncio.sleep(delay)
        except (MailboxClosed, asyncio.CancelledError):
            pass
        finally:
            await self._stop_actor()
            if self.state != "escalated" and self.state != "failed":
                self.state = "stopped"

    async def _start_actor(self) -> None:
        actor = self._factory()
        actor.bind(name=self.group.name, shard=self.shard, system=self.group.system)
        try:
            await actor.on_start()
        except Exception as error:
            self._note_failure(error)
            raise _Crash(error) from error
        self._actor = actor

    async def _stop_actor(self) -> None:
        actor, self._actor = self._actor, None
        if actor is None:
            return
        try:
            await asyncio.shield(actor.on_stop())
        except Exception as error:
            log.warning("actor_on_stop_failed", actor=self.group.name, error=describe(error))
        await asyncio.shield(actor.cancel_jobs())

    async def _loop(self) -> None:
        mailbox = self.mailbox
        actor = self._actor
        assert actor is not None
        batching = type(actor).batch_size > 1
        pending = self.pending
        stats = self.stats
        clock = time.perf_counter
        dispatch = actor.dispatch
        bind = trace_id_var.set
        system = self.group.system
        ack = mailbox.ack
        while not self._stop_requested:
            if pending:
                # a retry after a crash, or what a failed batch left: one by one, in order
                self._busy = True
                try:
                    await self._process(actor, pending[0])
                finally:
                    self._busy = False
                continue
            envelope = mailbox.get_nowait()
            if envelope is None:
                envelope = await mailbox.get()
            handler = dispatch.get(type(envelope.body))
            kind = envelope.kind
            if batching or handler is None or kind == "reply" or envelope.attempt:
                pending.append(envelope)
                if batching:
                    await self._take_batch(actor)
                    continue
                self._busy = True
                try:
                    await self._process(actor, envelope)
                finally:
                    self._busy = False
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
                    pending.append(envelope)
                    self.current = None
                    await self._crashed(envelope, error)
                result = self._refused(envelope, refusal, cause=error)
            if asking:
                system.reply(envelope, result)
            if timed:
                stats.record(clock() - started)
            stats.handled += 1
            ack(envelope)
            self.current = None

    async def _process(self, actor: Actor, envelope: Envelope) -> None:
        """Handle one message on the general path: asks, expiry, missing handlers."""
        bind_trace_id(envelope.trace_id)
        actor.envelope = envelope
        body = envelope.body
        deadline = envelope.deadline
        if envelope.kind == "ask" and deadline is not None and deadline < time.time():
            # the asker has given up; doing the work now would be a surprise to it
            self.stats.expired += 1
            self._finish(envelope)
            return
        if envelope.attempt >= self.group.max_attempts:
            # delivered again after crashes elsewhere (a node died handling it): give up now
            await self._dead_letter(
                envelope, HandlerFailed(f"delivered {envelope.attempt + 1} times without success")
            )
            return
        handler = actor.handler_for(type(body))
        if handler is None:
            error = UnhandledMessage(f"{self.group.name} has no handler for {type(body).__name__}")
            await self._dead_letter(envelope, error)
            return
        started = time.perf_counter()
        try:
            result = await handler(body)
        except DomainError as error:
            refused = self._refused(envelope, error)
            if envelope.kind == "ask":
                self.group.system.reply(envelope, refused)
        except Exception as error:
            refusal = refusal_for(error, asking=envelope.kind == "ask")
            if refusal is None:
                await self._crashed(envelope, error)
            else:
                refused = self._refused(envelope, refusal, cause=error)
                if envelope.kind == "ask":
                    self.group.system.reply(envelope, refused)
        else:
            if envelope.kind == "ask":
                self.group.system.reply(envelope, result)
        self.stats.record(time.perf_counter() - started)
        self.stats.handled += 1
        self._finish(envelope)

    def _finish(self, envelope: Envelope) -> None:
        self.mailbox.ack(envelope)
        if self.pending and self.pending[0] is envelope:
            self.pending.popleft()

    def _refused(
        self, envelope: Envelope, error: DomainError, cause: Exception | None = None
    ) -> Failure:
        """Count and log a refusal where it happens (with the message's trace id, so a
        request can be followed to the node that said no); the reply that carries it."""
        self.stats.rejected += 1
        log.info(
            "actor_refused",
            actor=self.group.name,
            shard=self.shard,
            message=type(envelope.body).__name__,
            code=error.code,
            category=error.category,
            cause=None if cause is None else describe(cause),
        )
        return Failure.of(error)

    async def _crashed(self, envelope: Envelope, error: Exception) -> NoReturn:
        """Count the failure, retry later or dead-letter, and make the worker restart."""
        self._note_failure(error)
        attempt = envelope.attempt + 1
        if attempt >= self.group.max_attempts:
            await self._dead_letter(msgspec.structs.replace(envelope, attempt=attempt), error)
        else:
            self.pending[0] = msgspec.structs.replace(envelope, attempt=attempt)
        raise _Crash(error) from error

    async def _dead_letter(self, envelope: Envelope, error: BaseException) -> None:
        """Move the message to the dead letters; if that fails it stays pending, never lost."""
        try:
            letter = await self.group.system.dead_letter(envelope, describe(error))
            # the transport's copy gets the same redactions as the stored letter
            self.mailbox.dead_lettered(
                without_secrets(envelope)[0] if letter.envelope is None else envelope,
                describe(error),
            )
        except Exception as store_error:
            log.error(
                "dead_letter_store_failed", actor=self.group.name, error=describe(store_error)
            )
            self.pending[0] = envelope
            raise _Crash(store_error) from store_error
        self.stats.dead_lettered += 1
        if envelope.kind == "ask":
            reason = error if isinstance(error, DomainError) else HandlerFailed(describe(error))
            self.group.system.reply(envelope, Failure.of(reason))
        self._finish(self.pending[0])

    def _note_failure(self, error: BaseException) -> None:
        self.stats.failed += 1
        self.stats.last_error = describe(error)
        log.error(
            "actor_crashed",
            actor=self.group.name,
            shard=self.shard,
            error=self.stats.last_error,
            exc_info=error,
        )

    async def _take_batch(self, actor: Actor) -> None:
        """Fill `pending` with what waits, up to batch_size, and hand it to handle_batch."""
        pending = self.pending
        while len(pending) < type(actor).batch_size:
            envelope = self.mailbox.get_nowait()
            if envelope is None:
                break
            pending.append(envelope)
        now = time.time()
        batch = [e for e in pending if e.kind != "ask" or e.deadline is None or e.deadline >= now]
        self.stats.expired += len(pending) - len(batch)
        actor.envelope = None  # several messages in hand: no single one to dedupe by
        # busy until the replies are sent too: a stop meanwhile must not dead-letter
        # messages that were already handled
        self._busy = True
        started = time.perf_counter()
        try:
            try:
                results = await actor.handle_batch([e.body for e in batch])
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"handle_batch returned {len(results)} results for {len(batch)}"
                    )
            except Exception as error:
                # the actor's state may be half-changed: restart it, then go one by one
                self._note_failure(error)
                raise _Crash(error) from error
            await self._settle_batch(batch, results, time.perf_counter() - started)
        finally:
            self._busy = False

    async def _settle_batch(
        self, batch: list[Envelope], results: Sequence[Any], elapsed: float
    ) -> None:
        system = self.group.system
        for envelope, result in zip(batch, results, strict=True):
            if isinstance(result, DomainError):
                self.stats.rejected += 1
                result = Failure.of(result)
            if envelope.kind == "ask":
                system.reply(envelope, result)
            self.stats.record(elapsed / len(batch))
        self.stats.handled += len(batch)
        for envelope in list(self.pending):
            self.mailbox.ack(envelope)
        self.pending.clear()
