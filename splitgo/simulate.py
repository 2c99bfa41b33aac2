"""splitgo simulate — simulated drivers and riders driving a live node over HTTP.

    splitgo simulate --drivers 200 --riders 50 --minutes 2 [--url http://127.0.0.1:8080]

Everyone signs up through the API (a few at a time: argon2 is slow on purpose), riders top
their wallets up through the sandbox checkout, and drivers register, appear at random
points of a city box (Berlin by default) and move every few seconds. Drivers poll their
offers and accept most of them (else decline), drive to the pickup, arrive, start, drive to
the dropoff pinging their position and complete. Riders request rides at random times to
random places, follow them, and sometimes cancel.

Riders stop requesting after `--minutes`; rides in flight then get `--drain` seconds to
end. Every ride is read back once more and the summary printed, ending with one line a
script can parse:

    simulate: requests=12 matched=10 completed=7 cancelled=2 no_driver=1 in_flight=2 ...

Exit status: 0 after a run, 1 when setting up the fleet failed, 2 when no node answers.

`splitgo simulate --city` is the city-scale run of rides by region instead (20,000
drivers, 10 regions, 3 nodes it starts on one Redis): see splitgo/simulate_city.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from actors.payments.messages import format_money
from splitgo import event_loop
from splitgo.simulate_options import Options, parse
from splitgo.simulate_summary import TERMINAL, Summary, summarise, summary_line

log = structlog.get_logger("splitgo.simulate")

PASSWORD = "simulated rider password 42"
TOP_UP_AMOUNT = 50_000  # minor units of EUR, enough for many rides
CURRENCY = "EUR"
ACCEPT_PROBABILITY = 0.85
CANCEL_PROBABILITY = 0.1
PING_EVERY_S = 3.0
VEHICLES = ("Toyota Prius", "VW Passat", "Skoda Octavia", "Tesla Model 3", "Kia Niro")
EXIT_OK, EXIT_SETUP_FAILED, EXIT_NO_NODE = 0, 1, 2


class SimulationError(Exception):
    """Setting up the fleet went wrong; the message says what."""


@dataclass(frozen=True, slots=True)
class Box:
    """The city: rides and drivers stay within these degrees."""

    south: float = 52.45
    north: float = 52.58
    west: float = 13.25
    east: float = 13.55

    def random_point(self, rng: random.Random) -> tuple[float, float]:
        return rng.uniform(self.south, self.north), rng.uniform(self.west, self.east)

    def clamp(self, lat: float, lon: float) -> tuple[float, float]:
        return min(max(lat, self.south), self.north), min(max(lon, self.west), self.east)


@dataclass(slots=True)
class Agent:
    """One simulated person: their account, token, position and random stream."""

    name: str
    email: str
    rng: random.Random
    id: str = ""
    token: str = ""
    lat: float = 0.0
    lon: float = 0.0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(slots=True)
class Stats:
    """What happened: the rides requested (id -> rider) and the refusals by status code."""

    rides: dict[str, Agent] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Clock:
    """When riders stop requesting, and when every loop stops."""

    requesting: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


# ── HTTP ──────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class Client:
    """JSON requests to the node as one agent or another; refusals are counted."""

    http: aiohttp.ClientSession
    url: str
    stats: Stats

    async def call(
        self,
        method: str,
        path: str,
        agent: Agent | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        status, answer = await self.send(method, path, agent, body, headers)
        if status == 401 and agent is not None and agent.token:
            await login(self, agent)  # the access token ran out: sign in again, once
            status, answer = await self.send(method, path, agent, body, headers)
        if status >= 400 or status == 0:
            self.stats.errors[str(status) if status else "network"] += 1
            code = answer.get("code") if isinstance(answer, dict) else None
            self.stats.codes[f"{status} {code or 'error'}"] += 1
        return status, answer

    async def send(
        self,
        method: str,
        path: str,
        agent: Agent | None,
        body: Any,
        headers: dict[str, str] | None,
    ) -> tuple[int, Any]:
        sent = {**(agent.headers if agent and agent.token else {}), **(headers or {})}
        try:
            async with self.http.request(
                method, self.url + path, json=body, headers=sent, allow_redirects=False
            ) as response:
                answer: Any = None
                if response.content_type.endswith("json"):
                    answer = await response.json(content_type=None)
                return response.status, answer
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("simulate_request_failed", method=method, path=path, error=str(error))
            return 0, None


async def node_answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/healthz") as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


# ── setting up the fleet ──────────────────────────────────────────────────────────────


def make_agents(kind: str, count: int, run: str, seed: int | None) -> list[Agent]:
    return [
        Agent(
            name=f"{kind}-{index}",
            email=f"sim-{run}-{kind}-{index}@example.com",
            rng=random.Random(f"{seed}-{kind}-{index}") if seed is not None else random.Random(),
        )
        for index in range(count)
    ]


async def login(client: Client, agent: Agent) -> None:
    status, answer = await client.send(
        "POST", "/api/v1/auth/login", None, {"email": agent.email, "password": PASSWORD}, None
    )
    if status != 200:
        raise SimulationError(f"{agent.name} could not sign in: {status} {answer}")
    agent.token = answer["access_token"]


async def sign_up(client: Client, agent: Agent) -> None:
    body = {"email": agent.email, "password": PASSWORD, "name": agent.name}
    status, answer = await client.call("POST", "/api/v1/auth/register", body=body)
    if status != 201:
        raise SimulationError(f"{agent.name} could not sign up: {status} {answer}")
    agent.id = answer["id"]
    await login(client, agent)


async def in_turn(
    label: str, agents: Sequence[Agent], work: Callable[[Agent], Awaitable[None]], limit: int
) -> None:
    """`work` for every agent, `limit` at a time, printing progress now and then."""
    gate = asyncio.Semaphore(limit)
    done = 0
    every = max(1, len(agents) // 10)

    async def one(agent: Agent) -> None:
        nonlocal done
        async with gate:
            await work(agent)
        done += 1
        if done % every == 0 or done == len(agents):
            print(f"simulate: {label} {done}/{len(agents)}", flush=True)

    await asyncio.gather(*(one(agent) for agent in agents))


async def top_up(client: Client, rider: Agent) -> None:
    """Pay a top-up on the sandbox's checkout page, as a person would."""
    status, created = await client.call(
        "POST",
        "/api/v1/wallet/top-ups",
        rider,
        {"amount": TOP_UP_AMOUNT, "currency": CURRENCY},
        headers={"Idempotency-Key": secrets.token_hex(8)},
    )
    if status != 201:
        raise SimulationError(f"{rider.name} could not start a top-up: {status} {created}")
    checkout = urlsplit(created["checkout_url"]).path  # the node's own address may differ
    status, _ = await client.call("POST", f"{checkout}/pay")
    if status != 303:
        raise SimulationError(f"{rider.name}'s sandbox payment was refused: {status}")


