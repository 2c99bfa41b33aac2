"""The outbox API's guard rails and the relay's resilience, without a database server."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, cast

import pytest

from actors.runtime import (
    Actor,
    ActorSystem,
    MemoryDeadLetterStore,
    Message,
    Outbox,
    OutboxUnavailable,
    TransactionMisuse,
    handles,
)
from actors.runtime.backoff import Backoff
from transport import Codec, Envelope, MemoryTransport


class Ping(Message, frozen=True):
    n: int


class Pinger(Actor):
    @handles(Ping)
    async def ping(self, message: Ping) -> None:
        return None


class BatchPinger(Pinger):
    batch_size = 10


class Unreachable(Exception):
    """The pool was used although a guard should have refused first."""


class Refused:
    """What NoPool.acquire returns: fails when awaited or entered, as asyncpg's would."""

    def __init__(self, error: Exception) -> None:
        self.error: Exception | None = error

    def __await__(self) -> Generator[None, None, Any]:
        if self.error is not None:  # always: the yield only makes this a generator
            raise self.error
        yield

    async def __aenter__(self) -> Any:
        assert self.error is not None
        raise self.error

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class NoPool:
    """Stands in for asyncpg.Pool: counts connection attempts and refuses them."""

    def __init__(self, error: Exception | None = None) -> None:
        self.acquired = 0
        self.error = error or Unreachable("the pool was reached")

    def acquire(self) -> Refused:
        self.acquired += 1
        return Refused(self.error)


def bound(actor: Actor, system: ActorSystem, envelope: Envelope | None = None) -> Actor:
    actor.bind(name="pinger", shard=0, system=system)
    actor.envelope = envelope
    return actor


def envelope(n: int = 1) -> Envelope:
    return Envelope(id=f"m-{n}", target="pinger", shard=0, kind="tell", body=Ping(n=n))


def make_system(outbox: Outbox | None) -> ActorSystem:
    codec = Codec()
    return ActorSystem(
        MemoryTransport(node_id="unit", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=outbox,
    )


def test_retry_delay_doubles_up_to_the_cap() -> None:
    """The relay's default retry delay doubles from its base with each attempt up to the cap,
    without overflowing after many attempts."""
    backoff = Backoff(0.5, 60.0)
    delays = [backoff.delay(attempts) for attempts in range(1, 10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff.delay(10_000) == 60.0  # no overflow after a long outage


async def test_a_system_without_an_outbox_refuses_transactions() -> None:
    """Opening a transaction on a system without an Outbox raises OutboxUnavailable."""
    actor = bound(Pinger(), make_system(None), envelope())
    with pytest.raises(OutboxUnavailable, match="no Outbox") as raised:
        async with actor.transaction():
            pass
    assert raised.value.code == "outbox_unavailable"


async def test_misuse_is_refused_before_touching_the_database() -> None:
    """A deduplicated transaction outside a handler, in a batching actor handling a batch, or
    for a message already committed is refused without touching the pool, while dedupe=False
    passes the guards."""
    pool = NoPool()
    system = make_system(Outbox(cast(Any, pool), relay=False))

    outside_a_handler = bound(Pinger(), system, None)
    with pytest.raises(TransactionMisuse, match="no message in hand") as raised:
        async with outside_a_handler.transaction():
            pass
    assert raised.value.code == "transaction_misuse"

    # a batching actor with a batch in hand (no one envelope): no single id names it
    batching = bound(BatchPinger(), system, None)
    with pytest.raises(TransactionMisuse, match="handles batches"):
        async with batching.transaction():
            pass

    in_hand = envelope()
    twice = bound(Pinger(), system, in_hand)
    twice._inbox_envelope = in_hand  # its first deduplicated transaction committed
    with pytest.raises(TransactionMisuse, match="already committed"):
        async with twice.transaction():
            pass
    assert pool.acquired == 0

    # dedupe=False passes the guards (and only then reaches for a connection)
    for actor in (outside_a_handler, batching, twice):
        with pytest.raises(Unreachable):
            async with actor.transaction(dedupe=False):
                pass
    assert pool.acquired == 3


async def test_tx_tell_outside_the_transaction_is_refused() -> None:
    """A transaction that is not open refuses tell and access to its connection."""
    system = make_system(Outbox(cast(Any, NoPool()), relay=False))
    transaction = bound(Pinger(), system, envelope()).transaction()
    with pytest.raises(TransactionMisuse, match="outside its transaction"):
        await transaction.tell("pinger", Ping(n=1))
    with pytest.raises(TransactionMisuse, match="not open"):
        _ = transaction.connection


def test_outbox_settings_are_checked() -> None:
    """An Outbox with a zero interval or a zero batch size is refused with a ValueError."""
    with pytest.raises(ValueError, match="positive"):
        Outbox(cast(Any, NoPool()), interval=0)
    with pytest.raises(ValueError, match="positive"):
        Outbox(cast(Any, NoPool()), batch_size=0)


async def test_a_write_only_outbox_runs_no_relay_and_stops_at_once() -> None:
    """An outbox without a relay starts no relay task, stops at once even unstarted, and refuses to
    join a second ActorSystem."""
    outbox = Outbox(cast(Any, NoPool()), relay=False)
    await outbox.stop()  # never started: nothing to do
    system = make_system(outbox)
    await system.start()
    assert outbox._task is None
    await system.stop(1.0)
    with pytest.raises(RuntimeError, match="one ActorSystem"):
        outbox.start(make_system(None))


async def test_the_relay_outlives_database_errors_and_stops_cleanly() -> None:
    """A pass that fails (database down) is logged and retried with backoff, not fatal."""
    pool = NoPool(OSError("connection refused"))
    outbox = Outbox(cast(Any, pool), interval=0.01)
    system = make_system(outbox)
    await system.start()
    outbox.notify()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while pool.acquired < 3 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert pool.acquired >= 3
    task = outbox._task
    assert task is not None
    assert not task.done()
    await system.stop(1.0)
    assert task.done()
    assert not task.cancelled()  # it ended by itself when asked, not by cancellation
