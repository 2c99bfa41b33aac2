"""Timers and shutdown: scheduled messages, cancelled timers, and draining without loss."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import structlog

from actors.runtime import (
    Actor,
    ActorSystem,
    MemoryDeadLetterStore,
    Message,
    RestartPolicy,
    SystemStopping,
    handles,
)
from tests.runtime.conftest import Cluster, left_in_stream, taken_in, timers_in_redis, wait_until
from transport import Codec, MailboxClosed, Timer

FAST = RestartPolicy(backoff_initial=0.001, backoff_max=0.01)


class Arm(Message, frozen=True):
    delay: float
    n: int


class Fired(Message, frozen=True):
    n: int


class Clock:
    def __init__(self) -> None:
        self.timers: list[Timer] = []
        self.fired: list[tuple[int, int]] = []  # (shard, n)


class Alarm(Actor):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    @handles(Arm)
    async def arm(self, message: Arm) -> None:
        self.clock.timers.append(self.schedule(message.delay, Fired(n=message.n)))

    @handles(Fired)
    async def fired(self, message: Fired) -> None:
        self.clock.fired.append((self.shard, message.n))


async def test_scheduled_message_fires_on_the_same_shard(system: ActorSystem) -> None:
    """Actor.schedule delivers the message to the scheduling shard after the delay."""
    clock = Clock()
    ref = system.spawn(Alarm, "alarm", factory=lambda: Alarm(clock), shards=3, key=lambda m: m.n)
    for n in range(6):
        await ref.tell(Arm(delay=0.01, n=n))
    await wait_until(lambda: len(clock.fired) == 6)
    assert sorted(n for _, n in clock.fired) == list(range(6))
    # each Fired came back to the shard that handled its Arm, the one its key routes to
    arms = {n: ref._route.shard_for(Arm(delay=0, n=n)) for n in range(6)}
    assert all(shard == arms[n] for shard, n in clock.fired)


async def test_cancelled_timer_never_fires(system: ActorSystem) -> None:
    """A timer cancelled before its delay delivers nothing."""
    clock = Clock()
    ref = system.spawn(Alarm, "alarm", factory=lambda: Alarm(clock))
    await ref.tell(Arm(delay=0.02, n=1))
    await ref.tell(Arm(delay=0.02, n=2))
    await wait_until(lambda: len(clock.timers) == 2)
    clock.timers[0].cancel()
    await wait_until(lambda: len(clock.fired) == 1)
    await asyncio.sleep(0.03)
    assert clock.fired == [(0, 2)]


async def test_long_timer_is_cancelled_when_the_system_stops(
    system: ActorSystem, cluster: Cluster
) -> None:
    """A timer still waiting at shutdown is cancelled: it never fires and nothing is logged
    as an error. On Redis timers are durable by design (Transport.durable_timers): a clean stop
    leaves the timer in Redis, and it fires later on whichever node then owns the shard."""
    clock = Clock()
    ref = system.spawn(Alarm, "alarm", factory=lambda: Alarm(clock))
    await ref.tell(Arm(delay=0.3 if cluster.redis else 0.1, n=1))
    await wait_until(lambda: len(clock.timers) == 1)
    with structlog.testing.capture_logs() as logs:
        await system.stop(timeout=0.5)
        if cluster.redis:
            await cluster.close_transport(system.transport)  # its timer poller too
        await asyncio.sleep(0.15)  # past the in-memory timer's delay
    assert clock.fired == []
    assert [e for e in logs if e["log_level"] in ("error", "critical", "warning")] == []
    assert not any("timer" in e["event"] for e in logs)
    if not cluster.redis:
        assert clock.timers[0]._handle.cancelled()  # type: ignore[attr-defined]
        return
    assert [timer.body for timer in await timers_in_redis(system)] == [Fired(n=1)]
    successor_clock = Clock()
    successor = await cluster.node("successor-node")
    successor.spawn(Alarm, "alarm", factory=lambda: Alarm(successor_clock))
    await wait_until(lambda: successor_clock.fired == [(0, 1)])


class Rearm(Message, frozen=True):
    n: int


class Chain(Alarm):
    """Arms a long timer while handling a message during the drain."""

    @handles(Rearm)
    async def rearm(self, message: Rearm) -> None:
        await asyncio.sleep(0.005)
        self.clock.timers.append(self.schedule(0.1, Fired(n=message.n)))


async def test_timer_armed_during_the_drain_is_cancelled_too(
    system: ActorSystem, cluster: Cluster
) -> None:
    """A timer that a handler arms while the system drains at shutdown does not outlive stop().
    On Redis, where timers are durable by design, such timers are kept in Redis instead."""
    clock = Clock()
    ref = system.spawn(Chain, "chain", factory=lambda: Chain(clock))
    for n in range(3):
        await ref.tell(Rearm(n=n))
    await wait_until(lambda: taken_in(system) == 3)  # on Redis, read from the stream
    await system.stop(timeout=0.5)
    assert len(clock.timers) == 3  # all three were handled during the drain
    if cluster.redis:
        await cluster.close_transport(system.transport)
        assert sorted(timer.body.n for timer in await timers_in_redis(system)) == [0, 1, 2]
    else:
        assert all(timer._handle.cancelled() for timer in clock.timers)  # type: ignore[attr-defined]
    await asyncio.sleep(0.15)
    assert clock.fired == []


# --- shutdown ------------------------------------------------------------------------------


class Job(Message, frozen=True):
    n: int


class Works:
    def __init__(self) -> None:
        self.done: list[int] = []
        self.stops = 0
        self.release = asyncio.Event()
        self.block: set[int] = set()


class Worker(Actor):
    def __init__(self, works: Works) -> None:
        self.works = works

    async def on_stop(self) -> None:
        self.works.stops += 1

    @handles(Job)
    async def job(self, message: Job) -> None:
        if message.n in self.works.block:
            await self.works.release.wait()
        else:
            await asyncio.sleep(0.001)
        self.works.done.append(message.n)


async def test_stop_drains_queued_messages_before_returning(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore
) -> None:
    """Every message queued before stop() is handled by the time stop() returns."""
    works = Works()
    ref = system.spawn(Worker, "worker", factory=lambda: Worker(works), shards=3, key=lambda m: m.n)
    for n in range(60):
        await ref.tell(Job(n=n))
    await wait_until(lambda: taken_in(system) == 60)  # on Redis, read from the streams
    assert sum(s.mailbox for s in system.status()) > 0  # there is something to drain
    await system.stop(timeout=2.0)
    assert sorted(works.done) == list(range(60))
    assert (await dead_letters.list())[0] == []
    assert works.stops == 3  # on_stop ran on every shard
    assert {s.state for s in system.status()} == {"stopped"}
    with pytest.raises(SystemStopping):
        await ref.tell(Job(n=99))


async def test_stop_right_after_spawn_neither_hangs_nor_loses_messages(
    system: ActorSystem, cluster: Cluster
) -> None:
    """Stopping a node the moment its actors were spawned and told returns promptly, and each
    message is either handled or, on Redis, left in its stream for the next owner."""
    works = Works()
    ref = system.spawn(Worker, "worker", factory=lambda: Worker(works), shards=3, key=lambda m: m.n)
    for n in range(30):
        await ref.tell(Job(n=n))
    await asyncio.wait_for(system.stop(timeout=1.0), 3.0)
    await asyncio.wait_for(cluster.close_transport(system.transport), 3.0)
    left: list[int] = []
    if cluster.redis:
        for shard in range(3):
            left += [e.body.n for e in await left_in_stream(system, "worker", shard)]
    assert sorted(works.done + left) == list(range(30))


async def test_messages_cut_off_by_the_deadline_become_dead_letters(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore, cluster: Cluster
) -> None:
    """A handler blocked past the stop deadline: the message in hand and those still queued are
    kept as dead letters "undelivered at shutdown"; handled plus kept is everything sent. On
    Redis they stay in the stream instead, pending for the shard's next owner (by design)."""
    works = Works()
    works.block = {3}
    ref = system.spawn(Worker, "worker", factory=lambda: Worker(works), mailbox_size=16)
    for n in range(10):
        await ref.tell(Job(n=n))
    await wait_until(lambda: works.done == [0, 1, 2])
    await system.stop(timeout=0.1)
    letters, _ = await dead_letters.list(limit=100)
    assert works.done == [0, 1, 2]
    assert works.stops == 1
    if cluster.redis:
        assert letters == []
        assert [e.body.n for e in await left_in_stream(system, "worker")] == list(range(3, 10))
        return
    kept = sorted(msgspec.json.decode(letter.body)["n"] for letter in letters)
    assert kept == list(range(3, 10))
    assert {letter.error for letter in letters} == {"undelivered at shutdown"}
    assert {letter.actor for letter in letters} == {"worker"}
    assert all(letter.envelope is not None for letter in letters)  # replayable later


