"""The runtime's messaging: per-key order, parallel shards, backpressure, asks, codec checks."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

import pytest

from actors.runtime import (
    Actor,
    ActorSystem,
    AskTimeout,
    Message,
    RemoteError,
    RestartPolicy,
    SystemStopping,
    UnknownActor,
    handles,
)
from actors.runtime.context import current_trace_id, trace_id_var
from tests.runtime.conftest import Cluster, keys_on_distinct_shards, wait_until
from transport import Codec, CodecError

FAST = RestartPolicy(backoff_initial=0.001, backoff_max=0.01)


class Step(Message, frozen=True):
    key: str
    producer: int
    seq: int


class Hold(Message, frozen=True):
    key: str
    n: int


class Echo(Message, frozen=True):
    text: str


class Echoed(Message, frozen=True):
    text: str
    shard: int


class Stranger(Message, frozen=True):
    """Handled by nobody, so registered with nobody's codec."""

    n: int


class Carrier(Message, frozen=True):
    payload: Any


class Recorder(Actor):
    """Records what each shard handled, yielding to the loop inside every handler."""

    log: list[tuple[int, Step]]

    @handles(Step)
    async def step(self, message: Step) -> None:
        await asyncio.sleep(0)
        self.log.append((self.shard, message))


class Gate:
    """Shared state of the Holder actors: who is inside a handler, and the gate to leave."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.active = 0
        self.max_active = 0
        self.active_per_key: dict[str, int] = defaultdict(int)
        self.max_per_key = 0
        self.started: list[tuple[str, int]] = []
        self.done: list[tuple[str, int]] = []
        self.shards: dict[str, set[int]] = defaultdict(set)


class Holder(Actor):
    """Every handler waits at the gate; measures how many handlers overlap."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    @handles(Hold)
    async def hold(self, message: Hold) -> None:
        gate = self.gate
        gate.started.append((message.key, message.n))
        gate.shards[message.key].add(self.shard)
        gate.active += 1
        gate.active_per_key[message.key] += 1
        gate.max_active = max(gate.max_active, gate.active)
        gate.max_per_key = max(gate.max_per_key, gate.active_per_key[message.key])
        try:
            await gate.open.wait()
        finally:
            gate.active -= 1
            gate.active_per_key[message.key] -= 1
        gate.done.append((message.key, message.n))


class Echoer(Actor):
    @handles(Echo)
    async def echo(self, message: Echo) -> Echoed:
        return Echoed(text=message.text, shard=self.shard)

    @handles(Carrier)
    async def carry(self, message: Carrier) -> None:
        return None


async def test_per_key_order_under_concurrent_producers(system: ActorSystem) -> None:
    """Concurrent producers telling many keys to a sharded actor: each key stays on one shard
    and each producer's messages for a key are handled in the order it sent them."""
    log: list[tuple[int, Step]] = []

    def factory() -> Recorder:
        actor = Recorder()
        actor.log = log
        return actor

    ref = system.spawn(
        Recorder,
        "recorder",
        factory=factory,
        shards=4,
        key=lambda m: m.key,
        mailbox_size=4,  # small, so producers also go through backpressure
        policy=FAST,
    )
    keys = [f"k{i}" for i in range(7)]
    producers, per_producer = 10, 30
    rng = random.Random(1234)
    plans = [[rng.choice(keys) for _ in range(per_producer)] for _ in range(producers)]

    async def produce(p: int) -> None:
        for seq, key in enumerate(plans[p]):
            await ref.tell(Step(key=key, producer=p, seq=seq))
            if rng.random() < 0.2:
                await asyncio.sleep(0)

    await asyncio.gather(*(produce(p) for p in range(producers)))
    await wait_until(lambda: len(log) == producers * per_producer)

    shards_of_key: dict[str, set[int]] = defaultdict(set)
    seen: dict[tuple[str, int], list[int]] = defaultdict(list)
    for shard, step in log:
        shards_of_key[step.key].add(shard)
        seen[(step.key, step.producer)].append(step.seq)
    assert all(len(shards) == 1 for shards in shards_of_key.values())
    assert len({next(iter(s)) for s in shards_of_key.values()}) > 1  # the keys were spread
    for p, plan in enumerate(plans):
        for key in keys:
            sent = [seq for seq, k in enumerate(plan) if k == key]
            assert seen.get((key, p), []) == sent
    assert sum(s.handled for s in system.status()) == producers * per_producer


