"""Rides by region, the pure rules: the setting's forms, the region owning a point, border
membership and the route's keys (actors/rides/regions.py)."""

from __future__ import annotations

import math
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.rides.messages import (
    AnswerOffer,
    DriverPing,
    EstimateRide,
    GetRide,
    Point,
    RequestRide,
    UpdateLocation,
    UpdateLocations,
)
from actors.rides.regional import Territory
from actors.rides.regions import (
    DESKS,
    METRES_PER_DEGREE,
    REACH_SLACK,
    Region,
    RegionsError,
    parse,
    reach_degrees,
)
from actors.rides.store import DriverWhereabouts
from splitgo.composition import ride_regions, rides_spec
from splitgo.config import ConfigError, load

# two boxes side by side along 13.4°E, a gap north of them, and one overlapping box
BERLIN = "west=52.3,13.0,52.7,13.4;east=52.3,13.4,52.7,13.8;far=40,0,41,1"

latitudes = st.floats(min_value=-90, max_value=90, allow_nan=False)
longitudes = st.floats(min_value=-180, max_value=180, allow_nan=False)
settings = st.sampled_from(
    [BERLIN, "grid:2x5", "grid:3x3@52.3,13.0,52.7,13.8", "a=0,0,10,10;b=5,5,15,15"]
)


def test_empty_setting_is_one_world_region_on_one_shard() -> None:
    """Without regions the rides actor is one shard keyed 'dispatch', as before."""
    regions = parse("")
    assert not regions.regional
    assert regions.shards == 1
    assert regions.key(UpdateLocation(user_id="d", lat=1, lon=2)) == "dispatch"


def test_named_boxes_and_grids_parse() -> None:
    """Named boxes keep their order; a grid names its cells row by row."""
    assert [r.name for r in parse(BERLIN).regions] == ["west", "east", "far"]
    grid = parse("grid:2x5")
    assert [r.name for r in grid.regions][:6] == ["r0c0", "r0c1", "r0c2", "r0c3", "r0c4", "r1c0"]
    assert grid.shards == 10 + DESKS
    assert grid.regions[-1].north == 90
    assert grid.regions[-1].east == 180


@pytest.mark.parametrize(
    "text",
    [
        "grid:0x3",
        "west=52,13,52,14",  # south == north
        "west=52,13,53",
        "Bad Name=1,2,3,4",
        "a=1,2,3,4;a=5,6,7,8",
        "a=1,2,3,nan",
        "a=-91,0,1,1",
        ";",
    ],
)
def test_wrong_settings_say_what_is_wrong(text: str) -> None:
    """A wrong setting is refused with a RegionsError, never half taken."""
    with pytest.raises(RegionsError):
        parse(text)


def test_a_point_belongs_to_the_box_holding_it_and_the_west_edge_is_inside() -> None:
    """Boxes are half-open: 13.4°E is the east box's, 13.3999°E the west box's."""
    regions = parse(BERLIN)
    assert regions.region_of(52.5, 13.3999) == 0
    assert regions.region_of(52.5, 13.4) == 1
    assert regions.region_of(40.5, 0.5) == 2


def test_a_point_in_no_box_belongs_to_the_nearest() -> None:
    """North of the Berlin boxes goes to the nearer of them; far away to 'far'."""
    regions = parse(BERLIN)
    assert regions.region_of(53.0, 13.7) == 1
    assert regions.region_of(53.0, 13.1) == 0
    assert regions.region_of(39.0, 0.5) == 2


def test_border_membership_is_within_the_distance_of_a_neighbours_edge() -> None:
    """500 m west of 13.4°E is near the east region (1 km border); 5 km west is not."""
    regions = parse(BERLIN, border_m=1_000)
    assert regions.near(52.5, 13.4 - 0.007) == (1,)  # about 475 m
    assert regions.near(52.5, 13.4 - 0.07) == ()
    assert regions.near(52.5, 13.4 + 0.007) == (0,)
    assert parse(BERLIN, border_m=0).near(52.5, 13.4 - 0.007) == ()


@given(settings, latitudes, longitudes)
def test_every_point_has_exactly_one_owning_region(text: str, lat: float, lon: float) -> None:
    """Whatever the boxes, region_of names one region; a box holding the point is it, or
    the first such box when boxes overlap; a neighbour is never the owner."""
    regions = parse(text)
    owner = regions.region_of(lat, lon)
    holding = [i for i, region in enumerate(regions.regions) if region.holds(lat, lon)]
    assert 0 <= owner < len(regions.regions)
    if holding:
        assert owner == holding[0]
    assert owner not in regions.near(lat, lon)


@given(
    settings,
    st.floats(min_value=-60, max_value=60, allow_nan=False),
    longitudes,
    st.sampled_from([0, 1_000, 50_000]),
)
def test_near_names_every_other_box_within_the_border_distance(
    text: str, lat: float, lon: float, border_m: int
) -> None:
    """`near` (which skips points deep inside a box none overlaps) names exactly the other
    boxes within the border distance, as measuring to every box does."""
    regions = parse(text, border_m=border_m)
    owner = regions.region_of(lat, lon)
    measured = tuple(
        i
        for i, region in enumerate(regions.regions)
        if i != owner and region.distance_m(lat, lon) <= border_m
    )
    assert regions.near(lat, lon) == measured


