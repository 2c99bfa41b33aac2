"""`python -m tests.load` (`make load ARGS="--seconds 10"`): a node under a realistic mix.

1. Starts a node: `run.py` on a fresh data folder with its embedded PostgreSQL (the
   default a person gets from `make run`), logging at warning. Or, with `--url`, uses a
   node that already runs on this machine (loopback only; e.g. compose.yaml's).
2. Sets up a population through the API (tests/load/population.py): --users people signed
   up and logged in, the first --drivers of them online as drivers near a city centre,
   --groups groups, every wallet funded through the sandbox checkout.
3. Phase "mixed": a load generator in a process of its own (tests/load/generator.py)
   runs --concurrency closed-loop workers for --seconds, drawing actions by weight
   (tests/load/mix.py: 70 % reads of /me, /wallet, /transfers, /groups, balances, settle
   plan, notifications and rides; 30 % writes: expenses, transfers, ride requests with
   their cancellation, driver location pings), with logins and sign-ups beside it at
   --login-rate and --signup-rate per second.
4. Phase "reads": the mix's reads alone, for --read-seconds.
5. Prints, per phase and route, requests, req/s, p50 and p99 and every error (status and
   problem code, with what the node said), the CPU each party used, then the node's actor
   statistics, dead letters and error log lines; writes it all to
   tests/load/results/load.json.

Exits 0 when every request got an HTTP answer (4xx and 5xx answers are reported, not
fatal), 1 on a transport failure (refused, reset, timed out), 2 when the run could not
start (a bad flag, the node or the set-up failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench.http_bench import OPS_TOKEN, BenchProcessError, CpuMeter, NodeProcess
from tests.bench.loadgen import LoadgenError, check_loopback
from tests.load.population import Population, SetupError, build
from tests.load.report import describe_node, describe_phase

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
GENERATOR_SLACK_S = 60.0  # a generator taking this much longer than its plan has hung
LOG_EXCERPTS = 8


class LoadNode(NodeProcess):
    """The bench's node, with the edge's per-address rate limit set by --rate-limit: every
    person of the population comes from 127.0.0.1, and acts far faster than a person."""

    def __init__(self, scratch: Path, rate_limit: int) -> None:
        super().__init__(scratch)
        self.rate_limit = rate_limit

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "SPLITGO_RATE_LIMIT": str(self.rate_limit)}


def _say(line: str) -> None:
    print(line, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.load", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="mixed phase (60)")
    parser.add_argument(
        "--read-seconds", type=float, help="reads-only phase (as --seconds); 0 skips it"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="unrecorded, per phase (3)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop workers (32)")
    parser.add_argument("--users", type=int, default=40, help="people signed up first (40)")
    parser.add_argument("--drivers", type=int, default=8, help="of them, drivers (8)")
    parser.add_argument("--groups", type=int, default=8, help="groups sharing the users (8)")
    parser.add_argument(
        "--funds", type=int, default=10_000_000, help="minor units each wallet gets (10,000,000)"
    )
    parser.add_argument("--login-rate", type=float, default=1.0, help="logins per second (1)")
    parser.add_argument("--signup-rate", type=float, default=0.2, help="sign-ups per second (0.2)")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="the node's SPLITGO_RATE_LIMIT (0, off: the whole population is one address)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="drive this running node instead (loopback only)")
    parser.add_argument(
        "--ops-token", help="with --url: its SPLITGO_OPS_TOKEN, for the actor statistics"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.read_seconds is None:
        args.read_seconds = args.seconds
    if args.seconds <= 0 or args.read_seconds < 0 or args.warmup < 0:
        parser.error("--seconds must be positive, --read-seconds and --warmup not negative")
    if args.url:
        try:
            check_loopback(args.url)
        except LoadgenError as error:
            parser.error(str(error))
        args.url = args.url.rstrip("/")
    return args


class ActorSampler:
    """Polls /ops/actors once a second during a phase: per actor type, the messages it
    handled per second and the most it had queued at once (where requests waited)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.queued: dict[str, int] = {}
        self.p50_ms: dict[str, float] = {}
        self.started = self.ended = 0.0

    async def _sample(self, http: aiohttp.ClientSession) -> dict[str, tuple[int, int]]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with http.get(f"{self.url}/ops/actors", headers=headers) as rsp:
            if rsp.status != 200:
                return {}
            shards = (await rsp.json())["actors"]
        found: dict[str, tuple[int, int]] = {}
        for shard in shards:
            handled, mailbox = found.get(shard["name"], (0, 0))
            found[shard["name"]] = (
                handled + int(shard["handled"]),
                mailbox + int(shard["mailbox"]),
            )
        # the slowest shard's handling p50 over its recent messages, as last seen
        for name in found:
            p50s = [s["p50_ms"] for s in shards if s["name"] == name and s.get("p50_ms")]
            self.p50_ms[name] = max(p50s, default=0.0)
        return found

    async def run(self) -> None:
        if not self.token:
            return
        async with aiohttp.ClientSession(trust_env=False) as http:
            loop = asyncio.get_running_loop()
            while True:
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, KeyError):
                    now = loop.time()
                    for name, (handled, mailbox) in (await self._sample(http)).items():
                        if name not in self.first:
                            self.first[name], self.started = handled, now
                        self.last[name], self.ended = handled, now
                        self.queued[name] = max(self.queued.get(name, 0), mailbox)
                await asyncio.sleep(1.0)

    def summary(self) -> dict[str, dict[str, float]]:
        seconds = max(self.ended - self.started, 1e-9)
        return {
            name: {
                "handled_per_s": round((self.last[name] - self.first[name]) / seconds, 1),
                "max_queued": self.queued.get(name, 0),
                "slowest_shard_p50_ms": round(self.p50_ms.get(name, 0.0), 2),
            }
            for name in sorted(self.first)
        }


