"""An HTTP load generator, run as a process of its own; prints one JSON line and exits.

    python -m tests.bench.loadgen --url http://127.0.0.1:8080/api/v1/me \\
        --header 'Authorization: Bearer <token>' --seconds 5 --concurrency 32

Closed loop by default: `--concurrency` workers share one aiohttp ClientSession over a
keep-alive connector (at most one connection per worker), and each sends its next
request as soon as the last one's body has been read. With `--rate`, the workers are
paced instead: request k is due at start + k / rate (workers take turns), which is how
a probe at a low steady rate is measured; its latency is then reported both from the
moment it was sent and from the moment it was due (the latter counts the time a stalled
server kept it from being sent at all, so a blocked event loop cannot hide).

Many users: `--tokens-file` holds one bearer token a line, `--cookies-file` one Cookie
header a line (browser sessions) and `--bodies-file` one JSON body a line; worker i uses
line i modulo their number (so tokens and cookies stay off command lines).

The run: wait until `--start-at` (a time.time() value, when given, so that two
generators can overlap on purpose), warm up for `--warmup` seconds (connections opened,
nothing recorded), then measure for `--seconds`. A request counts when it completes
inside the measured window; requests per second are the answers with the expected
status over the window's length. Every other outcome is an error, by status ("401") or
by exception ("ClientOSError"). Latencies are nearest-rank percentiles in milliseconds.

Bounded on purpose: loopback addresses only, at most MAX_SECONDS of load, at most
`--max-requests` requests, at most MAX_CONCURRENCY workers.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

MAX_SECONDS = 120.0
MAX_CONCURRENCY = 256
MAX_START_DELAY_S = 60.0
REQUEST_TIMEOUT_S = 10.0
QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "max": 1.0}


class LoadgenError(ValueError):
    """A command line this generator refuses to run."""


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list; NaN when it is empty."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summary_ms(latencies_s: list[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max of latencies in seconds, as milliseconds (None if empty)."""
    ordered = sorted(latencies_s)
    if not ordered:
        return dict.fromkeys(QUANTILES)
    return {name: round(percentile(ordered, q) * 1000, 3) for name, q in QUANTILES.items()}


def check_loopback(url: str) -> None:
    """Refuse anything but http(s) to a loopback address: this is a benchmark tool."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise LoadgenError(f"not an http URL: {url!r}")
    host = parts.hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise LoadgenError(f"refusing a non-loopback host {host!r}: loopback addresses only")


def parse_header(raw: str) -> tuple[str, str]:
    name, separator, value = raw.partition(":")
    if not separator or not name.strip():
        raise LoadgenError(f"a header is 'Name: value', got {raw!r}")
    return name.strip(), value.strip()


@dataclass
class Plan:
    """One run of the generator, as checked from its command line."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    tokens: list[str] = field(default_factory=list)  # bearer tokens, one per worker in turn
    cookies: list[str] = field(default_factory=list)  # Cookie headers, one per worker in turn
    bodies: list[bytes] = field(default_factory=list)  # JSON bodies, one per worker in turn
    expect: int = 200
    concurrency: int = 1
    seconds: float = 5.0
    warmup: float = 0.5
    rate: float | None = None
    start_at: float | None = None
    max_requests: int = 2_000_000
    unique_header: str | None = None  # a header given a fresh value on every request

    def __post_init__(self) -> None:
        check_loopback(self.url)
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise LoadgenError(f"concurrency must be 1..{MAX_CONCURRENCY}")
        if not 0 < self.seconds <= MAX_SECONDS or not 0 <= self.warmup <= MAX_SECONDS:
            raise LoadgenError(f"seconds must be in (0, {MAX_SECONDS:g}], warmup >= 0")
        if self.rate is not None and self.rate <= 0:
            raise LoadgenError("rate must be positive")
        if self.max_requests < 1:
            raise LoadgenError("max-requests must be at least 1")
        if self.body is not None and self.bodies:
            raise LoadgenError("give --json or --bodies-file, not both")

    def for_worker(self, index: int) -> tuple[dict[str, str], bytes | None]:
        """Worker `index`'s headers and body."""
        headers = dict(self.headers)
        body = self.body
        if self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[index % len(self.tokens)]}"
        if self.cookies:
            headers["Cookie"] = self.cookies[index % len(self.cookies)]
        if self.bodies:
            body = self.bodies[index % len(self.bodies)]
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        return headers, body


@dataclass
class Tally:
    """What the measured window saw."""

    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    from_due_s: list[float] = field(default_factory=list)  # paced runs only
    sent: int = 0  # every request sent, warm-up included (bounded by max_requests)


