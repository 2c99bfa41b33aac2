"""Per-key failure isolation under load: other keys' latency while one shard is poisoned.

For each variant, one process runs an ActorSystem hosting a 4-shard actor and 20 clients
that each send one ask every 1/rate seconds for keys that all route to shard 0. After a
warm-up the clients run a quiet phase, then a poisoned phase of the same length in which
one poison message a second goes to a fresh key on that same shard (its handler always
raises), followed by one ordinary message for the poison's key. The clients' p50/p99 in
both phases are reported side by side, with their errors (must be 0), and afterwards it is
checked that every poison message was dead-lettered with its 3 attempts and that each
poison key's follow-up message ran after its dead letter (per-key order held).

Variants: reads on a plain actor (memory transport; Redis Streams, asks and replies going
through the Redis of SPLITGO_BENCH_REDIS_URL), and transfers through a test actor that
batches like payments (`batch_size` 64, one simulated 0.5 ms commit per batch and per
single message; a poison transfer sinks its batch, which then goes one by one) on both
transports. Supervision is the default policy (retries after ~50 and ~100 ms), the dead
letters are kept in memory, and crash logs are muted (their cost is not measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog

from actors.runtime import Actor, ActorRef, ActorSystem, MemoryDeadLetterStore, handles
from actors.runtime.dead_letters import DeadLetter
from actors.runtime.system import Route
from tests.bench.loadgen import percentile
from tests.bench.redis_bench import default_url, redis_answers
from tests.support.redis import delete_prefix
from transport import Codec, MemoryTransport, Message, Transport
from transport.redis_streams import RedisStreamsTransport

Progress = Callable[[str], None]

P99_RATIO_TARGET = 2.0
COMMIT_S = 0.0005  # what one database commit costs the batching actor, simulated
SHARDS = 4
TARGET_SHARD = 0


@dataclass(frozen=True, slots=True)
class IsolationBenchConfig:
    seconds: float = 15.0  # each phase: quiet, then poisoned
    warmup: float = 2.0
    clients: int = 20
    rate: float = 100.0  # asks per second per client
    redis_url: str = field(default_factory=default_url)


# ── the actors ─────────────────────────────────────────────────────────────────────────


class Read(Message, frozen=True):
    key: str
    poison: bool = False


class Value(Message, frozen=True):
    key: str
    reads: int


class Pay(Message, frozen=True):
    payer: str
    amount: int  # negative: a poison transfer


class Paid(Message, frozen=True):
    payer: str
    amount: int


class Tally:
    """What happened to the poison keys, in order: dead letters and follow-ups."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []


class Shelf(Actor):
    """Answers reads from state kept in memory (rebuilt empty on every restart)."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.reads: dict[str, int] = {}

    @handles(Read)
    async def read(self, message: Read) -> Value:
        if message.poison:
            raise RuntimeError("poison")
        if message.key.startswith("poison-"):
            self.tally.events.append(("handled", message.key))
        count = self.reads[message.key] = self.reads.get(message.key, 0) + 1
        return Value(key=message.key, reads=count)


class Till(Actor):
    """Books transfers like payments: a batch in one (simulated) commit, else one by one."""

    batch_size = 64

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    @handles(Pay)
    async def pay(self, message: Pay) -> Paid:
        if message.amount < 0:
            raise RuntimeError("the transfer cannot be booked")
        await asyncio.sleep(COMMIT_S)
        self._note(message)
        return Paid(payer=message.payer, amount=message.amount)

    async def handle_batch(self, messages: Sequence[Message]) -> Sequence[Any]:
        pays = [m for m in messages if isinstance(m, Pay)]
        if any(m.amount < 0 for m in pays):
            raise RuntimeError("the batch transaction failed")
        await asyncio.sleep(COMMIT_S)
        for message in pays:
            self._note(message)
        return [Paid(payer=m.payer, amount=m.amount) for m in pays]

    def _note(self, message: Pay) -> None:
        if message.payer.startswith("poison-"):
            self.tally.events.append(("handled", message.payer))


class TallyLetters(MemoryDeadLetterStore):
    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally

    async def add(self, letter: DeadLetter) -> None:
        await super().add(letter)
        self.tally.events.append(("dead", _key_of_letter(letter)))


def _key_of_letter(letter: DeadLetter) -> str:
    body = msgspec.json.decode(letter.body)
    return str(body.get("key") or body.get("payer"))


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    actor: type[Actor]
    key: Callable[[Any], str]
    read: Callable[[str], Message]
    poison: Callable[[str], Message]
    follow: Callable[[str], Message]


READS = Workload(
    "reads",
    Shelf,
    lambda m: m.key,
    lambda key: Read(key=key),
    lambda key: Read(key=key, poison=True),
    lambda key: Read(key=key),
)
BATCHES = Workload(
    "batched transfers",
    Till,
    lambda m: m.payer,
    lambda key: Pay(payer=key, amount=1),
    lambda key: Pay(payer=key, amount=-1),
    lambda key: Pay(payer=key, amount=1),
)


def keys_on_shard(prefix: str, count: int) -> list[str]:
    """`count` keys that route to TARGET_SHARD, as the runtime routes them."""
    route = Route("probe", SHARDS, None)
    found: list[str] = []
    i = 0
    while len(found) < count:
        key = f"{prefix}-{i}"
        if route.shard_for(None, key) == TARGET_SHARD:
            found.append(key)
        i += 1
    return found


# ── one variant ────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class Phase:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "asks": len(ordered),
            "errors": self.errors,
            "error_kinds": dict(self.error_kinds),
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3) if ordered else None,
        }


@dataclass(slots=True)
class VariantResult:
    transport: str
    workload: str
    quiet: dict[str, Any]
    poisoned: dict[str, Any]
    poisons: int
    dead_lettered: int
    attempts: list[int]
    order_held: bool
    restarts: int

    @property
    def ratio(self) -> float:
        return float(self.poisoned["p99_ms"]) / max(float(self.quiet["p99_ms"]), 1e-9)

    @property
    def passed(self) -> bool:
        return (
            self.quiet["errors"] == 0
            and self.poisoned["errors"] == 0
            and self.ratio <= P99_RATIO_TARGET
            and self.dead_lettered == self.poisons
            and all(a == 3 for a in self.attempts)
            and self.order_held
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "workload": self.workload,
            "quiet": self.quiet,
            "poisoned": self.poisoned,
            "p99_ratio": round(self.ratio, 2),
            "poison_messages": self.poisons,
            "dead_lettered": self.dead_lettered,
            "dead_letter_attempts": sorted(set(self.attempts)),
            "per_key_order_held": self.order_held,
            "restarts": self.restarts,
            "passed": self.passed,
        }


async def run_variant(
    config: IsolationBenchConfig, transport_kind: str, workload: Workload
) -> VariantResult:
    codec = Codec()
    codec.register(Value, Paid)
    tally = Tally()
    prefix = f"isobench{secrets.token_hex(3)}"
    transport: Transport
    if transport_kind == "redis":
        transport = RedisStreamsTransport(
            node_id=f"isobench-{secrets.token_hex(3)}",
            url=config.redis_url,
            codec=codec,
            prefix=prefix,
            lease_ttl=3.0,
            block_ms=200,
        )
    else:
        transport = MemoryTransport(node_id="isobench")
    letters = TallyLetters(tally)
    system = ActorSystem(transport, codec=codec, dead_letters=letters, ask_timeout=5.0)
    await system.start()
    try:
        ref = system.spawn(
            workload.actor,
            "isolated",
            factory=lambda: workload.actor(tally),  # type: ignore[call-arg]
            shards=SHARDS,
            key=workload.key,
        )
        if isinstance(transport, RedisStreamsTransport):
            await _owned(transport)
        return await _measure(config, system, ref, workload, tally, letters, transport_kind)
    finally:
        await system.stop(timeout=2.0)
        if isinstance(transport, RedisStreamsTransport):
            await transport.close()
            await delete_prefix(config.redis_url, prefix)


async def _owned(transport: RedisStreamsTransport) -> None:
    deadline = time.monotonic() + 10.0
    while len(transport.owned_shards("isolated")) < SHARDS:
        if time.monotonic() > deadline:
            raise RuntimeError("the bench node did not take its shards within 10 s")
        await asyncio.sleep(0.01)


async def _measure(
    config: IsolationBenchConfig,
    system: ActorSystem,
    ref: ActorRef,
    workload: Workload,
    tally: Tally,
    letters: MemoryDeadLetterStore,
    transport_kind: str,
) -> VariantResult:
    phases = {"warmup": Phase(), "quiet": Phase(), "poisoned": Phase()}
    current = ["warmup"]
    stop = asyncio.Event()
    interval = 1.0 / config.rate

    async def client(key: str, offset: float) -> None:
        loop = asyncio.get_running_loop()
        # clients start spread over one interval, so they do not ask in bursts
        await asyncio.sleep(offset)
        next_at = loop.time()
        while not stop.is_set():
            phase = phases[current[0]]
            started = time.perf_counter()
            try:
                await ref.ask(workload.read(key), timeout=5.0)
            except Exception as error:
                phase.errors += 1
                kind = type(error).__name__
                phase.error_kinds[kind] = phase.error_kinds.get(kind, 0) + 1
            else:
                phase.latencies.append(time.perf_counter() - started)
            next_at += interval
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = loop.time()  # behind: carry on without a burst

    readers = keys_on_shard("reader", config.clients)
    poison_keys = keys_on_shard("poison", int(config.seconds))
    clients = [
        asyncio.create_task(client(key, interval * i / len(readers)))
        for i, key in enumerate(readers)
    ]
    await asyncio.sleep(config.warmup)
    current[0] = "quiet"
    await asyncio.sleep(config.seconds)
    current[0] = "poisoned"
    started = time.monotonic()
    for i, key in enumerate(poison_keys):
        await ref.tell(workload.poison(key))
        await ref.tell(workload.follow(key))
        await asyncio.sleep(max(started + i + 1 - time.monotonic(), 0.0))
    stop.set()
    await asyncio.gather(*clients)
    await _settled(tally, len(poison_keys))
    stored, _ = await letters.list(limit=1000)
    return VariantResult(
        transport=transport_kind,
        workload=workload.name,
        quiet=phases["quiet"].summary(),
        poisoned=phases["poisoned"].summary(),
        poisons=len(poison_keys),
        dead_lettered=len(stored),
        attempts=[letter.attempts for letter in stored],
        order_held=_order_held(tally, poison_keys),
        restarts=sum(s.restarts for s in system.status()),
    )


async def _settled(tally: Tally, poisons: int, timeout: float = 10.0) -> None:
    """Wait (bounded) until every poison key was dead-lettered and its follow-up ran."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for kind, _ in tally.events if kind == "handled") >= poisons:
            return
        await asyncio.sleep(0.05)


