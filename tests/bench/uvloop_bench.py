"""`python -m tests.bench --section uvloop`: asyncio's own event loop against uvloop, one run.

Two measurements, each side by side on both loops, in interleaved rounds (rotating order,
as runtime.py and http_bench.py do), rates the median of the rounds and every ratio the
median of the per-round ratios:

* in process: the actor runtime's tell and ask rates (tests/bench/runtime.py's
  `_RuntimeBench`: ActorSystem over MemoryTransport, one actor, shards=1) and the bare
  asyncio.Queue floor (`_BareBench`), each once on a loop from `asyncio.new_event_loop()`
  and once on one from `uvloop.new_event_loop()`; pinned to one CPU like the runtime
  section.
* over HTTP: authenticated GET /api/v1/me per second, and GET /healthz for the edge
  alone, from the auth section's load generator (a process of its own, tokens of 8 users)
  against two nodes started from `run.py` on fresh data folders, one with
  SPLITGO_EVENT_LOOP=asyncio and one with SPLITGO_EVENT_LOOP=uvloop (which refuses to start
  without uvloop, so each node runs on the loop it is named after); the node's CPU per
  request from /proc.

No target: the figures say what uvloop is worth here. Skipped when uvloop is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.bench import http_bench
from tests.bench.http_bench import NodeProcess, Run, _measure, _Target, prepare_users
from tests.bench.runtime import SystemResult, _BareBench, _Bench, _pin_to_one_cpu, _RuntimeBench

Progress = Callable[[str], None]
Write = Callable[[str, dict[str, Any], Path], Path]
LOOPS = ("asyncio", "uvloop")


@dataclass(frozen=True)
class UvloopBenchConfig:
    """The runtime part's work per round and the HTTP part's rounds (the shared flags)."""

    tell_n: int = 200_000
    ask_n: int = 20_000
    rounds: int = 5
    pin_cpu: bool = True
    http_seconds: float = 5.0
    http_rounds: int = 3
    concurrency: int = 32
    users: int = 8
    warmup_seconds: float = 1.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> UvloopBenchConfig:
        """The runtime and auth sections' flags: the same work as those sections."""
        return cls(
            tell_n=args.tell_n,
            ask_n=args.ask_n,
            rounds=args.rounds,
            pin_cpu=not args.no_pin,
            http_seconds=args.auth_seconds,
            http_rounds=args.auth_rounds,
            concurrency=args.auth_concurrency,
            users=args.auth_users,
        )


def per_round(side: list[float], reference: list[float]) -> float:
    """The median of the per-round ratios side / reference (both measured moments apart)."""
    return statistics.median(a / b for a, b in zip(side, reference, strict=True))


# --------------------------------------------------------------------------- in process


@dataclass
class _OnLoop:
    """One in-process system on one kind of loop."""

    system: str  # runtime or bare
    loop_name: str
    bench: _Bench
    result: SystemResult


def _make_loop(name: str, uvloop: ModuleType) -> asyncio.AbstractEventLoop:
    made: asyncio.AbstractEventLoop = (
        uvloop.new_event_loop() if name == "uvloop" else asyncio.new_event_loop()
    )
    return made


def _runtime_rounds(
    config: UvloopBenchConfig, uvloop: ModuleType, progress: Progress
) -> list[_OnLoop]:
    """Every system on every loop: set up, one warm-up, then the interleaved rounds."""
    loops = {name: _make_loop(name, uvloop) for name in LOOPS}
    systems: list[_OnLoop] = []
    try:
        for name, loop in loops.items():
            for system, make in (("runtime", _RuntimeBench), ("bare", _BareBench)):
                bench = make(loop)
                label = f"{bench.label} on {name}"
                result = SystemResult(f"{system}/{name}", label, config.tell_n, config.ask_n)
                systems.append(_OnLoop(system, name, bench, result))
        for index in range(-1, config.rounds):  # -1: the warm-up
            shift = max(index, 0) % len(systems)
            for one in systems[shift:] + systems[:shift]:
                tell, ask = one.bench.tell(config.tell_n), one.bench.ask(config.ask_n)
                if index >= 0:
                    one.result.tell_rates.append(tell)
                    one.result.ask_rates.append(ask)
                shown = "warm-up  " if index < 0 else f"round {index + 1}/{config.rounds}"
                progress(
                    f"  {shown} {one.result.label:<40} tell {tell:>11,.0f} msg/s   "
                    f"ask {ask:>9,.0f} rt/s"
                )
    finally:
        for one in reversed(systems):
            one.bench.close()
        for loop in loops.values():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    return systems