@given(latitudes, longitudes)
def test_a_grid_over_the_world_leaves_no_gap(lat: float, lon: float) -> None:
    """Every point but the north pole and the antimeridian lies inside exactly one cell."""
    regions = parse("grid:2x5")
    holding = [r for r in regions.regions if r.holds(lat, lon)]
    assert len(holding) == (0 if lat == 90 or lon == 180 else 1)


@given(st.integers(min_value=2, max_value=40))
def test_each_regions_key_lands_on_its_own_shard(count: int) -> None:
    """The key of region i routes (CRC-32 modulo the shards) to shard i, desks after."""
    regions = parse(f"grid:1x{count}")
    for index in range(regions.shards):
        key = regions.key_of(index)
        assert zlib.crc32(key.encode()) % regions.shards == index


def test_messages_go_to_the_region_of_their_place_or_to_a_desk() -> None:
    """A ping by its place (many pings by the first one's), a request and an estimate by
    the pickup; a ride by id to a desk."""
    regions = parse(BERLIN)
    west, east = Point(lat=52.5, lon=13.3), Point(lat=52.5, lon=13.5)
    assert regions.key(UpdateLocation(user_id="d", lat=52.5, lon=13.5)) == regions.key_of(1)
    assert regions.key(EstimateRide(pickup=west, dropoff=east)) == regions.key_of(0)
    request = RequestRide(ride_id="r", user_id="u", pickup=east, dropoff=west)
    assert regions.key(request) == regions.key_of(1)
    pings = [
        DriverPing(user_id="d", lat=52.5, lon=13.5),
        DriverPing(user_id="e", lat=52.5, lon=13.3),
    ]
    assert regions.key(UpdateLocations(pings=pings)) == regions.key_of(1)  # the first's place
    assert regions.key(UpdateLocations(pings=[])) == regions.key_of(0)
    for message in (
        GetRide(ride_id="r", user_id="u"),
        AnswerOffer(ride_id="r", user_id="d", accept=True),
    ):
        assert regions.is_desk(int(regions.key(message).split("-")[1].split(".")[0]))


def test_the_node_shards_rides_as_the_setting_says() -> None:
    """SPLITGO_RIDE_REGIONS makes a rides shard per region and two desks; empty, one."""
    regions = ride_regions(load({"SPLITGO_RIDE_REGIONS": "grid:2x5@52.3,13.0,52.7,13.8"}))
    assert rides_spec(regions).shards == 10 + DESKS
    assert rides_spec(ride_regions(load({}))).shards == 1


def test_a_wrong_region_setting_stops_the_node_with_its_name() -> None:
    """A wrong SPLITGO_RIDE_REGIONS is a ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="SPLITGO_RIDE_REGIONS"):
        ride_regions(load({"SPLITGO_RIDE_REGIONS": "grid:0x2"}))


@given(settings, latitudes, longitudes, st.booleans())
def test_every_shard_names_the_same_owner_of_a_driver(
    text: str, lat: float, lon: float, on_a_ride: bool
) -> None:
    """Each region and each desk names the same region holding a driver: its ride's
    pickup region when it has one in hand, else its position's."""
    regions = parse(text)
    at = 0.5 if on_a_ride else None  # the ride's pickup, when it has one
    answers = {
        Territory(regions, shard).owner_of_driver(None, at, at, lat, lon)
        for shard in range(regions.shards)
    }
    expected = regions.region_of(0.5, 0.5) if on_a_ride else regions.region_of(lat, lon)
    assert answers == {expected}
    where = DriverWhereabouts(True, ride_lat=at, ride_lon=at, lat=lat, lon=lon)
    assert Territory(regions, regions.shards - 1).driver_owner(where) == expected


def test_reach_is_the_border_in_degrees_wider_in_longitude_towards_the_poles() -> None:
    """At the equator a distance spans as many degrees of longitude as of latitude, at
    60° twice as many, and at a pole any number (plus the rounding slack each way)."""
    lat_reach, lon_reach = reach_degrees(1_000, 0.0)
    assert lat_reach == lon_reach == pytest.approx(1_000 / METRES_PER_DEGREE + REACH_SLACK)
    lat_reach, lon_reach = reach_degrees(1_000, -60.0)
    assert lat_reach == pytest.approx(1_000 / METRES_PER_DEGREE + REACH_SLACK)
    assert lon_reach == pytest.approx(2 * 1_000 / METRES_PER_DEGREE, rel=1e-6)
    assert reach_degrees(1_000, 90.0)[1] == math.inf
    assert reach_degrees(0, 45.0) == (REACH_SLACK, REACH_SLACK)


@given(
    st.floats(min_value=0, max_value=89),
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=0, max_value=50_000),
)
def test_a_place_a_reach_away_is_at_least_that_far(
    widest: float, share: float, metres: int
) -> None:
    """From a box's edge, a place the reach away in latitude, or in longitude at any
    latitude up to `widest`, is at least `metres` away as a region measures it."""
    lat = widest * (2 * share - 1)
    lat_reach, lon_reach = reach_degrees(metres, widest)
    box = Region("box", lat - 1.0, -10.0, lat + 1.0, 0.0)
    assert box.distance_m(lat, lon_reach) >= metres
    assert box.distance_m(lat + 1.0 + lat_reach, -5.0) >= metres