async def test_different_keys_on_different_shards_run_in_parallel(system: ActorSystem) -> None:
    """Handlers for keys on different shards are inside their handlers at the same time, while
    a second message for the same key waits for the first."""
    gate = Gate()
    ref = system.spawn(
        Holder, "holder", factory=lambda: Holder(gate), shards=4, key=lambda m: m.key
    )
    keys = keys_on_distinct_shards(4)
    for key in keys:
        await ref.tell(Hold(key=key, n=1))
        await ref.tell(Hold(key=key, n=2))
    await wait_until(lambda: gate.active == 4)
    assert gate.max_active == 4
    assert gate.max_per_key == 1
    assert sorted(gate.started) == sorted((key, 1) for key in keys)  # the n=2s wait
    gate.open.set()
    await wait_until(lambda: len(gate.done) == 8)
    assert gate.max_per_key == 1
    assert all(len(gate.shards[key]) == 1 for key in keys)
    for key in keys:
        assert [n for k, n in gate.done if k == key] == [1, 2]


async def test_full_mailbox_makes_the_sender_wait_and_drops_nothing(
    system: ActorSystem, cluster: Cluster
) -> None:
    """With the mailbox full behind a blocked handler, a further tell waits until the handler
    is released, then completes; every message is handled, in order. On Redis the sender
    waits once its send buffer and the stream's unacked entries are both at the mailbox
    size: later than in memory (about twice the size), and still nothing is dropped."""
    size = 2
    gate = Gate()
    ref = system.spawn(Holder, "holder", factory=lambda: Holder(gate), mailbox_size=size)
    await ref.tell(Hold(key="k", n=0))
    await wait_until(lambda: gate.active == 1)  # the worker holds message 0
    n = 0
    while True:
        n += 1
        assert n <= 2 * size + 1, "the sender never had to wait"
        late = asyncio.create_task(ref.tell(Hold(key="k", n=n)))
        for _ in range(20):
            await asyncio.sleep(0.001)
        if not late.done():
            break
        late.result()
    if not cluster.redis:
        assert n == size + 1  # told while the mailbox held `size` messages
        assert system.status()[0].mailbox == size
    gate.open.set()
    await asyncio.wait_for(late, 1.0)
    await wait_until(lambda: len(gate.done) == n + 1)
    assert [m for _, m in gate.done] == list(range(n + 1))


async def test_ask_returns_the_reply(system: ActorSystem, codec: Codec) -> None:
    """An ask gets the handler's return value back, decoded through the codec."""
    codec.register(Echoed)
    ref = system.spawn(Echoer, "echo", shards=3, key=lambda m: getattr(m, "text", None))
    reply = await ref.ask(Echo(text="hi"))
    assert isinstance(reply, Echoed)
    assert reply.text == "hi"
    assert await ref.ask(Carrier(payload=[1, "two"])) is None
    assert len(system.pending_asks) == 0


async def test_ask_timeout_raises_and_cleans_up(system: ActorSystem) -> None:
    """An ask the handler does not answer in time raises AskTimeout; no pending ask remains."""
    gate = Gate()
    ref = system.spawn(Holder, "holder", factory=lambda: Holder(gate))
    asking = asyncio.create_task(ref.ask(Hold(key="k", n=1), timeout=1.0))
    # the handler holds the message: the ask can only time out (a deadline short enough to
    # pass before the message arrives would drop it unhandled, the next test's case)
    await wait_until(lambda: gate.active == 1)
    with pytest.raises(AskTimeout, match="did not answer Hold"):
        await asking
    assert len(system.pending_asks) == 0
    gate.open.set()  # the late reply is ignored, not an error
    await wait_until(lambda: len(gate.done) == 1)
    assert len(system.pending_asks) == 0


async def test_ask_timeout_while_waiting_for_room_withdraws_the_send(
    system: ActorSystem,
) -> None:
    """An ask stuck behind a full mailbox times out and its message never enters the mailbox."""
    gate = Gate()
    ref = system.spawn(Holder, "holder", factory=lambda: Holder(gate), mailbox_size=1)
    await ref.tell(Hold(key="k", n=0))
    await wait_until(lambda: gate.active == 1)
    await ref.tell(Hold(key="k", n=1))  # full
    with pytest.raises(AskTimeout):
        await ref.ask(Hold(key="k", n=2), timeout=0.05)
    assert len(system.pending_asks) == 0
    gate.open.set()
    await wait_until(lambda: len(gate.done) == 2)
    await asyncio.sleep(0.01)
    assert [n for _, n in gate.done] == [0, 1]


async def test_expired_ask_is_not_handled(system: ActorSystem) -> None:
    """An ask whose asker gave up before the worker reached it is skipped, counted as expired."""
    gate = Gate()
    ref = system.spawn(Holder, "holder", factory=lambda: Holder(gate))
    await ref.tell(Hold(key="k", n=0))
    await wait_until(lambda: gate.active == 1)
    with pytest.raises(AskTimeout):
        await ref.ask(Hold(key="k", n=1), timeout=0.02)
    gate.open.set()
    await wait_until(lambda: system.status()[0].expired == 1)
    assert [n for _, n in gate.done] == [0]


