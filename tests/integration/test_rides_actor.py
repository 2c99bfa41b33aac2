"""The rides actor through an ActorSystem (codec check on) on a real PostgreSQL, beside the
real payments and splits actors: dispatch with offers, timeouts, the lifecycle with the
hold captured or released, the group expense, and a restart with a ride in flight."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from actors.auth.messages import GrantRole
from actors.payments import messages as payments_messages
from actors.payments.actor import Payments
from actors.payments.messages import GetWallet, InsufficientFunds, payments_key
from actors.rides import messages
from actors.rides.actor import Rides
from actors.rides.fares import FareTable, platform_fee
from actors.rides.messages import (
    AdvanceRide,
    AnswerOffer,
    CancelRide,
    GetRide,
    InvalidRide,
    NotADriver,
    OfferExpiredError,
    Point,
    RateRide,
    RegisterDriver,
    RequestRide,
    RideInProgress,
    RideUpdated,
    SetDriverStatus,
    UpdateLocation,
    rides_key,
)
from actors.runtime import (
    Actor,
    ActorRef,
    ActorSystem,
    MemoryDeadLetterStore,
    Message,
    Outbox,
    handles,
)
from actors.splits import messages as splits_messages
from actors.splits.actor import Splits
from actors.splits.messages import (
    AddMember,
    BalancesView,
    CreateGroup,
    GetBalances,
    splits_key,
)
from splitgo.db import apply_schema
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

PICKUP = Point(lat=52.5200, lon=13.4050)
DROPOFF = Point(lat=52.5300, lon=13.4300)
TABLE = FareTable()


class StandIns(Actor):
    """Stands in for auth (GrantRole) and notifications (RideUpdated): records both."""

    def __init__(self, seen: list[Message]) -> None:
        self.seen = seen

    @handles(GrantRole, RideUpdated)
    async def record(self, message: Message) -> None:
        self.seen.append(message)


@dataclass
class Harness:
    system: ActorSystem
    rides: ActorRef
    payments: ActorRef
    splits: ActorRef
    ledger: list[Payments]
    seen: list[Message]

    async def ask(self, message: Message) -> Any:
        return await self.rides.ask(message)

    async def driver(self, user_id: str, lat: float, lon: float) -> None:
        await self.ask(RegisterDriver(user_id=user_id, vehicle="Blue Golf", plate="b-xy 12"))
        await self.ask(UpdateLocation(user_id=user_id, lat=lat, lon=lon))
        await self.ask(SetDriverStatus(user_id=user_id, status="online"))

    async def fund(self, user_id: str, amount: int = 10_000) -> None:
        await self.payments.ask(GetWallet(user_id=user_id))  # the shards are up
        await self.ledger[0].credit_top_up(
            top_up_id=f"seed-{user_id}-{amount}", user_id=user_id, amount=amount, currency="EUR"
        )

    async def wallet(self, user_id: str) -> tuple[int, int]:
        view = await self.payments.ask(GetWallet(user_id=user_id))
        for balance in view.balances:
            if balance.currency == "EUR":
                return balance.available, balance.held
        return 0, 0

    async def request(self, rider: str, **kwargs: Any) -> Any:
        return await self.ask(
            RequestRide(
                ride_id=str(uuid.uuid4()), user_id=rider, pickup=PICKUP, dropoff=DROPOFF, **kwargs
            )
        )

    async def offered(self, ride_id: str, driver: str) -> None:
        """Wait for the event that offers the ride to `driver` (through the outbox)."""

        async def check() -> bool:
            return self._offer(ride_id, driver)

        await eventually(check)

    def _offer(self, ride_id: str, driver: str) -> bool:
        return any(
            isinstance(m, RideUpdated) and m.ride_id == ride_id and m.offered_to == driver
            for m in self.seen
        )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 8.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running(
    pool: asyncpg.Pool,
    *,
    offer_timeout: float = 5.0,
    seen: list[Message] | None = None,
    outbox: Outbox | None = None,
    made: list[Rides] | None = None,
) -> AsyncIterator[Harness]:
    codec = Codec()
    for module in (messages, payments_messages, splits_messages):
        codec.register_module(module)
    codec.register(GrantRole)
    system = ActorSystem(
        MemoryTransport(node_id="rides-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=outbox or Outbox(pool, interval=0.05),
        ask_timeout=20.0,
    )
    await system.start()
    recorded: list[Message] = seen if seen is not None else []
    ledger: list[Payments] = []

    def make_payments() -> Payments:
        ledger.append(Payments(pool))
        return ledger[-1]

    system.subscribe(RideUpdated, "notifications")
    for name in ("auth", "notifications"):
        system.spawn(StandIns, name, factory=lambda: StandIns(recorded))
    payments = system.spawn(Payments, "payments", factory=make_payments, shards=2, key=payments_key)
    splits = system.spawn(Splits, "splits", factory=lambda: Splits(pool), shards=2, key=splits_key)

    def make_rides() -> Rides:
        actor = Rides(pool, offer_timeout=offer_timeout, persist_interval=0.1)
        if made is not None:
            made.append(actor)
        return actor

    rides = system.spawn(Rides, "rides", factory=make_rides, key=rides_key)
    try:
        yield Harness(system, rides, payments, splits, ledger, recorded)
    finally:
        await system.stop(timeout=5)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=12)
    assert pool is not None
    await apply_schema(pool)
    try:
        yield pool
    finally:
        await pool.close()


async def request(harness: Harness, rider: str, **kwargs: Any) -> Any:
    return await harness.request(rider, **kwargs)


async def test_a_whole_trip_moves_the_money_and_the_group(db: asyncpg.Pool) -> None:
    """Decline → next driver → accept → arrive → start → complete: the rider pays the fare
    from the hold, the driver gets it less the platform fee, and the group gets the expense."""
    async with running(db) as harness:
        await harness.fund("rider")
        group = str(uuid.uuid4())
        await harness.splits.ask(
            CreateGroup(group_id=group, user_id="rider", name="Trip", currency="EUR")
        )
        await harness.splits.ask(AddMember(group_id=group, user_id="rider", member_user_id="pal"))
        await harness.driver("near", 52.5205, 13.4055)
        await harness.driver("far", 52.5250, 13.4150)
        ride = await request(harness, "rider", group_id=group)
        assert ride.status == "requested"
        assert await harness.wallet("rider") == (
            10_000 - ride.estimate.amount,
            ride.estimate.amount,
        )
        await harness.offered(ride.id, "near")
        await harness.ask(AnswerOffer(ride_id=ride.id, user_id="near", accept=False))
        await harness.offered(ride.id, "far")
        assigned = await harness.ask(AnswerOffer(ride_id=ride.id, user_id="far", accept=True))
        assert assigned.status == "driver_assigned"
        assert assigned.driver is not None
        for step in ("arrive", "start"):
            await harness.ask(AdvanceRide(ride_id=ride.id, user_id="far", step=step))
        for lat, lon in ((52.522, 13.410), (52.526, 13.420), (52.530, 13.430)):
            await harness.ask(UpdateLocation(user_id="far", lat=lat, lon=lon))
        done = await harness.ask(AdvanceRide(ride_id=ride.id, user_id="far", step="complete"))
        assert done.status == "completed"
        assert done.fare is not None
        assert 0 < done.fare <= ride.estimate.amount
        assert done.distance_m is not None
        assert done.distance_m > 1000
        fare = done.fare

        async def settled() -> bool:
            return await harness.wallet("rider") == (10_000 - fare, 0)

        await eventually(settled)
        assert await harness.wallet("far") == (fare - platform_fee(fare, TABLE), 0)

        async def expensed() -> bool:
            view: BalancesView = await harness.splits.ask(
                GetBalances(group_id=group, user_id="rider")
            )
            nets: dict[str, int] = {line.user_id: line.net for line in view.balances}
            return bool(nets.get("pal", 0) == -(fare // 2))

        await eventually(expensed)
        rated = await harness.ask(RateRide(ride_id=ride.id, user_id="rider", stars=5))
        assert rated.rider_rating == 5


async def test_an_unanswered_offer_moves_on_and_the_last_ends_in_no_driver(
    db: asyncpg.Pool,
) -> None:
    """Each offer times out to the next driver; after the last, `no_driver` and the hold is
    voided."""
    async with running(db, offer_timeout=0.3) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        await harness.driver("d2", 52.5210, 13.4070)
        ride = await request(harness, "rider")
        await harness.offered(ride.id, "d1")
        await harness.offered(ride.id, "d2")

        async def gave_up() -> bool:
            view = await harness.ask(GetRide(ride_id=ride.id, user_id="rider"))
            return bool(view.status == "no_driver")

        await eventually(gave_up)

        async def released() -> bool:
            return await harness.wallet("rider") == (10_000, 0)

        await eventually(released)


async def test_two_drivers_accepting_at_once_one_wins(db: asyncpg.Pool) -> None:
    """The offered driver and another answering together: exactly one assignment, the other
    gets offer_expired."""
    async with running(db) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        await harness.driver("d2", 52.5210, 13.4070)
        ride = await request(harness, "rider")
        await harness.offered(ride.id, "d1")
        results = await asyncio.gather(
            harness.ask(AnswerOffer(ride_id=ride.id, user_id="d1", accept=True)),
            harness.ask(AnswerOffer(ride_id=ride.id, user_id="d2", accept=True)),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results] == ["RideView", "OfferExpiredError"]
        with pytest.raises(OfferExpiredError):
            await harness.ask(AnswerOffer(ride_id=ride.id, user_id="d1", accept=True))


async def test_an_answered_offer_has_its_timer_cancelled(db: asyncpg.Pool) -> None:
    """Declining or accepting an offer cancels its timer once the answer committed (it
    need not fire to be found stale); the next offer has a timer of its own."""
    made: list[Rides] = []
    async with running(db, made=made) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        await harness.driver("d2", 52.5210, 13.4070)
        ride = await request(harness, "rider")
        await harness.offered(ride.id, "d1")
        timers = made[0].dispatcher._timers
        attempt, first = timers[ride.id]
        assert attempt == 1
        assert not _cancelled(first)
        await harness.ask(AnswerOffer(ride_id=ride.id, user_id="d1", accept=False))
        assert _cancelled(first)
        attempt, second = timers[ride.id]
        assert attempt == 2
        assert not _cancelled(second)
        await harness.ask(AnswerOffer(ride_id=ride.id, user_id="d2", accept=True))
        assert _cancelled(second)
        assert ride.id not in timers


async def test_an_offer_ended_otherwise_has_its_timer_cancelled(db: asyncpg.Pool) -> None:
    """A ride cancelled, or ended as no_driver, while its offer is open leaves no timer
    behind: the offer's timer is cancelled once that commits."""
    made: list[Rides] = []
    async with running(db, made=made) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        timers = made[0].dispatcher._timers
        cancelled = await request(harness, "rider")
        await harness.offered(cancelled.id, "d1")
        _, first = timers[cancelled.id]
        await harness.ask(CancelRide(ride_id=cancelled.id, user_id="rider"))
        assert cancelled.id not in timers
        assert _cancelled(first)
        declined = await request(harness, "rider")
        await harness.offered(declined.id, "d1")
        _, second = timers[declined.id]
        view = await harness.ask(AnswerOffer(ride_id=declined.id, user_id="d1", accept=False))
        assert view.status == "no_driver"
        assert declined.id not in timers
        assert _cancelled(second)


