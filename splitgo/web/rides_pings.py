"""Driver pings at the HTTP edge (issue 20): pings that reach this node within a short
window for the same rides shard (with regions: the same region) go to the rides actor as
one `UpdateLocations` instead of one message each.

`POST /api/v1/drivers/me/location` still answers only once the actor took the ping, and
still says 403 `not_a_driver` to someone who is not one: every request of a batch waits
for the batch's answer, which names those who are not drivers. So a ping waits up to
`WINDOW_S` longer, and Redis carries tens of messages a second instead of thousands.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from actors.rides.messages import (
    PINGS_MAX,
    DriverPing,
    LocationsNoted,
    NotADriver,
    UpdateLocation,
    UpdateLocations,
)
from actors.runtime import ActorRef, ActorSystem

WINDOW_S = 0.1  # how long the first ping of a batch waits for others of its shard


@dataclass(slots=True)
class _Batch:
    pings: list[DriverPing] = field(default_factory=list)
    answer: asyncio.Future[LocationsNoted] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PingGatherer:
    """Gathers one node's driver pings per rides shard for `window` seconds (or until a
    batch is full) and sends each batch as one asked `UpdateLocations`."""

    def __init__(self, rides: ActorRef, *, window: float = WINDOW_S) -> None:
        self._rides = rides
        self._window = window
        self._open: dict[int, _Batch] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def ping(self, user_id: str, lat: float, lon: float) -> None:
        """Note the driver's position; NotADriver for someone who never registered."""
        single = UpdateLocation(user_id=user_id, lat=lat, lon=lon)  # bounds checked here
        shard = self._rides.shard_of(single)
        batch = self._open.get(shard)
        if batch is None:
            batch = self._open[shard] = _Batch()
            asyncio.get_running_loop().call_later(self._window, self._send, shard, batch)
        batch.pings.append(DriverPing(user_id=user_id, lat=lat, lon=lon))
        if len(batch.pings) >= PINGS_MAX:
            self._send(shard, batch)
        # shielded: one request going away must not cancel its batch-mates' answer
        noted = await asyncio.shield(batch.answer)
        if user_id in noted.not_drivers:
            raise NotADriver("Register as a driver first (POST /api/v1/drivers).")

    def _send(self, shard: int, batch: _Batch) -> None:
        if self._open.get(shard) is not batch:
            return  # sent already (it filled up before its window ended)
        del self._open[shard]
        task = asyncio.create_task(self._ask(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _ask(self, batch: _Batch) -> None:
        try:
            noted: LocationsNoted = await self._rides.ask(UpdateLocations(pings=batch.pings))
        except asyncio.CancelledError:
            batch.answer.cancel()
            raise
        except Exception as error:
            batch.answer.set_exception(error)
            batch.answer.exception()  # retrieved: no "never retrieved" warning when alone
            return
        batch.answer.set_result(noted)


_gatherers: WeakKeyDictionary[ActorSystem, PingGatherer] = WeakKeyDictionary()


def gatherer(system: ActorSystem) -> PingGatherer:
    """The node's one gatherer (made on the first ping)."""
    found = _gatherers.get(system)
    if found is None:
        found = _gatherers[system] = PingGatherer(system.ref("rides"))
    return found
