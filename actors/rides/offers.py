"""Offers: a requested ride offered to one driver at a time, and the holds it settles.

An offer waits `offer_timeout` seconds; declined or expired, it goes to the next nearest
driver who was not tried yet, in rings of growing radius. No one left: the ride ends as
`no_driver` and the hold is voided, before the handler answers (`settle_now`), so no one is
told `no_driver` while the wallet still shows the hold. With regions, a ride whose nearest
free driver is a neighbour's moves there once (`TakeOverRide`). After a restart, open
offers get their timers back and rides without one are dispatched again (`resume`).

`Offers` is the base of `Dispatcher` (actors/rides/dispatcher.py), which adds estimates
and requests: a request's first offer is made here too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog

from actors.payments.messages import CaptureHold, VoidHold
from actors.rides import store
from actors.rides.context import RidesContext
from actors.rides.drivers import Drivers
from actors.rides.messages import (
    AnswerOffer,
    GetOffers,
    OfferExpired,
    OfferExpiredError,
    OfferList,
    OfferView,
    Point,
    Redispatch,
    RideView,
    TakeOverRide,
)
from actors.rides.regional import Territory
from actors.rides.state import Dispatch, ride_update
from actors.rides.views import load_view
from actors.runtime import (
    REPLY_LATER,
    DomainError,
    ReplyLater,
    Transaction,
    rfc3339,
)
from transport import Timer

log = structlog.get_logger("rides")

Found = tuple[str, int | None]  # a candidate driver, and its region when a neighbour's

SEARCH_RADII_M = (2_000, 5_000, 10_000)  # the search grows ring by ring
# how long an answer waits for payments to void or capture a hold before it goes anyway
# (the outbox's copy of the message still settles it)
SETTLE_SECONDS = 5.0


class Offers:
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
        self._answering: set[asyncio.Task[None]] = set()  # answers waiting on payments
        # each open offer's timer, by ride (with its attempt): an offer answered is one
        # whose timer need not fire (and cost a message and a read to find it stale)
        self._timers: dict[str, tuple[int, Timer]] = {}
        # the timers of offers this transaction closes: cancelled once it commits (if it
        # does not, they fire and find what the database says, as before)
        self._closing: list[Timer] = []

    @contextlib.asynccontextmanager
    async def _committing(self) -> AsyncIterator[Transaction]:
        """The shard's transaction; once it committed, the holds a `no_driver` in it
        released are voided (asked of payments) before the handler goes on to answer."""
        self._released, self._closing = [], []
        async with self._context.transaction() as tx:
            yield tx
        released, self._released = self._released, []
        closing, self._closing = self._closing, []
        for timer in closing:
            timer.cancel()
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

    async def answer_settled(
        self, message: VoidHold | CaptureHold | None, view: RideView
    ) -> RideView | ReplyLater:
        """Answer `view` once payments settled the hold (`settle_now`), without holding up
        the shard meanwhile: an ask is answered from a task (REPLY_LATER), so the region
        takes its next message while payments works; a tell waits as before."""
        envelope = self._context.envelope
        if message is None:
            return view
        if envelope is None or envelope.kind != "ask":
            await self.settle_now(message)
            return view

        async def answer() -> None:
            await self.settle_now(message)
            self._context.shard_actor.system.reply(envelope, view)

        task = asyncio.create_task(answer())
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)
        return REPLY_LATER

    async def stop(self) -> None:
        """The shard stops: answers still waiting on payments are given up (their askers
        time out; the outbox still settles each hold)."""
        for task in list(self._answering):
            task.cancel()
        await asyncio.gather(*self._answering, return_exceptions=True)

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
            timer = self._context.schedule(
                expires - now,
                OfferExpired(
                    ride_id=ride.id, driver_id=ride.offered_to, attempt=ride.offer_attempt
                ),
            )
            self._timers[ride.id] = (ride.offer_attempt, timer)
        else:
            self._context.schedule(0.0, Redispatch(ride_id=ride.id))
        log.info("ride_resumed", ride_id=ride.id, offered_to=ride.offered_to)

    def _close_timer(self, ride_id: str) -> None:
        """The ride's open offer closes in the transaction under way: its timer is
        cancelled once that commits."""
        held = self._timers.pop(ride_id, None)
        if held is not None:
            self._closing.append(held[1])

    def forget(self, ride: store.RideRow) -> Timer | None:
        """The ride stops looking for a driver (cancelled): its open offer ends too. Its
        offer's timer is handed back, for the caller to cancel once the transaction that
        ends the ride commits (not before: rolled back, the timer still has work)."""
        self.withdraw(ride)
        self._dispatching.pop(ride.id, None)
        held = self._timers.pop(ride.id, None)
        return None if held is None else held[1]

    def drop_timer(self, ride_id: str) -> None:
        """Cancel the ride's offer timer now: the ride was never stored (its transaction
        rolled back), so the timer has nothing to find."""
        held = self._timers.pop(ride_id, None)
        if held is not None:
            held[1].cancel()

    def withdraw(self, ride: store.RideRow) -> None:
        """The open offer of a ride ends (answered, expired, or the ride went away)."""
        if ride.offered_to:
            self._drivers.withdraw_offer(ride.offered_to, ride.id)
        ride.offered_to, ride.offer_expires_at = None, None

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

    def _candidate(self, ride: store.RideRow) -> Found | None:
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
        await self._offer_found(tx, ride, self._candidate(ride))

    async def _offer_found(self, tx: Transaction, ride: store.RideRow, found: Found | None) -> None:
        """Offer the ride to `found` (its nearest available driver), or, nobody found,
        end it: no driver."""
        if found is None:
            await self._no_driver(tx, ride)
            return
        driver_id, region = found
        if region is not None and self._territory is not None:
            await self._move(tx, ride, region)
            return
        self._offer_to(ride, driver_id)
        await store.save_offer(tx, ride)
        await tx.publish(ride_update(ride, offered_to=driver_id))

    def _offer_to(self, ride: store.RideRow, driver_id: str) -> None:
        """The offer, in memory (the ride's fields, the driver's, the timer); the caller
        writes it with the ride and publishes it."""
        ride.offered_to = driver_id
        ride.offer_attempt += 1
        ride.offer_expires_at = self._context.now() + timedelta(seconds=self._offer_timeout)
        ride.tried = [*ride.tried, driver_id]
        self._dispatching[ride.id].tried.add(driver_id)
        self._drivers.state(driver_id).offer = ride.id
        self._close_timer(ride.id)
        timer = self._context.schedule(
            self._offer_timeout,
            OfferExpired(ride_id=ride.id, driver_id=driver_id, attempt=ride.offer_attempt),
        )
        self._timers[ride.id] = (ride.offer_attempt, timer)
        log.info("ride_offered", ride_id=ride.id, driver_id=driver_id, attempt=ride.offer_attempt)

    async def _move(self, tx: Transaction, ride: store.RideRow, region: int) -> None:
        """The nearest free driver is a neighbour's (near the border): the ride goes to
        that region, whose shard offers it (only a driver's own region offers it rides)."""
        assert self._territory is not None
        name = self._territory.map.regions[region].name
        ride.region = name
        self._dispatching.pop(ride.id, None)
        self._close_timer(ride.id)  # the offer declined here ends; the region offers anew
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
        self._close_timer(ride.id)  # the offer last declined, or left by its driver
        await store.save_state(tx, ride, step=("no_driver", ride.finished_at, None))
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
        self._close_timer(ride.id)
        self._dispatching.pop(ride.id, None)
        self._drivers.take(driver_id, ride.id)
        await store.save_state(tx, ride, step=("driver_assigned", self._context.now(), driver_id))
        await tx.publish(ride_update(ride))

    async def expired(self, message: OfferExpired) -> None:
        """An offer's timer: unanswered, the ride goes to the next driver."""
        held = self._timers.get(message.ride_id)
        if held is not None and held[0] == message.attempt:
            del self._timers[message.ride_id]  # it fired: nothing left to cancel
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
