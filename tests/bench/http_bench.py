"""Authenticated HTTP against a real node, logins under load, and argon2id's cost, in one run.

Four measurements:

* GET /api/v1/me: requests per second from a separate load-generating process
  (tests/bench/loadgen.py: aiohttp client, keep-alive, 32 workers by default) with the
  bearer access tokens of 8 users (worker i sends user i mod 8's: real /me traffic comes
  from many users, and the auth actor shards by user), against a node started from
  `run.py` on a fresh data folder, its embedded PostgreSQL included. The token is
  checked at the edge (JWT, verified once per node), then the edge asks the auth actor,
  whose shard owning the user answers from memory after the first read (hot profiles,
  actors/auth/profiles.py). The limit: the same generator against a bare aiohttp
  app in a process of its own (tests/bench/bare_http.py) whose one handler answers a
  constant JSON object shaped like the /me body. Target (issue 20): splitgo at least 50%
  of the limit. For reference (no target), the same generator against the node's GET /healthz:
  splitgo's HTTP edge (middlewares, request ids, problem handling) with neither the
  actor nor the database, which splits /me's cost between the edge and the ask.
* Login throughput: the generator POSTs /api/v1/auth/login with the same users'
  correct credentials (failures would lock an account after 5; successes never do) at
  concurrency 8; every success is an argon2id verify, a session row and a token pair.
  `users=1` makes it one account's logins, and every GET /me that account's.
* /healthz during that login storm: a second generator, started with the storm and
  paced at 100 requests per second on one connection, reports its p99 latency. Target:
  under 50 ms, i.e. hashing never holds the node's event loop. Its idle p99 is measured
  first, for reference; the latency from each request's due time is recorded too (a
  stalled loop delays requests that could not even be sent). A third generator asks
  GET /me at 20 requests per second meanwhile, for reference (no target): the auth
  actor that hashes is the one that answers /me.
* argon2id: the parameters the auth actor hashes with (actors.auth.passwords), and the
  median time of one hash and one verify in this process, one at a time, then the rate
  of hashes through the project's `Passwords` (worker threads, its own concurrency cap).

Method: the node and the bare server are started once; the three throughput systems
are warmed up once, then measured in interleaved rounds (rotating order), as in
runtime.py; rates are medians of the rounds and the ratio the median of the per-round
ratios. Every process shares this machine, the generator included: the CPU each party
used per request (from /proc, PostgreSQL's processes apart from the node's) shows which
one was the bottleneck. The node logs at warning (SPLITGO_LOG_LEVEL=warning), so the
one access-log line per request (info) is not written: logging is not what is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from tests.bench.node import free_port, helper_processes, stop_node

Progress = Callable[[str], None]

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Targets: splitgo's GET /me as a share of the bare handler's rate; /healthz p99 (ms)
# while logins run.
ME_VS_BARE_TARGET = 0.50
STORM_HEALTHZ_P99_TARGET_MS = 50.0

PASSWORD = "correct horse battery staple 42"
OPS_TOKEN = "bench"

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
LOADGEN_SLACK_S = 30.0  # a generator run taking this much longer than planned has hung
STORM_LEAD_S = 1.5  # spawn the storm's generators this long before their common start
# GET /me during the storm, for reference: a few paced workers, each user's token in turn
ME_PROBE_RATE = 20.0
ME_PROBE_CONCURRENCY = 4
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class AuthUnavailable(RuntimeError):
    """The node runs, but its auth routes do not work yet (no auth actor, say)."""


class BenchProcessError(RuntimeError):
    """A process of this bench failed, exited, or did not answer in time."""


@dataclass
class AuthBenchConfig:
    """Round lengths and counts, the generators' concurrency, the probe's rate."""

    seconds: float = 5.0
    rounds: int = 3
    concurrency: int = 32
    users: int = 8  # GET /me and the logins spread over this many accounts
    warmup_seconds: float = 1.0
    login_seconds: float = 5.0
    login_concurrency: int = 8
    probe_rate: float = 100.0
    idle_probe_seconds: float = 2.0
    hashes: int = 5

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.hashes < 1 or self.users < 1:
            raise ValueError("rounds, hashes and users must be at least 1")
        if min(self.seconds, self.login_seconds, self.idle_probe_seconds) <= 0:
            raise ValueError("round lengths must be positive")
        if self.concurrency < 1 or self.login_concurrency < 1 or self.probe_rate <= 0:
            raise ValueError("concurrency and the probe rate must be positive")


# --------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process so far, from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is the state (field 3)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds a changing group of processes used between `start` and `stop`.

    A process that appears in between counts in full; one that exits is lost (the
    groups here are a server and its long-lived database processes).
    """

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._before: dict[int, float] = {}

    def _sample(self) -> dict[int, float]:
        found = {pid: cpu_seconds(pid) for pid in self._pids()}
        return {pid: cpu for pid, cpu in found.items() if cpu is not None}

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> float:
        after = self._sample()
        return sum(cpu - self._before.get(pid, 0.0) for pid, cpu in after.items())


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return ("; last output:\n" + "\n".join(text)) if text else ""


