"""`python -m tests.bench --section hot`: state kept by its owner, over HTTP (issue 20).

In one run, each figure beside its target or the alternative measured with it:

* transfers: `POST /api/v1/transfers` over HTTP against a node (its notifications on: each
  transfer tells both people in-app), from `transfers_concurrency` keep-alive connections
  (as many as the in-process bench's clients) for `seconds`, 16 payers each paying a payee
  of their own (tests/bench/payments_http.py), against the batched rate of the Payments
  actor in process in the same run (tests/bench/payments_bench.py, `payments_n` transfers,
  `payments_rounds` rounds), measured right before and right after the HTTP load and
  averaged; target: HTTP at least 30 % of the in-process rate. Beside it, whether the
  node's notifications kept up: the share of in-app notices stored when the load ended.
* balances: `GET /api/v1/groups/{id}/balances` of a group of `members` members (default
  1,000) over HTTP against a node, answered from the Splits shard's memory
  (actors/splits/hot.py) and the edge's reply cache (splitgo/web/reply_cache.py: every
  request asks the shard with the version held, the kept bytes go back); target: 2,000
  req/s; with the node's CPU per request. Then the same read with `If-None-Match` (304,
  no body), same node. The group is made over HTTP by its creator, the other members
  (with a `users` row each, so the edge's name book knows them after the first read) and
  a balance for each (summing to zero) go in by COPY into the node's embedded PostgreSQL
  before the first read (the first read loads the copy). Two reads in a row must give
  the same ETag, else the bench stops (the cache is not serving).
* the edge's work per balances reply in process, interleaved, best of rounds: as it was
  before the cache (the old `to_json` walk, encoded, named, encoded again), uncached now
  (`to_json`, named, encoded, ETag: what a cache miss costs), and a cache hit (the kept
  reply looked up and a response made).
* the same read in process: `GetBalances` asks to the Splits actor (8 shards, memory
  transport) from 8 clients, served from the shard's memory against the same actor with no
  copy kept (`HotBalances(None)`: every read from the tables), interleaved, best of
  three rounds of `actor_reads` each: what the hot copy saves before any HTTP work.
* memory: bytes a kept group's copy (its balances view and member set) holds, measured
  with tracemalloc in this process for a group of `members`; and bytes per account
  payments keeps known (`Transfers._known_accounts`, the one per-wallet thing it holds).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import msgspec
from aiohttp import web

from actors.auth.messages import GetNames, Names, Person
from actors.payments.ledger import wallet
from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore, Outbox
from actors.splits.actor import Splits
from actors.splits.hot import HotBalances
from actors.splits.messages import (
    BalanceLine,
    BalancesView,
    CreateGroup,
    GetBalances,
    splits_key,
)
from splitgo.db import (
    EMBEDDED_DATABASE,
    apply_schema,
    embedded_pgdata,
    release_embedded,
    start_embedded,
)
from splitgo.web.names import NameBook, name_people, name_people_since
from splitgo.web.problems import TAG_FIELD, encode_json, to_json
from splitgo.web.reply_cache import KeptReply, etag_of
from tests.bench.http_bench import (
    LOADGEN_SLACK_S,
    PROJECT_ROOT,
    BenchProcessError,
    CpuMeter,
    NodeProcess,
    _register_and_login,
)
from tests.bench.payments_bench import PaymentsBenchConfig, run_payments_bench
from tests.bench.payments_http import measure_http_transfers
from transport import Codec, MemoryTransport

Progress = Callable[[str], None]
TRANSFERS_TARGET = 0.30  # HTTP transfers / in-process batched transfers
BALANCES_TARGET = 2_000.0  # req/s for a 1,000-member group


@dataclass(frozen=True)
class HotBenchConfig:
    """How long and how hard each measurement runs."""

    seconds: float = 5.0
    concurrency: int = 32
    # as many as the in-process Payments bench's clients, so both are offered the same load
    transfers_concurrency: int = PaymentsBenchConfig.concurrency
    members: int = 1_000
    payments_n: int = 10_000
    payments_rounds: int = 1
    actor_reads: int = 2_000  # GetBalances asks per timed round in process


async def _seed_members(node: NodeProcess, group_id: str, creator: str, members: int) -> None:
    """The other members and every member's balance, by COPY into the node's database."""
    admin = await asyncio.to_thread(start_embedded, node.data_dir)
    url = urlsplit(admin)._replace(path=f"/{EMBEDDED_DATABASE}").geturl()
    connection = await asyncpg.connect(url)
    try:
        await _copy_members(connection, group_id, creator, members, users=True)
    finally:
        await connection.close()
        # let go at once: the node stays the server's one user and stops it when it stops
        await asyncio.to_thread(release_embedded, embedded_pgdata(node.data_dir))


async def _copy_members(
    connection: asyncpg.Connection, group_id: str, creator: str, members: int, *, users: bool
) -> None:
    """`members - 1` more members (`users`: each with a `users` row, so the edge's name
    book knows them after the first read) and a balance for everyone, summing to zero."""
    joined = datetime.now(UTC)
    others = [f"hot-member-{i:04d}" for i in range(1, members)]
    await connection.copy_records_to_table(
        "splits_members",
        records=[(group_id, user, joined) for user in others],
        columns=("group_id", "user_id", "joined_at"),
    )
    if users:
        await connection.copy_records_to_table(
            "users",
            records=[(user, f"{user}@bench.example", f"Member {user[-4:]}") for user in others],
            columns=("id", "email", "name"),
        )
    everyone = [creator, *others]
    nets = [(i % 7 - 3) * 100 for i in range(members)]
    nets[0] -= sum(nets)  # the nets of a currency sum to zero
    await connection.copy_records_to_table(
        "splits_balances",
        records=[(group_id, u, "EUR", n) for u, n in zip(everyone, nets, strict=True)],
        columns=("group_id", "user_id", "currency", "net"),
    )


async def _loadgen(
    url: str,
    tokens_file: Path,
    seconds: float,
    concurrency: int,
    *,
    headers: list[str],
    expect: int,
) -> dict[str, Any]:
    """tests/bench/loadgen.py as a process of its own, with these extra headers."""
    command = [
        sys.executable,
        "-m",
        "tests.bench.loadgen",
        "--url",
        url,
        "--seconds",
        f"{seconds:g}",
        "--concurrency",
        str(concurrency),
        "--tokens-file",
        str(tokens_file),
        "--expect",
        str(expect),
    ]
    for header in headers:
        command += ["--header", header]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds + LOADGEN_SLACK_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchProcessError(f"the load generator for {url} hung") from None
    try:
        result: dict[str, Any] = json.loads(out.decode(errors="replace").strip().splitlines()[-1])
    except (IndexError, ValueError):
        result = {"error": err.decode(errors="replace").strip()[-2000:] or "no output"}
    if process.returncode != 0 or "error" in result:
        raise BenchProcessError(f"the load generator for {url} failed: {result.get('error')}")
    return result


async def _timed_load(
    node: NodeProcess,
    url: str,
    tokens_file: Path,
    seconds: float,
    concurrency: int,
    *,
    headers: list[str],
    expect: int,
) -> dict[str, Any]:
    """One load run and the node's CPU per request over it."""
    meter = CpuMeter(node.server_pids)
    meter.start()
    result = await _loadgen(url, tokens_file, seconds, concurrency, headers=headers, expect=expect)
    node_cpu = meter.stop()
    result["node_cpu_s"] = round(node_cpu, 3)
    sent = max(1, int(result["requests"]))
    result["node_cpu_us_per_request"] = round(node_cpu / sent * 1e6, 1)
    return result


