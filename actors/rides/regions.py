"""Rides by region: which region owns a point, which neighbours a point is near, and which
shard a rides message goes to. No IO: the edge (through the route's key function) and every
rides shard compute the same answers from the same setting.

The setting (SPLITGO_RIDE_REGIONS):

- empty (the default): one region, the world, on one shard: the rides actor as it always was;
- ``grid:ROWSxCOLS`` or ``grid:ROWSxCOLS@SOUTH,WEST,NORTH,EAST``: a coarse grid of equal
  boxes over the world (or over the given box), named ``r0c0``, ``r0c1``, ...;
- ``name=SOUTH,WEST,NORTH,EAST;name=...``: named boxes, in degrees.

Ownership. A box holds the points with south <= lat < north and west <= lon < east. A
point's region is the first box (in the setting's order) holding it; a point no box holds
(a gap between boxes, or north of the last row) belongs to the box nearest to it, ties to
the first. So every point has exactly one owning region, whatever boxes are configured.

Shards. Region i is shard i; DESKS more shards, the desks, take the messages that name no
place (a ride or a driver by id) and hand each to the region that owns it (see
`actors/rides/regional.py`). A region's key is a string chosen so the runtime's CRC-32 routing
puts it on exactly that shard.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from actors.rides.messages import (
    REGION_NAME_MAX,
    EstimateRide,
    RequestRide,
    UpdateLocation,
    UpdateLocations,
    rides_key,
)

METRES_PER_DEGREE = 111_195.0  # of latitude (and of longitude on the equator)
DEFAULT_BORDER_M = 1_000
NAME = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{REGION_NAME_MAX - 1}}}")  # fits a BorderDrivers
GRID = re.compile(r"grid:(\d+)x(\d+)(?:@(.+))?")
REGIONS_MAX = 256
DESKS = 2  # shards after the regions' that hand on messages naming no place
REACH_SLACK = 1e-9  # degrees (~0.1 mm): past any rounding of metres turned into degrees


def lon_metres_per_degree(widest: float) -> float:
    """The fewest metres a degree of longitude spans at latitudes up to ±`widest` (they
    shrink towards the poles, so: at `widest`)."""
    return METRES_PER_DEGREE * math.cos(math.radians(min(abs(widest), 90.0)))


def reach_degrees(metres: float, widest: float) -> tuple[float, float]:
    """The most degrees of latitude and of longitude `metres` span at latitudes up to
    ±`widest`, and a little more than rounding: a place farther than that, either way, is
    farther than `metres`. Longitude has no bound where a degree of it is (all but) no
    metres: a box reaching a pole."""
    per_lon = lon_metres_per_degree(widest)
    lat_reach = metres / METRES_PER_DEGREE + REACH_SLACK
    lon_reach = metres / per_lon + REACH_SLACK if per_lon > 1e-6 else math.inf
    return lat_reach, lon_reach


class RegionsError(ValueError):
    """SPLITGO_RIDE_REGIONS is not one of its forms; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Region:
    """A named box of degrees: south <= lat < north, west <= lon < east."""

    name: str
    south: float
    west: float
    north: float
    east: float

    @property
    def widest(self) -> float:
        """The box's latitude farthest from the equator (where its degrees of longitude
        are fewest metres), unsigned."""
        return max(abs(self.south), abs(self.north))

    def holds(self, lat: float, lon: float) -> bool:
        return self.south <= lat < self.north and self.west <= lon < self.east

    def distance_m(self, lat: float, lon: float) -> float:
        """How far (lat, lon) is from the box: 0 inside or on its edge."""
        dlat = max(self.south - lat, 0.0, lat - self.north)
        dlon = max(self.west - lon, 0.0, lon - self.east)
        north_south = dlat * METRES_PER_DEGREE
        east_west = dlon * METRES_PER_DEGREE * math.cos(math.radians(lat))
        return math.hypot(north_south, east_west)

    def inside_by(self, lat: float, lon: float) -> float:
        """How far (lat, lon) is inside the box from its nearest edge: 0 on or outside it."""
        if not self.holds(lat, lon):
            return 0.0
        north_south = min(lat - self.south, self.north - lat) * METRES_PER_DEGREE
        # the box's east-west edges are nearest where their metres per degree are fewest
        metres = lon_metres_per_degree(self.widest)
        east_west = min(lon - self.west, self.east - lon) * metres
        return min(north_south, east_west)


