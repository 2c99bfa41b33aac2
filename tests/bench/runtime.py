"""Throughput of the actor runtime against a bare asyncio.Queue and Pykka, in one run.

Three systems get the same two workloads:

* tell: a producer sends N one-way messages as fast as it can; the clock stops when the
  consumer has handled all N (its handler counts them and sets an event at N).
* ask: N sequential request/reply round trips, each awaited before the next is sent.

The systems:

* runtime: splitgo's ActorSystem over MemoryTransport without codec, one actor with
  shards=1 (statistics and supervision are always on), `await ref.tell(msg)` and
  `await ref.ask(msg)`.
* bare: an asyncio.Queue(maxsize=1024) and one consumer task calling an async handler:
  the floor no actor runtime on asyncio can go under, so "runtime/bare" is the overhead.
* pykka: pykka.ThreadingActor driven from a plain thread, outside any event loop, with
  `tell` and blocking `ask`: the usual choice for actors in Python.

Every figure is the median of several timed rounds after one warm-up round. All systems
send the same pre-built message objects, so message construction is not measured.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.runtime import Actor, ActorRef, ActorSystem, MemoryDeadLetterStore, handles
from transport import Codec, MemoryTransport, Message

Progress = Callable[[str], None]

# Targets: the runtime's share of the bare queue's rate, and its multiple of Pykka's.
TELL_VS_BARE_TARGET = 0.50
ASK_VS_BARE_TARGET = 0.60
VS_PYKKA_TARGET = 5.0

# Pykka rounds are sized from its warm-up rate to last about this long (it is slow).
PYKKA_ROUND_SECONDS = 0.75
# A round that does not finish in this long means a lost message: fail loudly.
ROUND_TIMEOUT_S = 120.0


class BenchTell(Message):
    """The one-way message: a small registered message type."""

    seq: int = 0


class BenchAsk(Message):
    """The request of a round trip."""

    seq: int = 0


class BenchReply(Message):
    """The small registered reply to a BenchAsk."""

    ok: bool = True


TELL_MESSAGE = BenchTell()
ASK_MESSAGE = BenchAsk()
REPLY_MESSAGE = BenchReply()


@dataclass
class BenchConfig:
    """How much work each system gets."""

    tell_n: int = 200_000
    ask_n: int = 20_000
    rounds: int = 5

    def __post_init__(self) -> None:
        if self.tell_n < 1 or self.ask_n < 1 or self.rounds < 1:
            raise ValueError("tell_n, ask_n and rounds must be at least 1")


@dataclass
class SystemResult:
    """The rates one system reached, round by round."""

    key: str
    label: str
    tell_n: int
    ask_n: int
    tell_rates: list[float] = field(default_factory=list)
    ask_rates: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tell(self) -> float:
        return statistics.median(self.tell_rates)

    @property
    def ask(self) -> float:
        return statistics.median(self.ask_rates)

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "tell_n": self.tell_n,
            "ask_n": self.ask_n,
            "tell_msgs_per_s": round(self.tell, 1),
            "ask_round_trips_per_s": round(self.ask, 1),
            "tell_rounds": [round(rate, 1) for rate in self.tell_rates],
            "ask_rounds": [round(rate, 1) for rate in self.ask_rates],
            "tell_spread": round(_spread(self.tell_rates), 4),
            "ask_spread": round(_spread(self.ask_rates), 4),
            "wall_seconds": round(self.seconds, 2),
        }


@dataclass
class Ratio:
    """One target: runtime rate over a reference rate, against a minimum."""

    name: str
    workload: str  # "tell" or "ask"
    reference: str  # "bare" or "pykka"
    value: float
    target: float
    runtime_rate: float
    reference_rate: float

    @property
    def passed(self) -> bool:
        return self.value >= self.target

    @property
    def needed_rate(self) -> float:
        """The runtime rate that would have met the target."""
        return self.reference_rate * self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "target": self.target,
            "passed": self.passed,
            "runtime_rate": round(self.runtime_rate, 1),
            "reference_rate": round(self.reference_rate, 1),
            "needed_rate": round(self.needed_rate, 1),
        }


class AsyncCounter:
    """Counts handled messages; the event is set when the count reaches the target."""

    __slots__ = ("count", "done", "target")

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = asyncio.Event()

    def reset(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.done.clear()


def _spread(rates: list[float]) -> float:
    """(max - min) / median: how noisy the rounds were."""
    if len(rates) < 2:
        return 0.0
    return (max(rates) - min(rates)) / statistics.median(rates)


def _settle() -> None:
    """Start each round from the same place: no garbage from the last one pending."""
    gc.collect()


# --------------------------------------------------------------------------- runtime


class _BenchActor(Actor):
    """Counts tells; answers asks with a small reply."""

    def __init__(self, counter: AsyncCounter) -> None:
        self.counter = counter

    @handles(BenchTell)
    async def on_tell(self, message: BenchTell) -> None:
        counter = self.counter
        counter.count += 1
        if counter.count == counter.target:
            counter.done.set()

    @handles(BenchAsk)
    async def on_ask(self, message: BenchAsk) -> BenchReply:
        return REPLY_MESSAGE


async def _runtime_tell_round(
    ref: ActorRef, system: ActorSystem, counter: AsyncCounter, n: int
) -> float:
    handled_before = system.status()[0].handled
    counter.reset(n)
    _settle()
    tell = ref.tell
    message = TELL_MESSAGE
    started = time.perf_counter()
    for _ in range(n):
        await tell(message)
    await asyncio.wait_for(counter.done.wait(), ROUND_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    status = system.status()[0]
    if status.handled - handled_before != n or status.failed:
        raise RuntimeError(f"runtime handled {status.handled - handled_before} of {n} tells")
    return n / elapsed


async def _runtime_ask_round(ref: ActorRef, n: int) -> float:
    _settle()
    ask = ref.ask
    message = ASK_MESSAGE
    reply: Any = None
    started = time.perf_counter()
    for _ in range(n):
        reply = await ask(message)
    elapsed = time.perf_counter() - started
    if type(reply) is not BenchReply:
        raise RuntimeError(f"runtime ask answered {reply!r}")
    return n / elapsed


async def _measure_runtime(config: BenchConfig) -> SystemResult:
    result = SystemResult(
        "runtime", "splitgo runtime (memory)", tell_n=config.tell_n, ask_n=config.ask_n
    )
    transport = MemoryTransport(node_id="bench")
    codec = Codec()
    codec.register(BenchReply)
    system = ActorSystem(transport, codec=codec, dead_letters=MemoryDeadLetterStore())
    await system.start()
    counter = AsyncCounter()
    actor = _BenchActor(counter)
    ref = system.spawn(_BenchActor, "bench", factory=lambda: actor, shards=1)
    try:
        await _runtime_tell_round(ref, system, counter, config.tell_n)  # warm-up
        await _runtime_ask_round(ref, config.ask_n)
        for _ in range(config.rounds):
            result.tell_rates.append(
                await _runtime_tell_round(ref, system, counter, config.tell_n)
            )
            result.ask_rates.append(await _runtime_ask_round(ref, config.ask_n))
    finally:
        await system.stop()
        await transport.close()
    return result


# --------------------------------------------------------------------------- bare queue

TellItem = Message
AskItem = tuple[Message, "asyncio.Future[Any]"]


def _bare_handlers(
    counter: AsyncCounter,
) -> tuple[
    Callable[[Message], Coroutine[Any, Any, None]],
    Callable[[Message], Coroutine[Any, Any, BenchReply]],
]:
    """The same handler bodies as the runtime's actor, as plain async functions."""

    async def on_tell(message: Message) -> None:
        counter.count += 1
        if counter.count == counter.target:
            counter.done.set()

    async def on_ask(message: Message) -> BenchReply:
        return REPLY_MESSAGE

    return on_tell, on_ask