async def test_unregistered_message_is_rejected_at_the_sender(system: ActorSystem) -> None:
    """Telling or asking a Message type no codec knows raises CodecError at the sender."""
    ref = system.spawn(Echoer, "echo")
    with pytest.raises(CodecError, match="not registered"):
        await ref.tell(Stranger(n=1))
    with pytest.raises(CodecError, match="not registered"):
        await ref.ask(Stranger(n=1))
    assert len(system.pending_asks) == 0
    assert system.status()[0].mailbox == 0


async def test_unencodable_value_is_rejected_at_the_sender(system: ActorSystem) -> None:
    """A registered message carrying a value msgspec cannot encode raises CodecError."""
    ref = system.spawn(Echoer, "echo")
    with pytest.raises(CodecError, match="cannot be encoded"):
        await ref.tell(Carrier(payload=object()))
    with pytest.raises(CodecError, match="cannot be encoded"):
        await ref.tell(Carrier(payload=2**80))  # past msgpack's 64-bit integers
    with pytest.raises(CodecError, match="cannot be encoded"):
        await ref.ask(Carrier(payload=object()))
    assert len(system.pending_asks) == 0
    assert system.status()[0].mailbox == 0


async def test_unencodable_timer_message_is_rejected_when_scheduled(system: ActorSystem) -> None:
    """A timer's message is checked when it is scheduled, not later inside the timer."""
    system.spawn(Echoer, "echo")
    with pytest.raises(CodecError):
        system.schedule_to_shard("echo", 0, 0.01, Carrier(payload=object()))
    with pytest.raises(CodecError):
        system.schedule_to_shard("echo", 0, 0.01, Stranger(n=1))


async def test_unencodable_reply_reaches_the_asker_as_an_error(
    system: ActorSystem,
) -> None:
    """A handler replying with a type the codec does not know gives the asker an error, not a
    time-out."""
    ref = system.spawn(Echoer, "echo")  # Echoed is deliberately not registered
    with pytest.raises(RemoteError, match="not registered") as caught:
        await ref.ask(Echo(text="x"), timeout=1.0)
    assert caught.value.code == "reply_not_encodable"
    assert caught.value.category == "internal"
    assert len(system.pending_asks) == 0


async def test_unknown_actor_and_stopped_system_are_refused(cluster: Cluster) -> None:
    """A ref to an actor nobody declared raises UnknownActor; a stopped system takes no tells."""
    actor_system = await cluster.node("n")
    ref = actor_system.spawn(Echoer, "echo")
    with pytest.raises(UnknownActor):
        actor_system.ref("nobody")
    await actor_system.stop(timeout=0.5)
    assert not actor_system.ready
    with pytest.raises(SystemStopping):
        await ref.tell(Echo(text="late"))
    with pytest.raises(SystemStopping):
        await ref.ask(Echo(text="late"))


class Relay(Message, frozen=True):
    n: int


class Relayed(Message, frozen=True):
    n: int


class Tracer(Actor):
    seen: list[tuple[str, int, str]]

    @handles(Relay)
    async def relay(self, message: Relay) -> None:
        self.seen.append(("relay", message.n, current_trace_id()))
        await self.tell("tracer", Relayed(n=message.n))

    @handles(Relayed)
    async def relayed(self, message: Relayed) -> None:
        self.seen.append(("relayed", message.n, current_trace_id()))


async def test_trace_id_follows_the_messages_a_handler_causes(system: ActorSystem) -> None:
    """The trace id bound where a message was sent is current in its handler and travels on
    in the messages that handler sends; unrelated messages get their own trace ids."""
    seen: list[tuple[str, int, str]] = []

    def factory() -> Tracer:
        tracer = Tracer()
        tracer.seen = seen
        return tracer

    ref = system.spawn(Tracer, "tracer", factory=factory)
    token = trace_id_var.set("request-trace-1")
    try:
        await ref.tell(Relay(n=1))
    finally:
        trace_id_var.reset(token)
    await ref.tell(Relay(n=2))
    await wait_until(lambda: len(seen) == 4)
    traces = {(kind, n): trace for kind, n, trace in seen}
    assert traces[("relay", 1)] == traces[("relayed", 1)] == "request-trace-1"
    assert traces[("relay", 2)] == traces[("relayed", 2)] != "request-trace-1"
    assert traces[("relay", 2)] != ""
