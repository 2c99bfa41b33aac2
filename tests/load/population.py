"""The people a load run needs, made through the HTTP API before anything is measured.

Users sign up and log in concurrently (each costs two argon2id hashes: ~10 a second on two
CPUs, hence the progress line), a few of them register as drivers and go online near a
city centre, the users are shared out into groups, every wallet is topped up through the
sandbox checkout (as a person pressing Pay), and every rider requests and cancels one ride,
so `GET /rides/{id}` has something to read from the first second.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import aiohttp

PASSWORD = "correct horse battery staple 42"
CURRENCY = "EUR"
CENTRE = (52.520008, 13.404954)  # Berlin, Mitte
SETUP_CONCURRENCY = 16
# sign-ups at once: the node hashes 4 passwords at a time (argon2id, ~0.2 s each), and a
# register that queues behind more than ~5 s of hashing answers 503 ask_timeout
SIGNUP_CONCURRENCY = 4
REQUEST_TIMEOUT_S = 60.0

Progress = Callable[[str], None]
T = TypeVar("T")


class SetupError(RuntimeError):
    """The node refused a step of the set-up: the run cannot start."""


@dataclass
class User:
    id: str
    email: str
    token: str
    name: str


@dataclass
class Group:
    id: str
    members: list[int]  # indexes into Population.users


@dataclass
class Population:
    """Everything the load generator needs to act as these people (tokens included)."""

    url: str
    users: list[User]
    drivers: list[int]
    riders: list[int]
    groups: list[Group]
    rides: dict[int, str] = field(default_factory=dict)  # rider index: a ride of theirs
    funds: int = 0
    tag: str = ""  # unique per run: sign-ups in the mix make fresh emails with it
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Population:
        return cls(
            url=data["url"],
            users=[User(**user) for user in data["users"]],
            drivers=list(data["drivers"]),
            riders=list(data["riders"]),
            groups=[Group(**group) for group in data["groups"]],
            rides={int(key): value for key, value in data["rides"].items()},
            funds=int(data["funds"]),
            tag=str(data["tag"]),
            seconds=float(data["seconds"]),
        )


def near(
    rng: random.Random, radius_m: float, centre: tuple[float, float] = CENTRE
) -> dict[str, float]:
    """A point within `radius_m` of the centre, uniform over the disc."""
    distance = radius_m * math.sqrt(rng.random())
    angle = rng.uniform(0, 2 * math.pi)
    lat = centre[0] + distance * math.cos(angle) / 111_320
    lon = centre[1] + distance * math.sin(angle) / (111_320 * math.cos(math.radians(centre[0])))
    return {"lat": round(lat, 6), "lon": round(lon, 6)}


class Setup:
    """HTTP calls of the set-up; any unexpected answer stops it with the node's reason."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, f"{self.url}{path}", json=body, headers=sent, allow_redirects=False
        ) as rsp:
            text = await rsp.text()
            if rsp.status != expect:
                raise SetupError(f"{method} {path} answered {rsp.status}: {text[:300]}")
            if rsp.content_type.endswith("json") and text:
                return await rsp.json(content_type=None)
            return None


