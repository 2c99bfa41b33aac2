"""Trips: a ride after dispatch — arrive, start, complete, cancel, rate — and reading rides.

`requested → driver_assigned → driver_arrived → in_progress → completed`, or `cancelled`
from any state before `completed`. Completing prices the trip from the distance the driver
really covered and the time it took, never above the hold (the upfront price caps it), and
captures it: the driver is credited less the platform's fee. Cancelling before the driver
arrived releases the hold; after, the rider pays a cancellation fee to the driver. A ride
with a group becomes an equal-split expense of that group, paid by the rider.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from actors.payments.messages import CaptureHold, VoidHold
from actors.rides import fares, store
from actors.rides.context import RidesContext
from actors.rides.dispatcher import Dispatcher
from actors.rides.drivers import Drivers
from actors.rides.messages import (
    ACTIVE,
    COMMENT_MAX,
    AdvanceRide,
    AlreadyRated,
    CancelRide,
    GetCurrentRide,
    GetRide,
    InvalidRide,
    InvalidTransition,
    NotADriver,
    RateRide,
    RideNotFound,
    RideView,
)
from actors.rides.state import Trip, ride_update
from actors.rides.views import load_view
from actors.runtime import Message, ReplyLater, Transaction
from actors.splits.messages import AddExpense, Payer

log = structlog.get_logger("rides")

# step -> (the status it needs, the status it makes)
STEPS = {
    "arrive": ("driver_assigned", "driver_arrived"),
    "start": ("driver_arrived", "in_progress"),
    "complete": ("in_progress", "completed"),
}
FEE_AFTER = ("driver_arrived", "in_progress")  # a rider cancelling from here pays a fee


class Trips:
    """Rides with a driver: their steps, the money they capture or release, their ratings."""

    def __init__(self, context: RidesContext, *, drivers: Drivers, dispatcher: Dispatcher) -> None:
        self._context = context
        self._pool = context.pool
        self._table = context.table
        self._drivers = drivers
        self._dispatcher = dispatcher
        # rides in progress: the distance covered so far, from the driver's pings
        self._trips: dict[str, Trip] = {}

    def moved(self, ride_id: str | None, lat: float, lon: float) -> None:
        """The driver of `ride_id` pinged from (lat, lon): count the distance covered."""
        trip = self._trips.get(ride_id or "")
        if trip is not None:
            trip.metres += fares.distance_m((trip.lat, trip.lon), (lat, lon))
            trip.lat, trip.lon = lat, lon

    async def _ride_of(self, ride_id: str, user_id: str) -> store.RideRow:
        """The ride, if `user_id` is its rider or driver; to anyone else it does not exist."""
        ride = await store.ride(self._pool, ride_id)
        if ride is None or user_id not in (ride.rider_id, ride.driver_id):
            raise RideNotFound("No such ride among yours.")
        return ride

    async def _view(self, ride_id: str) -> RideView:
        return await load_view(self._pool, ride_id, self._drivers)

    async def _remembered(self, tx: Transaction, message: Message, ride_id: str) -> RideView:
        """The ride as this step left it, recorded for the step's idempotency key."""
        view = await load_view(tx, ride_id, self._drivers)
        await self._context.remember(tx, message, view)
        return view

    async def get(self, message: GetRide) -> RideView:
        ride = await self._ride_of(message.ride_id, message.user_id)
        return await self._view(ride.id)

    async def current(self, message: GetCurrentRide) -> RideView:
        ride_id = await store.current_ride(self._pool, message.user_id)
        if ride_id is None:
            raise RideNotFound("You have no ride in progress.")
        return await self._view(ride_id)

    async def advance(self, message: AdvanceRide) -> RideView:
        replayed = await self._context.replayed(message, RideView)
        if replayed is not None:
            return replayed
        ride = await self._ride_of(message.ride_id, message.user_id)
        if ride.driver_id != message.user_id:
            raise NotADriver("Only the ride's driver moves it on.")
        needed, made = STEPS[message.step]
        if ride.status != needed:
            raise InvalidTransition(
                f"A ride that is {ride.status} cannot {message.step}; it must be {needed}.",
                details={"status": ride.status},
            )
        now = self._context.now()
        ride.status = made
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return await self._view(ride.id)
            if made == "in_progress":
                ride.started_at = now
                self._start_trip(ride)
            elif made == "completed":
                await self._complete(tx, ride, now)
            await store.save_state(tx, ride, step=(made, now, None))
            await tx.publish(ride_update(ride))
            view = await self._remembered(tx, message, ride.id)
        if made == "completed":
            self._drivers.release(ride.driver_id, ride.id)
        return view

    def _start_trip(self, ride: store.RideRow) -> None:
        driver = self._drivers.state(ride.driver_id or "")
        lat = driver.lat if driver.lat is not None else ride.pickup_lat
        lon = driver.lon if driver.lon is not None else ride.pickup_lon
        self._trips[ride.id] = Trip(lat=lat, lon=lon)

    async def _complete(self, tx: Transaction, ride: store.RideRow, now: datetime) -> None:
        trip = self._trips.pop(ride.id, None)
        straight = fares.distance_m(
            (ride.pickup_lat, ride.pickup_lon), (ride.dropoff_lat, ride.dropoff_lon)
        )
        # no pings (a restart mid-trip lost them): the straight line is the least it was
        ride.distance_m = trip.metres if trip is not None and trip.metres > 0 else straight
        started = ride.started_at or now
        ride.duration_s = max(int((now - started).total_seconds()), 0)
        priced = fares.fare(ride.distance_m, ride.duration_s, ride.surge_bp, self._table)
        ride.fare = min(priced, ride.estimate)
        ride.finished_at = now
        await tx.tell("payments", self._capture(ride, ride.fare, "fare"))
        if ride.group_id is not None:
            await tx.tell(
                "splits",
                AddExpense(
                    group_id=ride.group_id,
                    user_id=ride.rider_id,
                    expense_id=f"ride-{ride.id}",
                    description=f"Ride ({ride.distance_m / 1000:.1f} km)",
                    amount=ride.fare,
                    currency=ride.currency,
                    paid_by=[Payer(user_id=ride.rider_id, amount=ride.fare)],
                    split_mode="equal",
                    shares=[],
                    category="transport",
                    date=now.date().isoformat(),
                ),
            )
        log.info("ride_completed", ride_id=ride.id, fare=ride.fare, distance_m=ride.distance_m)

    def _capture(self, ride: store.RideRow, amount: int, purpose: str) -> CaptureHold:
        """Capture `amount` of the ride's hold for its driver, less the platform's fee."""
        fee = fares.platform_fee(amount, self._table)
        return CaptureHold(
            idempotency_key=f"ride-{purpose}:{ride.id}",
            hold_id=ride.hold_id or "",
            amount=amount,
            payee_user_id=ride.driver_id,
            fee=fee,
        )

    async def cancel(self, message: CancelRide) -> RideView | ReplyLater:
        replayed = await self._context.replayed(message, RideView)
        if replayed is not None:
            return replayed
        ride = await self._ride_of(message.ride_id, message.user_id)
        if ride.status not in ACTIVE:
            raise InvalidTransition(
                f"A ride that is {ride.status} cannot be cancelled.",
                details={"status": ride.status},
            )
        reason = (message.reason or "").strip()[:200] or None
        now = self._context.now()
        by_rider = message.user_id == ride.rider_id
        fee = (
            min(self._table.cancellation_fee, ride.estimate)
            if by_rider and ride.status in FEE_AFTER
            else 0
        )
        timer = self._dispatcher.forget(ride)
        self._trips.pop(ride.id, None)
        ride.status, ride.cancel_reason, ride.finished_at = "cancelled", reason, now
        ride.fare = fee or None
        money: CaptureHold | VoidHold | None = None
        if ride.hold_id:
            money = (
                self._capture(ride, fee, "cancellation") if fee else VoidHold(hold_id=ride.hold_id)
            )
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return await self._view(ride.id)
            if money is not None:
                await tx.tell("payments", money)
            who = "rider" if by_rider else "driver"
            await store.save_state(tx, ride, step=("cancelled", now, f"by the {who}"))
            await tx.publish(ride_update(ride, note=f"Cancelled by the {who}."))
            view = await self._remembered(tx, message, ride.id)
        self._drivers.release(ride.driver_id, ride.id)
        if timer is not None:
            timer.cancel()  # the open offer ended with the ride, now committed
        # answered once the hold is released (or the fee taken), not a moment before
        return await self._dispatcher.answer_settled(money, view)

    async def rate(self, message: RateRide) -> RideView:
        replayed = await self._context.replayed(message, RideView)
        if replayed is not None:
            return replayed
        ride = await self._ride_of(message.ride_id, message.user_id)
        if isinstance(message.stars, bool) or not 1 <= message.stars <= 5:
            raise InvalidRide("stars is a whole number from 1 to 5.", details={"field": "$.stars"})
        comment = (message.comment or "").strip() or None
        if comment is not None and len(comment) > COMMENT_MAX:
            raise InvalidRide(
                f"A comment is at most {COMMENT_MAX} characters.", details={"field": "$.comment"}
            )
        if ride.status != "completed":
            raise InvalidTransition("Only a completed ride can be rated.")
        side = "rider" if message.user_id == ride.rider_id else "driver"
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return await self._view(ride.id)
            if not await store.save_rating(tx, ride.id, side, message.stars, comment):
                raise AlreadyRated("You rated this ride already.")
            if side == "rider" and ride.driver_id is not None:
                await store.rate_driver(tx, ride.driver_id, message.stars)
            view = await self._remembered(tx, message, ride.id)
        if side == "rider":
            self._drivers.rated(ride.driver_id, message.stars)
        return view