def _order_held(tally: Tally, keys: list[str]) -> bool:
    """Each poison key: exactly one dead letter, then exactly one follow-up, in that order."""
    for key in keys:
        seen = [kind for kind, k in tally.events if k == key]
        if seen != ["dead", "handled"]:
            return False
    return True


# ── the section ────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class IsolationReport:
    config: IsolationBenchConfig
    results: list[VariantResult]
    skipped: list[str]
    seconds: float

    @property
    def all_passed(self) -> bool:
        return all(result.passed for result in self.results)

    def format(self) -> str:
        lines = [
            "",
            "| transport | workload | quiet p50 / p99 | poisoned p50 / p99 | p99 ratio "
            "| errors | dead letters (attempts) | order | result |",
            "|---|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for r in self.results:
            attempts = ",".join(str(a) for a in sorted(set(r.attempts))) or "-"
            lines.append(
                f"| {r.transport} | {r.workload} | {r.quiet['p50_ms']:.2f} / "
                f"{r.quiet['p99_ms']:.2f} ms | {r.poisoned['p50_ms']:.2f} / "
                f"{r.poisoned['p99_ms']:.2f} ms | {r.ratio:.2f}x | "
                f"{r.quiet['errors'] + r.poisoned['errors']} | {r.dead_lettered}/{r.poisons} "
                f"({attempts}) | {'held' if r.order_held else 'BROKEN'} | "
                f"{'met' if r.passed else 'NOT MET'} |"
            )
        for name in self.skipped:
            lines.append(f"skipped: {name}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "config": {
                "seconds_per_phase": self.config.seconds,
                "clients": self.config.clients,
                "asks_per_second_per_client": self.config.rate,
                "shards": SHARDS,
                "poison_per_second": 1,
                "p99_ratio_target": P99_RATIO_TARGET,
            },
            "variants": [r.as_json() for r in self.results],
            "skipped": self.skipped,
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 1),
        }


async def _run_all(config: IsolationBenchConfig, progress: Progress) -> IsolationReport:
    started = time.perf_counter()
    transports = ["memory"]
    skipped: list[str] = []
    if await redis_answers(config.redis_url) is not None:
        transports.append("redis")
    else:
        skipped.append("redis (no Redis answers)")
    results: list[VariantResult] = []
    for workload in (READS, BATCHES):
        for kind in transports:
            progress(f"  {workload.name} on {kind}: quiet {config.seconds:g} s, then poisoned ...")
            result = await run_variant(config, kind, workload)
            progress(
                f"    p99 quiet {result.quiet['p99_ms']:.2f} ms, poisoned "
                f"{result.poisoned['p99_ms']:.2f} ms, errors "
                f"{result.quiet['errors'] + result.poisoned['errors']}"
            )
            results.append(result)
    return IsolationReport(config, results, skipped, time.perf_counter() - started)


def run_isolation_bench(config: IsolationBenchConfig, progress: Progress) -> IsolationReport:
    """Every variant, one after another, with the runtime's crash logs muted."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    try:
        return asyncio.run(_run_all(config, progress))
    finally:
        with contextlib.suppress(Exception):
            structlog.configure(
                wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING)
            )
