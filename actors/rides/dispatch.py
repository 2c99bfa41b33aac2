"""Where the drivers are: a grid index of last known positions, and its brute-force baseline.

No IO. The rides shard keeps one `GeoIndex` of online drivers and asks it for the nearest
available ones when it dispatches a ride.

The grid. Cells are `cell_deg` degrees of latitude by `cell_deg` degrees of longitude
(row = floor(lat / cell_deg), column = floor(lon / cell_deg) modulo the columns of a full
turn), stored sparsely: row -> column -> {key: position}. A ping moves a driver between
dicts only when its cell changes.

The search. `nearest` looks at rings of cells around the query: ring k holds the cells
that may contain a point within r_k metres of the query (the bounding box of the
spherical cap of radius r_k, Matuschek's formula) and that an earlier ring did not hold;
r_1 is one cell's height and r_k doubles, capped at the search radius. Inside a ring the
non-empty cells are visited by a lower bound of their distance to the query (the larger
of the latitude gap and the distance to the nearest meridian they touch) and skipped once
that bound passes the limit-th best distance found. The search stops after the ring whose
r_k reaches the limit-th best distance (or radius_m): every point outside it is farther.

The whole globe is supported. Longitude wraps (a query at 179.99 finds a driver at
-179.99): column ranges are taken modulo the full turn. Near a pole the cap's bounding box
spans every column; rows and columns are then walked through the non-empty ones only, so
a box of thousands of empty cells costs nothing. Every bound carries a margin of a metre
(and 1e-7 degrees at cell edges) over float rounding, so the index returns exactly what
`brute_force_nearest` returns: both rank by the same integer `haversine_m`, ties by key.
"""

from __future__ import annotations

import heapq
import math
from bisect import insort
from collections.abc import Callable, Iterator, Mapping

from actors.rides.fares import EARTH_RADIUS_M, haversine_m

Accept = Callable[[str], bool]
# A stored position: latitude and longitude in radians, and the latitude's cosine.
_Entry = tuple[float, float, float]
_Bucket = dict[str, _Entry]
# A search box: first and last row, then the columns as an unwrapped first column and a
# count (count == the columns of a full turn: every column).
_Box = tuple[int, int, int, int]

_EDGE_DEG = 1e-7  # slack at cell edges, far above float error in lat / cell_deg (~1e-14)
# `count_within(at_most=...)` up to this many: the nearest few (rings from the query, a
# busy area stops after a cell or two) cost less than counting the whole circle
_FEW = 16
_MARGIN_M = 1.0  # slack on distances: 0.5 m of rounding to whole metres + float error
_HALF_PI = math.pi / 2
_METRES_PER_RAD = EARTH_RADIUS_M
_METRES_PER_DEG = EARTH_RADIUS_M * math.pi / 180


def _accept_all(key: str) -> bool:
    return True


def _check_query(lat: float, lon: float, radius_m: int, limit: int) -> None:
    # NaN fails every comparison, so one chained range check refuses NaN and inf too.
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"not a place on Earth: ({lat!r}, {lon!r})")
    if radius_m < 0:
        raise ValueError("radius_m must not be negative")
    if limit < 0:
        raise ValueError("limit must not be negative")