async def test_undelivered_ask_gets_an_answer_at_shutdown(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore, cluster: Cluster
) -> None:
    """An ask still queued when the deadline passes fails with SystemStopping at the asker
    (no hanging until its own time-out), and its message is kept as a dead letter (on Redis:
    left pending in the stream, by design)."""
    works = Works()
    works.block = {0}
    ref = system.spawn(Worker, "worker", factory=lambda: Worker(works))
    await ref.tell(Job(n=0))
    await wait_until(lambda: system.status()[0].mailbox == 0)
    ask = asyncio.create_task(ref.ask(Job(n=1), timeout=5.0))
    await wait_until(lambda: system.status()[0].mailbox == 1)
    await system.stop(timeout=0.05)
    with pytest.raises(SystemStopping):
        await asyncio.wait_for(ask, 1.0)
    assert len(system.pending_asks) == 0
    letters, _ = await dead_letters.list()
    if cluster.redis:
        assert letters == []
        left = await left_in_stream(system, "worker")
        assert [(e.kind, e.body.n) for e in left] == [("tell", 0), ("ask", 1)]
    else:
        assert sorted(msgspec.json.decode(x.body)["n"] for x in letters) == [0, 1]


async def test_sender_blocked_on_a_full_mailbox_is_told_at_shutdown(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore, cluster: Cluster
) -> None:
    """A tell waiting for room when the node stops raises instead of hanging or vanishing."""
    works = Works()
    works.block = {0}
    ref = system.spawn(Worker, "worker", factory=lambda: Worker(works), mailbox_size=1)
    await ref.tell(Job(n=0))
    await wait_until(lambda: system.status()[0].mailbox == 0)
    await ref.tell(Job(n=1))
    blocked = asyncio.create_task(ref.tell(Job(n=2)))
    await asyncio.sleep(0.005)
    assert not blocked.done()
    await system.stop(timeout=0.05)
    if cluster.redis:
        # the stream outlives this node's mailbox (another node may make room): the sender
        # waits until the transport closes
        assert not blocked.done()
        await cluster.close_transport(system.transport)
    with pytest.raises(MailboxClosed):
        await asyncio.wait_for(blocked, 1.0)
    letters, _ = await dead_letters.list()
    if cluster.redis:
        assert letters == []
        assert [e.body.n for e in await left_in_stream(system, "worker")] == [0, 1]
    else:
        assert sorted(msgspec.json.decode(x.body)["n"] for x in letters) == [0, 1]