@dataclass
class RuntimeComparison:
    """The in-process rates on both loops and uvloop's ratio to asyncio for each."""

    systems: list[_OnLoop]
    pinned_cpu: int | None

    def result(self, system: str, loop: str) -> SystemResult:
        return next(s.result for s in self.systems if (s.system, s.loop_name) == (system, loop))

    def ratio(self, system: str, workload: str) -> float:
        asyncio_, uvloop_ = self.result(system, "asyncio"), self.result(system, "uvloop")
        if workload == "tell":
            return per_round(uvloop_.tell_rates, asyncio_.tell_rates)
        return per_round(uvloop_.ask_rates, asyncio_.ask_rates)

    def rows(self) -> list[tuple[str, float, float, float]]:
        """(what, asyncio's rate, uvloop's rate, uvloop/asyncio) for each figure."""
        found = []
        for system, shown in (("runtime", "runtime"), ("bare", "bare asyncio.Queue")):
            on_asyncio, on_uvloop = self.result(system, "asyncio"), self.result(system, "uvloop")
            found.append(
                (f"{shown} tell msg/s", on_asyncio.tell, on_uvloop.tell, self.ratio(system, "tell"))
            )
            found.append(
                (f"{shown} ask rt/s", on_asyncio.ask, on_uvloop.ask, self.ratio(system, "ask"))
            )
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "pinned_cpu": self.pinned_cpu,
            "systems": {s.result.key: s.result.as_json() for s in self.systems},
            "uvloop_vs_asyncio": {
                f"{system}_{workload}": round(self.ratio(system, workload), 4)
                for system in ("runtime", "bare")
                for workload in ("tell", "ask")
            },
        }


def measure_runtime(
    config: UvloopBenchConfig, uvloop: ModuleType, progress: Progress
) -> RuntimeComparison:
    """The runtime and the bare queue on both loops, pinned to one CPU when asked."""
    pinned, old_mask = _pin_to_one_cpu() if config.pin_cpu else (None, None)
    progress(f"  pinned to CPU {pinned}" if pinned is not None else "  not pinned to a CPU")
    try:
        systems = _runtime_rounds(config, uvloop, progress)
    finally:
        if old_mask is not None:  # the nodes of the HTTP part get every CPU again
            os.sched_setaffinity(0, old_mask)
    return RuntimeComparison(systems, pinned)


# --------------------------------------------------------------------------- over HTTP


class LoopNode(NodeProcess):
    """The auth section's node (`run.py`, fresh data folder, log level warning) on one loop."""

    def __init__(self, scratch: Path, loop_name: str) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        super().__init__(scratch)
        self.loop_name = loop_name

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "SPLITGO_EVENT_LOOP": self.loop_name}


@dataclass
class HttpComparison:
    """GET /me and GET /healthz per second against the node on each loop."""

    systems: dict[str, http_bench.SystemResult]
    startup_s: dict[str, float]
    me_body_bytes: int
    node_stop: dict[str, Any] = field(default_factory=dict)

    def ratio(self, route: str) -> float:
        on_uvloop, on_asyncio = self.systems[f"{route}/uvloop"], self.systems[f"{route}/asyncio"]
        return per_round(on_uvloop.rates, on_asyncio.rates)

    def rows(self) -> list[tuple[str, float, float, float]]:
        found = []
        for route, shown in (("me", "GET /api/v1/me req/s"), ("healthz", "GET /healthz req/s")):
            on_asyncio, on_uvloop = (
                self.systems[f"{route}/asyncio"],
                self.systems[f"{route}/uvloop"],
            )
            found.append((shown, on_asyncio.rate, on_uvloop.rate, self.ratio(route)))
        return found

    def cpu_rows(self) -> list[tuple[str, float, float, float]]:
        """The node's CPU µs per request on each loop, and uvloop's share of asyncio's."""
        found = []
        for route, shown in (("me", "node CPU µs per /me"), ("healthz", "node CPU µs /healthz")):
            on_asyncio = self.systems[f"{route}/asyncio"].cpu_us_per_request()["server"]
            on_uvloop = self.systems[f"{route}/uvloop"].cpu_us_per_request()["server"]
            found.append((shown, on_asyncio, on_uvloop, on_uvloop / on_asyncio))
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "node_startup_s": {name: round(s, 3) for name, s in self.startup_s.items()},
            "me_body_bytes": self.me_body_bytes,
            "systems": {key: result.as_json() for key, result in self.systems.items()},
            "uvloop_vs_asyncio": {
                "me_rps": round(self.ratio("me"), 4),
                "healthz_rps": round(self.ratio("healthz"), 4),
            },
            "node_stop": self.node_stop,
        }


def _progress_line(prefix: str, label: str, run: Run) -> str:
    latency = run.generator["latency_ms"]
    errors = sum(run.generator["errors"].values())
    return (
        f"  {prefix} {label:<30} {run.rps:>9,.0f} req/s   p50 {latency['p50']:.2f} ms   "
        f"p99 {latency['p99']:.2f} ms" + (f"   {errors} errors" if errors else "")
    )


async def _targets(
    nodes: dict[str, LoopNode], users: int, scratch: Path
) -> tuple[list[_Target], int]:
    """GET /me (each node's own users' tokens) and GET /healthz on each node; /me's size."""
    targets, body_bytes = [], 0
    for name, node in nodes.items():
        folder = scratch / name
        made = await prepare_users(node.url, users, folder)
        body_bytes = made.me_body_bytes
        targets.append(
            _Target(
                f"me/{name}",
                f"GET /api/v1/me on {name}",
                f"{node.url}/api/v1/me",
                made.tokens_file,
                node.server_pids,
                node.database_pids,
            )
        )
        targets.append(
            _Target(
                f"healthz/{name}",
                f"GET /healthz on {name}",
                f"{node.url}/healthz",
                None,
                node.server_pids,
                node.database_pids,
            )
        )
    return targets, body_bytes


