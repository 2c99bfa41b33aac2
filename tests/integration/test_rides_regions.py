"""Rides by region through an ActorSystem on a real PostgreSQL: two regions side by side
along 13.4°E (Berlin), each its own shard, with desks for messages naming no place; a
request near the border gets the nearer driver across it, two requests at once never get
one driver, a driver crossing the border is dispatched by the new region, and many pings in
one message count as each driver's latest."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from actors.auth.messages import GrantRole
from actors.payments import messages as payments_messages
from actors.payments.actor import Payments
from actors.payments.messages import payments_key
from actors.rides import messages, store
from actors.rides.actor import Rides
from actors.rides.dispatcher import _new_ride
from actors.rides.messages import (
    AnswerOffer,
    DriverPing,
    EstimateRide,
    GetRide,
    Point,
    RequestRide,
    RideInProgress,
    RideUpdated,
    TakeOverRide,
    UpdateLocation,
    UpdateLocations,
)
from actors.rides.regions import RegionMap, parse
from actors.runtime import ActorSystem, MemoryDeadLetterStore, Message, Outbox
from actors.splits import messages as splits_messages
from actors.splits.actor import Splits
from actors.splits.messages import splits_key
from splitgo.db import apply_schema
from tests.integration.test_rides_actor import Harness, StandIns, eventually
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

REGIONS = parse("west=52.3,13.0,52.7,13.4;east=52.3,13.4,52.7,13.8", border_m=1_000)
WEST, EAST = 0, 1


@asynccontextmanager
async def running(
    pool: asyncpg.Pool, regions: RegionMap = REGIONS, offer_timeout: float = 5.0
) -> AsyncIterator[tuple[Harness, list[Rides]]]:
    codec = Codec()
    for module in (messages, payments_messages, splits_messages):
        codec.register_module(module)
    codec.register(GrantRole)
    system = ActorSystem(
        MemoryTransport(node_id="rides-regions-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=20.0,
    )
    await system.start()
    seen: list[Message] = []
    ledger: list[Payments] = []
    shards: list[Rides] = []

    def make_payments() -> Payments:
        ledger.append(Payments(pool))
        return ledger[-1]

    def make_rides() -> Rides:
        shards.append(
            Rides(
                pool,
                offer_timeout=offer_timeout,
                persist_interval=0.1,
                regions=regions,
                border_feed_interval=0.05,
            )
        )
        return shards[-1]

    system.subscribe(RideUpdated, "notifications")
    for name in ("auth", "notifications"):
        system.spawn(StandIns, name, factory=lambda: StandIns(seen))
    payments = system.spawn(Payments, "payments", factory=make_payments, shards=2, key=payments_key)
    splits = system.spawn(Splits, "splits", factory=lambda: Splits(pool), shards=2, key=splits_key)
    rides = system.spawn(Rides, "rides", factory=make_rides, shards=regions.shards, key=regions.key)
    try:
        yield Harness(system, rides, payments, splits, ledger, seen), shards
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


def region(shards: list[Rides], index: int) -> Rides:
    return next(shard for shard in shards if shard.shard == index)


async def held_by(shards: list[Rides], index: int, user_id: str) -> None:
    """Wait until region `index` holds the driver (handovers go by messages)."""

    async def check() -> bool:
        return user_id in region(shards, index).drivers.owned()

    await eventually(check)


async def seen_across(shards: list[Rides], index: int, user_id: str) -> None:
    """Wait until region `index`'s border view shows the neighbour's driver."""

    async def check() -> bool:
        return user_id in region(shards, index).drivers._border_owner

    await eventually(check)


async def ride_request(harness: Harness, rider: str, lat: float, lon: float) -> Any:
    return await harness.ask(
        RequestRide(
            ride_id=str(uuid.uuid4()),
            user_id=rider,
            pickup=Point(lat=lat, lon=lon),
            dropoff=Point(lat=lat + 0.02, lon=lon),
        )
    )


async def test_a_request_near_the_border_gets_the_nearer_driver_across_it(
    db: asyncpg.Pool,
) -> None:
    """A pickup 110 m west of the border: the east driver 70 m past it (nearer than the
    west driver 570 m away) is offered the ride, by the east region, and takes it."""
    async with running(db) as (harness, shards):
        await harness.fund("rider")
        await harness.driver("westy", 52.52, 13.39)
        await harness.driver("easty", 52.52, 13.401)
        await held_by(shards, EAST, "easty")
        await seen_across(shards, WEST, "easty")
        ride = await ride_request(harness, "rider", 52.52, 13.3985)
        await harness.offered(ride.id, "easty")
        assigned = await harness.ask(AnswerOffer(ride_id=ride.id, user_id="easty", accept=True))
        assert assigned.status == "driver_assigned"
        assert assigned.driver is not None
        assert assigned.driver.user_id == "easty"
        assert await db.fetchval("SELECT region FROM rides WHERE id = $1", ride.id) == "east"
        assert not harness._offer(ride.id, "westy")


async def test_a_declined_offer_moving_the_ride_across_the_border_leaves_no_timer(
    db: asyncpg.Pool,
) -> None:
    """The west driver declines and the next nearest is across the border: the ride moves
    to the east, which offers it, and the west's timer of the declined offer is cancelled
    with nothing left for the ride."""
    async with running(db) as (harness, shards):
        await harness.fund("rider")
        await harness.driver("westy", 52.52, 13.398)
        await harness.driver("easty", 52.52, 13.401)
        await held_by(shards, EAST, "easty")
        await seen_across(shards, WEST, "easty")
        ride = await ride_request(harness, "rider", 52.52, 13.3985)
        await harness.offered(ride.id, "westy")
        timers = region(shards, WEST).dispatcher._timers
        _, declined = timers[ride.id]
        await harness.ask(AnswerOffer(ride_id=ride.id, user_id="westy", accept=False))
        assert ride.id not in timers
        assert declined._handle.cancelled()  # type: ignore[attr-defined]
        await harness.offered(ride.id, "easty")
        assert await db.fetchval("SELECT region FROM rides WHERE id = $1", ride.id) == "east"


async def test_two_requests_at_once_never_get_the_same_driver(db: asyncpg.Pool) -> None:
    """One east driver at the border, a request on each side at once: the driver is offered
    one of them only (the other finds no one), and accepting gives it exactly one ride."""
    async with running(db) as (harness, shards):
        for rider in ("r-west", "r-east"):
            await harness.fund(rider)
        await harness.driver("only", 52.52, 13.401)
        await held_by(shards, EAST, "only")
        await seen_across(shards, WEST, "only")
        rides = await asyncio.gather(
            ride_request(harness, "r-west", 52.52, 13.399),
            ride_request(harness, "r-east", 52.52, 13.402),
        )

        async def settled() -> bool:
            views = [await harness.ask(GetRide(ride_id=r.id, user_id=r.rider_id)) for r in rides]
            offered = [r.id for r in rides if harness._offer(r.id, "only")]
            return len(offered) == 1 and any(v.status == "no_driver" for v in views)

        await eventually(settled)
        (chosen,) = [r for r in rides if harness._offer(r.id, "only")]
        await harness.ask(AnswerOffer(ride_id=chosen.id, user_id="only", accept=True))
        in_hand = await db.fetchval(
            "SELECT count(*) FROM rides WHERE driver_id = 'only'"
            " AND status IN ('driver_assigned', 'driver_arrived', 'in_progress')"
        )
        assert in_hand == 1


async def test_a_driver_crossing_the_border_is_dispatched_by_the_new_region(
    db: asyncpg.Pool,
) -> None:
    """A driver online in the west drives deep into the east: the west lets go, the east
    holds the driver and offers it an east ride; a west rider far away finds no one."""
    async with running(db) as (harness, shards):
        for rider in ("r-west", "r-east"):
            await harness.fund(rider)
        await harness.driver("mover", 52.52, 13.20)
        await held_by(shards, WEST, "mover")
        await harness.ask(UpdateLocation(user_id="mover", lat=52.52, lon=13.60))
        await held_by(shards, EAST, "mover")
        assert "mover" not in region(shards, WEST).drivers.owned()
        east = await ride_request(harness, "r-east", 52.521, 13.601)
        await harness.offered(east.id, "mover")
        west = await ride_request(harness, "r-west", 52.52, 13.10)
        assert west.status == "no_driver"
        assigned = await harness.ask(AnswerOffer(ride_id=east.id, user_id="mover", accept=True))
        assert assigned.status == "driver_assigned"
        assert await db.fetchval("SELECT region FROM rides WHERE id = $1", east.id) == "east"


async def test_many_pings_in_one_message_keep_each_drivers_latest(db: asyncpg.Pool) -> None:
    """An UpdateLocations naming a driver twice leaves it at its last position, names the
    one who is not a driver, and hands a driver now deep in the east to the east region."""
    async with running(db) as (harness, shards):
        await harness.driver("twice", 52.52, 13.20)
        await harness.driver("crosser", 52.52, 13.25)
        await held_by(shards, WEST, "crosser")
        noted = await harness.ask(
            UpdateLocations(
                pings=[
                    DriverPing(user_id="twice", lat=52.50, lon=13.10),
                    DriverPing(user_id="stranger", lat=52.51, lon=13.11),
                    DriverPing(user_id="crosser", lat=52.52, lon=13.60),
                    DriverPing(user_id="twice", lat=52.55, lon=13.30),
                ]
            )
        )
        assert noted.not_drivers == ["stranger"]
        twice = region(shards, WEST).drivers.owned()["twice"]
        assert (twice.lat, twice.lon) == (52.55, 13.30)
        await held_by(shards, EAST, "crosser")
        assert "crosser" not in region(shards, WEST).drivers.owned()


async def test_a_request_behind_pings_sees_the_newest_locations(db: asyncpg.Pool) -> None:
    """Pings told in one message just before a request (the same region's mailbox): the
    request is offered to the driver those pings brought next to the pickup, not to the
    one they took away."""
    async with running(db) as (harness, shards):
        await harness.fund("rider")
        await harness.driver("leaving", 52.521, 13.10)
        await harness.driver("coming", 52.55, 13.10)
        await held_by(shards, WEST, "coming")
        pings = [
            DriverPing(user_id="leaving", lat=52.60, lon=13.10),
            DriverPing(user_id="coming", lat=52.5205, lon=13.10),
        ]
        await harness.rides.tell(UpdateLocations(pings=pings))
        ride = await ride_request(harness, "rider", 52.52, 13.10)
        await harness.offered(ride.id, "coming")
        assert not harness._offer(ride.id, "leaving")


async def test_one_riders_requests_in_two_regions_at_once_make_one_ride(
    db: asyncpg.Pool,
) -> None:
    """A rider asking for a ride in the west and one in the east at the same moment gets
    one ride; the other is ride_in_progress (never a crash), and one estimate is held."""
    async with running(db) as (harness, shards):
        await harness.fund("rider")
        await harness.driver("dw", 52.521, 13.10)
        await harness.driver("de", 52.521, 13.70)
        await held_by(shards, EAST, "de")
        answers = await asyncio.gather(
            ride_request(harness, "rider", 52.52, 13.10),
            ride_request(harness, "rider", 52.52, 13.70),
            return_exceptions=True,
        )
        rides = [a for a in answers if not isinstance(a, BaseException)]
        assert len(rides) == 1
        assert [type(a) for a in answers if isinstance(a, BaseException)] == [RideInProgress]
        assert await db.fetchval("SELECT count(*) FROM rides") == 1
        # the ride not stored keeps no offer timer in its region
        assert {r for shard in shards for r in shard.dispatcher._timers} <= {rides[0].id}

        async def one_hold() -> bool:
            held = await db.fetchval(
                "SELECT count(*) FROM payment_holds WHERE user_id = 'rider' AND status = 'held'"
            )
            return bool(held == 1)

        await eventually(one_hold)


async def test_a_request_whose_ride_was_moved_here_meanwhile_keeps_its_offer(
    db: asyncpg.Pool,
) -> None:
    """While a request's hold is placed, another region stores the same ride and moves it
    here, where it is offered: the request answers that ride and leaves its offer, timer
    and dispatch as they are."""
    async with running(db) as (harness, shards):
        await harness.fund("rider")
        await harness.driver("westy", 52.52, 13.20)
        await held_by(shards, WEST, "westy")
        request = RequestRide(
            ride_id=str(uuid.uuid4()),
            user_id="rider",
            pickup=Point(lat=52.52, lon=13.21),
            dropoff=Point(lat=52.54, lon=13.21),
        )
        estimate = await harness.ask(EstimateRide(pickup=request.pickup, dropoff=request.dropoff))
        for shard in harness.ledger:
            placing = shard.holds.place

            async def place_then_move(message: Any, placing: Any = placing) -> Any:
                hold = await placing(message)
                ride = _new_ride(request, estimate, 10_000, hold.id, datetime.now(UTC))
                ride.region = "west"
                await store.insert_ride(db, ride, step_at=ride.created_at)
                await harness.rides.ask(TakeOverRide(ride_id=ride.id), key=REGIONS.key_of(WEST))
                await harness.offered(ride.id, "westy")
                return hold

            shard.holds.place = place_then_move  # type: ignore[method-assign]
        answer = await harness.ask(request)
        assert (answer.id, answer.status) == (request.ride_id, "requested")
        west = region(shards, WEST)
        assert request.ride_id in west.dispatcher._dispatching
        assert west.dispatcher._timers[request.ride_id][0] == 1
        assert west.drivers.state("westy").offer == request.ride_id