def _etag(headers: Any) -> str:
    return str(headers.get("ETag", ""))


async def measure_http_balances(seconds: float, concurrency: int, members: int) -> dict[str, Any]:
    """req/s, latency and node CPU of GET /groups/{id}/balances of a `members`-member
    group from the reply cache, then of the same read answered 304 (If-None-Match)."""
    with tempfile.TemporaryDirectory(prefix="splitgo-hotbench-") as folder:
        scratch = Path(folder)
        node = NodeProcess(scratch)
        await node.start()
        try:
            async with aiohttp.ClientSession() as session:
                token = await _register_and_login(session, node.url, 700)
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(f"{node.url}/api/v1/me", headers=headers) as rsp:
                    creator = (await rsp.json())["id"]
                async with session.post(
                    f"{node.url}/api/v1/groups",
                    json={"name": "Hot bench group", "currency": "EUR"},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                ) as rsp:
                    group_id = (await rsp.json())["id"]
                await _seed_members(node, group_id, creator, members)
                url = f"{node.url}/api/v1/groups/{group_id}/balances"
                async with session.get(url, headers=headers) as rsp:
                    body = await rsp.read()
                async with session.get(url, headers=headers) as rsp:
                    again, etag = await rsp.read(), _etag(rsp.headers)
                    first_etag = etag
                lines = len(json.loads(body)["balances"])
            if lines != members:
                raise RuntimeError(f"the balances list {lines} members, not {members}")
            if again != body or not etag or etag != first_etag:
                raise RuntimeError("two reads of an unchanged group differ: nothing is kept")
            tokens_file = scratch / "tokens"
            tokens_file.write_text(token + "\n")
            cached = await _timed_load(
                node, url, tokens_file, seconds, concurrency, headers=[], expect=200
            )
            not_modified = await _timed_load(
                node,
                url,
                tokens_file,
                seconds,
                concurrency,
                headers=[f"If-None-Match: {etag}"],
                expect=304,
            )
        finally:
            node.stop()
    return {"cached": cached, "not_modified": not_modified, "reply_bytes": len(body)}


