"""Keyed messages from one node to an actor on another, through Redis, in one run.

Three systems carry the same N keyed messages (100 distinct keys, spread over 4 streams
by CRC-32 of the key, as splitgo routes them) from this process to a receiving process
(tests/bench/redis_node.py) on the same Redis:

* splitgo: this process is a node of its own (an ActorSystem on a RedisStreamsTransport,
  `system.route("bench", shards=4, key=...)`) and sends with `await ref.tell(msg)`; the
  receiving node hosts the actor (spawned with shards=4 and the same key function) and
  counts what it handles. The round starts once the receiver holds the lease of every
  shard (checked on the lease keys themselves).
* bare pipelined (the limit): redis-py with hiredis, no splitgo: pipelines of 256 XADDs
  (MAXLEN ~, as splitgo's send script) of a payload as long as splitgo's encoded
  envelope; the receiver reads with XREADGROUP (COUNT 256, BLOCK) and XACKs each batch.
* bare one XADD per message: the same receiver, the sender awaiting one XADD at a time.
* bare sync pipelined, for reference only (no target): the pipelined sender on redis-py's
  synchronous client, which packs commands with hiredis where the asyncio client packs
  them in Python, at about twice the sender's speed: the limit outside asyncio.

Every rate runs from the sender's first send to the moment the receiver handled the
last message (both wall clocks: the processes share a machine), over a fresh key
prefix whose keys are deleted afterwards. The CPU each side used in that time (and
Redis's, from INFO cpu, which counts every client of a shared server) is recorded too.

Latency: splitgo, then bare pipelined for reference, send at a moderate steady rate
(2,000 msg/s for 3 s by default, paced every millisecond); each message carries
time.time_ns() from its send, and the receiver records now - that on handling it.
Percentiles pool every latency round.

Method, as in runtime.py: both receivers are started once, every system is warmed up
once, then measured in interleaved rounds (rotating order); rates are medians of the
rounds and ratios medians of the per-round ratios. Targets: splitgo at least 70% of the
bare pipelined rate and at least 5 times the one-XADD sender's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import redis as redis_py
import redis.asyncio as redis
from redis.exceptions import RedisError

from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore
from tests.bench.redis_node import (
    ACTOR,
    STREAM_MAXLEN,
    BenchKeyed,
    bare_stream,
    message_key,
    shard_of,
)
from transport import Codec, Envelope, IdGenerator
from transport.redis_streams import RedisStreamsTransport

Progress = Callable[[str], None]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
URL_VARIABLE = "SPLITGO_BENCH_REDIS_URL"

# Targets: splitgo's share of the bare pipelined rate, and its multiple of one-XADD's.
VS_PIPELINED_TARGET = 0.70
VS_SINGLE_TARGET = 5.0

SHARDS = 4
KEYS = tuple(f"user-{index:03d}" for index in range(100))
PIPELINE_BATCH = 256
PACE_TICK_S = 0.001
SETUP_TIMEOUT_S = 30.0
ROUND_TIMEOUT_S = 150.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_url() -> str:
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def shown_url(url: str) -> str:
    """The URL without its password, for printing and for the results file."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))


