"""What a feature part of an actor may use of the shard it runs in.

Every actor is composed of feature parts held as attributes (`self.groups`, `self.holds`, …).
The actor builds one `Context` with `self.context(pool, clock)` — or a subclass adding its own
dependencies, such as signing keys — and hands it to each part. A part reaches the database,
the clock, its shard's transactions, messages and timers through it, and nothing else of the
actor: no part reaches into its host, and every actor's parts look alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from actors.runtime.clock import Clock, at
from actors.runtime.idempotency import KeyTable, key_of
from actors.runtime.outbox import Transaction
from actors.runtime.resident import DEFAULT_IDLE_SECONDS, Resident, deep_size
from actors.runtime.store import Executor
from transport import Envelope, Message, Timer

if TYPE_CHECKING:  # the actor module imports this one
    from actors.runtime.actor import Actor


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Context:
    """The database, the clock and the shard's own transactions, messages and timers.

    `pool` holds the actor's tables; `clock` gives epoch seconds (tests move it). The methods
    are the shard's: `transaction` records the message in hand in the inbox and sends what
    `tx.tell` and `tx.publish` wrote once it commits, exactly as in a handler.
    """

    pool: asyncpg.Pool
    clock: Clock
    shard_actor: Actor

    @property
    def name(self) -> str:
        """The actor type's name (`splits`): where `tell_self` and the outbox send."""
        return self.shard_actor.name

    @property
    def shard(self) -> int:
        return self.shard_actor.shard

    @property
    def envelope(self) -> Envelope | None:
        """The envelope of the message in hand (None in a batch or outside a handler)."""
        return self.shard_actor.envelope

    def now(self) -> datetime:
        """The clock's now as an aware UTC datetime."""
        return at(self.clock())

    # ── idempotency keys (actors/runtime/idempotency.py) ───────────────────────────────

    async def replayed(
        self, message: Message, reply_type: type[T], db: Executor | None = None
    ) -> T | None:
        """The first reply to the idempotency key `message` carries (None: no key, or a
        new one); `IdempotencyConflict` for another request, `IdempotencyInFlight` while
        its flow still runs."""
        key = key_of(message)
        if key is None:
            return None
        return await self._keys().recall(db or self.pool, key, reply_type)

    async def remember(
        self,
        db: Executor,
        message: Message,
        reply: object,
        *,
        pending: bool = False,
        subject: str | None = None,
    ) -> None:
        """Record `reply` for the key `message` carries, in `db` (the transaction that made
        the effect); `pending` while a flow about `subject` is still to finish."""
        key = key_of(message)
        if key is not None:
            await self._keys().remember(
                db, key, reply, self.now(), pending=pending, subject=subject
            )

    async def complete(self, db: Executor, subject: str, reply: object) -> None:
        """The flow about `subject` finished: its pending keys answer `reply` from now on."""
        await self._keys().complete(db, subject, reply)

    def _keys(self) -> KeyTable:
        keys = type(self.shard_actor).idempotency_keys
        if keys is None:
            raise TypeError(f"{self.name} keeps no idempotency keys (set Actor.idempotency_keys)")
        return keys

    def transaction(self, *, dedupe: bool = True) -> Transaction:
        """The shard's transaction with the outbox (and the inbox): `Actor.transaction`."""
        return self.shard_actor.transaction(dedupe=dedupe)

    async def tell(self, actor: str, message: Message, *, key: object = None) -> None:
        await self.shard_actor.tell(actor, message, key=key)

    async def tell_self(self, message: Message, *, key: object = None) -> None:
        """Tell this actor type (routed by key, so maybe another shard)."""
        await self.shard_actor.tell(self.shard_actor.name, message, key=key)

    async def ask(
        self, actor: str, message: Message, *, key: object = None, timeout: float | None = None
    ) -> Any:
        return await self.shard_actor.ask(actor, message, key=key, timeout=timeout)

    def schedule(self, delay: float, message: Message) -> Timer:
        """Deliver `message` to this same shard after `delay` seconds (cancelled on stop)."""
        return self.shard_actor.schedule(delay, message)

    def every(self, interval: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        """Run `job` every `interval` seconds beside the mailbox: `Actor.every`."""
        self.shard_actor.every(interval, job, name)

    def resident(
        self,
        name: str,
        *,
        size: Callable[[Any], int] = deep_size,
        idle: float = DEFAULT_IDLE_SECONDS,
    ) -> Resident[Any, Any]:
        """The shard's hot state called `name`, idle by this context's clock:
        `Actor.resident` (call it while handling, not when the part is built)."""
        return self.shard_actor.resident(name, size=size, idle=idle, clock=self.clock)

    def owns(self, key: object) -> bool:
        """Whether messages routed by `key` to this actor type come to this very shard."""
        system = self.shard_actor.system
        return system.shard_for(self.name, key) == self.shard
