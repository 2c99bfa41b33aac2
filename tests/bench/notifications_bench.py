"""In-app notifications pushed over WebSockets to 1,000 connected clients, against the
usual alternative (clients polling the feed every second), in one run against one node.

A real node (`run.py` on a fresh data folder: embedded PostgreSQL, memory transport,
log level warning, as in http_bench.py) and, in this process (a separate one), the
clients. Setup: `users` accounts registered and logged in over HTTP (argon2id: the slow
part), `groups` groups holding every one of them, then `clients` WebSockets to
GET /api/v1/ws?access_token=..., spread evenly over the users (50 users, 1,000 sockets:
20 devices or tabs each). Every socket must answer its `hello` first.

Events go through the real path: POST /api/v1/groups/{id}/expenses (an equal split among
every member) by a member in turn; the splits actor hands ExpenseAdded to the
notifications actor, which stores one in-app item per member but the creator and pushes
it to each of that member's sockets. With 50 members, one expense is 49 notifications and
980 frames. A frame is matched to its expense by `notification.data.expense_id`; its
latency runs from the moment this process sent the POST to the moment a socket's reader
task got the frame (one clock, this process's `perf_counter`).

Three measurements per round:

* WebSocket push, burst: `burst` expenses posted at once; deliveries (frames to
  sockets) and notifications per second from the first POST to the last frame: what the
  node can push. Its latencies are mostly the queue's: shown, no target.
* WebSocket push, paced: `expenses` expenses at `rate` per second (open loop); the
  p50/p99 event-to-client time at that load. Target: p99 within `target_p99_ms` (the
  issue: in-app notifications arrive within a second of the event).
* Polling, paced: the same load while `pollers` clients (spread over the same users)
  GET /api/v1/notifications?unread=true every `poll_interval` seconds, each at its own
  random phase, the usual fallback when there is no socket; the time from the POST to the
  first poll answer listing the item. The sockets stay connected meanwhile (the node does
  the same push work in both paced phases; the pollers add their requests), and every
  user's feed is marked read before it, so a poll page holds only that phase's items.

One warm-up of each paced phase, then `rounds` rounds in rotating order; figures are
medians of the rounds. A delivery still missing `drain_timeout` seconds after the last
POST counts as lost. CPU seconds of the node, its PostgreSQL and this process over the
measured rounds show who was busy; the machine's other load is shown beside them (every
party shares this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench.http_bench import BenchProcessError, CpuMeter, NodeProcess, _register_and_login

Progress = Callable[[str], None]

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "notifications.json"
CURRENCY = "EUR"
EXPENSE_AMOUNT = 4_900  # minor units: 49 EUR
REQUEST_TIMEOUT_S = 60.0
FD_MARGIN = 256  # descriptors beside the sockets: the node's pool, logs, libraries, posters
PARTIES = ("node", "database", "clients")


class NotificationsBenchError(RuntimeError):
    """The bench could not run as configured (descriptors, a refused request, a node)."""


@dataclass
class NotificationsBenchConfig:
    """How many sockets over how many users, the pollers, and the load of each phase."""

    clients: int = 1_000  # WebSocket connections
    users: int = 50  # accounts the sockets and the pollers spread over
    groups: int = 1  # groups holding every user; expenses go to each in turn
    pollers: int = 100  # clients polling the feed in the polling phase
    burst: int = 20  # expenses posted at once in a burst phase
    expenses: int = 10  # expenses per paced phase
    rate: float = 2.0  # expenses per second in the paced phases
    rounds: int = 3
    poll_interval: float = 1.0
    poll_limit: int = 50  # the feed page each poll asks for
    drain_timeout: float = 30.0
    target_p99_ms: float = 1_000.0
    connect_concurrency: int = 50
    register_concurrency: int = 8
    seed: int = 7

    def __post_init__(self) -> None:
        if self.users < 2:
            raise ValueError("users must be at least 2 (an expense notifies the others)")
        if min(self.clients, self.groups, self.pollers, self.burst, self.expenses) < 1:
            raise ValueError("clients, groups, pollers, burst and expenses must be at least 1")
        if min(self.rounds, self.connect_concurrency, self.register_concurrency) < 1:
            raise ValueError("rounds and concurrencies must be at least 1")
        if min(self.rate, self.poll_interval, self.drain_timeout, self.target_p99_ms) <= 0:
            raise ValueError("rate, poll_interval, drain_timeout and the target must be > 0")
        if not 1 <= self.poll_limit <= 200:
            raise ValueError("poll_limit must be from 1 to 200 (the API's page size)")

    @property
    def needed_descriptors(self) -> int:
        """Open files each process needs: the node holds every socket and poller
        connection, and so does this process."""
        return self.clients + self.pollers + FD_MARGIN


# --------------------------------------------------------------------------- results


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class PhaseResult:
    """One phase: what should have reached the clients, what did, how fast, how late."""

    expenses: int
    expected: int  # deliveries to clients (frames to sockets, or first sightings by pollers)
    delivered: int
    notifications: int  # distinct (user, expense) items that reached at least one client
    seconds: float  # first POST sent -> last delivery
    post_seconds: float  # first POST sent -> last POST answered
    p50_ms: float
    p99_ms: float
    max_ms: float
    polls: int = 0  # feed requests made (polling phases)
    poll_errors: int = 0
    wall_s: float = 0.0  # the whole phase: first POST to the end of the wait
    cpu_s: dict[str, float] = field(default_factory=dict)  # node, database, clients

    def cores(self, party: str) -> float:
        """How many CPUs `party` kept busy on average during the phase."""
        return self.cpu_s.get(party, 0.0) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    @property
    def delivery_rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0

    @property
    def notification_rate(self) -> float:
        return self.notifications / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "expenses": self.expenses,
            "expected_deliveries": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "notifications": self.notifications,
            "seconds": round(self.seconds, 3),
            "post_seconds": round(self.post_seconds, 3),
            "deliveries_per_s": round(self.delivery_rate, 1),
            "notifications_per_s": round(self.notification_rate, 1),
            "p50_ms": round(self.p50_ms, 1),
            "p99_ms": round(self.p99_ms, 1),
            "max_ms": round(self.max_ms, 1),
        }
        if self.polls:
            shown["polls"] = self.polls
            shown["poll_errors"] = self.poll_errors
        shown["wall_s"] = round(self.wall_s, 3)
        shown["cpu_s"] = {k: round(v, 3) for k, v in self.cpu_s.items()}
        shown["cores_busy"] = {k: round(self.cores(k), 3) for k in self.cpu_s}
        return shown


@dataclass
class SystemResult:
    """The rounds of one delivery path at one load."""

    key: str
    label: str
    load: str
    rounds: list[PhaseResult] = field(default_factory=list)
    warmup: PhaseResult | None = None

    def _median(self, pick: Callable[[PhaseResult], float]) -> float:
        return statistics.median(pick(r) for r in self.rounds)

    @property
    def delivery_rate(self) -> float:
        return self._median(lambda r: r.delivery_rate)

    @property
    def notification_rate(self) -> float:
        return self._median(lambda r: r.notification_rate)

    @property
    def p50_ms(self) -> float:
        return self._median(lambda r: r.p50_ms)

    @property
    def p99_ms(self) -> float:
        return self._median(lambda r: r.p99_ms)

    @property
    def max_ms(self) -> float:
        return max(r.max_ms for r in self.rounds)

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rounds)

    def cores(self, party: str) -> float:
        return self._median(lambda r: r.cores(party))

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "load": self.load,
            "deliveries_per_s": round(self.delivery_rate, 1),
            "notifications_per_s": round(self.notification_rate, 1),
            "p50_ms": round(self.p50_ms, 1),
            "p99_ms": round(self.p99_ms, 1),
            "max_ms": round(self.max_ms, 1),
            "lost": self.lost,
            "cores_busy": {party: round(self.cores(party), 3) for party in PARTIES},
            "rounds": [r.as_json() for r in self.rounds],
            "warmup": None if self.warmup is None else self.warmup.as_json(),
        }


@dataclass
class Target:
    """The issue's requirement with its measured value (lower is better)."""

    name: str
    value: float
    target: float

    @property
    def passed(self) -> bool:
        return self.value <= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value_ms": round(self.value, 1),
            "target_ms": self.target,
            "passed": self.passed,
        }


