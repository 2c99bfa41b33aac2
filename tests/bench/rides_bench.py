"""Nearest-available-driver queries on the dispatch geo index against a brute-force scan,
and location updates absorbed per second; pure code, one process, no IO.

The city. `drivers` drivers (default 100,000) in a 40 km x 40 km square around Berlin
(52.52, 13.40): half drawn from a normal distribution around the centre (sigma 5 km, drawn
again when outside the square), half uniformly over the square, so the centre holds a few
hundred drivers per km^2 and the edges a few dozen. `unavailable` of them (default 20 %,
chosen at random) are busy: the accept filter (`key not in busy`, a set look-up, as the
actor's check of a driver's state would be) rejects them.

Queries. A pickup drawn from the same mixture as the drivers; the nearest available
driver within `radius_m` (10 km), limit 1:

* GeoIndex: `GeoIndex.nearest` on an index of cells `cell_deg` (0.01) degrees wide, filled
  once before the rounds (the fill time is shown, not judged).
* brute force: `brute_force_nearest` over the same positions (a dict of driver -> (lat,
  lon)): the same integer haversine for every driver, then the smallest accepted one.

Each query is timed alone (perf_counter_ns around one call); p50 and p99 per round. One
warm-up round, then `rounds` interleaved rounds (the order of the two systems alternates)
of `queries` GeoIndex queries and `brute_queries` brute-force ones (default 5,000 and 50:
a scan costs tens of milliseconds); fresh pickups every round. Results are medians over
rounds; the speed-up is the median of the per-round ratios (brute force p50 / GeoIndex
p50, and the same at p99 for information). With 50 brute-force queries a round their p99
is their maximum. Every brute-force pickup is also asked of the index (untimed) and the
answers must be equal, or the section fails.

Updates. `updates` (200,000) random small moves (a random driver moves up to ~55 m in
each direction, staying in the square) applied with `GeoIndex.update` in a tight loop,
the moves generated beforehand; updates/s per round, median of `rounds` after a warm-up
round. Afterwards the index must hold exactly the final positions.

The result table is a list of rows (`RidesReport.updates` and `RidesReport.targets`), so
another way of absorbing updates (such as UpdateLocation through the rides actor) can be
appended as one more row with its own target.

Not measured: queries through the rides actor or over HTTP, `count_within`, limits above 1,
drivers spread over several cities, and the garbage collector's share beyond what the
rounds happen to meet (it stays enabled, as in the node).
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.rides.dispatch import GeoIndex, brute_force_nearest

Progress = Callable[[str], None]
Point = tuple[float, float]

CENTRE: Point = (52.52, 13.40)  # Berlin
HALF_SIDE_KM = 20.0  # the square is 40 km x 40 km
SIGMA_KM = 5.0
KM_PER_DEG_LAT = 6_371.0088 * math.pi / 180
P99_TARGET_MS = 1.0
SPEEDUP_TARGET = 100.0
UPDATES_TARGET = 20_000.0
MOVE_KM = 0.055  # the largest step of a move, per axis


@dataclass
class RidesBenchConfig:
    """The city's size and the work per round."""

    drivers: int = 100_000
    queries: int = 5_000  # GeoIndex queries per round
    brute_queries: int = 50  # brute-force queries per round
    rounds: int = 3
    updates: int = 200_000  # moves per update round
    radius_m: int = 10_000
    unavailable: float = 0.2
    cell_deg: float = 0.01
    seed: int = 7

    def __post_init__(self) -> None:
        if min(self.drivers, self.queries, self.brute_queries, self.rounds, self.updates) < 1:
            raise ValueError("drivers, queries, rounds and updates must be at least 1")
        if not 0.0 <= self.unavailable < 1.0:
            raise ValueError("unavailable must be a fraction in [0, 1)")


@dataclass
class QueryRound:
    """One system's round of queries: latency percentiles of single calls."""

    p50_ms: float
    p99_ms: float
    mean_ms: float
    n: int


@dataclass
class QuerySystem:
    """The rounds of one way of answering nearest-driver queries."""

    key: str
    label: str
    rounds: list[QueryRound] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.rounds)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.rounds)

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "p50_ms": round(self.p50_ms, 4),
            "p99_ms": round(self.p99_ms, 4),
            "rounds": [
                {
                    "p50_ms": round(r.p50_ms, 4),
                    "p99_ms": round(r.p99_ms, 4),
                    "mean_ms": round(r.mean_ms, 4),
                    "queries": r.n,
                }
                for r in self.rounds
            ],
        }


