"""The dispatch geo index against its brute-force baseline: worked examples, refusals, and
hypothesis properties over cities, the antimeridian, the poles and the whole globe."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.rides.dispatch import GeoIndex, brute_force_nearest
from actors.rides.fares import distance_m

# as many examples as the suite's Hypothesis profile asks (tests/conftest.py)
PROPERTY = settings(deadline=None)

# Regions as (lat range, lon ranges); a region given two lon ranges straddles the
# antimeridian. Points are drawn inside a region, queries inside or just outside it.
REGIONS: dict[str, tuple[tuple[float, float], list[tuple[float, float]]]] = {
    "berlin": ((52.40, 52.64), [(13.20, 13.60)]),
    "fiji": ((-17.6, -16.4), [(179.4, 180.0), (-180.0, -179.4)]),
    "north_pole": ((89.3, 90.0), [(-180.0, 180.0)]),
    "south_pole": ((-90.0, -89.3), [(-180.0, 180.0)]),
    "globe": ((-90.0, 90.0), [(-180.0, 180.0)]),
}
CELLS = [0.01, 0.05, 0.25, 1.0, 7.5]
RADII = [0, 30, 500, 2_000, 10_000, 80_000, 1_500_000, 20_100_000]

keys = st.text(alphabet="abcdef", min_size=1, max_size=3)


@st.composite
def places(draw: st.DrawFn, region: str) -> tuple[float, float]:
    (lat_lo, lat_hi), lon_ranges = REGIONS[region]
    lon_lo, lon_hi = draw(st.sampled_from(lon_ranges))
    lat = draw(st.floats(lat_lo, lat_hi))
    lon = draw(st.floats(lon_lo, lon_hi))
    return lat, lon


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[float, list[tuple[str, str, float, float]], str]:
    """(cell_deg, operations, region): updates ("u", key, lat, lon) and removes ("r", key),
    often re-using positions so that ties occur."""
    region = draw(st.sampled_from(sorted(REGIONS)))
    cell = draw(st.sampled_from(CELLS))
    pool = draw(st.lists(places(region), min_size=1, max_size=6))
    point = st.one_of(st.sampled_from(pool), places(region))
    operation = st.one_of(
        st.tuples(st.just("u"), keys, point).map(lambda t: (t[0], t[1], t[2][0], t[2][1])),
        st.tuples(st.just("r"), keys).map(lambda t: (t[0], t[1], 0.0, 0.0)),
    )
    operations = draw(st.lists(operation, max_size=60))
    return cell, operations, region


def apply(
    index: GeoIndex, operations: list[tuple[str, str, float, float]]
) -> dict[str, tuple[float, float]]:
    """The operations on the index and on a plain dict; the dict is returned."""
    positions: dict[str, tuple[float, float]] = {}
    for kind, key, lat, lon in operations:
        if kind == "u":
            index.update(key, lat, lon)
            positions[key] = (lat, lon)
        else:
            index.remove(key)
            positions.pop(key, None)
    return positions


def rejecting(rejected: frozenset[str]) -> Callable[[str], bool]:
    return lambda key: key not in rejected


# ── examples ───────────────────────────────────────────────────────────────────────────


def test_nearest_in_a_city_with_limit_radius_and_filter() -> None:
    """nearest returns accepted keys within the radius, closest first with distances in metres, and
    count_within counts with or without the filter."""
    index = GeoIndex()
    index.update("near", 52.5201, 13.4050)
    index.update("mid", 52.5300, 13.4050)
    index.update("far", 52.6000, 13.4050)
    index.update("busy", 52.5200, 13.4051)
    available = rejecting(frozenset({"busy"}))
    found = index.nearest(52.52, 13.405, radius_m=5_000, limit=5, accept=available)
    assert [key for key, _ in found] == ["near", "mid"]
    assert found[0][1] == distance_m((52.52, 13.405), (52.5201, 13.4050)) == 11
    assert index.nearest(52.52, 13.405, radius_m=10, accept=available) == []
    assert index.count_within(52.52, 13.405, 5_000) == 3
    assert index.count_within(52.52, 13.405, 5_000, available) == 2


def test_ties_are_broken_by_key() -> None:
    """Keys at the same distance are returned in key order, up to the limit."""
    index = GeoIndex()
    for key in ("c", "a", "b"):
        index.update(key, 48.8566, 2.3522)
    assert index.nearest(48.8566, 2.3522, radius_m=0, limit=2) == [("a", 0), ("b", 0)]


def test_moves_between_cells_and_removes() -> None:
    """Moving a key updates its position and where it is found, and removing it, even twice, leaves
    the index empty with its cells dropped."""
    index = GeoIndex()
    index.update("d", 52.52, 13.40)
    index.update("d", 52.5201, 13.4001)  # same cell
    index.update("d", 40.4168, -3.7038)  # Madrid
    assert len(index) == 1
    assert "d" in index
    assert index.position("d") == (40.4168, -3.7038)
    assert index.nearest(52.52, 13.40, radius_m=100_000) == []
    assert index.nearest(40.4168, -3.7038, radius_m=10) == [("d", 0)]
    index.remove("d")
    index.remove("d")  # absent: no error
    index.remove("never-there")
    assert len(index) == 0
    assert "d" not in index
    assert index.position("d") is None
    assert index.nearest(40.4168, -3.7038, radius_m=20_100_000) == []
    assert index._rows == {}  # empty cells and rows are dropped


def test_antimeridian_and_poles() -> None:
    """Searches find keys across the antimeridian and around the poles at their great-circle
    distances."""
    index = GeoIndex()
    index.update("east", -17.0, 179.999)
    index.update("west", -17.0, -179.999)
    assert index.nearest(-17.0, 180.0, radius_m=500, limit=2) == [
        ("east", 106),
        ("west", 106),
    ]
    assert index.nearest(-17.0, -180.0, radius_m=500) == [("east", 106)]
    pole = GeoIndex()
    pole.update("across", 89.999, 0.0)
    pole.update("behind", 89.999, 180.0)
    pole.update("side", 89.999, -90.0)
    found = pole.nearest(90.0, 37.0, radius_m=1_000, limit=3)
    assert sorted(found) == [("across", 111), ("behind", 111), ("side", 111)]
    assert pole.nearest(89.999, 179.0, radius_m=300, limit=3) == [
        ("behind", 2),
        ("side", 159),  # 91 degrees of longitude round the pole
        ("across", 222),  # straight over the pole
    ]
    assert pole.count_within(-90.0, 0.0, 20_100_000) == 3


def test_refusals() -> None:
    """Places off the Earth, a negative radius or limit, and a bad cell size are refused, and a
    limit of zero finds nothing."""
    index = GeoIndex()
    for lat, lon in ((91.0, 0.0), (0.0, 180.5), (float("nan"), 0.0), (0.0, float("inf"))):
        with pytest.raises(ValueError, match="place on Earth"):
            index.update("d", lat, lon)
        with pytest.raises(ValueError, match="place on Earth"):
            index.nearest(lat, lon, radius_m=10)
    with pytest.raises(ValueError, match="radius_m"):
        index.nearest(0.0, 0.0, radius_m=-1)
    with pytest.raises(ValueError, match="limit"):
        brute_force_nearest({}, 0.0, 0.0, radius_m=1, limit=-1)
    for cell in (0.0, -1.0, 0.07, 100.0):
        with pytest.raises(ValueError, match="cell_deg"):
            GeoIndex(cell)
    assert len(index) == 0
    assert index.nearest(0.0, 0.0, radius_m=10, limit=0) == []


# ── properties ─────────────────────────────────────────────────────────────────────────


@PROPERTY
@given(
    scenario=scenarios(),
    data=st.data(),
    limit=st.integers(0, 6),
    radius=st.one_of(st.sampled_from(RADII), st.integers(0, 100_000)),
    rejected=st.frozensets(keys, max_size=8),
)
@example(
    scenario=(0.01, [("u", "a", 90.0, 0.0), ("u", "b", 89.9999, 180.0)], "north_pole"),
    data=None,
    limit=2,
    radius=20,
    rejected=frozenset(),
).via("the north pole itself")
def test_nearest_equals_brute_force(scenario, data, limit, radius, rejected) -> None:
    """For any updates and removals, the index tracks positions, and nearest and count_within agree
    with the brute-force search."""
    cell, operations, region = scenario
    index = GeoIndex(cell)
    positions = apply(index, operations)
    assert len(index) == len(positions)
    for key, position in positions.items():
        assert key in index
        assert index.position(key) == position
    accept = rejecting(rejected)
    queries = [(90.0, 45.0)] if data is None else [data.draw(places(region)) for _ in range(3)]
    for lat, lon in queries:
        kwargs = {"radius_m": radius, "limit": limit, "accept": accept}
        found = index.nearest(lat, lon, **kwargs)
        assert found == brute_force_nearest(positions, lat, lon, **kwargs)
        for key, distance in found:
            assert distance == distance_m((lat, lon), positions[key])
        within = index.count_within(lat, lon, radius, accept)
        everyone = brute_force_nearest(positions, lat, lon, radius_m=radius, limit=len(positions))
        assert within == sum(1 for key, _ in everyone if accept(key))


@PROPERTY
@given(
    cell=st.sampled_from(CELLS),
    moves=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.floats(-0.05, 0.05),
            st.floats(-0.05, 0.05),
        ),
        min_size=1,
        max_size=40,
    ),
    query=places("fiji"),
    radius=st.sampled_from([100, 3_000, 15_000]),
)
def test_small_moves_across_cell_edges(cell, moves, query, radius) -> None:
    """Drivers creeping around the antimeridian cross cell edges often; the index follows."""
    index = GeoIndex(cell)
    positions: dict[str, tuple[float, float]] = {}
    for key, dlat, dlon in moves:
        lat, lon = positions.get(key, (-17.0, 179.99))
        lon = (lon + dlon + 180.0) % 360.0 - 180.0
        positions[key] = (max(-90.0, min(90.0, lat + dlat)), lon)
        index.update(key, *positions[key])
        lat_q, lon_q = query
        assert index.nearest(lat_q, lon_q, radius_m=radius, limit=4) == brute_force_nearest(
            positions, lat_q, lon_q, radius_m=radius, limit=4
        )


@PROPERTY
@given(
    cell=st.sampled_from([0.01, 0.05, 1.0]),
    region=st.sampled_from(["berlin", "fiji", "north_pole"]),
    data=st.data(),
    nudge=st.integers(-40, 40),
    rejected=st.frozensets(st.integers(0, 199).map(str), max_size=30),
)
def test_count_within_on_dense_drivers(cell, region, data, nudge, rejected) -> None:
    """Many drivers and a circle whose edge runs right past some of them: whole cells are
    counted without distances only when they lie entirely inside."""
    points = data.draw(st.lists(places(region), min_size=1, max_size=200))
    index = GeoIndex(cell)
    positions = {str(number): point for number, point in enumerate(points)}
    for key, (lat, lon) in positions.items():
        index.update(key, lat, lon)
    lat, lon = data.draw(places(region))
    edge = data.draw(st.sampled_from(points))
    radius = max(0, distance_m((lat, lon), edge) + nudge)
    accept = rejecting(rejected)
    everyone = brute_force_nearest(positions, lat, lon, radius_m=radius, limit=len(positions))
    assert index.count_within(lat, lon, radius, accept) == sum(
        1 for key, _ in everyone if accept(key)
    )
    available = [pair for pair in everyone if accept(pair[0])]
    assert index.nearest(lat, lon, radius_m=radius, limit=3, accept=accept) == available[:3]
