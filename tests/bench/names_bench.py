"""A big group read with names beside the ids, against the same read without them, the
way the HTTP edge does both; one embedded PostgreSQL, one ActorSystem, one run.

The requirement: group reads with names (1,000 members) stay within 1.5x of the same reads
without name lookups, in the same run.

Seeding (not measured): `splits_bench._seed_big_group` makes the group of `members`
members (default 1,000; CreateGroup through the Splits actor, the other members by COPY
into splits_members; it also writes the one expense it needs at least, which GetGroup does
not read), then `members` rows go into `users` by COPY (id = the member's id, a unique
email, a display name), and the table is VACUUM ANALYZEd.

The actors, in one ActorSystem on the memory transport, as the node spawns them
(`splitgo.composition.ACTORS`: their shard counts and keys): the Splits actor
(`splits_bench._Node`, 8 shards by group) and the Auth actor (16 shards; `GetNames` has no
key, so its asks are spread round-robin over the shards), each reading its own tables.

Three read systems on the same group, each from `concurrency` clients (default 8; asyncio
tasks in this process, each one read at a time), `reads` reads per round (default 400):

* plain: `ask(GetGroup(...))`, `to_json(view)`, `encode_json(data)` — what the
  `get_group` route and `JsonReply` do.
* warm book: the same, then `await name_people(data, book)` and `encode_json(data)` again
  — what the `named` middleware does — with the node's one `NameBook`, shared by every
  client and filled by the warm-up: every name is kept, no read asks auth.
* cold book: the same with a fresh `NameBook` per read, so every read asks auth
  `GetNames` for all 1,000 ids (one batch, NAMES_MAX) and auth reads them from `users` —
  the worst case (a node's book after a broadcast reconnect, or ids all past its ttl).

The books ask through `system.ref("auth").ask`, as `splitgo.node` wires them; the wrapper
counts the asks (checked: none from the warm book while timed, one per cold read).

Method as in splits_bench: one warm-up round each (a quarter of `reads`; it fills the
warm book), the collector tuned as a started node tunes it (`splitgo.heap.settle`: what
exists is frozen, the youngest generation collected less often), then `rounds` interleaved
rounds
(rotating order); rates and percentiles are medians over rounds, the ratios (named against
plain: p50, p99 and the drop in reads/s) the medians of per-round ratios. The target
(at most 1.5x) is judged on the warm book, a node's steady state; the cold book is
shown against the same 1.5x as the worst case. Before timing, a cold read is checked to
name every member (and the creator) with the seeded name.

Not measured: GET /api/v1/groups/{id} over HTTP against a node (no HTTP parsing, auth
token check or socket write), and transports that encode messages (Redis): here the
GroupView and the Names replies are handed over in memory, never encoded.
"""

from __future__ import annotations

import asyncio
import atexit
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from actors.auth.actor import Auth
from actors.auth.messages import GetNames
from actors.auth.passwords import Passwords
from actors.auth.tokens import SigningKeys
from actors.splits.messages import GetGroup, GroupView
from splitgo import heap
from splitgo.composition import ACTORS
from splitgo.db import open_database
from splitgo.web.names import NameBook, name_people
from splitgo.web.problems import encode_json, to_json
from tests.bench.splits_bench import (
    RoundResult,
    SplitsBenchConfig,
    SystemResult,
    Target,
    _BigGroup,
    _drive,
    _Node,
    _ok,
    _ratios,
    _seed_big_group,
    read_rows,
)

Progress = Callable[[str], None]