def _old_to_json(value: Any) -> Any:
    """The walk `to_json` did before (every dict visited in Python), for comparison."""
    data = msgspec.to_builtins(value)
    stack = [data]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            item.pop(TAG_FIELD, None)
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            stack.extend(v for v in item if type(v) is dict or type(v) is list)
    return data


async def measure_edge_work(
    members: int, rounds: int = 15, per_round: int = 20
) -> dict[str, float]:
    """Microseconds of the edge's work per balances reply of a `members`-member group,
    interleaved, best round: before the cache, a cache miss now, a cache hit."""
    people = [str(uuid.uuid4()) for _ in range(members)]

    async def ask(message: GetNames) -> Names:
        return Names(people=[Person(user_id=u, name=f"Member {u[:4]}") for u in message.user_ids])

    book = NameBook(ask)
    await book.names(people)
    view = BalancesView(
        balances=[BalanceLine(user_id=u, currency="EUR", net=i) for i, u in enumerate(people)],
        version="v1",
    )
    key = ("group", False)

    async def before() -> None:
        data = _old_to_json(view)
        encode_json(data)  # JsonReply encoded it, then the named middleware again
        await name_people(data, book)
        encode_json(data)

    async def miss() -> None:
        data = to_json(view)
        since = await name_people_since(data, book)
        body = encode_json(data)
        if since is None:
            raise RuntimeError("the bench's names could not be had")
        book.replies.put(
            key,
            KeptReply(
                version="v1",
                names_epoch=book.epoch,
                expires=since + book.ttl,
                body=body,
                etag=etag_of(body),
            ),
        )

    async def hit() -> None:
        kept = book.replies.get(key, "v1", book.epoch)
        assert kept is not None
        web.Response(body=kept.body, content_type="application/json", headers={"ETag": kept.etag})

    steps = {"before_cache_us": before, "cache_miss_us": miss, "cache_hit_us": hit}
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(per_round):
                await step()
            best[name] = min(best[name], (time.perf_counter() - started) / per_round * 1e6)
    return {name: round(value, 1) for name, value in best.items()}


async def _asks_per_s(ref: ActorRef, message: GetBalances, n: int, concurrency: int) -> float:
    """GetBalances asks per second from `concurrency` clients, `n` in all."""
    left = n

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await ref.ask(message)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


def _splits_factory(pool: asyncpg.Pool, keep: bool) -> Callable[[], Splits]:
    """Splits shards keeping their groups' balances in memory, or (`keep` off) none."""
    if keep:
        return lambda: Splits(pool, recurring_interval=0)
    return lambda: Splits(pool, recurring_interval=0, hot=HotBalances(None))


