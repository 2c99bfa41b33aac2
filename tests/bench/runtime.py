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
* pykka: pykka.ThreadingActor driven from the main thread while no event loop runs,
  with `tell` and blocking `ask`: the usual choice for actors in Python.

Method: every system is set up once, warmed up once, then measured in interleaved
rounds (each round runs every system's tell and ask, in a rotating order), so a
slowdown of the machine part-way through hits all systems alike rather than skewing one
ratio. Each rate is the median of the rounds; each ratio is the median of the per-round
ratios (both sides measured moments apart). The runtime and the bare queue live on
one event loop that is driven round by round and is idle while Pykka runs. By default
the process is pinned to one CPU: the asyncio systems run on one thread anyway, and
Pykka's two threads are then steady and at their fastest (left to migrate between
cores, Pykka swings between about 1x and 4x slower from round to round, which would
flatter the runtime). All systems send the same pre-built message objects, so message
construction is not measured.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

from actors.runtime import Actor, ActorRef, ActorSystem, MemoryDeadLetterStore, handles
from transport import Codec, MemoryTransport, Message

Progress = Callable[[str], None]

# Targets: the runtime's share of the bare queue's rate, and its multiple of Pykka's.
TELL_VS_BARE_TARGET = 0.50
ASK_VS_BARE_TARGET = 0.60
VS_PYKKA_TARGET = 5.0

# Pykka rounds are sized from its warm-up rate to last at most about this long.
PYKKA_ROUND_SECONDS = 1.0
# A round that does not finish in this long means a lost message: fail loudly.
ROUND_TIMEOUT_S = 120.0


class BenchTell(Message, frozen=True, kw_only=True):
    """The one-way message: a small registered message type."""

    seq: int = 0


class BenchAsk(Message, frozen=True, kw_only=True):
    """The request of a round trip."""

    seq: int = 0


class BenchReply(Message, frozen=True, kw_only=True):
    """The small registered reply to a BenchAsk."""

    ok: bool = True


TELL_MESSAGE = BenchTell()
ASK_MESSAGE = BenchAsk()
REPLY_MESSAGE = BenchReply()


@dataclass
class BenchConfig:
    """How much work each system gets, and whether to pin the process to one CPU."""

    tell_n: int = 200_000
    ask_n: int = 20_000
    rounds: int = 5
    pin_cpu: bool = True

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
    seconds: float = 0.0  # time spent in this system's warm-up and rounds

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
            "tell_spread": round(spread(self.tell_rates), 4),
            "ask_spread": round(spread(self.ask_rates), 4),
            "seconds": round(self.seconds, 2),
        }


@dataclass
class Ratio:
    """One target: the runtime's rate over a reference system's rate, against a minimum."""

    name: str
    workload: str  # "tell" or "ask"
    reference: str  # "bare" or "pykka"
    runtime_rate: float
    reference_rate: float
    target: float
    # runtime/reference within each round: both ran moments apart, so a slow spell of
    # this shared machine hits both sides of a ratio instead of only one median
    per_round: list[float] = field(default_factory=list)

    @property
    def value(self) -> float:
        if self.per_round:
            return statistics.median(self.per_round)
        return self.runtime_rate / self.reference_rate

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
            "per_round": [round(ratio, 4) for ratio in self.per_round],
        }


def _per_round(runtime: list[float], reference: list[float]) -> list[float]:
    return [mine / theirs for mine, theirs in zip(runtime, reference, strict=True)]


def spread(rates: list[float]) -> float:
    """(max - min) / median: how noisy the rounds were."""
    if len(rates) < 2:
        return 0.0
    return (max(rates) - min(rates)) / statistics.median(rates)


def _settle() -> None:
    """Start each round from the same place: no garbage from the last one pending."""
    gc.collect()


class _Bench(Protocol):
    """One system under test, driven synchronously from the main thread."""

    key: str
    label: str

    def tell(self, n: int) -> float:
        """Send n tells, wait until all are handled; messages per second."""
        ...

    def ask(self, n: int) -> float:
        """n sequential asks; round trips per second."""
        ...

    def close(self) -> None: ...


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


