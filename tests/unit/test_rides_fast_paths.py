"""The rides' per-ping and per-request shortcuts give the answers of the long way round:
`region_of` and `near` with a hint and the core boxes, `count_within` stopping early, the
pings' one-loop bounds check and `check_point`'s one-test case (actors/rides)."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.rides import fares
from actors.rides.dispatch import GeoIndex
from actors.rides.messages import (
    REGION_NAME_MAX,
    BorderDriver,
    BorderDrivers,
    DriverPing,
    InvalidRide,
    UpdateLocations,
    border_feed_plainly_fine,
    pings_plainly_fine,
)
from actors.rides.regions import METRES_PER_DEGREE, NAME, parse
from actors.runtime.bounds import ID_MAX, check_bounds

latitudes = st.floats(min_value=-90, max_value=90, allow_nan=False)
longitudes = st.floats(min_value=-180, max_value=180, allow_nan=False)
settings = st.sampled_from(
    [
        "west=52.3,13.0,52.7,13.4;east=52.3,13.4,52.7,13.8;far=40,0,41,1",
        "grid:2x5",
        "grid:2x5@52.3,13.0,52.7,13.8",
        "a=0,0,10,10;b=5,5,15,15",
    ]
)


def exact_near(text: str, border_m: int, lat: float, lon: float) -> tuple[int, ...]:
    """The other boxes within the border distance, by measuring to every box."""
    regions = parse(text, border_m=border_m)
    owner = regions.region_of(lat, lon)
    return tuple(
        i
        for i, region in enumerate(regions.regions)
        if i != owner and region.distance_m(lat, lon) <= border_m
    )


@given(settings, latitudes, longitudes, st.integers(min_value=0, max_value=9))
def test_a_hint_never_changes_the_owner_or_the_neighbours(
    text: str, lat: float, lon: float, hint: int
) -> None:
    """`region_of` and `near` answer the same whichever region is hinted."""
    regions = parse(text)
    hint %= len(regions.regions)
    assert regions.region_of(lat, lon, hint) == regions.region_of(lat, lon)
    assert regions.near(lat, lon, hint) == regions.near(lat, lon)


@given(
    settings,
    st.integers(min_value=0, max_value=9),
    st.sampled_from([0, 1_000, 50_000]),
    st.floats(min_value=-1e-6, max_value=1e-6, allow_nan=False),
    st.floats(min_value=0, max_value=1, allow_nan=False),
)
def test_points_at_the_edge_of_a_core_are_measured_exactly(
    text: str, index: int, border_m: int, nudge: float, along: float
) -> None:
    """Just inside and just outside the line `border_m` within a box, `near` names what
    measuring to every box names (the core box spares only the points deep inside)."""
    regions = parse(text, border_m=border_m)
    region = regions.regions[index % len(regions.regions)]
    lat = region.south + border_m / METRES_PER_DEGREE + nudge
    lon = region.west + along * (region.east - region.west)
    if -90 <= lat <= 90:
        assert regions.near(lat, lon) == exact_near(text, border_m, lat, lon)


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=52.40, max_value=52.60, allow_nan=False),
            st.floats(min_value=13.30, max_value=13.50, allow_nan=False),
        ),
        max_size=60,
    ),
    st.integers(min_value=0, max_value=40),
    st.sampled_from([500, 2_000, 10_000]),
)
def test_counting_up_to_a_number_is_the_count_capped_there(
    points: list[tuple[float, float]], at_most: int, radius_m: int
) -> None:
    """count_within(at_most=n) is min(count_within(), n), with or without a filter."""
    index = GeoIndex()
    for number, (lat, lon) in enumerate(points):
        index.update(f"d{number}", lat, lon)

    def even(key: str) -> bool:
        return int(key[1:]) % 2 == 0

    for accept in (None, even):
        full = (
            index.count_within(52.5, 13.4, radius_m)
            if accept is None
            else index.count_within(52.5, 13.4, radius_m, accept)
        )
        capped = (
            index.count_within(52.5, 13.4, radius_m, at_most=at_most)
            if accept is None
            else index.count_within(52.5, 13.4, radius_m, accept, at_most=at_most)
        )
        assert capped == min(full, at_most)


def test_plain_pings_pass_the_one_loop_check() -> None:
    """A batch of ordinary pings is plainly fine, and the full check agrees."""
    pings = [DriverPing(user_id=f"d{i}", lat=52.5, lon=13.4 + i / 1000) for i in range(50)]
    assert pings_plainly_fine(pings)
    check_bounds(UpdateLocations(pings=pings), InvalidRide)


@pytest.mark.parametrize(
    ("ping", "field"),
    [
        (DriverPing(user_id="d1", lat=91.0, lon=13.4), "$.pings[1].lat"),
        (DriverPing(user_id="d1", lat=52.5, lon=math.nan), "$.pings[1].lon"),
        (DriverPing(user_id="d1", lat=math.inf, lon=13.4), "$.pings[1].lat"),
        (DriverPing(user_id="", lat=52.5, lon=13.4), "$.pings[1].user_id"),
        (DriverPing(user_id="a\x00b", lat=52.5, lon=13.4), "$.pings[1].user_id"),
        (DriverPing(user_id="x" * 201, lat=52.5, lon=13.4), "$.pings[1].user_id"),
    ],
)
def test_a_ping_out_of_bounds_is_refused_naming_its_field(ping: DriverPing, field: str) -> None:
    """The one-loop check lets nothing through: the full check refuses, naming the field."""
    good = DriverPing(user_id="d0", lat=52.5, lon=13.4)
    assert not pings_plainly_fine([good, ping])
    with pytest.raises(InvalidRide) as refused:
        UpdateLocations(pings=[good, ping])
    assert refused.value.details == {"field": field}


def test_a_whole_number_of_degrees_takes_the_full_check_and_passes() -> None:
    """An int degree is not 'plainly' fine (not a float), but within bounds it is taken."""
    ping = DriverPing(user_id="d0", lat=52, lon=13)
    assert not pings_plainly_fine([ping])
    assert UpdateLocations(pings=[ping]).pings == [ping]


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(52.5, 13.4), (90.0, -180.0), (-90.0, 180.0), (52, 13), (0.0, 0)],
)
def test_check_point_returns_the_floats_of_a_place(lat: float, lon: float) -> None:
    """A place on Earth comes back as floats, by the one test or the long way."""
    assert fares.check_point(lat, lon, "$") == (float(lat), float(lon))
    assert all(type(value) is float for value in fares.check_point(lat, lon, "$"))


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [
        (math.nan, 13.4, "$.lat"),
        (52.5, math.inf, "$.lon"),
        (90.5, 13.4, "$.lat"),
        (52.5, -180.5, "$.lon"),
        (True, 13.4, "$.lat"),
    ],
)
def test_check_point_refuses_what_is_no_place(lat: float, lon: float, field: str) -> None:
    """NaN, inf, out of range and bool are refused naming the field, as before."""
    with pytest.raises(InvalidRide) as refused:
        fares.check_point(lat, lon, "$")
    assert refused.value.details == {"field": field}


@given(
    st.floats(min_value=52.25, max_value=52.75, allow_nan=False),
    st.floats(min_value=12.95, max_value=13.85, allow_nan=False),
    st.sampled_from([0, 500, 1_000, 20_000]),
)
def test_near_inside_a_city_grid_names_what_measuring_names(
    lat: float, lon: float, border_m: int
) -> None:
    """Over the city's ten boxes (and just around them), `near` (core boxes, then only
    the boxes close enough to the owner's) names what measuring to every box names."""
    text = "grid:2x5@52.3,13.0,52.7,13.8"
    assert parse(text, border_m=border_m).near(lat, lon) == exact_near(text, border_m, lat, lon)


