"""Dead letters kept in PostgreSQL: written by a crashing actor, listed, replayed once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import msgspec
import pytest

from actors.runtime import (
    Actor,
    ActorSystem,
    Message,
    PgDeadLetterStore,
    RestartPolicy,
    handles,
)
from actors.runtime.dead_letters import DeadLetterAlreadyReplayed
from splitgo.db import apply_schema
from transport import Codec, MemoryTransport


class Charge(Message, frozen=True):
    account: str
    amount: int


class Ledger(Actor):
    """Crashes on charges while `broken` is set; records what it handled."""

    broken = True
    handled: list[Charge] = []

    @handles(Charge)
    async def charge(self, message: Charge) -> None:
        if Ledger.broken:
            raise RuntimeError(f"ledger unavailable for {message.account}")
        Ledger.handled.append(message)


FAST = RestartPolicy(max_restarts=50, within=60, backoff_initial=0.001, backoff_max=0.005)


@pytest.fixture
async def store(pool: asyncpg.Pool) -> PgDeadLetterStore:
    await apply_schema(pool)
    return PgDeadLetterStore(pool)


@pytest.fixture
async def make_system(
    store: PgDeadLetterStore,
) -> AsyncIterator[Callable[[], asyncio.Future[ActorSystem]]]:
    systems: list[ActorSystem] = []

    async def make() -> ActorSystem:
        codec = Codec()
        system = ActorSystem(
            MemoryTransport(node_id=f"node-{len(systems)}", codec=codec),
            codec=codec,
            dead_letters=store,
        )
        await system.start()
        system.spawn(Ledger, "ledger", shards=2, key=lambda m: m.account, policy=FAST)
        systems.append(system)
        return system

    yield make  # type: ignore[misc]
    for system in systems:
        await system.stop(1.0)


async def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_poison_message_is_stored_and_replayed_once_after_a_restart(
    store: PgDeadLetterStore, make_system: Callable[[], asyncio.Future[ActorSystem]]
) -> None:
    """The dead letter outlives the node, replays on a new one, and only once."""
    Ledger.broken, Ledger.handled = True, []
    first = await make_system()
    await first.ref("ledger").tell(Charge(account="acc-1", amount=1250))
    await wait_for(lambda: first.status()[0].dead_lettered + first.status()[1].dead_lettered == 1)
    await first.stop(1.0)

    letters, cursor = await store.list(limit=10)
    assert cursor is None
    [letter] = letters
    assert letter.actor == "ledger"
    assert letter.message_type == "Charge"
    assert letter.attempts == 3
    assert "ledger unavailable for acc-1" in letter.error
    assert msgspec.json.decode(letter.body) == {
        "msg_type": "Charge",
        "account": "acc-1",
        "amount": 1250,
    }
    assert letter.trace_id

    Ledger.broken = False
    second = await make_system()
    await second.replay(letter.id)
    await wait_for(lambda: Ledger.handled == [Charge(account="acc-1", amount=1250)])
    replayed = await store.get(letter.id)
    assert replayed is not None
    assert replayed.replayed_at is not None
    with pytest.raises(DeadLetterAlreadyReplayed):
        await second.replay(letter.id)
    assert Ledger.handled == [Charge(account="acc-1", amount=1250)]


async def test_dead_letters_page_newest_first_by_cursor(
    store: PgDeadLetterStore, make_system: Callable[[], asyncio.Future[ActorSystem]]
) -> None:
    """Listing walks every dead letter exactly once, newest first, and filters by actor."""
    Ledger.broken = True
    system = await make_system()
    for n in range(5):
        await system.ref("ledger").tell(Charge(account=f"acc-{n}", amount=n + 1))
    await wait_for(lambda: sum(s.dead_lettered for s in system.status()) == 5)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = await store.list(limit=2, cursor=cursor)
        assert len(page) <= 2
        seen += [letter.id for letter in page]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    everything, _ = await store.list(limit=10)
    stamps = [letter.created_at for letter in everything]
    assert stamps == sorted(stamps, reverse=True)
    assert (await store.list(limit=10, actor="nobody"))[0] == []


async def test_messages_cut_off_by_the_shutdown_deadline_are_kept(
    store: PgDeadLetterStore, pool: asyncpg.Pool
) -> None:
    """What a stop could not drain in time is stored as dead letters, not lost."""
    release = asyncio.Event()

    class Slow(Actor):
        @handles(Charge)
        async def charge(self, message: Charge) -> None:
            await release.wait()

    codec = Codec()
    system = ActorSystem(
        MemoryTransport(node_id="slow", codec=codec), codec=codec, dead_letters=store
    )
    await system.start()
    ref = system.spawn(Slow, "slow")
    for n in range(3):
        await ref.tell(Charge(account="a", amount=n + 1))
    await system.stop(0.2)
    letters, _ = await store.list(limit=10, actor="slow")
    assert len(letters) == 3
    assert {letter.error for letter in letters} == {"undelivered at shutdown"}
    amounts = sorted(msgspec.json.decode(letter.body)["amount"] for letter in letters)
    assert amounts == [1, 2, 3]