async def test_parked_messages_are_drained_after_their_backoff(cluster: Cluster) -> None:
    """A shard holding a crashed message parked for its retry (and the message behind it)
    when stop() is called still handles both, in order, before it stops."""
    codec = Codec()
    store = MemoryDeadLetterStore()
    actor_system = await cluster.node("n", codec=codec, dead_letters=store)
    works = Works()
    crashes = {"left": 1}

    class CrashOnce(Worker):
        @handles(Job)
        async def job(self, message: Job) -> None:
            if crashes["left"]:
                crashes["left"] -= 1
                raise RuntimeError("first time unlucky")
            works.done.append(message.n)

    ref = actor_system.spawn(
        CrashOnce,
        "crash_once",
        factory=lambda: CrashOnce(works),
        policy=RestartPolicy(backoff_initial=0.2, backoff_max=0.2),
    )
    await ref.tell(Job(n=1))
    await ref.tell(Job(n=2))
    await wait_until(lambda: actor_system.status()[0].parked == 2)
    await actor_system.stop(timeout=1.0)
    assert works.done == [1, 2]
    assert (await store.list())[0] == []


class Upkeep(Actor):
    """Counts rounds of a periodic job; the second round fails on purpose."""

    rounds: list[int] = []

    async def on_start(self) -> None:
        self.every(0.01, self.tick, "tick")

    async def tick(self) -> None:
        Upkeep.rounds.append(len(Upkeep.rounds))
        if len(Upkeep.rounds) == 2:
            raise RuntimeError("one bad round")

    @handles(Job)
    async def job(self, message: Job) -> None:
        return None


async def test_periodic_jobs_repeat_survive_errors_and_end_with_the_actor(
    system: ActorSystem,
) -> None:
    """`every` runs its job again and again, past a failing round, and stops on stop."""
    Upkeep.rounds = []
    system.spawn(Upkeep, "upkeep")
    await wait_until(lambda: len(Upkeep.rounds) >= 4)
    await system.stop(timeout=1.0)
    after_stop = len(Upkeep.rounds)
    await asyncio.sleep(0.05)
    assert len(Upkeep.rounds) == after_stop