@dataclass(frozen=True)  # no slots: the shards' keys are computed once and kept
class RegionMap:
    """The configured regions, how far across a border drivers are offered, and the shards."""

    regions: tuple[Region, ...]
    border_m: int = DEFAULT_BORDER_M

    @property
    def regional(self) -> bool:
        """More than one region: sharded by geography (else one shard, as before)."""
        return len(self.regions) > 1

    @property
    def shards(self) -> int:
        return len(self.regions) + DESKS if self.regional else 1

    def is_desk(self, shard: int) -> bool:
        """Whether `shard` hands messages naming no place to their region (a desk)."""
        return self.regional and shard >= len(self.regions)

    def desk_for(self, message: Any) -> int:
        """The desk of a message naming no place: by its ride, else its person."""
        name = getattr(message, "ride_id", None) or getattr(message, "user_id", "")
        return len(self.regions) + zlib.crc32(str(name).encode()) % DESKS

    @cached_property
    def _keys(self) -> tuple[str, ...]:
        return tuple(shard_key(index, self.shards) for index in range(self.shards))

    def key_of(self, index: int) -> str:
        """The routing key that lands on shard `index` (a region, or the desk)."""
        return self._keys[index] if self.regional else "dispatch"

    def index(self, name: str | None) -> int | None:
        for position, region in enumerate(self.regions):
            if region.name == name:
                return position
        return None

    @cached_property
    def _edges(self) -> tuple[tuple[float, float, float, float], ...]:
        """Each box's (south, north, west, east): `region_of` compares them in line (it
        runs for every ping, several times, so a method call per box shows)."""
        return tuple((r.south, r.north, r.west, r.east) for r in self.regions)

    def region_of(self, lat: float, lon: float, hint: int | None = None) -> int:
        """The one region that owns (lat, lon): the first box holding it, else the nearest.
        `hint` (a region the point is likely in, say the shard's own) is tried first; it
        only saves time, the answer is the same (with no two boxes overlapping, at most one
        box holds a point, so the box holding it is the first such)."""
        edges = self._edges
        if hint is not None and not self._overlapping:
            south, north, west, east = edges[hint]
            if south <= lat < north and west <= lon < east:
                return hint
        for position, (south, north, west, east) in enumerate(edges):
            if south <= lat < north and west <= lon < east:
                return position
        distances = [region.distance_m(lat, lon) for region in self.regions]
        return distances.index(min(distances))

    @cached_property
    def _cores(self) -> tuple[tuple[float, float, float, float], ...]:
        """Each box shrunk by the border distance, and by a little more than float rounding:
        a point inside its owner's core is more than `border_m` inside the box (what
        `Region.inside_by` measures), so near no other box. A point outside the core is
        measured exactly; the core only spares that for the many points deep inside."""
        cores = []
        for region in self.regions:
            dlat, dlon = reach_degrees(self.border_m, region.widest)
            cores.append(
                (region.south + dlat, region.north - dlat, region.west + dlon, region.east - dlon)
            )
        return tuple(cores)

    def near(self, lat: float, lon: float, hint: int | None = None) -> tuple[int, ...]:
        """The regions other than the owner within `border_m` of (lat, lon): where a driver
        here is also offered to requests (through their border view). `hint` as for
        `region_of`."""
        owner = self.region_of(lat, lon, hint)
        if not self._overlapping:
            south, north, west, east = self._cores[owner]
            if south < lat < north and west < lon < east:
                return ()  # deep inside its own box (the exact test below would agree)
            if self.regions[owner].inside_by(lat, lon) > self.border_m:
                # deep inside its own box: any other box (none overlaps it) lies beyond
                return ()
        south, north, west, east = self._edges[owner]
        candidates = (
            self._neighbours[owner]
            if south <= lat < north and west <= lon < east
            else range(len(self.regions))  # in a gap between boxes: measure to all
        )
        regions = self.regions
        return tuple(
            position
            for position in candidates
            if position != owner and regions[position].distance_m(lat, lon) <= self.border_m
        )

    @cached_property
    def _neighbours(self) -> tuple[tuple[int, ...], ...]:
        """For each box, the other boxes a point inside it can be within `border_m` of:
        those whose gap to it, in degrees of latitude and of longitude (at the box's
        widest latitude, where a degree is fewest metres), is within the border distance
        (and a little more than rounding). A point's distance to a box is at least that
        gap, so no other box can be near; the rest are measured."""
        found = []
        for index, a in enumerate(self.regions):
            lat_reach, lon_reach = reach_degrees(self.border_m, a.widest)
            found.append(
                tuple(
                    other
                    for other, b in enumerate(self.regions)
                    if other != index
                    and max(b.south - a.north, a.south - b.north, 0.0) <= lat_reach
                    and max(b.west - a.east, a.west - b.east, 0.0) <= lon_reach
                )
            )
        return tuple(found)

    @cached_property
    def _overlapping(self) -> bool:
        """Whether two boxes share more than an edge (then `near` checks every box)."""
        return any(
            a.south < b.north and b.south < a.north and a.west < b.east and b.west < a.east
            for i, a in enumerate(self.regions)
            for b in self.regions[i + 1 :]
        )

    def key(self, message: Any) -> str:
        """The route's key function: a ping goes to the region of its place, a request or
        an estimate to the region of its pickup, every other message to the desk."""
        if not self.regional:
            return str(rides_key(message))
        if isinstance(message, UpdateLocation):
            return self._keys[self.region_of(message.lat, message.lon)]
        if isinstance(message, UpdateLocations):
            # its sender gathers one region's pings; one elsewhere is relayed or handed over
            first = message.pings[0] if message.pings else None
            return self._keys[self.region_of(first.lat, first.lon) if first else 0]
        if isinstance(message, RequestRide | EstimateRide):
            return self._keys[self.region_of(message.pickup.lat, message.pickup.lon)]
        return self._keys[self.desk_for(message)]