@dataclass
class NotificationsReport:
    """Everything one run measured, its setup and who used the CPU."""

    config: NotificationsBenchConfig
    systems: dict[str, SystemResult]
    setup: dict[str, Any]
    cpu: dict[str, Any]
    node_stop: dict[str, Any] | None
    seconds: float

    @property
    def targets(self) -> list[Target]:
        return [
            Target(
                "WebSocket p99, event to client (paced)",
                self.systems["ws_paced"].p99_ms,
                self.config.target_p99_ms,
            )
        ]

    @property
    def all_passed(self) -> bool:
        return all(t.passed for t in self.targets) and self.systems["ws_paced"].lost == 0

    def as_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "config": {
                "clients": c.clients,
                "users": c.users,
                "sockets_per_user": self.setup["sockets_per_user"],
                "groups": c.groups,
                "members_per_group": c.users,
                "notifications_per_expense": c.users - 1,
                "pollers": c.pollers,
                "burst_expenses": c.burst,
                "paced_expenses": c.expenses,
                "paced_rate_expenses_per_s": c.rate,
                "poll_interval_s": c.poll_interval,
                "poll_limit": c.poll_limit,
                "rounds": c.rounds,
                "warm_up_rounds": 1,
                "statistic": "median",
                "interleaved": True,
                "drain_timeout_s": c.drain_timeout,
                "node": "run.py, embedded PostgreSQL, memory transport, log level warning",
                "latency": "POST /expenses sent -> frame (or poll answer) received, one clock",
            },
            "systems": {key: result.as_json() for key, result in self.systems.items()},
            "targets": [t.as_json() for t in self.targets],
            "all_passed": self.all_passed,
            "setup": self.setup,
            "cpu": self.cpu,
            "node_stop": self.node_stop,
            "seconds": round(self.seconds, 2),
        }

    def table(self) -> str:
        return self.format()

    def format(self) -> str:
        c = self.config
        lines = [
            "",
            f"{'delivery path':<44} {'load':<22} {'to clients/s':>12} {'notif/s':>8} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'lost':>5}",
            "-" * 119,
        ]
        for result in self.systems.values():
            lines.append(
                f"{result.label:<44} {result.load:<22} {result.delivery_rate:>12,.0f} "
                f"{result.notification_rate:>8,.0f} {result.p50_ms:>7,.0f} "
                f"{result.p99_ms:>7,.0f} {result.max_ms:>7,.0f} {result.lost:>5,}"
            )
        per_user = self.setup["sockets_per_user"]
        lines += [
            f"(medians of {c.rounds} rounds; {c.users} users in {c.groups} group(s) of "
            f"{c.users}: one expense = {c.users - 1} in-app notifications = "
            f"{self.setup['frames_per_expense']:,} frames to {c.clients:,} sockets "
            f"({per_user} per user); latency: POST sent -> frame/poll answer received; "
            "to clients/s: frames to sockets, or first sightings by pollers)",
            "",
            f"{'target':<44} {'measured':>10} {'target':>12}  result",
            "-" * 119,
        ]
        for t in self.targets:
            verdict = "PASS" if t.passed else f"MISS ({t.value / t.target - 1:+.0%})"
            lines.append(
                f"{t.name:<44} {t.value:>7,.0f} ms {'<= ' + f'{t.target:,.0f}':>9} ms  {verdict}"
            )
        lines += ["", "CPUs kept busy during each phase (medians of the rounds):"]
        for result in self.systems.values():
            lines.append(
                f"  {result.label:<44} node {result.cores('node'):.2f}, its PostgreSQL "
                f"{result.cores('database'):.2f}, clients {result.cores('clients'):.2f}"
            )
        cpu = self.cpu
        lines += [
            f"CPU over the measured rounds ({cpu['wall_s']:.1f} s, {cpu['cpus']} CPUs): node "
            f"{cpu['node_s']:.1f} s, its PostgreSQL {cpu['database_s']:.1f} s, clients (this "
            f"process) {cpu['clients_s']:.1f} s, other processes on the machine "
            f"{cpu['others_s']:.1f} s; load average before {cpu['loadavg_before']:.2f}, "
            f"after {cpu['loadavg_after']:.2f}",
            f"setup: {c.users} users registered and logged in in {self.setup['register_s']:.1f} s"
            f"; {c.clients:,} sockets connected in {self.setup['connect_s']:.1f} s; open-file "
            f"limit {self.setup['fd_limit_bench']:,} here, {self.setup['fd_limit_node']} in the "
            f"node; sockets closed early {self.setup['sockets_closed_early']}; frames not "
            f"shaped as documented {len(self.setup['bad_frames'])}",
        ]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the machine


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to `needed` (the node inherits it); the
    new soft limit. A hard limit below `needed` is an error that says what to do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise NotificationsBenchError(
            f"the notifications bench needs {needed:,} open files per process (sockets + "
            f"pollers + {FD_MARGIN}), but the hard limit is {hard:,} (soft {soft:,}): raise it "
            "(`ulimit -Hn`, LimitNOFILE=, /etc/security/limits.conf) or lower the clients"
        )
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    except (ValueError, OSError) as error:
        raise NotificationsBenchError(
            f"could not raise the open-file limit from {soft:,} to {needed:,}: {error}"
        ) from None
    return needed


