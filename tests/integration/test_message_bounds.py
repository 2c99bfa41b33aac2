"""Bounds where messages are defined: every handler of every actor, driven with extreme
values through a real node (every actor, the codec check on, PostgreSQL), answers with a
value or a DomainError; and the bounds people meet over HTTP (far dates, a trip across the
world) are 422s naming the field, never a crash or unbounded work."""

from __future__ import annotations

import asyncio
import functools
import pickle
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from hypothesis import HealthCheck, Phase, given, settings

from actors.auth.messages import Register, UserView
from actors.payments.messages import CreateTopUp
from actors.rides.messages import RegisterDriver
from actors.runtime import (
    ActorSystem,
    AskTimeout,
    DomainError,
    HandlerFailed,
    InvalidInput,
    Message,
)
from actors.splits.messages import AddExpense, CreateGroup, Payer
from actors.splits.recurring import RECURRING_CATCH_UP
from splitgo.composition import ACTORS
from splitgo.config import load
from splitgo.node import Node
from tests.support.api import Api, User
from tests.support.extremes import Seeds, message_kwargs
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.integration

EXAMPLES = 25  # per message type: every actor's every handled type, ~160 types
CALL_SECONDS = 10.0  # a handler that takes longer is doing unbounded work (or hangs)
LISBON = {"lat": 38.7223, "lon": -9.1393}
SYDNEY = {"lat": -33.8688, "lon": 151.2093}
LISBON_AIRPORT = {"lat": 38.7742, "lon": -9.1342}


def node_settings(database_url: str, folder: Path) -> Any:
    return load(
        {
            "SPLITGO_DATABASE_URL": database_url,
            "SPLITGO_JWT_KEYS": "k1:" + "s" * 48,
            "SPLITGO_PORT": "0",
            "SPLITGO_DATA_DIR": str(folder / "data"),
            "SPLITGO_NODE_ID": "bounds-test",
            "SPLITGO_CODEC_CHECK": "1",
            "SPLITGO_RATE_LIMIT": "0",
            # never the real ECB: nothing listens on port 9 (the rates actor falls back)
            "SPLITGO_RATES_URL": "http://127.0.0.1:9/stats/eurofxref/",
            # argon2id at its cheap test profile (as every test node): the extreme passwords
            # still go through hashing, at a fraction of a production hash's CPU each
            "SPLITGO_PASSWORD_HASHING": "test",
        }
    )


# ── every handler, extreme values ──────────────────────────────────────────────────────


def test_every_handler_answers_extreme_values_with_a_value_or_a_domain_error(
    tmp_path: Path,
) -> None:
    """Every message type every actor handles, built from extreme values (huge and negative
    numbers, NaN, empty, long and NUL text, far days, oversized lists): making it either
    refuses with a DomainError, or the actor answers within its time with a value or a
    DomainError; no other exception, no crashed shard, no database refusal, no time-out."""
    failures: list[str] = []
    with asyncio.Runner() as runner:
        database = fresh_database(schema=True)  # the schema applied: the node finds it ready
        url = runner.run(database.__aenter__())
        node = Node(node_settings(url, tmp_path))
        try:
            runner.run(node.start())
            assert node.system is not None
            seeds = runner.run(seed(node.system))
            # the product's actors (a test plugin such as tests/support/probe.py may be registered)
            product = {
                n: s for n, s in ACTORS.items() if s.actor_type.__module__.startswith("actors.")
            }
            plan = {
                name: [(kind, examples_of(kind, seeds)) for kind in spec.actor_type.message_types()]
                for name, spec in product.items()
            }
            # one task per actor type, its messages one at a time (a crash is its own)
            runner.run(drive_all(node.system, plan, failures))
        finally:
            runner.run(node.stop())
            runner.run(database.__aexit__(None, None, None))
    assert not failures, "\n".join(first_of_each(failures))


async def seed(system: ActorSystem) -> Seeds:
    """A user with a group, a recurring expense, a top-up and a driver profile: real ids
    for the extreme messages to name, so handlers get past their first lookup."""
    user: UserView = await system.ref("auth").ask(
        Register(email="seed@example.com", password="correct horse battery staple 42", name="S")
    )
    group_id, expense_id = str(uuid.uuid4()), str(uuid.uuid4())
    splits = system.ref("splits")
    await splits.ask(CreateGroup(group_id=group_id, user_id=user.id, name="Trip", currency="EUR"))
    await splits.ask(
        AddExpense(
            group_id=group_id,
            user_id=user.id,
            expense_id=expense_id,
            description="Rent",
            amount=1000,
            currency="EUR",
            paid_by=[Payer(user_id=user.id, amount=1000)],
            split_mode="equal",
            shares=[],
            recurrence="monthly",
        )
    )
    top_up = await system.ref("payments").ask(
        CreateTopUp(idempotency_key="seed", user_id=user.id, amount=500, currency="EUR")
    )
    await system.ref("rides").ask(RegisterDriver(user_id=user.id, vehicle="Car", plate="AB 1"))
    return Seeds(texts=(user.id, group_id, expense_id, top_up.id, "seed@example.com"))


