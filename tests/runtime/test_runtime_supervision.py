"""Supervision in the runtime: restarts that rebuild state, escalation, failure, revival,
and batches that fall back to one message at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from actors.runtime import Actor, ActorSystem, Message, RestartPolicy, UnknownActor, handles
from actors.runtime.group import ActorGroup
from tests.runtime.conftest import keys_on_distinct_shards, wait_until
from transport import Codec

FAST = RestartPolicy(backoff_initial=0.001, backoff_max=0.01)


def group_of(system: ActorSystem, name: str) -> ActorGroup:
    return system._groups[name]


def is_ready(system: ActorSystem) -> bool:
    """system.ready read afresh (a plain attribute read would let mypy narrow it)."""
    return system.ready


# --- restart with state rebuilt in on_start -------------------------------------------------


class Add(Message, frozen=True):
    n: int


class Explode(Message, frozen=True):
    pass


class GetTotal(Message, frozen=True):
    pass


class Total(Message, frozen=True):
    saved: int
    scratch: int
    instance: int


class Database:
    """Stands in for the durable store an actor reloads its state from."""

    def __init__(self) -> None:
        self.saved = 0
        self.starts = 0
        self.stops = 0
        self.explosions_left = 1
        self.explode_calls = 0


class Accumulator(Actor):
    def __init__(self, db: Database) -> None:
        self.db = db
        self.total = -1
        self.scratch = 0  # in memory only: lost on restart

    async def on_start(self) -> None:
        self.db.starts += 1
        self.total = self.db.saved

    async def on_stop(self) -> None:
        self.db.stops += 1

    @handles(Add)
    async def add(self, message: Add) -> None:
        self.total += message.n
        self.db.saved = self.total
        self.scratch += 1

    @handles(Explode)
    async def explode(self, message: Explode) -> None:
        self.db.explode_calls += 1
        if self.db.explosions_left > 0:
            self.db.explosions_left -= 1
            raise RuntimeError("kaboom")

    @handles(GetTotal)
    async def get_total(self, message: GetTotal) -> Total:
        return Total(saved=self.total, scratch=self.scratch, instance=id(self))


async def test_crash_restarts_the_actor_with_state_rebuilt_in_on_start(
    system: ActorSystem, codec: Codec
) -> None:
    """A crash replaces the instance: on_stop then on_start run again, the state loaded in
    on_start is there, memory-only state is gone, the crashed message is retried, and the
    shard's restart count goes up."""
    codec.register(Total)
    db = Database()
    ref = system.spawn(Accumulator, "acc", factory=lambda: Accumulator(db), policy=FAST)
    await ref.tell(Add(n=5))
    await ref.tell(Add(n=7))
    before = await ref.ask(GetTotal())
    assert (before.saved, before.scratch) == (12, 2)
    assert db.starts == 1

    await ref.tell(Explode())
    after = await ref.ask(GetTotal())
    assert db.starts == 2
    assert db.stops == 1
    assert after.saved == 12  # rebuilt by on_start
    assert after.scratch == 0  # the old instance's memory is gone
    assert after.instance != before.instance
    assert db.explode_calls == 2  # crashed once, succeeded on the retry
    status = system.status()[0]
    assert status.restarts == 1
    assert status.failed == 1
    assert status.dead_lettered == 0
    assert status.state == "running"
    assert status.last_error == "RuntimeError: kaboom"


class Unstartable(Actor):
    attempts = 0

    async def on_start(self) -> None:
        Unstartable.attempts += 1
        if Unstartable.attempts < 3:
            raise ConnectionError("database not up yet")

    @handles(Add)
    async def add(self, message: Add) -> None:
        return None


async def test_on_start_failures_are_restarted_until_it_starts(system: ActorSystem) -> None:
    """An on_start that fails counts as a crash and is retried with backoff until it works."""
    Unstartable.attempts = 0
    system.spawn(Unstartable, "unstartable", policy=FAST)
    await wait_until(lambda: system.status()[0].state == "running")
    status = system.status()[0]
    assert Unstartable.attempts == 3
    assert (status.restarts, status.failed) == (2, 2)
    assert status.last_error == "ConnectionError: database not up yet"


# --- escalation, failure of an actor type, revival -------------------------------------------


class Ping(Message, frozen=True):
    key: str


class Pong(Message, frozen=True):
    shard: int


class Boom(Message, frozen=True):
    key: str


class Note(Message, frozen=True):
    key: str
    n: int


class Switches:
    def __init__(self) -> None:
        self.start_failures: dict[int, int] = {}  # shard -> how many starts still fail
        self.broken: set[int] = set()  # shards whose on_start always fails
        self.notes: list[int] = []