def shard_key(index: int, shards: int) -> str:
    """A string whose CRC-32 modulo `shards` is `index` (the runtime's routing), found by
    counting: the same on every node."""
    suffix = 0
    while True:
        candidate = f"region-{index}.{suffix}"
        if zlib.crc32(candidate.encode()) % shards == index:
            return candidate
        suffix += 1


WORLD = Region("world", -90.0, -180.0, 90.0, 180.0)


def parse(text: str, border_m: int = DEFAULT_BORDER_M) -> RegionMap:
    """The setting's regions (see the module docstring); RegionsError when it is wrong."""
    text = text.strip()
    if border_m < 0:
        raise RegionsError("the border distance must be 0 or more metres")
    if not text:
        return RegionMap((WORLD,), border_m)
    grid = GRID.fullmatch(text)
    regions = _grid(grid) if grid else _named(text)
    if len(regions) > REGIONS_MAX:
        raise RegionsError(f"at most {REGIONS_MAX} regions")
    return RegionMap(tuple(regions), border_m)


def _grid(match: re.Match[str]) -> list[Region]:
    rows, cols = int(match.group(1)), int(match.group(2))
    if rows < 1 or cols < 1:
        raise RegionsError("a grid needs at least 1 row and 1 column")
    south, west, north, east = _box(match.group(3)) if match.group(3) else (-90, -180, 90, 180)
    height, width = (north - south) / rows, (east - west) / cols
    return [
        Region(
            f"r{row}c{col}",
            south + row * height,
            west + col * width,
            north if row == rows - 1 else south + (row + 1) * height,
            east if col == cols - 1 else west + (col + 1) * width,
        )
        for row in range(rows)
        for col in range(cols)
    ]


def _named(text: str) -> list[Region]:
    regions: list[Region] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, equals, box = part.partition("=")
        name = name.strip()
        if not equals or not NAME.fullmatch(name):
            raise RegionsError(
                f"{part!r}: write name=SOUTH,WEST,NORTH,EAST (a name of a-z, 0-9, _ and -)"
            )
        if any(region.name == name for region in regions):
            raise RegionsError(f"{name!r} is named twice")
        regions.append(Region(name, *_box(box)))
    if not regions:
        raise RegionsError("no region given")
    return regions


def _box(text: str) -> tuple[float, float, float, float]:
    try:
        south, west, north, east = (float(value) for value in text.split(","))
    except ValueError:
        raise RegionsError(f"{text!r}: a box is four numbers, SOUTH,WEST,NORTH,EAST") from None
    if not all(math.isfinite(v) for v in (south, west, north, east)):
        raise RegionsError(f"{text!r}: every edge must be a finite number")
    if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
        raise RegionsError(
            f"{text!r}: needs -90 <= south < north <= 90 and -180 <= west < east <= 180"
        )
    return south, west, north, east