def _cancelled(timer: Any) -> bool:
    """Whether an in-memory transport's timer was cancelled (its loop handle says)."""
    handle: asyncio.TimerHandle = timer._handle
    return handle.cancelled()


async def test_cancelling_after_arrival_costs_a_fee_and_before_it_nothing(
    db: asyncpg.Pool,
) -> None:
    """A rider cancelling once the driver arrived pays the fee to the driver; cancelling
    while still requested releases the whole hold."""
    async with running(db) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        first = await request(harness, "rider")
        await harness.offered(first.id, "d1")
        await harness.ask(AnswerOffer(ride_id=first.id, user_id="d1", accept=True))
        await harness.ask(AdvanceRide(ride_id=first.id, user_id="d1", step="arrive"))
        cancelled = await harness.ask(CancelRide(ride_id=first.id, user_id="rider", reason="late"))
        assert cancelled.status == "cancelled"
        assert cancelled.fare == TABLE.cancellation_fee

        async def charged() -> bool:
            return await harness.wallet("rider") == (10_000 - TABLE.cancellation_fee, 0)

        await eventually(charged)
        second = await request(harness, "rider")
        await harness.ask(CancelRide(ride_id=second.id, user_id="rider"))

        async def released() -> bool:
            return await harness.wallet("rider") == (10_000 - TABLE.cancellation_fee, 0)

        await asyncio.sleep(0.3)
        await eventually(released)