@dataclass
class UpdateRow:
    """One way of absorbing location updates: updates/s per round (median shown)."""

    key: str
    label: str
    n: int  # updates per round
    rates: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "updates_per_round": self.n,
            "updates_per_s": round(self.rate, 1),
            "rounds_per_s": [round(rate, 1) for rate in self.rates],
            "note": self.note,
        }


@dataclass
class Target:
    """One target with its measured value; `below` targets pass under the line."""

    name: str
    value: float
    target: float
    unit: str  # "ms", "x" or "/s"
    below: bool = False

    @property
    def passed(self) -> bool:
        return self.value < self.target if self.below else self.value >= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "target": self.target,
            "unit": self.unit,
            "comparison": "<" if self.below else ">=",
            "passed": self.passed,
        }


@dataclass
class RidesReport:
    """Everything one run measured, its verdicts and checks. `updates` and `targets` are
    lists: append a row (and its target) for another way of absorbing updates."""

    config: RidesBenchConfig
    systems: dict[str, QuerySystem]
    speedup_p50: float
    speedup_p99: float
    updates: list[UpdateRow]
    targets: list[Target]
    checks: dict[str, Any]
    setup: dict[str, Any]
    seconds: float

    @property
    def all_passed(self) -> bool:
        checks = self.checks
        return all(t.passed for t in self.targets) and bool(
            checks["answers_equal"] and checks["positions_equal"]
        )

    def as_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "config": {
                "drivers": c.drivers,
                "unavailable": c.unavailable,
                "area": "40 km x 40 km around Berlin (52.52, 13.40), half normal (sigma 5 km)"
                " around the centre, half uniform",
                "queries_per_round": c.queries,
                "brute_queries_per_round": c.brute_queries,
                "rounds": c.rounds,
                "warm_up_rounds": 1,
                "updates_per_round": c.updates,
                "radius_m": c.radius_m,
                "limit": 1,
                "cell_deg": c.cell_deg,
                "seed": c.seed,
                "statistic": "median",
                "interleaved": True,
            },
            "setup": self.setup,
            "nearest": {key: system.as_json() for key, system in self.systems.items()},
            "speedup_p50": round(self.speedup_p50, 1),
            "speedup_p99": round(self.speedup_p99, 1),
            "updates": [row.as_json() for row in self.updates],
            "targets": [t.as_json() for t in self.targets],
            "checks": self.checks,
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 2),
        }

    def format(self) -> str:
        c = self.config
        lines = [
            "",
            f"nearest available driver (limit 1, radius {c.radius_m:,} m) among "
            f"{c.drivers:,} drivers, {c.unavailable:.0%} busy",
            f"{'system':<34} {'p50 ms':>9} {'p99 ms':>9}  rounds p50 / p99 (ms)",
            "-" * 91,
        ]
        for system in self.systems.values():
            rounds = "  ".join(f"{r.p50_ms:.3f}/{r.p99_ms:.3f}" for r in system.rounds)
            lines.append(
                f"{system.label:<34} {system.p50_ms:>9.3f} {system.p99_ms:>9.3f}  {rounds}"
            )
        lines += [
            f"speed-up: {self.speedup_p50:,.0f}x at p50, {self.speedup_p99:,.0f}x at p99 "
            f"(medians of {c.rounds} rounds of {c.queries:,} index and {c.brute_queries} "
            "brute-force queries, each timed alone)",
            "",
            f"{'location updates':<34} {'updates/s':>12} {'per round':>10}  rounds (/s)",
            "-" * 91,
        ]
        for row in self.updates:
            rounds = " ".join(f"{rate:,.0f}" for rate in row.rates)
            lines.append(f"{row.label:<34} {row.rate:>12,.0f} {row.n:>10,}  {rounds}")
            if row.note:
                lines.append(f"  {row.note}")
        lines += [
            "",
            f"{'target':<34} {'measured':>12} {'target':>12}  result",
            "-" * 91,
        ]
        for t in self.targets:
            lines.append(
                f"{t.name:<34} {_shown(t.value, t.unit):>12} "
                f"{('< ' if t.below else '>= ') + _shown(t.target, t.unit):>12}  {_verdict(t)}"
            )
        checks = self.checks
        lines += [
            "",
            f"answers: index = brute force on {checks['compared_queries']:,} pickups -> "
            f"{'OK' if checks['answers_equal'] else 'DIFFERENT'}; index after the updates "
            f"= final positions -> {'OK' if checks['positions_equal'] else 'DIFFERENT'}",
        ]
        return "\n".join(lines)


