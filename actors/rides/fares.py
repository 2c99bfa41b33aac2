"""Fares, distances and surge: pure functions, no IO; money in integer minor units.

Coordinates are WGS84 degrees. Distances are great-circle (haversine on a sphere of the
mean Earth radius) in whole metres; durations whole seconds at the table's city speed.
A fare is

    (base + per_km * km + per_minute * minutes) * surge + booking_fee, at least minimum

computed exactly with integers (surge in basis points, 10_000 == 1.0x) and rounded half
up to the minor unit once, at the end: no float ever touches money.

`haversine_m` is the one distance kernel: `distance_m` and the dispatch geo index
(`actors.rides.dispatch`) both call it, so the index and its brute-force baseline agree to
the metre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from actors.rides.messages import InvalidRide, TripTooLong

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean Earth radius
NO_SURGE_BP = 10_000  # 1.0x in basis points
FULL_BP = 10_000


@dataclass(frozen=True, slots=True)
class FareTable:
    """One city's prices (minor units of `currency`) and dispatch assumptions."""

    currency: str = "EUR"
    base: int = 250  # minor units
    per_km: int = 120
    per_minute: int = 25
    booking_fee: int = 150  # never surged
    minimum: int = 700
    city_speed_kmh: int = 25
    surge_cap_bp: int = 25_000  # 2.5x
    cancellation_fee: int = 500
    platform_fee_bp: int = 2_000  # 20 % of a fare to the platform
    max_trip_m: int = 200_000  # longest trip quoted (straight line): SPLITGO_RIDES_MAX_TRIP_KM

    def __post_init__(self) -> None:
        # A table is configuration: a wrong one is a programming error, refused at start.
        if not (len(self.currency) == 3 and self.currency.isascii() and self.currency.isupper()):
            raise ValueError(f"currency must be an ISO 4217 code, not {self.currency!r}")
        amounts = {
            "base": self.base,
            "per_km": self.per_km,
            "per_minute": self.per_minute,
            "booking_fee": self.booking_fee,
            "minimum": self.minimum,
            "cancellation_fee": self.cancellation_fee,
            "platform_fee_bp": self.platform_fee_bp,
        }
        for name, value in amounts.items():
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        if type(self.max_trip_m) is not int or self.max_trip_m < 1:
            raise ValueError("max_trip_m must be a positive integer")
        if type(self.city_speed_kmh) is not int or self.city_speed_kmh < 1:
            raise ValueError("city_speed_kmh must be a positive integer")
        if type(self.surge_cap_bp) is not int or self.surge_cap_bp < NO_SURGE_BP:
            raise ValueError("surge_cap_bp must be an integer of at least 10_000 (1.0x)")
        if self.platform_fee_bp > FULL_BP:
            raise ValueError("platform_fee_bp must be at most 10_000 (100 %)")


def check_point(lat: float, lon: float, field: str) -> tuple[float, float]:
    """`(lat, lon)` as floats if they are a place on Earth, else InvalidRide naming
    `field.lat` or `field.lon`.

    Both must be real numbers (int or float, not bool), finite, lat within [-90, 90] and
    lon within [-180, 180].
    """
    # the common case in one test (a ping each): floats in range (NaN and inf fail it)
    if (
        type(lat) is float
        and type(lon) is float
        and -90.0 <= lat <= 90.0
        and -180.0 <= lon <= 180.0
    ):
        return lat, lon
    for name, value, limit in (("lat", lat, 90), ("lon", lon, 180)):
        path = f"{field}.{name}"
        # bool is an int subclass: True would silently become 1.0 degree
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRide(f"{path} must be a number of degrees", details={"field": path})
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRide(f"{path} must be a finite number", details={"field": path})
        # compared before float(): a huge int would overflow the conversion
        if not -limit <= value <= limit:
            raise InvalidRide(
                f"{path} must be between {-limit} and {limit} degrees", details={"field": path}
            )
    return float(lat), float(lon)


