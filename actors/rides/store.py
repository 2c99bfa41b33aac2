"""Every SQL statement of the rides actor, over its own tables (the schema's rides section).

Each function takes what runs the statement (an `actors.runtime.Executor`): the pool
(autocommit) or an open `Transaction`. Times are passed in; the actor's clock is the only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.rides.messages import ACTIVE
from actors.runtime import Executor, KeyTable

# what the rides commands' idempotency keys answered (the runtime's one helper)
KEYS = KeyTable("rides_idempotency")

# ── drivers ────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class DriverRow:
    """A registered driver as stored, with the last position written."""

    user_id: str
    vehicle: str
    plate: str
    status: str
    lat: float | None
    lon: float | None
    seen_at: datetime | None
    rating_sum: int
    rating_count: int


async def insert_driver(
    db: Executor, user_id: str, vehicle: str, plate: str, now: datetime
) -> bool:
    added = await db.fetchval(
        "INSERT INTO rides_drivers (user_id, vehicle, plate, created_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (user_id) DO NOTHING RETURNING true",
        user_id,
        vehicle,
        plate,
        now,
    )
    return bool(added)


async def drivers(db: Executor) -> list[DriverRow]:
    rows = await db.fetch(
        "SELECT user_id, vehicle, plate, status, lat, lon, seen_at, rating_sum, rating_count"
        " FROM rides_drivers"
    )
    return [DriverRow(*row) for row in rows]  # the columns in the fields' order


async def set_driver_status(db: Executor, user_id: str, status: str) -> None:
    await db.execute("UPDATE rides_drivers SET status = $2 WHERE user_id = $1", user_id, status)


async def save_positions(
    db: Executor, positions: Sequence[tuple[str, float, float, datetime]]
) -> None:
    """The last known positions, in one statement (every few seconds, not per ping)."""
    if not positions:
        return
    await db.execute(
        """
        UPDATE rides_drivers d SET lat = p.lat, lon = p.lon, seen_at = p.seen_at
        FROM unnest($1::text[], $2::float8[], $3::float8[], $4::timestamptz[])
            AS p(user_id, lat, lon, seen_at)
        WHERE d.user_id = p.user_id
        """,
        [p[0] for p in positions],
        [p[1] for p in positions],
        [p[2] for p in positions],
        [p[3] for p in positions],
    )


async def rate_driver(db: Executor, user_id: str, stars: int) -> None:
    await db.execute(
        "UPDATE rides_drivers SET rating_sum = rating_sum + $2, rating_count = rating_count + 1"
        " WHERE user_id = $1",
        user_id,
        stars,
    )


# ── rides ──────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class RideRow:
    """A ride as stored, with its timeline when loaded for a view."""

    id: str
    rider_id: str
    driver_id: str | None
    status: str
    pickup_lat: float
    pickup_lon: float
    dropoff_lat: float
    dropoff_lon: float
    group_id: str | None
    currency: str
    estimate: int
    estimate_m: int
    estimate_s: int
    surge_bp: int
    hold_id: str | None
    offered_to: str | None
    offer_attempt: int
    offer_expires_at: datetime | None
    tried: list[str]
    fare: int | None
    distance_m: int | None
    duration_s: int | None
    cancel_reason: str | None
    rider_stars: int | None
    rider_comment: str | None
    driver_stars: int | None
    driver_comment: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    region: str | None = None  # the region dispatching it (None: its pickup's, or no regions)
    timeline: list[tuple[str, datetime, str | None]] = field(default_factory=list)


_COLUMNS = (
    "id, rider_id, driver_id, status, pickup_lat, pickup_lon, dropoff_lat, dropoff_lon,"
    " group_id, currency, estimate, estimate_m, estimate_s, surge_bp, hold_id, offered_to,"
    " offer_attempt, offer_expires_at, tried, fare, distance_m, duration_s, cancel_reason,"
    " rider_stars, rider_comment, driver_stars, driver_comment, created_at, started_at,"
    " finished_at, region"
)


def _ride(row: Any) -> RideRow:
    return RideRow(**{**dict(row), "tried": list(row["tried"])})


_COLUMNS_R = ", ".join(f"r.{name.strip()}" for name in _COLUMNS.split(","))


async def insert_ride(db: Executor, ride: RideRow, step_at: datetime | None = None) -> bool:
    """Store a new ride as it is now (with the offer it may have already), and with
    `step_at` its first step (`ride.status` at that time) too, in one round trip."""
    inserted = await db.fetchval(
        """
        WITH ride AS (
            INSERT INTO rides (id, rider_id, status, pickup_lat, pickup_lon, dropoff_lat,
                dropoff_lon, group_id, currency, estimate, estimate_m, estimate_s, surge_bp,
                hold_id, created_at, region, offered_to, offer_attempt, offer_expires_at,
                tried)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20)
            ON CONFLICT (id) DO NOTHING RETURNING id
        ), step AS (
            INSERT INTO rides_timeline (ride_id, status, at)
            SELECT id, $3, $21 FROM ride WHERE $21::timestamptz IS NOT NULL
        )
        SELECT true FROM ride
        """,
        ride.id,
        ride.rider_id,
        ride.status,
        ride.pickup_lat,
        ride.pickup_lon,
        ride.dropoff_lat,
        ride.dropoff_lon,
        ride.group_id,
        ride.currency,
        ride.estimate,
        ride.estimate_m,
        ride.estimate_s,
        ride.surge_bp,
        ride.hold_id,
        ride.created_at,
        ride.region,
        ride.offered_to,
        ride.offer_attempt,
        ride.offer_expires_at,
        ride.tried,
        step_at,
    )
    return bool(inserted)


# a ride's steps in order, as three arrays beside its row: one round trip for both
_TIMELINE = """
SELECT {columns}, t.statuses, t.ats, t.notes
FROM rides r
CROSS JOIN LATERAL (
    SELECT array_agg(s.status ORDER BY s.seq) AS statuses,
        array_agg(s.at ORDER BY s.seq) AS ats, array_agg(s.note ORDER BY s.seq) AS notes
    FROM rides_timeline s WHERE s.ride_id = r.id
) t
WHERE r.id = $1
"""


_TIMELINE_QUERY = _TIMELINE.format(columns=_COLUMNS_R)


async def ride(db: Executor, ride_id: str, *, timeline: bool = False) -> RideRow | None:
    """The ride, with its timeline too when asked (in the same round trip)."""
    if not timeline:
        row = await db.fetchrow(f"SELECT {_COLUMNS} FROM rides WHERE id = $1", ride_id)
        return None if row is None else _ride(row)
    row = await db.fetchrow(_TIMELINE_QUERY, ride_id)
    if row is None:
        return None
    found = _ride({k: v for k, v in row.items() if k not in ("statuses", "ats", "notes")})
    found.timeline = list(
        zip(row["statuses"] or [], row["ats"] or [], row["notes"] or [], strict=True)
    )
    return found


async def active_rides(db: Executor) -> list[RideRow]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM rides WHERE status = ANY($1::text[]) ORDER BY created_at",
        list(ACTIVE),
    )
    return [_ride(row) for row in rows]


async def current_ride(db: Executor, user_id: str) -> str | None:
    found: str | None = await db.fetchval(
        "SELECT id FROM rides WHERE (rider_id = $1 OR driver_id = $1)"
        " AND status = ANY($2::text[]) ORDER BY created_at DESC LIMIT 1",
        user_id,
        list(ACTIVE),
    )
    return found


async def ride_or_active(db: Executor, ride_id: str, rider_id: str) -> tuple[RideRow | None, bool]:
    """In one round trip: the ride `ride_id` if it exists (a retried request), and whether
    the rider has another ride going."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM rides WHERE id = $1"
        " OR (rider_id = $2 AND status = ANY($3::text[])) LIMIT 2",
        ride_id,
        rider_id,
        list(ACTIVE),
    )
    found = [_ride(row) for row in rows]
    known = next((ride for ride in found if ride.id == ride_id), None)
    return known, any(ride.id != ride_id for ride in found)