def _shown(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "x":
        return f"{value:,.0f}x"
    return f"{value:,.0f}{unit}"


def _verdict(t: Target) -> str:
    if t.passed:
        return "PASS"
    return f"MISS ({t.value / t.target - 1:+.0%})"


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


# ── the city ───────────────────────────────────────────────────────────────────────────


class _City:
    """Places in the square: half around the centre, half anywhere."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._km_per_deg_lon = KM_PER_DEG_LAT * math.cos(math.radians(CENTRE[0]))

    def offset_km(self) -> tuple[float, float]:
        rng = self._rng
        if rng.random() < 0.5:
            while True:
                north, east = rng.gauss(0.0, SIGMA_KM), rng.gauss(0.0, SIGMA_KM)
                if abs(north) <= HALF_SIDE_KM and abs(east) <= HALF_SIDE_KM:
                    return north, east
        return rng.uniform(-HALF_SIDE_KM, HALF_SIDE_KM), rng.uniform(-HALF_SIDE_KM, HALF_SIDE_KM)

    def place(self) -> Point:
        north, east = self.offset_km()
        return self.at(north, east)

    def at(self, north_km: float, east_km: float) -> Point:
        return CENTRE[0] + north_km / KM_PER_DEG_LAT, CENTRE[1] + east_km / self._km_per_deg_lon

    def moved(self, point: Point) -> Point:
        """A step of up to MOVE_KM north and east, kept inside the square."""
        rng = self._rng
        north = (point[0] - CENTRE[0]) * KM_PER_DEG_LAT + rng.uniform(-MOVE_KM, MOVE_KM)
        east = (point[1] - CENTRE[1]) * self._km_per_deg_lon + rng.uniform(-MOVE_KM, MOVE_KM)
        limit = HALF_SIDE_KM
        return self.at(max(-limit, min(limit, north)), max(-limit, min(limit, east)))


# ── the measurements ───────────────────────────────────────────────────────────────────


def _time_queries(
    pickups: list[Point], ask: Callable[[float, float], list[tuple[str, int]]]
) -> tuple[QueryRound, list[list[tuple[str, int]]]]:
    clock = time.perf_counter_ns
    latencies: list[float] = []
    answers: list[list[tuple[str, int]]] = []
    gc.collect()  # start each round from the same heap, not inside a pending collection
    for lat, lon in pickups:
        started = clock()
        answer = ask(lat, lon)
        latencies.append((clock() - started) / 1e6)
        answers.append(answer)
    latencies.sort()
    result = QueryRound(
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        mean_ms=statistics.fmean(latencies),
        n=len(latencies),
    )
    return result, answers


def _time_updates(index: GeoIndex, moves: list[tuple[str, float, float]]) -> float:
    update = index.update
    gc.collect()
    started = time.perf_counter()
    for key, lat, lon in moves:
        update(key, lat, lon)
    return len(moves) / (time.perf_counter() - started)


def _moves(
    city: _City,
    rng: random.Random,
    keys: list[str],
    positions: dict[str, Point],
    n: int,
    cell: float,
) -> tuple[list[tuple[str, float, float]], int]:
    """n moves of random drivers (positions follows them) and how many crossed a cell edge."""
    moves: list[tuple[str, float, float]] = []
    crossed = 0
    for _ in range(n):
        key = keys[rng.randrange(len(keys))]
        old = positions[key]
        new = city.moved(old)
        positions[key] = new
        moves.append((key, new[0], new[1]))
        crossed += (math.floor(old[0] / cell), math.floor(old[1] / cell)) != (
            math.floor(new[0] / cell),
            math.floor(new[1] / cell),
        )
    return moves, crossed


def run_rides_bench(config: RidesBenchConfig, progress: Progress = print) -> RidesReport:
    """Build the city, then measure queries and updates; see the module's docstring."""
    started = time.perf_counter()
    rng = random.Random(config.seed)
    city = _City(rng)
    keys = [f"driver-{number:06d}" for number in range(config.drivers)]
    positions = {key: city.place() for key in keys}
    busy = set(rng.sample(keys, round(config.drivers * config.unavailable)))

    def available(key: str) -> bool:
        return key not in busy

    index = GeoIndex(config.cell_deg)
    filled = time.perf_counter()
    for key, (lat, lon) in positions.items():
        index.update(key, lat, lon)
    fill_s = time.perf_counter() - filled
    setup = {
        "index_fill_s": round(fill_s, 3),
        "drivers": len(index),
        "busy": len(busy),
        "non_empty_cells": len(
            {
                (math.floor(lat / config.cell_deg), math.floor(lon / config.cell_deg))
                for lat, lon in positions.values()
            }
        ),
    }
    progress(
        f"  {config.drivers:,} drivers ({len(busy):,} busy) in {setup['non_empty_cells']:,} "
        f"cells of {config.cell_deg:g} degrees; index filled in {fill_s * 1000:.0f} ms"
    )

    radius = config.radius_m

    def by_index(lat: float, lon: float) -> list[tuple[str, int]]:
        return index.nearest(lat, lon, radius_m=radius, limit=1, accept=available)

    def by_scan(lat: float, lon: float) -> list[tuple[str, int]]:
        return brute_force_nearest(positions, lat, lon, radius_m=radius, limit=1, accept=available)

    systems = {
        "geo_index": QuerySystem("geo_index", f"GeoIndex.nearest ({config.cell_deg:g} deg cells)"),
        "brute_force": QuerySystem("brute_force", "brute_force_nearest (scan all)"),
    }
    plan: list[tuple[str, Callable[[float, float], list[tuple[str, int]]], int]] = [
        ("geo_index", by_index, config.queries),
        ("brute_force", by_scan, config.brute_queries),
    ]
    compared = 0
    equal = True
    for round_index in range(config.rounds + 1):
        warm_up = round_index == 0
        order = plan if round_index % 2 else plan[::-1]
        measured: dict[str, QueryRound] = {}
        for key, ask, count in order:
            if warm_up:
                count = max(count // 10, 1)
            pickups = [city.place() for _ in range(count)]
            result, answers = _time_queries(pickups, ask)
            measured[key] = result
            if key == "brute_force":
                # the same pickups through the index, untimed: the answers must agree
                for pickup, answer in zip(pickups, answers, strict=True):
                    compared += 1
                    equal &= by_index(*pickup) == answer
            if not warm_up:
                systems[key].rounds.append(measured[key])
        index_round, scan_round = measured["geo_index"], measured["brute_force"]
        label = "warm-up" if warm_up else f"round {round_index}/{config.rounds}"
        progress(
            f"  {label:<11} GeoIndex p50 {index_round.p50_ms:.3f} ms p99 "
            f"{index_round.p99_ms:.3f} ms ({index_round.n:,} q)   brute force p50 "
            f"{scan_round.p50_ms:.1f} ms p99 {scan_round.p99_ms:.1f} ms ({scan_round.n} q)   "
            f"{scan_round.p50_ms / index_round.p50_ms:,.0f}x"
        )
    pairs = list(zip(systems["geo_index"].rounds, systems["brute_force"].rounds, strict=True))
    speedup_p50 = statistics.median(s.p50_ms / i.p50_ms for i, s in pairs)
    speedup_p99 = statistics.median(s.p99_ms / i.p99_ms for i, s in pairs)

    pure = UpdateRow("geo_index_update", "GeoIndex.update (pure, in process)", config.updates)
    crossings: list[float] = []
    for round_index in range(config.rounds + 1):
        moves, crossed = _moves(city, rng, keys, positions, config.updates, config.cell_deg)
        rate = _time_updates(index, moves)
        crossings.append(crossed / len(moves))
        label = "warm-up" if round_index == 0 else f"round {round_index}/{config.rounds}"
        progress(
            f"  {label:<11} GeoIndex.update {rate:,.0f} updates/s ({len(moves):,} moves, "
            f"{crossed / len(moves):.1%} changed cell)"
        )
        if round_index:
            pure.rates.append(rate)
    pure.note = (
        f"random moves of up to {MOVE_KM * 1000:.0f} m per axis; "
        f"{statistics.median(crossings):.1%} of them changed cell"
    )
    positions_equal = len(index) == len(positions) and all(
        index.position(key) == position for key, position in positions.items()
    )

    targets = [
        Target("nearest p99 (GeoIndex)", systems["geo_index"].p99_ms, P99_TARGET_MS, "ms", True),
        Target("speed-up vs brute force (p50)", speedup_p50, SPEEDUP_TARGET, "x"),
        Target("updates/s (GeoIndex.update)", pure.rate, UPDATES_TARGET, "/s"),
    ]
    checks = {
        "compared_queries": compared,
        "answers_equal": equal,
        "positions_equal": positions_equal,
    }
    return RidesReport(
        config=config,
        systems=systems,
        speedup_p50=speedup_p50,
        speedup_p99=speedup_p99,
        updates=[pure],
        targets=targets,
        checks=checks,
        setup=setup,
        seconds=time.perf_counter() - started,
    )
