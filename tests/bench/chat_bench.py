"""Chat live delivery: 1,000 WebSockets in 50 conversations at 200 messages/s, from the
send to every receiver, on one node and on two nodes sharing Redis, in one run.

Two scenarios, each on fresh nodes (`run.py`, log level warning, the cheap test password
hashing: setting up 1,000 accounts is not what is measured):

* one node: the memory transport, its embedded PostgreSQL.
* two nodes on Redis: `--transport redis` with node ids `a` and `b` on one Redis (a
  fresh key prefix) and one PostgreSQL (an embedded server this process starts); the
  chat actor's 4 shards lease themselves to either node. Half of every conversation's
  sockets are on each node, and the messages are posted to each node in turn, so most
  deliveries cross from the node that stored the message to the other one.

Setup over the HTTP API: `sockets` users (one socket each), `conversations` groups of
`sockets / conversations` members (20), each group's conversation opened by its owner
(every member in it). Receivers: WebSocket clients in `receiver_processes` processes of
their own (tests/bench/chat_receivers.py); the node runs in its own process too, and the
sender is this process. Sending: POST /api/v1/conversations/{id}/messages, open loop at
`rate` messages per second over every conversation in turn, each by the next member of
its conversation (a member posts every 5 s: far inside the chat's rate limit), for
`warmup` + `seconds` seconds; the text carries the message's number and the
CLOCK_MONOTONIC second it was due (`bench <k> <due>`).

Latency: the receive time at each socket minus the time the send was due (one clock for
every process of the machine), so a sender or node falling behind counts against it, as
in the pages bench; the warm-up's messages are not in the percentiles. Every socket of a
conversation (the author's own included: every open session of every participant) must
get every message posted there: deliveries expected against made, `drain_timeout`
seconds after the last send, are the losses. Target: p99 under `target_p99_ms` (100 ms)
in both scenarios, with nothing lost. CPU seconds per party (nodes, PostgreSQL,
receivers, sender) and the machine's load show who was busy; everything shares this
machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from tests.bench.http_bench import PASSWORD, BenchProcessError, CpuMeter, _wait_http
from tests.bench.node import free_port, helper_processes, stop_node
from tests.bench.notifications_bench import _busy_cpu_seconds, _loadavg, raise_fd_limit

Progress = Callable[[str], None]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "chat.json"
OPS_TOKEN = "bench"
JWT_KEYS = "chatbench:" + "k" * 48  # one signing key for both nodes of the Redis scenario
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 60.0
CHAT_SHARDS = 4  # composition.py's chat spec
LEASE_SETTLE_S = 4.0  # a third of the default lease (10 s): each node balances that often
FD_MARGIN = 256


class ChatBenchError(RuntimeError):
    """The bench could not run as configured (a node, a refused request, a receiver)."""


@dataclass
class ChatBenchConfig:
    """Sockets, conversations, the send rate and how long; the target."""

    sockets: int = 1_000  # one per user
    conversations: int = 50
    rate: float = 200.0  # messages per second, over every conversation
    seconds: float = 20.0  # measured sending
    # sending before it, not in the percentiles: 5 s at 200/s is every member's first
    # post (the chat shard asks auth for a name it has not seen; a conversation's first
    # message notifies everyone), one-off costs of a conversation's start
    warmup: float = 5.0
    drain_timeout: float = 30.0
    target_p99_ms: float = 100.0
    receiver_processes: int = 2
    register_concurrency: int = 16
    connect_concurrency: int = 50
    redis_url: str = "redis://127.0.0.1:6379/0"
    scenarios: tuple[str, ...] = ("one", "redis")

    def __post_init__(self) -> None:
        if self.conversations < 1 or self.sockets % self.conversations:
            raise ValueError("sockets must be a multiple of conversations")
        if self.members < 2:
            raise ValueError("a conversation needs at least 2 members")
        if min(self.rate, self.seconds, self.drain_timeout, self.target_p99_ms) <= 0:
            raise ValueError("rate, seconds, drain_timeout and the target must be > 0")
        if self.warmup < 0 or self.receiver_processes < 1:
            raise ValueError("warmup must be >= 0 and receiver_processes >= 1")
        unknown = set(self.scenarios) - {"one", "redis"}
        if unknown or not self.scenarios:
            raise ValueError(f"scenarios are 'one' and 'redis', not {sorted(unknown)}")

    @property
    def members(self) -> int:
        return self.sockets // self.conversations

    @property
    def messages(self) -> int:
        return round(self.rate * (self.warmup + self.seconds))

    @property
    def measured_from(self) -> int:
        return round(self.rate * self.warmup)


# --------------------------------------------------------------------------- results


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class ScenarioResult:
    """What one scenario sent, what reached the sockets, how late, who was busy."""

    key: str
    label: str
    nodes: int
    sockets_connected: int = 0
    sent: int = 0
    posted: int = 0  # answered 201
    post_errors: dict[str, int] = field(default_factory=dict)
    expected: int = 0  # deliveries: posted messages x their conversation's sockets
    delivered: int = 0
    duplicates: int = 0
    stray: int = 0
    sockets_missing_some: int = 0
    closed_early: int = 0
    measured_deliveries: int = 0
    p50_ms: float = float("nan")
    p90_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    post_p50_ms: float = float("nan")
    post_p99_ms: float = float("nan")
    send_lag_max_ms: float = 0.0  # how late the sender itself sent (its own loop)
    send_seconds: float = 0.0
    drain_seconds: float = 0.0
    setup: dict[str, Any] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    others_cpu_s: float = 0.0
    loadavg: tuple[float, float] = (float("nan"), float("nan"))
    chat_shards: dict[str, str | None] = field(default_factory=dict)
    # per chat shard as its node's /ops/actors shows it afterwards: messages handled and
    # the handler's time (the shard works one message at a time)
    shard_stats: list[dict[str, Any]] = field(default_factory=list)
    # per second of sending (by due time): the latest delivery of the messages due in it
    worst_by_second_ms: list[float] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    def passed(self, target_ms: float) -> bool:
        return self.p99_ms < target_ms and self.lost == 0 and self.posted == self.sent

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "nodes": self.nodes,
            "sockets_connected": self.sockets_connected,
            "messages_sent": self.sent,
            "messages_posted": self.posted,
            "post_errors": self.post_errors,
            "deliveries_expected": self.expected,
            "deliveries_made": self.delivered,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "stray_frames": self.stray,
            "sockets_missing_some": self.sockets_missing_some,
            "sockets_closed_early": self.closed_early,
            "measured_deliveries": self.measured_deliveries,
            "latency_ms": {
                "p50": round(self.p50_ms, 1),
                "p90": round(self.p90_ms, 1),
                "p99": round(self.p99_ms, 1),
                "max": round(self.max_ms, 1),
            },
            "post_answer_ms": {
                "p50": round(self.post_p50_ms, 1),
                "p99": round(self.post_p99_ms, 1),
            },
            "sender_lag_max_ms": round(self.send_lag_max_ms, 1),
            "send_seconds": round(self.send_seconds, 2),
            "drain_seconds": round(self.drain_seconds, 2),
            "setup": self.setup,
            "chat_shards": self.chat_shards,
            "chat_shard_handlers": self.shard_stats,
            "latest_delivery_by_second_ms": [round(v, 1) for v in self.worst_by_second_ms],
            "wall_s": round(self.wall_s, 2),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            "cores_busy": {
                k: round(v / self.wall_s, 2) if self.wall_s else 0.0 for k, v in self.cpu_s.items()
            },
            "other_processes_cpu_s": round(self.others_cpu_s, 2),
            "loadavg_before_after": [round(v, 2) for v in self.loadavg],
        }


@dataclass
class ChatReport:
    """Both scenarios side by side, against the target."""

    config: ChatBenchConfig
    scenarios: list[ScenarioResult]
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def all_passed(self) -> bool:
        return all(s.passed(self.config.target_p99_ms) for s in self.scenarios)

    def as_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "config": {
                "sockets": c.sockets,
                "users": c.sockets,
                "sockets_per_user": 1,
                "conversations": c.conversations,
                "members_per_conversation": c.members,
                "rate_messages_per_s": c.rate,
                "seconds_measured": c.seconds,
                "seconds_warmup": c.warmup,
                "messages": c.messages,
                "deliveries_per_message": c.members,
                "receiver_processes": c.receiver_processes,
                "drain_timeout_s": c.drain_timeout,
                "latency": "due time of the send -> frame read at each socket, CLOCK_MONOTONIC",
                "node": "run.py, log level warning, SPLITGO_PASSWORD_HASHING=test",
            },
            "target_p99_ms": c.target_p99_ms,
            "scenarios": {s.key: s.as_json() for s in self.scenarios},
            "skipped": self.skipped,
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 2),
        }

    def format(self) -> str:
        c = self.config
        lines = [
            "",
            f"{'scenario':<34} {'sockets':>7} {'msgs':>6} {'deliveries':>17} {'lost':>5} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'target':>8}  result",
            "-" * 118,
        ]
        for s in self.scenarios:
            verdict = "PASS" if s.passed(c.target_p99_ms) else "MISS"
            lines.append(
                f"{s.label:<34} {s.sockets_connected:>7,} {s.posted:>6,} "
                f"{f'{s.delivered:,}/{s.expected:,}':>17} {s.lost:>5,} {s.p50_ms:>7.1f} "
                f"{s.p99_ms:>7.1f} {s.max_ms:>7.1f} {'< ' + f'{c.target_p99_ms:g}':>8}  {verdict}"
            )
        for key, why in self.skipped.items():
            lines.append(f"{key:<34} skipped: {why}")
        lines.append(
            f"({c.sockets:,} sockets = {c.sockets:,} users, {c.conversations} conversations of "
            f"{c.members}; {c.rate:g} messages/s for {c.warmup:g} s warm-up + {c.seconds:g} s "
            f"measured; latency from the send's due time to the frame at each socket, "
            f"the warm-up's messages left out; every socket of a conversation, the author's "
            f"included, must get every message)"
        )
        lines.append("")
        for s in self.scenarios:
            cores = ", ".join(
                f"{party} {v / s.wall_s:.2f}" for party, v in s.cpu_s.items() if s.wall_s
            )
            errors = ", ".join(f"{k}: {v}" for k, v in s.post_errors.items()) or "none"
            lines += [
                f"{s.label}:",
                f"  POST answered p50 {s.post_p50_ms:.1f} ms, p99 {s.post_p99_ms:.1f} ms; "
                f"errors {errors}; sender's own lag at most {s.send_lag_max_ms:.1f} ms; "
                f"p90 {s.p90_ms:.1f} ms",
                f"  duplicates {s.duplicates}, stray frames {s.stray}, sockets missing some "
                f"{s.sockets_missing_some}, sockets closed early {s.closed_early}",
                f"  CPUs busy while sending and draining ({s.wall_s:.1f} s): {cores}; other "
                f"processes {s.others_cpu_s / s.wall_s if s.wall_s else 0:.2f}; load average "
                f"{s.loadavg[0]:.2f} -> {s.loadavg[1]:.2f}",
                f"  setup: {s.setup.get('register_s', 0):.1f} s to register and log in "
                f"{c.sockets:,} users, {s.setup.get('groups_s', 0):.1f} s for the groups and "
                f"conversations, {s.setup.get('connect_s', 0):.1f} s to connect the sockets"
                + (f"; chat shards: {s.chat_shards}" if s.chat_shards else ""),
            ]
            if s.worst_by_second_ms:
                lines.append(
                    "  latest delivery of the messages due in each second (ms): "
                    + " ".join(f"{v:.0f}" for v in s.worst_by_second_ms)
                )
            if s.shard_stats:
                lines.append(
                    "  chat shards' handlers: "
                    + "; ".join(
                        f"{x['node']}/{x['shard']} {x['handled']:,} handled, p50 "
                        f"{x['p50_ms'] or 0:.1f} ms, p99 {x['p99_ms'] or 0:.1f} ms"
                        for x in s.shard_stats
                    )
                )
        return "\n".join(lines)


# --------------------------------------------------------------------------- processes


class _Node:
    """`python run.py` with the bench's settings on a data folder of its own."""

    def __init__(self, folder: Path, name: str, env: dict[str, str], args: Sequence[str]) -> None:
        self.data_dir = folder / name / "data"
        self.log_path = folder / name / "node.log"
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.stop_result: dict[str, Any] | None = None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITGO_")}
        env.update(
            SPLITGO_LOG_LEVEL="warning",
            SPLITGO_LOG_FORMAT="json",
            SPLITGO_OPS_TOKEN=OPS_TOKEN,
            SPLITGO_RATE_LIMIT="0",  # the load comes from one address
            SPLITGO_PASSWORD_HASHING="test",  # 1,000 sign-ups are setup, not the measure
            # never the real ECB: nothing listens on port 9, the rates actor falls back
            SPLITGO_RATES_URL="http://127.0.0.1:9/stats/eurofxref/",
        )
        env.update(self.env)
        return env

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "run.py",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            cwd=PROJECT_ROOT,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        await _wait_http(self.process, f"{self.url}/readyz", READY_TIMEOUT_S, self.log_path)

    def pids(self) -> list[int]:
        return [] if self.process is None else [self.process.pid]

    def database_pids(self) -> list[int]:
        if self.process is None:
            return []
        return list(helper_processes(self.process.pid, self.data_dir))

    def stop(self) -> None:
        if self.process is not None and self.stop_result is None:
            self.stop_result = stop_node(self.process, self.data_dir, STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None


class _ReceiverProcess:
    """tests/bench/chat_receivers.py with its plan, spoken to over JSON lines."""

    def __init__(self, folder: Path, index: int, sockets: list[dict[str, Any]], gate: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.plan = folder / f"receivers-{index}.json"
        self.plan.write_text(json.dumps({"sockets": sockets, "connect_concurrency": gate}))
        self.stderr_path = folder / f"receivers-{index}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.chat_receivers",
            "--plan",
            str(self.plan),
            cwd=PROJECT_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.stderr_path.open("wb"),
            limit=1 << 26,  # a result line carries every latency
        )

    async def event(self, timeout: float) -> dict[str, Any]:
        assert self.process is not None
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            tail = self.stderr_path.read_text(errors="replace")[-2000:]
            raise ChatBenchError(f"a receiver process ended: {tail}")
        event: dict[str, Any] = json.loads(line)
        if event.get("event") == "error":
            raise ChatBenchError(f"a receiver process failed: {event.get('message')}")
        return event

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()

    def pid(self) -> list[int]:
        return (
            []
            if self.process is None or self.process.returncode is not None
            else [self.process.pid]
        )

    async def stop(self) -> int:
        """Quit, and the sockets that closed before the bench closed them."""
        if self.process is None or self.process.returncode is not None:
            return 0
        closed_early = 0
        with contextlib.suppress(Exception):
            await self.send({"op": "quit"})
            assert self.process.stdin is not None
            self.process.stdin.close()
            event = await self.event(30.0)
            closed_early = int(event.get("closed_early", 0))
        try:
            await asyncio.wait_for(self.process.wait(), 30.0)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        return closed_early


# --------------------------------------------------------------------------- setup


@dataclass
class _User:
    index: int
    id: str
    token: str
    url: str  # the node this user posts to and registered on

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _check(status: int, wanted: int, what: str, body: str) -> None:
    if status != wanted:
        raise ChatBenchError(f"{what} answered {status}: {body[:300]}")


async def _register(http: aiohttp.ClientSession, url: str, index: int, tag: str) -> _User:
    email = f"chat-{tag}-{index:04d}@example.com"
    account = {"email": email, "password": PASSWORD, "name": f"Chatter {index}"}
    async with http.post(f"{url}/api/v1/auth/register", json=account) as rsp:
        text = await rsp.text()
        _check(rsp.status, 201, "POST /auth/register", text)
    user_id = str(json.loads(text)["id"])
    async with http.post(
        f"{url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    ) as rsp:
        text = await rsp.text()
        _check(rsp.status, 200, "POST /auth/login", text)
    return _User(index, user_id, str(json.loads(text)["access_token"]), url)


async def _chat_shards(http: aiohttp.ClientSession, url: str) -> dict[str, str | None]:
    """The node that holds each chat shard, cluster-wide (empty on the memory transport)."""
    async with http.get(
        f"{url}/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    ) as rsp:
        body = await rsp.json()
    shards = body.get("cluster", {}).get("chat", [])
    return {str(s["shard"]): s.get("node") for s in shards}


async def _shard_stats(http: aiohttp.ClientSession, urls: list[str]) -> list[dict[str, Any]]:
    """Each node's own chat shards: handled messages and the handler's p50/p99."""
    found: list[dict[str, Any]] = []
    for url in urls:
        async with http.get(
            f"{url}/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
        ) as rsp:
            body = await rsp.json()
        found += [
            {key: shard.get(key) for key in ("node", "shard", "handled", "p50_ms", "p99_ms")}
            for shard in body.get("actors", [])
            if shard.get("name") == "chat"
        ]
    return sorted(found, key=lambda shard: (str(shard["node"]), int(shard["shard"])))


async def _cluster_owners(
    http: aiohttp.ClientSession, url: str
) -> dict[str, dict[str, str | None]]:
    """Every actor type's shards and the node that holds each, cluster-wide."""
    async with http.get(
        f"{url}/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    ) as rsp:
        body = await rsp.json()
    return {
        name: {str(s["shard"]): s.get("node") for s in shards}
        for name, shards in body.get("cluster", {}).items()
    }


def _settled(owners: dict[str, dict[str, str | None]], nodes: int) -> bool:
    """Every shard leased and no node above its fair share (what the nodes rebalance to)."""
    for held in owners.values():
        if None in held.values():
            return False
        fair = math.ceil(len(held) / nodes)
        counts: dict[str | None, int] = {}
        for node in held.values():
            counts[node] = counts.get(node, 0) + 1
        if max(counts.values(), default=0) > fair:
            return False
    return True


async def _wait_for_leases(
    http: aiohttp.ClientSession, url: str, nodes: int
) -> dict[str, str | None]:
    """The chat shards' owners once every actor type's shards are leased and balanced
    over the nodes, twice in a row a lease renewal apart: a shard handed over while
    messages are sent would be measured as a stall of the handover, not of chat."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    before: dict[str, dict[str, str | None]] | None = None
    while True:
        owners = await _cluster_owners(http, url)
        if (
            _settled(owners, nodes)
            and owners == before
            and len(owners.get("chat", {})) == CHAT_SHARDS
        ):
            return owners["chat"]
        if loop.time() > deadline:
            raise ChatBenchError(f"the shards were not leased and balanced: {owners}")
        before = owners if _settled(owners, nodes) else None
        await asyncio.sleep(LEASE_SETTLE_S)


class _Scenario:
    """One scenario's users, conversations, receivers and sending, on running nodes."""

    def __init__(
        self, config: ChatBenchConfig, nodes: list[_Node], folder: Path, progress: Progress
    ) -> None:
        self.config = config
        self.nodes = nodes
        self.folder = folder
        self.progress = progress
        self.users: list[_User] = []
        self.conversations: list[str] = []
        self.receivers: list[_ReceiverProcess] = []
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            trust_env=False,
        )

    async def setup(self, tag: str) -> dict[str, Any]:
        c, say = self.config, self.progress
        started = time.perf_counter()
        gate = asyncio.Semaphore(c.register_concurrency)
        done = 0

        async def register(index: int) -> _User:
            nonlocal done
            async with gate:
                user = await _register(
                    self.http, self.nodes[index % len(self.nodes)].url, index, tag
                )
            done += 1
            if done % (c.sockets // 4) == 0:
                say(f"  registered and logged in {done:,}/{c.sockets:,} users")
            return user

        self.users = list(await asyncio.gather(*(register(i) for i in range(c.sockets))))
        register_s = time.perf_counter() - started
        started = time.perf_counter()
        group_gate = asyncio.Semaphore(c.register_concurrency)

        async def conversation(number: int) -> str:
            members = self.users[number * c.members : (number + 1) * c.members]
            owner = members[0]
            async with group_gate:
                async with self.http.post(
                    f"{owner.url}/api/v1/groups",
                    json={"name": f"Chat bench {number + 1}", "currency": "EUR"},
                    headers=owner.headers,
                ) as rsp:
                    text = await rsp.text()
                    _check(rsp.status, 201, "POST /api/v1/groups", text)
                group = str(json.loads(text)["id"])
                for member in members[1:]:
                    async with self.http.post(
                        f"{owner.url}/api/v1/groups/{group}/members",
                        json={"user_id": member.id},
                        headers=owner.headers,
                    ) as rsp:
                        _check(rsp.status, 201, "POST /members", await rsp.text())
                async with self.http.post(
                    f"{owner.url}/api/v1/conversations",
                    json={"group_id": group},
                    headers=owner.headers,
                ) as rsp:
                    text = await rsp.text()
                    _check(rsp.status, 201, "POST /api/v1/conversations", text)
            opened = json.loads(text)
            if opened["participant_count"] != c.members:
                raise ChatBenchError(
                    f"a conversation opened with {opened['participant_count']} participants, "
                    f"not {c.members}"
                )
            return str(opened["id"])

        self.conversations = list(
            await asyncio.gather(*(conversation(n) for n in range(c.conversations)))
        )
        groups_s = time.perf_counter() - started
        say(f"  {c.conversations} groups of {c.members} and their conversations opened")
        started = time.perf_counter()
        await self._connect()
        connect_s = time.perf_counter() - started
        return {
            "register_s": round(register_s, 2),
            "groups_s": round(groups_s, 2),
            "connect_s": round(connect_s, 2),
        }

    def _socket_plan(self) -> list[dict[str, Any]]:
        """Member j of conversation n connects to node j mod nodes: half of every
        conversation's sockets on each node when there are two."""
        c = self.config
        plan = []
        for number in range(c.conversations):
            for j in range(c.members):
                user = self.users[number * c.members + j]
                node = self.nodes[j % len(self.nodes)]
                url = node.url.replace("http://", "ws://", 1)
                plan.append(
                    {
                        "url": f"{url}/api/v1/ws?access_token={user.token}",
                        "user_id": user.id,
                        "conversation": number,
                    }
                )
        return plan

    async def _connect(self) -> None:
        c = self.config
        plan = self._socket_plan()
        shares = [plan[i :: c.receiver_processes] for i in range(c.receiver_processes)]
        self.receivers = [
            _ReceiverProcess(self.folder, i, share, c.connect_concurrency)
            for i, share in enumerate(shares)
        ]
        for receiver in self.receivers:
            await receiver.start()
        connected = 0
        for receiver in self.receivers:
            event = await receiver.event(READY_TIMEOUT_S)
            connected += int(event["sockets"])
        self.connected = connected
        self.progress(
            f"  {connected:,} sockets connected from {len(self.receivers)} receiver processes"
        )

    async def send(self, result: ScenarioResult) -> list[tuple[int, int]]:
        """Post every message at its due time (open loop); (k, conversation) of each 201."""
        c = self.config
        answers: list[float] = []
        errors: dict[str, int] = {}
        posted: list[tuple[int, int]] = []
        lag_max = 0.0

        async def post(k: int, due: float) -> None:
            number = k % c.conversations
            author = self.users[number * c.members + (k // c.conversations) % c.members]
            node = self.nodes[k % len(self.nodes)]
            body = {"text": f"bench {k} {due:.6f}"}
            try:
                async with self.http.post(
                    f"{node.url}/api/v1/conversations/{self.conversations[number]}/messages",
                    json=body,
                    headers=author.headers,
                ) as rsp:
                    await rsp.read()
                    status = rsp.status
            except (aiohttp.ClientError, TimeoutError) as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                return
            answers.append(time.monotonic() - due)
            if status == 201:
                posted.append((k, number))
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1

        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic() + 0.2
        for k in range(c.messages):
            due = start + k / c.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag_max = max(lag_max, -delay)
            tasks.append(asyncio.create_task(post(k, due)))
        await asyncio.gather(*tasks)
        result.send_seconds = time.monotonic() - start
        answers.sort()
        result.sent = c.messages
        result.posted = len(posted)
        result.post_errors = dict(sorted(errors.items()))
        result.post_p50_ms = _percentile(answers, 0.5) * 1000
        result.post_p99_ms = _percentile(answers, 0.99) * 1000
        result.send_lag_max_ms = lag_max * 1000
        return posted

    async def drain(self, result: ScenarioResult, posted: list[tuple[int, int]]) -> None:
        c = self.config
        started = time.perf_counter()
        command = {
            "op": "drain",
            "posted": posted,
            "measured_from": c.measured_from,
            "timeout": c.drain_timeout,
        }
        for receiver in self.receivers:
            await receiver.send(command)
        latencies: list[float] = []
        worst: dict[int, float] = {}
        for receiver in self.receivers:
            event = await receiver.event(c.drain_timeout + 60.0)
            for k, shown in event["worst_ms_by_k"].items():
                worst[int(k)] = max(worst.get(int(k), float("-inf")), float(shown))
            result.expected += int(event["expected"])
            result.delivered += int(event["delivered"])
            result.duplicates += int(event["duplicates"])
            result.stray += int(event["stray"])
            result.sockets_missing_some += int(event["sockets_missing_some"])
            latencies += event["latencies_ms"]
        result.drain_seconds = time.perf_counter() - started
        per_second = round(c.rate)
        result.worst_by_second_ms = [
            max((worst[k] for k in range(start, start + per_second) if k in worst), default=0.0)
            for start in range(0, c.messages, per_second)
        ]
        latencies.sort()
        result.measured_deliveries = len(latencies)
        result.p50_ms = _percentile(latencies, 0.50)
        result.p90_ms = _percentile(latencies, 0.90)
        result.p99_ms = _percentile(latencies, 0.99)
        result.max_ms = latencies[-1] if latencies else float("nan")

    def receiver_pids(self) -> list[int]:
        return [pid for r in self.receivers for pid in r.pid()]

    async def close(self) -> int:
        closed_early = 0
        for receiver in self.receivers:
            closed_early += await receiver.stop()
        await self.http.close()
        return closed_early


async def _measure(
    scenario: _Scenario,
    result: ScenarioResult,
    database_pids: Callable[[], list[int]],
) -> None:
    """Send, drain and meter the CPU of every party meanwhile."""
    nodes = scenario.nodes
    meters = {
        "nodes": CpuMeter(lambda: [pid for n in nodes for pid in n.pids()]),
        "postgresql": CpuMeter(database_pids),
        "receivers": CpuMeter(scenario.receiver_pids),
        "sender": CpuMeter(lambda: [os.getpid()]),
    }
    load_before = _loadavg()
    busy_before = _busy_cpu_seconds()
    for meter in meters.values():
        meter.start()
    wall = time.perf_counter()
    posted = await scenario.send(result)
    await scenario.drain(result, posted)
    result.wall_s = time.perf_counter() - wall
    result.cpu_s = {party: meter.stop() for party, meter in meters.items()}
    ours = sum(result.cpu_s.values())
    result.others_cpu_s = max(_busy_cpu_seconds() - busy_before - ours, 0.0)
    result.loadavg = (load_before, _loadavg())
    result.shard_stats = await _shard_stats(scenario.http, [n.url for n in nodes])


# --------------------------------------------------------------------------- scenarios


async def _run_one_node(
    config: ChatBenchConfig, folder: Path, progress: Progress
) -> ScenarioResult:
    result = ScenarioResult("one_node", "one node (memory transport)", 1)
    node = _Node(folder, "single", {}, [])
    progress("  starting a node (run.py, embedded PostgreSQL, memory transport)")
    scenario: _Scenario | None = None
    try:
        await node.start()
        scenario = _Scenario(config, [node], folder / "single", progress)
        result.setup = await scenario.setup("one")
        result.sockets_connected = scenario.connected
        progress(
            f"  sending {config.messages:,} messages at {config.rate:g}/s "
            f"({config.warmup:g} s warm-up + {config.seconds:g} s)"
        )
        await _measure(scenario, result, node.database_pids)
    finally:
        if scenario is not None:
            result.closed_early = await scenario.close()
        await asyncio.to_thread(node.stop)
    return result


async def _shared_database(folder: Path) -> tuple[str, Path]:
    """An embedded PostgreSQL both nodes use, and a database of the bench's on it."""
    from splitgo.db import embedded_pgdata, start_embedded

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    admin = await asyncio.to_thread(start_embedded, folder)
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute("CREATE DATABASE chatbench")
    finally:
        await connection.close()
    # the admin URL may name a socket folder in its query: only the path changes
    return urlsplit(admin)._replace(path="/chatbench").geturl(), embedded_pgdata(folder)


async def _redis_answers(url: str) -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def _run_redis(
    config: ChatBenchConfig, folder: Path, redis_url: str, progress: Progress
) -> ScenarioResult:
    from splitgo.db import release_embedded
    from tests.support.redis import delete_prefix

    result = ScenarioResult("two_nodes_redis", "two nodes on Redis", 2)
    prefix = f"chatbench{secrets.token_hex(3)}"
    progress("  starting an embedded PostgreSQL for both nodes")
    database_url, pgdata = await _shared_database(folder / "pg")
    env = {
        "SPLITGO_TRANSPORT": "redis",
        "SPLITGO_REDIS_URL": redis_url,
        "SPLITGO_REDIS_PREFIX": prefix,
        "SPLITGO_DATABASE_URL": database_url,
        "SPLITGO_JWT_KEYS": JWT_KEYS,
    }
    nodes = [_Node(folder, name, env, ["--node-id", name]) for name in ("a", "b")]
    scenario: _Scenario | None = None

    def database_pids() -> list[int]:
        return list(helper_processes(-1, pgdata))

    try:
        progress(f"  starting nodes a and b (run.py, --transport redis, prefix {prefix})")
        await asyncio.gather(*(node.start() for node in nodes))
        scenario = _Scenario(config, nodes, folder / "redis", progress)
        result.chat_shards = await _wait_for_leases(scenario.http, nodes[0].url, len(nodes))
        progress(f"  chat shards leased: {result.chat_shards}")
        result.setup = await scenario.setup("redis")
        result.sockets_connected = scenario.connected
        # the leases spread out while the setup runs: where they are while it is measured
        result.chat_shards = await _chat_shards(scenario.http, nodes[0].url)
        progress(
            f"  sending {config.messages:,} messages at {config.rate:g}/s to both nodes "
            f"({config.warmup:g} s warm-up + {config.seconds:g} s)"
        )
        await _measure(scenario, result, database_pids)
    finally:
        if scenario is not None:
            result.closed_early = await scenario.close()
        for node in nodes:
            await asyncio.to_thread(node.stop)
        await asyncio.to_thread(release_embedded, pgdata)
        with contextlib.suppress(Exception):
            await delete_prefix(redis_url, prefix)
    return result


async def run_chat_bench(config: ChatBenchConfig, progress: Progress = print) -> ChatReport:
    """Both scenarios, one after the other, each on fresh nodes."""
    started = time.perf_counter()
    raise_fd_limit(config.sockets + FD_MARGIN)
    results: list[ScenarioResult] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="splitgo-bench-chat-") as scratch:
        folder = Path(scratch)
        if "one" in config.scenarios:
            progress("\n  -- one node")
            results.append(await _run_one_node(config, folder / "one", progress))
            _say_result(results[-1], config, progress)
        if "redis" in config.scenarios:
            progress("\n  -- two nodes on Redis")
            url = config.redis_url
            if not await _redis_answers(url):
                from tests.support.redis import start_throwaway_redis

                progress(f"  no Redis answers at {url}: starting a throwaway redis-server")
                try:
                    url = (await asyncio.to_thread(start_throwaway_redis)).url
                except Exception as error:
                    skipped["two nodes on Redis"] = f"no Redis: {error}"
                    url = ""
            if url:
                results.append(await _run_redis(config, folder / "redis", url, progress))
                _say_result(results[-1], config, progress)
    return ChatReport(config, results, time.perf_counter() - started, skipped)


def _say_result(result: ScenarioResult, config: ChatBenchConfig, progress: Progress) -> None:
    verdict = "PASS" if result.passed(config.target_p99_ms) else "MISS"
    progress(
        f"  {result.label}: {result.delivered:,}/{result.expected:,} deliveries "
        f"(lost {result.lost:,}), p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        f"max {result.max_ms:.1f} ms: {verdict}"
    )


def describe(config: ChatBenchConfig) -> str:
    """The section's heading line."""
    return (
        f"== chat: {config.sockets:,} WebSockets in {config.conversations} conversations of "
        f"{config.members}, {config.rate:g} messages/s posted over HTTP for {config.warmup:g} s "
        f"warm-up + {config.seconds:g} s, send to every receiver; one node (memory "
        f"transport), then two nodes on Redis; receivers in {config.receiver_processes} "
        f"processes of their own; target p99 < {config.target_p99_ms:g} ms, nothing lost"
    )


def write_results(report: ChatReport, path: Path = RESULTS_PATH) -> Path:
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


def _parse(argv: list[str] | None) -> tuple[ChatBenchConfig, Path]:
    defaults = ChatBenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.chat_bench", description=__doc__.split("\n")[0]
    )
    sizes: list[tuple[str, type, str]] = [
        ("sockets", int, "WebSockets, one per user"),
        ("conversations", int, "conversations (groups) the sockets spread over"),
        ("rate", float, "messages per second over every conversation"),
        ("seconds", float, "measured sending"),
        ("warmup", float, "sending before the measure"),
        ("drain_timeout", float, "seconds to wait for the last deliveries"),
        ("receiver_processes", int, "processes holding the sockets"),
    ]
    for name, kind, text in sizes:
        default = getattr(defaults, name)
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=kind, default=default, help=f"{text} ({default})"
        )
    parser.add_argument("--redis-url", default=defaults.redis_url)
    parser.add_argument(
        "--scenario", action="append", choices=("one", "redis"), help="only this one (repeatable)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="the JSON file")
    args = parser.parse_args(argv)
    config = ChatBenchConfig(
        **{name: getattr(args, name) for name, _, _ in sizes},
        redis_url=args.redis_url,
        scenarios=tuple(args.scenario or ("one", "redis")),
    )
    return config, args.results


def main(argv: list[str] | None = None) -> int:
    config, results = _parse(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    say(describe(config))
    try:
        report = asyncio.run(run_chat_bench(config, say))
    except (ChatBenchError, BenchProcessError) as error:
        say(f"error: {error}")
        return 2
    say(report.format())
    path = write_results(report, results)
    say(f"\nwritten: {path} (section took {report.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