async def _worker(
    index: int,
    plan: Plan,
    session: aiohttp.ClientSession,
    tally: Tally,
    first: float,
    window: tuple[float, float],
) -> None:
    """Send requests until the window ends; record those completing inside it."""
    measure_from, measure_to = window
    loop = asyncio.get_running_loop()
    clock = loop.time
    paced = plan.rate is not None
    interval = plan.concurrency / plan.rate if plan.rate else 0.0
    due = first + index / plan.rate if plan.rate else first
    request = session.request
    method, url = plan.method, plan.url
    headers, body = plan.for_worker(index)
    unique = plan.unique_header
    stem = f"{secrets.token_hex(4)}-{index}-"
    while tally.sent < plan.max_requests:
        if unique is not None:
            # e.g. an Idempotency-Key: each request must be a new payment, not a replay
            headers = {**headers, unique: f"{stem}{tally.sent}"}
        if paced:
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
        sent_at = clock()
        if sent_at >= measure_to:
            return
        tally.sent += 1
        outcome: str | None = None
        try:
            async with request(method, url, headers=headers, data=body) as rsp:
                await rsp.read()
                if rsp.status != plan.expect:
                    outcome = str(rsp.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            outcome = type(error).__name__
        done = clock()
        if measure_from <= done <= measure_to:
            if outcome is None:
                tally.ok += 1
                tally.latencies_s.append(done - sent_at)
                if paced:
                    tally.from_due_s.append(done - due)
            else:
                tally.errors[outcome] += 1
        due += interval


async def run(plan: Plan) -> dict[str, Any]:
    """Run the plan; the JSON-ready result."""
    if plan.start_at is not None:
        delay = plan.start_at - time.time()
        if delay > MAX_START_DELAY_S:
            raise LoadgenError(f"--start-at is {delay:.0f} s away (at most {MAX_START_DELAY_S:g})")
        if delay > 0:
            await asyncio.sleep(delay)
    connector = aiohttp.TCPConnector(
        limit=plan.concurrency, keepalive_timeout=60.0, enable_cleanup_closed=False
    )
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    tally = Tally()
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False, auto_decompress=False
    ) as session:
        loop = asyncio.get_running_loop()
        first = loop.time()
        window = (first + plan.warmup, first + plan.warmup + plan.seconds)
        cpu = time.process_time()
        wall = time.perf_counter()
        await asyncio.gather(
            *(_worker(i, plan, session, tally, first, window) for i in range(plan.concurrency))
        )
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
    result: dict[str, Any] = {
        "url": plan.url,
        "method": plan.method,
        "concurrency": plan.concurrency,
        "tokens": len(plan.tokens),
        "bodies": len(plan.bodies) or (1 if plan.body is not None else 0),
        "rate": plan.rate,
        "seconds": plan.seconds,
        "warmup": plan.warmup,
        "requests": tally.ok + sum(tally.errors.values()),
        "ok": tally.ok,
        "errors": dict(sorted(tally.errors.items())),
        "rps": round(tally.ok / plan.seconds, 1),
        "latency_ms": summary_ms(tally.latencies_s),
        # the generator's own CPU over its whole run: near 1 s per second means it was
        # the bottleneck rather than the server
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "sent_total": tally.sent,
        "max_requests_reached": tally.sent >= plan.max_requests,
    }
    if plan.rate is not None:
        result["latency_from_due_ms"] = summary_ms(tally.from_due_s)
    return result


def _parse(argv: list[str] | None) -> Plan:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.loadgen", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", required=True, help="full URL, loopback host only")
    parser.add_argument("--path", default="", help="appended to --url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    parser.add_argument("--json", dest="body", help="a JSON request body (sets Content-Type)")
    parser.add_argument("--tokens-file", help="bearer tokens, one a line, shared out to workers")
    parser.add_argument("--cookies-file", help="Cookie headers, one a line, shared out to workers")
    parser.add_argument("--bodies-file", help="JSON bodies, one a line, shared out to workers")
    parser.add_argument("--expect", type=int, default=200, help="the status that counts as ok")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the measurement")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before it, unrecorded")
    parser.add_argument("--rate", type=float, help="pace to this many requests per second")
    parser.add_argument("--start-at", type=float, help="a time.time() to start at")
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--unique-header", help="a header set to a fresh value per request")
    args = parser.parse_args(argv)
    headers = dict(parse_header(raw) for raw in args.header)
    body: bytes | None = None
    if args.body is not None:
        body = json.dumps(json.loads(args.body)).encode()
    return Plan(
        url=args.url + args.path,
        method=args.method.upper(),
        headers=headers,
        body=body,
        tokens=_lines(args.tokens_file),
        cookies=_lines(args.cookies_file),
        bodies=[json.dumps(json.loads(line)).encode() for line in _lines(args.bodies_file)],
        expect=args.expect,
        concurrency=args.concurrency,
        seconds=args.seconds,
        warmup=args.warmup,
        rate=args.rate,
        start_at=args.start_at,
        max_requests=args.max_requests,
        unique_header=args.unique_header,
    )


def _lines(path: str | None) -> list[str]:
    if path is None:
        return []
    try:
        with open(path, encoding="utf-8") as file:
            lines = [line.strip() for line in file if line.strip()]
    except OSError as error:
        raise LoadgenError(f"cannot read {path}: {error}") from None
    if not lines:
        raise LoadgenError(f"{path} is empty")
    return lines


def main(argv: list[str] | None = None) -> int:
    try:
        plan = _parse(argv)
        result = asyncio.run(run(plan))
    except LoadgenError as error:
        print(json.dumps({"error": str(error)}), flush=True)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