async def redis_answers(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """Redis's INFO server when it answers PING within `timeout`, else None."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        if not await client.ping():
            return None
        info: dict[str, Any] = await client.info("server")
        return info
    except (RedisError, OSError, ValueError):
        return None
    finally:
        with contextlib.suppress(RedisError, OSError):
            await client.aclose()


@dataclass
class RedisBenchConfig:
    """How much work each round holds, and the rate and length of the latency rounds."""

    url: str = field(default_factory=default_url)
    n: int = 20_000
    rounds: int = 3
    latency_rate: float = 2_000.0
    latency_seconds: float = 3.0

    def __post_init__(self) -> None:
        if self.n < 1 or self.rounds < 1:
            raise ValueError("n and rounds must be at least 1")
        if self.latency_rate <= 0 or self.latency_seconds <= 0:
            raise ValueError("latency rate and seconds must be positive")

    @property
    def latency_n(self) -> int:
        return max(1, round(self.latency_rate * self.latency_seconds))


class ReceiverError(RuntimeError):
    """The receiving process failed, exited, or did not answer in time."""


# --------------------------------------------------------------------------- receivers


class Receiver:
    """One receiving process (tests/bench/redis_node.py), driven round by round."""

    def __init__(self, mode: str, url: str, log_dir: Path) -> None:
        self.mode = mode
        self.url = url
        self.log_path = log_dir / f"receiver-{mode}.log"
        self._log: IO[bytes] | None = None
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.redis_node",
            "--url",
            self.url,
            "--mode",
            self.mode,
            "--shards",
            str(SHARDS),
            cwd=PROJECT_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            limit=1 << 26,  # a latency round's line holds every latency
        )
        await self.expect("hello", SETUP_TIMEOUT_S)

    async def round(self, prefix: str, n: int, latency: bool) -> dict[str, Any]:
        """Ask for a round; returns once the receiver is ready for the sender."""
        command = {"op": "round", "prefix": prefix, "n": n, "latency": latency}
        await self._send(command)
        return await self.expect("ready", SETUP_TIMEOUT_S)

    async def _send(self, command: dict[str, Any]) -> None:
        process = self._process
        assert process is not None
        assert process.stdin is not None
        process.stdin.write(json.dumps(command).encode() + b"\n")
        await process.stdin.drain()

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout)
        except TimeoutError:
            raise ReceiverError(
                f"{self.mode} receiver: no {event!r} within {timeout:g} s{self._tail()}"
            ) from None
        if not line:
            code = await process.wait()
            raise ReceiverError(f"{self.mode} receiver exited with code {code}{self._tail()}")
        message: dict[str, Any] = json.loads(line)
        if message.get("event") == "error":
            raise ReceiverError(f"{self.mode} receiver: {message.get('message')}{self._tail()}")
        if message.get("event") != event:
            raise ReceiverError(f"{self.mode} receiver said {message!r}, expected {event!r}")
        return message

    def _tail(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            return ""
        return ("; its last log lines:\n" + "\n".join(lines)) if lines else ""

    async def close(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(OSError, RuntimeError):
                await self._send({"op": "quit"})
            try:
                await asyncio.wait_for(process.wait(), 10.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()


# --------------------------------------------------------------------------- senders


def _payload() -> bytes:
    """An envelope as splitgo encodes one of this bench's throughput messages."""
    codec = Codec()
    codec.register(BenchKeyed)
    envelope_id = IdGenerator().next()
    return codec.encode(
        Envelope(
            id=envelope_id,
            target=ACTOR,
            shard=0,
            kind="tell",
            body=BenchKeyed(key=KEYS[42], n=12_345),
            trace_id=envelope_id,
        )
    )


async def _paced(n: int, rate: float, send_range: Callable[[int, int], Awaitable[None]]) -> int:
    """Send n messages at `rate` per second, what is due every PACE_TICK_S; the first's ns."""
    loop = asyncio.get_running_loop()
    first_ns = time.time_ns()
    started = loop.time()
    sent = 0
    while sent < n:
        due = min(n, int((loop.time() - started) * rate) + 1)
        if due > sent:
            await send_range(sent, due)
            sent = due
        await asyncio.sleep(PACE_TICK_S)
    return first_ns


class _Sender:
    """One way of getting N keyed messages to the receiver, one round at a time."""

    key: str
    label: str
    receiver_mode: str

    async def prepare(self, prefix: str, n: int) -> None: ...

    async def check_ready(self, ready: dict[str, Any]) -> None: ...

    async def send_all(self, n: int) -> int:
        """Send n messages as fast as this system can; returns the first send's time_ns."""
        raise NotImplementedError

    async def send_paced(self, n: int, rate: float) -> int:
        raise NotImplementedError

    async def finish(self) -> None: ...

    async def close(self) -> None: ...


class SplitgoSender(_Sender):
    """A node of its own: ActorSystem + RedisStreamsTransport, `await ref.tell(msg)`."""

    key = "splitgo"
    label = "splitgo tell -> remote actor"
    receiver_mode = "splitgo"

    def __init__(self, url: str) -> None:
        self.url = url
        self._system: ActorSystem | None = None
        self._transport: RedisStreamsTransport | None = None
        self._ref: ActorRef | None = None
        self._prefix = ""
        self._messages: list[BenchKeyed] = []

    async def prepare(self, prefix: str, n: int) -> None:
        codec = Codec()
        codec.register(BenchKeyed)
        self._prefix = prefix
        self._transport = RedisStreamsTransport(
            node_id=f"bench-sender-{secrets.token_hex(3)}", url=self.url, codec=codec, prefix=prefix
        )
        self._system = ActorSystem(
            self._transport, codec=codec, dead_letters=MemoryDeadLetterStore()
        )
        await self._system.start()
        self._system.route(ACTOR, shards=SHARDS, key=message_key)
        self._ref = self._system.ref(ACTOR)
        self._messages = [BenchKeyed(key=KEYS[i % len(KEYS)], n=i) for i in range(n)]

    async def check_ready(self, ready: dict[str, Any]) -> None:
        """The receiver says it owns every shard: so must the lease keys in Redis."""
        assert self._transport is not None
        keys = self._transport.keys
        owners = await self._transport.client.mget(
            [keys.lease(ACTOR, shard) for shard in range(SHARDS)]
        )
        expected = str(ready["node"]).encode()
        if any(owner != expected for owner in owners):
            raise ReceiverError(f"lease keys name {owners!r}, expected {expected!r} on every shard")

    async def send_all(self, n: int) -> int:
        assert self._ref is not None
        tell = self._ref.tell
        messages = self._messages
        first_ns = time.time_ns()
        for message in messages:
            await tell(message)
        return first_ns

    async def send_paced(self, n: int, rate: float) -> int:
        assert self._ref is not None
        tell = self._ref.tell

        async def send_range(start: int, stop: int) -> None:
            for i in range(start, stop):
                await tell(BenchKeyed(key=KEYS[i % len(KEYS)], n=i, sent_ns=time.time_ns()))

        return await _paced(n, rate, send_range)

    async def finish(self) -> None:
        if self._system is not None:
            await self._system.stop(2.0)
        if self._transport is not None:
            await self._transport.close()
        self._system = self._transport = self._ref = None
        self._messages = []


class _BareSender(_Sender):
    """redis-py (hiredis) straight onto the streams the bare receiver reads."""

    receiver_mode = "bare"

    def __init__(self, client: redis.Redis, payload: bytes) -> None:
        self.client = client
        self.payload = payload
        self._streams: list[str] = []
        self._prefix = ""

    async def prepare(self, prefix: str, n: int) -> None:
        self._prefix = prefix
        by_shard = [bare_stream(prefix, shard) for shard in range(SHARDS)]
        self._streams = [by_shard[shard_of(KEYS[i % len(KEYS)], SHARDS)] for i in range(n)]

    async def send_paced(self, n: int, rate: float) -> int:
        client, payload, streams = self.client, self.payload, self._streams

        async def send_range(start: int, stop: int) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for i in range(start, stop):
                    fields: dict[Any, Any] = {"e": payload, "t": time.time_ns()}
                    pipe.xadd(streams[i], fields, maxlen=STREAM_MAXLEN, approximate=True)
                await pipe.execute()

        return await _paced(n, rate, send_range)


class BarePipelinedSender(_BareSender):
    """Pipelines of PIPELINE_BATCH XADDs, each pipeline awaited before the next."""

    key = "bare_pipelined"
    label = "bare redis-py pipelined XADD"

    async def send_all(self, n: int) -> int:
        client, payload, streams = self.client, self.payload, self._streams
        fields: dict[Any, Any] = {"e": payload}
        first_ns = time.time_ns()
        for start in range(0, n, PIPELINE_BATCH):
            async with client.pipeline(transaction=False) as pipe:
                for stream in streams[start : start + PIPELINE_BATCH]:
                    pipe.xadd(stream, fields, maxlen=STREAM_MAXLEN, approximate=True)
                await pipe.execute()
        return first_ns


class BareSyncPipelinedSender(_BareSender):
    """The same pipelines from redis-py's synchronous client (for reference, no target).

    It blocks this process's event loop while it sends, which is harmless here: nothing
    else runs on it meanwhile. The sync client packs commands with hiredis; the asyncio
    client (what splitgo and the target's reference use) packs them in Python.
    """

    key = "bare_sync_pipelined"
    label = "bare redis-py sync pipelined"

    def __init__(self, client: redis.Redis, url: str, payload: bytes) -> None:
        super().__init__(client, payload)
        self.sync_client = redis_py.Redis.from_url(url)

    async def send_all(self, n: int) -> int:
        client, payload, streams = self.sync_client, self.payload, self._streams
        fields: dict[Any, Any] = {"e": payload}
        first_ns = time.time_ns()
        for start in range(0, n, PIPELINE_BATCH):
            with client.pipeline(transaction=False) as pipe:
                for stream in streams[start : start + PIPELINE_BATCH]:
                    pipe.xadd(stream, fields, maxlen=STREAM_MAXLEN, approximate=True)
                pipe.execute()
        return first_ns

    async def close(self) -> None:
        self.sync_client.close()


class BareSingleSender(_BareSender):
    """One awaited XADD per message: no pipelining at all."""

    key = "bare_single"
    label = "bare redis-py one XADD per msg"

    async def send_all(self, n: int) -> int:
        client, streams = self.client, self._streams
        fields: dict[Any, Any] = {"e": self.payload}
        first_ns = time.time_ns()
        for stream in streams:
            await client.xadd(stream, fields, maxlen=STREAM_MAXLEN, approximate=True)
        return first_ns


# --------------------------------------------------------------------------- results


def spread(rates: list[float]) -> float:
    """(max - min) / median: how noisy the rounds were."""
    if len(rates) < 2:
        return 0.0
    return (max(rates) - min(rates)) / statistics.median(rates)


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return float(sorted_values[rank - 1])


@dataclass
class Measured:
    """One round of one system: the rate, and the CPU seconds each party spent on it."""

    rate: float
    seconds: float
    sent_s: float  # first send to the sender's last send returning
    first_handled_s: float  # first send to the first message handled
    sender_cpu_s: float
    receiver_cpu_s: float
    redis_cpu_s: float
    latencies_us: list[int] | None = None


@dataclass
class LatencyResult:
    """One-way latencies of one system at the moderate rate, pooled over its rounds."""

    rate: float
    per_round: list[dict[str, float]] = field(default_factory=list)
    samples_us: list[int] = field(default_factory=list)

    def add(self, latencies_us: list[int]) -> dict[str, float]:
        ordered = sorted(latencies_us)
        summary = {q: percentile(ordered, f) / 1000 for q, f in _QUANTILES.items()}
        self.per_round.append(summary)
        self.samples_us.extend(latencies_us)
        return summary

    def pooled(self) -> dict[str, float]:
        ordered = sorted(self.samples_us)
        return {q: percentile(ordered, f) / 1000 for q, f in _QUANTILES.items()}

    def as_json(self) -> dict[str, Any]:
        return {
            "rate_msgs_per_s": self.rate,
            "samples": len(self.samples_us),
            "pooled_ms": {q: round(v, 3) for q, v in self.pooled().items()},
            "per_round_ms": [{q: round(v, 3) for q, v in r.items()} for r in self.per_round],
        }


_QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "max": 1.0}