class _RuntimeBench:
    """splitgo's ActorSystem on MemoryTransport (no codec), one actor, shards=1."""

    key = "runtime"
    label = "splitgo runtime (memory)"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.run_until_complete(self._start())

    async def _start(self) -> None:
        self.transport = MemoryTransport(node_id="bench")
        codec = Codec()
        codec.register(BenchReply)
        self.system = ActorSystem(self.transport, codec=codec, dead_letters=MemoryDeadLetterStore())
        await self.system.start()
        self.counter = AsyncCounter()
        actor = _BenchActor(self.counter)
        self.ref: ActorRef = self.system.spawn(
            _BenchActor, "bench", factory=lambda: actor, shards=1
        )

    def tell(self, n: int) -> float:
        return self._loop.run_until_complete(self._tell(n))

    def ask(self, n: int) -> float:
        return self._loop.run_until_complete(self._ask(n))

    async def _tell(self, n: int) -> float:
        handled_before = self.system.status()[0].handled
        self.counter.reset(n)
        _settle()
        tell = self.ref.tell
        message = TELL_MESSAGE
        started = time.perf_counter()
        for _ in range(n):
            await tell(message)
        await asyncio.wait_for(self.counter.done.wait(), ROUND_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        status = self.system.status()[0]
        if status.handled - handled_before != n or status.failed:
            raise RuntimeError(f"runtime handled {status.handled - handled_before} of {n} tells")
        return n / elapsed

    async def _ask(self, n: int) -> float:
        _settle()
        ask = self.ref.ask
        message = ASK_MESSAGE
        reply: Any = None
        started = time.perf_counter()
        for _ in range(n):
            reply = await ask(message)
        elapsed = time.perf_counter() - started
        if type(reply) is not BenchReply:
            raise RuntimeError(f"runtime ask answered {reply!r}")
        return n / elapsed

    def close(self) -> None:
        self._loop.run_until_complete(self._stop())

    async def _stop(self) -> None:
        await self.system.stop()
        await self.transport.close()


# --------------------------------------------------------------------------- bare queue

AskItem = tuple[Message, "asyncio.Future[Any]"]
TellHandler = Callable[[Message], Coroutine[Any, Any, None]]
AskHandler = Callable[[Message], Coroutine[Any, Any, BenchReply]]


def _bare_handlers(counter: AsyncCounter) -> tuple[TellHandler, AskHandler]:
    """The same handler bodies as the runtime's actor, as plain async functions."""

    async def on_tell(message: Message) -> None:
        counter.count += 1
        if counter.count == counter.target:
            counter.done.set()

    async def on_ask(message: Message) -> BenchReply:
        return REPLY_MESSAGE

    return on_tell, on_ask


async def _bare_tell_consumer(queue: asyncio.Queue[Message], handler: TellHandler) -> None:
    while True:
        message = await queue.get()
        await handler(message)


async def _bare_ask_consumer(queue: asyncio.Queue[AskItem], handler: AskHandler) -> None:
    while True:
        message, future = await queue.get()
        future.set_result(await handler(message))


class _BareBench:
    """asyncio.Queue(maxsize=1024) and one consumer task: the limit on asyncio."""

    key = "bare"
    label = "bare asyncio.Queue (limit)"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.run_until_complete(self._start())

    async def _start(self) -> None:
        self.counter = AsyncCounter()
        on_tell, on_ask = _bare_handlers(self.counter)
        self.tells: asyncio.Queue[Message] = asyncio.Queue(maxsize=1024)
        self.asks: asyncio.Queue[AskItem] = asyncio.Queue(maxsize=1024)
        self.consumers = [
            asyncio.create_task(_bare_tell_consumer(self.tells, on_tell)),
            asyncio.create_task(_bare_ask_consumer(self.asks, on_ask)),
        ]

    def tell(self, n: int) -> float:
        return self._loop.run_until_complete(self._tell(n))

    def ask(self, n: int) -> float:
        return self._loop.run_until_complete(self._ask(n))

    async def _tell(self, n: int) -> float:
        self.counter.reset(n)
        _settle()
        put = self.tells.put
        message = TELL_MESSAGE
        started = time.perf_counter()
        for _ in range(n):
            await put(message)
        await asyncio.wait_for(self.counter.done.wait(), ROUND_TIMEOUT_S)
        return n / (time.perf_counter() - started)

    async def _ask(self, n: int) -> float:
        _settle()
        loop = asyncio.get_running_loop()
        put = self.asks.put
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

    def close(self) -> None:
        self._loop.run_until_complete(self._stop())

    async def _stop(self) -> None:
        for task in self.consumers:
            task.cancel()
        await asyncio.gather(*self.consumers, return_exceptions=True)


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


class _PykkaBench:
    """pykka.ThreadingActor, driven from the main thread with no event loop running."""

    key = "pykka"
    label = "pykka ThreadingActor"

    def __init__(self) -> None:
        self.state = _PykkaState()
        self.actor_ref = _PykkaCounter.start(self.state)

    def tell(self, n: int) -> float:
        state = self.state
        state.reset(n)
        _settle()
        tell = self.actor_ref.tell
        message = TELL_MESSAGE
        started = time.perf_counter()
        for _ in range(n):
            tell(message)
        if not state.done.wait(ROUND_TIMEOUT_S):
            raise RuntimeError(f"pykka handled {state.count} of {n} tells in time")
        return n / (time.perf_counter() - started)

    def ask(self, n: int) -> float:
        _settle()
        ask = self.actor_ref.ask
        message = ASK_MESSAGE
        reply: Any = None
        started = time.perf_counter()
        for _ in range(n):
            reply = ask(message)
        elapsed = time.perf_counter() - started
        if type(reply) is not BenchReply:
            raise RuntimeError(f"pykka ask answered {reply!r}")
        return n / elapsed

    def close(self) -> None:
        self.actor_ref.stop()


def _sized(rate: float, ceiling: int) -> int:
    """A message count that takes about PYKKA_ROUND_SECONDS at `rate`, at most `ceiling`."""
    wanted = rate * PYKKA_ROUND_SECONDS
    step = 1000 if wanted >= 10_000 else 100
    return max(min(ceiling, math.ceil(wanted / step) * step), min(ceiling, 1000))


# --------------------------------------------------------------------------- driver


@dataclass
class RuntimeReport:
    """Everything one run measured, and the verdict on each target."""

    config: BenchConfig
    systems: dict[str, SystemResult]
    ratios: list[Ratio]
    pinned_cpu: int | None

    @property
    def all_passed(self) -> bool:
        return all(ratio.passed for ratio in self.ratios)

    def as_json(self) -> dict[str, Any]:
        return {
            "config": {
                "tell_n": self.config.tell_n,
                "ask_n": self.config.ask_n,
                "rounds": self.config.rounds,
                "warm_up_rounds": 1,
                "statistic": "median",
                "interleaved": True,
                "pinned_cpu": self.pinned_cpu,
            },
            "systems": {key: result.as_json() for key, result in self.systems.items()},
            "ratios": [ratio.as_json() for ratio in self.ratios],
            "all_passed": self.all_passed,
        }

    def format(self) -> str:
        return format_report(self.systems, self.ratios)


def _pin_to_one_cpu() -> tuple[int | None, set[int] | None]:
    """Pin this thread (and the threads it starts) to one usable CPU; (cpu, old mask)."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)
    os.sched_setaffinity(0, {cpu})
    return cpu, allowed


def run_runtime_bench(config: BenchConfig, progress: Progress = print) -> RuntimeReport:
    """Set every system up, warm each up once, then measure them in interleaved rounds."""
    pinned_cpu, old_mask = _pin_to_one_cpu() if config.pin_cpu else (None, None)
    progress(f"  pinned to CPU {pinned_cpu}" if pinned_cpu is not None else "  not pinned to a CPU")
    loop = asyncio.new_event_loop()
    benches: list[_Bench] = []
    try:
        benches.append(_RuntimeBench(loop))
        benches.append(_BareBench(loop))
        benches.append(_PykkaBench())  # its thread inherits the CPU pinning
        results: dict[str, SystemResult] = {}
        for bench in benches:
            started = time.perf_counter()
            if bench.key == "pykka":
                # a tenth of the work warms it up; its rate sizes the timed rounds
                tell_rate = bench.tell(max(config.tell_n // 10, 1))
                ask_rate = bench.ask(max(config.ask_n // 10, 1))
                tell_n, ask_n = _sized(tell_rate, config.tell_n), _sized(ask_rate, config.ask_n)
            else:
                tell_rate, ask_rate = bench.tell(config.tell_n), bench.ask(config.ask_n)
                tell_n, ask_n = config.tell_n, config.ask_n
            result = SystemResult(bench.key, bench.label, tell_n=tell_n, ask_n=ask_n)
            result.seconds = time.perf_counter() - started
            results[bench.key] = result
            progress(
                f"  warm-up   {bench.label:<28} tell {tell_rate:>11,.0f} msg/s   "
                f"ask {ask_rate:>9,.0f} rt/s"
            )
        for round_index in range(config.rounds):
            shift = round_index % len(benches)
            for bench in benches[shift:] + benches[:shift]:
                result = results[bench.key]
                started = time.perf_counter()
                result.tell_rates.append(bench.tell(result.tell_n))
                result.ask_rates.append(bench.ask(result.ask_n))
                result.seconds += time.perf_counter() - started
                progress(
                    f"  round {round_index + 1}/{config.rounds} {bench.label:<28} "
                    f"tell {result.tell_rates[-1]:>11,.0f} msg/s   "
                    f"ask {result.ask_rates[-1]:>9,.0f} rt/s"
                )
    finally:
        for bench in reversed(benches):
            bench.close()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        if old_mask is not None:
            os.sched_setaffinity(0, old_mask)
    return RuntimeReport(config, results, compute_ratios(results), pinned_cpu)


def compute_ratios(systems: dict[str, SystemResult]) -> list[Ratio]:
    runtime, bare, pykka_ = systems["runtime"], systems["bare"], systems["pykka"]
    return [
        Ratio(
            "runtime/bare tell",
            "tell",
            "bare",
            runtime.tell,
            bare.tell,
            TELL_VS_BARE_TARGET,
            _per_round(runtime.tell_rates, bare.tell_rates),
        ),
        Ratio(
            "runtime/bare ask",
            "ask",
            "bare",
            runtime.ask,
            bare.ask,
            ASK_VS_BARE_TARGET,
            _per_round(runtime.ask_rates, bare.ask_rates),
        ),
        Ratio(
            "runtime/pykka tell",
            "tell",
            "pykka",
            runtime.tell,
            pykka_.tell,
            VS_PYKKA_TARGET,
            _per_round(runtime.tell_rates, pykka_.tell_rates),
        ),
        Ratio(
            "runtime/pykka ask",
            "ask",
            "pykka",
            runtime.ask,
            pykka_.ask,
            VS_PYKKA_TARGET,
            _per_round(runtime.ask_rates, pykka_.ask_rates),
        ),
    ]


def _format_ratio(ratio: Ratio, value: float) -> str:
    return f"{value:.1%}" if ratio.reference == "bare" else f"{value:.2f}x"


def format_report(systems: dict[str, SystemResult], ratios: list[Ratio]) -> str:
    """The table of rates, then each ratio against its target with PASS or MISS."""
    lines = [
        "",
        f"{'system':<28} {'tell msg/s':>12} {'ask round trips/s':>18} "
        f"{'tell n':>9} {'ask n':>8} {'spread t/a':>11}",
        "-" * 91,
    ]
    for result in systems.values():
        noise = f"{spread(result.tell_rates):.0%}/{spread(result.ask_rates):.0%}"
        lines.append(
            f"{result.label:<28} {result.tell:>12,.0f} {result.ask:>18,.0f} "
            f"{result.tell_n:>9,} {result.ask_n:>8,} {noise:>11}"
        )
    lines += [
        "(rates: median of the rounds; spread = (max - min) / median over the rounds;"
        " ratios below: median of the per-round ratios)",
        "",
        f"{'ratio':<20} {'measured':>9} {'target':>10}  result",
        "-" * 91,
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
            f"{ratio.name:<20} {_format_ratio(ratio, ratio.value):>9} "
            f"{'>= ' + _format_ratio(ratio, ratio.target):>10}  {verdict}"
        )
    return "\n".join(lines)
