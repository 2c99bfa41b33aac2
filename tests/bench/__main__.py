"""`python -m tests.bench`: actor runtime, node start-up, Redis messages, authenticated HTTP.

Run from the project root (`make bench` does). Sections:

* runtime: tell and ask rates of splitgo's runtime, a bare asyncio.Queue and Pykka, with
  the ratios against their targets; written to tests/bench/results/runtime.json.
* node: cold and warm start-up of `run.py` and its idle RSS; written to
  tests/bench/results/node.json. Skipped while run.py does not exist.
* redis: keyed messages per second from this process to an actor in another process
  through Redis, against bare redis-py (hiredis) pipelined and one-XADD-per-message
  loops on the same Redis, and splitgo's one-way latency at a moderate rate; written to
  tests/bench/results/redis.json. Skipped when no Redis answers at SPLITGO_BENCH_REDIS_URL
  (default redis://127.0.0.1:6379/0).
* auth: authenticated GET /api/v1/me per second from a separate load-generating
  process against a node (run.py, fresh data folder, log level warning), against the
  same generator on a bare aiohttp JSON handler (the limit); login throughput and the
  p99 of /healthz during a login storm; argon2id's parameters and time per hash; the
  memory per cached user (hot profiles) and how many the node's budget holds;
  written to tests/bench/results/auth.json. Skipped while run.py does not exist or
  the node's auth routes do not work yet.
* payments: completed transfers per second through the batching Payments actor against
  one transaction per transfer, from the same number of concurrent clients on the same
  embedded PostgreSQL (a temporary data folder), with p50/p99 client latency and the
  ledger's zero-sum check afterwards; written to tests/bench/results/payments.json.
* splits: GetBalances and GetSettlePlan p99 through the Splits actor on a group of 1,000
  members with 100,000 expenses (seeded in bulk, bypassing the actor), against
  recomputing both from every expense on each read (the way Spliit does it), from the
  same concurrent clients on the same embedded PostgreSQL; AddExpense asks per second
  through the actor into 50 groups spread over 8 shards; the kept balances checked
  against the expenses; written to tests/bench/results/splits.json.
* names: GetGroup of a 1,000-member group through the Splits actor as the edge serves it
  (to_json, encode), against the same read with names added by `name_people` (the `named`
  middleware) from the node's warm NameBook and from a fresh one per read (every read asks
  the Auth actor GetNames for 1,000 ids), same concurrent clients, same embedded
  PostgreSQL, one run; p50/p99 and reads/s, the ratios against the 1.5x target; written
  to tests/bench/results/names.json.
* pages: the web app's group page (GET /groups/{id} of a group of 1,000 members with
  100,000 expenses) and home (GET /home of a user in 20 groups) over HTTP from a node in
  this process, against the JSON API's reads of the same data, same clients, one run;
  p50/p99 and reads/s against the 50 ms and 30 ms p99 targets; written to
  tests/bench/results/pages.json.
* rides: nearest-available-driver queries (limit 1, radius 10 km) on the dispatch
  GeoIndex among 100,000 drivers around Berlin, 20 % busy, p50/p99 per query, side by
  side with a brute-force scan of every driver in the same run (speed-up), and location
  updates per second into the GeoIndex; pure code, no database; written to
  tests/bench/results/rides.json.
* notifications: in-app notifications pushed to 1,000 WebSocket clients of a node, against
  clients polling every second, in one run; written to tests/bench/results/notifications.json.
* isolation: 20 clients asking for keys on one shard, p99 in a quiet phase and in a phase
  with one poison message a second aimed at that shard (15 s each), side by side, with
  errors, dead letters and per-key order; reads on memory and Redis, and transfers through
  a batching test actor; written to tests/bench/results/isolation.json.
* chat: 1,000 WebSockets in 50 conversations of 20, 200 messages/s posted over HTTP,
  latency from each send's due time to every receiver (receivers in processes of their
  own), on one node (memory transport) and on two nodes sharing Redis and PostgreSQL, in
  one run; p50/p99/max, deliveries expected and made, against the 100 ms p99 target;
  written to tests/bench/results/chat.json.
* import: a generated Splitwise export of 10,000 rows imported through the Splits actor
  (dry run, then chunked asks with progress printed), target under 30 s; balances checked
  against the file's nets and a second run adding nothing; tests/bench/results/import.json.
* tokens: access-token verifications per second at the edge on one core, ES256 with the
  published public key against the former HS256 with a shared secret and the bare ECDSA
  check, in one run, plus signing rates; tests/bench/results/tokens.json.
* uvloop: the runtime's tell/ask rates (and the bare queue's) on asyncio's loop and on
  uvloop in one process, and authenticated GET /api/v1/me (and /healthz) per second against
  a node with SPLITGO_EVENT_LOOP=asyncio and one with =uvloop, side by side in one run with
  the ratios; tests/bench/results/uvloop.json. Skipped when uvloop is not installed.
* hot: state with its owner (issue 20), in one run: POST /api/v1/transfers over HTTP
  (notifications on) against the batched Payments actor in process (target >= 30 %), GET
  balances of a 1,000-member group over HTTP from the Splits shard's memory (target
  2,000 req/s), and the memory a kept group and a known account take;
  tests/bench/results/hot.json.
* wallets: hot wallets and sessions (issue 20), in one run: GetWallet and the first
  statement page through the Payments actor in process, from the owner's checked copy and
  from the tables (hot wallets off), interleaved; bytes per kept wallet and per kept auth
  session, measured and as budgeted; tests/bench/results/wallets.json.
* holds: PlaceHold, VoidHold, CaptureHold and ExpireHold per second through the Payments
  actor (2 shards, in process), runs of holds in one transaction against one transaction
  per hold, interleaved rounds in one run, p50/p99 ask latency;
  tests/bench/results/holds.json.

Exits 0 even when a target is missed, unless --strict is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from tests.bench.chat_bench import ChatBenchConfig, ChatBenchError, run_chat_bench
from tests.bench.chat_bench import describe as describe_chat
from tests.bench.holds_bench import holds_section
from tests.bench.hot_bench import hot_section
from tests.bench.http_bench import (
    AuthBenchConfig,
    AuthUnavailable,
    BenchProcessError,
    run_auth_bench,
)
from tests.bench.import_bench import import_section
from tests.bench.isolation_bench import IsolationBenchConfig, run_isolation_bench
from tests.bench.names_bench import NamesBenchConfig, run_names_bench
from tests.bench.node import format_node_report, measure_node_startup
from tests.bench.notifications_bench import (
    NotificationsBenchConfig,
    NotificationsBenchError,
    describe,
    run_notifications_bench,
)
from tests.bench.pages_bench import PagesBenchConfig, run_pages_bench
from tests.bench.payments_bench import PaymentsBenchConfig, run_payments_bench
from tests.bench.payments_http import measure_http_transfers
from tests.bench.profiles_memory import measure_profile_memory
from tests.bench.redis_bench import RedisBenchConfig, default_url, run_redis_bench, shown_url
from tests.bench.rides_actor_bench import measure_actor_updates
from tests.bench.rides_bench import UPDATES_TARGET, RidesBenchConfig, Target, run_rides_bench
from tests.bench.runtime import BenchConfig, run_runtime_bench
from tests.bench.splits_bench import SplitsBenchConfig, run_splits_bench
from tests.bench.tokens_bench import tokens_section
from tests.bench.uvloop_bench import uvloop_section
from tests.bench.wallets_bench import wallets_section

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _say(line: str) -> None:
    print(line, flush=True)


def _machine() -> dict[str, Any]:
    import importlib.metadata

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "pykka": version("pykka"),
        "msgspec": version("msgspec"),
    }


def _write(name: str, payload: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--section",
        choices=(
            "all",
            "runtime",
            "node",
            "redis",
            "auth",
            "payments",
            "splits",
            "names",
            "pages",
            "rides",
            "notifications",
            "isolation",
            "import",
            "chat",
            "tokens",
            "uvloop",
            "hot",
            "wallets",
            "holds",
        ),
        default="all",
        help="what to measure (default: all; node and auth are skipped while run.py is "
        "absent, redis while no Redis answers, auth while the auth routes do not work)",
    )
    parser.add_argument("--tell-n", type=int, default=200_000, help="tells per round")
    parser.add_argument("--ask-n", type=int, default=20_000, help="asks per round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median taken)")
    parser.add_argument(
        "--node-runs", type=int, default=4, help="node starts: 1 cold + the rest warm"
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the runtime section to one CPU (Pykka then gets noisy)",
    )
    parser.add_argument(
        "--redis-url",
        default=default_url(),
        help="the Redis of the redis section (default: $SPLITGO_BENCH_REDIS_URL, "
        "else redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--redis-n", type=int, default=20_000, help="messages per redis round")
    parser.add_argument(
        "--redis-rounds", type=int, default=3, help="timed redis rounds (median taken)"
    )
    parser.add_argument(
        "--redis-latency-rate", type=float, default=2_000.0, help="msg/s of the latency rounds"
    )
    parser.add_argument(
        "--redis-latency-seconds", type=float, default=3.0, help="length of a latency round"
    )
    parser.add_argument("--auth-seconds", type=float, default=5.0, help="length of a GET /me round")
    parser.add_argument(
        "--auth-rounds", type=int, default=3, help="timed GET /me rounds (median taken)"
    )
    parser.add_argument(
        "--auth-concurrency", type=int, default=32, help="connections of the GET /me generator"
    )
    parser.add_argument(
        "--auth-users",
        type=int,
        default=8,
        help="accounts whose tokens and logins the auth generators take in turn",
    )
    parser.add_argument(
        "--login-seconds", type=float, default=5.0, help="length of the login storm"
    )
    parser.add_argument(
        "--login-concurrency", type=int, default=8, help="connections of the login storm"
    )
    parser.add_argument(
        "--payments-n", type=int, default=10_000, help="transfers per payments round"
    )
    parser.add_argument(
        "--payments-rounds", type=int, default=3, help="timed payments rounds (median taken)"
    )
    parser.add_argument(
        "--payments-concurrency",
        type=int,
        default=128,
        help="concurrent clients of both payments systems",
    )
    parser.add_argument(
        "--payments-shards", type=int, default=2, help="payments shards (the node runs 2)"
    )
    parser.add_argument(
        "--payments-wallets", type=int, default=200, help="wallets the transfers move between"
    )
    parser.add_argument(
        "--splits-members", type=int, default=1_000, help="members of the big splits group"
    )
    parser.add_argument(
        "--splits-expenses", type=int, default=100_000, help="expenses of the big splits group"
    )
    parser.add_argument(
        "--splits-reads",
        type=int,
        default=200,
        help="GetBalances / GetSettlePlan asks through the actor per splits round",
    )
    parser.add_argument(
        "--splits-baseline-reads",
        type=int,
        default=None,
        help="recompute-from-every-expense reads per splits round (default: one per client)",
    )
    parser.add_argument(
        "--splits-rounds", type=int, default=3, help="timed splits rounds (median taken)"
    )
    parser.add_argument(
        "--splits-concurrency",
        type=int,
        default=8,
        help="concurrent clients of every splits read system",
    )
    parser.add_argument(
        "--splits-add-n", type=int, default=3_000, help="AddExpense asks per splits round"
    )
    parser.add_argument(
        "--splits-add-concurrency",
        type=int,
        default=32,
        help="concurrent clients of the AddExpense rounds",
    )
    parser.add_argument(
        "--names-reads", type=int, default=400, help="group reads per names round and system"
    )
    parser.add_argument(
        "--names-rounds", type=int, default=3, help="timed names rounds (median taken)"
    )
    parser.add_argument(
        "--names-concurrency",
        type=int,
        default=8,
        help="concurrent clients of every names read system",
    )
    parser.add_argument(
        "--pages-members", type=int, default=1_000, help="members of the pages' big group"
    )
    parser.add_argument(
        "--pages-expenses", type=int, default=100_000, help="expenses of the pages' big group"
    )
    parser.add_argument(
        "--pages-reads", type=int, default=200, help="group reads per pages round and system"
    )
    parser.add_argument(
        "--pages-home-reads", type=int, default=400, help="home reads per pages round and system"
    )
    parser.add_argument(
        "--pages-rounds", type=int, default=3, help="timed pages rounds (median taken)"
    )
    parser.add_argument(
        "--pages-concurrency", type=int, default=8, help="concurrent clients of the pages section"
    )
    parser.add_argument(
        "--pages-profile",
        type=int,
        default=0,
        help="after timing, cProfile this many sequential reads of each page and show where "
        "the time goes (default 0: no profile)",
    )
    parser.add_argument(
        "--rides-drivers", type=int, default=100_000, help="online drivers in the rides city"
    )
    parser.add_argument(
        "--rides-queries", type=int, default=5_000, help="GeoIndex nearest queries per round"
    )
    parser.add_argument(
        "--rides-brute-queries",
        type=int,
        default=50,
        help="brute-force nearest queries per round (each scans every driver)",
    )
    parser.add_argument(
        "--rides-updates", type=int, default=200_000, help="location updates per round"
    )
    parser.add_argument(
        "--rides-rounds", type=int, default=3, help="timed rides rounds (median taken)"
    )
    parser.add_argument(
        "--isolation-seconds",
        type=float,
        default=15.0,
        help="length of the quiet and of the poisoned phase of the isolation section",
    )
    parser.add_argument(
        "--isolation-clients", type=int, default=20, help="clients of the isolation section"
    )
    parser.add_argument(
        "--isolation-rate", type=float, default=100.0, help="asks per second per isolation client"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    return parser.parse_args(argv)


def _runtime_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = BenchConfig(
        tell_n=args.tell_n, ask_n=args.ask_n, rounds=args.rounds, pin_cpu=not args.no_pin
    )
    _say(
        f"== actor runtime: tell n={config.tell_n:,}, ask n={config.ask_n:,}; "
        f"1 warm-up, then median of {config.rounds} interleaved rounds"
    )
    report = run_runtime_bench(config, progress=_say)
    _say(report.format())
    path = _write("runtime.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)}")
    return report.all_passed


def _node_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    _say("\n== node start-up")
    if not (PROJECT_ROOT / "run.py").is_file():
        _say("skipped: run.py not present")
        return True
    result = measure_node_startup(sys.executable, PROJECT_ROOT, args.node_runs, progress=_say)
    _say(format_node_report(result))
    path = _write("node.json", {**base, **result}, args.results_dir)
    _say(f"\nwritten: {_shown(path)}")
    return bool(result["warm_passed"] is not False and result["clean_exits"])


def _redis_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = RedisBenchConfig(
        url=args.redis_url,
        n=args.redis_n,
        rounds=args.redis_rounds,
        latency_rate=args.redis_latency_rate,
        latency_seconds=args.redis_latency_seconds,
    )
    _say(
        f"\n== keyed messages through Redis at {shown_url(config.url)}: n={config.n:,}; "
        f"1 warm-up, then median of {config.rounds} interleaved rounds; latency at "
        f"{config.latency_rate:,.0f} msg/s for {config.latency_seconds:g} s"
    )
    report = run_redis_bench(config, progress=_say)
    if report is None:
        _say(f"skipped: no Redis at {shown_url(config.url)}")
        return True
    _say(report.format())
    path = _write("redis.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _auth_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = AuthBenchConfig(
        seconds=args.auth_seconds,
        rounds=args.auth_rounds,
        concurrency=args.auth_concurrency,
        users=args.auth_users,
        login_seconds=args.login_seconds,
        login_concurrency=args.login_concurrency,
    )
    _say(
        f"\n== authenticated HTTP: GET /api/v1/me at concurrency {config.concurrency} from a "
        f"separate process, 1 warm-up, then median of {config.rounds} interleaved rounds of "
        f"{config.seconds:g} s; login storm at concurrency {config.login_concurrency} for "
        f"{config.login_seconds:g} s with /healthz probed at {config.probe_rate:g} req/s; "
        "argon2id cost"
    )
    if not (PROJECT_ROOT / "run.py").is_file():
        _say("skipped: run.py not present")
        return True
    try:
        report = run_auth_bench(config, progress=_say)
    except AuthUnavailable as error:
        _say(f"skipped: the auth routes do not work yet: {error}")
        return True
    _say(report.format())
    memory = measure_profile_memory()  # issue 20: hot profiles, bounded by the budget
    _say("\n" + memory.format())
    results = {**base, **report.as_json(), "profile_memory": memory.as_json()}
    path = _write("auth.json", results, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _payments_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = PaymentsBenchConfig(
        n=args.payments_n,
        rounds=args.payments_rounds,
        concurrency=args.payments_concurrency,
        wallets=args.payments_wallets,
        shards=args.payments_shards,
    )
    _say(
        f"\n== payments: transfers through the batching Payments actor ({config.shards} "
        f"shards) against one transaction per transfer, {config.concurrency} concurrent "
        f"clients, {config.wallets} wallets, pool of {config.pool_size}, one embedded "
        f"PostgreSQL; 1 warm-up, then median of {config.rounds} interleaved rounds of "
        f"{config.n:,} transfers"
    )
    report = run_payments_bench(config, progress=_say)
    _say(report.format())
    _say("\n  POST /api/v1/transfers over HTTP: a node, 8 funded payers, 32 connections, 5 s ...")
    over_http = asyncio.run(measure_http_transfers(5.0, 32))
    latency = over_http["latency_ms"]
    _say(
        f"POST /api/v1/transfers over HTTP   {over_http['rps']:,.0f} req/s   "
        f"p50 {latency['p50']:.1f} ms   p99 {latency['p99']:.1f} ms   "
        f"errors {over_http['errors'] or 'none'}"
    )
    results = {**base, **report.as_json(), "http_post_transfers": over_http}
    path = _write("payments.json", results, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _splits_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = SplitsBenchConfig(
        members=args.splits_members,
        expenses=args.splits_expenses,
        reads=args.splits_reads,
        baseline_reads=args.splits_baseline_reads,
        rounds=args.splits_rounds,
        concurrency=args.splits_concurrency,
        add_n=args.splits_add_n,
        add_concurrency=args.splits_add_concurrency,
    )
    _say(
        f"\n== splits: GetBalances and GetSettlePlan through the Splits actor ({config.shards} "
        f"shards) on a group of {config.members:,} members with {config.expenses:,} expenses, "
        f"against recomputing from every expense (Spliit's way), {config.concurrency} "
        f"concurrent clients, pool of {config.pool_size}, one embedded PostgreSQL; 1 warm-up, "
        f"then median of {config.rounds} interleaved rounds of {config.reads:,} actor reads "
        f"and {config.baseline_reads} recomputing reads; then AddExpense through the actor, "
        f"{config.add_concurrency} clients, {config.add_groups} groups of "
        f"{config.add_group_members}, {config.rounds} rounds of {config.add_n:,}"
    )
    report = run_splits_bench(config, progress=_say)
    _say(report.format())
    path = _write("splits.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _names_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = NamesBenchConfig(
        reads=args.names_reads, rounds=args.names_rounds, concurrency=args.names_concurrency
    )
    _say(
        f"\n== names: GetGroup of a group of {config.members:,} members through the Splits "
        f"actor, to_json and encoded, against the same plus name_people from a warm NameBook "
        f"and from a cold one (GetNames to the Auth actor on every read), "
        f"{config.concurrency} concurrent clients, one embedded PostgreSQL; 1 warm-up, then "
        f"median of {config.rounds} interleaved rounds of {config.reads:,} reads"
    )
    report = run_names_bench(config, progress=_say)
    _say(report.format())
    path = _write("names.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _pages_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = PagesBenchConfig(
        members=args.pages_members,
        expenses=args.pages_expenses,
        reads=args.pages_reads,
        home_reads=args.pages_home_reads,
        rounds=args.pages_rounds,
        concurrency=args.pages_concurrency,
        profile_reads=args.pages_profile,
    )
    _say(
        f"\n== pages: GET /groups/{{id}} of a group of {config.members:,} members with "
        f"{config.expenses:,} expenses and GET /home of a user in {config.home_groups} groups, "
        f"against the JSON API's GETs of the same data, over HTTP from a node in this process "
        f"(embedded PostgreSQL), {config.concurrency} concurrent clients and 1; 1 warm-up, "
        f"then median of {config.rounds} interleaved rounds of {config.reads:,} group and "
        f"{config.home_reads:,} home reads"
    )
    report = run_pages_bench(config, progress=_say)
    _say(report.format())
    path = _write("pages.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _notifications_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = NotificationsBenchConfig()
    _say("\n" + describe(config))
    try:
        report = asyncio.run(run_notifications_bench(config, _say))
    except NotificationsBenchError as error:  # fd limit, a node that would not start
        _say(f"notifications section failed: {error}")
        return False
    _say(report.format())
    path = _write("notifications.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _rides_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = RidesBenchConfig(
        drivers=args.rides_drivers,
        queries=args.rides_queries,
        brute_queries=args.rides_brute_queries,
        rounds=args.rides_rounds,
        updates=args.rides_updates,
    )
    _say(
        f"\n== rides: nearest available driver (limit 1, radius {config.radius_m:,} m) on the "
        f"dispatch GeoIndex among {config.drivers:,} drivers around Berlin, "
        f"{config.unavailable:.0%} busy, against scanning every driver; 1 warm-up, then "
        f"median of {config.rounds} interleaved rounds of {config.queries:,} index and "
        f"{config.brute_queries} brute-force queries; then {config.updates:,} location "
        "updates per round into the GeoIndex"
    )
    report = run_rides_bench(config, progress=_say)
    _say(
        f"  {config.updates:,} UpdateLocation tells per round into the rides actor "
        f"({config.drivers:,} drivers loaded from an embedded PostgreSQL)"
    )
    through_actor = measure_actor_updates(
        config.drivers, config.updates, config.rounds, progress=_say
    )
    report.updates.append(through_actor)
    report.targets.append(
        Target("updates/s (rides actor)", through_actor.rate, UPDATES_TARGET, "/s")
    )
    _say(report.format())
    path = _write("rides.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _isolation_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = IsolationBenchConfig(
        seconds=args.isolation_seconds,
        clients=args.isolation_clients,
        rate=args.isolation_rate,
        redis_url=args.redis_url,
    )
    _say(
        f"\n== isolation: {config.clients} clients at {config.rate:g} asks/s each on one shard "
        f"of 4; {config.seconds:g} s quiet, then {config.seconds:g} s with one poison message "
        "a second aimed at that shard; reads (memory, Redis) and batched transfers"
    )
    report = run_isolation_bench(config, progress=_say)
    _say(report.format())
    path = _write("isolation.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _chat_section(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    config = ChatBenchConfig(redis_url=args.redis_url)
    _say("\n" + describe_chat(config))
    try:
        report = asyncio.run(run_chat_bench(config, _say))
    except (ChatBenchError, BenchProcessError) as error:  # a node that would not start
        _say(f"chat section failed: {error}")
        return False
    _say(report.format())
    path = _write("chat.json", {**base, **report.as_json()}, args.results_dir)
    _say(f"\nwritten: {_shown(path)} (section took {report.seconds:.1f} s)")
    return report.all_passed


def _quiet_logs() -> None:
    """The runtime logs at info when it stops; keep warnings and errors only."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _quiet_logs()
    started = time.perf_counter()
    machine = _machine()
    base: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
    }
    _say(
        f"splitgo bench: Python {machine['python']} on {machine['platform']}, "
        f"{machine['cpus_usable'] or machine['cpus']} usable CPUs, pykka {machine['pykka']}"
    )
    passed = True
    if args.section in ("all", "runtime"):
        passed &= _runtime_section(args, base)
    if args.section in ("all", "node"):
        passed &= _node_section(args, base)
    if args.section in ("all", "redis"):
        passed &= _redis_section(args, base)
    if args.section in ("all", "auth"):
        passed &= _auth_section(args, base)
    if args.section in ("all", "payments"):
        passed &= _payments_section(args, base)
    if args.section in ("all", "splits"):
        passed &= _splits_section(args, base)
    if args.section in ("all", "names"):
        passed &= _names_section(args, base)
    if args.section in ("all", "pages"):
        passed &= _pages_section(args, base)
    if args.section in ("all", "rides"):
        passed &= _rides_section(args, base)
    if args.section in ("all", "notifications"):
        passed &= _notifications_section(args, base)
    if args.section in ("all", "isolation"):
        passed &= _isolation_section(args, base)
    if args.section in ("all", "import"):
        passed &= import_section(args.results_dir, base, _say, _write)
    if args.section in ("all", "chat"):
        passed &= _chat_section(args, base)
    if args.section in ("all", "tokens"):
        passed &= tokens_section(args.results_dir, base, _say, _write)
    if args.section in ("all", "hot"):
        passed &= hot_section(args.results_dir, base, _say, _write)
    if args.section in ("all", "wallets"):
        passed &= wallets_section(args.results_dir, base, _say, _write)
    if args.section in ("all", "holds"):
        passed &= holds_section(args.results_dir, base, _say, _write)
    if args.section in ("all", "uvloop"):
        passed &= uvloop_section(args, base, _say, _write)
    _say(f"\nbench finished in {time.perf_counter() - started:.1f} s")
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