def examples_of(message_type: type[Message], seeds: Seeds) -> list[dict[str, Any]]:
    """EXAMPLES extreme field sets for `message_type`, each once (no shrinking: the time
    stays bounded; derandomized: a failure here is never luck)."""
    found: dict[str | bytes, dict[str, Any]] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(message_kwargs(message_type, seeds))
    def collect(fields: dict[str, Any]) -> None:
        found.setdefault(same_as(fields), fields)  # hypothesis repeats an example now and then

    collect()
    return list(found.values())


def same_as(fields: dict[str, Any]) -> str | bytes:
    """A key equal for equal examples: their pickle (a copy of the megabytes of an oversized
    field, where their repr escaped every byte of it, a fifth of the time spent collecting),
    or their repr when some value will not pickle."""
    try:
        return pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return repr(fields)


Plan = dict[str, list[tuple[type[Message], list[dict[str, Any]]]]]


async def drive_all(system: ActorSystem, plan: Plan, failures: list[str]) -> None:
    """Every actor type's examples asked of it, the types side by side; what went wrong
    is added to `failures`."""

    async def one_actor(actor: str) -> None:
        for message_type, examples in plan[actor]:
            for fields in examples:
                problem = await outcome(system, actor, functools.partial(message_type, **fields))
                if problem is not None:
                    failures.append(
                        f"{actor} {message_type.__name__}: {problem} <- {short(fields)}"
                    )

    await asyncio.gather(*(one_actor(actor) for actor in plan))


async def outcome(system: ActorSystem, actor: str, make: Callable[[], Message]) -> str | None:
    """None when making the message refused it, or the actor answered in time with a value
    or a DomainError; otherwise what went wrong."""
    try:
        message = make()
    except DomainError:
        return None  # refused where it was made: the bound held
    except Exception as error:
        return f"making it raised {type(error).__name__}: {error}"
    crashes = crashed(system, actor)
    try:
        async with asyncio.timeout(CALL_SECONDS + 5):
            await system.ref(actor).ask(message, timeout=CALL_SECONDS)
    except (HandlerFailed, AskTimeout) as error:
        return f"{error.code}: {error.message}"
    except InvalidInput as error:  # the database refused a value: a bound is missing
        return f"{error.code}: {error.message}"
    except DomainError:
        pass
    except TimeoutError:
        return f"no answer within {CALL_SECONDS + 5} s"
    except Exception as error:
        return f"asking raised {type(error).__name__}: {error}"
    if crashed(system, actor) > crashes:
        return "a shard crashed on it"
    return None


def first_of_each(failures: list[str]) -> list[str]:
    """The first failure of each message type, with how many examples of it failed."""
    kinds: dict[str, list[str]] = {}
    for failure in failures:
        kinds.setdefault(" ".join(failure.split()[:2]), []).append(failure)
    return [f"{len(found)}x {found[0][:400]}" for found in kinds.values()]


def crashed(system: ActorSystem, actor: str) -> int:
    return sum(shard.failed for shard in system.status() if shard.name == actor)


def short(fields: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r:.60}" for k, v in fields.items())


# ── the bounds people meet over HTTP ───────────────────────────────────────────────────


@asynccontextmanager
async def http_node(database_url: str, folder: Path) -> AsyncIterator[tuple[Node, Api]]:
    node = Node(node_settings(database_url, folder))
    try:
        await node.start()
        async with aiohttp.ClientSession() as http:
            yield node, Api(node.url, http)
    finally:
        await node.stop()


async def group_of(api: Api, user: User) -> str:
    body = await api.ok(
        "POST", "/api/v1/groups", user, {"name": "Trip", "currency": "EUR"}, status=201
    )
    return str(body["id"])


def expense(user: User, day: str, recurrence: str) -> dict[str, Any]:
    return {
        "description": "Rent",
        "amount": 1000,
        "currency": "EUR",
        "paid_by": user.id,
        "split": {"mode": "equal", "shares": [{"user_id": user.id}]},
        "date": day,
        "recurrence": recurrence,
    }


