"""Drivers: who drives, where they are and who is free — the live map, in memory.

Positions live in memory (a `GeoIndex` of the drivers who could take a ride) and are written
to the database every 15 s (`persist_positions`), not per ping; a driver unseen for
`stale_after` seconds counts as offline. The rest of a driver's state (offers, the ride in
hand) is set by the dispatcher and the trips through the methods here.
"""

from __future__ import annotations

from collections.abc import Callable

from actors.auth.messages import GrantRole
from actors.rides import fares, store
from actors.rides.context import RidesContext
from actors.rides.dispatch import GeoIndex
from actors.rides.messages import (
    AlreadyADriver,
    DriverPing,
    DriverView,
    InvalidRide,
    NotADriver,
    Redispatch,
    RegisterDriver,
    RelayedPing,
    SetDriverStatus,
    UpdateLocation,
)
from actors.rides.state import DriverState
from actors.runtime import at


class Drivers:
    """The drivers this shard knows, their live positions, and which of them are free."""

    def __init__(self, context: RidesContext, *, stale_after: float) -> None:
        self._context = context
        self._clock = context.clock
        self._stale_after = stale_after
        self._states: dict[str, DriverState] = {}
        self._index = GeoIndex()
        # with regions (issue 20): the neighbours' free drivers near our edges, read-only
        # (user id -> owning region, last heard), and who changed since the border feed
        self._border = GeoIndex()
        self._border_owner: dict[str, tuple[int, float]] = {}
        self.touched: set[str] = set()
        self.freed: set[str] = set()  # offer or ride ended in the message in hand

    async def load(self, keep: Callable[[store.DriverRow], bool] = lambda row: True) -> None:
        """Every registered driver (that `keep` keeps: the region's own), as last written
        (on every (re)start)."""
        for row in await store.drivers(self._context.pool):
            if keep(row):
                self.adopt(row)

    def adopt(self, row: store.DriverRow) -> DriverState:
        """Hold a driver as written in the database (at start, or handed over)."""
        state = DriverState(
            vehicle=row.vehicle,
            plate=row.plate,
            online=row.status == "online",
            lat=row.lat,
            lon=row.lon,
            seen=row.seen_at.timestamp() if row.seen_at else 0.0,
            rating_sum=row.rating_sum,
            rating_count=row.rating_count,
        )
        self._states[row.user_id] = state
        self._border.remove(row.user_id)
        self._border_owner.pop(row.user_id, None)
        self._place(row.user_id, state)
        return state

    def forget(self, user_id: str) -> None:
        """Let go of a driver another region now owns (handed over)."""
        self._states.pop(user_id, None)
        self._index.remove(user_id)
        self.touched.add(user_id)

    def owned(self) -> dict[str, DriverState]:
        return self._states

    async def persist_positions(self) -> None:
        """Write the positions that moved since the last time, in one statement."""
        moved = [(k, d) for k, d in self._states.items() if d.moved and d.lat is not None]
        for _, driver in moved:
            driver.moved = False
        await store.save_positions(
            self._context.pool, [(k, d.lat or 0.0, d.lon or 0.0, at(d.seen)) for k, d in moved]
        )

    # ── lookups ────────────────────────────────────────────────────────────────────────

    def get(self, user_id: str | None) -> DriverState | None:
        return self._states.get(user_id or "")

    def state(self, user_id: str) -> DriverState:
        """A driver known to be registered (a KeyError otherwise: a bug, not a refusal)."""
        return self._states[user_id]

    def require(self, user_id: str) -> DriverState:
        """The driver, or NotADriver for someone who never registered."""
        driver = self._states.get(user_id)
        if driver is None:
            raise NotADriver("Register as a driver first (POST /api/v1/drivers).")
        return driver

    def view(self, user_id: str) -> DriverView:
        driver = self.require(user_id)
        rating = round(driver.rating_sum / driver.rating_count, 2) if driver.rating_count else None
        return DriverView(
            user_id=user_id,
            vehicle=driver.vehicle,
            plate=driver.plate,
            status="online" if driver.online else "offline",
            rating=rating,
        )

    def available(self, user_id: str) -> bool:
        """Online, seen lately, and neither on a ride nor weighing an offer."""
        driver = self._states.get(user_id)
        return (
            driver is not None
            and driver.online
            and driver.ride is None
            and driver.offer is None
            and self._clock() - driver.seen <= self._stale_after
        )

    def nearest_available(
        self, lat: float, lon: float, radius_m: int, skip: Callable[[str], bool]
    ) -> str | None:
        """The nearest available driver within `radius_m` of (lat, lon), but not `skip`ped."""

        def fits(user_id: str) -> bool:
            return not skip(user_id) and self.available(user_id)

        found = self._index.nearest(lat, lon, radius_m=radius_m, accept=fits)
        return found[0][0] if found else None

    def nearest_pair(
        self, lat: float, lon: float, radius_m: int, skip: Callable[[str], bool]
    ) -> tuple[tuple[str, int] | None, tuple[str, int, int] | None]:
        """The nearest available driver of ours, and the nearest in the border view (with
        its owning region), each with its distance, within `radius_m` of (lat, lon)."""

        def fits(user_id: str) -> bool:
            return not skip(user_id) and self.available(user_id)

        def fits_across(user_id: str) -> bool:
            owner = self._border_owner.get(user_id)
            return (
                owner is not None
                and user_id not in self._states
                and not skip(user_id)
                and self._clock() - owner[1] <= self._stale_after
            )

        own = self._index.nearest(lat, lon, radius_m=radius_m, accept=fits)
        across = self._border.nearest(lat, lon, radius_m=radius_m, accept=fits_across)
        return (
            own[0] if own else None,
            (*across[0], self._border_owner[across[0][0]][0]) if across else None,
        )

    def border_seen(
        self, owner: int, near: list[tuple[str, float, float]], gone: list[str]
    ) -> None:
        """A neighbour's feed: its free drivers near our edge now, and those gone from it."""
        now = self._clock()
        for user_id in gone:
            if self._border_owner.get(user_id, (owner, 0.0))[0] == owner:
                self._border.remove(user_id)
                self._border_owner.pop(user_id, None)
        for user_id, lat, lon in near:
            if user_id not in self._states:
                self._border.update(user_id, lat, lon)
                self._border_owner[user_id] = (owner, now)

    def available_within(
        self, lat: float, lon: float, radius_m: int, *, at_most: int | None = None
    ) -> int:
        """How many drivers are available within `radius_m` of (lat, lon) (for surge),
        counted up to `at_most` when given."""
        return self._index.count_within(lat, lon, radius_m, accept=self.available, at_most=at_most)

    # ── what the dispatcher and the trips change ───────────────────────────────────────

    def take(self, user_id: str | None, ride_id: str) -> None:
        """The driver has this ride in hand: off the map of free drivers."""
        driver = self._states.get(user_id or "")
        if user_id is not None and driver is not None:
            driver.ride = ride_id
            self._place(user_id, driver)

    def release(self, user_id: str | None, ride_id: str) -> None:
        """The ride is over for its driver: back on the map if still online."""
        driver = self._states.get(user_id or "")
        if user_id is not None and driver is not None and driver.ride == ride_id:
            driver.ride = None
            self.freed.add(user_id)
            self._place(user_id, driver)

    def has_offer(self, user_id: str | None, ride_id: str) -> bool:
        driver = self._states.get(user_id or "")
        return driver is not None and driver.offer == ride_id

    def withdraw_offer(self, user_id: str | None, ride_id: str) -> None:
        """The offer of `ride_id` to this driver ends (answered, expired, gone)."""
        driver = self._states.get(user_id or "")
        if driver is not None and driver.offer == ride_id:
            driver.offer = None
            self.freed.add(user_id or "")

    def forget_offers(self, ride_id: str) -> None:
        """No driver holds an offer of `ride_id` any more (the ride was never stored)."""
        for driver in self._states.values():
            if driver.offer == ride_id:
                driver.offer = None

    def rated(self, user_id: str | None, stars: int) -> None:
        driver = self._states.get(user_id or "")
        if driver is not None:
            driver.rating_sum += stars
            driver.rating_count += 1

    # ── the drivers' own commands ──────────────────────────────────────────────────────

    async def register(self, message: RegisterDriver) -> DriverView:
        replayed = await self._context.replayed(message, DriverView)
        if replayed is not None:
            return replayed
        vehicle = _text(message.vehicle, "vehicle", 60)
        plate = _text(message.plate, "plate", 16).upper()
        if message.user_id in self._states or (
            self._context.regional and await store.driver(self._context.pool, message.user_id)
        ):
            raise AlreadyADriver("You are registered as a driver already.")
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.insert_driver(tx, message.user_id, vehicle, plate, self._context.now())
                await tx.tell("auth", GrantRole(user_id=message.user_id, role="driver"))
                view = DriverView(
                    user_id=message.user_id,
                    vehicle=vehicle,
                    plate=plate,
                    status="offline",
                    rating=None,
                )
                await self._context.remember(tx, message, view)
        self._states[message.user_id] = DriverState(vehicle=vehicle, plate=plate)
        return self.view(message.user_id)

    async def set_status(self, message: SetDriverStatus) -> DriverView:
        driver = self.require(message.user_id)
        driver.online = message.status == "online"
        await store.set_driver_status(self._context.pool, message.user_id, message.status)
        self._place(message.user_id, driver)
        self.freed.add(message.user_id)
        if not driver.online and driver.offer is not None:
            # an offer waiting on a driver who left goes to the next one now
            await self._context.tell_self(Redispatch(ride_id=driver.offer))
            driver.offer = None
        return self.view(message.user_id)

    def locate(
        self, message: UpdateLocation | DriverPing | RelayedPing, *, checked: bool = False
    ) -> DriverState:
        """Note a driver's ping; the driver, with the ride it may be on. `checked`: the
        caller checked the point already (a region does, before it may relay the ping)."""
        if checked:
            lat, lon = float(message.lat), float(message.lon)
        else:
            lat, lon = fares.check_point(message.lat, message.lon, "$")
        driver = self.require(message.user_id)
        driver.lat, driver.lon, driver.seen, driver.moved = lat, lon, self._clock(), True
        self._place(message.user_id, driver)
        return driver

    def _place(self, user_id: str, driver: DriverState) -> None:
        """Keep the index to drivers who could take a ride (positions of the rest stay)."""
        self.touched.add(user_id)
        if (
            driver.online
            and driver.ride is None
            and driver.lat is not None
            and driver.lon is not None
        ):
            self._index.update(user_id, driver.lat, driver.lon)
        else:
            self._index.remove(user_id)


def _text(value: str, field: str, maximum: int) -> str:
    cleaned = " ".join(value.split())
    if not cleaned or len(cleaned) > maximum or any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        raise InvalidRide(
            f"{field} must be 1 to {maximum} printable characters.", details={"field": f"$.{field}"}
        )
    return cleaned
