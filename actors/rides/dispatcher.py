"""The dispatcher: estimates, requests, and a requested ride offered to one driver at a time.

A request checks the group (if it names one) with splits, has payments hold the estimate on
the rider's wallet, stores the ride and offers it to the nearest available driver. An offer
waits `offer_timeout` seconds; declined or expired, it goes to the next nearest driver who
was not tried yet, in rings of growing radius. No one left: the ride ends as `no_driver`
and the hold is voided, before the handler answers (`settle_now`), so no one is told
`no_driver` while the wallet still shows the hold. After a restart, open offers get their
timers back and rides without one are dispatched again (`resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import msgspec
import structlog

from actors.payments.messages import CaptureHold, HoldView, PlaceHold, VoidHold
from actors.rides import fares, store
from actors.rides.context import RidesContext
from actors.rides.drivers import Drivers
from actors.rides.messages import (
    AnswerOffer,
    Estimate,
    GetOffers,
    InvalidRide,
    OfferExpired,
    OfferExpiredError,
    OfferList,
    OfferView,
    Point,
    Redispatch,
    RequestRide,
    RideInProgress,
    RideNotFound,
    RideView,
    TakeOverRide,
)
from actors.rides.regional import Territory
from actors.rides.state import Dispatch, ride_update
from actors.rides.views import load_view, ride_view
from actors.runtime import DomainError, Transaction, rfc3339
from actors.splits.messages import GetGroup

log = structlog.get_logger("rides")

SEARCH_RADII_M = (2_000, 5_000, 10_000)  # the search grows ring by ring
SURGE_RADIUS_M = 2_000
HOLD_SECONDS = 4 * 3600.0
# how long an answer waits for payments to void or capture a hold before it goes anyway
# (the outbox's copy of the message still settles it)
SETTLE_SECONDS = 5.0


class Dispatcher:
    """Rides still looking for a driver, and the offers made to drivers for them."""

    def __init__(
        self,
        context: RidesContext,
        *,
        drivers: Drivers,
        offer_timeout: float,
        territory: Territory | None = None,
    ) -> None:
        self._context = context
        self._territory = territory  # with regions: ours (rides of other regions are not)
        self._pool = context.pool
        self._drivers = drivers
        self._offer_timeout = offer_timeout
        self._dispatching: dict[str, Dispatch] = {}
        # holds a no_driver released in the transaction under way: voided once it commits
        self._released: list[str] = []

    @contextlib.asynccontextmanager
    async def _committing(self) -> AsyncIterator[Transaction]:
        """The shard's transaction; once it committed, the holds a `no_driver` in it
        released are voided (asked of payments) before the handler goes on to answer."""
        self._released = []
        async with self._context.transaction() as tx:
            yield tx
        released, self._released = self._released, []
        for hold_id in released:
            await self.settle_now(VoidHold(hold_id=hold_id))

    async def settle_now(self, message: VoidHold | CaptureHold) -> None:
        """Have payments void or capture a hold now, and wait for it: the answer that
        follows finds the wallet settled. The transaction that ended the ride put the same
        message in its outbox (the reliable path); payments answers a second one alike."""
        try:
            await self._context.ask("payments", message, timeout=SETTLE_SECONDS)
        except DomainError as error:
            log.warning("ride_hold_not_settled_at_once", hold_id=message.hold_id, code=error.code)

    async def resume(self, now: float) -> None:
        """Carry on with the rides in flight after a (re)start."""
        for ride in await store.active_rides(self._pool):
            if self._territory is None or self._territory.owns_ride(ride):
                self._resume(ride, now)

    def _resume(self, ride: store.RideRow, now: float) -> None:
        if ride.status != "requested":
            self._drivers.take(ride.driver_id, ride.id)
            return
        self._dispatching[ride.id] = Dispatch(
            ride.pickup_lat, ride.pickup_lon, ride.rider_id, set(ride.tried)
        )
        expires = ride.offer_expires_at.timestamp() if ride.offer_expires_at else 0.0
        offered = self._drivers.get(ride.offered_to)
        if ride.offered_to and expires > now and offered is not None:
            offered.offer = ride.id
            self._context.schedule(
                expires - now,
                OfferExpired(
                    ride_id=ride.id, driver_id=ride.offered_to, attempt=ride.offer_attempt
                ),
            )
        else:
            self._context.schedule(0.0, Redispatch(ride_id=ride.id))
        log.info("ride_resumed", ride_id=ride.id, offered_to=ride.offered_to)

    def forget(self, ride: store.RideRow) -> None:
        """The ride stops looking for a driver (cancelled): its open offer ends too."""
        self.withdraw(ride)
        self._dispatching.pop(ride.id, None)

    def withdraw(self, ride: store.RideRow) -> None:
        """The open offer of a ride ends (answered, expired, or the ride went away)."""
        if ride.offered_to:
            self._drivers.withdraw_offer(ride.offered_to, ride.id)
        ride.offered_to, ride.offer_expires_at = None, None

    # ── estimates and requests ─────────────────────────────────────────────────────────

    def estimate(self, pickup: Point, dropoff: Point) -> tuple[Estimate, int]:
        """The upfront price of a trip, and its surge in basis points."""
        table = self._context.table
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
        supply = self._drivers.available_within(*start, SURGE_RADIUS_M)
        surge = fares.surge_bp(demand + 1, supply, table)
        amount, metres, seconds = fares.estimate(start, end, surge, table)
        return (
            Estimate(
                amount=amount,
                currency=table.currency,
                distance_m=metres,
                duration_s=seconds,
                surge=surge / 10_000,
            ),
            surge,
        )

    async def request(self, message: RequestRide) -> RideView:
        replayed = await self._context.replayed(message, RideView)
        if replayed is not None:
            return replayed
        known = await store.ride(self._pool, message.ride_id, timeline=True)
        if known is not None:  # a retried request: its first ride
            if known.rider_id != message.user_id:
                raise RideNotFound("No such ride among yours.")
            return ride_view(known, self._drivers)
        estimate, surge = self.estimate(message.pickup, message.dropoff)
        if await store.has_active_ride(self._pool, message.user_id):
            raise RideInProgress("You have a ride in progress already.")
        if message.group_id is not None:
            # GroupNotFound (not in it, or no such group) reaches the caller as it is
            await self._context.ask(
                "splits", GetGroup(group_id=message.group_id, user_id=message.user_id)
            )
        hold: HoldView = await self._context.ask(
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
        if hold.amount != estimate.amount:
            # a retry after a crash that left the first hold: the first quote stands
            estimate = msgspec.structs.replace(estimate, amount=hold.amount)
        now = self._context.now()
        ride = _new_ride(message, estimate, surge, hold.id, now)
        ride.region = self._territory.name if self._territory else None
        self._dispatching[ride.id] = Dispatch(ride.pickup_lat, ride.pickup_lon, ride.rider_id)
        try:
            async with self._committing() as tx:
                if not tx.duplicate:
                    await store.insert_ride(tx, ride)
                    await store.add_step(tx, ride.id, "requested", now)
                    await tx.publish(ride_update(ride))
                    await self._offer_next(tx, ride)
                    await self._context.remember(
                        tx, message, await load_view(tx, ride.id, self._drivers)
                    )
        except (Exception, asyncio.CancelledError):
            # no ride was stored: forget it here and give the money back at once
            self._dispatching.pop(ride.id, None)
            self._drivers.forget_offers(ride.id)
            await asyncio.shield(self._context.tell("payments", VoidHold(hold_id=hold.id)))
            raise
        return await load_view(self._pool, ride.id, self._drivers)

    # ── offers ─────────────────────────────────────────────────────────────────────────

    async def offers(self, message: GetOffers) -> OfferList:
        """The offer waiting on a driver, if any (at most one at a time)."""
        driver = self._drivers.require(message.user_id)
        if driver.offer is None:
            return OfferList(offers=[])
        ride = await store.ride(self._pool, driver.offer)
        if (
            ride is None
            or ride.offered_to != message.user_id
            or ride.offer_expires_at is None
            or ride.offer_expires_at.timestamp() <= self._context.clock()
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

    def _candidate(self, ride: store.RideRow) -> tuple[str, int | None] | None:
        """The nearest available driver not tried yet, in rings of growing radius, with
        its region when it is a neighbour's (in the border view: the ride moves there)."""
        wanted = self._dispatching.get(ride.id)
        if wanted is None:
            return None

        def skip(user_id: str) -> bool:
            return user_id == wanted.rider_id or user_id in wanted.tried

        cross = self._territory is not None and self._territory.may_cross(ride)
        for radius in SEARCH_RADII_M:
            if not cross:
                found = self._drivers.nearest_available(wanted.lat, wanted.lon, radius, skip)
                if found:
                    return found, None
                continue
            own, across = self._drivers.nearest_pair(wanted.lat, wanted.lon, radius, skip)
            if across is not None and (own is None or across[1] < own[1]):
                return across[0], across[2]
            if own is not None:
                return own[0], None
        return None

    async def _offer_next(self, tx: Transaction, ride: store.RideRow) -> None:
        """Offer the ride to the nearest available driver, or end it: no driver."""
        found = self._candidate(ride)
        if found is None:
            await self._no_driver(tx, ride)
            return
        driver_id, region = found
        if region is not None and self._territory is not None:
            await self._move(tx, ride, region)
            return
        ride.offered_to = driver_id
        ride.offer_attempt += 1
        ride.offer_expires_at = self._context.now() + timedelta(seconds=self._offer_timeout)
        ride.tried = [*ride.tried, driver_id]
        self._dispatching[ride.id].tried.add(driver_id)
        self._drivers.state(driver_id).offer = ride.id
        await store.save_offer(tx, ride)
        await tx.publish(ride_update(ride, offered_to=driver_id))
        self._context.schedule(
            self._offer_timeout,
            OfferExpired(ride_id=ride.id, driver_id=driver_id, attempt=ride.offer_attempt),
        )
        log.info("ride_offered", ride_id=ride.id, driver_id=driver_id, attempt=ride.offer_attempt)

    async def _move(self, tx: Transaction, ride: store.RideRow, region: int) -> None:
        """The nearest free driver is a neighbour's (near the border): the ride goes to
        that region, whose shard offers it (only a driver's own region offers it rides)."""
        assert self._territory is not None
        name = self._territory.map.regions[region].name
        ride.region = name
        self._dispatching.pop(ride.id, None)
        await store.move_ride(tx, ride.id, name)
        await tx.tell(
            "rides", TakeOverRide(ride_id=ride.id), key=self._territory.map.key_of(region)
        )
        log.info("ride_moved", ride_id=ride.id, region=self._territory.name, to=name)

    async def take_over(self, message: TakeOverRide) -> None:
        """A neighbour moved a requested ride here: offer it to our nearest driver."""
        ride = await store.ride(self._pool, message.ride_id)
        if (
            ride is None
            or ride.status != "requested"
            or self._territory is None
            or not self._territory.owns_ride(ride)
            or ride.id in self._dispatching
        ):
            return
        self._dispatching[ride.id] = Dispatch(
            ride.pickup_lat, ride.pickup_lon, ride.rider_id, set(ride.tried)
        )
        async with self._committing() as tx:
            if not tx.duplicate:
                await self._offer_next(tx, ride)

    def _not_ours(self, ride: store.RideRow) -> bool:
        return self._territory is not None and not self._territory.owns_ride(ride)

    async def _no_driver(self, tx: Transaction, ride: store.RideRow) -> None:
        ride.status, ride.offered_to, ride.offer_expires_at = "no_driver", None, None
        ride.finished_at = self._context.now()
        self._dispatching.pop(ride.id, None)
        await store.save_state(tx, ride)
        await store.add_step(tx, ride.id, "no_driver", ride.finished_at)
        if ride.hold_id:
            await tx.tell("payments", VoidHold(hold_id=ride.hold_id))
            self._released.append(ride.hold_id)
        await tx.publish(ride_update(ride, note="No driver is available right now."))
        log.info("ride_no_driver", ride_id=ride.id, tried=len(ride.tried))

    async def answer(self, message: AnswerOffer) -> RideView:
        replayed = await self._context.replayed(message, RideView)
        if replayed is not None:
            return replayed
        driver = self._drivers.require(message.user_id)
        ride = await store.ride(self._pool, message.ride_id)
        now = self._context.clock()
        expires = ride.offer_expires_at.timestamp() if ride and ride.offer_expires_at else 0.0
        if (
            ride is None
            or ride.status != "requested"
            or ride.offered_to != message.user_id
            or expires <= now
            or not driver.online
        ):
            raise OfferExpiredError("This offer has expired or went to another driver.")
        self.withdraw(ride)
        async with self._committing() as tx:
            if tx.duplicate:
                pass
            elif not message.accept:
                await store.add_step(
                    tx, ride.id, "declined", self._context.now(), note=message.user_id
                )
                await self._offer_next(tx, ride)
            else:
                await self._assign(tx, ride, message.user_id)
            if not tx.duplicate:
                view = await load_view(tx, ride.id, self._drivers)
                await self._context.remember(tx, message, view)
                return view
        return await load_view(self._pool, ride.id, self._drivers)

    async def _assign(self, tx: Transaction, ride: store.RideRow, driver_id: str) -> None:
        ride.status, ride.driver_id = "driver_assigned", driver_id
        self._dispatching.pop(ride.id, None)
        self._drivers.take(driver_id, ride.id)
        await store.save_state(tx, ride)
        await store.add_step(tx, ride.id, "driver_assigned", self._context.now(), note=driver_id)
        await tx.publish(ride_update(ride))

    async def expired(self, message: OfferExpired) -> None:
        """An offer's timer: unanswered, the ride goes to the next driver."""
        ride = await store.ride(self._pool, message.ride_id)
        if (
            ride is None
            or ride.status != "requested"
            or ride.offered_to != message.driver_id
            or ride.offer_attempt != message.attempt
            or self._not_ours(ride)
        ):
            return  # answered already, or a stale timer of an earlier offer
        self.withdraw(ride)
        async with self._committing() as tx:
            if tx.duplicate:
                return
            await store.add_step(
                tx, ride.id, "offer_expired", self._context.now(), note=message.driver_id
            )
            await self._offer_next(tx, ride)

    async def redispatch(self, message: Redispatch) -> None:
        """Offer a requested ride again (its driver left, or a restart lost its offer)."""
        ride = await store.ride(self._pool, message.ride_id)
        if (
            ride is None
            or ride.status != "requested"
            or self._drivers.has_offer(ride.offered_to, ride.id)
            or self._not_ours(ride)
        ):
            return
        self.withdraw(ride)
        async with self._committing() as tx:
            if not tx.duplicate:
                await self._offer_next(tx, ride)


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