class GeoIndex:
    """Drivers' last positions in a grid of cells (no IO): nearest queries touch a few cells.

    Keys are driver ids; positions are WGS84 degrees, anywhere on Earth (the caller checks
    user input with `fares.check_point` first; this raises ValueError on a bad position).
    `cell_deg` must divide 360 (0.01: about 1.1 km of latitude, a few dozen drivers per
    cell in a busy city).
    """

    __slots__ = ("_cell", "_cols", "_row_max", "_row_min", "_rows", "_step_m", "_where")

    def __init__(self, cell_deg: float = 0.01) -> None:
        if not (isinstance(cell_deg, int | float) and 0.0 < cell_deg <= 90.0):
            raise ValueError("cell_deg must be a number in (0, 90]")
        cols = round(360.0 / cell_deg)
        if abs(cols * cell_deg - 360.0) > 1e-9:
            raise ValueError(f"cell_deg must divide 360 (got {cell_deg!r})")
        self._cell = float(cell_deg)
        self._cols = cols
        self._row_min = math.floor(-90.0 / self._cell)
        self._row_max = math.floor(90.0 / self._cell)
        self._step_m = self._cell * _METRES_PER_DEG  # the first ring: one cell's height
        self._rows: dict[int, dict[int, _Bucket]] = {}
        # key -> (row, column, lat, lon): the cell to find it in, and the degrees it gave
        self._where: dict[str, tuple[int, int, float, float]] = {}

    # ── updates ────────────────────────────────────────────────────────────────────────

    def update(self, key: str, lat: float, lon: float) -> None:
        """Set `key`'s position (adds it if new). O(1); it changes cell only when it
        crossed a cell edge."""
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"not a place on Earth: ({lat!r}, {lon!r})")
        lat = float(lat)
        lon = float(lon)
        cell = self._cell
        row = math.floor(lat / cell)
        col = math.floor(lon / cell) % self._cols
        lat_rad = math.radians(lat)
        entry = (lat_rad, math.radians(lon), math.cos(lat_rad))
        old = self._where.get(key)
        if old is not None and old[0] == row and old[1] == col:
            self._rows[row][col][key] = entry
        else:
            if old is not None:
                self._discard(key, old[0], old[1])
            columns = self._rows.get(row)
            if columns is None:
                columns = self._rows[row] = {}
            bucket = columns.get(col)
            if bucket is None:
                bucket = columns[col] = {}
            bucket[key] = entry
        self._where[key] = (row, col, lat, lon)

    def remove(self, key: str) -> None:
        """Forget `key` (no error if it is not there)."""
        old = self._where.pop(key, None)
        if old is not None:
            self._discard(key, old[0], old[1])

    def _discard(self, key: str, row: int, col: int) -> None:
        # Empty cells and rows are dropped so that walking the non-empty ones stays cheap.
        columns = self._rows[row]
        bucket = columns[col]
        del bucket[key]
        if not bucket:
            del columns[col]
            if not columns:
                del self._rows[row]

    # ── reads ──────────────────────────────────────────────────────────────────────────

    def position(self, key: str) -> tuple[float, float] | None:
        """`key`'s last (lat, lon), or None."""
        where = self._where.get(key)
        return None if where is None else (where[2], where[3])

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def nearest(
        self,
        lat: float,
        lon: float,
        *,
        radius_m: int,
        limit: int = 1,
        accept: Accept = _accept_all,
    ) -> list[tuple[str, int]]:
        """Up to `limit` (key, distance_m) within `radius_m` metres of (lat, lon) whose
        `accept(key)` is true, nearest first, ties by key.

        `accept` is asked only about keys close enough to make the list, so a filter that
        looks keys up elsewhere (busy drivers, a driver who declined) stays cheap.
        """
        _check_query(lat, lon, radius_m, limit)
        if limit == 0 or not self._where:
            return []
        lat_rad = math.radians(lat)
        lon_rad = math.radians(lon)
        cos_lat = math.cos(lat_rad)
        best: list[tuple[int, str]] = []  # (distance, key), sorted, at most `limit`
        bound = radius_m  # a point farther than this cannot make the list
        # the same in radians of latitude: a cheap test before the trigonometry
        lat_reach = (bound + _MARGIN_M) / _METRES_PER_RAD
        previous: _Box | None = None
        reach = self._step_m
        while True:
            ring_m = min(reach, radius_m + _MARGIN_M)  # never look past the radius
            box = self._box(lat, lon, lat_rad, cos_lat, ring_m)
            cells = sorted(
                (self._cell_bound(row, col, lat, lon, cos_lat), row, col, bucket)
                for row, col, bucket in self._ring(previous, box)
            )
            for cell_bound, _, _, bucket in cells:
                if cell_bound > bound + _MARGIN_M:
                    break  # this cell and the rest (sorted) are all too far
                for key, (lat2, lon2, cos2) in bucket.items():
                    if abs(lat2 - lat_rad) > lat_reach:
                        continue
                    distance = haversine_m(lat_rad, lon_rad, cos_lat, lat2, lon2, cos2)
                    if distance > bound:
                        continue
                    if len(best) == limit and (distance, key) >= best[-1]:
                        continue  # an equal distance wins only with a smaller key
                    if not accept(key):
                        continue
                    insort(best, (distance, key))
                    if len(best) > limit:
                        best.pop()
                    if len(best) == limit:
                        bound = best[-1][0]
                        lat_reach = (bound + _MARGIN_M) / _METRES_PER_RAD
            # Every point outside `box` is farther than ring_m, so farther than `bound`.
            if ring_m >= bound + _MARGIN_M:
                break
            previous = box
            reach *= 2.0
        return [(key, distance) for distance, key in best]

    def count_within(
        self,
        lat: float,
        lon: float,
        radius_m: int,
        accept: Accept = _accept_all,
        *,
        at_most: int | None = None,
    ) -> int:
        """How many keys lie within `radius_m` metres of (lat, lon) with `accept(key)`
        true (the available supply near a pickup, for surge). With `at_most`, counting
        stops there: min(count, at_most) (surge only asks whether supply covers demand)."""
        _check_query(lat, lon, radius_m, 0)
        if not self._where or (at_most is not None and at_most <= 0):
            return 0
        if at_most is not None and at_most <= _FEW:
            return len(self.nearest(lat, lon, radius_m=radius_m, limit=at_most, accept=accept))
        lat_rad = math.radians(lat)
        lon_rad = math.radians(lon)
        cos_lat = math.cos(lat_rad)
        box = self._box(lat, lon, lat_rad, cos_lat, radius_m + _MARGIN_M)
        count = 0
        for row, col, bucket in self._ring(None, box):
            if self._cell_bound(row, col, lat, lon, cos_lat) > radius_m + _MARGIN_M:
                continue
            farthest = self._cell_farthest(row, col, lat_rad, lon_rad, cos_lat)
            if farthest is not None and farthest <= radius_m:
                # the whole cell is inside the circle: no distance to compute
                count += sum(1 for key in bucket if accept(key))
                continue
            for key, (lat2, lon2, cos2) in bucket.items():
                distance = haversine_m(lat_rad, lon_rad, cos_lat, lat2, lon2, cos2)
                if distance <= radius_m and accept(key):
                    count += 1
        return count if at_most is None else min(count, at_most)

    # ── the grid's geometry ────────────────────────────────────────────────────────────

    def _box(self, lat: float, lon: float, lat_rad: float, cos_lat: float, reach_m: float) -> _Box:
        """The rows and columns of every cell that may hold a point within `reach_m`
        metres (computed distance) of the query: the bounding box of that spherical cap,
        grown by a metre and by _EDGE_DEG at its edges."""
        cell = self._cell
        cols = self._cols
        angle = (reach_m + _MARGIN_M) / _METRES_PER_RAD
        span = math.degrees(angle) + _EDGE_DEG
        first_row = max(math.floor((lat - span) / cell), self._row_min)
        last_row = min(math.floor((lat + span) / cell), self._row_max)
        if abs(lat_rad) + angle >= _HALF_PI:
            return first_row, last_row, 0, cols  # the cap holds a pole: every longitude
        ratio = math.sin(angle) / cos_lat
        if ratio >= 1.0:
            return first_row, last_row, 0, cols
        half_width = math.degrees(math.asin(ratio)) + _EDGE_DEG
        first_col = math.floor((lon - half_width) / cell)
        count = math.floor((lon + half_width) / cell) - first_col + 1
        if count >= cols:
            return first_row, last_row, 0, cols
        return first_row, last_row, first_col, count

    def _ring(self, previous: _Box | None, box: _Box) -> Iterator[tuple[int, int, _Bucket]]:
        """The non-empty cells of `box` that are not in `previous` (a smaller box around
        the same query, so its rows and columns nest inside `box`'s)."""
        cols = self._cols
        first_row, last_row, first_col, count = box
        new_columns = [(first_col, count)]
        old_first_row, old_last_row = 1, 0  # no rows
        old_segments = new_columns
        if previous is not None:
            old_first_row, old_last_row, old_first_col, old_count = previous
            if count == cols:
                # every column now: the ones the previous box lacked (none if it had all)
                old_segments = [(old_first_col + old_count, cols - old_count)]
            else:
                old_segments = [
                    (first_col, old_first_col - first_col),
                    (old_first_col + old_count, first_col + count - old_first_col - old_count),
                ]
        rows = self._rows
        if last_row - first_row + 1 > len(rows):
            row_items: Iterator[tuple[int, dict[int, _Bucket]]] = (
                (row, columns) for row, columns in rows.items() if first_row <= row <= last_row
            )
        else:
            row_items = ((row, rows[row]) for row in range(first_row, last_row + 1) if row in rows)
        for row, columns in row_items:
            segments = old_segments if old_first_row <= row <= old_last_row else new_columns
            for start, length in segments:
                if length <= 0:
                    continue
                if length > len(columns):
                    # fewer non-empty cells in this row than columns to look at
                    for col, bucket in columns.items():
                        if (col - start) % cols < length:
                            yield row, col, bucket
                else:
                    for unwrapped in range(start, start + length):
                        col = unwrapped % cols
                        found = columns.get(col)
                        if found is not None:
                            yield row, col, found

    def _cell_bound(self, row: int, col: int, lat: float, lon: float, cos_lat: float) -> float:
        """A lower bound in metres of the distance from the query to any point of the
        cell: the larger of the latitude gap and the distance to the nearest meridian the
        cell touches (asin(cos lat * sin dlon) up to 90 degrees of longitude)."""
        cell = self._cell
        south = row * cell - _EDGE_DEG
        north = south + cell + 2 * _EDGE_DEG
        if lat < south:
            gap = math.radians(south - lat)
        elif lat > north:
            gap = math.radians(lat - north)
        else:
            gap = 0.0
        centre = (col + 0.5) * cell
        dlon = abs((centre - lon + 180.0) % 360.0 - 180.0) - 0.5 * cell - _EDGE_DEG
        if dlon > 0.0:
            across = math.asin(cos_lat * math.sin(math.radians(min(dlon, 90.0))))
            if across > gap:
                gap = across
        return gap * _METRES_PER_RAD

    def _cell_farthest(
        self, row: int, col: int, lat_rad: float, lon_rad: float, cos_lat: float
    ) -> int | None:
        """An upper bound in metres of the distance from the query to any point of the
        cell (to its centre plus centre to farthest corner, + 2 m of rounding), or None
        for a cell touching a pole, where the bound is not worth the care."""
        cell = self._cell
        half = 0.5 * cell + _EDGE_DEG
        centre_lat = (row + 0.5) * cell
        if centre_lat - half <= -90.0 or centre_lat + half >= 90.0:
            return None
        centre_lon = (col + 0.5) * cell
        c_lat = math.radians(centre_lat)
        c_lon = math.radians(centre_lon)
        c_cos = math.cos(c_lat)
        corner = 0
        # The farthest point of a lat/lon rectangle from its centre is a corner; by
        # symmetry the east corners are as far as the west ones.
        for corner_lat in (centre_lat - half, centre_lat + half):
            k_lat = math.radians(corner_lat)
            k_lon = math.radians(centre_lon + half)
            corner = max(corner, haversine_m(c_lat, c_lon, c_cos, k_lat, k_lon, math.cos(k_lat)))
        to_centre = haversine_m(lat_rad, lon_rad, cos_lat, c_lat, c_lon, c_cos)
        return to_centre + corner + 2


def brute_force_nearest(
    positions: Mapping[str, tuple[float, float]],
    lat: float,
    lon: float,
    *,
    radius_m: int,
    limit: int = 1,
    accept: Accept = _accept_all,
) -> list[tuple[str, int]]:
    """The baseline: the distance to every position, then the `limit` smallest
    (distance, key) within `radius_m` whose `accept(key)` is true — `GeoIndex.nearest`'s
    contract, by scanning everything. Distances are `fares.distance_m`'s."""
    _check_query(lat, lon, radius_m, limit)
    if limit == 0:
        return []
    lat_rad = math.radians(lat)
    lon_rad = math.radians(lon)
    cos_lat = math.cos(lat_rad)
    radians = math.radians
    cos = math.cos
    found: list[tuple[int, str]] = []
    for key, (lat2, lon2) in positions.items():
        lat2_rad = radians(lat2)
        distance = haversine_m(lat_rad, lon_rad, cos_lat, lat2_rad, radians(lon2), cos(lat2_rad))
        if distance <= radius_m and accept(key):
            found.append((distance, key))
    return [(key, distance) for distance, key in heapq.nsmallest(limit, found)]
