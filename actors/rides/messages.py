"""The rides actor's whole public interface: commands, replies, events and errors.

Coordinates are WGS84 degrees (floats are fine for places; money stays integer minor
units). One rides shard holds the live map of drivers and dispatches every ride, so a
driver is never offered two rides at once and an accept is atomic; with regions
(actors/rides/regions.py) one shard per region does so for the drivers it owns.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from msgspec import Meta

from actors.runtime import DomainError, IdempotencyKey, Message
from actors.runtime.bounds import LIST_MAX, TEXT_MAX, Id, check_bounds

RideStatus = Literal[
    "requested",
    "driver_assigned",
    "driver_arrived",
    "in_progress",
    "completed",
    "cancelled",
    "no_driver",
]
ACTIVE = ("requested", "driver_assigned", "driver_arrived", "in_progress")
VEHICLE_MAX = 60
PLATE_MAX = 16
COMMENT_MAX = 500
REASON_MAX = 200
PINGS_MAX = 1_000  # drivers' pings in one UpdateLocations
REGION_NAME_MAX = 32  # characters of a region's name (actors/rides/regions.py's setting)

# Bounds of the fields below (actors/runtime/bounds.py checks them wherever a message is
# made or decoded): a place on Earth, finite; stars 1 to 5.
Latitude = Annotated[float, Meta(ge=-90, le=90, description="degrees, -90 to 90")]
Longitude = Annotated[float, Meta(ge=-180, le=180, description="degrees, -180 to 180")]
Stars = Annotated[int, Meta(ge=1, le=5)]
RegionName = Annotated[str, Meta(max_length=REGION_NAME_MAX)]


def _meta(annotation: Any) -> Meta:
    """The msgspec `Meta` of an `Annotated` type: the bounds msgspec checks."""
    return next(m for m in get_args(annotation)[1:] if isinstance(m, Meta))


def _lengths(annotation: Any) -> tuple[int, int]:
    """The shortest and longest text an annotated `str` takes."""
    meta = _meta(annotation)
    if meta.max_length is None:
        raise TypeError(f"{annotation} states no longest text")
    return meta.min_length or 0, meta.max_length


def _range(annotation: Any) -> tuple[float, float]:
    """The lowest and highest number an annotated number takes (both inclusive)."""
    meta = _meta(annotation)
    if meta.ge is None or meta.le is None:
        raise TypeError(f"{annotation} states no lowest and highest number")
    return float(meta.ge), float(meta.le)


# what the one-loop checks below test, read off the annotations msgspec checks (no copy
# of a bound to drift from them); a `str` without Meta has the house bounds
_ID_LENGTHS = _lengths(Id)
_TEXT_LENGTHS = (0, TEXT_MAX)
_LATITUDES, _LONGITUDES = _range(Latitude), _range(Longitude)


def rides_key(message: Any) -> str | None:
    """Every rides message goes to the one dispatching shard (without regions; with
    SPLITGO_RIDE_REGIONS, `actors.rides.regions.RegionMap.key` routes instead)."""
    return "dispatch"


class RidesInput(Message, frozen=True):
    """What the rides actor handles (commands, its timers, the event it publishes): the
    fields' bounds hold wherever one is made or decoded, or it is InvalidRide naming the
    field (`$.pickup.lat`)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidRide)


# ── values and replies ─────────────────────────────────────────────────────────────────


class Point(Message, frozen=True):
    lat: Latitude
    lon: Longitude


class Estimate(Message, frozen=True):
    amount: int
    currency: str
    distance_m: int
    duration_s: int
    surge: float  # 1.0 = none; shown to people, the fare uses integer basis points


class DriverView(Message, frozen=True):
    user_id: str
    vehicle: str
    plate: str
    status: Literal["online", "offline"]
    rating: float | None = None


class OfferView(Message, frozen=True):
    ride_id: str
    pickup: Point
    dropoff: Point
    fare: int
    currency: str
    expires_at: str  # RFC 3339


class OfferList(Message, frozen=True):
    offers: list[OfferView]


class TimelineEntry(Message, frozen=True):
    status: str
    at: str
    note: str | None = None


class RideView(Message, frozen=True):
    id: str
    status: RideStatus
    rider_id: str
    pickup: Point
    dropoff: Point
    estimate: Estimate
    timeline: list[TimelineEntry]
    driver: DriverView | None = None
    driver_position: Point | None = None
    group_id: str | None = None
    fare: int | None = None  # what was charged (completed, or a cancellation fee)
    distance_m: int | None = None  # travelled, once completed
    duration_s: int | None = None
    cancel_reason: str | None = None
    rider_rating: int | None = None  # the stars the rider gave
    driver_rating: int | None = None  # the stars the driver gave


class LocationNoted(Message, frozen=True):
    """A location ping was taken."""


# ── commands ───────────────────────────────────────────────────────────────────────────


