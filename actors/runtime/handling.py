"""How a shard finishes what it took: one message off the hot path, crashes parked per
key, dead letters, and batches. `ShardWorker` (shard.py) adds the lifecycle and the loops;
its module docstring tells how failures are isolated.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec
import structlog

from actors.runtime.actor import Actor
from actors.runtime.backoff import Backoff
from actors.runtime.context import bind_trace_id
from actors.runtime.errors import (
    DomainError,
    Failure,
    HandlerFailed,
    UnhandledMessage,
    refusal_for,
)
from actors.runtime.parked import WHOLE_SHARD, ParkedKeys
from actors.runtime.redaction import without_secrets
from actors.runtime.stats import ShardState, ShardStats
from transport import Envelope, Mailbox

if TYPE_CHECKING:
    from actors.runtime.group import ActorGroup

log = structlog.get_logger("actors.runtime")

# retries of parked messages spread out, so keys that failed together come back apart
RETRY_JITTER = 0.25


class Crash(Exception):
    """The actor instance crashed and must be replaced (carries the original error).

    `isolated`: the failed messages are parked, so the instance is rebuilt at once;
    otherwise (a failed start) the shard waits out the restart backoff first.
    """

    def __init__(self, error: BaseException, *, isolated: bool = False) -> None:
        super().__init__(repr(error))
        self.error = error
        self.isolated = isolated


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class ShardCore:
    """One shard's messages in hand, waiting and parked, and how each one is finished.

    Envelopes taken from the mailbox are never only in a local variable across an await:
    they are `current` (in hand), in `pending` (to handle before the mailbox: what a parked
    key released, or a failed batch to go through one by one), or parked, so a stop can
    account for every one of them (`unfinished`).
    """

    def __init__(self, group: ActorGroup, shard: int, mailbox: Mailbox) -> None:
        self.group = group
        self.shard = shard
        self.mailbox = mailbox
        self.state: ShardState = "starting"
        self.stats = ShardStats()
        self._busy = False
        self.pending: deque[Envelope] = deque()
        self.current: Envelope | None = None
        self._batch: list[Envelope] = []
        self._singles = 0  # how many at the head of `pending` skip batching (a failed batch)
        policy = group.policy
        self.parked = ParkedKeys(
            Backoff(policy.backoff_initial, policy.backoff_max, jitter=RETRY_JITTER),
            limit=group.mailbox_size,
        )
        # why storing a dead letter failed: said again when giving up is retried
        self._give_up_reasons: dict[str, BaseException] = {}

    @property
    def busy(self) -> bool:
        """In the middle of a message (the hot path marks that by `current` alone)."""
        return self._busy or self.current is not None

    @property
    def has_work(self) -> bool:
        """Something taken or waiting is not finished yet."""
        return self.busy or bool(self.pending) or self.parked.count > 0 or self.mailbox.depth() > 0

    def waiting(self) -> int:
        """Messages not yet handled: in the mailbox, in a batch in hand, taken and waiting,
        or parked."""
        return self.mailbox.depth() + len(self._batch) + len(self.pending) + self.parked.count

    def unfinished(self) -> list[Envelope]:
        """Every message taken from the mailbox and not finished, each once."""
        seen: set[int] = set()
        found: list[Envelope] = []
        in_hand = [self.current] if self.current is not None else []
        for envelope in (*in_hand, *self._batch, *self.pending, *self.parked.envelopes()):
            if id(envelope) not in seen:
                seen.add(id(envelope))
                found.append(envelope)
        return found

    def forget_unfinished(self) -> None:
        """The stopped system has kept (or left pending) what `unfinished` returned."""
        self.current = None
        self._batch = []
        self.pending.clear()
        self._singles = 0
        self.parked.clear()
        self._give_up_reasons.clear()

    async def _one(self, actor: Actor, envelope: Envelope) -> None:
        """Handle one message on the general path, unless its key is parked: then it waits."""
        if self.parked.queues and self.parked.hold(self._key_of(envelope), envelope):
            return
        self.current = envelope
        await self._process(actor, envelope)
        self.current = None

    def _key_of(self, envelope: Envelope) -> Hashable:
        """The message's key by its route; a message without one counts as the whole shard."""
        key_function = self.group.route.key
        if key_function is None:
            return WHOLE_SHARD
        try:
            key = key_function(envelope.body)
        except Exception:
            return WHOLE_SHARD
        return WHOLE_SHARD if key is None else key

    async def _process(self, actor: Actor, envelope: Envelope) -> None:
        """Handle one message on the general path: asks, expiry, missing handlers, retries."""
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
            # tried enough (before a node died handling it, or storing the dead letter
            # failed): give up now
            reason = self._give_up_reasons.pop(envelope.id, None) or HandlerFailed(
                f"delivered {envelope.attempt + 1} times without success"
            )
            await self._give_up(envelope, reason)
            return
        handler = actor.handler_for(type(body))
        if handler is None:
            error = UnhandledMessage(f"{self.group.name} has no handler for {type(body).__name__}")
            await self._give_up(envelope, error)
            return
        started = time.perf_counter()
        try:
            result = await handler(body)
        except DomainError as error:
            result = self._refused(envelope, error)
        except Exception as error:
            refusal = refusal_for(error, asking=envelope.kind == "ask")
            if refusal is None:
                await self._crashed(envelope, error)
            result = self._refused(envelope, refusal, cause=error)
        if envelope.kind == "ask":
            self.group.system.reply(envelope, result)
        self.stats.record(time.perf_counter() - started)
        self.stats.handled += 1
        self._finish(envelope)

    def _finish(self, envelope: Envelope) -> None:
        """Done for good: ack it, and if it held its key parked, let the key's queue run."""
        self.mailbox.ack(envelope)
        if self.parked.queues:
            key = self._key_of(envelope)
            waiting = self.parked.release(key, envelope)
            if waiting is not None:
                self.pending.extend(waiting)
                log.info(
                    "parked_key_released",
                    actor=self.group.name,
                    shard=self.shard,
                    message_id=envelope.id,
                    attempts=envelope.attempt,
                    waiting=len(waiting),
                )

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
        """Count the failure; park the message's key for a retry after a backoff, or
        dead-letter it on its last attempt; then have the instance rebuilt."""
        self._note_failure(error)
        failed = msgspec.structs.replace(envelope, attempt=envelope.attempt + 1)
        if failed.attempt >= self.group.max_attempts:
            await self._give_up(failed, error)
        else:
            self._park(failed)
        self.current = None
        raise Crash(error, isolated=True) from error

    def _park(self, failed: Envelope) -> None:
        delay = self.parked.park(self._key_of(failed), failed, time.monotonic())
        log.warning(
            "message_parked",
            actor=self.group.name,
            shard=self.shard,
            message=type(failed.body).__name__,
            message_id=failed.id,
            attempt=failed.attempt,
            retry_in_s=round(delay, 3),
        )

    async def _give_up(self, envelope: Envelope, error: BaseException) -> None:
        """Dead-letter the message and finish it; if the store fails, it stays parked and
        giving up is tried again after a backoff: never lost."""
        try:
            await self._dead_letter(envelope, error)
        except Exception as store_error:
            log.error(
                "dead_letter_store_failed", actor=self.group.name, error=describe(store_error)
            )
            self._give_up_reasons[envelope.id] = error
            self._park(envelope)
            return
        self._finish(envelope)

    async def _dead_letter(self, envelope: Envelope, error: BaseException) -> None:
        """Move the message to the dead letters and answer its asker."""
        letter = await self.group.system.dead_letter(envelope, describe(error))
        # the transport's copy gets the same redactions as the stored letter
        self.mailbox.dead_lettered(
            without_secrets(envelope)[0] if letter.envelope is None else envelope,
            describe(error),
        )
        self.stats.dead_lettered += 1
        if envelope.kind == "ask":
            reason = error if isinstance(error, DomainError) else HandlerFailed(describe(error))
            self.group.system.reply(envelope, Failure.of(reason))

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

    # ── batches ──────────────────────────────────────────────────────────────────────

    def _gather(self, first: Envelope, size: int) -> list[Envelope]:
        """`first` and what waits behind it, up to `size`; parked keys' messages wait."""
        batch: list[Envelope] = []
        parked = self.parked
        candidate: Envelope | None = first
        while candidate is not None:
            if not (parked.queues and parked.hold(self._key_of(candidate), candidate)):
                batch.append(candidate)
                if len(batch) >= size:
                    break
            candidate = self.pending.popleft() if self.pending else self.mailbox.get_nowait()
        return batch

    async def _take_batch(self, actor: Actor, first: Envelope) -> None:
        """Hand `first` and what waits behind it (up to batch_size) to the actor's
        `handle_envelopes` (by default its `handle_batch`, with the bodies)."""
        taken = self._gather(first, type(actor).batch_size)
        now = time.time()
        batch: list[Envelope] = []
        for envelope in taken:
            if envelope.kind == "ask" and envelope.deadline is not None and envelope.deadline < now:
                self.stats.expired += 1
                self.mailbox.ack(envelope)
            else:
                batch.append(envelope)
        if not batch:
            return
        # several messages in hand: no single one to dedupe by (`handle_envelopes` marks
        # each id itself)
        actor.envelope = None
        # busy until the replies are sent too: a stop meanwhile must not dead-letter
        # messages that were already handled
        self._busy = True
        self._batch = batch
        started = time.perf_counter()
        try:
            try:
                results = await actor.handle_envelopes(batch)
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"handle_batch returned {len(results)} results for {len(batch)}"
                    )
            except Exception as error:
                # the actor's state may be half-changed: a fresh instance goes one by one,
                # and a poison message among them parks only its own key
                self._note_failure(error)
                self.pending.extendleft(reversed(batch))
                self._singles += len(batch)
                self._batch = []
                raise Crash(error, isolated=True) from error
            self._settle_batch(batch, results, time.perf_counter() - started)
            self._batch = []
        finally:
            self._busy = False

    def _settle_batch(self, batch: list[Envelope], results: Sequence[Any], elapsed: float) -> None:
        system = self.group.system
        for envelope, result in zip(batch, results, strict=True):
            if isinstance(result, DomainError):
                self.stats.rejected += 1
                result = Failure.of(result)
            if envelope.kind == "ask":
                system.reply(envelope, result)
            self.stats.record(elapsed / len(batch))
            self.mailbox.ack(envelope)
        self.stats.handled += len(batch)
