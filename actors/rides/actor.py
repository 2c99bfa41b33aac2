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

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from actors.rides import fares, store
from actors.rides.context import RidesContext
from actors.rides.dispatcher import Dispatcher
from actors.rides.drivers import Drivers
from actors.rides.messages import (
    AdvanceRide,
    AnswerOffer,
    BorderDrivers,
    CancelRide,
    DescribeMyRides,
    DriverPing,
    DriverView,
    Estimate,
    EstimateRide,
    GetCurrentRide,
    GetOffers,
    GetRide,
    LocationNoted,
    LocationsNoted,
    MyRides,
    NotADriver,
    OfferExpired,
    OfferList,
    RateRide,
    Redispatch,
    RegisterDriver,
    RelayedPing,
    RequestRide,
    RideHoldReady,
    RideView,
    SetDriverStatus,
    TakeOverRide,
    UpdateLocation,
    UpdateLocations,
)
from actors.rides.personal_data import PersonalData
from actors.rides.regional import Regional, Territory
from actors.rides.regions import RegionMap
from actors.rides.trips import Trips
from actors.runtime import (
    REPLY_LATER,
    Actor,
    ActorSystem,
    Clock,
    ReplyLater,
    handles,
    wall_clock,
)

# a driver's own commands: with regions, the region takes the driver over first if the
# database says it is the owner and it does not hold the driver yet
DRIVER_COMMANDS = (RegisterDriver, SetDriverStatus, GetOffers, AnswerOffer, AdvanceRide)


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
        persist_interval: float = 15.0,
        regions: RegionMap | None = None,
        border_feed_interval: float = 1.0,
    ) -> None:
        self._pool, self._clock = pool, clock
        self._persist_interval = persist_interval
        self._table = table or fares.FareTable()
        self._offer_timeout, self._stale_after = offer_timeout, stale_after
        self._regions = regions if regions is not None and regions.regional else None
        self._border_feed_interval = border_feed_interval
        self.regional: Regional | None = None
        self._desk = False
        self._build(None)

    def _build(self, territory: Territory | None) -> None:
        context = RidesContext(
            pool=self._pool,
            clock=self._clock,
            shard_actor=self,
            table=self._table,
            regional=territory is not None,
        )
        self.drivers = Drivers(context, stale_after=self._stale_after)
        self.dispatcher = Dispatcher(
            context, drivers=self.drivers, offer_timeout=self._offer_timeout, territory=territory
        )
        self.trips = Trips(context, drivers=self.drivers, dispatcher=self.dispatcher)
        self.personal_data = PersonalData(context)  # issue 19: the data export
        if territory is not None:
            self.regional = Regional(context, territory, self.drivers)

    def bind(self, *, name: str, shard: int, system: ActorSystem) -> None:
        """With regions (issue 20): shard i is region i, the last shards are desks."""
        super().bind(name=name, shard=shard, system=system)
        if self._regions is None:
            return
        self._build(Territory(self._regions, shard))
        self._desk = self._regions.is_desk(shard)
        for message_type, handler in list(self.dispatch.items()):
            self.dispatch[message_type] = (
                self._hand_on if self._desk else self._in_region(message_type, handler)
            )

    def _in_region(
        self, message_type: type, handler: Callable[[Any], Awaitable[Any]]
    ) -> Callable[[Any], Awaitable[Any]]:
        regional = self.regional
        assert regional is not None
        takes_driver = issubclass(message_type, DRIVER_COMMANDS)

        async def handle(message: Any) -> Any:
            try:
                if takes_driver:
                    await regional.ensure(message.user_id)
                return await handler(message)
            finally:
                await regional.settle()

        return handle

    async def _hand_on(self, message: Any) -> Any:
        """A desk answers an ask once the owning region did, from a task: the desk does
        not wait on one region while questions for the others queue behind it."""
        assert self.regional is not None
        envelope = self.envelope
        if envelope is None or envelope.kind != "ask":
            return await self.regional.hand_on(message)
        await self.regional.hand_on_later(message, envelope)
        return REPLY_LATER

    async def on_start(self) -> None:
        if self._desk:
            return  # a desk holds nothing: it hands messages on
        now = self._clock()
        if self.regional is not None:
            await self.regional.load()
            self.every(self._border_feed_interval, self.regional.feed_border, "border")
        else:
            await self.drivers.load()
        await self.dispatcher.resume(now)
        if self._persist_interval > 0:
            self.every(self._persist_interval, self.drivers.persist_positions, "positions")
        self.prune_keys(self._pool, self._clock)

    async def on_stop(self) -> None:
        if self.regional is not None:
            await self.regional.stop()
        await self.dispatcher.stop()
        await super().on_stop()

    # ── drivers ────────────────────────────────────────────────────────────────────────

    @handles(RegisterDriver)
    async def register_driver(self, message: RegisterDriver) -> DriverView:
        return await self.drivers.register(message)

    @handles(SetDriverStatus)
    async def set_status(self, message: SetDriverStatus) -> DriverView:
        return await self.drivers.set_status(message)

    @handles(UpdateLocation)
    async def update_location(self, message: UpdateLocation) -> LocationNoted:
        await self._ping(message)
        return LocationNoted()

    @handles(UpdateLocations)
    async def update_locations(self, message: UpdateLocations) -> LocationsNoted:
        """Many pings in one message (issue 20): each driver's last one counts, and the
        region settles once after all (not once a ping)."""
        latest = {ping.user_id: ping for ping in message.pings}
        not_drivers: list[str] = []
        for ping in latest.values():
            try:
                await self._ping(ping)
            except NotADriver:
                not_drivers.append(ping.user_id)
        return LocationsNoted(not_drivers=not_drivers)

    async def _ping(self, message: UpdateLocation | DriverPing | RelayedPing) -> None:
        if self.regional is None:
            driver = self.drivers.locate(message)
        else:
            found = await self.regional.ping(message)
            if found is None:
                return  # relayed to the driver's region, or handed over to it
            driver = found
        if driver.lat is not None and driver.lon is not None:
            self.trips.moved(driver.ride, driver.lat, driver.lon)

    # ── between regions (issue 20) ─────────────────────────────────────────────────────

    @handles(RelayedPing)
    async def relayed_ping(self, message: RelayedPing) -> None:
        await self._ping(message)

    @handles(BorderDrivers)
    async def border_drivers(self, message: BorderDrivers) -> None:
        if self.regional is not None:
            self.regional.border_heard(message)

    @handles(TakeOverRide)
    async def take_over_ride(self, message: TakeOverRide) -> None:
        await self.dispatcher.take_over(message)

    # ── estimates, requests and offers ─────────────────────────────────────────────────

    @handles(EstimateRide)
    async def estimate(self, message: EstimateRide) -> Estimate:
        return self.dispatcher.estimate(message.pickup, message.dropoff)[0]

    @handles(RequestRide)
    async def request_ride(self, message: RequestRide) -> RideView | ReplyLater:
        return await self.dispatcher.request(message)

    @handles(RideHoldReady)
    async def hold_ready(self, message: RideHoldReady) -> None:
        await self.dispatcher.hold_ready(message)

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
    async def cancel(self, message: CancelRide) -> RideView | ReplyLater:
        return await self.trips.cancel(message)

    @handles(RateRide)
    async def rate(self, message: RateRide) -> RideView:
        return await self.trips.rate(message)

    # ── issue 19: a user's own data (export) ───────────────────────────────────────────

    @handles(DescribeMyRides)
    async def describe_my_rides(self, message: DescribeMyRides) -> MyRides:
        return await self.personal_data.describe(message)