async def save_offer(db: Executor, ride: RideRow) -> None:
    await db.execute(
        "UPDATE rides SET offered_to = $2, offer_attempt = $3, offer_expires_at = $4,"
        " tried = $5 WHERE id = $1",
        ride.id,
        ride.offered_to,
        ride.offer_attempt,
        ride.offer_expires_at,
        ride.tried,
    )


async def save_state(
    db: Executor, ride: RideRow, step: tuple[str, datetime, str | None] | None = None
) -> None:
    """Write what a step changes: status, driver, offer, money and times; with `step`
    (status, at, note), add it to the timeline in the same round trip."""
    await db.execute(
        """
        WITH changed AS (
            UPDATE rides SET status = $2, driver_id = $3, offered_to = $4,
                offer_expires_at = $5, tried = $6, fare = $7, distance_m = $8, duration_s = $9,
                cancel_reason = $10, started_at = $11, finished_at = $12
            WHERE id = $1
            RETURNING id
        )
        INSERT INTO rides_timeline (ride_id, status, note, at)
        SELECT id, $13, $14, $15 FROM changed WHERE $13::text IS NOT NULL
        """,
        ride.id,
        ride.status,
        ride.driver_id,
        ride.offered_to,
        ride.offer_expires_at,
        ride.tried,
        ride.fare,
        ride.distance_m,
        ride.duration_s,
        ride.cancel_reason,
        ride.started_at,
        ride.finished_at,
        step[0] if step else None,
        step[2] if step else None,
        step[1] if step else None,
    )


