"""The HTTP edge's ping gathering (splitgo/web/rides_pings.py): pings of one shard within
the window go as one UpdateLocations, each request learns whether it was a driver."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.rides.messages import LocationsNoted, NotADriver, UpdateLocations
from splitgo.web.rides_pings import PingGatherer


class FakeRides:
    """Stands in for the rides ActorRef: the shard is the ping's latitude band; asks are
    recorded and answered with the ids not in `drivers`."""

    def __init__(self, drivers: set[str]) -> None:
        self.drivers = drivers
        self.sent: list[UpdateLocations] = []

    def shard_of(self, message: Any) -> int:
        return 0 if message.lat < 50 else 1

    async def ask(self, message: UpdateLocations) -> LocationsNoted:
        self.sent.append(message)
        strangers = [p.user_id for p in message.pings if p.user_id not in self.drivers]
        return LocationsNoted(not_drivers=strangers)


async def test_pings_of_one_shard_go_together_and_strangers_are_told() -> None:
    """Four pings at once, three in one shard and one in another, make two messages; the
    one who is not a driver gets NotADriver, the others are answered."""
    rides = FakeRides({"a", "b", "c"})
    gatherer = PingGatherer(rides, window=0.01)  # type: ignore[arg-type]
    results = await asyncio.gather(
        gatherer.ping("a", 40.0, 1.0),
        gatherer.ping("b", 41.0, 1.0),
        gatherer.ping("stranger", 42.0, 1.0),
        gatherer.ping("c", 60.0, 1.0),
        return_exceptions=True,
    )
    assert [results[0], results[1], results[3]] == [None, None, None]
    assert isinstance(results[2], NotADriver)
    assert sorted(len(m.pings) for m in rides.sent) == [1, 3]


async def test_a_failed_batch_fails_each_of_its_pings() -> None:
    """When the batch's ask fails, every request of the batch gets that error."""

    class Broken(FakeRides):
        async def ask(self, message: UpdateLocations) -> LocationsNoted:
            raise RuntimeError("down")

    gatherer = PingGatherer(Broken(set()), window=0.01)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await asyncio.gather(gatherer.ping("a", 40.0, 1.0), gatherer.ping("b", 40.0, 1.0))
