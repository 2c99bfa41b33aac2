"""CPU of the rides' per-ping and per-request pure steps in a city of regions, by process
time (so a machine shared with other work does not skew it): what a region shard does for
every ping and every request besides IO.

    .venv/bin/python -m tests.bench.rides_region_bench [--points 200000] [--rounds 5]

Steps, each timed over the same random points of the city's box (`grid:2x5` over Berlin,
border 1 km) and reported as the median of `--rounds` in µs per item:

- `decode_ping`: a msgpack `UpdateLocations` of 1,000 pings decoded (with its bounds
  check), per ping;
- `region_of`: the region owning a point, given the shard's own region when the code takes
  a hint (the shard hands it on);
- `near`: the neighbours a driver is near (the border feed, per pinged free driver);
- `surge_supply`: the available drivers within 2 km of a pickup among 20,000 (per request;
  counted up to demand + 1 = 2 where the code can stop early).

Run it in two trees to compare them (a tree without the hint or `at_most` is timed without).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import msgspec

from actors.rides.dispatch import GeoIndex
from actors.rides.messages import DriverPing, UpdateLocations
from actors.rides.regions import parse

CITY = "grid:2x5@52.3,13.0,52.7,13.8"


def timed(rounds: int, items: int, step: Callable[[], object]) -> float:
    """The median over `rounds` of `step`'s process time, in µs per item."""
    spent = []
    for _ in range(rounds):
        started = time.process_time()
        step()
        spent.append((time.process_time() - started) / items * 1e6)
    return statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000, help="at least 22,000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.points < 22_000:
        parser.error("--points must be at least 22,000 (20,000 drivers and 2,000 pickups)")
    rng = random.Random(7)
    regions = parse(CITY, border_m=1_000)
    points = [(rng.uniform(52.3, 52.7), rng.uniform(13.0, 13.8)) for _ in range(args.points)]
    owners = [regions.region_of(lat, lon) for lat, lon in points]
    placed = list(zip(points, owners, strict=True))  # each point with the shard's own region
    hinted = "hint" in regions.region_of.__code__.co_varnames
    results: dict[str, float] = {}

    pings = [
        DriverPing(user_id=f"driver-{i}", lat=lat, lon=lon)
        for i, (lat, lon) in enumerate(points[:1_000])
    ]
    data = msgspec.msgpack.encode(UpdateLocations(pings=pings))
    decoder = msgspec.msgpack.Decoder(UpdateLocations)
    batches = max(1, args.points // 1_000)
    results["decode_ping"] = timed(
        args.rounds, batches * 1_000, lambda: [decoder.decode(data) for _ in range(batches)]
    )

    if hinted:
        results["region_of"] = timed(
            args.rounds,
            len(points),
            lambda: [regions.region_of(lat, lon, o) for (lat, lon), o in placed],
        )
        results["near"] = timed(
            args.rounds,
            len(points),
            lambda: [regions.near(lat, lon, o) for (lat, lon), o in placed],
        )
    else:
        results["region_of"] = timed(
            args.rounds, len(points), lambda: [regions.region_of(lat, lon) for lat, lon in points]
        )
        results["near"] = timed(
            args.rounds, len(points), lambda: [regions.near(lat, lon) for lat, lon in points]
        )

    index = GeoIndex()
    for number, (lat, lon) in enumerate(points[:20_000]):
        index.update(f"d{number}", lat, lon)
    pickups = points[20_000:22_000]
    early = "at_most" in index.count_within.__code__.co_varnames

    def supply() -> None:
        for lat, lon in pickups:
            if early:
                index.count_within(lat, lon, 2_000, at_most=2)
            else:
                index.count_within(lat, lon, 2_000)

    results["surge_supply"] = timed(args.rounds, len(pickups), supply)
    print(
        "rides-region-bench: "
        + " ".join(f"{name}_us={value:.2f}" for name, value in results.items())
        + f" hinted={hinted} early={early}",
        flush=True,
    )


if __name__ == "__main__":
    main()
