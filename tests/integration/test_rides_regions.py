"""Rides by region through an ActorSystem on a real PostgreSQL: two regions side by side
along 13.4°E (Berlin), each its own shard, with desks for messages naming no place; a
request near the border gets the nearer driver across it, two requests at once never get
one driver, and a driver crossing the border is dispatched by the new region."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from actors.auth.messages import GrantRole
from actors.payments import messages as payments_messages
from actors.payments.actor import Payments
from actors.payments.messages import payments_key
from actors.rides import messages
from actors.rides.actor import Rides
from actors.rides.messages import (
    AnswerOffer,
    GetRide,
    Point,
    RequestRide,
    RideUpdated,
    UpdateLocation,
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