def _process_fd_limit(pid: int) -> int | str:
    try:
        text = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return "unknown"
    for line in text.splitlines():
        if line.startswith("Max open files"):
            value = line.split()[3]
            return int(value) if value.isdigit() else value
    return "unknown"


def _busy_cpu_seconds() -> float:
    """CPU seconds every process on the machine used so far (from /proc/stat)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return 0.0
    ticks = [int(v) for v in first[1:9]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def _loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# --------------------------------------------------------------------------- clients


@dataclass
class _User:
    index: int
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _check(status: int, wanted: int, what: str, body: str) -> None:
    if status != wanted:
        raise NotificationsBenchError(f"{what} answered {status}: {body[:300]}")


class _Sockets:
    """The WebSocket clients: one reader task each, recording (expense_id, user, time)."""

    def __init__(self, url: str, users: Sequence[_User], clients: int) -> None:
        self.url = url.replace("http://", "ws://", 1)
        self.users = users
        self.owner = [i % len(users) for i in range(clients)]  # socket -> user index
        self.per_user = [self.owner.count(u) for u in range(len(users))]
        self.frames: list[tuple[str, int, float]] = []
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        self.closed_early = 0
        self.bad_frames: list[str] = []
        self.closing = False
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), trust_env=False
        )

    async def connect(self, concurrency: int, progress: Progress) -> None:
        gate = asyncio.Semaphore(concurrency)
        step = max(1, len(self.owner) // 4)

        async def one(user_index: int) -> None:
            user = self.users[user_index]
            async with gate:
                socket = await self.session.ws_connect(
                    f"{self.url}/api/v1/ws?access_token={user.token}",
                    autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                )
                self.sockets.append(socket)
                hello = await asyncio.wait_for(socket.receive(), REQUEST_TIMEOUT_S)
                if hello.type != aiohttp.WSMsgType.TEXT:
                    raise NotificationsBenchError(f"the socket's first message was {hello.type}")
                body = json.loads(hello.data)
                if body.get("type") != "hello" or body.get("user_id") != user.id:
                    raise NotificationsBenchError(f"the socket's first frame was {body!r}")
                self.readers.append(asyncio.create_task(self._read(socket, user_index)))
                if len(self.readers) % step == 0:
                    progress(f"  connected {len(self.readers):,}/{len(self.owner):,} sockets")

        await asyncio.gather(*(one(u) for u in self.owner))

    async def _read(self, socket: aiohttp.ClientWebSocketResponse, user_index: int) -> None:
        clock = time.perf_counter
        record = self.frames.append
        try:
            async for message in socket:
                received = clock()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                body = json.loads(message.data)
                if body.get("type") != "notification":
                    continue
                item = body["notification"]
                if item.get("kind") == "ExpenseAdded":
                    record((item["data"]["expense_id"], user_index, received))
        except (ValueError, KeyError, TypeError) as error:  # a frame not shaped as documented
            self.bad_frames.append(f"{type(error).__name__}: {error}")
        if not self.closing:
            self.closed_early += 1

    @property
    def open(self) -> int:
        return sum(1 for s in self.sockets if not s.closed)

    async def close(self) -> None:
        self.closing = True
        gate = asyncio.Semaphore(100)

        async def one(socket: aiohttp.ClientWebSocketResponse) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await socket.close()

        await asyncio.gather(*(one(s) for s in self.sockets))
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await self.session.close()


class _Pollers:
    """Clients polling GET /api/v1/notifications?unread=true, each on its own schedule."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        users: Sequence[_User],
        count: int,
        config: NotificationsBenchConfig,
    ) -> None:
        self.session = session
        self.url = f"{url}/api/v1/notifications?unread=true&limit={config.poll_limit}"
        self.users = users
        self.owner = [i % len(users) for i in range(count)]  # poller -> user index
        self.per_user = [self.owner.count(u) for u in range(len(users))]
        self.interval = config.poll_interval
        self.rng = random.Random(config.seed)
        self.sightings: list[tuple[str, int, float]] = []  # (expense_id, user, received)
        self.polls = 0
        self.errors = 0

    async def run(self, stop: asyncio.Event) -> None:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                self._poll(index, start + self.rng.random() * self.interval, stop)
                for index in range(len(self.owner))
            )
        )

    async def _poll(self, index: int, due: float, stop: asyncio.Event) -> None:
        user_index = self.owner[index]
        headers = self.users[user_index].headers
        seen: set[str] = set()
        clock = time.perf_counter
        while not stop.is_set():
            delay = due - clock()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
            try:
                async with self.session.get(self.url, headers=headers) as rsp:
                    raw = await rsp.read()
                    received = clock()
                    status = rsp.status
            except (aiohttp.ClientError, TimeoutError):
                self.errors += 1
                status, raw, received = 0, b"", clock()
            self.polls += 1
            if status == 200:
                for item in json.loads(raw)["items"]:
                    if item.get("kind") != "ExpenseAdded":
                        continue
                    expense_id = item["data"]["expense_id"]
                    if expense_id not in seen:
                        seen.add(expense_id)
                        self.sightings.append((expense_id, user_index, received))
            elif status:
                self.errors += 1
            due += self.interval
            while due < clock():  # a poll that overran its slot: keep the cadence
                due += self.interval


