"""splitgo simulate --city — rides by region at city scale (issue 20).

    python run.py simulate --city --minutes 2 [--drivers 20000] [--requests-per-minute 2000]
        [--ping-every 5] [--tick 0.1] [--ping-one-by-one] [--nodes 3]
        [--regions grid:2x5@52.3,13.0,52.7,13.8] [--redis-url ...]
        [--database-url postgresql://127.0.0.1:5432/postgres]

What it does, in order:

1. makes a fresh database (`splitgo_city_<run>`) on the given server and applies the schema;
2. seeds the drivers in bulk straight into `rides_drivers` (online, at random points of the
   box), bypassing the actor as the benches do: signing 20,000 people up would take hours;
3. starts `--nodes` nodes (`run.py`, every actor on each) on one Redis, with the regions in
   SPLITGO_RIDE_REGIONS, and waits until each answers /readyz;
4. joins the cluster itself as a client node (an ActorSystem on the same Redis hosting no
   actor) and funds the riders through payments (top-up, sandbox checkout, its webhook);
5. for `--minutes`: every driver pings every `--ping-every` seconds with a small move, each
   `--tick` (0.1 s) one `UpdateLocations` per region, told, as the HTTP edge gathers them
   (`--ping-one-by-one`: one `UpdateLocation` per ping); riders request rides
   (`RequestRide`, asked: the reply comes once the ride is stored, the hold placed and the
   first offer made, so the round trip is the dispatch time); offers found in the database
   are accepted (`AnswerOffer`) and assigned rides are cancelled by their rider two seconds
   later, freeing both, each answer on its own; every 2 s the Redis backlog of the rides
   and payments shards is sampled (`waiting_max_*`: where requests queue);
6. then checks the database, not what the client saw: rides whose timeline names two
   different drivers assigned, and drivers holding two rides at overlapping times;
7. stops the nodes and drops the database (`--keep` keeps it).

The last line is for scripts:

    simulate-city: minutes=2 drivers=20000 regions=10 nodes=3 requests=... dispatch_p50_ms=...
        dispatch_p99_ms=... answer_p50_ms=... waiting_max_regions=... pings_per_s=4000
        rides_given_to_two_drivers=0 drivers_given_two_rides=0 ...
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from actors.payments.messages import CreateTopUp, HandleWebhook, SandboxDecision
from actors.rides.messages import (
    PINGS_MAX,
    AnswerOffer,
    CancelRide,
    DriverPing,
    Point,
    RequestRide,
    UpdateLocation,
    UpdateLocations,
)
from actors.rides.regions import RegionMap
from actors.rides.regions import parse as parse_regions
from actors.runtime import ActorSystem, AskTimeout, DomainError, MemoryDeadLetterStore
from splitgo.composition import ACTORS, register, rides_spec
from splitgo.db import apply_schema, ensure_database
from splitgo.simulate_city_run import CityOptions, Fleet, NodeProcess, cpu_seconds, percentile
from transport import Codec
from transport.redis_streams import RedisStreamsTransport

log = structlog.get_logger("splitgo.simulate")

TOP_UP = 1_000_000  # minor units of EUR per rider: enough for every ride of a run
CANCEL_AFTER_S = 2.0
FUNDING_AT_ONCE = 16
FUNDING_TRIES = 4


async def make_database(options: CityOptions, run: str) -> str:
    url = await ensure_database(options.database_url, f"splitgo_city_{run}")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    try:
        await apply_schema(pool)
    finally:
        await pool.close()
    return url


async def seed_drivers(pool: asyncpg.Pool, fleet: Fleet) -> None:
    """The drivers, online at their first position, in one COPY (no actor, no account)."""
    now = datetime.now(UTC)
    await pool.copy_records_to_table(
        "rides_drivers",
        columns=["user_id", "vehicle", "plate", "status", "lat", "lon", "seen_at", "created_at"],
        records=[
            (user_id, "Car", "B-CITY", "online", lat, lon, now, now)
            for user_id, (lat, lon) in fleet.drivers.items()
        ],
    )


def client_system(options: CityOptions, run: str) -> ActorSystem:
    """A node of the cluster hosting nothing: it tells and asks the nodes' actors."""
    codec = Codec()
    for spec in ACTORS.values():
        codec.register_module(spec.messages)
    transport = RedisStreamsTransport(
        node_id=f"simulate-{run}", url=options.redis_url, codec=codec, prefix=f"city-{run}"
    )
    system = ActorSystem(
        transport, codec=codec, dead_letters=MemoryDeadLetterStore(), ask_timeout=30.0
    )
    for spec in ACTORS.values():
        system.route(spec.name, shards=spec.shards, key=spec.key)
    return system


