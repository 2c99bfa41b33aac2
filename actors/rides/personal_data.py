"""A user's own rides, for their data export: a feature part of the rides actor.

Reads only, bounded (MY_RIDES_MAX, two indexed statements), so the one dispatching shard
answers it quickly. A rider sees the rating they gave the driver, a driver the one they
gave the rider: never what the other person wrote about them.
"""

from __future__ import annotations

from typing import Any

from actors.rides import store
from actors.rides.messages import (
    MY_RIDES_MAX,
    DescribeMyRides,
    MyDriverProfile,
    MyRide,
    MyRides,
    Point,
)
from actors.runtime import Context, rfc3339


class PersonalData:
    """Answers DescribeMyRides: the rides the user took or drove, and their car."""

    def __init__(self, context: Context) -> None:
        self._pool = context.pool

    async def describe(self, message: DescribeMyRides) -> MyRides:
        me = message.user_id
        rows = await store.rides_of_person(self._pool, me, MY_RIDES_MAX + 1)
        driver = await store.driver_profile(self._pool, me)
        return MyRides(
            rides=[_ride(row, me) for row in rows[:MY_RIDES_MAX]],
            driver=None
            if driver is None
            else MyDriverProfile(
                vehicle=driver["vehicle"],
                plate=driver["plate"],
                rating_sum=driver["rating_sum"],
                rating_count=driver["rating_count"],
                created_at=rfc3339(driver["created_at"]),
            ),
            truncated=len(rows) > MY_RIDES_MAX,
        )


def _ride(row: Any, me: str) -> MyRide:
    riding = row["rider_id"] == me
    return MyRide(
        ride_id=row["id"],
        role="rider" if riding else "driver",
        status=row["status"],
        pickup=Point(lat=row["pickup_lat"], lon=row["pickup_lon"]),
        dropoff=Point(lat=row["dropoff_lat"], lon=row["dropoff_lon"]),
        currency=row["currency"],
        estimate=row["estimate"],
        created_at=rfc3339(row["created_at"]),
        fare=row["fare"],
        distance_m=row["distance_m"],
        duration_s=row["duration_s"],
        finished_at=rfc3339(row["finished_at"]) if row["finished_at"] is not None else None,
        group_id=row["group_id"],
        cancel_reason=row["cancel_reason"],
        stars_given=row["rider_stars"] if riding else row["driver_stars"],
        comment_given=row["rider_comment"] if riding else row["driver_comment"],
    )
