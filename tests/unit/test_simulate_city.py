"""The city-scale simulation's pure parts: its options, the fleet it makes and the
percentile it reports (splitgo/simulate_city_run.py)."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from actors.rides.regions import parse
from splitgo.simulate_city import cpu_spent
from splitgo.simulate_city_run import CITY_REGIONS, Fleet, cpu_seconds, parse_city, percentile


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


def test_profile_is_off_unless_asked() -> None:
    """--profile runs the nodes under the CPU-time profiler; without it they run bare."""
    assert not parse_city(["--city"]).profile
    assert parse_city(["--city", "--profile"]).profile


def test_cpu_seconds_of_a_process_and_of_one_that_is_gone() -> None:
    """A running process has used some CPU; a process that exited counts 0."""
    sum(i * i for i in range(200_000))  # some CPU of our own
    assert cpu_seconds(os.getpid()) > 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert cpu_seconds(child.pid) == 0.0


def test_cpu_spent_sums_one_kind_between_two_readings() -> None:
    """The difference per process, summed over the processes of the kind asked; a process
    first seen in the second reading counts from 0."""
    before = {"node:1": 2.0, "node:2": 1.0, "pg:9": 5.0}
    after = {"node:1": 3.5, "node:2": 1.5, "node:3": 0.5, "pg:9": 6.0}
    assert cpu_spent(before, after, "node:") == pytest.approx(2.5)
    assert cpu_spent(before, after, "pg:") == pytest.approx(1.0)