async def patiently(system: ActorSystem, actor: str, message: Any, key: str | None = None) -> Any:
    """Ask again after a time-out (nodes still settling who leases what); a refusal of a
    repeat (the checkout already paid) answers None."""
    for attempt in range(FUNDING_TRIES):
        try:
            return await system.ref(actor).ask(message, key=key)
        except AskTimeout:
            if attempt == FUNDING_TRIES - 1:
                raise
        except DomainError:
            if attempt == 0:
                raise
            return None
    return None


async def fund(system: ActorSystem, rider: str) -> None:
    """A top-up paid on the sandbox checkout, its webhook delivered: as the HTTP edge does."""
    top_up = CreateTopUp(
        idempotency_key=f"city-{rider}", user_id=rider, amount=TOP_UP, currency="EUR"
    )
    view = await patiently(system, "payments", top_up)
    checkout = (view.checkout_url or "").rstrip("/").split("/")[-1]
    decision = SandboxDecision(checkout_id=checkout, pay=True)
    hook = await patiently(system, "payments", decision, key=checkout)
    if hook is not None:
        webhook = HandleWebhook(provider="sandbox", body=hook.body, signature=hook.signature)
        await patiently(system, "payments", webhook, key="sandbox")


async def fund_all(system: ActorSystem, riders: list[str]) -> None:
    """Every rider funded, FUNDING_AT_ONCE at a time (payments' webhook shard is one)."""
    for chunk in batches(riders, FUNDING_AT_ONCE):
        await asyncio.gather(*(fund(system, rider) for rider in chunk))


def batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def pinger(system: ActorSystem, fleet: Fleet, options: CityOptions, stop: float) -> None:
    """Every driver pings once per `ping_every` seconds, spread evenly over it. Each tick
    (`options.tick` seconds) sends one `UpdateLocations` per region with that region's
    pings, as the HTTP edge gathers them (`--ping-one-by-one`: one `UpdateLocation` each)."""
    rides = system.ref("rides")
    ids = list(fleet.drivers)
    slices = max(1, int(options.ping_every / options.tick))
    size = max(1, len(ids) // slices + 1)
    rng = random.Random(5)
    regions = fleet.regions
    while time.monotonic() < stop:
        started = time.monotonic()
        for index, chunk in enumerate(batches(ids, size)):
            by_region: dict[int, list[DriverPing]] = defaultdict(list)
            for user_id in chunk:
                lat, lon = fleet.move(user_id, rng)
                if options.one_by_one:
                    await rides.tell(UpdateLocation(user_id=user_id, lat=lat, lon=lon))
                else:
                    ping = DriverPing(user_id=user_id, lat=lat, lon=lon)
                    by_region[regions.region_of(lat, lon)].append(ping)
            for pings in by_region.values():
                for start in range(0, len(pings), PINGS_MAX):
                    await rides.tell(UpdateLocations(pings=pings[start : start + PINGS_MAX]))
            fleet.pings += len(chunk)
            due = started + (index + 1) * options.ping_every / slices
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        fleet.ping_rounds.append(time.monotonic() - started)


async def request_one(system: ActorSystem, fleet: Fleet, rider: str) -> None:
    rng = fleet.rng
    lat, lon = fleet.point(rng)
    ride_id = f"city-{secrets.token_hex(8)}"
    started = time.perf_counter()
    try:
        await system.ref("rides").ask(
            RequestRide(
                ride_id=ride_id,
                user_id=rider,
                pickup=Point(lat=lat, lon=lon),
                dropoff=Point(lat=lat + 0.02, lon=lon + 0.02),
            )
        )
        fleet.dispatch_ms.append((time.perf_counter() - started) * 1000)
        fleet.rides[ride_id] = rider
    except (DomainError, TimeoutError) as error:
        fleet.refused[type(error).__name__] += 1
        fleet.free_riders.append(rider)


async def requester(system: ActorSystem, fleet: Fleet, options: CityOptions, stop: float) -> None:
    """`requests_per_minute` rides, evenly spaced, each by a rider with no ride going."""
    gap = 60.0 / options.requests_per_minute
    pending: set[asyncio.Task[None]] = set()
    due = time.monotonic()
    while time.monotonic() < stop:
        if fleet.free_riders:
            task = asyncio.create_task(request_one(system, fleet, fleet.free_riders.pop()))
            pending.add(task)
            task.add_done_callback(pending.discard)
        else:
            fleet.refused["no_free_rider"] += 1
        due += gap
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    await asyncio.gather(*pending, return_exceptions=True)


async def answer(system: ActorSystem, fleet: Fleet, message: AnswerOffer | CancelRide) -> None:
    started = time.perf_counter()
    with contextlib.suppress(DomainError, TimeoutError):
        await system.ref("rides").ask(message)
    fleet.answer_ms.append((time.perf_counter() - started) * 1000)


async def conductor(system: ActorSystem, pool: asyncpg.Pool, fleet: Fleet, stop: float) -> None:
    """Drivers accept the offers the database shows; riders cancel two seconds after a
    driver is assigned (no fee before arrival); riders whose ride ended ride again. Each
    answer goes on its own (as people answer), not waiting for the others: a ride already
    being answered is not answered twice."""
    answering: dict[str, asyncio.Task[None]] = {}

    def start(ride_id: str, message: AnswerOffer | CancelRide) -> None:
        if ride_id not in answering:
            task = asyncio.create_task(answer(system, fleet, message))
            answering[ride_id] = task
            task.add_done_callback(lambda _: answering.pop(ride_id, None))

    while time.monotonic() < stop:
        offers = await pool.fetch(
            "SELECT id, offered_to FROM rides WHERE status = 'requested'"
            " AND offered_to IS NOT NULL AND offer_expires_at > now()"
        )
        assigned = await pool.fetch(
            "SELECT id, rider_id FROM rides WHERE status = 'driver_assigned'"
            " AND started_at IS NULL AND created_at < now() - make_interval(secs => $1)",
            CANCEL_AFTER_S,
        )
        ended = await pool.fetch(
            "SELECT id FROM rides WHERE id = ANY($1::text[])"
            " AND status IN ('cancelled', 'completed', 'no_driver')",
            list(fleet.rides),
        )
        for row in ended:
            fleet.free_riders.insert(0, fleet.rides.pop(row["id"]))
        for r in offers:
            start(r["id"], AnswerOffer(ride_id=r["id"], user_id=r["offered_to"], accept=True))
        for r in assigned:
            start(r["id"], CancelRide(ride_id=r["id"], user_id=r["rider_id"]))
        await asyncio.sleep(0.5)
    await asyncio.gather(*answering.values(), return_exceptions=True)


async def watcher(system: ActorSystem, fleet: Fleet, stop: float) -> None:
    """Every 2 s, the messages waiting in the rides shards (regions and desks apart) and
    payments' (Redis' count of entries not yet handled): where requests queue."""
    regions = len(fleet.regions.regions)
    routes = system.routes()
    while time.monotonic() < stop:
        for actor in ("rides", "payments"):
            with contextlib.suppress(Exception):
                for shard in await system.transport.shard_info(actor, routes[actor]):
                    family = actor if actor != "rides" else "regions"
                    if actor == "rides" and shard["shard"] >= regions:
                        family = "desks"
                    waiting = int(shard["pending"]) + int(shard["lag"] or 0)
                    fleet.backlog[family] = max(fleet.backlog[family], waiting)
        await asyncio.sleep(2.0)


DOUBLE_GIVEN = """
SELECT count(*) FROM (
    SELECT ride_id FROM rides_timeline WHERE status = 'driver_assigned'
    GROUP BY ride_id HAVING count(DISTINCT note) > 1
) twice
"""
# a driver's rides, each from its assignment to its end: two overlapping is two at once
DRIVER_TWICE = """
WITH held AS (
    SELECT r.id, r.driver_id, t.at AS since, coalesce(r.finished_at, 'infinity') AS until
    FROM rides r JOIN rides_timeline t ON t.ride_id = r.id AND t.status = 'driver_assigned'
    WHERE r.driver_id IS NOT NULL
)
SELECT count(DISTINCT a.driver_id) FROM held a JOIN held b
    ON a.driver_id = b.driver_id AND a.id < b.id AND a.since < b.until AND b.since < a.until
"""


async def check(pool: asyncpg.Pool, regions: RegionMap) -> dict[str, int]:
    """What the database says happened (not the client's view)."""
    return {
        "rides_given_to_two_drivers": int(await pool.fetchval(DOUBLE_GIVEN)),
        "drivers_given_two_rides": int(await pool.fetchval(DRIVER_TWICE)),
        "assigned": int(
            await pool.fetchval(
                "SELECT count(DISTINCT ride_id) FROM rides_timeline"
                " WHERE status = 'driver_assigned'"
            )
        ),
        "no_driver": int(
            await pool.fetchval("SELECT count(*) FROM rides WHERE status = 'no_driver'")
        ),
        "moved_across_a_border": sum(
            regions.regions[regions.region_of(row["pickup_lat"], row["pickup_lon"])].name
            != row["region"]
            for row in await pool.fetch("SELECT region, pickup_lat, pickup_lon FROM rides")
        ),
    }


async def cpu_now(pool: asyncpg.Pool, nodes: list[NodeProcess]) -> dict[str, float]:
    """CPU-seconds so far of each node and of each PostgreSQL backend of the run's database
    (by process id: a backend that ended meanwhile is not counted)."""
    backends = await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    )
    used = {f"node:{node.process.pid}": cpu_seconds(node.process.pid) for node in nodes}
    used.update({f"pg:{row['pid']}": cpu_seconds(row["pid"]) for row in backends})
    return used