async def _bare_tell_consumer(
    queue: asyncio.Queue[TellItem], handler: Callable[[Message], Coroutine[Any, Any, None]]
) -> None:
    while True:
        message = await queue.get()
        await handler(message)


async def _bare_ask_consumer(
    queue: asyncio.Queue[AskItem],
    handler: Callable[[Message], Coroutine[Any, Any, BenchReply]],
) -> None:
    while True:
        message, future = await queue.get()
        future.set_result(await handler(message))


async def _bare_tell_round(queue: asyncio.Queue[TellItem], counter: AsyncCounter, n: int) -> float:
    counter.reset(n)
    _settle()
    put = queue.put
    message = TELL_MESSAGE
    started = time.perf_counter()
    for _ in range(n):
        await put(message)
    await asyncio.wait_for(counter.done.wait(), ROUND_TIMEOUT_S)
    return n / (time.perf_counter() - started)


async def _bare_ask_round(queue: asyncio.Queue[AskItem], n: int) -> float:
    _settle()
    loop = asyncio.get_running_loop()
    put = queue.put
    message = ASK_MESSAGE
    reply: Any = None
    started = time.perf_counter()
    for _ in range(n):
        future: asyncio.Future[Any] = loop.create_future()
        await put((message, future))
        reply = await future
    elapsed = time.perf_counter() - started
    if type(reply) is not BenchReply:
        raise RuntimeError(f"bare ask answered {reply!r}")
    return n / elapsed


