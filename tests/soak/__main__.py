"""The soak: three nodes under a mixed load, one SIGKILLed and restarted every two minutes.

    make soak                                 # 10 minutes
    SOAK_SECONDS=180 make soak                # shorter: a kill every 60 s
    make soak ARGS="--strict"                 # a missed latency bound fails it too

Three `python run.py` processes (Redis Streams transport) share a fresh PostgreSQL database
(the local server at 127.0.0.1:5432 when it answers, else the tests' embedded one) and a
fresh key prefix on Redis (the local one at 6379 when it answers, else a throwaway one).
After the set-up (eight funded members in two groups, each with its conversation) the load
runs for SOAK_SECONDS (tests/soak/mix.py), and every `--kill-every` s a node, in turn, is
SIGKILLed and started again at once. Then the checks (tests/soak/verify.py): every success
the client saw exists exactly once under the id it was answered, no retried key made a
second effect, a sample of successes sent again answers the same id, the ledger sums to zero
per currency, every account equals its entries, each member's wallet is what the answered
requests say, and group balances sum to zero and recount. Latency: the p99 of the requests
begun within `--window` s after a kill against the p99 of the rest.

Writes tests/soak/results/soak.json. Exit status 1 when anything was lost or doubled or an
invariant broke; a missed latency bound only with --strict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.soak import checks, mix, verify
from tests.soak.cluster import LOCAL_POSTGRES, Cluster, answers, cluster_on
from tests.soak.load import Client

NODES = ("n1", "n2", "n3")
KILL_EVERY = 120.0  # s
BOUND_WORDS = {True: "held", False: "NOT held", None: "not measured (no kill)"}
RESULTS = Path(__file__).parent / "results" / "soak.json"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("SOAK_SECONDS", "600")),
        help="how long the load runs (SOAK_SECONDS; default 600)",
    )
    parser.add_argument(
        "--kill-every",
        type=float,
        default=None,
        help="s between kills (default 120, or a third of a shorter run: at least two kills)",
    )
    parser.add_argument(
        "--window", type=float, default=20.0, help="s after a kill that count as takeover"
    )
    parser.add_argument(
        "--factor", type=float, default=3.0, help="the takeover p99 bound, times steady"
    )
    parser.add_argument(
        "--lease-ttl", type=float, default=2.0, help="SPLITGO_LEASE_TTL of the nodes"
    )
    parser.add_argument(
        "--ask-timeout", type=float, default=2.0, help="SPLITGO_ASK_TIMEOUT of the nodes"
    )
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument(
        "--strict", action="store_true", help="a missed latency bound fails the run"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.kill_every is None:
        args.kill_every = min(KILL_EVERY, args.seconds / 3)
    return args


def say(text: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def kill_rotation(cluster: Cluster, client: Client, args: argparse.Namespace) -> None:
    """Kill and restart a node, in turn, at each kill time; progress every 30 s."""
    schedule = checks.kill_times(args.seconds, args.kill_every)
    turn = 0
    next_report = 30.0
    restarting: asyncio.Task[None] | None = None

    async def kill(name: str) -> None:
        try:
            done = await cluster.kill_and_restart(name, client.now())
        except Exception as error:  # the run goes on with two nodes; the result says so
            say(f"{name} did not start again: {error!r}"[:2000])
            return
        say(f"{name} ready again {done.ready_after:.1f}s after its kill")

    while client.now() < args.seconds:
        # one node down at a time: a restart slower than the interval delays the next kill
        idle = restarting is None or restarting.done()
        if schedule and client.now() >= schedule[0] and idle:
            at = schedule.pop(0)
            name = NODES[turn % len(NODES)]
            turn += 1
            say(f"SIGKILL {name} at {at:.0f}s")
            restarting = asyncio.create_task(kill(name))
        if client.now() >= next_report:
            done = Counter(r.kind for r in client.sent)
            say(
                f"{client.now():.0f}s: {len(client.sent)} requests, "
                f"live {len(cluster.live())}; {dict(done)}"
            )
            next_report += 30.0
        await asyncio.sleep(0.2)
    if restarting is not None:
        await restarting  # the load ends with every node up


def expected_wallets(client: Client, world: mix.World) -> dict[str, int]:
    """Each member's EUR wallet as the answered requests say: paid top-ups in, transfers."""
    wallets = dict.fromkeys((m.id for m in world.members), 0)
    paid = verify.paid_checkouts(client)
    for request in client.sent:
        person = request.person
        if request.kind == "top_up" and request.succeeded and person and person.id in wallets:
            checkout = str(request.reply["checkout_url"]).split("/sandbox/checkout/")[1]
            if checkout in paid:
                wallets[person.id] += int((request.body or {})["amount"])
        elif request.kind == "transfer" and request.succeeded and person:
            amount = int((request.body or {})["amount"])
            wallets[person.id] -= amount
            wallets[str((request.body or {})["to_user_id"])] += amount
    return wallets