@dataclass
class SystemResult:
    """Every round one system ran."""

    key: str
    label: str
    n: int
    rounds: list[Measured] = field(default_factory=list)
    latency: LatencyResult | None = None

    @property
    def rates(self) -> list[float]:
        return [m.rate for m in self.rounds]

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def cpu_us_per_msg(self) -> dict[str, float]:
        """Median CPU microseconds per message: sender, receiver, Redis."""

        def per_msg(values: list[float]) -> float:
            return round(statistics.median(values) / self.n * 1e6, 2)

        return {
            "sender": per_msg([m.sender_cpu_s for m in self.rounds]),
            "receiver": per_msg([m.receiver_cpu_s for m in self.rounds]),
            "redis": per_msg([m.redis_cpu_s for m in self.rounds]),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "n": self.n,
            "msgs_per_s": round(self.rate, 1),
            "rounds": [round(rate, 1) for rate in self.rates],
            "round_seconds": [round(m.seconds, 4) for m in self.rounds],
            # where a round's time went: first send to the send loop's end, and to the
            # first message handled (the rest is the receiver catching up)
            "sent_seconds": [round(m.sent_s, 4) for m in self.rounds],
            "first_handled_seconds": [round(m.first_handled_s, 4) for m in self.rounds],
            "spread": round(spread(self.rates), 4),
            "cpu_us_per_msg": self.cpu_us_per_msg(),
            "latency": None if self.latency is None else self.latency.as_json(),
        }