# --------------------------------------------------------------------------- the bench


class _Bench:
    """The node, its users and groups, the sockets and the pollers."""

    def __init__(self, config: NotificationsBenchConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        self.users: list[_User] = []
        self.groups: list[str] = []
        self.posted = 0  # expenses so far, to rotate creators and groups
        self.meters: dict[str, CpuMeter] = {}

    def _start_meters(self) -> float:
        for meter in self.meters.values():
            meter.start()
        return time.perf_counter()

    def _stop_meters(self, result: PhaseResult, started: float) -> PhaseResult:
        result.wall_s = time.perf_counter() - started
        result.cpu_s = {party: meter.stop() for party, meter in self.meters.items()}
        return result

    async def setup(self, node: NodeProcess) -> dict[str, Any]:
        config, progress = self.config, self.progress
        self.url = node.url
        self.meters = {
            "node": CpuMeter(node.server_pids),
            "database": CpuMeter(node.database_pids),
            "clients": CpuMeter(lambda: [os.getpid()]),
        }
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            trust_env=False,
        )
        started = time.perf_counter()
        gate = asyncio.Semaphore(config.register_concurrency)
        step = max(1, config.users // 5)
        done = 0

        async def register(index: int) -> _User:
            nonlocal done
            async with gate:
                token = await _register_and_login(self.http, node.url, 700 + index)
                headers = {"Authorization": f"Bearer {token}"}
                async with self.http.get(f"{node.url}/api/v1/me", headers=headers) as rsp:
                    text = await rsp.text()
                    _check(rsp.status, 200, "GET /api/v1/me", text)
                done += 1
                if done % step == 0:
                    progress(f"  registered and logged in {done}/{config.users} users")
                return _User(index, str(json.loads(text)["id"]), token)

        self.users = list(await asyncio.gather(*(register(i) for i in range(config.users))))
        register_s = time.perf_counter() - started
        owner = self.users[0]
        for number in range(config.groups):
            async with self.http.post(
                f"{node.url}/api/v1/groups",
                json={"name": f"Bench group {number + 1}", "currency": CURRENCY},
                headers=owner.headers,
            ) as rsp:
                text = await rsp.text()
                _check(rsp.status, 201, "POST /api/v1/groups", text)
            group = str(json.loads(text)["id"])
            for user in self.users[1:]:
                async with self.http.post(
                    f"{node.url}/api/v1/groups/{group}/members",
                    json={"user_id": user.id},
                    headers=owner.headers,
                ) as rsp:
                    _check(rsp.status, 201, "POST /members", await rsp.text())
            self.groups.append(group)
        progress(f"  {config.groups} group(s) of {config.users} members created")
        started = time.perf_counter()
        self.sockets = _Sockets(node.url, self.users, config.clients)
        await self.sockets.connect(config.connect_concurrency, progress)
        connect_s = time.perf_counter() - started
        self.pollers = _Pollers(self.http, node.url, self.users, config.pollers, config)
        per_user = sorted(set(self.sockets.per_user))
        return {
            "register_s": round(register_s, 2),
            "connect_s": round(connect_s, 2),
            "sockets_per_user": per_user[0] if len(per_user) == 1 else per_user,
            "frames_per_expense": sum(self.sockets.per_user) - self.sockets.per_user[0],
        }

    async def close(self) -> None:
        sockets: _Sockets | None = getattr(self, "sockets", None)
        if sockets is not None:
            await sockets.close()
        http: aiohttp.ClientSession | None = getattr(self, "http", None)
        if http is not None:
            await http.close()

    # ── posting ────────────────────────────────────────────────────────────────────

    async def _post(self, number: int) -> tuple[str, int, float, float]:
        """POST one expense by a member in turn: (expense id, creator, sent, answered)."""
        creator = self.users[number % len(self.users)]
        group = self.groups[number % len(self.groups)]
        body = {
            "description": f"Bench dinner {number}",
            "amount": EXPENSE_AMOUNT,
            "currency": CURRENCY,
            "paid_by": creator.id,
            "split": {"mode": "equal"},
        }
        sent = time.perf_counter()
        async with self.http.post(
            f"{self.url}/api/v1/groups/{group}/expenses", json=body, headers=creator.headers
        ) as rsp:
            text = await rsp.text()
            answered = time.perf_counter()
            _check(rsp.status, 201, "POST /expenses", text)
        return str(json.loads(text)["id"]), creator.index, sent, answered

    async def _post_all(
        self, count: int, rate: float | None
    ) -> list[tuple[str, int, float, float]]:
        """`count` expenses at `rate` per second (open loop), or all at once."""
        first = self.posted
        self.posted += count
        tasks: list[asyncio.Task[tuple[str, int, float, float]]] = []
        start = time.perf_counter()
        for k in range(count):
            if rate is not None:
                delay = start + k / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._post(first + k)))
        return list(await asyncio.gather(*tasks))

    async def _wait(
        self,
        deliveries: list[tuple[str, int, float]],
        begin: int,
        wanted: set[str],
        expected: int,
        posted_at: float,
    ) -> None:
        """Until `expected` deliveries of `wanted` expenses are in, or the drain timeout."""
        count, scanned = 0, begin
        deadline = posted_at + self.config.drain_timeout
        while time.perf_counter() < deadline:
            end = len(deliveries)
            count += sum(1 for d in deliveries[scanned:end] if d[0] in wanted)
            scanned = end
            if count >= expected:
                return
            await asyncio.sleep(0.02)

    def _result(
        self,
        posts: list[tuple[str, int, float, float]],
        deliveries: Iterable[tuple[str, int, float]],
        per_user: Sequence[int],
    ) -> PhaseResult:
        sent = {expense_id: (creator, at) for expense_id, creator, at, _ in posts}
        expected = sum(sum(per_user) - per_user[creator] for _, creator, _, _ in posts)
        latencies: list[float] = []
        items: set[tuple[str, int]] = set()
        last = 0.0
        for expense_id, user_index, received in deliveries:
            found = sent.get(expense_id)
            if found is None:
                continue
            latencies.append(received - found[1])
            items.add((expense_id, user_index))
            last = max(last, received)
        latencies.sort()
        first_sent = min(at for _, _, at, _ in posts)
        return PhaseResult(
            expenses=len(posts),
            expected=expected,
            delivered=len(latencies),
            notifications=len(items),
            seconds=max(last - first_sent, 0.0),
            post_seconds=max(answered for *_, answered in posts) - first_sent,
            p50_ms=_percentile(latencies, 0.50) * 1000,
            p99_ms=_percentile(latencies, 0.99) * 1000,
            max_ms=(latencies[-1] if latencies else float("nan")) * 1000,
        )

    # ── phases ─────────────────────────────────────────────────────────────────────

    async def ws_phase(self, count: int, rate: float | None) -> PhaseResult:
        sockets = self.sockets
        begin = len(sockets.frames)
        started = self._start_meters()
        posts = await self._post_all(count, rate)
        wanted = {p[0] for p in posts}
        expected = sum(sum(sockets.per_user) - sockets.per_user[p[1]] for p in posts)
        await self._wait(sockets.frames, begin, wanted, expected, time.perf_counter())
        result = self._result(posts, sockets.frames[begin:], sockets.per_user)
        return self._stop_meters(result, started)

    async def poll_phase(self, count: int, rate: float) -> PhaseResult:
        await self._read_all()
        pollers = self.pollers
        begin = len(pollers.sightings)
        polls, errors = pollers.polls, pollers.errors
        stop = asyncio.Event()
        polling = asyncio.create_task(pollers.run(stop))
        try:
            await asyncio.sleep(pollers.interval)  # every poller in its cadence first
            started = self._start_meters()
            posts = await self._post_all(count, rate)
            wanted = {p[0] for p in posts}
            expected = sum(sum(pollers.per_user) - pollers.per_user[p[1]] for p in posts)
            await self._wait(pollers.sightings, begin, wanted, expected, time.perf_counter())
        finally:
            stop.set()
            await polling
        result = self._result(posts, pollers.sightings[begin:], pollers.per_user)
        result.polls = pollers.polls - polls
        result.poll_errors = pollers.errors - errors
        return self._stop_meters(result, started)

    async def _read_all(self) -> None:
        """Every user reads their feed: a poll page then holds only what comes next."""

        async def one(user: _User) -> None:
            async with self.http.post(
                f"{self.url}/api/v1/notifications/read-all", headers=user.headers
            ) as rsp:
                _check(rsp.status, 204, "POST /notifications/read-all", await rsp.text())

        await asyncio.gather(*(one(u) for u in self.users))