class HeldBackOutbox(Outbox):
    """An outbox whose relay does not run while the test looks: what a transaction told
    another actor has not arrived (as when the relay is a moment behind)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, interval=3600.0)

    def notify(self) -> None:
        pass  # no pass on commit; the first sweep is an hour away


async def test_cancel_and_no_driver_answer_only_once_the_hold_is_released(
    db: asyncpg.Pool,
) -> None:
    """Right after a cancel or a `no_driver` is answered, the wallet holds nothing, even
    while the outbox has not delivered the void it also carries."""
    async with running(db, outbox=HeldBackOutbox(db)) as harness:
        await harness.fund("rider")
        nobody = await request(harness, "rider")  # no driver online at all
        assert nobody.status == "no_driver"
        assert await harness.wallet("rider") == (10_000, 0)
        await harness.driver("d1", 52.5201, 13.4051)
        offered = await request(harness, "rider")
        assert offered.status == "requested"
        assert (await harness.wallet("rider"))[1] == offered.estimate.amount
        cancelled = await harness.ask(CancelRide(ride_id=offered.id, user_id="rider"))
        assert cancelled.status == "cancelled"
        assert await harness.wallet("rider") == (10_000, 0)
        declined = await request(harness, "rider")
        answered = await harness.ask(AnswerOffer(ride_id=declined.id, user_id="d1", accept=False))
        assert answered.status == "no_driver"
        assert await harness.wallet("rider") == (10_000, 0)


async def test_bad_requests_change_nothing(db: asyncpg.Pool) -> None:
    """Out-of-range coordinates, the same pickup and dropoff, a rider moving their own ride,
    a second active ride and an empty wallet are refused, and nothing is held twice."""
    async with running(db) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        with pytest.raises(InvalidRide) as far_north:
            await harness.ask(
                RequestRide(
                    ride_id="x", user_id="rider", pickup=Point(lat=91, lon=0), dropoff=DROPOFF
                )
            )
        assert far_north.value.details["field"] == "$.pickup.lat"
        with pytest.raises(InvalidRide) as nowhere:
            await harness.ask(
                RequestRide(ride_id="y", user_id="rider", pickup=PICKUP, dropoff=PICKUP)
            )
        assert nowhere.value.details["field"] == "$.dropoff"
        ride = await request(harness, "rider")
        with pytest.raises(NotADriver):
            await harness.ask(AdvanceRide(ride_id=ride.id, user_id="rider", step="arrive"))
        with pytest.raises(RideInProgress):
            await request(harness, "rider")
        with pytest.raises(InsufficientFunds):
            await request(harness, "broke")
        assert await harness.wallet("rider") == (
            10_000 - ride.estimate.amount,
            ride.estimate.amount,
        )
        count = await db.fetchval("SELECT count(*) FROM rides")
        assert count == 1


async def test_a_ride_in_flight_carries_on_after_a_restart(db: asyncpg.Pool) -> None:
    """A node stopping with an offer open: the next one re-arms the offer's timer, which
    moves the ride to the next driver."""
    seen: list[Message] = []
    async with running(db, offer_timeout=1.0, seen=seen) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        await harness.driver("d2", 52.5210, 13.4070)
        ride = await request(harness, "rider")
        await harness.offered(ride.id, "d1")
        await asyncio.sleep(0.3)  # the positions reach the database (every 0.1 s here)
    async with running(db, offer_timeout=1.0, seen=seen) as again:
        await again.offered(ride.id, "d2")
        view = await again.ask(AnswerOffer(ride_id=ride.id, user_id="d2", accept=True))
        assert view.status == "driver_assigned"


async def test_a_driver_going_offline_hands_the_offer_on(db: asyncpg.Pool) -> None:
    """An offered driver who goes offline can no longer accept; the ride goes to the next."""
    async with running(db) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        await harness.driver("d2", 52.5210, 13.4070)
        ride = await request(harness, "rider")
        await harness.offered(ride.id, "d1")
        await harness.ask(SetDriverStatus(user_id="d1", status="offline"))
        await harness.offered(ride.id, "d2")
        with pytest.raises(OfferExpiredError):
            await harness.ask(AnswerOffer(ride_id=ride.id, user_id="d1", accept=True))
        view = await harness.ask(AnswerOffer(ride_id=ride.id, user_id="d2", accept=True))
        assert view.driver.user_id == "d2"


async def test_requests_at_once_by_one_rider_make_one_ride_and_one_hold(
    db: asyncpg.Pool,
) -> None:
    """A request asked twice at once with one ride id (a retry) answers the same ride, and
    a second ride asked meanwhile by the same rider is refused: one ride, one hold."""
    async with running(db) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        first = RequestRide(ride_id="once", user_id="rider", pickup=PICKUP, dropoff=DROPOFF)
        other = RequestRide(ride_id="other", user_id="rider", pickup=PICKUP, dropoff=DROPOFF)
        answers = await asyncio.gather(
            harness.ask(first), harness.ask(first), harness.ask(other), return_exceptions=True
        )
        assert [a.id for a in answers[:2] if not isinstance(a, BaseException)] == ["once", "once"]
        assert isinstance(answers[2], RideInProgress)
        assert await db.fetchval("SELECT count(*) FROM rides") == 1
        estimate = answers[0].estimate.amount  # type: ignore[union-attr]
        assert await harness.wallet("rider") == (10_000 - estimate, estimate)


async def test_the_shard_answers_others_while_a_hold_is_placed(db: asyncpg.Pool) -> None:
    """While payments is held up placing a request's hold, the rides shard still answers a
    driver's ping; the request is answered once the hold is placed, with the ride offered."""
    async with running(db) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        gate = asyncio.Event()
        payments = harness.ledger[0]
        placing = payments.holds.place

        async def slow_place(message: Any) -> Any:
            await gate.wait()
            return await placing(message)

        for shard in harness.ledger:
            shard.holds.place = slow_place  # type: ignore[method-assign]
        asking = asyncio.create_task(harness.request("rider"))
        await asyncio.sleep(0.05)
        await harness.ask(UpdateLocation(user_id="d1", lat=52.5202, lon=13.4052))
        assert not asking.done()
        gate.set()
        ride = await asking
        assert ride.status == "requested"
        await harness.offered(ride.id, "d1")