@dataclass
class Ratio:
    """splitgo's rate over a reference system's, against a minimum."""

    name: str
    reference: str
    splitgo_rate: float
    reference_rate: float
    target: float
    per_round: list[float]
    as_percent: bool

    @property
    def value(self) -> float:
        return statistics.median(self.per_round)

    @property
    def passed(self) -> bool:
        return self.value >= self.target

    @property
    def needed_rate(self) -> float:
        return self.reference_rate * self.target

    def shown(self, value: float) -> str:
        return f"{value:.1%}" if self.as_percent else f"{value:.2f}x"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "target": self.target,
            "passed": self.passed,
            "splitgo_rate": round(self.splitgo_rate, 1),
            "reference_rate": round(self.reference_rate, 1),
            "needed_rate": round(self.needed_rate, 1),
            "per_round": [round(ratio, 4) for ratio in self.per_round],
        }


@dataclass
class RedisReport:
    """Everything the Redis section measured, and the verdict on each target."""

    config: RedisBenchConfig
    server: dict[str, Any]
    payload_bytes: int
    systems: dict[str, SystemResult]
    ratios: list[Ratio]
    seconds: float = 0.0

    @property
    def all_passed(self) -> bool:
        return all(ratio.passed for ratio in self.ratios)

    def as_json(self) -> dict[str, Any]:
        import redis as redis_package
        from redis.utils import HIREDIS_AVAILABLE

        return {
            "config": {
                "n": self.config.n,
                "rounds": self.config.rounds,
                "warm_up_rounds": 1,
                "statistic": "median",
                "interleaved": True,
                "shards": SHARDS,
                "keys": len(KEYS),
                "payload_bytes": self.payload_bytes,
                "pipeline_batch": PIPELINE_BATCH,
                "latency_rate": self.config.latency_rate,
                "latency_seconds": self.config.latency_seconds,
            },
            "redis": {
                "url": shown_url(self.config.url),
                "version": self.server.get("redis_version"),
                "redis_py": redis_package.__version__,
                "hiredis": HIREDIS_AVAILABLE,
            },
            "systems": {key: result.as_json() for key, result in self.systems.items()},
            "ratios": [ratio.as_json() for ratio in self.ratios],
            "reference_ratios": reference_ratios(self.systems),
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 1),
        }

    def format(self) -> str:
        return format_report(self)