def cpu_spent(before: dict[str, float], after: dict[str, float], kind: str) -> float:
    """CPU-seconds `kind`'s processes used between two `cpu_now` readings."""
    return sum(
        spent - before.get(name, 0.0) for name, spent in after.items() if name.startswith(kind)
    )


async def run_city(options: CityOptions) -> int:
    regions = parse_regions(options.regions, options.border_m)
    register(rides_spec(regions))  # the client routes as the nodes do
    run = secrets.token_hex(3)
    fleet = Fleet.make(options, regions, seed=options.seed)
    url = await make_database(options, run)
    pool = await asyncpg.create_pool(url, min_size=2, max_size=6)
    assert pool is not None
    nodes: list[NodeProcess] = []
    try:
        await seed_drivers(pool, fleet)
        print(
            f"simulate-city: {len(fleet.drivers)} drivers seeded; starting {options.nodes} nodes",
            flush=True,
        )
        nodes = await NodeProcess.start_many(options, url, run, Path(options.folder) / run)
        system = client_system(options, run)
        await system.start()
        try:
            await fund_all(system, list(fleet.free_riders))
            print(
                f"simulate-city: riders funded, running {options.minutes:g} min",
                flush=True,
            )
            stop = time.monotonic() + options.minutes * 60
            before = await cpu_now(pool, nodes)
            await asyncio.gather(
                pinger(system, fleet, options, stop),
                requester(system, fleet, options, stop),
                conductor(system, pool, fleet, stop),
                watcher(system, fleet, stop),
            )
            after = await cpu_now(pool, nodes)
            fleet.node_cpu_s = cpu_spent(before, after, "node:")
            fleet.database_cpu_s = cpu_spent(before, after, "pg:")
            await asyncio.sleep(options.drain)
            found = await check(pool, regions)
        finally:
            await system.stop(timeout=10)
    finally:
        for node in nodes:
            node.stop()
        await pool.close()
        if not options.keep:
            await drop_database(options.database_url, f"splitgo_city_{run}")
    report(options, regions.shards, fleet, found)
    return (
        0
        if found["rides_given_to_two_drivers"] == 0 and found["drivers_given_two_rides"] == 0
        else 3
    )


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def report(options: CityOptions, shards: int, fleet: Fleet, found: dict[str, int]) -> None:
    times = sorted(fleet.dispatch_ms)
    answers = sorted(fleet.answer_ms)
    seconds = options.minutes * 60
    rounds = fleet.ping_rounds
    pairs = {
        "minutes": f"{options.minutes:g}",
        "drivers": len(fleet.drivers),
        "regions": len(fleet.regions.regions),
        "shards": shards,
        "nodes": options.nodes,
        "requests": len(times) + sum(n for k, n in fleet.refused.items() if k != "no_free_rider"),
        "requests_per_minute": f"{len(times) / seconds * 60:.0f}",
        "dispatch_p50_ms": f"{percentile(times, 50):.1f}",
        "dispatch_p99_ms": f"{percentile(times, 99):.1f}",
        "answer_p50_ms": f"{percentile(answers, 50):.1f}",
        "answer_p99_ms": f"{percentile(answers, 99):.1f}",
        **{f"waiting_max_{family}": n for family, n in sorted(fleet.backlog.items())},
        "node_cpu_s": f"{fleet.node_cpu_s:.1f}",
        "database_cpu_s": f"{fleet.database_cpu_s:.1f}",
        # CPU per answered request (pings included): comparable even when throughput is not
        "node_cpu_ms_per_request": f"{fleet.node_cpu_s * 1000 / max(len(times), 1):.0f}",
        "pings": fleet.pings,
        "pings_per_s": f"{fleet.pings / seconds:.0f}",
        "ping_round_s": f"{max(rounds):.1f}" if rounds else "-",
        **found,
        "refused": ",".join(f"{k}:{n}" for k, n in sorted(fleet.refused.items())) or "none",
    }
    print("simulate-city: " + " ".join(f"{k}={v}" for k, v in pairs.items()), flush=True)


def main_city(options: CityOptions) -> int:
    try:
        return asyncio.run(run_city(options))
    except KeyboardInterrupt:
        return 130
    except (OSError, asyncpg.PostgresError, RuntimeError) as error:
        print(f"simulate-city: {error}", file=sys.stderr)
        return 1