async def run_generator(
    plan: dict[str, Any],
    scratch: Path,
    meters: list[tuple[str, CpuMeter]],
    sampler: ActorSampler,
) -> tuple[dict[str, Any], dict[str, float]]:
    """One phase in the generator's own process; its result and the CPU each party used."""
    path = scratch / f"plan-{plan['phase']}.json"
    path.write_text(json.dumps(plan))
    path.chmod(0o600)  # it holds the population's access tokens
    for _name, meter in meters:
        meter.start()
    sampling = asyncio.create_task(sampler.run())
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.load.generator",
        "--plan",
        str(path),
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=None,  # its progress lines go straight to this terminal
    )
    try:
        out, _ = await asyncio.wait_for(
            process.communicate(), plan["warmup"] + plan["seconds"] + GENERATOR_SLACK_S
        )
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchProcessError(f"the {plan['phase']} generator hung") from None
    finally:
        sampling.cancel()
    cpu = {name: meter.stop() for name, meter in meters}
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        result = {"error": "no result; output: " + out.decode(errors="replace")[-2000:]}
    if process.returncode != 0 or "error" in result:
        raise BenchProcessError(f"the {plan['phase']} generator failed: {result.get('error')}")
    result["actors"] = sampler.summary()
    return result, cpu


async def node_health(url: str, token: str | None, log_path: Path | None) -> dict[str, Any]:
    """Actor statistics and dead letters (/ops, with the token), error lines of the log."""
    health: dict[str, Any] = {}
    if token:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(trust_env=False) as http:
            async with http.get(f"{url}/ops/actors", headers=headers) as rsp:
                if rsp.status == 200:
                    actors: dict[str, dict[str, Any]] = {}
                    for shard in (await rsp.json())["actors"]:
                        into = actors.setdefault(
                            shard["name"],
                            {
                                "handled": 0,
                                "failed": 0,
                                "rejected": 0,
                                "restarts": 0,
                                "dead_lettered": 0,
                                "last_errors": [],
                            },
                        )
                        for key in ("handled", "failed", "rejected", "restarts", "dead_lettered"):
                            into[key] += int(shard.get(key) or 0)
                        if shard.get("last_error"):
                            into["last_errors"].append(shard["last_error"])
                    health["actors"] = actors
            async with http.get(f"{url}/ops/dead-letters?limit=200", headers=headers) as rsp:
                if rsp.status == 200:
                    health["dead_letters"] = len((await rsp.json())["items"])
    if log_path is not None and log_path.exists():
        events: Counter[str] = Counter()
        warnings: Counter[str] = Counter()
        excerpts: list[str] = []
        for line in log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                if "Traceback" in line or "Error" in line:
                    events["(not JSON)"] += 1
                    if len(excerpts) < LOG_EXCERPTS:
                        excerpts.append(line[:400])
                continue
            if not isinstance(entry, dict):
                continue
            if entry.get("level") == "warning":
                warnings[str(entry.get("event"))] += 1
            if entry.get("level") in ("error", "critical"):
                events[str(entry.get("event"))] += 1
                if len(excerpts) < LOG_EXCERPTS:
                    excerpts.append(line[:400])
        health["log_errors"] = dict(events.most_common())
        health["log_warnings"] = dict(warnings.most_common())
        health["log_excerpts"] = excerpts
    return health


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        # other work on the machine when the run ended (1, 5, 15 minutes)
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="splitgo-load-") as folder:
        scratch = Path(folder)
        node: NodeProcess | None = None
        if args.url:
            url, token, log_path = args.url, args.ops_token, None
            meters: list[tuple[str, CpuMeter]] = []
            _say(f"node: {url} (already running)")
        else:
            node = LoadNode(scratch, args.rate_limit)
            _say("starting a node: run.py, embedded PostgreSQL, fresh data folder ...")
            await node.start()
            url, token, log_path = node.url, OPS_TOKEN, node.log_path
            meters = [
                ("node_s", CpuMeter(node.server_pids)),
                ("database_s", CpuMeter(node.database_pids)),
            ]
            _say(
                f"node ready at {url} in {node.startup_s:.1f} s (log level warning, "
                f"SPLITGO_RATE_LIMIT={args.rate_limit})"
            )
        try:
            _say(
                f"setting up {args.users} users ({args.drivers} drivers), {args.groups} groups, "
                "funded wallets ..."
            )
            population = await build(
                url,
                users=args.users,
                drivers=args.drivers,
                groups=args.groups,
                funds=args.funds,
                seed=args.seed,
                say=_say,
            )
            _say(f"set-up done in {population.seconds:.1f} s")
            phases = [("mixed", args.seconds)]
            if args.read_seconds > 0:
                phases.append(("reads", args.read_seconds))
            results: dict[str, Any] = {}
            cpus: dict[str, dict[str, float]] = {}
            for phase, seconds in phases:
                _say(f"phase {phase}: {seconds:g} s (+{args.warmup:g} s warm-up) ...")
                plan = {
                    "phase": phase,
                    "seconds": seconds,
                    "warmup": args.warmup,
                    "concurrency": args.concurrency,
                    "seed": args.seed,
                    "login_rate": args.login_rate,
                    "signup_rate": args.signup_rate,
                    "population": population.as_json(),
                }
                sampler = ActorSampler(url, token)
                results[phase], cpus[phase] = await run_generator(plan, scratch, meters, sampler)
            health = await node_health(url, token, log_path)
        except SetupError as error:
            raise SetupError(f"{error}{node.log_tail() if node else ''}") from None
        finally:
            if node is not None:
                node.stop()
    report(args, population, results, cpus, health)
    failures = sum(result["total"]["failures"] for result in results.values())
    return 1 if failures else 0


