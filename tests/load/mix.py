"""The traffic: which requests, how often, and what counts as an answer.

An action is what one person does at one moment: most are one request, a ride is a
request and (unless nobody could be offered it) its cancellation. Actions are drawn by
weight; every request is recorded under its route template (`/api/v1/groups/{id}/balances`,
not the URL), with the status that counts as success for that route. Anything else is an
error, kept by status and problem `code`; a request that got no HTTP answer at all
(refused, reset, timed out) is a transport failure.

Logins and sign-ups are not in the weighted draw: each costs an argon2id hash (~0.2 s of
CPU), so a share of a closed loop would starve everything else on two CPUs. They run
beside it at a steady low rate instead (`--login-rate`, `--signup-rate`), as real
traffic has them: a login every 15 minutes per active person, not every tenth request.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.bench.loadgen import summary_ms
from tests.load.population import CURRENCY, PASSWORD, Population, User, near

# action: weight. Reads are 70 % of the actions, writes 30 %.
READS: dict[str, int] = {
    "me": 12,
    "wallet": 12,
    "statement": 8,
    "groups": 8,
    "balances": 10,
    "settle_plan": 6,
    "notifications": 10,
    "ride": 4,
}
WRITES: dict[str, int] = {
    "expense": 10,
    "transfer": 10,
    "ride_request": 5,  # POST /rides, then POST /rides/{id}/cancel
    "driver_location": 5,
}
PHASES: dict[str, dict[str, int]] = {"mixed": {**READS, **WRITES}, "reads": dict(READS)}
TERMINAL = ("no_driver", "cancelled", "completed")
SAMPLES_PER_ERROR = 3


@dataclass
class RouteStats:
    latencies_s: list[float] = field(default_factory=list)  # every HTTP answer in the window
    errors: Counter[str] = field(default_factory=Counter)  # "422 insufficient_funds": n
    failures: Counter[str] = field(default_factory=Counter)  # "ClientOSError": n
    samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


class Recorder:
    """Per-route answers that completed inside the measured window."""

    def __init__(self, window: tuple[float, float]) -> None:
        self.window = window
        self.routes: dict[str, RouteStats] = defaultdict(RouteStats)
        self.actions: Counter[str] = Counter()
        self.outside = 0  # answers before or after the window (warm-up, tail)

    def inside(self, at: float) -> bool:
        return self.window[0] <= at <= self.window[1]

    def answer(
        self, route: str, status: int, expect: int, seconds: float, at: float, body: Any
    ) -> None:
        if not self.inside(at):
            self.outside += 1
            return
        stats = self.routes[route]
        stats.latencies_s.append(seconds)
        if status != expect:
            code = body.get("code") if isinstance(body, dict) else None
            key = f"{status} {code or '-'}"
            stats.errors[key] += 1
            if len(stats.samples[key]) < SAMPLES_PER_ERROR:
                detail = body.get("detail") if isinstance(body, dict) else body
                stats.samples[key].append(str(detail)[:300])

    def failure(self, route: str, error: BaseException, at: float) -> None:
        if not self.inside(at):
            self.outside += 1
            return
        stats = self.routes[route]
        name = type(error).__name__
        stats.failures[name] += 1
        if len(stats.samples[name]) < SAMPLES_PER_ERROR:
            stats.samples[name].append(str(error)[:300])

    def summary(self, seconds: float) -> dict[str, Any]:
        routes: dict[str, Any] = {}
        every: list[float] = []
        reads: list[float] = []
        errors = failures = 0
        for route in sorted(self.routes):
            stats = self.routes[route]
            every += stats.latencies_s
            if route.startswith("GET "):
                reads += stats.latencies_s
            errors += sum(stats.errors.values())
            failures += sum(stats.failures.values())
            routes[route] = {
                "requests": len(stats.latencies_s),
                "rps": round(len(stats.latencies_s) / seconds, 1),
                "latency_ms": summary_ms(stats.latencies_s),
                "errors": dict(stats.errors.most_common()),
                "failures": dict(stats.failures.most_common()),
                "samples": {key: list(value) for key, value in stats.samples.items()},
            }
        return {
            "routes": routes,
            "total": {
                "requests": len(every),
                "rps": round(len(every) / seconds, 1),
                "latency_ms": summary_ms(every),
                "errors": errors,
                "failures": failures,
            },
            "reads": {
                "requests": len(reads),
                "rps": round(len(reads) / seconds, 1),
                "latency_ms": summary_ms(reads),
            },
            "actions": dict(self.actions.most_common()),
            "outside_window": self.outside,
        }


class Traffic:
    """The population, as the generator acts on it: who is free to ride, their last ride."""

    def __init__(self, population: Population, session: aiohttp.ClientSession, rec: Recorder):
        self.population = population
        self.users = population.users
        self.session = session
        self.rec = rec
        self.url = population.url
        self.rides = dict(population.rides)
        self.free_riders: asyncio.Queue[int] = asyncio.Queue()
        for rider in population.riders:
            self.free_riders.put_nowait(rider)
        self.signups = 0
        self.clock = asyncio.get_running_loop().time

    async def call(
        self,
        route: str,
        path: str,
        user: User | None,
        *,
        body: Any = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any] | None:
        """One request, recorded under `route` ("GET /api/v1/groups/{id}"); None when it
        got no HTTP answer."""
        method = route.split(" ", 1)[0]
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {user.token}"
        started = self.clock()
        try:
            async with self.session.request(
                method, f"{self.url}{path}", json=body, headers=sent
            ) as rsp:
                raw = await rsp.read()
                status = rsp.status
                parsed: Any = None
                if raw and rsp.content_type.endswith("json"):
                    parsed = await rsp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            self.rec.failure(route, error, self.clock())
            return None
        done = self.clock()
        self.rec.answer(route, status, expect, done - started, done, parsed)
        return status, parsed

    # ── reads ──────────────────────────────────────────────────────────────────────

    def anyone(self, rng: random.Random) -> User:
        return self.users[rng.randrange(len(self.users))]

    def member(self, rng: random.Random) -> tuple[str, User]:
        group = self.population.groups[rng.randrange(len(self.population.groups))]
        return group.id, self.users[rng.choice(group.members)]

    async def me(self, rng: random.Random) -> None:
        await self.call("GET /api/v1/me", "/api/v1/me", self.anyone(rng))

    async def wallet(self, rng: random.Random) -> None:
        await self.call("GET /api/v1/wallet", "/api/v1/wallet", self.anyone(rng))

    async def statement(self, rng: random.Random) -> None:
        await self.call("GET /api/v1/transfers", "/api/v1/transfers?limit=20", self.anyone(rng))

    async def groups(self, rng: random.Random) -> None:
        await self.call("GET /api/v1/groups", "/api/v1/groups", self.anyone(rng))

    async def balances(self, rng: random.Random) -> None:
        group, user = self.member(rng)
        await self.call(
            "GET /api/v1/groups/{id}/balances", f"/api/v1/groups/{group}/balances", user
        )

    async def settle_plan(self, rng: random.Random) -> None:
        group, user = self.member(rng)
        await self.call(
            "GET /api/v1/groups/{id}/settle-plan", f"/api/v1/groups/{group}/settle-plan", user
        )

    async def notifications(self, rng: random.Random) -> None:
        await self.call(
            "GET /api/v1/notifications", "/api/v1/notifications?limit=20", self.anyone(rng)
        )

    async def ride(self, rng: random.Random) -> None:
        rider = rng.choice(list(self.rides))
        await self.call(
            "GET /api/v1/rides/{id}", f"/api/v1/rides/{self.rides[rider]}", self.users[rider]
        )

    # ── writes ─────────────────────────────────────────────────────────────────────

    async def expense(self, rng: random.Random) -> None:
        """An equal split among the whole group, paid by the member who adds it."""
        group, user = self.member(rng)
        body = {
            "description": rng.choice(["Groceries", "Dinner", "Taxi", "Tickets", "Rent"]),
            "amount": rng.randint(100, 20_000),
            "currency": CURRENCY,
            "paid_by": user.id,
            "split": {"mode": "equal"},
        }
        await self.call(
            "POST /api/v1/groups/{id}/expenses",
            f"/api/v1/groups/{group}/expenses",
            user,
            body=body,
            expect=201,
        )

    async def transfer(self, rng: random.Random) -> None:
        payer = self.anyone(rng)
        payee = self.anyone(rng)
        while payee is payer:
            payee = self.anyone(rng)
        body = {"to_user_id": payee.id, "amount": rng.randint(1, 500), "currency": CURRENCY}
        await self.call(
            "POST /api/v1/transfers",
            "/api/v1/transfers",
            payer,
            body=body,
            expect=201,
            headers={"Idempotency-Key": secrets.token_hex(12)},
        )

    async def ride_request(self, rng: random.Random) -> None:
        """A free rider requests a ride near the centre and cancels it (so no rider keeps
        an active ride, and no driver keeps an offer). No rider free: a read instead."""
        try:
            rider = self.free_riders.get_nowait()
        except asyncio.QueueEmpty:
            self.rec.actions["ride_request_skipped"] += 1
            await self.me(rng)
            return
        try:
            user = self.users[rider]
            body = {"pickup": near(rng, 2_000), "dropoff": near(rng, 6_000)}
            answer = await self.call(
                "POST /api/v1/rides",
                "/api/v1/rides",
                user,
                body=body,
                expect=201,
                headers={"Idempotency-Key": secrets.token_hex(12)},
            )
            if answer is None or answer[0] != 201:
                return
            ride = answer[1]
            self.rides[rider] = str(ride["id"])
            if ride["status"] not in TERMINAL:
                await self.call(
                    "POST /api/v1/rides/{id}/cancel",
                    f"/api/v1/rides/{ride['id']}/cancel",
                    user,
                    body={"reason": "load test"},
                )
        finally:
            self.free_riders.put_nowait(rider)

    async def driver_location(self, rng: random.Random) -> None:
        driver = self.users[rng.choice(self.population.drivers)]
        await self.call(
            "POST /api/v1/drivers/me/location",
            "/api/v1/drivers/me/location",
            driver,
            body=near(rng, 1_500),
            expect=204,
        )

    # ── paced, beside the mix ──────────────────────────────────────────────────────

    async def login(self, rng: random.Random) -> None:
        user = self.anyone(rng)
        await self.call(
            "POST /api/v1/auth/login",
            "/api/v1/auth/login",
            None,
            body={"email": user.email, "password": PASSWORD},
        )

    async def signup(self, rng: random.Random) -> None:
        self.signups += 1
        email = (
            f"load-{self.population.tag}-new-{self.signups:05d}-{rng.randrange(10**6)}@example.com"
        )
        await self.call(
            "POST /api/v1/auth/register",
            "/api/v1/auth/register",
            None,
            body={"email": email, "password": PASSWORD, "name": "New Person"},
            expect=201,
        )

    def action(self, name: str) -> Callable[[random.Random], Coroutine[Any, Any, None]]:
        found: Callable[[random.Random], Coroutine[Any, Any, None]] = getattr(self, name)
        return found


def check_weights() -> None:
    """Every weighted action exists on Traffic (a typo would only show at run time)."""
    for weights in PHASES.values():
        for name in weights:
            if not callable(getattr(Traffic, name, None)):
                raise AttributeError(f"the mix names {name!r}, which Traffic does not do")