RATIO_TARGET = 1.5  # named reads' p99 (and reads/s) within 1.5x of plain ones
_FIRST = ("Anna", "Ben", "Clara", "Dmitri", "Elif", "Farid", "Greta", "Hiroshi", "Ines", "Jonas")
_LAST = ("Schmidt", "Novak", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Rossi", "Kowalski")


@dataclass
class NamesBenchConfig:
    """The group's size, and how many reads per round from how many clients."""

    members: int = 1_000
    reads: int = 400
    rounds: int = 3
    concurrency: int = 8
    pool_size: int = 20
    seed: int = 13

    def __post_init__(self) -> None:
        if min(self.reads, self.rounds, self.concurrency, self.pool_size) < 1:
            raise ValueError("reads, rounds, concurrency and pool_size must be at least 1")
        if not 8 <= self.members <= 1_000:
            raise ValueError("the group has 8 to 1,000 members (MAX_MEMBERS)")


@dataclass
class NamesReport:
    """Everything one run measured, the ratios, the verdicts and the checks."""

    config: NamesBenchConfig
    seeding: dict[str, Any]
    reads: dict[str, SystemResult]
    ratios: dict[str, dict[str, float]]
    checks: dict[str, Any]
    seconds: float
    asks: dict[str, int] = field(default_factory=dict)

    @property
    def targets(self) -> list[Target]:
        """Warm book first (judged), then the cold book (the worst case, shown)."""
        return [
            Target(f"{book} book / plain, {what}", self.ratios[book][key], RATIO_TARGET, "x")
            for book in ("warm", "cold")
            for what, key in (("p99", "p99"), ("reads/s drop", "rate"))
        ]

    @property
    def judged(self) -> list[Target]:
        return self.targets[:2]

    @property
    def checks_passed(self) -> bool:
        return all(bool(value) for key, value in self.checks.items() if key.endswith("_ok"))

    @property
    def all_passed(self) -> bool:
        return all(t.value <= t.target for t in self.judged) and self.checks_passed

    def as_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "config": {
                "members": c.members,
                "reads": c.reads,
                "rounds": c.rounds,
                "warm_up_rounds": 1,
                "concurrency": c.concurrency,
                "pool_size": c.pool_size,
                "splits_shards": ACTORS["splits"].shards,
                "auth_shards": ACTORS["auth"].shards,
                "statistic": "median",
                "interleaved": True,
                "transport": "memory (replies handed over in process, not encoded)",
                "database": "embedded PostgreSQL (one server, one database, every system)",
            },
            "seeding": self.seeding,
            "reads": {key: result.as_json("reads_per_s") for key, result in self.reads.items()},
            "ratios_vs_plain": {
                book: {
                    "p50": round(r["p50"], 3),
                    "p99": round(r["p99"], 3),
                    "reads_per_s_drop": round(r["rate"], 3),
                }
                for book, r in self.ratios.items()
            },
            "targets": [
                {**t.as_json(), "passed": t.value <= t.target, "judged": t in self.judged}
                for t in self.targets
            ],
            "asks_of_auth_while_timed": self.asks,
            "checks": self.checks,
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 2),
        }

    def format(self) -> str:
        c = self.config
        lines = read_rows(f"GetGroup ({c.members:,} members)", self.reads.values())
        lines += [
            f"(medians of {c.rounds} interleaved rounds of {c.reads:,} reads each, from "
            f"{c.concurrency} concurrent clients; latency per client call, in process)",
            "",
            f"{'against plain (x slower)':<34} {'p50':>9} {'p99':>9} {'reads/s drop':>13}",
            "-" * 91,
        ]
        for book, r in self.ratios.items():
            lines.append(
                f"{book + ' book':<34} {r['p50']:>8.2f}x {r['p99']:>8.2f}x {r['rate']:>12.2f}x"
            )
        lines += ["", f"{'target':<34} {'measured':>9} {'target':>9}  result", "-" * 91]
        for t in self.targets:
            missed = t.value / t.target - 1
            verdict = "PASS" if missed <= 0 else f"MISS ({missed:+.0%})"
            if t not in self.judged:
                verdict += " (worst case, not judged)"
            lines.append(
                f"{t.name:<34} {t.value:>8.2f}x {'<= ' + format(t.target, 'g') + 'x':>9}  {verdict}"
            )
        s, k = self.seeding, self.checks
        lines += [
            "",
            f"seeding: group of {s['members']:,} members in {s['group_seconds']:.1f} s, "
            f"{s['users']:,} users by COPY in {s['users_seconds']:.2f} s; reply "
            f"{k['plain_bytes']:,} bytes plain, {k['named_bytes']:,} named",
            f"checks: plain read has every member {_ok(k['plain_ok'])}; cold read names every "
            f"member and the creator {_ok(k['names_ok'])}; warm book asked auth "
            f"{self.asks['warm']} times while timed {_ok(k['warm_no_asks_ok'])}; cold book "
            f"{self.asks['cold']:,} times for {self.asks['cold_reads']:,} reads "
            f"{_ok(k['cold_one_ask_ok'])}",
        ]
        return "\n".join(lines)