class Moody(Actor):
    def __init__(self, switches: Switches) -> None:
        self.switches = switches

    async def on_start(self) -> None:
        left = self.switches.start_failures.get(self.shard, 0)
        if left > 0:
            self.switches.start_failures[self.shard] = left - 1
            raise RuntimeError(f"shard {self.shard} cannot start")
        if self.shard in self.switches.broken:
            raise RuntimeError(f"shard {self.shard} is broken")

    @handles(Ping)
    async def ping(self, message: Ping) -> Pong:
        return Pong(shard=self.shard)

    @handles(Boom)
    async def boom(self, message: Boom) -> None:
        raise RuntimeError("boom")

    @handles(Note)
    async def note(self, message: Note) -> None:
        self.switches.notes.append(message.n)


class Steady(Actor):
    @handles(Ping)
    async def ping(self, message: Ping) -> Pong:
        return Pong(shard=self.shard)


async def test_escalation_group_restart_failure_and_revival(
    system: ActorSystem, codec: Codec
) -> None:
    """A shard crashing past its intensity escalates and its group restarts it; past the group's
    own intensity the type fails (every shard "failed", the node not ready) while other actor
    types keep working; system.restart revives it and the messages that waited are handled."""
    codec.register(Pong)
    switches = Switches()
    switches.start_failures = {0: 2}  # shard 0: two crashes, one more than its policy allows
    key0, key1 = keys_on_distinct_shards(2)
    ref = system.spawn(
        Moody,
        "moody",
        factory=lambda: Moody(switches),
        shards=2,
        key=lambda m: m.key,
        policy=RestartPolicy(max_restarts=1, within=60.0, backoff_initial=0.001, backoff_max=0.01),
        group_policy=RestartPolicy(
            max_restarts=1, within=60.0, backoff_initial=0.001, backoff_max=0.01
        ),
        max_attempts=1,
    )
    steady = system.spawn(Steady, "steady")
    group = group_of(system, "moody")

    # escalation: the group restarts the shard, which then starts fine
    await wait_until(lambda: group.restarts == 1 and group.workers[0].state == "running")
    assert (await ref.ask(Ping(key=key0))).shard == 0
    assert (await ref.ask(Ping(key=key1))).shard == 1
    shard0 = system.status()[0]
    assert shard0.failed == 2
    assert shard0.restarts == 2  # one by its own window, one by the group
    assert group.state == "running"
    assert is_ready(system)

    # past the group's intensity: the type fails, the node keeps running
    switches.broken = {0}
    await ref.tell(Boom(key=key0))
    await wait_until(lambda: group.state == "failed")
    await wait_until(lambda: all(worker.stopped for worker in group.workers))
    assert [s.state for s in system.status() if s.name == "moody"] == ["failed", "failed"]
    assert group.restarts == 1
    assert not is_ready(system)
    assert await steady.ask(Ping(key="x")) == Pong(shard=0)

    # a message sent while failed waits in the mailbox, not lost
    await ref.tell(Note(key=key1, n=1))
    await asyncio.sleep(0.01)
    assert switches.notes == []

    switches.broken.clear()
    system.restart("moody")
    assert group.state == "running"
    assert is_ready(system)
    await wait_until(lambda: switches.notes == [1])
    assert (await ref.ask(Ping(key=key0))).shard == 0
    assert (await ref.ask(Ping(key=key1))).shard == 1
    assert {s.state for s in system.status()} == {"running"}


class Slow(Message, frozen=True):
    key: str


class Hesitant(Moody):
    """A Moody whose Slow handler waits for the test to let it go."""

    gate: asyncio.Event

    @handles(Slow)
    async def slow(self, message: Slow) -> None:
        await self.gate.wait()


async def test_shard_busy_when_its_type_failed_is_revived_too(
    system: ActorSystem, codec: Codec
) -> None:
    """A shard still inside a handler when its type failed, and the type restarted before that
    handler returned, is started again once it stops instead of staying down."""
    codec.register(Pong)
    switches = Switches()
    gate = asyncio.Event()

    def factory() -> Hesitant:
        actor = Hesitant(switches)
        actor.gate = gate
        return actor

    key0, key1 = keys_on_distinct_shards(2)
    no_restarts = RestartPolicy(max_restarts=0, backoff_initial=0.001, backoff_max=0.01)
    ref = system.spawn(
        Hesitant,
        "hesitant",
        factory=factory,
        shards=2,
        key=lambda m: m.key,
        policy=no_restarts,
        group_policy=no_restarts,
        max_attempts=1,
    )
    group = group_of(system, "hesitant")
    await ref.tell(Slow(key=key1))
    await wait_until(lambda: group.workers[1].busy)
    await ref.tell(Boom(key=key0))
    await wait_until(lambda: group.state == "failed")
    assert not group.workers[1].stopped  # still in its handler

    system.restart("hesitant")
    gate.set()
    assert (await ref.ask(Ping(key=key1), timeout=1.0)).shard == 1
    assert (await ref.ask(Ping(key=key0), timeout=1.0)).shard == 0
    assert [s.state for s in system.status()] == ["running", "running"]
    assert is_ready(system)