def haversine_m(
    lat1_rad: float,
    lon1_rad: float,
    cos_lat1: float,
    lat2_rad: float,
    lon2_rad: float,
    cos_lat2: float,
) -> int:
    """The great-circle distance in whole metres between two points given in radians with
    the cosines of their latitudes (precomputed by callers that reuse a point).

    Symmetric bit for bit: the differences are taken as absolute values and the cosines'
    product is commutative, so swapping the points gives the same float, hence the same
    integer.
    """
    half_dlat = math.sin(abs(lat2_rad - lat1_rad) * 0.5)
    half_dlon = math.sin(abs(lon2_rad - lon1_rad) * 0.5)
    h = half_dlat * half_dlat + cos_lat1 * cos_lat2 * half_dlon * half_dlon
    # rounding can push h a hair above 1 for antipodal points; asin would then fail
    return round(2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(h if h < 1.0 else 1.0)))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> int:
    """The great-circle distance between two (lat, lon) points in degrees, in whole metres
    (haversine, mean Earth radius 6,371,008.8 m)."""
    lat1 = math.radians(a[0])
    lat2 = math.radians(b[0])
    return haversine_m(
        lat1, math.radians(a[1]), math.cos(lat1), lat2, math.radians(b[1]), math.cos(lat2)
    )


def check_trip(distance: int, table: FareTable) -> None:
    """TripTooLong (naming `$.dropoff`) when `distance` metres is past the table's maximum."""
    if distance > table.max_trip_m:
        limit_km = table.max_trip_m / 1000
        raise TripTooLong(
            f"This trip is {distance / 1000:,.0f} km; trips are at most {limit_km:,.0f} km.",
            details={"field": "$.dropoff", "distance_m": distance, "max_m": table.max_trip_m},
        )


def duration_s(distance: int, table: FareTable) -> int:
    """Seconds to drive `distance` metres at the table's city speed, rounded up; at least
    60 for any non-zero distance (no trip is quoted under a minute)."""
    if distance < 0:
        raise ValueError("distance must not be negative")
    if distance == 0:
        return 0
    metres_per_hour = table.city_speed_kmh * 1_000
    seconds = -(-distance * 3_600 // metres_per_hour)  # ceiling division, integers only
    return max(seconds, 60)


def surge_bp(demand: int, supply: int, table: FareTable) -> int:
    """The surge multiplier in basis points for `demand` open requests and `supply`
    available drivers nearby: 10_000 (1.0x) while supply covers demand, then +0.5x per
    missing driver per available driver, capped at the table's `surge_cap_bp`."""
    if demand < 0 or supply < 0:
        raise ValueError("demand and supply must not be negative")
    if demand <= supply:
        return NO_SURGE_BP
    surge = NO_SURGE_BP + 5_000 * (demand - supply) // max(supply, 1)
    return min(surge, table.surge_cap_bp)


def fare(distance: int, duration: int, surge: int, table: FareTable) -> int:
    """The fare in minor units for `distance` metres, `duration` seconds and `surge`
    basis points.

    (base + per_km * distance / 1000 + per_minute * duration / 60) * surge / 10_000 is
    computed as one exact fraction and rounded half up to the minor unit; the booking fee
    is added after the surge (it is never surged); the result is at least `minimum`.
    `surge` is taken as given (`surge_bp` applies the cap).
    """
    if distance < 0 or duration < 0 or surge < 0:
        raise ValueError("distance, duration and surge must not be negative")
    # Over the common denominator 1000 * 60 = 60_000, then * surge / 10_000.
    metered = (
        table.base * 60_000 + table.per_km * distance * 60 + table.per_minute * duration * 1_000
    )
    numerator = metered * surge
    denominator = 60_000 * FULL_BP
    surged = (2 * numerator + denominator) // (2 * denominator)  # half up, exact
    return max(surged + table.booking_fee, table.minimum)


def estimate(
    pickup: tuple[float, float], dropoff: tuple[float, float], surge: int, table: FareTable
) -> tuple[int, int, int]:
    """(amount, distance_m, duration_s) of a trip from `pickup` to `dropoff` (straight
    line at city speed) at `surge` basis points; bad coordinates raise InvalidRide naming
    `pickup.lat`, `dropoff.lon`, ...; a trip longer than the table's `max_trip_m` raises
    TripTooLong (`$.dropoff`): nobody is quoted, or held, a fare for crossing a continent."""
    start = check_point(pickup[0], pickup[1], "pickup")
    end = check_point(dropoff[0], dropoff[1], "dropoff")
    distance = distance_m(start, end)
    check_trip(distance, table)
    duration = duration_s(distance, table)
    return fare(distance, duration, surge, table), distance, duration


def platform_fee(amount: int, table: FareTable) -> int:
    """The platform's share of a fare: amount * platform_fee_bp / 10_000 rounded half up,
    never more than `amount` (the driver gets the rest)."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    fee = (2 * amount * table.platform_fee_bp + FULL_BP) // (2 * FULL_BP)
    return min(fee, amount)
