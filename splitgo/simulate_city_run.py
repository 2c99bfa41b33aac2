"""The parts of `splitgo simulate --city` (splitgo/simulate_city.py): its options, the
simulated fleet (where each driver is, who is free to ride, what was measured) and the
node processes it starts."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from actors.rides.regions import RegionMap

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CITY_REGIONS = "grid:2x5@52.3,13.0,52.7,13.8"  # Berlin and around, in ten boxes
STEP_DEG = 0.0005  # a ping moves a driver up to ~50 m each way


@dataclass(frozen=True, slots=True)
class CityOptions:
    """What a city run does: fleet, rate, length, nodes, and where Redis and PostgreSQL are."""

    minutes: float
    drivers: int
    riders: int
    requests_per_minute: int
    ping_every: float
    tick: float  # seconds of pings gathered into one UpdateLocations per region
    one_by_one: bool  # one UpdateLocation per ping instead (as before issue 20's batching)
    nodes: int
    regions: str
    border_m: int
    redis_url: str
    database_url: str
    folder: str
    drain: float
    keep: bool
    seed: int
    profile: bool = False  # each node under cProfile, CPU time (node-<i>/profile.out)


def parse_city(argv: Sequence[str], prog: str = "splitgo simulate --city") -> CityOptions:
    parser = argparse.ArgumentParser(prog=prog, description="Rides by region at city scale.")
    parser.add_argument("--city", action="store_true", help="this mode (required)")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--drivers", type=int, default=20_000)
    parser.add_argument("--riders", type=int, default=600)
    parser.add_argument("--requests-per-minute", type=int, default=2_000)
    parser.add_argument("--ping-every", type=float, default=5.0, help="seconds")
    parser.add_argument(
        "--tick", type=float, default=0.1, help="seconds of pings sent together per region"
    )
    parser.add_argument(
        "--ping-one-by-one", action="store_true", help="one UpdateLocation per ping"
    )
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--regions", default=CITY_REGIONS, help="as SPLITGO_RIDE_REGIONS")
    parser.add_argument("--border-m", type=int, default=1_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--database-url",
        default="postgresql://127.0.0.1:5432/postgres",
        help="a server where the run may create (and then drop) its own database",
    )
    parser.add_argument(
        "--folder", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "splitgo-city")
    )
    parser.add_argument("--drain", type=float, default=5.0, help="seconds after the run")
    parser.add_argument("--keep", action="store_true", help="keep the run's database")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run each node under cProfile, written to <folder>/<run>/node-<i>/profile.out",
    )
    args = parser.parse_args(list(argv))
    for name in (
        "minutes",
        "drivers",
        "riders",
        "requests_per_minute",
        "ping_every",
        "tick",
        "nodes",
    ):
        value = getattr(args, name)
        if not math.isfinite(value) or value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be above 0")
    return CityOptions(
        minutes=args.minutes,
        drivers=args.drivers,
        riders=args.riders,
        requests_per_minute=args.requests_per_minute,
        ping_every=args.ping_every,
        tick=args.tick,
        one_by_one=args.ping_one_by_one,
        nodes=args.nodes,
        regions=args.regions,
        border_m=args.border_m,
        redis_url=args.redis_url,
        database_url=args.database_url,
        folder=args.folder,
        drain=max(args.drain, 0.0),
        keep=args.keep,
        seed=args.seed,
        profile=args.profile,
    )


@dataclass(slots=True)
class Fleet:
    """The simulated city: drivers' positions, free riders, and what the run measured."""

    regions: RegionMap
    box: tuple[float, float, float, float]  # south, west, north, east
    rng: random.Random
    drivers: dict[str, tuple[float, float]] = field(default_factory=dict)
    free_riders: list[str] = field(default_factory=list)
    rides: dict[str, str] = field(default_factory=dict)  # ride id -> rider, going
    dispatch_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)  # accepts and cancels, round trips
    refused: Counter[str] = field(default_factory=Counter)
    backlog: Counter[str] = field(default_factory=Counter)  # most waiting in a shard, by family
    pings: int = 0
    ping_rounds: list[float] = field(default_factory=list)
    node_cpu_s: float = 0.0  # the nodes' CPU-seconds over the run (from /proc)
    database_cpu_s: float = 0.0  # the run database's PostgreSQL backends' over the run

    @classmethod
    def make(cls, options: CityOptions, regions: RegionMap, seed: int) -> Fleet:
        south = min(r.south for r in regions.regions)
        north = max(r.north for r in regions.regions)
        west = min(r.west for r in regions.regions)
        east = max(r.east for r in regions.regions)
        fleet = cls(regions, (south, west, north, east), random.Random(seed))
        fleet.drivers = {f"driver-{i}": fleet.point(fleet.rng) for i in range(options.drivers)}
        fleet.free_riders = [f"rider-{i}" for i in range(options.riders)]
        return fleet

    def point(self, rng: random.Random) -> tuple[float, float]:
        south, west, north, east = self.box
        return rng.uniform(south, north - 0.03), rng.uniform(west, east - 0.03)

    def move(self, user_id: str, rng: random.Random) -> tuple[float, float]:
        south, west, north, east = self.box
        lat, lon = self.drivers[user_id]
        lat = min(max(lat + rng.uniform(-STEP_DEG, STEP_DEG), south), north - 1e-6)
        lon = min(max(lon + rng.uniform(-STEP_DEG, STEP_DEG), west), east - 1e-6)
        self.drivers[user_id] = (lat, lon)
        return lat, lon