async def test_restart_of_unknown_actor_is_refused(system: ActorSystem) -> None:
    """system.restart names an actor type that must be hosted here."""
    with pytest.raises(UnknownActor):
        system.restart("nobody")


# --- batches ---------------------------------------------------------------------------------


class Item(Message, frozen=True):
    n: int


class Receipt(Message, frozen=True):
    n: int


class Ledger:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.singles: list[int] = []
        self.starts = 0
        self.first_may_finish = asyncio.Event()


class Batcher(Actor):
    batch_size = 8

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def on_start(self) -> None:
        self.ledger.starts += 1

    @handles(Item)
    async def item(self, message: Item) -> Receipt:
        self.ledger.singles.append(message.n)
        return Receipt(n=message.n)

    async def handle_batch(self, messages: Sequence[Message]) -> Sequence[Any]:
        numbers = [m.n for m in messages if isinstance(m, Item)]
        self.ledger.batches.append(numbers)
        if numbers == [0]:
            await self.ledger.first_may_finish.wait()
        if any(n < 0 for n in numbers):
            raise RuntimeError("the batch transaction failed")
        return [Receipt(n=n * 10) for n in numbers]


async def test_waiting_messages_are_handled_in_one_batch(system: ActorSystem, codec: Codec) -> None:
    """Messages that queue up while a batch runs are all handed to the next handle_batch call,
    and each ask in a batch gets its own result."""
    codec.register(Receipt)
    ledger = Ledger()
    ref = system.spawn(Batcher, "batcher", factory=lambda: Batcher(ledger), policy=FAST)
    await ref.tell(Item(n=0))
    await wait_until(lambda: ledger.batches == [[0]])
    for n in range(1, 6):
        await ref.tell(Item(n=n))
    asks = [asyncio.create_task(ref.ask(Item(n=n))) for n in (6, 7)]
    await wait_until(lambda: system.status()[0].mailbox >= 8)
    ledger.first_may_finish.set()
    assert await asyncio.gather(*asks) == [Receipt(n=60), Receipt(n=70)]
    assert ledger.batches == [[0], [1, 2, 3, 4, 5, 6, 7]]
    assert ledger.singles == []
    status = system.status()[0]
    assert status.handled == 8
    assert status.mailbox == 0


async def test_batch_is_capped_at_batch_size(system: ActorSystem, codec: Codec) -> None:
    """No handle_batch call gets more than batch_size messages; none is skipped."""
    codec.register(Receipt)
    ledger = Ledger()
    ref = system.spawn(Batcher, "batcher", factory=lambda: Batcher(ledger), policy=FAST)
    await ref.tell(Item(n=0))
    await wait_until(lambda: ledger.batches == [[0]])
    for n in range(1, 21):
        await ref.tell(Item(n=n))
    ledger.first_may_finish.set()
    await wait_until(lambda: sum(len(b) for b in ledger.batches) == 21)
    assert max(len(b) for b in ledger.batches) == Batcher.batch_size
    assert [n for b in ledger.batches for n in b] == list(range(21))


async def test_failed_batch_falls_back_to_one_by_one_after_a_restart(
    system: ActorSystem, codec: Codec
) -> None:
    """When handle_batch raises, the actor restarts and the same messages are handled one at a
    time by their handlers, in order, none lost; later messages are batched again."""
    codec.register(Receipt)
    ledger = Ledger()
    ref = system.spawn(Batcher, "batcher", factory=lambda: Batcher(ledger), policy=FAST)
    await ref.tell(Item(n=0))
    await wait_until(lambda: ledger.batches == [[0]])
    for n in (1, -2, 3):
        await ref.tell(Item(n=n))
    ask = asyncio.create_task(ref.ask(Item(n=4)))
    await wait_until(lambda: system.status()[0].mailbox == 5)  # the batch in hand and four
    ledger.first_may_finish.set()
    assert await ask == Receipt(n=4)  # answered by the single handler, not the batch
    assert ledger.batches == [[0], [1, -2, 3, 4]]
    assert ledger.singles == [1, -2, 3, 4]
    assert ledger.starts == 2
    status = system.status()[0]
    assert status.restarts == 1
    assert status.failed == 1
    assert status.last_error == "RuntimeError: the batch transaction failed"
    assert status.dead_lettered == 0

    await ref.tell(Item(n=5))
    await wait_until(lambda: ledger.batches[-1] == [5])
    assert ledger.singles == [1, -2, 3, 4]