async def check(
    cluster: Cluster, client: Client, world: mix.World, args: argparse.Namespace
) -> dict[str, Any]:
    """Everything the run is judged by, as one JSON-able dict."""
    connection = await asyncpg.connect(cluster.database_url)
    try:
        for _ in range(120):  # paid checkouts credit through the webhook, a little later
            if await verify.pending_paid_top_ups(connection, client) == 0:
                break
            await asyncio.sleep(0.5)
        replays = await verify.replay(client, args.seed)
        reconciled = verify.reconcile_all(client, await verify.stored_rows(connection))
        money = await verify.money(connection)
        reads = checks.reads_off(
            await verify.served(client, cluster.live(), world),
            await verify.stored_reads(connection, world),
        )
        rows = await connection.fetch(
            "SELECT owner, credits - debits AS balance FROM payment_accounts "
            "WHERE owner_kind = 'user' AND currency = 'EUR'"
        )
    finally:
        await connection.close()
    held = {str(row["owner"]): int(row["balance"]) for row in rows}
    unsettled_money = any(
        not r.final for r in client.sent if r.kind in ("transfer", "top_up", "pay")
    )
    expected = expected_wallets(client, world)
    wallets_off = (
        {}
        if unsettled_money  # an unanswered request's effect is unknown: no exact figure
        else {p: [want, held.get(p, 0)] for p, want in expected.items() if held.get(p, 0) != want}
    )
    return {
        "reconciled": [r.summary() for r in reconciled],
        "clean": all(r.clean for r in reconciled),
        "replay_differs": replays[:-1],
        "replayed": replays[-1]["replayed"],
        "money": money,
        "wallets_off_answers": wallets_off,
        "reads_off_database": reads,
        "wallets_checked_exactly": not unsettled_money,
    }


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def latency(
    client: Client, first: int, cluster: Cluster, args: argparse.Namespace
) -> dict[str, Any]:
    samples = [(r.started, r.seconds) for r in client.sent[first:] if r.final]
    kills = [k.at for k in cluster.kills]
    verdict = checks.latency_verdict(samples, kills, window=args.window, factor=args.factor)
    return {
        "steady_p99_ms": ms(verdict.steady_p99),
        "takeover_p99_ms": ms(verdict.takeover_p99),
        "steady_requests": verdict.steady_count,
        "takeover_requests": verdict.takeover_count,
        "ratio": None if verdict.ratio is None else round(verdict.ratio, 2),
        "bound": args.factor,
        "held": verdict.held,
        "window_s": args.window,
    }


def broken(result: dict[str, Any]) -> list[str]:
    """What was lost, doubled or out of balance (empty: nothing)."""
    checked = result["checks"]
    money = checked["money"]
    found = [
        f"{r['kind']}: {r}"
        for r in checked["reconciled"]
        if any(r[n] for n in ("lost", "doubled", "mismatched", "phantom"))
    ]
    found += [f"replay answered differently: {d}" for d in checked["replay_differs"]]
    for name in (
        "ledger_nonzero",
        "accounts_off_their_entries",
        "groups_not_summing_to_zero",
        "group_balances_off_recount",
    ):
        if money[name]:
            found.append(f"{name}: {money[name]}")
    found += [
        f"{k['node']} did not start again after its kill"
        for k in result["kills"]
        if k["ready_after_s"] is None
    ]
    if checked["reads_off_database"]:
        found.append(f"a node served other than the database: {checked['reads_off_database']}")
    if checked["wallets_off_answers"]:
        found.append(f"wallets off the answers: {checked['wallets_off_answers']}")
    return found