async def _measure_bare(config: BenchConfig) -> SystemResult:
    result = SystemResult(
        "bare", "bare asyncio.Queue (limit)", tell_n=config.tell_n, ask_n=config.ask_n
    )
    counter = AsyncCounter()
    on_tell, on_ask = _bare_handlers(counter)
    tells: asyncio.Queue[TellItem] = asyncio.Queue(maxsize=1024)
    asks: asyncio.Queue[AskItem] = asyncio.Queue(maxsize=1024)
    consumers = [
        asyncio.create_task(_bare_tell_consumer(tells, on_tell)),
        asyncio.create_task(_bare_ask_consumer(asks, on_ask)),
    ]
    try:
        await _bare_tell_round(tells, counter, config.tell_n)  # warm-up
        await _bare_ask_round(asks, config.ask_n)
        for _ in range(config.rounds):
            result.tell_rates.append(await _bare_tell_round(tells, counter, config.tell_n))
            result.ask_rates.append(await _bare_ask_round(asks, config.ask_n))
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
    return result


# --------------------------------------------------------------------------- pykka


class _PykkaState:
    """Shared between the producing thread and the actor's thread."""

    __slots__ = ("count", "done", "target")

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = threading.Event()

    def reset(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.done.clear()


class _PykkaCounter(pykka.ThreadingActor):
    """The same work as the runtime's actor: count tells, answer asks."""

    def __init__(self, state: _PykkaState) -> None:
        super().__init__()
        self.state = state

    def on_receive(self, message: Any) -> Any:
        if type(message) is BenchTell:
            state = self.state
            state.count += 1
            if state.count == state.target:
                state.done.set()
            return None
        return REPLY_MESSAGE


def _pykka_tell_round(actor_ref: pykka.ActorRef[Any], state: _PykkaState, n: int) -> float:
    state.reset(n)
    _settle()
    tell = actor_ref.tell
    message = TELL_MESSAGE
    started = time.perf_counter()
    for _ in range(n):
        tell(message)
    if not state.done.wait(ROUND_TIMEOUT_S):
        raise RuntimeError(f"pykka handled {state.count} of {n} tells in time")
    return n / (time.perf_counter() - started)


def _pykka_ask_round(actor_ref: pykka.ActorRef[Any], n: int) -> float:
    _settle()
    ask = actor_ref.ask
    message = ASK_MESSAGE
    reply: Any = None
    started = time.perf_counter()
    for _ in range(n):
        reply = ask(message)
    elapsed = time.perf_counter() - started
    if type(reply) is not BenchReply:
        raise RuntimeError(f"pykka ask answered {reply!r}")
    return n / elapsed


def _sized(rate: float, ceiling: int) -> int:
    """A message count that takes about PYKKA_ROUND_SECONDS at `rate`, at most `ceiling`."""
    wanted = rate * PYKKA_ROUND_SECONDS
    step = 1000 if wanted >= 10_000 else 100
    return max(min(ceiling, math.ceil(wanted / step) * step), min(ceiling, 1000))


def _measure_pykka(config: BenchConfig) -> SystemResult:
    state = _PykkaState()
    actor_ref = _PykkaCounter.start(state)
    try:
        # warm-up on a tenth of the work; its rate sizes the timed rounds
        tell_rate = _pykka_tell_round(actor_ref, state, max(config.tell_n // 10, 1))
        ask_rate = _pykka_ask_round(actor_ref, max(config.ask_n // 10, 1))
        result = SystemResult(
            "pykka",
            "pykka ThreadingActor",
            tell_n=_sized(tell_rate, config.tell_n),
            ask_n=_sized(ask_rate, config.ask_n),
        )
        for _ in range(config.rounds):
            result.tell_rates.append(_pykka_tell_round(actor_ref, state, result.tell_n))
            result.ask_rates.append(_pykka_ask_round(actor_ref, result.ask_n))
    finally:
        actor_ref.stop()
    return result


# --------------------------------------------------------------------------- driver


@dataclass
class RuntimeReport:
    """Everything one run measured, and the verdict on each target."""

    config: BenchConfig
    systems: dict[str, SystemResult]
    ratios: list[Ratio]

    @property
    def all_passed(self) -> bool:
        return all(ratio.passed for ratio in self.ratios)

    def as_json(self) -> dict[str, Any]:
        return {
            "config": {
                "tell_n": self.config.tell_n,
                "ask_n": self.config.ask_n,
                "rounds": self.config.rounds,
                "statistic": "median",
                "warm_up_rounds": 1,
            },
            "systems": {key: result.as_json() for key, result in self.systems.items()},
            "ratios": [ratio.as_json() for ratio in self.ratios],
            "all_passed": self.all_passed,
        }

    def format(self) -> str:
        return format_report(self.systems, self.ratios)


def run_runtime_bench(config: BenchConfig, progress: Progress = print) -> RuntimeReport:
    """Measure the three systems one after the other, each on a fresh event loop or thread."""
    systems: dict[str, SystemResult] = {}
    steps: list[tuple[str, Callable[[], SystemResult]]] = [
        ("splitgo runtime (memory)", lambda: asyncio.run(_measure_runtime(config))),
        ("bare asyncio.Queue", lambda: asyncio.run(_measure_bare(config))),
        ("pykka ThreadingActor", lambda: _measure_pykka(config)),
    ]
    for index, (label, measure) in enumerate(steps, start=1):
        progress(
            f"[{index}/{len(steps)}] {label}: warm-up + {config.rounds} rounds of tell and ask ..."
        )
        started = time.perf_counter()
        result = measure()
        result.seconds = time.perf_counter() - started
        systems[result.key] = result
        progress(
            f"      tell {result.tell:>12,.0f} msg/s (n={result.tell_n:,}, "
            f"spread {_spread(result.tell_rates):.0%})   "
            f"ask {result.ask:>10,.0f} rt/s (n={result.ask_n:,}, "
            f"spread {_spread(result.ask_rates):.0%})   [{result.seconds:.1f} s]"
        )
    return RuntimeReport(config, systems, compute_ratios(systems))


def compute_ratios(systems: dict[str, SystemResult]) -> list[Ratio]:
    runtime, bare, pykka_ = systems["runtime"], systems["bare"], systems["pykka"]
    return [
        Ratio(
            "runtime/bare tell",
            "tell",
            "bare",
            runtime.tell / bare.tell,
            TELL_VS_BARE_TARGET,
            runtime.tell,
            bare.tell,
        ),
        Ratio(
            "runtime/bare ask",
            "ask",
            "bare",
            runtime.ask / bare.ask,
            ASK_VS_BARE_TARGET,
            runtime.ask,
            bare.ask,
        ),
        Ratio(
            "runtime/pykka tell",
            "tell",
            "pykka",
            runtime.tell / pykka_.tell,
            VS_PYKKA_TARGET,
            runtime.tell,
            pykka_.tell,
        ),
        Ratio(
            "runtime/pykka ask",
            "ask",
            "pykka",
            runtime.ask / pykka_.ask,
            VS_PYKKA_TARGET,
            runtime.ask,
            pykka_.ask,
        ),
    ]


def _format_ratio(ratio: Ratio, value: float) -> str:
    return f"{value:.1%}" if ratio.reference == "bare" else f"{value:.2f}x"


def format_report(systems: dict[str, SystemResult], ratios: list[Ratio]) -> str:
    """The table of rates, then each ratio against its target with PASS or MISS."""
    lines = [
        "",
        f"{'system':<30} {'tell msg/s':>14} {'ask round trips/s':>19} {'tell n':>9} {'ask n':>8}",
        "-" * 84,
    ]
    for result in systems.values():
        lines.append(
            f"{result.label:<30} {result.tell:>14,.0f} {result.ask:>19,.0f} "
            f"{result.tell_n:>9,} {result.ask_n:>8,}"
        )
    lines += [
        "",
        f"{'ratio':<22} {'measured':>9} {'target':>9}  result",
        "-" * 84,
    ]
    for ratio in ratios:
        verdict = "PASS"
        if not ratio.passed:
            unit = "msg/s" if ratio.workload == "tell" else "rt/s"
            if ratio.reference == "bare":
                short = f"{(ratio.target - ratio.value) * 100:.1f} points"
            else:
                short = f"{ratio.target - ratio.value:.2f}x"
            verdict = (
                f"MISS by {short}: needs {ratio.needed_rate:,.0f} {unit}, "
                f"has {ratio.runtime_rate:,.0f} ({ratio.runtime_rate / ratio.needed_rate - 1:+.0%})"
            )
        lines.append(
            f"{ratio.name:<22} {_format_ratio(ratio, ratio.value):>9} "
            f">= {_format_ratio(ratio, ratio.target):>6}  {verdict}"
        )
    return "\n".join(lines)
