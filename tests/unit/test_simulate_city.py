"""The city-scale simulation's pure parts: its options, the fleet it makes and the
percentile it reports (splitgo/simulate_city_run.py)."""

from __future__ import annotations

import random

import pytest

from actors.rides.regions import parse
from splitgo.simulate_city_run import CITY_REGIONS, Fleet, parse_city, percentile


def test_the_defaults_are_the_issues_city() -> None:
    """20,000 drivers pinging every 5 s, 2,000 requests a minute, 3 nodes, 10 regions."""
    options = parse_city(["--city"])
    assert (options.drivers, options.ping_every, options.requests_per_minute) == (
        20_000,
        5.0,
        2_000,
    )
    assert options.nodes == 3
    assert len(parse(options.regions).regions) == 10


def test_a_rate_of_zero_is_refused() -> None:
    """Counts and rates must be above 0."""
    with pytest.raises(SystemExit):
        parse_city(["--city", "--requests-per-minute", "0"])


def test_the_fleet_stays_inside_the_regions() -> None:
    """Drivers start and move inside the regions' outer box."""
    regions = parse(CITY_REGIONS)
    fleet = Fleet.make(parse_city(["--city", "--drivers", "50"]), regions, seed=1)
    rng = random.Random(2)
    for user_id in fleet.drivers:
        for _ in range(20):
            lat, lon = fleet.move(user_id, rng)
            assert any(region.holds(lat, lon) for region in regions.regions)


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..100 is 50, p99 is 99, and nothing measured is 0."""
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 99) == 0.0