async def _wait_http(
    process: subprocess.Popen[bytes], url: str, timeout: float, log_path: Path
) -> None:
    """Poll `url` until it answers 200 (the process must stay alive meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(trust_env=False) as session:
        while True:
            if process.poll() is not None:
                raise BenchProcessError(
                    f"{url}: the process exited with code {process.returncode}{_tail(log_path)}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as rsp:
                    await rsp.read()
                    if rsp.status == 200:
                        return
            if loop.time() > deadline:
                raise BenchProcessError(
                    f"{url} did not answer 200 in {timeout:g} s{_tail(log_path)}"
                )
            await asyncio.sleep(0.05)


class NodeProcess:
    """`python run.py` on a fresh data folder, logging at warning."""

    def __init__(self, scratch: Path) -> None:
        self.data_dir = scratch / "data"
        self.log_path = scratch / "node.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.startup_s = 0.0
        self.stop_result: dict[str, Any] | None = None

    def environment(self) -> dict[str, str]:
        """This shell's environment without any SPLITGO_* setting, then the bench's own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITGO_")}
        env.update(
            SPLITGO_LOG_LEVEL="warning",
            SPLITGO_LOG_FORMAT="json",
            SPLITGO_OPS_TOKEN=OPS_TOKEN,
            SPLITGO_RATE_LIMIT="0",  # the load comes from one address: no per-client limit
        )
        return env

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            cwd=PROJECT_ROOT,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a hung node can be killed
        )
        await _wait_http(self.process, f"{self.url}/readyz", READY_TIMEOUT_S, self.log_path)
        self.startup_s = time.perf_counter() - started

    def server_pids(self) -> list[int]:
        return [] if self.process is None else [self.process.pid]

    def database_pids(self) -> list[int]:
        if self.process is None:
            return []
        return list(helper_processes(self.process.pid, self.data_dir))

    def log_tail(self) -> str:
        return _tail(self.log_path)

    def stop(self) -> None:
        if self.process is not None and self.stop_result is None:
            self.stop_result = stop_node(self.process, self.data_dir, STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None


class BareProcess:
    """tests/bench/bare_http.py: the limit."""

    def __init__(self, scratch: Path) -> None:
        self.log_path = scratch / "bare.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bare_http", "--port", str(self.port)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        await _wait_http(self.process, f"{self.url}/healthz", READY_TIMEOUT_S, self.log_path)

    def server_pids(self) -> list[int]:
        return [] if self.process is None else [self.process.pid]

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


async def loadgen(
    url: str,
    *,
    seconds: float,
    concurrency: int,
    warmup: float = 0.5,
    method: str = "GET",
    tokens_file: Path | None = None,
    cookies_file: Path | None = None,
    bodies_file: Path | None = None,
    rate: float | None = None,
    start_at: float | None = None,
    unique_header: str | None = None,
    expect: int = 200,
) -> dict[str, Any]:
    """Run tests/bench/loadgen.py once as a process of its own; its JSON result."""
    command = [
        sys.executable,
        "-m",
        "tests.bench.loadgen",
        "--url",
        url,
        "--method",
        method,
        "--seconds",
        f"{seconds:g}",
        "--warmup",
        f"{warmup:g}",
        "--concurrency",
        str(concurrency),
    ]
    if tokens_file is not None:
        command += ["--tokens-file", str(tokens_file)]
    if cookies_file is not None:
        command += ["--cookies-file", str(cookies_file)]
    if bodies_file is not None:
        command += ["--bodies-file", str(bodies_file)]
    if rate is not None:
        command += ["--rate", f"{rate:g}"]
    if start_at is not None:
        command += ["--start-at", f"{start_at:.6f}"]
    if unique_header is not None:
        command += ["--unique-header", unique_header]
    if expect != 200:
        command += ["--expect", str(expect)]
    delay = max(0.0, (start_at or 0.0) - time.time())
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            process.communicate(), delay + warmup + seconds + LOADGEN_SLACK_S
        )
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchProcessError(f"the load generator for {url} hung") from None
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        result = {"error": err.decode(errors="replace").strip()[-2000:] or "no output"}
    if process.returncode != 0 or "error" in result:
        raise BenchProcessError(f"the load generator for {url} failed: {result.get('error')}")
    return result