class RegisterDriver(RidesInput, frozen=True):
    user_id: Id
    vehicle: Annotated[str, Meta(max_length=VEHICLE_MAX)]
    plate: Annotated[str, Meta(max_length=PLATE_MAX)]
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class SetDriverStatus(RidesInput, frozen=True):
    user_id: Id
    status: Literal["online", "offline"]


class UpdateLocation(RidesInput, frozen=True):
    """A driver's position ping (no database write per ping)."""

    user_id: Id
    lat: Latitude
    lon: Longitude


class DriverPing(Message, frozen=True):
    """One driver's position in an `UpdateLocations`."""

    user_id: Id
    lat: Latitude
    lon: Longitude


class UpdateLocations(RidesInput, frozen=True):
    """Many drivers' pings at once, one message instead of one each: what the HTTP edge
    gathered for a region in ~100 ms, or a client's tick. Pings are last-write-wins: a
    driver named twice counts at its last position. Answers `LocationsNoted`."""

    pings: Annotated[list[DriverPing], Meta(max_length=PINGS_MAX)]

    def __post_init__(self) -> None:
        # up to a thousand pings a message: the usual ones pass one tight loop; anything
        # it does not accept gets the full check, which names the field (same refusals)
        if not pings_plainly_fine(self.pings):
            check_bounds(self, InvalidRide)


def pings_plainly_fine(pings: Any) -> bool:
    """Whether every ping is plainly within its bounds: a `DriverPing` whose id is text of
    1 to ID_MAX characters (as `Id` says) without NUL and whose lat and lon are floats
    within range (NaN and inf fail the comparisons). Only what `check_bounds` accepts
    passes; False says nothing (an int degree is fine too, the full check decides)."""
    return _positions_plainly_fine(pings, DriverPing, _ID_LENGTHS, PINGS_MAX)


def _positions_plainly_fine(items: Any, kind: type, lengths: tuple[int, int], most: int) -> bool:
    """`pings_plainly_fine` for a list of at most `most` `kind`s (user_id, lat, lon) whose
    ids are `lengths` (shortest, longest) characters."""
    if type(items) is not list or len(items) > most:
        return False
    shortest, longest = lengths
    (south, north), (west, east) = _LATITUDES, _LONGITUDES  # locals: the loop is hot
    for item in items:
        if type(item) is not kind:
            return False
        position: Any = item  # a DriverPing or a BorderDriver: user_id, lat, lon
        user_id, lat, lon = position.user_id, position.lat, position.lon
        if not (
            type(user_id) is str
            and shortest <= len(user_id) <= longest
            and "\x00" not in user_id
            and type(lat) is float
            and south <= lat <= north
            and type(lon) is float
            and west <= lon <= east
        ):
            return False
    return True


def _texts_plainly_fine(items: Any, longest: int, most: int) -> bool:
    """A list of at most `most` texts of at most `longest` characters, without NUL."""
    if type(items) is not list or len(items) > most:
        return False
    return all(type(text) is str and len(text) <= longest and "\x00" not in text for text in items)


class LocationsNoted(Message, frozen=True):
    """The pings of an `UpdateLocations` were taken, but for those who are not drivers."""

    not_drivers: list[str] = []


class GetOffers(RidesInput, frozen=True):
    user_id: Id


class EstimateRide(RidesInput, frozen=True):
    pickup: Point
    dropoff: Point


class RequestRide(RidesInput, frozen=True):
    ride_id: Id  # chosen by the caller: a retry finds the first ride
    user_id: Id
    pickup: Point
    dropoff: Point
    group_id: Id | None = None
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class GetRide(RidesInput, frozen=True):
    ride_id: Id
    user_id: Id


class GetCurrentRide(RidesInput, frozen=True):
    """The caller's active ride, as rider or driver (RideNotFound when none)."""

    user_id: Id


class AnswerOffer(RidesInput, frozen=True):
    ride_id: Id
    user_id: Id
    accept: bool
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class AdvanceRide(RidesInput, frozen=True):
    """The driver moves the ride on: arrive, start or complete."""

    ride_id: Id
    user_id: Id
    step: Literal["arrive", "start", "complete"]
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class CancelRide(RidesInput, frozen=True):
    ride_id: Id
    user_id: Id
    reason: Annotated[str, Meta(max_length=REASON_MAX)] | None = None
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class RateRide(RidesInput, frozen=True):
    ride_id: Id
    user_id: Id
    stars: Stars
    comment: Annotated[str, Meta(max_length=COMMENT_MAX)] | None = None
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class OfferExpired(RidesInput, frozen=True):
    """The runtime timer of an offer (`attempt` tells a stale timer from the live one)."""

    ride_id: Id
    driver_id: Id
    attempt: Annotated[int, Meta(ge=0)]


class Redispatch(RidesInput, frozen=True):
    """Offer the ride to the next driver (after a restart, or when a driver goes away)."""

    ride_id: Id


