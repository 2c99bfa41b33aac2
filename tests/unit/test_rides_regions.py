"""Rides by region, the pure rules: the setting's forms, the region owning a point, border
membership and the route's keys (actors/rides/regions.py)."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.rides.messages import (
    AnswerOffer,
    EstimateRide,
    GetRide,
    Point,
    RequestRide,
    UpdateLocation,
)
from actors.rides.regions import DESKS, RegionsError, parse
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
    """A ping by its place, a request and an estimate by the pickup; a ride by id to a desk."""
    regions = parse(BERLIN)
    west, east = Point(lat=52.5, lon=13.3), Point(lat=52.5, lon=13.5)
    assert regions.key(UpdateLocation(user_id="d", lat=52.5, lon=13.5)) == regions.key_of(1)
    assert regions.key(EstimateRide(pickup=west, dropoff=east)) == regions.key_of(0)
    request = RequestRide(ride_id="r", user_id="u", pickup=east, dropoff=west)
    assert regions.key(request) == regions.key_of(1)
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