# --------------------------------------------------------------------------- results


def spread(rates: list[float]) -> float:
    """(max - min) / median: how noisy the rounds were."""
    if len(rates) < 2:
        return 0.0
    return (max(rates) - min(rates)) / statistics.median(rates)


@dataclass
class Run:
    """One generator run against one system, and the CPU each party spent on it."""

    generator: dict[str, Any]
    server_cpu_s: float
    database_cpu_s: float

    @property
    def rps(self) -> float:
        return float(self.generator["rps"])

    @property
    def sent(self) -> int:
        """Every request of the run, warm-up included: what the CPU figures cover."""
        return max(1, int(self.generator["sent_total"]))

    def cpu_us_per_request(self) -> dict[str, float]:
        return {
            "server": self.server_cpu_s / self.sent * 1e6,
            "database": self.database_cpu_s / self.sent * 1e6,
            "generator": float(self.generator["cpu_s"]) / self.sent * 1e6,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **self.generator,
            "server_cpu_s": round(self.server_cpu_s, 3),
            "database_cpu_s": round(self.database_cpu_s, 3),
            "cpu_us_per_request": {k: round(v, 1) for k, v in self.cpu_us_per_request().items()},
        }


@dataclass
class SystemResult:
    """Every measured round of one throughput system."""

    key: str
    label: str
    warmup: Run | None = None
    runs: list[Run] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [run.rps for run in self.runs]

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def latency(self, quantile: str) -> float:
        return statistics.median(float(run.generator["latency_ms"][quantile]) for run in self.runs)

    def cpu_us_per_request(self) -> dict[str, float]:
        per_run = [run.cpu_us_per_request() for run in self.runs]
        return {key: statistics.median(r[key] for r in per_run) for key in per_run[0]}

    def errors(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for run in self.runs:
            for name, count in run.generator["errors"].items():
                total[name] = total.get(name, 0) + int(count)
        return total

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "requests_per_s": round(self.rate, 1),
            "rounds": [round(rate, 1) for rate in self.rates],
            "spread": round(spread(self.rates), 4),
            "p50_ms": round(self.latency("p50"), 3),
            "p99_ms": round(self.latency("p99"), 3),
            "cpu_us_per_request": {k: round(v, 1) for k, v in self.cpu_us_per_request().items()},
            "errors": self.errors(),
            "warmup": None if self.warmup is None else self.warmup.as_json(),
            "runs": [run.as_json() for run in self.runs],
        }