async def add_step(
    db: Executor, ride_id: str, status: str, now: datetime, note: str | None = None
) -> None:
    await db.execute(
        "INSERT INTO rides_timeline (ride_id, status, note, at) VALUES ($1, $2, $3, $4)",
        ride_id,
        status,
        note,
        now,
    )


async def save_rating(
    db: Executor, ride_id: str, side: str, stars: int, comment: str | None
) -> bool:
    """Store one side's rating once; False if that side rated already."""
    column = "rider" if side == "rider" else "driver"
    done = await db.fetchval(
        f"UPDATE rides SET {column}_stars = $2, {column}_comment = $3"
        f" WHERE id = $1 AND {column}_stars IS NULL RETURNING true",
        ride_id,
        stars,
        comment,
    )
    return bool(done)


async def rides_of_person(db: Executor, user_id: str, limit: int) -> list[Any]:
    """The rides `user_id` took or drove, oldest first, at most `limit` (their export)."""
    return await db.fetch(
        "SELECT * FROM rides WHERE rider_id = $1 OR driver_id = $1"
        " ORDER BY created_at, id LIMIT $2",
        user_id,
        limit,
    )


async def driver_profile(db: Executor, user_id: str) -> Any:
    """The driver row of `user_id` (vehicle, plate, ratings), or None."""
    return await db.fetchrow(
        "SELECT vehicle, plate, rating_sum, rating_count, created_at FROM rides_drivers"
        " WHERE user_id = $1",
        user_id,
    )


# ── rides by region (issue 20): who owns a driver, which region a ride is in ──────────


@dataclass(slots=True)
class DriverWhereabouts:
    """What decides the region owning a driver: the ride it has in hand or is offered (its
    region), else its last written position, else none (a new driver)."""

    registered: bool
    ride_region: str | None = None
    ride_lat: float | None = None
    ride_lon: float | None = None
    lat: float | None = None
    lon: float | None = None


async def whereabouts(db: Executor, user_id: str) -> DriverWhereabouts:
    row = await db.fetchrow(
        """
        SELECT d.lat, d.lon, r.region, r.pickup_lat, r.pickup_lon
        FROM rides_drivers d
        LEFT JOIN LATERAL (
            SELECT region, pickup_lat, pickup_lon FROM rides
            WHERE (driver_id = d.user_id AND status = ANY($2::text[]))
               OR (offered_to = d.user_id AND status = 'requested')
            ORDER BY created_at DESC LIMIT 1
        ) r ON true
        WHERE d.user_id = $1
        """,
        user_id,
        list(ACTIVE),
    )
    if row is None:
        return DriverWhereabouts(registered=False)
    return DriverWhereabouts(
        registered=True,
        ride_region=row["region"],
        ride_lat=row["pickup_lat"],
        ride_lon=row["pickup_lon"],
        lat=row["lat"],
        lon=row["lon"],
    )


async def driver(db: Executor, user_id: str) -> DriverRow | None:
    row = await db.fetchrow(
        "SELECT user_id, vehicle, plate, status, lat, lon, seen_at, rating_sum, rating_count"
        " FROM rides_drivers WHERE user_id = $1",
        user_id,
    )
    return DriverRow(**dict(row)) if row is not None else None


async def ride_place(db: Executor, ride_id: str) -> tuple[str | None, float, float] | None:
    """A ride's region and pickup (None: no such ride)."""
    row = await db.fetchrow(
        "SELECT region, pickup_lat, pickup_lon FROM rides WHERE id = $1", ride_id
    )
    return (row["region"], row["pickup_lat"], row["pickup_lon"]) if row is not None else None


async def move_ride(db: Executor, ride_id: str, region: str) -> None:
    await db.execute("UPDATE rides SET region = $2 WHERE id = $1", ride_id, region)