async def measure_http(config: UvloopBenchConfig, progress: Progress) -> HttpComparison:
    """Both nodes started at once; warm-up, then interleaved rounds of every target."""
    scratch = Path(tempfile.mkdtemp(prefix="splitgo-bench-uvloop-"))
    nodes = {name: LoopNode(scratch / name, name) for name in LOOPS}
    try:
        await asyncio.gather(*(node.start() for node in nodes.values()))
        progress(
            "  nodes ready: "
            + ", ".join(f"{name} in {node.startup_s:.1f} s" for name, node in nodes.items())
        )
        targets, body = await _targets(nodes, config.users, scratch)
        results = {t.key: http_bench.SystemResult(t.key, t.label) for t in targets}
        for target in targets:
            run = await _measure(target, config.warmup_seconds, config.concurrency)
            results[target.key].warmup = run
            progress(_progress_line("warm-up  ", target.label, run))
        for index in range(config.http_rounds):
            shift = index % len(targets)
            for target in targets[shift:] + targets[:shift]:
                run = await _measure(target, config.http_seconds, config.concurrency)
                results[target.key].runs.append(run)
                progress(
                    _progress_line(f"round {index + 1}/{config.http_rounds}", target.label, run)
                )
    finally:
        for node in nodes.values():
            await asyncio.to_thread(node.stop)
        shutil.rmtree(scratch, ignore_errors=True)
    comparison = HttpComparison(
        results, {name: node.startup_s for name, node in nodes.items()}, body
    )
    comparison.node_stop = {name: node.stop_result for name, node in nodes.items()}
    return comparison


# --------------------------------------------------------------------------- the section


def format_rows(rows: list[tuple[str, float, float, float]]) -> list[str]:
    """One line a figure: asyncio's, uvloop's and their ratio."""
    return [
        f"{what:<28} {on_asyncio:>12,.0f} {on_uvloop:>12,.0f} {ratio:>15.2f}x"
        for what, on_asyncio, on_uvloop, ratio in rows
    ]


def format_report(
    runtime: RuntimeComparison, http: HttpComparison, config: UvloopBenchConfig
) -> str:
    """The side-by-side table of both parts."""
    lines = [
        "",
        f"{'':<28} {'asyncio':>12} {'uvloop':>12} {'uvloop/asyncio':>16}",
        "-" * 70,
        *format_rows(runtime.rows()),
        *format_rows(http.rows()),
        *format_rows(http.cpu_rows()),
        f"(in process: median of {config.rounds} rounds of {config.tell_n:,} tells and "
        f"{config.ask_n:,} asks; HTTP: median of {config.http_rounds} rounds of "
        f"{config.http_seconds:g} s at {config.concurrency} connections from one loadgen "
        f"process, {config.users} users' tokens; ratios: median of the per-round ratios)",
    ]
    return "\n".join(lines)


def _uvloop() -> ModuleType | None:
    try:
        return importlib.import_module("uvloop")
    except ImportError:
        return None


def uvloop_section(
    args: argparse.Namespace, base: dict[str, Any], say: Progress, write: Write
) -> bool:
    """Run both parts, print them side by side and write uvloop.json."""
    config = UvloopBenchConfig.from_args(args)
    say(
        "\n== uvloop: the runtime's tell/ask and the bare queue on asyncio's loop and on "
        "uvloop in one process, then GET /api/v1/me and /healthz against a node on each "
        "(SPLITGO_EVENT_LOOP=asyncio / uvloop); 1 warm-up, then interleaved rounds"
    )
    uvloop = _uvloop()
    if uvloop is None:
        say("skipped: uvloop is not installed (pip install uvloop)")
        return True
    started = time.perf_counter()
    runtime = measure_runtime(config, uvloop, say)
    http = asyncio.run(measure_http(config, say))
    say(format_report(runtime, http, config))
    seconds = time.perf_counter() - started
    payload = {
        **base,
        "uvloop": str(getattr(uvloop, "__version__", "")),
        "config": {
            "tell_n": config.tell_n,
            "ask_n": config.ask_n,
            "rounds": config.rounds,
            "http_seconds": config.http_seconds,
            "http_rounds": config.http_rounds,
            "concurrency": config.concurrency,
            "users": config.users,
            "warm_up_rounds": 1,
            "statistic": "median",
            "interleaved": True,
            "node_log_level": "warning",
        },
        "in_process": runtime.as_json(),
        "http": http.as_json(),
        "seconds": round(seconds, 1),
    }
    path = write("uvloop.json", payload, args.results_dir)
    say(f"\nwritten: {path} (section took {seconds:.1f} s)")
    return True