def reference_ratios(systems: dict[str, SystemResult]) -> dict[str, dict[str, Any]]:
    """splitgo against systems that have no target, for context."""
    splitgo = systems["splitgo"]
    found: dict[str, dict[str, Any]] = {}
    for key in ("bare_sync_pipelined",):
        other = systems.get(key)
        if other is None or not other.rounds:
            continue
        per_round = [a / b for a, b in zip(splitgo.rates, other.rates, strict=True)]
        found[f"splitgo/{key}"] = {
            "value": round(statistics.median(per_round), 4),
            "per_round": [round(ratio, 4) for ratio in per_round],
        }
    return found


def compute_ratios(systems: dict[str, SystemResult]) -> list[Ratio]:
    splitgo = systems["splitgo"]
    pipelined, single = systems["bare_pipelined"], systems["bare_single"]

    def per_round(reference: SystemResult) -> list[float]:
        return [a / b for a, b in zip(splitgo.rates, reference.rates, strict=True)]

    return [
        Ratio(
            "splitgo/bare pipelined",
            "bare_pipelined",
            splitgo.rate,
            pipelined.rate,
            VS_PIPELINED_TARGET,
            per_round(pipelined),
            as_percent=True,
        ),
        Ratio(
            "splitgo/one-XADD",
            "bare_single",
            splitgo.rate,
            single.rate,
            VS_SINGLE_TARGET,
            per_round(single),
            as_percent=False,
        ),
    ]