async def measure_actor_balances(members: int, n: int, concurrency: int) -> dict[str, float]:
    """GetBalances of a `members`-member group through the Splits actor in process, from
    its memory and (the copy never kept) from the tables, interleaved, best of three."""
    with tempfile.TemporaryDirectory(prefix="splitgo-hotbench-actor-") as folder:
        admin = await asyncio.to_thread(start_embedded, Path(folder))
        pool = await asyncpg.create_pool(admin, min_size=2, max_size=10)
        assert pool is not None
        transport = MemoryTransport(node_id="bench-hot")
        system = ActorSystem(
            transport, codec=Codec(), dead_letters=MemoryDeadLetterStore(), outbox=Outbox(pool)
        )
        try:
            await apply_schema(pool)
            await system.start()
            refs = {
                name: system.spawn(
                    Splits, name, factory=_splits_factory(pool, keep), shards=8, key=splits_key
                )
                for name, keep in (("memory", True), ("tables", False))
            }
            group_id, creator = str(uuid.uuid4()), "hot-member-0000"
            await refs["memory"].ask(
                CreateGroup(group_id=group_id, user_id=creator, name="Hot", currency="EUR")
            )
            async with pool.acquire() as connection:
                await _copy_members(connection, group_id, creator, members, users=False)
            read = GetBalances(group_id=group_id, user_id=creator)
            best = {"memory": 0.0, "tables": 0.0}
            for name in ("memory", "tables", "memory", "tables", "memory", "tables"):
                best[name] = max(best[name], await _asks_per_s(refs[name], read, n, concurrency))
            return best
        finally:
            await system.stop(5.0)
            await transport.close()
            await pool.close()
            await asyncio.to_thread(release_embedded, embedded_pgdata(Path(folder)))


def group_copy_bytes(members: int) -> int:
    """Bytes a kept copy of a `members`-member group holds (view and member set)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        users = [f"{uuid.uuid4()}" for _ in range(members)]
        view = BalancesView(
            balances=[BalanceLine(user_id=u, currency="EUR", net=i) for i, u in enumerate(users)]
        )
        kept = (frozenset(users), view)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def account_bytes(n: int = 10_000) -> float:
    """Bytes per account payments keeps known (an AccountKey in a set)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        known = {wallet(str(uuid.uuid4()), "EUR") for _ in range(n)}
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del known
    return (after - before) / n


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run_hot_bench(config: HotBenchConfig, say: Progress) -> dict[str, Any]:
    """Every measurement of the section, in this order; the results as JSON."""
    payments = PaymentsBenchConfig(n=config.payments_n, rounds=config.payments_rounds)
    # in process right before and right after the HTTP load, and divided by their mean:
    # on a shared machine the load moves between minutes, and the ratio should not
    rates: list[float] = []

    def in_process(when: str) -> None:
        say(f"  in process ({when}): the batching Payments actor, {payments.n:,} transfers ...")
        report = run_payments_bench(payments, progress=lambda line: None)
        rates.append(report.systems["batched"].rate)

    in_process("before")
    say(f"  over HTTP: POST /api/v1/transfers, {config.transfers_concurrency} connections ...")
    transfers = asyncio.run(measure_http_transfers(config.seconds, config.transfers_concurrency))
    in_process("after")
    in_process_rate = sum(rates) / len(rates)
    say(f"  over HTTP: GET balances of a {config.members:,}-member group ...")
    balances = asyncio.run(
        measure_http_balances(config.seconds, config.concurrency, config.members)
    )
    say("  in process: GetBalances asks, from memory and from the tables ...")
    actor = asyncio.run(measure_actor_balances(config.members, config.actor_reads, 8))
    say("  in process: the edge's work per balances reply, before the cache, missed, hit ...")
    edge = asyncio.run(measure_edge_work(config.members))
    ratio = transfers["rps"] / in_process_rate
    cached = balances["cached"]
    return {
        "config": vars(config),
        "in_process_transfers_per_s": round(in_process_rate, 1),
        "in_process_before_after": [round(rate, 1) for rate in rates],
        "http_post_transfers": transfers,
        "transfers_ratio": round(ratio, 4),
        "transfers_target": TRANSFERS_TARGET,
        "transfers_passed": ratio >= TRANSFERS_TARGET,
        "http_group_balances": balances,
        "balances_target_rps": BALANCES_TARGET,
        "balances_passed": cached["rps"] >= BALANCES_TARGET,
        "actor_balances_per_s": {k: round(v, 1) for k, v in actor.items()},
        "edge_work_per_balances_reply": edge,
        "loadavg": _loadavg(),
        "group_copy_bytes": group_copy_bytes(config.members),
        "account_bytes": round(account_bytes(), 1),
    }


