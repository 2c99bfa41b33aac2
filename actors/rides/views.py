"""How a ride is shown: its stored row, with its driver and the driver's live position."""

from __future__ import annotations

from actors.rides import store
from actors.rides.drivers import Drivers
from actors.rides.messages import ACTIVE, Estimate, Point, RideView, TimelineEntry
from actors.runtime import Executor, rfc3339


def ride_view(ride: store.RideRow, drivers: Drivers) -> RideView:
    """A ride as the API shows it; `drivers` knows the driver (name, car, live position)."""
    driver = None
    position = None
    state = drivers.get(ride.driver_id)
    if ride.driver_id is not None and state is not None:
        driver = drivers.view(ride.driver_id)
        if ride.status in ACTIVE and state.lat is not None and state.lon is not None:
            position = Point(lat=state.lat, lon=state.lon)
    return RideView(
        id=ride.id,
        status=ride.status,  # type: ignore[arg-type]  # the CHECK keeps it valid
        rider_id=ride.rider_id,
        pickup=Point(lat=ride.pickup_lat, lon=ride.pickup_lon),
        dropoff=Point(lat=ride.dropoff_lat, lon=ride.dropoff_lon),
        estimate=Estimate(
            amount=ride.estimate,
            currency=ride.currency,
            distance_m=ride.estimate_m,
            duration_s=ride.estimate_s,
            surge=ride.surge_bp / 10_000,
        ),
        timeline=[TimelineEntry(status=s, at=rfc3339(at), note=n) for s, at, n in ride.timeline],
        driver=driver,
        driver_position=position,
        group_id=ride.group_id,
        fare=ride.fare,
        distance_m=ride.distance_m,
        duration_s=ride.duration_s,
        cancel_reason=ride.cancel_reason,
        rider_rating=ride.rider_stars,
        driver_rating=ride.driver_stars,
    )


async def load_view(db: Executor, ride_id: str, drivers: Drivers) -> RideView:
    """The stored ride with its timeline, as the API shows it."""
    ride = await store.ride(db, ride_id, timeline=True)
    assert ride is not None
    return ride_view(ride, drivers)
