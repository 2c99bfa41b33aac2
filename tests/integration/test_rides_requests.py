"""A request whose ride id a row already has when the rides shard stores it (another
shard stored it while the hold was placed): answered as that ride, or refused as someone
else's, with nothing kept in memory for the ride the shard did not store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from actors.rides import store
from actors.rides.actor import Rides
from actors.rides.dispatcher import _new_ride
from actors.rides.messages import EstimateRide, RequestRide, RideNotFound
from tests.integration.test_rides_actor import DROPOFF, PICKUP, Harness, eventually, running

pytestmark = pytest.mark.integration


async def test_a_request_whose_ride_was_stored_meanwhile_answers_the_stored_ride(
    pool: asyncpg.Pool,
) -> None:
    """A request whose ride id was stored by another shard while its hold was placed (the
    same hold: one key a ride) answers the stored ride and keeps no offer, timer or
    dispatch of its own for it; the hold stays, held once."""
    made: list[Rides] = []
    async with running(pool, made=made) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        first = RequestRide(
            ride_id=str(uuid.uuid4()), user_id="rider", pickup=PICKUP, dropoff=DROPOFF
        )
        estimate = await harness.ask(EstimateRide(pickup=PICKUP, dropoff=DROPOFF))
        _store_first(harness, pool, first, estimate)
        answer = await harness.ask(first)
        assert (answer.id, answer.status, answer.driver) == (first.ride_id, "requested", None)
        dispatcher = made[0].dispatcher
        assert first.ride_id not in dispatcher._dispatching
        assert first.ride_id not in dispatcher._timers
        assert made[0].drivers.state("d1").offer is None
        assert (
            await pool.fetchval("SELECT offered_to FROM rides WHERE id = $1", first.ride_id) is None
        )
        assert await harness.wallet("rider") == (10_000 - estimate.amount, estimate.amount)


async def test_a_request_whose_ride_id_is_someone_elses_gets_its_hold_back(
    pool: asyncpg.Pool,
) -> None:
    """A request whose ride id another rider's ride took while its hold was placed is
    refused as no ride of theirs, keeps nothing in memory, and its hold is voided."""
    made: list[Rides] = []
    async with running(pool, made=made) as harness:
        await harness.fund("rider")
        await harness.driver("d1", 52.5201, 13.4051)
        mine = RequestRide(
            ride_id=str(uuid.uuid4()), user_id="rider", pickup=PICKUP, dropoff=DROPOFF
        )
        theirs = msgspec.structs.replace(mine, user_id="other")
        estimate = await harness.ask(EstimateRide(pickup=PICKUP, dropoff=DROPOFF))
        _store_first(harness, pool, theirs, estimate)
        with pytest.raises(RideNotFound):
            await harness.ask(mine)
        assert mine.ride_id not in made[0].dispatcher._dispatching
        assert mine.ride_id not in made[0].dispatcher._timers
        assert made[0].drivers.state("d1").offer is None

        async def released() -> bool:
            return await harness.wallet("rider") == (10_000, 0)

        await eventually(released)


def _store_first(harness: Harness, db: asyncpg.Pool, request: RequestRide, estimate: Any) -> None:
    """Have payments, once it placed a hold, store `request`'s ride as another shard would
    (no offer yet) before the rides shard hears of the hold: its insert then finds it."""
    for shard in harness.ledger:
        placing = shard.holds.place

        async def place_then_store(message: Any, placing: Any = placing) -> Any:
            hold = await placing(message)
            held = hold.id if message.user_id == request.user_id else None
            ride = _new_ride(request, estimate, 10_000, held or "", datetime.now(UTC))
            ride.hold_id = held
            await store.insert_ride(db, ride, step_at=ride.created_at)
            return hold

        shard.holds.place = place_then_store  # type: ignore[method-assign]