@dataclass
class StormResult:
    """Logins at full speed, and the /healthz probe before and during them."""

    login: dict[str, Any]
    probe: dict[str, Any]
    idle_probe: dict[str, Any]
    me_probe: dict[str, Any]
    node_cpu_s: float
    database_cpu_s: float

    @property
    def logins_per_s(self) -> float:
        return float(self.login["rps"])

    @property
    def probe_p99_ms(self) -> float:
        p99 = self.probe["latency_ms"]["p99"]
        return math.inf if p99 is None else float(p99)

    @property
    def passed(self) -> bool:
        return self.probe_p99_ms < STORM_HEALTHZ_P99_TARGET_MS and not self.probe["errors"]

    def as_json(self) -> dict[str, Any]:
        return {
            "logins_per_s": self.logins_per_s,
            "login": self.login,
            "healthz_during_storm": self.probe,
            "healthz_idle": self.idle_probe,
            "me_during_storm": self.me_probe,
            "node_cpu_s": round(self.node_cpu_s, 3),
            "database_cpu_s": round(self.database_cpu_s, 3),
            "healthz_p99_ms": self.probe_p99_ms,
            "target_ms": STORM_HEALTHZ_P99_TARGET_MS,
            "passed": self.passed,
        }


@dataclass
class HashResult:
    """argon2id's parameters and what one hash costs here."""

    parameters: dict[str, int]
    hash_ms: list[float]
    verify_ms: list[float]
    concurrent_hashes: int
    max_concurrent: int
    concurrent_per_s: float

    def as_json(self) -> dict[str, Any]:
        return {
            "algorithm": "argon2id",
            **self.parameters,
            "hash_ms_median": round(statistics.median(self.hash_ms), 2),
            "verify_ms_median": round(statistics.median(self.verify_ms), 2),
            "hash_ms": [round(ms, 2) for ms in self.hash_ms],
            "verify_ms": [round(ms, 2) for ms in self.verify_ms],
            "concurrent": {
                "hashes": self.concurrent_hashes,
                "max_concurrent": self.max_concurrent,
                "hashes_per_s": round(self.concurrent_per_s, 2),
            },
        }


@dataclass
class AuthReport:
    """Everything the auth section measured, and the verdict on each target."""

    config: AuthBenchConfig
    node_startup_s: float
    users: Users
    systems: dict[str, SystemResult]
    me_ratios: list[float]
    storm: StormResult
    hashing: HashResult
    node_stop: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def me_ratio(self) -> float:
        return statistics.median(self.me_ratios)

    @property
    def me_passed(self) -> bool:
        return self.me_ratio >= ME_VS_BARE_TARGET

    @property
    def all_passed(self) -> bool:
        return self.me_passed and self.storm.passed

    def as_json(self) -> dict[str, Any]:
        bare, me = self.systems["bare"], self.systems["me"]
        return {
            "config": {
                "seconds": self.config.seconds,
                "rounds": self.config.rounds,
                "warm_up_rounds": 1,
                "warm_up_seconds": self.config.warmup_seconds,
                "statistic": "median",
                "interleaved": True,
                "concurrency": self.config.concurrency,
                "users": self.config.users,
                "login_seconds": self.config.login_seconds,
                "login_concurrency": self.config.login_concurrency,
                "probe_rate": self.config.probe_rate,
                "node_log_level": "warning",
                "node_database": "embedded PostgreSQL (fresh data folder)",
            },
            "node_startup_s": round(self.node_startup_s, 3),
            "users": self.users.count,
            "users_setup_s": round(self.users.seconds, 3),
            "me_body_bytes": self.users.me_body_bytes,
            "systems": {key: result.as_json() for key, result in self.systems.items()},
            "ratios": [
                {
                    "name": "splitgo GET /me / bare",
                    "value": round(self.me_ratio, 4),
                    "target": ME_VS_BARE_TARGET,
                    "passed": self.me_passed,
                    "splitgo_rate": round(me.rate, 1),
                    "reference_rate": round(bare.rate, 1),
                    "needed_rate": round(bare.rate * ME_VS_BARE_TARGET, 1),
                    "per_round": [round(r, 4) for r in self.me_ratios],
                }
            ],
            "login_storm": self.storm.as_json(),
            "argon2": self.hashing.as_json(),
            "node_stop": self.node_stop,
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 1),
        }

    def format(self) -> str:
        return format_report(self)