async def test_expenses_dated_outside_1900_to_2099_are_422_naming_the_date(
    database_url: str, tmp_path: Path
) -> None:
    """A yearly expense on 9999-12-31 and a monthly one on 0001-01-01 are 422 naming
    `$.date`, and make no expense; the last day in range, yearly, is created (its series
    ends there)."""
    async with http_node(database_url, tmp_path) as (node, api):
        user = await api.register()
        group = await group_of(api, user)
        path = f"/api/v1/groups/{group}/expenses"
        for day, recurrence in (("9999-12-31", "yearly"), ("0001-01-01", "monthly")):
            reply = await api.problem(
                "POST", path, user, expense(user, day, recurrence), status=422,
                code="invalid_expense", field="$.date",
            )  # fmt: skip
            assert "1900-01-01" in reply.body["detail"]
        listed = await api.ok("GET", path, user)
        assert listed["items"] == []
        last = await api.ok("POST", path, user, expense(user, "2099-12-31", "yearly"), status=201)
        assert last["date"] == "2099-12-31"
        assert node.database is not None
        next_due = await node.database.pool.fetchval(
            "SELECT next_due FROM splits_expenses WHERE id = $1", last["id"]
        )
        assert next_due is None  # no 2100-12-31: every series ends with 2099


async def test_a_trip_across_the_world_is_not_quoted_or_requested(
    database_url: str, tmp_path: Path
) -> None:
    """Lisbon to Sydney (about 18,000 km, past the 200 km default) is 422 `trip_too_long`
    naming `$.dropoff` for the estimate and for the request, and no ride or hold is made;
    Lisbon to its airport is quoted."""
    async with http_node(database_url, tmp_path) as (node, api):
        rider = await api.register()
        trip = {"pickup": LISBON, "dropoff": SYDNEY}
        await api.problem(
            "POST", "/api/v1/rides/estimate", rider, trip, status=422,
            code="trip_too_long", field="$.dropoff",
        )  # fmt: skip
        reply = await api.call(
            "POST", "/api/v1/rides", rider, trip, headers={"Idempotency-Key": "far-1"}
        )
        assert (reply.status, reply.body["code"]) == (422, "trip_too_long"), reply.body
        assert node.database is not None
        assert await node.database.pool.fetchval("SELECT count(*) FROM rides") == 0
        near = await api.ok(
            "POST", "/api/v1/rides/estimate", rider, {"pickup": LISBON, "dropoff": LISBON_AIRPORT}
        )
        assert 0 < near["distance_m"] < 10_000


async def test_coordinates_off_the_earth_are_422_naming_the_coordinate(
    database_url: str, tmp_path: Path
) -> None:
    """A latitude past 90 or a longitude past 180 in an estimate is 422 naming it."""
    async with http_node(database_url, tmp_path) as (_node, api):
        rider = await api.register()
        for pickup, field in (
            ({"lat": 90.5, "lon": 0.0}, "$.pickup.lat"),
            ({"lat": 0.0, "lon": -180.5}, "$.pickup.lon"),
        ):
            await api.problem(
                "POST", "/api/v1/rides/estimate", rider, {"pickup": pickup, "dropoff": LISBON},
                status=422, code="invalid_ride", field=field,
            )  # fmt: skip


@pytest.mark.parametrize("recurrence", ["monthly", "weekly"])
async def test_a_recurring_expense_from_1900_makes_at_most_a_year_of_copies(
    database_url: str, tmp_path: Path, recurrence: str
) -> None:
    """A recurring expense dated 1900-01-01 is created, and its catch-up copies only the
    dates of the last 366 days (13 monthly, 53 weekly), at most 24 per catch-up message,
    then waits for the next date after today."""
    async with http_node(database_url, tmp_path) as (node, api):
        user = await api.register()
        group = await group_of(api, user)
        path = f"/api/v1/groups/{group}/expenses"
        created = await api.ok("POST", path, user, expense(user, "1900-01-01", recurrence), 201)
        assert node.database is not None
        pool = node.database.pool

        async def caught_up() -> bool:
            due = await pool.fetchval(
                "SELECT next_due FROM splits_expenses WHERE id = $1", created["id"]
            )
            return due is not None and due > await pool.fetchval("SELECT current_date")

        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(30):
                while not await caught_up():
                    await asyncio.sleep(0.05)
        copies = await pool.fetch(
            "SELECT spent_on FROM splits_expenses WHERE recurring_from = $1 ORDER BY spent_on",
            created["id"],
        )
        today = await pool.fetchval("SELECT current_date")
        days = [row["spent_on"] for row in copies]
        assert days, "the copies of the last year are made"
        assert (today - days[0]).days <= 366
        assert days[-1] <= today
        expected = 53 if recurrence == "weekly" else 13
        assert len(days) in (expected - 1, expected)  # 366 days hold 52-53 weeks, 12-13 firsts
        batches = [e["copies"] for e in logs if e["event"] == "recurring_copies_made"]
        assert sum(batches) == len(days)
        assert max(batches) <= RECURRING_CATCH_UP
