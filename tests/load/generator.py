"""The load-generating process: `python -m tests.load.generator --plan FILE`.

Reads a plan (the node's URL, the population with its tokens, the phase, its length and
concurrency), drives the phase's weighted mix from `concurrency` closed-loop workers over
keep-alive connections, plus logins and sign-ups at their steady rates in the mixed phase,
and prints one JSON line: per route requests, rate, p50/p99 and errors. Progress goes to
stderr every few seconds.

Bounded on purpose: loopback addresses only, at most MAX_SECONDS, at most MAX_CONCURRENCY
workers, every request with a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench.loadgen import LoadgenError, check_loopback
from tests.load.mix import PHASES, Recorder, Traffic, check_weights
from tests.load.population import Population

MAX_SECONDS = 600.0
MAX_CONCURRENCY = 256
MAX_PACED_IN_FLIGHT = 16  # logins or sign-ups waiting at once; past that a beat is skipped
REQUEST_TIMEOUT_S = 30.0
PROGRESS_EVERY_S = 5.0


@dataclass
class Plan:
    phase: str
    seconds: float
    warmup: float
    concurrency: int
    seed: int
    login_rate: float
    signup_rate: float
    population: Population

    def __post_init__(self) -> None:
        check_loopback(self.population.url)
        if self.phase not in PHASES:
            raise LoadgenError(f"unknown phase {self.phase!r}: {', '.join(PHASES)}")
        if not 0 < self.seconds <= MAX_SECONDS or not 0 <= self.warmup <= 60:
            raise LoadgenError(f"seconds must be in (0, {MAX_SECONDS:g}], warmup in [0, 60]")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise LoadgenError(f"concurrency must be 1..{MAX_CONCURRENCY}")
        if self.login_rate < 0 or self.signup_rate < 0:
            raise LoadgenError("rates cannot be negative")

    @classmethod
    def load(cls, path: Path) -> Plan:
        data = json.loads(path.read_text())
        return cls(
            phase=data["phase"],
            seconds=float(data["seconds"]),
            warmup=float(data["warmup"]),
            concurrency=int(data["concurrency"]),
            seed=int(data["seed"]),
            login_rate=float(data["login_rate"]),
            signup_rate=float(data["signup_rate"]),
            population=Population.from_json(data["population"]),
        )


async def _worker(traffic: Traffic, plan: Plan, rng: random.Random, until: float) -> None:
    weights = PHASES[plan.phase]
    names = list(weights)
    cumulative = [sum(list(weights.values())[: i + 1]) for i in range(len(names))]
    actions = {name: traffic.action(name) for name in names}
    while traffic.clock() < until:
        name = rng.choices(names, cum_weights=cumulative)[0]
        traffic.rec.actions[name] += 1
        await actions[name](rng)


async def _paced(
    traffic: Traffic, name: str, rate: float, rng: random.Random, until: float
) -> None:
    """`name` at `rate` per second, each on its own task, not waiting for the last one."""
    if rate <= 0:
        return
    action = traffic.action(name)
    running: set[asyncio.Task[None]] = set()
    due = traffic.clock() + rng.random() / rate
    while due < until:
        await asyncio.sleep(max(0.0, due - traffic.clock()))
        if len(running) < MAX_PACED_IN_FLIGHT:
            traffic.rec.actions[name] += 1
            task = asyncio.create_task(action(rng))
            running.add(task)
            task.add_done_callback(running.discard)
        else:
            traffic.rec.actions[f"{name}_skipped"] += 1
        due += 1 / rate
    if running:
        await asyncio.wait(running)


async def _progress(traffic: Traffic, plan: Plan, first: float) -> None:
    last_count, last_at = 0, first
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        now = traffic.clock()
        count = sum(len(stats.latencies_s) for stats in traffic.rec.routes.values())
        errors = sum(sum(s.errors.values()) for s in traffic.rec.routes.values())
        failures = sum(sum(s.failures.values()) for s in traffic.rec.routes.values())
        rate = (count - last_count) / (now - last_at)
        elapsed = now - first - plan.warmup
        print(
            f"  {plan.phase}: {max(0.0, elapsed):5.1f}/{plan.seconds:g} s  {rate:7.0f} req/s"
            f"  errors {errors}  transport failures {failures}",
            file=sys.stderr,
            flush=True,
        )
        last_count, last_at = count, now


async def run(plan: Plan) -> dict[str, Any]:
    check_weights()
    connector = aiohttp.TCPConnector(
        limit=plan.concurrency + 2 * MAX_PACED_IN_FLIGHT, keepalive_timeout=60.0
    )
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False
    ) as session:
        loop = asyncio.get_running_loop()
        first = loop.time()
        window = (first + plan.warmup, first + plan.warmup + plan.seconds)
        recorder = Recorder(window)
        traffic = Traffic(plan.population, session, recorder)
        seeds = random.Random(plan.seed)
        cpu, wall = time.process_time(), time.perf_counter()
        progress = asyncio.create_task(_progress(traffic, plan, first))
        tasks = [
            _worker(traffic, plan, random.Random(seeds.random()), window[1])
            for _ in range(plan.concurrency)
        ]
        if plan.phase == "mixed":
            tasks.append(
                _paced(traffic, "login", plan.login_rate, random.Random(seeds.random()), window[1])
            )
            tasks.append(
                _paced(
                    traffic, "signup", plan.signup_rate, random.Random(seeds.random()), window[1]
                )
            )
        try:
            await asyncio.gather(*tasks)
        finally:
            progress.cancel()
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
    return {
        "phase": plan.phase,
        "seconds": plan.seconds,
        "warmup": plan.warmup,
        "concurrency": plan.concurrency,
        "login_rate": plan.login_rate if plan.phase == "mixed" else 0.0,
        "signup_rate": plan.signup_rate if plan.phase == "mixed" else 0.0,
        "weights": PHASES[plan.phase],
        **recorder.summary(plan.seconds),
        "generator_cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.load.generator", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--plan", required=True, type=Path, help="the plan's JSON file")
    args = parser.parse_args(argv)
    try:
        plan = Plan.load(args.plan)
        result = asyncio.run(run(plan))
    except (LoadgenError, OSError, KeyError, ValueError) as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