def test_a_border_feed_passes_the_one_loop_check_and_a_bad_one_is_refused() -> None:
    """A usual border feed is taken; a position out of range or an id with NUL is
    refused naming its field, as the full check names it."""
    near = [BorderDriver(user_id=f"d{i}", lat=52.5, lon=13.4) for i in range(20)]
    feed = BorderDrivers(region="r0c1", near=near, gone=["d99"])
    check_bounds(feed, InvalidRide)
    far_off = BorderDriver(user_id="x", lat=95.0, lon=13.4)
    with pytest.raises(InvalidRide) as refused:
        BorderDrivers(region="r0c1", near=[*near, far_off], gone=[])
    assert refused.value.details == {"field": "$.near[20].lat"}
    with pytest.raises(InvalidRide) as refused:
        BorderDrivers(region="r0c1", near=near, gone=["ok", "a\x00b"])
    assert refused.value.details == {"field": "$.gone[1]"}
    with pytest.raises(InvalidRide) as refused:
        BorderDrivers(region="r" * 33, near=near, gone=[])
    assert refused.value.details == {"field": "$.region"}


def _past(bound: float, away: float) -> float:
    """The next float after `bound`, going towards `away`."""
    return math.nextafter(bound, away)


def _accepted(kind: type, fields: dict[str, object]) -> bool:
    """Whether msgspec takes `fields` as a `kind` (its annotations' bounds, then ours)."""
    try:
        msgspec.convert(fields, kind)
    except msgspec.ValidationError:
        return False
    return True


_PING = {"user_id": "d1", "lat": 52.5, "lon": 13.4}


@pytest.mark.parametrize(
    "changed",
    [
        {"user_id": "x" * ID_MAX},
        {"user_id": "x" * (ID_MAX + 1)},
        {"user_id": "x"},
        {"user_id": ""},
        *({"lat": v} for v in (-90.0, _past(-90.0, -91), 90.0, _past(90.0, 91))),
        *({"lon": v} for v in (-180.0, _past(-180.0, -181), 180.0, _past(180.0, 181))),
    ],
)
def test_the_one_loop_ping_check_and_the_message_agree_at_each_bound(
    changed: dict[str, object],
) -> None:
    """At and just past each bound of a ping's id, latitude and longitude, the one-loop
    check passes exactly what msgspec's decoding of a `DriverPing` takes."""
    fields = {**_PING, **changed}
    ping = DriverPing(**fields)  # type: ignore[arg-type]
    assert pings_plainly_fine([ping]) == _accepted(DriverPing, fields)


@pytest.mark.parametrize("length", [REGION_NAME_MAX, REGION_NAME_MAX + 1])
def test_the_one_loop_feed_check_and_the_message_agree_on_the_region_name(length: int) -> None:
    """At and just past the longest region name, the border feed's one-loop check passes
    exactly what msgspec's decoding of a `BorderDrivers` takes, and a region's name in
    the setting is at most that long."""
    region = "r" * length
    fields: dict[str, object] = {"region": region, "near": [], "gone": []}
    assert border_feed_plainly_fine(region, [], []) == _accepted(BorderDrivers, fields)
    assert bool(NAME.fullmatch(region)) == (length <= REGION_NAME_MAX)
