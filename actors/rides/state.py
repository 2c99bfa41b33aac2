"""What the rides dispatcher keeps in memory, and the event a ride step publishes."""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.rides import store
from actors.rides.messages import RideUpdated


@dataclass(slots=True)
class DriverState:
    """What the dispatcher knows of a driver, in memory."""

    vehicle: str
    plate: str
    online: bool = False
    lat: float | None = None
    lon: float | None = None
    seen: float = 0.0  # epoch seconds of the last ping
    ride: str | None = None  # assigned ride
    offer: str | None = None  # ride offered, awaiting an answer
    moved: bool = False  # position not yet written to the database
    rating_sum: int = 0
    rating_count: int = 0


@dataclass(slots=True)
class Trip:
    """The distance a ride in progress has covered, from the driver's pings."""

    lat: float
    lon: float
    metres: int = 0


@dataclass(slots=True)
class Dispatch:
    """A requested ride still looking for a driver."""

    lat: float
    lon: float
    rider_id: str
    tried: set[str] = field(default_factory=set)


def ride_update(
    ride: store.RideRow, *, offered_to: str | None = None, note: str | None = None
) -> RideUpdated:
    return RideUpdated(
        ride_id=ride.id,
        status=ride.status,
        rider_id=ride.rider_id,
        driver_id=ride.driver_id,
        offered_to=offered_to,
        fare=ride.fare,
        currency=ride.currency,
        note=note,
    )
