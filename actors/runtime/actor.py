"""The Actor base class: one handler per message type, lifecycle hooks, tell, ask, timers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import asyncpg
import structlog

from actors.runtime.clock import Clock, at, wall_clock
from actors.runtime.context import bind_trace_id
from actors.runtime.errors import DomainError, UnhandledMessage, refusal_for
from actors.runtime.idempotency import RETENTION_MIN, KeyTable
from actors.runtime.outbox import Transaction
from actors.runtime.parts import Context
from actors.runtime.resident import DEFAULT_IDLE_SECONDS, Resident, deep_size
from transport import Envelope, Message, Timer

if TYPE_CHECKING:
    from actors.runtime.system import ActorRef, ActorSystem

log = structlog.get_logger("actors.runtime")

Handler = Callable[[Any, Any], Awaitable[Any]]
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


def handles(*message_types: type[Message]) -> Callable[[H], H]:
    """Mark an async method as the handler of these message types."""

    def mark(method: H) -> H:
        method.__splitgo_handles__ = message_types  # type: ignore[attr-defined]
        return method

    return mark


class Actor:
    """Base of every actor: subclass it and mark one handler per message type with `@handles`.

    One message is handled at a time per shard, so an actor's own attributes need no locks.
    A handler's return value is the reply to an `ask` (a registered Message, or None).
    State that must survive a crash is rebuilt in `on_start`, which runs on every (re)start.
    """

    handlers: ClassVar[dict[type[Message], str]] = {}
    # How many waiting messages `handle_batch` may take at once; 1 means no batching.
    batch_size: ClassVar[int] = 1
    # the actor's own idempotency keys (`<actor>_idempotency`), if it takes any
    idempotency_keys: ClassVar[KeyTable | None] = None

    name: str
    shard: int
    system: ActorSystem
    # the envelope of the message being handled (its id keys the inbox); None in a batch
    # (`handle_single` sets it for the one message it runs)
    envelope: Envelope | None = None
    # the message whose deduplicated transaction committed (one such transaction per message)
    _inbox_envelope: Envelope | None = None
    # times this node acquired the shard (set by the runtime; see Actor.resident)
    tenure: Callable[[], int] = staticmethod(lambda: 0)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[type[Message], str] = {}
        for base in reversed(cls.__mro__):
            for attribute, value in vars(base).items():
                for message_type in getattr(value, "__splitgo_handles__", ()):
                    found[message_type] = attribute
        cls.handlers = found

    @classmethod
    def message_types(cls) -> tuple[type[Message], ...]:
        return tuple(cls.handlers)

    def bind(self, *, name: str, shard: int, system: ActorSystem) -> None:
        """Called by the runtime before `on_start`."""
        self.name = name
        self.shard = shard
        self.system = system
        # message type -> bound handler; read directly on the runtime's hot path
        self.dispatch: dict[type, Callable[[Any], Awaitable[Any]]] = {
            message_type: getattr(self, attribute)
            for message_type, attribute in type(self).handlers.items()
        }

    def handler_for(self, message_type: type) -> Callable[[Any], Awaitable[Any]] | None:
        return self.dispatch.get(message_type)

    async def on_start(self) -> None:
        """Runs before the first message and after every restart."""

    async def on_stop(self) -> None:
        """Runs when the shard stops or before a restart; must not raise."""

    async def handle_batch(self, messages: Sequence[Message]) -> Sequence[Any]:
        """Handle several waiting messages at once (only used when `batch_size` > 1).

        Returns one result per message, in order: the reply, or a DomainError instance for
        a refusal. If it raises, the runtime restarts the actor and handles the messages one
        by one instead, so one poison message cannot sink the batch. Override it to do the
        batch's IO at once (one transaction for all); this default calls the handlers in turn.
        """
        results: list[Any] = []
        for message in messages:
            handler = self.handler_for(type(message))
            if handler is None:
                results.append(UnhandledMessage(f"no handler for {type(message).__name__}"))
                continue
            try:
                results.append(await handler(message))
            except DomainError as error:
                results.append(error)
        return results

    async def handle_envelopes(self, envelopes: Sequence[Envelope]) -> Sequence[Any]:
        """What the runtime calls with a batch: the messages in their envelopes (ids,
        trace ids), in mailbox order. This default hands the bodies to `handle_batch`.

        Override it when the batch must be idempotent by the runtime's own message ids:
        mark every id in the inbox in the batch's one transaction (`tx.mark_handled`) and
        do the work of the ids that were new. The contract is `handle_batch`'s: one result
        per envelope, and a batch that raises is handled again one by one by the handlers
        (each with its envelope in hand, so a deduplicated transaction finds the batch's
        inbox marks and does nothing twice). `handle_single` runs one of them by its
        handler, as the one-by-one path would.
        """
        return await self.handle_batch([envelope.body for envelope in envelopes])

    async def handle_single(self, envelope: Envelope) -> Any:
        """One message of a batch by its handler, with its envelope in hand (so the
        handler's `transaction()` deduplicates by its id); the reply, or the DomainError
        that refused it. A crash is raised: the batch goes one by one."""
        handler = self.handler_for(type(envelope.body))
        if handler is None:
            return UnhandledMessage(f"no handler for {type(envelope.body).__name__}")
        bind_trace_id(envelope.trace_id)
        self.envelope = envelope
        try:
            return await handler(envelope.body)
        except DomainError as error:
            refusal = error
        except Exception as error:
            found = refusal_for(error, asking=envelope.kind == "ask")
            if found is None:
                raise
            refusal = found
        finally:
            self.envelope = None
        # logged where it happens, as the one-by-one path does (with the trace id)
        log.info(
            "actor_refused",
            actor=self.name,
            shard=self.shard,
            message=type(envelope.body).__name__,
            code=refusal.code,
            category=refusal.category,
        )
        return refusal

    def ref(self, actor: str) -> ActorRef:
        return self.system.ref(actor)

    async def tell(self, actor: str, message: Message, *, key: object = None) -> None:
        await self.system.ref(actor).tell(message, key=key, sender=self.address)

    async def ask(
        self, actor: str, message: Message, *, key: object = None, timeout: float | None = None
    ) -> Any:
        return await self.system.ref(actor).ask(
            message, key=key, timeout=timeout, sender=self.address
        )

    def transaction(self, *, dedupe: bool = True) -> Transaction:
        """Commit a change and the messages it causes together, in one database transaction.

            async with self.transaction() as tx:
                if tx.duplicate:  # handled before (a redelivery): no second effect
                    return
                await tx.execute("UPDATE wallets SET balance = balance - $1 ...", amount)
                await tx.tell("notifications", WalletDebited(...), key=user_id)

        `tx.tell` messages are sent only after the commit, by the runtime's relay, and sent
        again until delivered; each keeps one envelope id, so a receiver using this same
        pattern applies it once. With `dedupe` (the default) the message in hand is recorded
        as handled; on a duplicate the transaction rolls back whatever it did. Use one such
        transaction per message, from the handler itself (not a task it starts). Pass
        `dedupe=False` outside a handler, for a second transaction, or in a batching actor.
        """
        return Transaction(self, dedupe=dedupe)

    def context(self, pool: asyncpg.Pool, clock: Clock = wall_clock) -> Context:
        """What this shard's feature parts use of it: see actors/runtime/parts.py."""
        return Context(pool=pool, clock=clock, shard_actor=self)

    def every(self, interval: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        """Run `job` every `interval` seconds beside the mailbox, until the actor stops.

        For upkeep (pruning, sweeps), not for state changes: the job runs concurrently with
        handlers. An error is logged and the next round still runs.
        """

        async def repeat() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await job()
                except Exception as error:
                    log.warning("periodic_job_failed", actor=self.name, job=name, error=repr(error))

        task = asyncio.get_running_loop().create_task(repeat(), name=f"{self.name}:{name}")
        self.__dict__.setdefault("_jobs", []).append(task)

    def prune_keys(
        self,
        pool: asyncpg.Pool,
        clock: Clock = wall_clock,
        *,
        retention: float = 48 * 3600.0,
        interval: float = 3600.0,
    ) -> None:
        """From shard 0 (the shards share the table), forget this actor's idempotency keys
        older than `retention` (never under the contract's 24 hours) every `interval`."""
        keys = self.idempotency_keys
        if keys is None or self.shard != 0 or interval <= 0:
            return
        kept = max(retention, RETENTION_MIN)

        async def prune() -> None:
            pruned = await keys.prune(pool, at(clock() - kept))
            if pruned:
                log.info("idempotency_keys_pruned", actor=self.name, rows=pruned)

        self.every(interval, prune, "idempotency_prune")

    async def cancel_jobs(self) -> None:
        """Called by the runtime when the actor stops: end what `every` started."""
        jobs: list[asyncio.Task[None]] = self.__dict__.pop("_jobs", [])
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    def schedule(self, delay: float, message: Message) -> Timer:
        """Deliver `message` to this same shard after `delay` seconds (cancelled on stop)."""
        return self.system.schedule_to_shard(self.name, self.shard, delay, message)

    def resident(
        self,
        name: str,
        *,
        size: Callable[[Any], int] = deep_size,
        idle: float = DEFAULT_IDLE_SECONDS,
        clock: Clock = wall_clock,
    ) -> Resident[Any, Any]:
        """This shard's hot state called `name` (made on first call, the same one after):
        see actors/runtime/resident.py. It counts against the node's memory budget, is swept
        of idle entries beside the mailbox, and is emptied when the shard stops here.

        Call it from a handler (or `on_start`): the instance is bound and its loop runs.
        Annotate what it holds where you keep it: `users: Resident[str, UserRow]`.
        """
        holders: dict[str, Resident[Any, Any]] = self.__dict__.setdefault("_residents", {})
        holder = holders.get(name)
        if holder is None:
            holder = Resident(
                name,
                budget=self.system.state_budget,
                size=size,
                idle=idle,
                clock=clock,
                tenure=self.tenure,
            )
            holders[name] = holder
            self.every(min(idle, 60.0), _sweeper(holder), f"resident_sweep:{name}")
        return holder

    def release_residents(self) -> None:
        """Called by the runtime when the shard stops or restarts: its hot state goes (the
        next owner, here or on another node, loads afresh)."""
        holders: dict[str, Resident[Any, Any]] = self.__dict__.pop("_residents", {})
        for holder in holders.values():
            holder.close()

    @property
    def address(self) -> str:
        return f"{self.name}/{self.shard}"


def _sweeper(holder: Resident[Any, Any]) -> Callable[[], Awaitable[None]]:
    async def sweep() -> None:
        holder.sweep()

    return sweep