async def go_online(client: Client, driver: Agent, box: Box) -> None:
    vehicle = driver.rng.choice(VEHICLES)
    plate = f"SIM {driver.name.split('-')[-1]}"
    status, answer = await client.call(
        "POST", "/api/v1/drivers", driver, {"vehicle": vehicle, "plate": plate}
    )
    if status != 201:
        raise SimulationError(f"{driver.name} could not register as a driver: {status} {answer}")
    driver.lat, driver.lon = box.random_point(driver.rng)
    await ping(client, driver)
    await client.call("POST", "/api/v1/drivers/me/status", driver, {"status": "online"})


# ── drivers ───────────────────────────────────────────────────────────────────────────


async def ping(client: Client, driver: Agent) -> None:
    place = {"lat": round(driver.lat, 6), "lon": round(driver.lon, 6)}
    await client.call("POST", "/api/v1/drivers/me/location", driver, place)


def wander(driver: Agent, box: Box) -> None:
    """A few hundred metres in a random direction, staying in the city."""
    driver.lat, driver.lon = box.clamp(
        driver.lat + driver.rng.uniform(-0.003, 0.003),
        driver.lon + driver.rng.uniform(-0.004, 0.004),
    )


async def drive_to(client: Client, driver: Agent, lat: float, lon: float, legs: int) -> None:
    """Move to (lat, lon) in `legs` hops, pinging after each (a second or so apart)."""
    start_lat, start_lon = driver.lat, driver.lon
    for leg in range(1, legs + 1):
        await asyncio.sleep(driver.rng.uniform(0.4, 1.2))
        driver.lat = start_lat + (lat - start_lat) * leg / legs
        driver.lon = start_lon + (lon - start_lon) * leg / legs
        await ping(client, driver)


async def advance(client: Client, driver: Agent, ride_id: str, action: str) -> bool:
    status, _ = await client.call("POST", f"/api/v1/rides/{ride_id}/{action}", driver)
    return status == 200