def cpu_seconds(pid: int) -> float:
    """User and system CPU-seconds a process used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the name: state is field 3, utime 14 and stime 15 (1-based, man proc)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile of sorted `values` (0 when there are none)."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[rank - 1]


@dataclass(slots=True)
class NodeProcess:
    """A splitgo node started by the run (every actor; the run's Redis prefix and database)."""

    process: subprocess.Popen[bytes]
    url: str
    folder: Path

    @classmethod
    async def start_many(
        cls, options: CityOptions, database_url: str, run: str, folder: Path
    ) -> list[NodeProcess]:
        # every node of a cluster signs and checks with the same secrets: made for this run
        shared = {
            "SPLITGO_JWT_KEYS": f"city:{secrets.token_urlsafe(48)}",
            "SPLITGO_SANDBOX_SECRET": secrets.token_urlsafe(32),
            "SPLITGO_OPS_TOKEN": secrets.token_urlsafe(32),
        }
        nodes = [
            cls.spawn(options, database_url, run, folder / f"node-{i}", shared)
            for i in range(options.nodes)
        ]
        try:
            await asyncio.gather(*(node.ready() for node in nodes))
        except BaseException:
            for node in nodes:
                node.stop()
            raise
        return nodes

    @classmethod
    def spawn(
        cls,
        options: CityOptions,
        database_url: str,
        run: str,
        folder: Path,
        shared: dict[str, str],
    ) -> NodeProcess:
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        environment = {
            **os.environ,
            "SPLITGO_TRANSPORT": "redis",
            "SPLITGO_REDIS_URL": options.redis_url,
            "SPLITGO_REDIS_PREFIX": f"city-{run}",
            "SPLITGO_DATABASE_URL": database_url,
            "SPLITGO_RIDE_REGIONS": options.regions,
            "SPLITGO_RIDE_BORDER_M": str(options.border_m),
            "SPLITGO_LOG_FORMAT": "json",
            "SPLITGO_LOG_LEVEL": "warning",
            "SPLITGO_RATE_LIMIT": "0",
            "SPLITGO_RATES_URL": "http://127.0.0.1:9/stats/eurofxref/",
            "SPLITGO_CODEC_CHECK": "0",
            **shared,
        }
        command = ["run.py", "--port", str(port), "--data-dir", str(folder / "data")]
        if options.profile:  # CPU time, written when the node exits (SIGTERM stops it)
            profile = ["-m", "splitgo.simulate_city_profile", str(folder / "profile.out")]
            command = [*profile, *command[1:]]
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=(folder / "stdout.log").open("wb"),
            stderr=(folder / "stderr.log").open("wb"),
            stdin=subprocess.DEVNULL,
        )
        return cls(process, f"http://127.0.0.1:{port}", folder)

    async def ready(self, timeout: float = 120.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"a node exited; see {self.folder}/stderr.log")
                try:
                    async with session.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"a node was not ready in {timeout:g} s; see {self.folder}")

    def stop(self) -> None:
        """SIGTERM, a bounded wait, then SIGKILL (only this run's own process)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