def _ms(value: float | None, digits: int = 2) -> str:
    """A latency in ms, or n/a when no request succeeded."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def _users(count: int) -> str:
    return "1 user" if count == 1 else f"{count} users"


def format_report(report: AuthReport) -> str:
    """The throughput table, the login storm, argon2id, then each target's verdict."""
    config = report.config
    lines = [
        "",
        f"{'system':<34} {'req/s':>8} {'spread':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'CPU us/req srv/db/gen':>22}",
        "-" * 91,
    ]
    for result in report.systems.values():
        cpu = result.cpu_us_per_request()
        cpu_text = f"{cpu['server']:.0f} / {cpu['database']:.0f} / {cpu['generator']:.0f}"
        lines.append(
            f"{result.label:<34} {result.rate:>8,.0f} {spread(result.rates):>7.0%} "
            f"{result.latency('p50'):>7.2f} {result.latency('p99'):>7.2f} {cpu_text:>22}"
        )
        errors = result.errors()
        if errors:
            lines.append(f"  errors: {errors}")
    lines += [
        f"(req/s: median of {config.rounds} rounds of {config.seconds:g} s, {config.concurrency} "
        "keep-alive connections from one loadgen process; latencies:",
        " medians of the rounds' percentiles; CPU: the server's, PostgreSQL's and the "
        "generator's per request, from /proc;",
        f" the node logs at warning (SPLITGO_LOG_LEVEL=warning): no access-log line per request; "
        f"tokens of {_users(report.users.count)} in turn; /me body {report.users.me_body_bytes} "
        "bytes)",
    ]
    storm = report.storm
    login, probe, idle, me_probe = storm.login, storm.probe, storm.idle_probe, storm.me_probe
    login_sent = max(1, int(login["sent_total"]))

    def latencies(result: dict[str, Any], digits: int = 2, key: str = "latency_ms") -> str:
        found = result[key]
        return f"p50 {_ms(found['p50'], digits)} ms, p99 {_ms(found['p99'], digits)} ms"

    def failed(result: dict[str, Any]) -> str:
        return f"; errors {result['errors']}" if result["errors"] else ""

    lines += [
        "",
        f"login storm: {config.login_concurrency} concurrent POST /api/v1/auth/login (correct "
        f"passwords, {_users(report.users.count)} in turn) for {config.login_seconds:g} s: "
        f"{storm.logins_per_s:,.1f} logins/s, {latencies(login, 0)}{failed(login)}",
        f"  node CPU {storm.node_cpu_s / login_sent * 1000:.1f} ms per login, PostgreSQL "
        f"{storm.database_cpu_s / login_sent * 1000:.1f} ms (the probes' requests included)",
        f"/healthz probe at {config.probe_rate:g} req/s on one connection: idle "
        f"{latencies(idle)}; during the storm {latencies(probe)}, "
        f"max {_ms(probe['latency_ms']['max'])} ms{failed(probe)}",
        f"  (from each request's due time: {latencies(probe, key='latency_from_due_ms')})",
        f"GET /api/v1/me probe at {ME_PROBE_RATE:g} req/s during the storm (reference): "
        f"{latencies(me_probe, 0)}, {me_probe['ok']} answered in {me_probe['seconds']:g} s "
        f"(from due: {latencies(me_probe, 0, 'latency_from_due_ms')}){failed(me_probe)}",
    ]
    hashing = report.hashing
    params = hashing.parameters
    lines += [
        "",
        f"argon2id: time_cost={params['time_cost']}, memory_cost={params['memory_cost']} KiB "
        f"({params['memory_cost'] / 1024:g} MiB), parallelism={params['parallelism']}, "
        f"hash_len={params['hash_len']}, salt_len={params['salt_len']}",
        f"  one at a time in this process: hash {statistics.median(hashing.hash_ms):.1f} ms, "
        f"verify {statistics.median(hashing.verify_ms):.1f} ms (median of "
        f"{len(hashing.hash_ms)}); {hashing.concurrent_hashes} at once through Passwords "
        f"(at most {hashing.max_concurrent} in threads): {hashing.concurrent_per_s:.1f} hashes/s",
    ]
    me, bare = report.systems["me"], report.systems["bare"]
    lines += [
        "",
        f"{'target':<26} {'measured':>9} {'target':>10}  result",
        "-" * 91,
    ]
    verdict = "PASS"
    if not report.me_passed:
        needed = bare.rate * ME_VS_BARE_TARGET
        verdict = (
            f"MISS by {(ME_VS_BARE_TARGET - report.me_ratio) * 100:.1f} points: needs "
            f"{needed:,.0f} req/s, has {me.rate:,.0f} ({me.rate / needed - 1:+.0%})"
        )
    lines.append(
        f"{'splitgo GET /me / bare':<26} {report.me_ratio:>9.1%} "
        f"{'>= ' + format(ME_VS_BARE_TARGET, '.0%'):>10}  {verdict}"
    )
    if storm.passed:
        verdict = "PASS"
    elif storm.probe["errors"]:
        verdict = f"MISS: the probe got errors {storm.probe['errors']}"
    else:
        verdict = f"MISS by {storm.probe_p99_ms - STORM_HEALTHZ_P99_TARGET_MS:.1f} ms"
    lines.append(
        f"{'/healthz p99 in login storm':<26} {storm.probe_p99_ms:>6.2f} ms "
        f"{'< ' + format(STORM_HEALTHZ_P99_TARGET_MS, 'g') + ' ms':>10}  {verdict}"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- measuring


async def measure_hashing(count: int) -> HashResult:
    """argon2id through the project's Passwords: sequential hash and verify, then a burst."""
    from actors.auth.passwords import DEFAULT_PARAMETERS, Passwords

    passwords = Passwords(DEFAULT_PARAMETERS)
    parameters = {
        "time_cost": DEFAULT_PARAMETERS.time_cost,
        "memory_cost": DEFAULT_PARAMETERS.memory_cost,
        "parallelism": DEFAULT_PARAMETERS.parallelism,
        "hash_len": DEFAULT_PARAMETERS.hash_len,
        "salt_len": DEFAULT_PARAMETERS.salt_len,
    }
    stored = await passwords.hash(PASSWORD)  # warm-up
    hash_ms: list[float] = []
    verify_ms: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        stored = await passwords.hash(PASSWORD)
        hash_ms.append((time.perf_counter() - started) * 1000)
    for _ in range(count):
        started = time.perf_counter()
        if not await passwords.verify(stored, PASSWORD):
            raise RuntimeError("argon2id: a fresh hash did not verify")
        verify_ms.append((time.perf_counter() - started) * 1000)
    # Passwords' default cap on hashes at once (the node's one shared hasher keeps it)
    max_concurrent = int(inspect.signature(Passwords).parameters["max_concurrent"].default)
    burst = 2 * max_concurrent
    started = time.perf_counter()
    await asyncio.gather(*(passwords.hash(PASSWORD) for _ in range(burst)))
    per_s = burst / (time.perf_counter() - started)
    return HashResult(parameters, hash_ms, verify_ms, burst, max_concurrent, per_s)


def user_email(index: int) -> str:
    return f"bench-user-{index:03d}@example.com"


@dataclass
class Users:
    """The bench's accounts: their access tokens and login bodies, in files for loadgen."""

    tokens_file: Path
    logins_file: Path
    count: int
    me_body_bytes: int
    seconds: float  # registering and logging every one in


async def _register_and_login(session: aiohttp.ClientSession, url: str, index: int) -> str:
    account = {"email": user_email(index), "password": PASSWORD, "name": f"Bench User {index}"}
    async with session.post(f"{url}/api/v1/auth/register", json=account) as rsp:
        text = await rsp.text()
        if rsp.status != 201:
            raise AuthUnavailable(f"register answered {rsp.status}: {text[:300]}")
    credentials = {"email": user_email(index), "password": PASSWORD}
    async with session.post(f"{url}/api/v1/auth/login", json=credentials) as rsp:
        text = await rsp.text()
        if rsp.status != 200:
            raise AuthUnavailable(f"login answered {rsp.status}: {text[:300]}")
        return str(json.loads(text)["access_token"])


async def prepare_users(url: str, count: int, folder: Path) -> Users:
    """Register `count` users at once and log each in; check GET /me with the first token."""
    started = time.perf_counter()
    async with aiohttp.ClientSession(
        trust_env=False, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    ) as session:
        tokens = await asyncio.gather(
            *(_register_and_login(session, url, index) for index in range(count))
        )
        headers = {"Authorization": f"Bearer {tokens[0]}"}
        async with session.get(f"{url}/api/v1/me", headers=headers) as rsp:
            body = await rsp.read()
            if rsp.status != 200:
                raise AuthUnavailable(f"GET /me answered {rsp.status}: {body[:300]!r}")
    seconds = time.perf_counter() - started
    tokens_file, logins_file = folder / "tokens.txt", folder / "logins.jsonl"
    tokens_file.write_text("".join(f"{token}\n" for token in tokens))
    logins_file.write_text(
        "".join(
            json.dumps({"email": user_email(index), "password": PASSWORD}) + "\n"
            for index in range(count)
        )
    )
    return Users(tokens_file, logins_file, count, len(body), seconds)


@dataclass
class _Target:
    """One throughput system: where the generator points, whose CPU is counted."""

    key: str
    label: str
    url: str
    tokens_file: Path | None
    server_pids: Callable[[], list[int]]
    database_pids: Callable[[], list[int]]


async def _measure(target: _Target, seconds: float, concurrency: int) -> Run:
    server, database = CpuMeter(target.server_pids), CpuMeter(target.database_pids)
    server.start()
    database.start()
    result = await loadgen(
        target.url, seconds=seconds, concurrency=concurrency, tokens_file=target.tokens_file
    )
    if not result["ok"]:
        raise BenchProcessError(f"{target.label}: no request succeeded: {result['errors']}")
    return Run(result, server.stop(), database.stop())


def _no_pids() -> list[int]:
    return []


async def _storm(config: AuthBenchConfig, node: NodeProcess, users: Users) -> StormResult:
    """Idle probe first; then logins at full speed with both probes running inside them."""
    healthz = f"{node.url}/healthz"
    idle = await loadgen(
        healthz, seconds=config.idle_probe_seconds, concurrency=1, rate=config.probe_rate
    )
    node_cpu, database_cpu = CpuMeter(node.server_pids), CpuMeter(node.database_pids)
    node_cpu.start()
    database_cpu.start()
    # all generators start at the same moment; the login one warms up for 0.5 s, the
    # probes then measure from 1 s in to 0.5 s before the logins stop: wholly inside them
    start_at = time.time() + STORM_LEAD_S
    probe_seconds = max(0.5, config.login_seconds - 1.0)
    login, probe, me_probe = await asyncio.gather(
        loadgen(
            f"{node.url}/api/v1/auth/login",
            seconds=config.login_seconds,
            concurrency=config.login_concurrency,
            method="POST",
            bodies_file=users.logins_file,
            start_at=start_at,
        ),
        loadgen(
            healthz,
            seconds=probe_seconds,
            concurrency=1,
            warmup=1.0,
            rate=config.probe_rate,
            start_at=start_at,
        ),
        loadgen(
            f"{node.url}/api/v1/me",
            seconds=probe_seconds,
            concurrency=ME_PROBE_CONCURRENCY,
            warmup=1.0,
            rate=ME_PROBE_RATE,
            tokens_file=users.tokens_file,
            start_at=start_at,
        ),
    )
    return StormResult(login, probe, idle, me_probe, node_cpu.stop(), database_cpu.stop())


def _progress_line(prefix: str, label: str, run: Run) -> str:
    latency = run.generator["latency_ms"]
    errors = sum(run.generator["errors"].values())
    return (
        f"{prefix} {label:<34} {run.rps:>9,.0f} req/s   p50 {latency['p50']:.2f} ms   "
        f"p99 {latency['p99']:.2f} ms" + (f"   {errors} errors" if errors else "")
    )


async def _run(config: AuthBenchConfig, progress: Progress) -> AuthReport:
    started = time.perf_counter()
    progress("  argon2id: timing hashes in this process ...")
    hashing = await measure_hashing(config.hashes)
    progress(
        f"  argon2id: hash {statistics.median(hashing.hash_ms):.1f} ms, verify "
        f"{statistics.median(hashing.verify_ms):.1f} ms, {hashing.concurrent_per_s:.1f} hashes/s "
        f"{hashing.max_concurrent} at a time"
    )
    scratch = Path(tempfile.mkdtemp(prefix="splitgo-bench-auth-"))
    node, bare = NodeProcess(scratch), BareProcess(scratch)
    try:
        await asyncio.gather(node.start(), bare.start())
        progress(f"  node ready in {node.startup_s:.1f} s (fresh data folder, log level warning)")
        try:
            users = await prepare_users(node.url, config.users, scratch)
        except AuthUnavailable as error:
            raise AuthUnavailable(f"{error}{node.log_tail()}") from None
        progress(
            f"  {users.count} users registered and logged in in {users.seconds:.1f} s "
            f"(at once); GET /me answers {users.me_body_bytes} bytes"
        )
        targets = [
            _Target(
                "bare",
                "bare aiohttp JSON handler (limit)",
                f"{bare.url}/api/v1/me",
                None,
                bare.server_pids,
                _no_pids,
            ),
            _Target(
                "me",
                "splitgo GET /api/v1/me",
                f"{node.url}/api/v1/me",
                users.tokens_file,
                node.server_pids,
                node.database_pids,
            ),
            _Target(
                "healthz",
                "splitgo GET /healthz (reference)",
                f"{node.url}/healthz",
                None,
                node.server_pids,
                node.database_pids,
            ),
        ]
        results = {t.key: SystemResult(t.key, t.label) for t in targets}
        for target in targets:
            run = await _measure(target, config.warmup_seconds, config.concurrency)
            results[target.key].warmup = run
            progress(_progress_line("  warm-up  ", target.label, run))
        for index in range(config.rounds):
            shift = index % len(targets)
            for target in targets[shift:] + targets[:shift]:
                run = await _measure(target, config.seconds, config.concurrency)
                results[target.key].runs.append(run)
                progress(_progress_line(f"  round {index + 1}/{config.rounds}", target.label, run))
        me_ratios = [a / b for a, b in zip(results["me"].rates, results["bare"].rates, strict=True)]
        storm = await _storm(config, node, users)
        progress(
            f"  login storm: {storm.logins_per_s:,.1f} logins/s; /healthz p99 "
            f"{storm.probe_p99_ms:.2f} ms (idle {_ms(storm.idle_probe['latency_ms']['p99'])} ms); "
            f"GET /me p99 {_ms(storm.me_probe['latency_ms']['p99'], 0)} ms"
        )
    finally:
        await asyncio.to_thread(node.stop)
        await asyncio.to_thread(bare.stop)
        shutil.rmtree(scratch, ignore_errors=True)
    report = AuthReport(
        config, node.startup_s, users, results, me_ratios, storm, hashing, node.stop_result
    )
    report.seconds = time.perf_counter() - started
    return report


def run_auth_bench(config: AuthBenchConfig, progress: Progress = print) -> AuthReport:
    """Measure everything; AuthUnavailable when the node's auth routes do not work."""
    return asyncio.run(_run(config, progress))
