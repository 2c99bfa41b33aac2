"""The rides actor: drivers and their live positions, estimates, dispatch with offers,
and the ride's lifecycle with its money held, captured or released through payments.

The actor is the mailbox and its handlers; the work is done by its parts (see the package
docstring), `drivers`, `dispatcher`, `trips`, each given one `RidesContext`: the shard's
`Context` (database, clock, transactions, messages, timers) and the fare table.

One shard (`rides_key`) holds the live map, so a driver is never offered or given two
rides and an accept is atomic: the actor handles one message at a time. Ride state is in
PostgreSQL, and each step commits with the messages it causes (the outbox): void, capture,
the group expense, and RideUpdated to the actors subscribed to it where the node is
composed. After a restart, rides in flight carry on: open offers get their timers back and
rides without one are dispatched again.
"""

from __future__ import annotations

import asyncpg

from actors.rides import fares, store
from actors.rides.context import RidesContext
from actors.rides.dispatcher import Dispatcher
from actors.rides.drivers import Drivers
from actors.rides.messages import (
    AdvanceRide,
    AnswerOffer,
    CancelRide,
    DescribeMyRides,
    DriverView,
    Estimate,
    EstimateRide,
    GetCurrentRide,
    GetOffers,
    GetRide,
    LocationNoted,
    MyRides,
    OfferExpired,
    OfferList,
    RateRide,
    Redispatch,
    RegisterDriver,
    RequestRide,
    RideView,
    SetDriverStatus,
    UpdateLocation,
)
from actors.rides.personal_data import PersonalData
from actors.rides.trips import Trips
from actors.runtime import Actor, Clock, handles, wall_clock


class Rides(Actor):
    """Drivers, dispatch and rides; the live map in memory, every fact in PostgreSQL."""

    idempotency_keys = store.KEYS

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock = wall_clock,
        table: fares.FareTable | None = None,
        offer_timeout: float = 15.0,
        stale_after: float = 60.0,
        persist_interval: float = 5.0,
    ) -> None:
        self._pool, self._clock = pool, clock
        self._persist_interval = persist_interval
        context = RidesContext(
            pool=pool, clock=clock, shard_actor=self, table=table or fares.FareTable()
        )
        self.drivers = Drivers(context, stale_after=stale_after)
        self.dispatcher = Dispatcher(context, drivers=self.drivers, offer_timeout=offer_timeout)
        self.trips = Trips(context, drivers=self.drivers, dispatcher=self.dispatcher)
        self.personal_data = PersonalData(context)  # issue 19: the data export

    async def on_start(self) -> None:
        now = self._clock()
        await self.drivers.load()
        await self.dispatcher.resume(now)
        if self._persist_interval > 0:
            self.every(self._persist_interval, self.drivers.persist_positions, "positions")
        self.prune_keys(self._pool, self._clock)

    # ── drivers ────────────────────────────────────────────────────────────────────────

    @handles(RegisterDriver)
    async def register_driver(self, message: RegisterDriver) -> DriverView:
        return await self.drivers.register(message)

    @handles(SetDriverStatus)
    async def set_status(self, message: SetDriverStatus) -> DriverView:
        return await self.drivers.set_status(message)

    @handles(UpdateLocation)
    async def update_location(self, message: UpdateLocation) -> LocationNoted:
        driver = self.drivers.locate(message)
        if driver.lat is not None and driver.lon is not None:
            self.trips.moved(driver.ride, driver.lat, driver.lon)
        return LocationNoted()

    # ── estimates, requests and offers ─────────────────────────────────────────────────

    @handles(EstimateRide)
    async def estimate(self, message: EstimateRide) -> Estimate:
        return self.dispatcher.estimate(message.pickup, message.dropoff)[0]

    @handles(RequestRide)
    async def request_ride(self, message: RequestRide) -> RideView:
        return await self.dispatcher.request(message)

    @handles(GetOffers)
    async def get_offers(self, message: GetOffers) -> OfferList:
        return await self.dispatcher.offers(message)

    @handles(AnswerOffer)
    async def answer_offer(self, message: AnswerOffer) -> RideView:
        return await self.dispatcher.answer(message)

    @handles(OfferExpired)
    async def offer_expired(self, message: OfferExpired) -> None:
        await self.dispatcher.expired(message)

    @handles(Redispatch)
    async def redispatch(self, message: Redispatch) -> None:
        await self.dispatcher.redispatch(message)

    # ── trips ──────────────────────────────────────────────────────────────────────────

    @handles(GetRide)
    async def get_ride(self, message: GetRide) -> RideView:
        return await self.trips.get(message)

    @handles(GetCurrentRide)
    async def get_current_ride(self, message: GetCurrentRide) -> RideView:
        return await self.trips.current(message)

    @handles(AdvanceRide)
    async def advance(self, message: AdvanceRide) -> RideView:
        return await self.trips.advance(message)

    @handles(CancelRide)
    async def cancel(self, message: CancelRide) -> RideView:
        return await self.trips.cancel(message)

    @handles(RateRide)
    async def rate(self, message: RateRide) -> RideView:
        return await self.trips.rate(message)

    # ── issue 19: a user's own data (export) ───────────────────────────────────────────

    @handles(DescribeMyRides)
    async def describe_my_rides(self, message: DescribeMyRides) -> MyRides:
        return await self.personal_data.describe(message)
