"""Rides by region (issue 20): what a region's shard does with the other regions, and what
a desk does.

Ownership. Each driver is held, in memory, by exactly one region: the region of the ride it
has in hand or is offered (a ride's region is written on it: its pickup's, or the
neighbour it moved to), else the region of its position (else the first region, for a
new driver). The database says the same (`store.whereabouts`): a region writes a driver's
position at once whenever that decides who owns it (a handover, an offer or ride ending),
so a shard that starts, or meets a driver it does not hold, asks the database and takes
the driver only when it is the owner. Only the owner offers or gives its drivers rides:
one writer per driver, so a driver is never given two rides (the database's unique index
of a driver's ride in hand refuses a second one too).

Pings go to the region of their place. A ping for a driver held elsewhere is relayed to
its owner (`RelayedPing`); an owner whose free driver pinged from another region writes
the position and hands the driver over (the new region takes it from the database).

Across borders. Each region tells its neighbours, once a second, which of its free drivers
are within the border distance of their edge (`BorderDrivers`): a read-only border view.
When the nearest free driver for a request is in that view, the ride moves (once) to the
driver's region (`TakeOverRide`, through the outbox with the ride's new region), whose
shard offers it. So a request never waits on another shard, and the region that owns a
driver is the only one that offers it anything.

Desks take the messages that name no place (a ride or a driver by id) and ask the owning
region for the answer. Regions never ask a desk or each other (they only tell), so no two
shards can wait on each other.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import structlog

from actors.rides import fares, store
from actors.rides.context import RidesContext
from actors.rides.drivers import Drivers
from actors.rides.messages import (
    BorderDriver,
    BorderDrivers,
    DriverPing,
    GetCurrentRide,
    NotADriver,
    RelayedPing,
    UpdateLocation,
)
from actors.rides.regions import RegionMap
from actors.rides.state import DriverState
from actors.runtime import DomainError, Envelope, Failure, HandlerFailed, Message, at
from actors.runtime.errors import refusal_for

log = structlog.get_logger("actors.rides")

MAX_HOPS = 3  # a relayed ping chasing a driver handed over meanwhile gives up after this
RELAY_MEMORY_S = 15.0  # how long a region remembers who owns a driver pinging through it
# (longer than a ping's 5 s, so a relayed driver costs no database read a ping; a wrong
# memory only costs a hop: the region relayed to asks the database and passes it on)
FEED_CHUNK = 500  # border drivers per message
HANDING_ON_MAX = 256  # a desk's asks waiting on regions at once


@dataclass(frozen=True, slots=True)
class Territory:
    """The regions, and which one (or which desk) this shard is."""

    map: RegionMap
    index: int

    @property
    def name(self) -> str:
        return self.map.regions[self.index].name

    def ride_owner(self, region: str | None, lat: float, lon: float) -> int:
        """The region dispatching a ride: the one written on it, else its pickup's."""
        found = self.map.index(region)
        return found if found is not None else self.map.region_of(lat, lon)

    def owns_ride(self, ride: store.RideRow) -> bool:
        return self.ride_owner(ride.region, ride.pickup_lat, ride.pickup_lon) == self.index

    def may_cross(self, ride: store.RideRow) -> bool:
        """A ride still in its pickup's region may move to a neighbour's driver (once)."""
        return (
            ride.region is None
            or ride.region
            == self.map.regions[self.map.region_of(ride.pickup_lat, ride.pickup_lon)].name
        )

    def driver_owner(self, where: store.DriverWhereabouts) -> int:
        """The region holding a driver, as the database tells where it is."""
        return self.owner_of_driver(
            where.ride_region, where.ride_lat, where.ride_lon, where.lat, where.lon
        )

    def owner_of_driver(
        self,
        ride_region: str | None,
        ride_lat: float | None,
        ride_lon: float | None,
        lat: float | None,
        lon: float | None,
    ) -> int:
        """The region holding a driver: its ride's (the one in hand or offered), else its
        position's (a region tries its own box first: the answer is the same, only
        quicker; a desk has none), else the first region (a new driver)."""
        if ride_lat is not None and ride_lon is not None:
            return self.ride_owner(ride_region, ride_lat, ride_lon)
        if lat is not None and lon is not None:
            own = self.index if self.index < len(self.map.regions) else None
            return self.map.region_of(lat, lon, own)
        return 0