async def soak(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    if not os.environ.get("SPLITGO_TEST_DATABASE_URL") and answers("127.0.0.1", 5432):
        os.environ["SPLITGO_TEST_DATABASE_URL"] = LOCAL_POSTGRES
    from tests.support.postgres import fresh_database  # reads the variable on first use
    from tests.support.redis import redis_url

    async with (
        fresh_database() as database_url,
        cluster_on(
            database_url,
            redis_url(),
            folder,
            lease_ttl=args.lease_ttl,
            ask_timeout=args.ask_timeout,
        ) as cluster,
    ):
        say(
            f"database {database_url.rsplit('/', 1)[-1]}, "
            f"redis {redis_url()} prefix {cluster.prefix}"
        )
        await cluster.start(NODES[0])  # the first applies the schema
        await asyncio.gather(*(cluster.start(name) for name in NODES[1:]))
        await asyncio.sleep(2 * args.lease_ttl)  # shards spread over the three
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            client = Client(http, cluster.live)
            world = await mix.build_world(client)
            first = len(client.sent)
            client.began = time.monotonic()
            say(f"load for {args.seconds:.0f}s, a node killed every {args.kill_every:.0f}s")
            tasks = mix.workers(client, world, args.seed)
            try:
                await kill_rotation(cluster, client, args)
            finally:
                client.stop.set()
                await asyncio.gather(*tasks)
            say(f"load stopped: {len(client.sent)} requests; checking")
            result = {
                "seconds": args.seconds,
                "kill_every_s": args.kill_every,
                "lease_ttl_s": args.lease_ttl,
                "ask_timeout_s": args.ask_timeout,
                "nodes": len(NODES),
                "cpus": os.cpu_count(),
                "kills": [
                    {
                        "node": k.node,
                        "at_s": round(k.at, 1),
                        "ready_after_s": None if k.ready_after is None else round(k.ready_after, 1),
                    }
                    for k in cluster.kills
                ],
                "load": verify.tally(client) | {"setup_requests": first},
                "latency": latency(client, first, cluster, args),
                "checks": await check(cluster, client, world, args),
            }
    return result


def summary(result: dict[str, Any], problems: list[str]) -> str:
    lat = result["latency"]
    load = result["load"]
    lines = [
        f"soak: {result['seconds']:.0f}s, {result['nodes']} nodes, {len(result['kills'])} kills "
        f"({', '.join(k['node'] + '@' + str(k['at_s']) + 's' for k in result['kills'])})",
        f"  requests {load['requests']} (retried {load['retried']}, "
        f"unsettled {load['unsettled']}), "
        f"by kind {load['by_kind']}",
        f"  p99 steady {lat['steady_p99_ms']} ms ({lat['steady_requests']} requests), "
        f"takeover {lat['takeover_p99_ms']} ms ({lat['takeover_requests']} requests, "
        f"{lat['window_s']:.0f}s after each kill): ratio {lat['ratio']} — "
        f"{lat['bound']:.0f}x bound {BOUND_WORDS[lat['held']]}",
        *(
            f"  {r['kind']}: {r['confirmed']} confirmed, {r['rows']} rows, lost {r['lost']}, "
            f"doubled {r['doubled']}, mismatched {r['mismatched']}, phantom {r['phantom']}"
            for r in result["checks"]["reconciled"]
        ),
        f"  replayed {result['checks']['replayed']} successes with their keys; ledger sums "
        f"{result['checks']['money']['ledger_sums']}; wallets checked exactly: "
        f"{result['checks']['wallets_checked_exactly']}; balances and wallets served by each "
        f"node off the database: {len(result['checks']['reads_off_database'])}",
        "  NOTHING LOST OR DOUBLED"
        if not problems
        else "  PROBLEMS:\n    " + "\n    ".join(problems),
    ]
    return "\n".join(lines)


def main() -> int:
    args = arguments()
    folder = Path(tempfile.mkdtemp(prefix="splitgo-soak-"))
    result = asyncio.run(soak(args, folder))
    problems = broken(result)
    result["problems"] = problems
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(summary(result, problems), flush=True)
    print(f"written {args.out}", flush=True)
    if problems:
        print(f"node logs kept in {folder}", flush=True)
        return 1
    shutil.rmtree(folder, ignore_errors=True)
    if args.strict and result["latency"]["held"] is False:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