def _line(name: str, label: str, result: PhaseResult) -> str:
    lost = f"   LOST {result.lost:,}" if result.lost else ""
    polls = f"   {result.polls:,} polls" if result.polls else ""
    return (
        f"  {name:<10} {label:<44} {result.delivered:>6,}/{result.expected:<6,} in "
        f"{result.seconds:5.2f} s {result.delivery_rate:>8,.0f}/s {result.notification_rate:>6,.0f}"
        f" notif/s   p50 {result.p50_ms:6,.0f} ms   p99 {result.p99_ms:6,.0f} ms{polls}{lost}"
    )


async def run_notifications_bench(
    config: NotificationsBenchConfig, progress: Progress = print
) -> NotificationsReport:
    """Start a node in a temporary folder, connect the clients, measure, clean up."""
    started = time.perf_counter()
    fd_limit = raise_fd_limit(config.needed_descriptors)
    c = config
    systems = {
        "ws_burst": SystemResult(
            "ws_burst",
            f"WebSocket push, {c.clients:,} sockets (burst)",
            f"{c.burst} expenses at once",
        ),
        "ws_paced": SystemResult(
            "ws_paced",
            f"WebSocket push, {c.clients:,} sockets (paced)",
            f"{c.rate:g} expenses/s",
        ),
        "poll_paced": SystemResult(
            "poll_paced",
            f"Polling unread every {c.poll_interval:g} s, {c.pollers} clients",
            f"{c.rate:g} expenses/s",
        ),
    }
    with tempfile.TemporaryDirectory(prefix="splitgo-bench-notifications-") as folder:
        node = NodeProcess(Path(folder))
        progress(f"  starting a node (run.py, embedded PostgreSQL) in {folder}")
        bench = _Bench(config, progress)
        try:
            try:
                await node.start()
            except BenchProcessError as error:
                raise NotificationsBenchError(f"the node did not start: {error}") from error
            assert node.process is not None
            node_fd_limit = _process_fd_limit(node.process.pid)
            if isinstance(node_fd_limit, int) and node_fd_limit < config.needed_descriptors:
                raise NotificationsBenchError(
                    f"the node may open {node_fd_limit:,} files, the bench needs "
                    f"{config.needed_descriptors:,}"
                )
            progress(f"  node ready in {node.startup_s:.1f} s at {node.url}")
            setup = await bench.setup(node)
            setup["fd_limit_bench"] = fd_limit
            setup["fd_limit_node"] = node_fd_limit
            phases = {
                "ws_burst": lambda: bench.ws_phase(c.burst, None),
                "ws_paced": lambda: bench.ws_phase(c.expenses, c.rate),
                "poll_paced": lambda: bench.poll_phase(c.expenses, c.rate),
            }
            warm = max(2, c.expenses // 2)
            for key in ("ws_paced", "poll_paced"):
                if key == "ws_paced":
                    result = await bench.ws_phase(warm, c.rate)
                else:
                    result = await bench.poll_phase(warm, c.rate)
                systems[key].warmup = result
                progress(_line("warm-up", systems[key].label, result))
            meter = CpuMeter(lambda: [*node.server_pids(), *node.database_pids(), os.getpid()])
            node_meter = CpuMeter(node.server_pids)
            database_meter = CpuMeter(node.database_pids)
            own_meter = CpuMeter(lambda: [os.getpid()])
            load_before = _loadavg()
            busy_before = _busy_cpu_seconds()
            for m in (meter, node_meter, database_meter, own_meter):
                m.start()
            wall = time.perf_counter()
            keys = list(phases)
            for round_index in range(c.rounds):
                shift = round_index % len(keys)
                for key in keys[shift:] + keys[:shift]:
                    result = await phases[key]()
                    systems[key].rounds.append(result)
                    progress(
                        _line(f"round {round_index + 1}/{c.rounds}", systems[key].label, result)
                    )
            wall = time.perf_counter() - wall
            ours = meter.stop()
            cpu = {
                "wall_s": round(wall, 2),
                "cpus": len(os.sched_getaffinity(0)),
                "node_s": round(node_meter.stop(), 2),
                "database_s": round(database_meter.stop(), 2),
                "clients_s": round(own_meter.stop(), 2),
                "others_s": round(max(_busy_cpu_seconds() - busy_before - ours, 0.0), 2),
                "loadavg_before": round(load_before, 2),
                "loadavg_after": round(_loadavg(), 2),
            }
            setup["sockets_closed_early"] = bench.sockets.closed_early
            setup["bad_frames"] = bench.sockets.bad_frames[:5]
            setup["sockets_open_at_end"] = bench.sockets.open
        finally:
            await bench.close()
            await asyncio.to_thread(node.stop)
    return NotificationsReport(
        config, systems, setup, cpu, node.stop_result, time.perf_counter() - started
    )


def write_results(report: NotificationsReport, path: Path = RESULTS_PATH) -> Path:
    """The report as JSON, with when and where it ran."""
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        **report.as_json(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def describe(config: NotificationsBenchConfig) -> str:
    """The section's heading line."""
    return (
        f"== notifications: in-app pushes to {config.clients:,} WebSockets over "
        f"{config.users} users ({config.groups} group(s) of {config.users}), against "
        f"{config.pollers} clients polling every {config.poll_interval:g} s; bursts of "
        f"{config.burst} expenses, paced phases of {config.expenses} at {config.rate:g}/s; "
        f"1 warm-up, then median of {config.rounds} interleaved rounds"
    )


def _parse(argv: list[str] | None) -> tuple[NotificationsBenchConfig, Path]:
    defaults = NotificationsBenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.notifications_bench", description=__doc__.split("\n")[0]
    )
    sizes: list[tuple[str, type, str]] = [
        ("clients", int, "WebSocket connections"),
        ("users", int, "accounts the sockets and pollers spread over"),
        ("groups", int, "groups holding every user (expenses go to each in turn)"),
        ("pollers", int, "clients polling the feed in the polling phase"),
        ("burst", int, "expenses posted at once per burst phase"),
        ("expenses", int, "expenses per paced phase"),
        ("rate", float, "expenses per second in the paced phases"),
        ("rounds", int, "timed rounds (median taken)"),
        ("poll_interval", float, "seconds between one poller's requests"),
        ("drain_timeout", float, "seconds to wait for the last deliveries of a phase"),
    ]
    for name, kind, text in sizes:
        default = getattr(defaults, name)
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=kind, default=default, help=f"{text} ({default})"
        )
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="the JSON file")
    args = parser.parse_args(argv)
    config = NotificationsBenchConfig(**{name: getattr(args, name) for name, _, _ in sizes})
    return config, args.results


def main(argv: list[str] | None = None) -> int:
    config, results = _parse(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    say(describe(config))
    try:
        report = asyncio.run(run_notifications_bench(config, say))
    except NotificationsBenchError as error:
        say(f"error: {error}")
        return 2
    say(report.format())
    path = write_results(report, results)
    say(f"\nwritten: {path} (section took {report.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