class Regional:
    """A region shard's pings, handovers and border feed; a desk's hand-on."""

    def __init__(self, context: RidesContext, territory: Territory, drivers: Drivers) -> None:
        self._context = context
        self._pool = context.pool
        self.territory = territory
        self._map = territory.map
        self._drivers = drivers
        self._relay: dict[str, tuple[int, float]] = {}  # driver -> (owner, remembered until)
        self._listed: dict[str, frozenset[int]] = {}  # driver -> neighbours told it is near
        self._sending: set[asyncio.Task[None]] = set()
        self._room = asyncio.Semaphore(HANDING_ON_MAX)  # a desk's questions handed on at once

    # ── start ──────────────────────────────────────────────────────────────────────────

    async def load(self) -> None:
        """The drivers this region owns, as the database says."""
        in_hand: dict[str, store.RideRow] = {}
        for ride in await store.active_rides(self._pool):
            for user_id in (ride.driver_id, ride.offered_to):
                if user_id:
                    in_hand[user_id] = ride

        here, owner = self.territory.index, self.territory.owner_of_driver

        def ours(row: store.DriverRow) -> bool:
            # `driver_owner`'s answer without a DriverWhereabouts for each of (say) 20,000
            # rows a start
            ride = in_hand.get(row.user_id)
            if ride is None:
                return owner(None, None, None, row.lat, row.lon) == here
            return owner(ride.region, ride.pickup_lat, ride.pickup_lon, row.lat, row.lon) == here

        await self._drivers.load(ours)

    # ── pings and handovers ────────────────────────────────────────────────────────────

    async def ping(self, message: UpdateLocation | DriverPing | RelayedPing) -> DriverState | None:
        """Note a ping of a driver held here (taking it over first when the database says
        it is ours); relay it to the owner otherwise. The driver when held here."""
        fares.check_point(message.lat, message.lon, "$")  # before a relay carries it on
        user_id, relayed = message.user_id, isinstance(message, RelayedPing)
        if user_id not in self._drivers.owned():
            owner = await self._owner_for_ping(message, relayed)
            if owner is None:
                return None
            if owner != self.territory.index:
                self._relay[user_id] = (owner, self._context.clock() + RELAY_MEMORY_S)
                hops = message.hops + 1 if isinstance(message, RelayedPing) else 1
                if hops <= MAX_HOPS:
                    self._send(
                        owner,
                        RelayedPing(user_id=user_id, lat=message.lat, lon=message.lon, hops=hops),
                    )
                return None
            await self.take(user_id)
        driver = self._drivers.locate(message, checked=True)
        if self._free_elsewhere(driver):
            await self._hand_over(user_id, driver)
            return None
        return driver

    async def _owner_for_ping(
        self, message: UpdateLocation | DriverPing | RelayedPing, relayed: bool
    ) -> int | None:
        remembered = self._relay.get(message.user_id)
        if not relayed and remembered and remembered[1] > self._context.clock():
            return remembered[0]
        where = await store.whereabouts(self._pool, message.user_id)
        if not where.registered:
            if relayed:
                return None
            raise NotADriver("Register as a driver first (POST /api/v1/drivers).")
        return self.territory.driver_owner(where)

    async def take(self, user_id: str) -> None:
        """Hold a driver the database says is ours (handed over, or met first here)."""
        row = await store.driver(self._pool, user_id)
        if row is not None and user_id not in self._drivers.owned():
            self._drivers.adopt(row)
            self._relay.pop(user_id, None)
            log.info("ride_driver_taken_over", user_id=user_id, region=self.territory.name)

    async def ensure(self, user_id: str) -> None:
        """Before a driver's own command: hold the driver if it is ours and not yet held."""
        if user_id in self._drivers.owned():
            return
        where = await store.whereabouts(self._pool, user_id)
        if where.registered and self.territory.driver_owner(where) == self.territory.index:
            await self.take(user_id)

    def _free_elsewhere(self, driver: DriverState) -> bool:
        return (
            driver.ride is None
            and driver.offer is None
            and driver.lat is not None
            and driver.lon is not None
            and self._map.region_of(driver.lat, driver.lon, self.territory.index)
            != self.territory.index
        )

    async def _hand_over(self, user_id: str, driver: DriverState) -> None:
        """The free driver is in another region now: write where (so the database names
        the new owner), let go, and pass the ping on so the new region takes it at once."""
        lat, lon = driver.lat or 0.0, driver.lon or 0.0
        owner = self._map.region_of(lat, lon)
        await store.save_positions(self._pool, [(user_id, lat, lon, at(driver.seen))])
        driver.moved = False
        self._drivers.forget(user_id)
        self._send(owner, RelayedPing(user_id=user_id, lat=lat, lon=lon, hops=1))
        log.info(
            "ride_driver_handed_over",
            user_id=user_id,
            region=self.territory.name,
            to=self._map.regions[owner].name,
        )

    async def settle(self) -> None:
        """After each message: the drivers whose offer or ride ended have their position
        written now (it names their owner again), and go to their region if elsewhere."""
        freed, self._drivers.freed = self._drivers.freed, set()
        owned = self._drivers.owned()
        positions = []
        for user_id in freed:
            driver = owned.get(user_id)
            if driver is None or driver.lat is None or driver.lon is None:
                continue
            if self._free_elsewhere(driver):
                await self._hand_over(user_id, driver)
            else:
                positions.append((user_id, driver.lat, driver.lon, at(driver.seen)))
                driver.moved = False
        await store.save_positions(self._pool, positions)

    # ── the border view ────────────────────────────────────────────────────────────────

    async def feed_border(self) -> None:
        """Tell each neighbour which of our free drivers are near its edge now, and which
        are no longer (moved away, busy, offline, handed over)."""
        touched, self._drivers.touched = self._drivers.touched, set()
        near: dict[int, list[BorderDriver]] = defaultdict(list)
        gone: dict[int, list[str]] = defaultdict(list)
        owned = self._drivers.owned()
        listed, region_near, here = self._listed, self._map.near, self.territory.index
        available = self._drivers.available
        for user_id in touched:
            driver = owned.get(user_id)
            now_near: tuple[int, ...] = ()
            if driver and driver.lat is not None and driver.lon is not None:
                if available(user_id):
                    now_near = region_near(driver.lat, driver.lon, here)
                for index in now_near:
                    near[index].append(
                        BorderDriver(user_id=user_id, lat=driver.lat, lon=driver.lon)
                    )
            was = listed.get(user_id)
            if was is None and not now_near:
                continue  # the common case: deep inside, and was (the sets would be empty)
            for index in (was or frozenset()).difference(now_near):
                gone[index].append(user_id)
            if now_near:
                listed[user_id] = frozenset(now_near)
            else:
                listed.pop(user_id, None)
        for index in set(near) | set(gone):
            told, left = near.get(index, []), gone.get(index, [])
            for start in range(0, max(len(told), len(left), 1), FEED_CHUNK):
                feed = BorderDrivers(
                    region=self.territory.name,
                    near=told[start : start + FEED_CHUNK],
                    gone=left[start : start + FEED_CHUNK],
                )
                await self._context.tell("rides", feed, key=self._map.key_of(index))

    def border_heard(self, message: BorderDrivers) -> None:
        owner = self._map.index(message.region)
        if owner is None or owner == self.territory.index:
            return
        near = [(d.user_id, d.lat, d.lon) for d in message.near]
        self._drivers.border_seen(owner, near, message.gone)

    # ── sending without waiting ────────────────────────────────────────────────────────

    def _send(self, index: int, message: Message) -> None:
        """Tell another region from a task: a handler never waits on another region's
        mailbox (two full mailboxes telling each other would wait for ever)."""
        task = asyncio.create_task(
            self._context.tell("rides", message, key=self._map.key_of(index))
        )
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("ride_relay_not_sent", error=type(task.exception()).__name__)

    async def stop(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    # ── desks ──────────────────────────────────────────────────────────────────────────

    async def owner_of(self, message: Any) -> int:
        """The region a message naming no place belongs to (a desk's question)."""
        ride_id = getattr(message, "ride_id", None)
        if ride_id is None and isinstance(message, GetCurrentRide):
            ride_id = await store.current_ride(self._pool, message.user_id)
        if ride_id is not None:
            place = await store.ride_place(self._pool, ride_id)
            if place is not None:
                return self.territory.ride_owner(*place)
        user_id = getattr(message, "user_id", None)
        if user_id is not None:
            where = await store.whereabouts(self._pool, user_id)
            if where.registered:
                return self.territory.driver_owner(where)
        return 0

    async def hand_on_later(self, message: Any, envelope: Envelope) -> None:
        """A desk: hand an ask on from a task and answer it from there, so the desk takes
        its next message at once instead of waiting for a busy region (at most
        HANDING_ON_MAX at a time: past that, the desk waits for room)."""
        await self._room.acquire()
        task = asyncio.create_task(self._answer(message, envelope))
        self._sending.add(task)
        task.add_done_callback(self._answered)

    async def _answer(self, message: Any, envelope: Envelope) -> None:
        try:
            result: Any = await self.hand_on(message)
        except DomainError as error:
            result = Failure.of(error)
        except Exception as error:
            refusal = refusal_for(error, asking=True)
            log.warning("ride_desk_hand_on_failed", error=type(error).__name__)
            result = Failure.of(refusal or HandlerFailed(f"{type(error).__name__}: {error}"))
        finally:
            self._room.release()
        self._context.shard_actor.system.reply(envelope, result)

    def _answered(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("ride_desk_answer_not_sent", error=type(task.exception()).__name__)

    async def hand_on(self, message: Any) -> Any:
        """A desk: ask the owning region and answer what it answers. A driver handed over
        while the question travelled is asked of its new region (the database moved on)."""
        owner = await self.owner_of(message)
        for _ in range(MAX_HOPS):
            try:
                return await self._context.ask("rides", message, key=self._map.key_of(owner))
            except NotADriver:
                moved_to = await self.owner_of(message)
                if moved_to == owner:
                    raise
                owner = moved_to
        return await self._context.ask("rides", message, key=self._map.key_of(owner))