class RideHoldReady(RidesInput, frozen=True):
    """Payments placed the hold of a request (asked from a task, so the shard went on
    meanwhile): store the ride and make its first offer now, on the same shard."""

    ride_id: Id
    hold_id: Id
    amount: Annotated[int, Meta(ge=0)]


# ── between region shards (issue 20: rides by region, actors/rides/regional.py) ──────


class RelayedPing(RidesInput, frozen=True):
    """A driver's ping handed to the region that owns the driver (the region it came in
    does not own them: they are on a ride elsewhere, or just crossed the border)."""

    user_id: Id
    lat: Latitude
    lon: Longitude
    hops: Annotated[int, Meta(ge=0, le=8)] = 0


class BorderDriver(Message, frozen=True):
    user_id: str
    lat: Latitude
    lon: Longitude


class BorderDrivers(RidesInput, frozen=True):
    """The owning region's free drivers near a neighbour's edge (`near`), and those no
    longer there or no longer free (`gone`): the neighbour's read-only border view."""

    region: RegionName
    near: list[BorderDriver]
    gone: list[str]

    def __post_init__(self) -> None:
        # every second, up to FEED_CHUNK drivers each way: one tight loop for the usual,
        # the full check (naming the field) for anything it does not accept
        if not border_feed_plainly_fine(self.region, self.near, self.gone):
            check_bounds(self, InvalidRide)


def border_feed_plainly_fine(region: Any, near: Any, gone: Any) -> bool:
    """Whether a `BorderDrivers`' fields are plainly within their bounds (as
    `pings_plainly_fine`: only what `check_bounds` accepts passes)."""
    return (
        type(region) is str
        and len(region) <= REGION_NAME_MAX
        and "\x00" not in region
        and _positions_plainly_fine(near, BorderDriver, _TEXT_LENGTHS, LIST_MAX)
        and _texts_plainly_fine(gone, TEXT_MAX, LIST_MAX)
    )


class TakeOverRide(RidesInput, frozen=True):
    """A requested ride moved to this region (its nearest free driver is one of ours):
    dispatch it from here on."""

    ride_id: Id


# ── events (through the reliable hand-off) ─────────────────────────────────────────────


class RideUpdated(RidesInput, frozen=True):
    """A ride moved: `status` is where it is now; `offered_to` names a driver with a new
    offer. Rider and driver are told (notifications), and it is pushed live."""

    ride_id: Id
    status: str
    rider_id: str
    driver_id: str | None = None
    offered_to: str | None = None
    fare: int | None = None
    currency: str | None = None
    note: str | None = None


# ── errors ─────────────────────────────────────────────────────────────────────────────


class RideNotFound(DomainError):
    code = "ride_not_found"
    category = "not_found"


class NotADriver(DomainError):
    code = "not_a_driver"
    category = "forbidden"


class AlreadyADriver(DomainError):
    code = "already_a_driver"
    category = "conflict"


class InvalidRide(DomainError):
    """A coordinate, a rating or another field is wrong; `details["field"]` names it."""

    code = "invalid_ride"
    category = "invalid"


class TripTooLong(DomainError):
    """The trip is longer than the node's maximum (SPLITGO_RIDES_MAX_TRIP_KM, straight line):
    it is neither quoted nor requested."""

    code = "trip_too_long"
    category = "invalid"


class InvalidTransition(DomainError):
    code = "invalid_transition"
    category = "conflict"


class OfferExpiredError(DomainError):
    """The offer timed out or went to someone else."""

    code = "offer_expired"
    category = "conflict"


class RideInProgress(DomainError):
    """The rider already has an active ride."""

    code = "ride_in_progress"
    category = "conflict"


class AlreadyRated(DomainError):
    code = "already_rated"
    category = "conflict"


# ── personal data: a user's export (issue 19) ─────────────────────────────────────────

MY_RIDES_MAX = 2_000  # rides one DescribeMyRides answers at most


class DescribeMyRides(RidesInput, frozen=True):
    """The rides the user took or drove, oldest first (at most MY_RIDES_MAX; `truncated`
    says more were left out), and their driver profile if any, for their data export.
    Replies MyRides."""

    user_id: Id


class MyRide(Message, frozen=True):
    ride_id: str
    role: Literal["rider", "driver"]
    status: str
    pickup: Point
    dropoff: Point
    currency: str
    estimate: int
    created_at: str
    fare: int | None = None
    distance_m: int | None = None
    duration_s: int | None = None
    finished_at: str | None = None
    group_id: str | None = None
    cancel_reason: str | None = None
    stars_given: int | None = None
    comment_given: str | None = None


class MyDriverProfile(Message, frozen=True):
    vehicle: str
    plate: str
    rating_sum: int
    rating_count: int
    created_at: str


class MyRides(Message, frozen=True):
    rides: list[MyRide]
    driver: MyDriverProfile | None = None
    truncated: bool = False
