"""The rides actor: drivers and their live positions, estimates, dispatch with offers,
and the ride's lifecycle with its money held, captured or released through payments.

One shard (`rides_key`) holds the live map, so a driver is never offered or given two
rides and an accept is atomic: the actor handles one message at a time. Positions live in
memory (`GeoIndex`) and are written to the database every few seconds, not per ping; a
driver unseen for `stale_after` seconds counts as offline. Ride state is in PostgreSQL,
and each step commits with the messages it causes (the outbox): void, capture, the group
expense, the events. After a restart, rides in flight carry on: open offers get their
timers back and rides without one are dispatched again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from actors.auth.messages import GrantRole
from actors.payments.messages import CaptureHold, HoldView, PlaceHold, VoidHold
from actors.rides import fares, store
from actors.rides.dispatch import GeoIndex
from actors.rides.lifecycle import Lifecycle, ride_view
from actors.rides.messages import (
    AlreadyADriver,
    AnswerOffer,
    DriverView,
    Estimate,
    EstimateRide,
    GetOffers,
    InvalidRide,
    LocationNoted,
    NotADriver,
    OfferExpired,
    OfferExpiredError,
    OfferList,
    OfferView,
    Point,
    Redispatch,
    RegisterDriver,
    RequestRide,
    RideInProgress,
    RideNotFound,
    RideView,
    SetDriverStatus,
    UpdateLocation,
)
from actors.rides.state import Dispatch, DriverState, Trip, ride_update
from actors.runtime import Actor, Message, Transaction, handles
from actors.runtime.clock import rfc3339
from actors.splits.messages import GetGroup

log = structlog.get_logger("rides")

SEARCH_RADII_M = (2_000, 5_000, 10_000)  # the search grows ring by ring
SURGE_RADIUS_M = 2_000
HOLD_SECONDS = 4 * 3600.0


class Rides(Lifecycle, Actor):
    """Drivers, dispatch and rides; the live map in memory, every fact in PostgreSQL."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Callable[[], float] = time.time,
        table: fares.FareTable | None = None,
        offer_timeout: float = 15.0,
        stale_after: float = 60.0,
        persist_interval: float = 5.0,
        subscribers: Mapping[type, Sequence[str]] | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._table = table or fares.FareTable()
        self._offer_timeout = offer_timeout
        self._stale_after = stale_after
        self._persist_interval = persist_interval
        self._subscribers = {kind: tuple(names) for kind, names in (subscribers or {}).items()}
        self._drivers: dict[str, DriverState] = {}
        self._index = GeoIndex()
        self._dispatching: dict[str, Dispatch] = {}
        self._trips: dict[str, Trip] = {}

    # ── lifecycle of the actor ─────────────────────────────────────────────────────────

    async def on_start(self) -> None:
        now = self._clock()
        for row in await store.drivers(self._pool):
            state = DriverState(
                vehicle=row.vehicle,
                plate=row.plate,
                online=row.status == "online",
                lat=row.lat,
                lon=row.lon,
                seen=row.seen_at.timestamp() if row.seen_at else 0.0,
                rating_sum=row.rating_sum,
                rating_count=row.rating_count,
            )
            self._drivers[row.user_id] = state
            self._place(row.user_id, state)
        for ride in await store.active_rides(self._pool):
            self._resume(ride, now)
        if self._persist_interval > 0:
            self.every(self._persist_interval, self.persist_positions, "positions")

    def _resume(self, ride: store.RideRow, now: float) -> None:
        if ride.status != "requested":
            if ride.driver_id in self._drivers:
                self._drivers[ride.driver_id].ride = ride.id
                self._index.remove(ride.driver_id)
            return
        self._dispatching[ride.id] = Dispatch(
            ride.pickup_lat, ride.pickup_lon, ride.rider_id, set(ride.tried)
        )
        expires = ride.offer_expires_at.timestamp() if ride.offer_expires_at else 0.0
        if ride.offered_to and expires > now and ride.offered_to in self._drivers:
            self._drivers[ride.offered_to].offer = ride.id
            self.schedule(
                expires - now,
                OfferExpired(
                    ride_id=ride.id, driver_id=ride.offered_to, attempt=ride.offer_attempt
                ),
            )
        else:
            self.schedule(0.0, Redispatch(ride_id=ride.id))
        log.info("ride_resumed", ride_id=ride.id, offered_to=ride.offered_to)

    async def persist_positions(self) -> None:
        moved = [(k, d) for k, d in self._drivers.items() if d.moved and d.lat is not None]
        for _, driver in moved:
            driver.moved = False
        await store.save_positions(
            self._pool,
            [
                (k, d.lat or 0.0, d.lon or 0.0, datetime.fromtimestamp(d.seen, UTC))
                for k, d in moved
            ],
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _publish(self, tx: Transaction, event: Message) -> None:
        for target in self._subscribers.get(type(event), ()):
            await tx.tell(target, event)

    # ── drivers ────────────────────────────────────────────────────────────────────────

    def _available(self, user_id: str) -> bool:
        driver = self._drivers.get(user_id)
        return (
            driver is not None
            and driver.online
            and driver.ride is None
            and driver.offer is None
            and self._clock() - driver.seen <= self._stale_after
        )

    def _place(self, user_id: str, driver: DriverState) -> None:
        """Keep the index to drivers who could take a ride (positions of the rest stay)."""
        if (
            driver.online
            and driver.ride is None
            and driver.lat is not None
            and driver.lon is not None
        ):
            self._index.update(user_id, driver.lat, driver.lon)
        else:
            self._index.remove(user_id)

    def _driver(self, user_id: str) -> DriverState:
        driver = self._drivers.get(user_id)
        if driver is None:
            raise NotADriver("Register as a driver first (POST /api/v1/drivers).")
        return driver

    def driver_view(self, user_id: str) -> DriverView:
        driver = self._driver(user_id)
        rating = round(driver.rating_sum / driver.rating_count, 2) if driver.rating_count else None
        return DriverView(
            user_id=user_id,
            vehicle=driver.vehicle,
            plate=driver.plate,
            status="online" if driver.online else "offline",
            rating=rating,
        )

    @handles(RegisterDriver)
    async def register_driver(self, message: RegisterDriver) -> DriverView:
        vehicle = _text(message.vehicle, "vehicle", 60)
        plate = _text(message.plate, "plate", 16).upper()
        if message.user_id in self._drivers:
            raise AlreadyADriver("You are registered as a driver already.")
        async with self.transaction() as tx:
            if not tx.duplicate:
                await store.insert_driver(tx, message.user_id, vehicle, plate, self._now())
                await tx.tell("auth", GrantRole(user_id=message.user_id, role="driver"))
        self._drivers[message.user_id] = DriverState(vehicle=vehicle, plate=plate)
        return self.driver_view(message.user_id)

    @handles(SetDriverStatus)
    async def set_status(self, message: SetDriverStatus) -> DriverView:
        driver = self._driver(message.user_id)
        driver.online = message.status == "online"
        await store.set_driver_status(self._pool, message.user_id, message.status)
        self._place(message.user_id, driver)
        if not driver.online and driver.offer is not None:
            # an offer waiting on a driver who left goes to the next one now
            await self.tell(self.name, Redispatch(ride_id=driver.offer))
            driver.offer = None
        return self.driver_view(message.user_id)

    @handles(UpdateLocation)
    async def update_location(self, message: UpdateLocation) -> LocationNoted:
        lat, lon = fares.check_point(message.lat, message.lon, "$")
        driver = self._driver(message.user_id)
        driver.lat, driver.lon, driver.seen, driver.moved = lat, lon, self._clock(), True
        self._place(message.user_id, driver)
        trip = self._trips.get(driver.ride or "")
        if trip is not None:
            trip.metres += fares.distance_m((trip.lat, trip.lon), (lat, lon))
            trip.lat, trip.lon = lat, lon
        return LocationNoted()

    @handles(GetOffers)
    async def get_offers(self, message: GetOffers) -> OfferList:
        driver = self._driver(message.user_id)
        if driver.offer is None:
            return OfferList(offers=[])
        ride = await store.ride(self._pool, driver.offer)
        if (
            ride is None
            or ride.offered_to != message.user_id
            or ride.offer_expires_at is None
            or ride.offer_expires_at.timestamp() <= self._clock()
        ):
            return OfferList(offers=[])
        return OfferList(
            offers=[
                OfferView(
                    ride_id=ride.id,
                    pickup=Point(lat=ride.pickup_lat, lon=ride.pickup_lon),
                    dropoff=Point(lat=ride.dropoff_lat, lon=ride.dropoff_lon),
                    fare=ride.estimate,
                    currency=ride.currency,
                    expires_at=rfc3339(ride.offer_expires_at),
                )
            ]
        )

    # ── estimates and requests ─────────────────────────────────────────────────────────

    def _estimate(self, pickup: Point, dropoff: Point) -> tuple[Estimate, int]:
        start = fares.check_point(pickup.lat, pickup.lon, "$.pickup")
        end = fares.check_point(dropoff.lat, dropoff.lon, "$.dropoff")
        if fares.distance_m(start, end) < 50:
            raise InvalidRide(
                "The dropoff must be somewhere else than the pickup.",
                details={"field": "$.dropoff"},
            )
        demand = sum(
            1
            for d in self._dispatching.values()
            if fares.distance_m((d.lat, d.lon), start) <= SURGE_RADIUS_M
        )
        supply = self._index.count_within(*start, SURGE_RADIUS_M, accept=self._available)
        surge = fares.surge_bp(demand + 1, supply, self._table)
        amount, metres, seconds = fares.estimate(start, end, surge, self._table)
        return (
            Estimate(
                amount=amount,
                currency=self._table.currency,
                distance_m=metres,
                duration_s=seconds,
                surge=surge / 10_000,
            ),
            surge,
        )

    @handles(EstimateRide)
    async def estimate(self, message: EstimateRide) -> Estimate:
        return self._estimate(message.pickup, message.dropoff)[0]

    @handles(RequestRide)
    async def request_ride(self, message: RequestRide) -> RideView:
        known = await store.ride(self._pool, message.ride_id, timeline=True)
        if known is not None:  # a retried request: its first ride
            if known.rider_id != message.user_id:
                raise RideNotFound("No such ride among yours.")
            return ride_view(known, self)
        estimate, surge = self._estimate(message.pickup, message.dropoff)
        if await store.has_active_ride(self._pool, message.user_id):
            raise RideInProgress("You have a ride in progress already.")
        if message.group_id is not None:
            # GroupNotFound (not in it, or no such group) reaches the caller as it is
            await self.ask("splits", GetGroup(group_id=message.group_id, user_id=message.user_id))
        hold: HoldView = await self.ask(
            "payments",
            PlaceHold(
                idempotency_key=f"ride:{message.ride_id}",
                user_id=message.user_id,
                amount=estimate.amount,
                currency=estimate.currency,
                expires_in=HOLD_SECONDS,
                reference=f"ride:{message.ride_id}",
            ),
        )
        now = self._now()
        ride = _new_ride(message, estimate, surge, hold.id, now)
        self._dispatching[ride.id] = Dispatch(ride.pickup_lat, ride.pickup_lon, ride.rider_id)
        try:
            async with self.transaction() as tx:
                if not tx.duplicate:
                    await store.insert_ride(tx, ride)
                    await store.add_step(tx, ride.id, "requested", now)
                    await self._publish(tx, ride_update(ride))
                    await self._offer_next(tx, ride)
        except (Exception, asyncio.CancelledError):
            # no ride was stored: forget it here and give the money back at once
            self._dispatching.pop(ride.id, None)
            for driver in self._drivers.values():
                if driver.offer == ride.id:
                    driver.offer = None
            await asyncio.shield(self.tell("payments", VoidHold(hold_id=hold.id)))
            raise
        return await self._view(ride.id)

    # ── dispatch ───────────────────────────────────────────────────────────────────────

    def _candidate(self, ride_id: str) -> str | None:
        wanted = self._dispatching.get(ride_id)
        if wanted is None:
            return None

        def fits(user_id: str) -> bool:
            return (
                user_id != wanted.rider_id
                and user_id not in wanted.tried
                and self._available(user_id)
            )

        for radius in SEARCH_RADII_M:
            found = self._index.nearest(wanted.lat, wanted.lon, radius_m=radius, accept=fits)
            if found:
                return found[0][0]
        return None

    async def _offer_next(self, tx: Transaction, ride: store.RideRow) -> None:
        """Offer the ride to the nearest available driver, or end it: no driver."""
        driver_id = self._candidate(ride.id)
        if driver_id is None:
            await self._no_driver(tx, ride)
            return
        ride.offered_to = driver_id
        ride.offer_attempt += 1
        ride.offer_expires_at = self._now() + timedelta(seconds=self._offer_timeout)
        ride.tried = [*ride.tried, driver_id]
        self._dispatching[ride.id].tried.add(driver_id)
        self._drivers[driver_id].offer = ride.id
        await store.save_offer(tx, ride)
        await self._publish(tx, ride_update(ride, offered_to=driver_id))
        self.schedule(
            self._offer_timeout,
            OfferExpired(ride_id=ride.id, driver_id=driver_id, attempt=ride.offer_attempt),
        )
        log.info("ride_offered", ride_id=ride.id, driver_id=driver_id, attempt=ride.offer_attempt)

    async def _no_driver(self, tx: Transaction, ride: store.RideRow) -> None:
        ride.status, ride.offered_to, ride.offer_expires_at = "no_driver", None, None
        ride.finished_at = self._now()
        self._dispatching.pop(ride.id, None)
        await store.save_state(tx, ride)
        await store.add_step(tx, ride.id, "no_driver", ride.finished_at)
        if ride.hold_id:
            await tx.tell("payments", VoidHold(hold_id=ride.hold_id))
        await self._publish(tx, ride_update(ride, note="No driver is available right now."))
        log.info("ride_no_driver", ride_id=ride.id, tried=len(ride.tried))

    def _withdraw(self, ride: store.RideRow) -> None:
        """The open offer of a ride ends (answered, expired, or the ride went away)."""
        if ride.offered_to and ride.offered_to in self._drivers:
            driver = self._drivers[ride.offered_to]
            if driver.offer == ride.id:
                driver.offer = None
        ride.offered_to, ride.offer_expires_at = None, None

    @handles(AnswerOffer)
    async def answer_offer(self, message: AnswerOffer) -> RideView:
        driver = self._driver(message.user_id)
        ride = await store.ride(self._pool, message.ride_id)
        now = self._clock()
        expires = ride.offer_expires_at.timestamp() if ride and ride.offer_expires_at else 0.0
        if (
            ride is None
            or ride.status != "requested"
            or ride.offered_to != message.user_id
            or expires <= now
            or not driver.online
        ):
            raise OfferExpiredError("This offer has expired or went to another driver.")
        self._withdraw(ride)
        async with self.transaction() as tx:
            if tx.duplicate:
                pass
            elif not message.accept:
                await store.add_step(tx, ride.id, "declined", self._now(), note=message.user_id)
                await self._offer_next(tx, ride)
            else:
                await self._assign(tx, ride, message.user_id)
        return await self._view(ride.id)

    async def _assign(self, tx: Transaction, ride: store.RideRow, driver_id: str) -> None:
        ride.status, ride.driver_id = "driver_assigned", driver_id
        self._dispatching.pop(ride.id, None)
        driver = self._drivers[driver_id]
        driver.ride = ride.id
        self._place(driver_id, driver)
        await store.save_state(tx, ride)
        await store.add_step(tx, ride.id, "driver_assigned", self._now(), note=driver_id)
        await self._publish(tx, ride_update(ride))

    @handles(OfferExpired)
    async def offer_expired(self, message: OfferExpired) -> None:
        ride = await store.ride(self._pool, message.ride_id)
        if (
            ride is None
            or ride.status != "requested"
            or ride.offered_to != message.driver_id
            or ride.offer_attempt != message.attempt
        ):
            return  # answered already, or a stale timer of an earlier offer
        self._withdraw(ride)
        async with self.transaction() as tx:
            if tx.duplicate:
                return
            await store.add_step(tx, ride.id, "offer_expired", self._now(), note=message.driver_id)
            await self._offer_next(tx, ride)

    @handles(Redispatch)
    async def redispatch(self, message: Redispatch) -> None:
        ride = await store.ride(self._pool, message.ride_id)
        if (
            ride is None
            or ride.status != "requested"
            or (
                ride.offered_to in self._drivers
                and (self._drivers[ride.offered_to].offer == ride.id)
            )
        ):
            return
        self._withdraw(ride)
        async with self.transaction() as tx:
            if not tx.duplicate:
                await self._offer_next(tx, ride)

    async def _view(self, ride_id: str) -> RideView:
        ride = await store.ride(self._pool, ride_id, timeline=True)
        assert ride is not None
        return ride_view(ride, self)

    def _capture(self, ride: store.RideRow, amount: int, purpose: str) -> CaptureHold:
        fee = fares.platform_fee(amount, self._table)
        return CaptureHold(
            idempotency_key=f"ride-{purpose}:{ride.id}",
            hold_id=ride.hold_id or "",
            amount=amount,
            payee_user_id=ride.driver_id,
            fee=fee,
        )


def _text(value: str, field: str, maximum: int) -> str:
    cleaned = " ".join(value.split())
    if not cleaned or len(cleaned) > maximum or any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        raise InvalidRide(
            f"{field} must be 1 to {maximum} printable characters.", details={"field": f"$.{field}"}
        )
    return cleaned


def _new_ride(
    message: RequestRide, estimate: Estimate, surge: int, hold_id: str, now: datetime
) -> store.RideRow:
    return store.RideRow(
        id=message.ride_id,
        rider_id=message.user_id,
        driver_id=None,
        status="requested",
        pickup_lat=message.pickup.lat,
        pickup_lon=message.pickup.lon,
        dropoff_lat=message.dropoff.lat,
        dropoff_lon=message.dropoff.lon,
        group_id=message.group_id,
        currency=estimate.currency,
        estimate=estimate.amount,
        estimate_m=estimate.distance_m,
        estimate_s=estimate.duration_s,
        surge_bp=surge,
        hold_id=hold_id,
        offered_to=None,
        offer_attempt=0,
        offer_expires_at=None,
        tried=[],
        fare=None,
        distance_m=None,
        duration_s=None,
        cancel_reason=None,
        rider_stars=None,
        rider_comment=None,
        driver_stars=None,
        driver_comment=None,
        created_at=now,
        started_at=None,
        finished_at=None,
    )