async def _bounded(jobs: list[Awaitable[T]], limit: int) -> list[T]:
    """Await `jobs` (coroutines, which start only when awaited), `limit` at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


class Counter:
    """`label 12/40` on one line (rewritten in place on a terminal)."""

    def __init__(self, label: str, total: int, say: Progress) -> None:
        self.label, self.total, self.say = label, total, say
        self.done = 0
        self.started = time.perf_counter()
        self.live = sys.stdout.isatty()

    def tick(self) -> None:
        self.done += 1
        if self.live:
            print(f"\r  {self.label} {self.done}/{self.total}", end="", flush=True)
        elif self.done == self.total or self.done % 10 == 0:
            self.say(f"  {self.label} {self.done}/{self.total}")

    def finish(self) -> float:
        seconds = time.perf_counter() - self.started
        if self.live:
            print(f"\r  {self.label} {self.done}/{self.total} in {seconds:.1f} s", flush=True)
        else:
            self.say(f"  {self.label}: {self.total} in {seconds:.1f} s")
        return seconds


async def sign_up(setup: Setup, email: str, name: str) -> User:
    account = {"email": email, "password": PASSWORD, "name": name}
    created = await setup.call("POST", "/api/v1/auth/register", body=account, expect=201)
    login = await setup.call(
        "POST", "/api/v1/auth/login", body={"email": email, "password": PASSWORD}
    )
    return User(id=str(created["id"]), email=email, token=str(login["access_token"]), name=name)


async def fund(setup: Setup, user: User, amount: int) -> None:
    """A sandbox top-up, paid on its checkout page."""
    created = await setup.call(
        "POST",
        "/api/v1/wallet/top-ups",
        token=user.token,
        body={"amount": amount, "currency": CURRENCY},
        headers={"Idempotency-Key": f"load-fund-{user.id}"},
        expect=201,
    )
    checkout = created["checkout_url"].split("/sandbox/checkout/")[1]
    await setup.call("POST", f"/sandbox/checkout/{checkout}/pay", expect=303)


async def funded(setup: Setup, user: User, amount: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        wallet = await setup.call("GET", "/api/v1/wallet", token=user.token)
        available = sum(
            line["available"] for line in wallet["balances"] if line["currency"] == CURRENCY
        )
        if available >= amount:
            return
        if time.monotonic() > deadline:
            raise SetupError(f"{user.email}'s top-up never arrived (wallet {wallet})")
        await asyncio.sleep(0.1)


async def go_online(setup: Setup, user: User, rng: random.Random, index: int) -> None:
    body = {"vehicle": "Skoda Octavia", "plate": f"B-LD {index:04d}"}
    await setup.call("POST", "/api/v1/drivers", token=user.token, body=body, expect=201)
    where = near(rng, 1_500)
    await setup.call(
        "POST", "/api/v1/drivers/me/location", token=user.token, body=where, expect=204
    )
    await setup.call(
        "POST", "/api/v1/drivers/me/status", token=user.token, body={"status": "online"}
    )


async def first_ride(setup: Setup, user: User, rng: random.Random) -> str:
    """Request a ride and cancel it at once: the rider then has a ride to read."""
    body = {"pickup": near(rng, 2_000), "dropoff": near(rng, 5_000)}
    ride = await setup.call(
        "POST",
        "/api/v1/rides",
        token=user.token,
        body=body,
        headers={"Idempotency-Key": secrets.token_hex(8)},
        expect=201,
    )
    if ride["status"] not in ("no_driver", "cancelled", "completed"):
        await setup.call("POST", f"/api/v1/rides/{ride['id']}/cancel", token=user.token, body={})
    return str(ride["id"])


async def build(
    url: str,
    *,
    users: int,
    drivers: int,
    groups: int,
    funds: int,
    seed: int,
    say: Progress,
) -> Population:
    """Sign up `users` people; the first `drivers` drive, the rest ride; all are funded."""
    if not 1 <= drivers < users or not 1 <= groups <= users // 2:
        raise SetupError("need 1 <= drivers < users and 1 <= groups <= users / 2")
    rng = random.Random(seed)
    tag = secrets.token_hex(3)
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=SETUP_CONCURRENCY)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=False) as http:
        setup = Setup(http, url)

        counter = Counter("signed up and logged in", users, say)

        async def person(index: int) -> User:
            user = await sign_up(setup, f"load-{tag}-{index:03d}@example.com", f"Load {index}")
            counter.tick()
            return user

        people = await _bounded([person(i) for i in range(users)], SIGNUP_CONCURRENCY)
        counter.finish()

        driver_ids = list(range(drivers))
        rider_ids = list(range(drivers, users))
        await _bounded([go_online(setup, people[i], rng, i) for i in driver_ids], 4)
        say(f"  {drivers} drivers online within 1.5 km of the centre")

        made: list[Group] = []
        for number in range(groups):
            members = list(range(number, users, groups))
            owner = people[members[0]]
            group = await setup.call(
                "POST",
                "/api/v1/groups",
                token=owner.token,
                body={"name": f"Load group {number}", "currency": CURRENCY},
                expect=201,
            )
            for member in members[1:]:
                await setup.call(
                    "POST",
                    f"/api/v1/groups/{group['id']}/members",
                    token=owner.token,
                    body={"user_id": people[member].id},
                    expect=201,
                )
            made.append(Group(id=str(group["id"]), members=members))
        say(f"  {groups} groups of {users // groups}-{-(-users // groups)} members")

        counter = Counter("wallets funded", users, say)

        async def top_up(user: User) -> None:
            await fund(setup, user, funds)
            await funded(setup, user, funds)
            counter.tick()

        await _bounded([top_up(u) for u in people], 8)
        counter.finish()

        rides = await _bounded([first_ride(setup, people[i], rng) for i in rider_ids], 4)
        say(f"  {len(rides)} riders with a first ride (requested and cancelled)")
    return Population(
        url=url,
        users=people,
        drivers=driver_ids,
        riders=rider_ids,
        groups=made,
        rides=dict(zip(rider_ids, rides, strict=True)),
        funds=funds,
        tag=tag,
        seconds=time.perf_counter() - started,
    )