def format_hot(results: dict[str, Any]) -> str:
    """The figures side by side with their targets."""
    t, b = results["http_post_transfers"], results["http_group_balances"]["cached"]
    n = results["http_group_balances"]["not_modified"]
    size = results["http_group_balances"]["reply_bytes"]
    edge = results["edge_work_per_balances_reply"]
    members = results["config"]["members"]

    def verdict(passed: bool) -> str:
        return "met" if passed else "NOT met"

    return "\n".join(
        [
            f"{'POST /transfers over HTTP':<44} {t['rps']:>9,.0f} req/s  p50 "
            f"{t['latency_ms']['p50']:.1f} ms  p99 {t['latency_ms']['p99']:.1f} ms  "
            f"errors {t['errors'] or 'none'}",
            f"{'batched Payments actor in process':<44} "
            f"{results['in_process_transfers_per_s']:>9,.0f} transfers/s  (mean of "
            + " and ".join(f"{r:,.0f}" for r in results["in_process_before_after"])
            + ", right before and after the HTTP load)",
            f"{'  in-app notices stored when the load ended':<44} "
            f"{t['notifications']['notices_stored_at_end']:>9.0%}  (all stored "
            f"{t['notifications']['notices_caught_up_s']} s later; node + database CPU "
            f"{t['notifications']['cpu_ms_per_transfer']['node']:.2f} + "
            f"{t['notifications']['cpu_ms_per_transfer']['database']:.2f} ms a transfer)",
            f"{'HTTP / in process':<44} {results['transfers_ratio']:>9.1%}  target >= "
            f"{TRANSFERS_TARGET:.0%}  {verdict(results['transfers_passed'])}",
            f"{f'GET balances, {members:,}-member group':<44} {b['rps']:>9,.0f} req/s  p50 "
            f"{b['latency_ms']['p50']:.1f} ms  p99 {b['latency_ms']['p99']:.1f} ms  target >= "
            f"{BALANCES_TARGET:,.0f}  {verdict(results['balances_passed'])}  "
            f"({size:,} bytes a reply, node CPU {b['node_cpu_us_per_request']:,.0f} us each, "
            f"errors {b['errors'] or 'none'})",
            f"{'  the same with If-None-Match: 304':<44} {n['rps']:>9,.0f} req/s  p50 "
            f"{n['latency_ms']['p50']:.1f} ms  p99 {n['latency_ms']['p99']:.1f} ms  (node CPU "
            f"{n['node_cpu_us_per_request']:,.0f} us each, errors {n['errors'] or 'none'})",
            f"{'edge work a balances reply, in process':<44} before the cache "
            f"{edge['before_cache_us']:,.0f} us, a miss now {edge['cache_miss_us']:,.0f} us, "
            f"a hit {edge['cache_hit_us']:,.1f} us",
            f"{'GetBalances in process, from memory':<44} "
            f"{results['actor_balances_per_s']['memory']:>9,.0f} asks/s  (from the tables: "
            f"{results['actor_balances_per_s']['tables']:,.0f} asks/s)",
            f"{'memory per kept group copy':<44} {results['group_copy_bytes']:>9,} bytes "
            f"({results['group_copy_bytes'] / members:.0f} per member)",
            f"{'memory per account payments keeps known':<44} "
            f"{results['account_bytes']:>9,.0f} bytes",
            f"load average (1, 5, 15 min) at the end: {results['loadavg']}",
        ]
    )


def hot_section(
    results_dir: Path,
    base: dict[str, Any],
    say: Progress,
    write: Callable[[str, dict[str, Any], Path], Path],
    config: HotBenchConfig | None = None,
) -> bool:
    """The section as `python -m tests.bench` runs it; whether both targets were met."""
    config = config or HotBenchConfig()
    say(
        "\n== hot: state with its owner over HTTP (notifications on), against the batched "
        "Payments actor in process, in one run"
    )
    results = run_hot_bench(config, say)
    say(format_hot(results))
    path = write("hot.json", {**base, **results}, results_dir)
    say(f"\nwritten: {path}")
    return bool(results["transfers_passed"] and results["balances_passed"])