def format_report(report: RedisReport) -> str:
    """The table of rates and latencies, then each ratio against its target."""
    rate = report.config.latency_rate
    lines = [
        "",
        f"{'system':<32} {'msgs/s':>9} {'spread':>7} {'CPU us/msg snd/rcv/redis':>25} "
        f"{'p50 ms':>7} {'p99 ms':>7}",
        "-" * 91,
    ]
    for result in report.systems.values():
        cpu = result.cpu_us_per_msg()
        cpu_text = f"{cpu['sender']:.1f} / {cpu['receiver']:.1f} / {cpu['redis']:.1f}"
        p50 = p99 = "-"
        if result.latency is not None and result.latency.samples_us:
            pooled = result.latency.pooled()
            p50, p99 = f"{pooled['p50']:.2f}", f"{pooled['p99']:.2f}"
        lines.append(
            f"{result.label:<32} {result.rate:>9,.0f} {spread(result.rates):>7.0%} "
            f"{cpu_text:>25} {p50:>7} {p99:>7}"
        )
    lines += [
        f"(msgs/s: median of {report.config.rounds} rounds of {report.config.n:,}, from the first "
        "send to the last message handled;",
        f" CPU: each party's CPU time in a round over n, Redis's from INFO cpu; latency: one-way "
        f"at {rate:,.0f} msg/s,",
        f" pooled over the rounds; payload {report.payload_bytes} bytes, {SHARDS} streams, "
        f"{len(KEYS)} keys; ratios: median of the per-round ratios)",
    ]
    splitgo = report.systems["splitgo"]
    if splitgo.rounds:

        def median_ms(values: list[float]) -> str:
            return f"{statistics.median(values) * 1000:.0f} ms"

        lines.append(
            "splitgo rounds, median: every tell returned after "
            f"{median_ms([m.sent_s for m in splitgo.rounds])}, the first message was handled "
            f"after {median_ms([m.first_handled_s for m in splitgo.rounds])}, the last after "
            f"{median_ms([m.seconds for m in splitgo.rounds])}"
        )
    lines += [
        "",
        f"{'ratio':<24} {'measured':>9} {'target':>10}  result",
        "-" * 91,
    ]
    for ratio in report.ratios:
        verdict = "PASS"
        if not ratio.passed:
            short = (
                f"{(ratio.target - ratio.value) * 100:.1f} points"
                if ratio.as_percent
                else f"{ratio.target - ratio.value:.2f}x"
            )
            verdict = (
                f"MISS by {short}: needs {ratio.needed_rate:,.0f} msg/s, "
                f"has {ratio.splitgo_rate:,.0f} ({ratio.splitgo_rate / ratio.needed_rate - 1:+.0%})"
            )
        lines.append(
            f"{ratio.name:<24} {ratio.shown(ratio.value):>9} "
            f"{'>= ' + ratio.shown(ratio.target):>10}  {verdict}"
        )
    for name, ratio_info in reference_ratios(report.systems).items():
        lines.append(
            f"{name.replace('bare_sync_pipelined', 'sync pipelined'):<24} "
            f"{ratio_info['value']:>9.1%} {'none':>10}  for reference (redis-py's sync client "
            "packs with hiredis)"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- driver


async def _redis_cpu(client: redis.Redis) -> float:
    info: dict[str, Any] = await client.info("cpu")
    return float(info.get("used_cpu_sys", 0.0)) + float(info.get("used_cpu_user", 0.0))


async def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix:` (SCAN, never KEYS); returns how many."""
    deleted = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(await client.delete(*batch))
            batch = []
    if batch:
        deleted += int(await client.delete(*batch))
    return deleted


async def _one_round(
    sender: _Sender,
    receiver: Receiver,
    client: redis.Redis,
    n: int,
    latency_rate: float | None = None,
) -> Measured:
    """One round on a fresh prefix: set both sides up, send, wait, tear down, clean up."""
    prefix = f"bench{secrets.token_hex(4)}"
    try:
        await sender.prepare(prefix, n)
        ready = await receiver.round(prefix, n, latency=latency_rate is not None)
        await sender.check_ready(ready)
        gc.collect()
        redis_cpu = await _redis_cpu(client)
        sender_cpu = time.process_time()
        if latency_rate is None:
            first_ns = await sender.send_all(n)
        else:
            first_ns = await sender.send_paced(n, latency_rate)
        sent_ns = time.time_ns()
        done = await receiver.expect("done", ROUND_TIMEOUT_S)
        sender_cpu = time.process_time() - sender_cpu
        redis_cpu = await _redis_cpu(client) - redis_cpu
        await sender.finish()
        closed = await receiver.expect("closed", SETUP_TIMEOUT_S)
    finally:
        with contextlib.suppress(Exception):
            await sender.finish()
        await delete_prefix(client, prefix)
    if closed["count"] != n or closed["order_errors"]:
        raise ReceiverError(
            f"{sender.key}: handled {closed['count']} of {n}, "
            f"{closed['order_errors']} out of per-key order"
        )
    seconds = (int(done["last_ns"]) - first_ns) / 1e9
    return Measured(
        rate=n / seconds,
        seconds=seconds,
        sent_s=(sent_ns - first_ns) / 1e9,
        first_handled_s=(int(done["first_ns"]) - first_ns) / 1e9,
        sender_cpu_s=sender_cpu,
        receiver_cpu_s=float(done["cpu_s"]),
        redis_cpu_s=redis_cpu,
        latencies_us=done.get("latencies_us"),
    )


async def _run(config: RedisBenchConfig, server: dict[str, Any], progress: Progress) -> RedisReport:
    started = time.perf_counter()
    payload = _payload()
    client = redis.Redis.from_url(config.url)
    log_dir = Path(tempfile.mkdtemp(prefix="splitgo-bench-redis-"))
    receivers = {mode: Receiver(mode, config.url, log_dir) for mode in ("splitgo", "bare")}
    senders: list[_Sender] = [
        SplitgoSender(config.url),
        BarePipelinedSender(client, payload),
        BareSingleSender(client, payload),
        BareSyncPipelinedSender(client, config.url, payload),
    ]
    results = {s.key: SystemResult(s.key, s.label, config.n) for s in senders}
    for key in ("splitgo", "bare_pipelined"):
        results[key].latency = LatencyResult(config.latency_rate)
    try:
        await asyncio.gather(*(receiver.start() for receiver in receivers.values()))
        for sender in senders:
            warm = await _one_round(sender, receivers[sender.receiver_mode], client, config.n)
            progress(f"  warm-up   {sender.label:<32} {warm.rate:>9,.0f} msg/s")
        # each round: every throughput run, then the latency runs, in a rotating order
        steps: list[tuple[_Sender, bool]] = [(s, False) for s in senders]
        steps += [(s, True) for s in senders if results[s.key].latency is not None]
        for index in range(config.rounds):
            shift = index % len(steps)
            for sender, latency in steps[shift:] + steps[:shift]:
                receiver = receivers[sender.receiver_mode]
                result = results[sender.key]
                label = f"  round {index + 1}/{config.rounds} {sender.label:<32}"
                if not latency:
                    measured = await _one_round(sender, receiver, client, config.n)
                    result.rounds.append(measured)
                    progress(f"{label} {measured.rate:>9,.0f} msg/s")
                    continue
                measured = await _one_round(
                    sender, receiver, client, config.latency_n, config.latency_rate
                )
                assert result.latency is not None
                assert measured.latencies_us is not None
                summary = result.latency.add(measured.latencies_us)
                progress(
                    f"{label} latency at {config.latency_rate:,.0f} msg/s: "
                    f"p50 {summary['p50']:.2f} ms, p99 {summary['p99']:.2f} ms, "
                    f"max {summary['max']:.2f} ms"
                )
    finally:
        await asyncio.gather(*(receiver.close() for receiver in receivers.values()))
        for sender in senders:
            await sender.close()
        await client.aclose()
    for path in log_dir.iterdir():
        path.unlink()
    log_dir.rmdir()
    report = RedisReport(config, server, len(payload), results, compute_ratios(results))
    report.seconds = time.perf_counter() - started
    return report


def run_redis_bench(config: RedisBenchConfig, progress: Progress = print) -> RedisReport | None:
    """Measure every system in interleaved rounds; None when no Redis answers at the URL."""
    server = asyncio.run(redis_answers(config.url))
    if server is None:
        return None
    return asyncio.run(_run(config, server, progress))