def report(
    args: argparse.Namespace,
    population: Population,
    results: dict[str, Any],
    cpus: dict[str, dict[str, float]],
    health: dict[str, Any],
) -> None:
    _say("")
    machine = _machine()
    _say(
        f"## make load — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine['cpus']} CPUs, "
        f"Python {platform.python_version()}, load average {machine['load_average'][1]:g} "
        "over the last 5 minutes (this run included)"
    )
    _say(
        f"Population: {len(population.users)} users ({len(population.drivers)} drivers online, "
        f"{len(population.riders)} riders), {len(population.groups)} groups, "
        f"{population.funds:,} minor units in each wallet; set up in {population.seconds:.1f} s."
    )
    for phase, result in results.items():
        _say("")
        for line in describe_phase(result, cpus.get(phase) or {}):
            _say(line)
    _say("")
    for line in describe_node(health):
        _say(line)
    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    arguments.pop("ops_token", None)
    payload: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "arguments": arguments,
        "population": {
            "users": len(population.users),
            "drivers": len(population.drivers),
            "riders": len(population.riders),
            "groups": len(population.groups),
            "funds": population.funds,
            "setup_s": round(population.seconds, 2),
        },
        "phases": {
            phase: {**result, "cpu_s": {k: round(v, 3) for k, v in cpus[phase].items()}}
            for phase, result in results.items()
        },
        "node": health,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / "load.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    with contextlib.suppress(ValueError):
        path = path.relative_to(PROJECT_ROOT)
    _say("")
    _say(f"results: {path}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    try:
        code = asyncio.run(main_async(args))
    except (SetupError, BenchProcessError, LoadgenError) as error:
        print(f"python -m tests.load: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    _say(f"({time.perf_counter() - started:.0f} s in all)")
    return code


if __name__ == "__main__":
    sys.exit(main())
