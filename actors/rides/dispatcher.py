"""The dispatcher: estimates and requests; the offers are its base (`offers.Offers`).

A request checks the group (if it names one) with splits, has payments hold the estimate on
the rider's wallet, stores the ride and makes its first offer (one transaction, the ride
written with its offer and first step in one statement). Asked, the hold is placed from a
task and the ride stored when `RideHoldReady` comes back, so the shard takes other messages
while payments works.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec
import structlog

from actors.payments.messages import HoldView, PlaceHold, VoidHold
from actors.rides import fares, store
from actors.rides.context import RidesContext
from actors.rides.drivers import Drivers
from actors.rides.messages import (
    Estimate,
    InvalidRide,
    Point,
    RequestRide,
    RideHoldReady,
    RideInProgress,
    RideNotFound,
    RideView,
)
from actors.rides.offers import Offers
from actors.rides.regional import Territory
from actors.rides.state import Dispatch, ride_update
from actors.rides.views import load_view, ride_view
from actors.runtime import (
    REPLY_LATER,
    DomainError,
    Envelope,
    Failure,
    HandlerFailed,
    ReplyLater,
    Transaction,
)
from actors.runtime.errors import refusal_for
from actors.splits.messages import GetGroup

log = structlog.get_logger("rides")

SURGE_RADIUS_M = 2_000
HOLD_SECONDS = 4 * 3600.0
ONE_ACTIVE_PER_RIDER = "rides_one_active_per_rider"  # the unique index (schema 0001)
HOLDS_AT_ONCE = 4  # a shard's requests asking payments for their hold at the same time


class Dispatcher(Offers):
    """Estimates and requests, and (its base) the offers made to drivers for them."""

    def __init__(
        self,
        context: RidesContext,
        *,
        drivers: Drivers,
        offer_timeout: float,
        territory: Territory | None = None,
    ) -> None:
        super().__init__(context, drivers=drivers, offer_timeout=offer_timeout, territory=territory)
        self._awaiting: dict[str, _Awaiting] = {}  # ride id -> request whose hold is coming
        self._holding = asyncio.Semaphore(HOLDS_AT_ONCE)

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
        # surge only asks whether supply covers demand (and by how much when it does not):
        # counting past demand + 1 changes nothing
        supply = self._drivers.available_within(*start, SURGE_RADIUS_M, at_most=demand + 1)
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

    async def request(self, message: RequestRide) -> RideView | ReplyLater:
        """Check the request, have payments hold the estimate, then store the ride and
        offer it. Asked, the hold is asked for from a task and the ride stored when
        `RideHoldReady` comes back to this shard (REPLY_LATER): the shard takes other
        messages while payments works, and the asker is answered from `hold_ready`."""
        replayed = await self._context.replayed(message, RideView)
        if replayed is not None:
            return replayed
        envelope = self._context.envelope
        waiting = self._awaiting.get(message.ride_id)
        if waiting is not None and envelope is not None and envelope.kind == "ask":
            if waiting.message.user_id != message.user_id:
                raise RideNotFound("No such ride among yours.")
            waiting.envelopes.append(envelope)  # a retry while its hold is being placed
            return REPLY_LATER
        known, busy = await store.ride_or_active(self._pool, message.ride_id, message.user_id)
        if known is not None:  # a retried request: its first ride
            if known.rider_id != message.user_id:
                raise RideNotFound("No such ride among yours.")
            return await load_view(self._pool, known.id, self._drivers)
        estimate, surge = self.estimate(message.pickup, message.dropoff)
        if busy or any(w.message.user_id == message.user_id for w in self._awaiting.values()):
            raise RideInProgress("You have a ride in progress already.")
        if envelope is None or envelope.kind != "ask":
            hold = await self._hold(message, estimate)
            return await self._store(message, estimate, surge, hold.id, hold.amount)
        self._awaiting[message.ride_id] = _Awaiting(message, estimate, surge, [envelope])
        task = asyncio.create_task(self._hold_for(message, estimate))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)
        return REPLY_LATER

    async def _hold(self, message: RequestRide, estimate: Estimate) -> HoldView:
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
        return hold

    async def _hold_for(self, message: RequestRide, estimate: Estimate) -> None:
        """From a task: the hold, then `RideHoldReady` to this shard; a refusal (no funds,
        no such group) answers the asker at once. At most HOLDS_AT_ONCE a shard ask
        payments at a time (payments is the slower side: more would only queue there and
        time out), and a request whose askers have all given up is dropped unheld."""
        try:
            async with self._holding:
                waiting = self._awaiting.get(message.ride_id)
                if waiting is not None and _given_up(waiting.envelopes):
                    del self._awaiting[message.ride_id]
                    log.info("ride_request_given_up", ride_id=message.ride_id)
                    return
                hold = await self._hold(message, estimate)
        except Exception as error:
            waiting = self._awaiting.pop(message.ride_id, None)
            if waiting is not None:
                self._reply_all(waiting, _failure(error))
            return
        # back to this very shard (a region's own key; without regions the one shard)
        key = self._territory.map.key_of(self._territory.index) if self._territory else None
        ready = RideHoldReady(ride_id=message.ride_id, hold_id=hold.id, amount=hold.amount)
        try:
            await self._context.tell_self(ready, key=key)
        except Exception as error:  # the node is stopping: no ride, the money back
            waiting = self._awaiting.pop(message.ride_id, None)
            if waiting is not None:
                self._reply_all(waiting, _failure(error))
            with contextlib.suppress(Exception):
                await self._context.tell("payments", VoidHold(hold_id=hold.id))

    async def hold_ready(self, message: RideHoldReady) -> None:
        """The hold of a request is placed: store the ride, offer it, answer the asker. A
        request this shard no longer waits for (it restarted, or moved) gets its money
        back."""
        waiting = self._awaiting.pop(message.ride_id, None)
        if waiting is None:
            known = await store.ride(self._pool, message.ride_id)
            if known is None or known.hold_id != message.hold_id:
                await self._context.tell("payments", VoidHold(hold_id=message.hold_id))
            return
        try:
            result: object = await self._store(
                waiting.message, waiting.estimate, waiting.surge, message.hold_id, message.amount
            )
        except Exception as error:
            self._reply_all(waiting, _failure(error))
            if isinstance(error, DomainError):
                return
            raise
        self._reply_all(waiting, result)

    def _reply_all(self, waiting: _Awaiting, result: object) -> None:
        system = self._context.shard_actor.system
        for envelope in waiting.envelopes:
            system.reply(envelope, result)

    async def _store(
        self, message: RequestRide, estimate: Estimate, surge: int, hold_id: str, amount: int
    ) -> RideView:
        """Store the ride with its hold and make its first offer, in one transaction."""
        if amount != estimate.amount:
            # a retry after a crash that left the first hold: the first quote stands
            estimate = msgspec.structs.replace(estimate, amount=amount)
        if message.ride_id in self._dispatching:
            # stored by another region meanwhile and moved here (TakeOverRide): it is ours
            # already, with its offer; nothing of this request's may replace that
            return await self._stored_already(message, hold_id)
        now = self._context.now()
        ride = _new_ride(message, estimate, surge, hold_id, now)
        ride.region = self._territory.name if self._territory else None
        self._dispatching[ride.id] = Dispatch(ride.pickup_lat, ride.pickup_lon, ride.rider_id)
        view: RideView | None = None
        try:
            # one transaction: the ride, its first step and its first offer (or its end)
            async with self._committing() as tx:
                if not tx.duplicate:
                    await tx.publish(ride_update(ride))
                    found = self._candidate(ride)
                    if found is not None and found[1] is None:
                        # the usual: a driver of ours; the ride is stored with its offer
                        # and its first step in one statement
                        self._offer_to(ride, found[0])
                        await tx.publish(ride_update(ride, offered_to=found[0]))
                        await _insert(tx, ride, now)
                    else:  # nobody, or a neighbour's driver: stored, then ended or moved
                        await _insert(tx, ride, now)
                        await self._offer_found(tx, ride, found)
                    # what this transaction wrote, shown without reading it back
                    ride.timeline = [("requested", now, None)]
                    if ride.status == "no_driver" and ride.finished_at is not None:
                        ride.timeline.append(("no_driver", ride.finished_at, None))
                    view = ride_view(ride, self._drivers)
                    await self._context.remember(tx, message, view)
        except _StoredAlready:
            self._unstored(ride.id)
            return await self._stored_already(message, hold_id)
        except (Exception, asyncio.CancelledError) as error:
            # no ride was stored: forget it here and give the money back at once
            self._unstored(ride.id)
            await asyncio.shield(self._context.tell("payments", VoidHold(hold_id=hold_id)))
            if (
                isinstance(error, asyncpg.UniqueViolationError)
                and error.constraint_name == ONE_ACTIVE_PER_RIDER
            ):
                # the rider's other request, in another region, was stored first
                raise RideInProgress("You have a ride in progress already.") from None
            raise
        return view if view is not None else await load_view(self._pool, ride.id, self._drivers)

    def _unstored(self, ride_id: str) -> None:
        """The ride's transaction rolled back: no offer, timer or dispatch is kept for it."""
        self._dispatching.pop(ride_id, None)
        self._drivers.forget_offers(ride_id)
        self.drop_timer(ride_id)

    async def _stored_already(self, message: RequestRide, hold_id: str) -> RideView:
        """Another shard stored the ride meanwhile (one rider's request in two regions at
        once): answered as a retry is, with that ride; a hold that is not its own goes back
        (the rider's own is the same hold: one idempotency key a ride)."""
        known = await store.ride(self._pool, message.ride_id)
        if known is None or known.hold_id != hold_id:
            await self._context.tell("payments", VoidHold(hold_id=hold_id))
        log.info("ride_stored_already", ride_id=message.ride_id, hold_id=hold_id)
        if known is None or known.rider_id != message.user_id:
            raise RideNotFound("No such ride among yours.")
        return await load_view(self._pool, known.id, self._drivers)


class _StoredAlready(Exception):
    """The ride's row was there already: its transaction is rolled back (nothing it wrote,
    published or remembered stands)."""


async def _insert(tx: Transaction, ride: store.RideRow, now: datetime) -> None:
    """Store the new ride with its first step, or roll back: `_StoredAlready`."""
    if not await store.insert_ride(tx, ride, step_at=now):
        raise _StoredAlready(ride.id)


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


@dataclass(slots=True)
class _Awaiting:
    """A request whose hold payments is placing: what to store once it is, and who asked."""

    message: RequestRide
    estimate: Estimate
    surge: int
    envelopes: list[Envelope]


def _given_up(envelopes: list[Envelope]) -> bool:
    """Every asker's deadline has passed: no one waits for the answer any more."""
    now = time.time()
    return all(e.deadline is not None and e.deadline < now for e in envelopes)


def _failure(error: Exception) -> Failure:
    """The reply that says `error` to an asker (a crash as handler_failed)."""
    if isinstance(error, DomainError):
        return Failure.of(error)
    refusal = refusal_for(error, asking=True)
    return Failure.of(refusal or HandlerFailed(f"{type(error).__name__}: {error}"))