async def trip(client: Client, driver: Agent, offer: dict[str, Any]) -> None:
    """An accepted ride: to the pickup, arrive, start, to the dropoff, complete; it stops
    early when a step is refused (the rider cancelled)."""
    ride_id, pickup, dropoff = offer["ride_id"], offer["pickup"], offer["dropoff"]
    await drive_to(client, driver, pickup["lat"], pickup["lon"], legs=2)
    if not await advance(client, driver, ride_id, "arrive"):
        return
    await asyncio.sleep(driver.rng.uniform(0.3, 1.0))
    if not await advance(client, driver, ride_id, "start"):
        return
    await drive_to(client, driver, dropoff["lat"], dropoff["lon"], legs=driver.rng.randint(3, 5))
    await advance(client, driver, ride_id, "complete")


async def answer_offer(client: Client, driver: Agent) -> dict[str, Any] | None:
    """The offer this driver accepted just now, if any (most are accepted)."""
    status, answer = await client.call("GET", "/api/v1/drivers/me/offers", driver)
    if status != 200 or not answer["offers"]:
        return None
    offer: dict[str, Any] = answer["offers"][0]
    accept = driver.rng.random() < ACCEPT_PROBABILITY
    action = "accept" if accept else "decline"
    status, _ = await client.call("POST", f"/api/v1/rides/{offer['ride_id']}/{action}", driver)
    return offer if accept and status == 200 else None


async def drive(client: Client, driver: Agent, box: Box, clock: Clock, poll: float) -> None:
    """A driver's shift: poll offers, take rides, move around between them."""
    loop = asyncio.get_running_loop()
    pinged = loop.time()
    while not clock.finished.is_set():
        offer = await answer_offer(client, driver)
        if offer is not None:
            await trip(client, driver, offer)
            pinged = loop.time()
        elif loop.time() - pinged >= PING_EVERY_S:
            wander(driver, box)
            await ping(client, driver)
            pinged = loop.time()
        await asyncio.sleep(driver.rng.uniform(0.5 * poll, 1.5 * poll))


# ── riders ────────────────────────────────────────────────────────────────────────────


async def request_ride(client: Client, rider: Agent, box: Box) -> str | None:
    pickup = box.random_point(rider.rng)
    dropoff = box.random_point(rider.rng)
    body = {
        "pickup": {"lat": round(pickup[0], 6), "lon": round(pickup[1], 6)},
        "dropoff": {"lat": round(dropoff[0], 6), "lon": round(dropoff[1], 6)},
    }
    status, answer = await client.call(
        "POST", "/api/v1/rides", rider, body, headers={"Idempotency-Key": secrets.token_hex(8)}
    )
    if status != 201:
        return None
    ride_id: str = answer["id"]
    client.stats.rides[ride_id] = rider
    return ride_id


async def follow(client: Client, rider: Agent, ride_id: str, clock: Clock, poll: float) -> None:
    """Watch the ride until it ends (or the run does); maybe cancel it on the way."""
    loop = asyncio.get_running_loop()
    cancel_at = None
    if rider.rng.random() < CANCEL_PROBABILITY:
        cancel_at = loop.time() + rider.rng.uniform(0.5, 8.0)
    while not clock.finished.is_set():
        await asyncio.sleep(poll)
        status, view = await client.call("GET", f"/api/v1/rides/{ride_id}", rider)
        if status != 200 or view["status"] in TERMINAL:
            return
        cancellable = view["status"] in ("requested", "driver_assigned")
        if cancel_at is not None and loop.time() >= cancel_at and cancellable:
            reason = {"reason": "simulated change of plans"}
            await client.call("POST", f"/api/v1/rides/{ride_id}/cancel", rider, reason)
            return


async def ride_around(
    client: Client, rider: Agent, box: Box, clock: Clock, duration: float, poll: float
) -> None:
    """A rider's day: a first ride at a random moment, then more after short pauses."""
    await asyncio.sleep(rider.rng.uniform(0.0, max(duration / 3, 0.1)))
    while not clock.requesting.is_set():
        ride_id = await request_ride(client, rider, box)
        if ride_id is not None:
            await follow(client, rider, ride_id, clock, poll)
        await asyncio.sleep(rider.rng.uniform(1.0, 5.0))


# ── the run ───────────────────────────────────────────────────────────────────────────


async def time_keeper(clock: Clock, stats: Stats, client: Client, options: Options) -> None:
    """Close requests after the run's minutes, then wait (up to the drain) for rides."""
    await asyncio.sleep(options.minutes * 60)
    clock.requesting.set()
    print(f"simulate: time is up; draining rides in flight (up to {options.drain:g} s)", flush=True)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(options.drain):
            await drained(client, stats)
    clock.finished.set()


async def drained(client: Client, stats: Stats) -> None:
    """Return once every ride requested so far has ended."""
    while True:
        if not await unfinished(client, stats):
            return
        await asyncio.sleep(1.0)