# ── seeding the users ──────────────────────────────────────────────────────────────────


def _names(members: list[str], seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {user: f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" for user in members}


async def _seed_users(pool: asyncpg.Pool, names: dict[str, str]) -> None:
    """One `users` row per member (the NOT NULL columns without defaults: id, email, name)."""
    async with pool.acquire() as connection:
        await connection.copy_records_to_table(
            "users",
            records=[(user, f"{user}@bench.example", name) for user, name in names.items()],
            columns=("id", "email", "name"),
        )
        await connection.execute("VACUUM ANALYZE users")


# ── the read systems ───────────────────────────────────────────────────────────────────


class _Reads:
    """The plain read, and the named ones with the node's book or a fresh one each time."""

    def __init__(self, node: _Node, group: _BigGroup) -> None:
        self.splits = node.ref
        self.group = group
        auth = node.system.ref("auth")
        self.asked = 0

        async def ask(message: GetNames) -> object:  # as splitgo.node wires the book
            self.asked += 1
            return await auth.ask(message)

        self.ask = ask
        self.book = NameBook(ask)  # the node's one book

    async def _group(self, index: int) -> Any:
        members = self.group.members
        view = await self.splits.ask(
            GetGroup(group_id=self.group.group_id, user_id=members[index % len(members)])
        )
        if type(view) is not GroupView or len(view.members) != len(members):
            raise RuntimeError(f"GetGroup answered {view!r:.200}")
        return to_json(view)

    async def read(self, index: int) -> bytes:
        """The route: ask, to_json, encode (JsonReply)."""
        return encode_json(await self._group(index))

    async def _named(self, index: int, book: NameBook) -> bytes:
        data = await self._group(index)
        body = encode_json(data)
        if await name_people(data, book):  # the `named` middleware
            body = encode_json(data)
        else:
            raise RuntimeError("name_people named nobody")
        return body

    async def plain(self, index: int) -> None:
        await self.read(index)

    async def warm(self, index: int) -> None:
        await self._named(index, self.book)

    async def cold(self, index: int) -> None:
        await self._named(index, NameBook(self.ask))


async def _check(reads: _Reads, names: dict[str, str]) -> dict[str, Any]:
    """A plain read lists every member; a cold named read names each as seeded."""
    plain = await reads._group(0)
    data = await reads._group(0)
    asked = reads.asked
    await name_people(data, NameBook(reads.ask))
    members = data["members"]
    return {
        "plain_ok": sorted(m["user_id"] for m in plain["members"]) == sorted(names),
        "names_ok": all(m.get("name") == names[m["user_id"]] for m in members)
        and len(members) == len(names)
        and data.get("created_by_name") == names[data["created_by"]],
        "check_asks": reads.asked - asked,
        "plain_bytes": len(encode_json(plain)),
        "named_bytes": len(encode_json(data)),
    }


# ── the run ────────────────────────────────────────────────────────────────────────────


def _line(prefix: str, label: str, clients: int, result: RoundResult) -> str:
    return (
        f"  {prefix:<9} {label:<33} {clients:>2} cl. {result.rate:>9,.1f} reads/s   "
        f"p50 {result.p50_ms:8.2f} ms   p99 {result.p99_ms:8.2f} ms   (n={result.n:,})"
    )


async def _run(config: NamesBenchConfig, progress: Progress, folder: Path) -> NamesReport:
    started = time.perf_counter()
    progress(f"  starting the embedded PostgreSQL in {folder}")
    database = await open_database(None, folder, pool_size=config.pool_size)
    pool = database.pool
    splits_spec, auth_spec = ACTORS["splits"], ACTORS["auth"]
    node = _Node(pool, splits_spec.shards)
    try:
        await node.start()
        keys = SigningKeys(keys={"bench": b"b" * 32}, current="bench")
        passwords = Passwords()
        node.system.spawn(
            Auth,
            "auth",
            factory=lambda: Auth(pool, keys, notifier=None, passwords=passwords, prune_interval=0),
            shards=auth_spec.shards,
            key=auth_spec.key,
            mailbox_size=auth_spec.mailbox_size,
        )
        seeded = time.perf_counter()
        group, _ = await _seed_big_group(
            node,
            pool,
            SplitsBenchConfig(members=config.members, expenses=1, seed=config.seed),
            progress,
        )
        group_seconds = time.perf_counter() - seeded
        names = _names(group.members, config.seed)
        seeded = time.perf_counter()
        await _seed_users(pool, names)
        users_seconds = time.perf_counter() - seeded
        progress(f"  seeding: {len(names):,} users by COPY into users ({users_seconds:.2f} s)")
        seeding = {
            "members": config.members,
            "users": len(names),
            "group_seconds": round(group_seconds, 2),
            "users_seconds": round(users_seconds, 2),
            "method": "CreateGroup through the Splits actor; members (and one expense) by "
            "COPY (splits_bench._seed_big_group); users (id, email, name) by COPY",
        }

        reads = _Reads(node, group)
        checks = await _check(reads, names)
        progress(
            f"  checks: plain read lists every member {_ok(checks['plain_ok'])}, a cold "
            f"read names every member {_ok(checks['names_ok'])} "
            f"({checks['check_asks']} GetNames ask)"
        )
        n, clients = config.reads, config.concurrency
        systems: list[tuple[str, str, Callable[[int], Awaitable[None]]]] = [
            ("plain", "GetGroup, no names", reads.plain),
            ("warm", "GetGroup + names, warm book", reads.warm),
            ("cold", "GetGroup + names, cold book", reads.cold),
        ]
        results = {key: SystemResult(key, label, clients) for key, label, _ in systems}
        warm_up = max(n // 4, clients)
        for _, label, one in systems:
            progress(_line("warm-up", label, clients, await _drive(warm_up, clients, one)))
        if len(reads.book) < config.members:
            raise RuntimeError(f"the warm book keeps {len(reads.book)} names")
        heap.settle()  # what a node does once started (splitgo/heap.py)
        asks = {"warm": 0, "cold": 0, "cold_reads": 0}
        for round_index in range(config.rounds):
            shift = round_index % len(systems)
            for key, label, one in systems[shift:] + systems[:shift]:
                before = reads.asked
                result = await _drive(n, clients, one)
                if key in asks:
                    asks[key] += reads.asked - before
                if key == "cold":
                    asks["cold_reads"] += n
                results[key].rounds.append(result)
                progress(_line(f"round {round_index + 1}/{config.rounds}", label, clients, result))
        checks["warm_no_asks_ok"] = asks["warm"] == 0
        checks["cold_one_ask_ok"] = asks["cold"] == asks["cold_reads"]
        ratios = {book: _ratios(results["plain"], results[book]) for book in ("warm", "cold")}
    finally:
        await node.stop()
        await database.close()
    return NamesReport(
        config, seeding, results, ratios, checks, time.perf_counter() - started, asks
    )


def run_names_bench(config: NamesBenchConfig, progress: Progress = print) -> NamesReport:
    """Start an embedded PostgreSQL in a temporary folder, seed it and measure on it.

    The server stops when this process exits; the folder is removed after that.
    """
    folder = Path(tempfile.mkdtemp(prefix="splitgo-bench-names-"))
    # registered before the server starts, so it runs after the server's own exit hook
    atexit.register(shutil.rmtree, folder, True)
    return asyncio.run(_run(config, progress, folder))
