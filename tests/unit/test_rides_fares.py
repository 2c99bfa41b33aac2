"""Fares, surge, the platform fee and distances: worked examples, refusals and hypothesis
properties."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.rides.fares import (
    FareTable,
    check_point,
    distance_m,
    duration_s,
    estimate,
    fare,
    platform_fee,
    surge_bp,
)
from actors.rides.messages import InvalidRide

# as many examples as the suite's Hypothesis profile asks (tests/conftest.py)
PROPERTY = settings(deadline=None)
TABLE = FareTable()

distances = st.integers(min_value=0, max_value=2_000_000)  # up to 2,000 km
durations = st.integers(min_value=0, max_value=200_000)
surges = st.integers(min_value=10_000, max_value=TABLE.surge_cap_bp)
latitudes = st.floats(min_value=-90.0, max_value=90.0)
longitudes = st.floats(min_value=-180.0, max_value=180.0)
points = st.tuples(latitudes, longitudes)
tables = st.builds(
    FareTable,
    base=st.integers(0, 2_000),
    per_km=st.integers(0, 1_000),
    per_minute=st.integers(0, 500),
    booking_fee=st.integers(0, 1_000),
    minimum=st.integers(0, 5_000),
    city_speed_kmh=st.integers(1, 120),
    surge_cap_bp=st.integers(10_000, 50_000),
    platform_fee_bp=st.integers(0, 10_000),
)


def field_of(caught: pytest.ExceptionInfo[InvalidRide]) -> Any:
    return caught.value.details.get("field")


# ── worked examples ────────────────────────────────────────────────────────────────────


def test_a_five_km_trip_without_surge() -> None:
    """A 5 km trip takes 12 minutes, costs 1,300 with the booking fee and carries a 260 platform
    fee."""
    # 5 km at 25 km/h is 12 minutes: 250 + 5 * 120 + 12 * 25 = 1,150, + 150 booking fee
    assert duration_s(5_000, TABLE) == 720
    assert fare(5_000, 720, 10_000, TABLE) == 1_300
    assert platform_fee(1_300, TABLE) == 260


def test_the_minimum_fare() -> None:
    """Short and zero-length trips are lifted to the 700 minimum fare, and any non-zero trip lasts
    at least a minute."""
    # 500 m: 250 + 60 + 2 minutes * 25 = 360, + 150 = 510, lifted to the 700 minimum
    assert duration_s(500, TABLE) == 72
    assert fare(500, 72, 10_000, TABLE) == 700
    assert fare(0, 0, 10_000, TABLE) == 700
    assert duration_s(0, TABLE) == 0
    assert duration_s(1, TABLE) == 60  # any trip at least a minute


def test_surge_is_capped_and_the_booking_fee_is_not_surged() -> None:
    """Surge grows with unmet demand per driver, is capped at 2.5x and leaves the booking fee
    unsurged, with fares and fees rounded half up."""
    assert surge_bp(0, 0, TABLE) == 10_000
    assert surge_bp(10, 10, TABLE) == 10_000
    assert surge_bp(12, 10, TABLE) == 11_000  # 2 missing / 10 drivers * 0.5
    assert surge_bp(15, 10, TABLE) == 12_500
    assert surge_bp(7, 3, TABLE) == 16_666  # integer division, never a float
    assert surge_bp(100, 10, TABLE) == 25_000  # capped at 2.5x
    assert surge_bp(1, 0, TABLE) == 15_000  # no driver at all counts as one
    assert surge_bp(1_000, 0, TABLE) == 25_000
    # 1,150 metered * 2.5 = 2,875, + 150 booking fee unsurged = 3,025 (not 3,250)
    assert fare(5_000, 720, 25_000, TABLE) == 3_025
    # 1,150 * 1.0001 = 1,150.115 -> 1,150
    assert fare(5_000, 720, 10_001, TABLE) == 1_150 + 150
    # 250 + 0.12 (1 m) + 0 = 250.12 -> 250; with 5 m, 250.6 -> 251 (rounded half up)
    table = FareTable(minimum=0, booking_fee=0)
    assert fare(1, 0, 10_000, table) == 250
    assert fare(5, 0, 10_000, table) == 251
    assert fare(1, 0, 20_000, FareTable(minimum=0, booking_fee=0, base=0, per_km=2_500)) == 5
    bare = FareTable(minimum=0, booking_fee=0, base=0, per_km=100)
    assert fare(5, 0, 10_000, bare) == 1  # exactly 0.5 -> 1
    assert fare(15, 0, 10_000, bare) == 2  # exactly 1.5 -> 2 (half up, not to even)
    assert platform_fee(5, FareTable(platform_fee_bp=1_000)) == 1  # exactly 0.5 -> 1
    assert platform_fee(3, table) == 1  # 0.6 -> 1, half up
    assert platform_fee(2, table) == 0  # 0.4 -> 0
    assert platform_fee(1, FareTable(platform_fee_bp=10_000)) == 1


def test_estimate_and_known_distances() -> None:
    """Distances match known great-circle values, including across the antimeridian, and an estimate
    combines distance, duration and fare."""
    berlin, paris = (52.5200, 13.4050), (48.8566, 2.3522)
    assert 877_000 < distance_m(berlin, paris) < 879_000  # ~878 km great circle
    assert distance_m((0.0, 0.0), (0.0, 1.0)) == 111_195  # one degree of the equator
    assert distance_m((90.0, 0.0), (-90.0, 0.0)) == round(math.pi * 6_371_008.8)
    assert distance_m((0.0, 179.5), (0.0, -179.5)) == 111_195  # across the antimeridian
    amount, distance, duration = estimate(berlin, (52.5200, 13.4788), 10_000, TABLE)
    assert distance == distance_m(berlin, (52.5200, 13.4788))
    assert duration == duration_s(distance, TABLE)
    assert amount == fare(distance, duration, 10_000, TABLE)


def test_check_point_refusals_name_the_field() -> None:
    """Valid coordinates become floats, while out-of-range, non-finite or non-numeric ones are
    refused naming the exact lat or lon field."""
    assert check_point(52, 13, "pickup") == (52.0, 13.0)
    assert check_point(-90.0, 180.0, "pickup") == (-90.0, 180.0)
    cases: list[tuple[Any, Any, str]] = [
        (90.5, 0.0, "pickup.lat"),
        (-91, 0.0, "pickup.lat"),
        (0.0, 180.01, "pickup.lon"),
        (0.0, -181, "pickup.lon"),
        (math.nan, 0.0, "pickup.lat"),
        (0.0, math.inf, "pickup.lon"),
        (-math.inf, 0.0, "pickup.lat"),
        (True, 0.0, "pickup.lat"),
        (0.0, False, "pickup.lon"),
        ("52.5", 0.0, "pickup.lat"),
        (None, 0.0, "pickup.lat"),
        (0.0, 10**400, "pickup.lon"),
    ]
    for lat, lon, field in cases:
        with pytest.raises(InvalidRide) as caught:
            check_point(lat, lon, "pickup")
        assert field_of(caught) == field
        assert caught.value.code == "invalid_ride"
    with pytest.raises(InvalidRide) as caught:
        estimate((0.0, 0.0), (0.0, 200.0), 10_000, TABLE)
    assert field_of(caught) == "dropoff.lon"


def test_bad_tables_and_arguments_are_refused() -> None:
    """Fare tables with invalid settings and negative distances, durations, demand or amounts are
    refused with a ValueError."""
    for changes in (
        {"currency": "eur"},
        {"base": -1},
        {"per_km": 1.5},
        {"city_speed_kmh": 0},
        {"surge_cap_bp": 9_999},
        {"platform_fee_bp": 10_001},
    ):
        with pytest.raises(ValueError, match="must"):
            FareTable(**changes)
    with pytest.raises(ValueError, match="negative"):
        fare(-1, 0, 10_000, TABLE)
    with pytest.raises(ValueError, match="negative"):
        duration_s(-1, TABLE)
    with pytest.raises(ValueError, match="negative"):
        surge_bp(-1, 0, TABLE)
    with pytest.raises(ValueError, match="negative"):
        platform_fee(-1, TABLE)


# ── properties ─────────────────────────────────────────────────────────────────────────


@PROPERTY
@given(table=tables, distance=distances, duration=durations, surge=st.integers(0, 60_000))
def test_fare_is_the_exact_formula_rounded_half_up(table, distance, duration, surge) -> None:
    """The fare is the exact surged metered price rounded half up, plus the booking fee, and never
    below the minimum."""
    exact = (
        Fraction(table.base)
        + Fraction(table.per_km * distance, 1_000)
        + Fraction(table.per_minute * duration, 60)
    ) * Fraction(surge, 10_000)
    rounded = math.floor(exact + Fraction(1, 2))
    amount = fare(distance, duration, surge, table)
    assert type(amount) is int
    assert amount == max(rounded + table.booking_fee, table.minimum)
    assert amount >= table.minimum


@PROPERTY
@given(
    table=tables,
    distance=distances,
    duration=durations,
    surge=surges,
    more=st.tuples(st.integers(0, 50_000), st.integers(0, 5_000), st.integers(0, 20_000)),
)
def test_fare_never_decreases_in_distance_duration_or_surge(
    table, distance, duration, surge, more
) -> None:
    """More distance, more time or more surge never lowers the fare."""
    more_distance, more_duration, more_surge = more
    amount = fare(distance, duration, surge, table)
    assert fare(distance + more_distance, duration, surge, table) >= amount
    assert fare(distance, duration + more_duration, surge, table) >= amount
    assert fare(distance, duration, surge + more_surge, table) >= amount
    assert amount >= table.minimum


@PROPERTY
@given(table=tables, demand=st.integers(0, 10_000), supply=st.integers(0, 10_000))
def test_surge_stays_between_none_and_the_cap(table, demand, supply) -> None:
    """Surge is an integer between 1x and the cap that rises with demand and falls with supply."""
    surge = surge_bp(demand, supply, table)
    assert type(surge) is int
    assert 10_000 <= surge <= table.surge_cap_bp
    assert surge_bp(demand + 1, supply, table) >= surge  # more demand never lowers it
    assert surge_bp(demand, supply + 1, table) <= surge  # more drivers never raise it


@PROPERTY
@given(table=tables, amount=st.integers(0, 10**12))
def test_platform_fee_is_a_rounded_share_of_the_amount(table, amount) -> None:
    """The platform fee is an integer within half a unit of its exact share and never exceeds the
    amount."""
    fee = platform_fee(amount, table)
    assert type(fee) is int
    assert 0 <= fee <= amount
    exact = Fraction(amount * table.platform_fee_bp, 10_000)
    assert abs(fee - exact) <= Fraction(1, 2)


@PROPERTY
@given(distance=distances, table=tables)
def test_duration_is_rounded_up_at_city_speed(distance, table) -> None:
    """The duration is the time at city speed rounded up to whole seconds, at least a minute for any
    distance and zero for none."""
    seconds = duration_s(distance, table)
    assert type(seconds) is int
    exact = Fraction(distance * 3_600, table.city_speed_kmh * 1_000)
    assert seconds >= exact
    assert seconds == (max(math.ceil(exact), 60) if distance else 0)


@PROPERTY
@given(a=points, b=points, c=points)
def test_distance_is_a_metric_within_rounding(a, b, c) -> None:
    """Distance is a symmetric integer, zero to itself, at most half the Earth's circumference, and
    obeys the triangle inequality within rounding."""
    ab = distance_m(a, b)
    assert type(ab) is int
    assert ab == distance_m(b, a)
    assert distance_m(a, a) == 0
    assert 0 <= ab <= round(math.pi * 6_371_008.8)
    # each of the three distances is rounded to the metre: at most 1.5 m of slack
    assert distance_m(a, c) <= ab + distance_m(b, c) + 1


@PROPERTY
@given(lat=latitudes, lon=longitudes, step=st.floats(1e-6, 1e-2))
def test_close_points_are_close(lat, lon, step) -> None:
    """A small step north is about step * 111,195 m (the meridian), anywhere."""
    north = min(lat + step, 90.0)
    assert abs(distance_m((lat, lon), (north, lon)) - (north - lat) * 111_195.08) <= 1


@PROPERTY
@given(
    lat=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text()),
    lon=longitudes,
)
def test_check_point_accepts_exactly_the_places_on_earth(lat, lon) -> None:
    """check_point accepts exactly finite float latitudes within range and refuses all else naming
    the lat field."""
    valid = isinstance(lat, float) and math.isfinite(lat) and -90.0 <= lat <= 90.0
    if valid:
        assert check_point(lat, lon, "at") == (lat, lon)
    else:
        with pytest.raises(InvalidRide) as caught:
            check_point(lat, lon, "at")
        assert field_of(caught) == "at.lat"