async def unfinished(client: Client, stats: Stats) -> list[str]:
    """Rides not over yet (as their riders see them)."""
    views = await final_views(client, stats)
    return [ride_id for ride_id, view in views.items() if view.get("status") not in TERMINAL]


async def final_views(client: Client, stats: Stats) -> dict[str, dict[str, Any]]:
    async def one(ride_id: str, rider: Agent) -> tuple[str, dict[str, Any]]:
        status, view = await client.call("GET", f"/api/v1/rides/{ride_id}", rider)
        return ride_id, view if status == 200 and isinstance(view, dict) else {}

    pairs = await asyncio.gather(*(one(r, a) for r, a in list(stats.rides.items())))
    return dict(pairs)


async def clean_up(client: Client, stats: Stats, drivers: list[Agent], left: list[str]) -> None:
    """Cancel rides still in flight and take the drivers offline: the node is left quiet."""
    await asyncio.gather(
        *(
            client.call("POST", f"/api/v1/rides/{ride_id}/cancel", stats.rides[ride_id])
            for ride_id in left
        ),
        *(
            client.call("POST", "/api/v1/drivers/me/status", driver, {"status": "offline"})
            for driver in drivers
        ),
    )


async def set_up(client: Client, options: Options, box: Box) -> tuple[list[Agent], list[Agent]]:
    run = secrets.token_hex(3)
    drivers = make_agents("driver", options.drivers, run, options.seed)
    riders = make_agents("rider", options.riders, run, options.seed)
    everyone = drivers + riders
    await in_turn("signed up", everyone, lambda a: sign_up(client, a), options.concurrency)
    await in_turn("topped up", riders, lambda a: top_up(client, a), options.concurrency)
    await in_turn(
        "drivers online", drivers, lambda a: go_online(client, a, box), options.concurrency
    )
    return drivers, riders


async def simulate(options: Options) -> int:
    box = Box()
    stats = Stats()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        if not await node_answers(http, options.url):
            print(f"simulate: no splitgo node answers at {options.url}/healthz", file=sys.stderr)
            return EXIT_NO_NODE
        client = Client(http, options.url, stats)
        try:
            drivers, riders = await set_up(client, options, box)
        except SimulationError as error:
            print(f"simulate: setting up failed: {error}", file=sys.stderr)
            return EXIT_SETUP_FAILED
        setup_errors = sum(stats.errors.values())
        print(f"simulate: running for {options.minutes:g} min", flush=True)
        clock = Clock()
        duration = options.minutes * 60
        await asyncio.gather(
            time_keeper(clock, stats, client, options),
            *(drive(client, d, box, clock, options.poll) for d in drivers),
            *(ride_around(client, r, box, clock, duration, options.poll) for r in riders),
        )
        views = await final_views(client, stats)
        left = [ride_id for ride_id, view in views.items() if view.get("status") not in TERMINAL]
        await clean_up(client, stats, drivers, left)
    report(summarise(views, stats.errors, stats.codes, CURRENCY), options, setup_errors)
    return EXIT_OK


def report(summary: Summary, options: Options, setup_errors: int) -> None:
    c = summary.counts
    fare = "-"
    if summary.median_fare is not None:
        fare = format_money(summary.median_fare, summary.currency)
    wait = "-" if summary.median_wait_s is None else f"{summary.median_wait_s:.1f} s"
    print(
        f"\n{c['requests']} rides requested in {options.minutes:g} min by {options.riders} "
        f"riders with {options.drivers} drivers\n"
        f"  matched {c['matched']}, completed {c['completed']}, cancelled {c['cancelled']}, "
        f"no driver {c['no_driver']}, in flight at the end {c['in_flight']}\n"
        f"  median wait (request -> driver assigned) {wait}, median trip fare {fare}"
    )
    if summary.codes:
        shown = ", ".join(f"{code} x{n}" for code, n in summary.codes.most_common())
        print(f"  refused requests: {shown}")
    if setup_errors:
        print(f"  ({setup_errors} of them while setting up)")
    print(summary_line(summary), flush=True)


def main(argv: Sequence[str], prog: str = "splitgo simulate") -> int:
    if "--city" in argv:  # rides by region at city scale (issue 20): splitgo/simulate_city.py
        from splitgo.simulate_city import main_city
        from splitgo.simulate_city_run import parse_city

        return main_city(parse_city(argv, f"{prog} --city"))
    options = parse(argv, prog)
    chosen = event_loop.from_environment(os.environ)  # SPLITGO_EVENT_LOOP, as the node's
    return event_loop.run(simulate(options), chosen)
