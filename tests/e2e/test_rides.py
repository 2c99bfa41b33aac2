"""The Rides table of API.md over HTTP against a real node: drivers, estimates, requests
with a hold on the wallet, offers (declined, expired, raced), the trip's steps with
location pings, the fare captured and split with a group, cancelling, rating, bad input
that changes nothing, and `python run.py simulate` against the same node.

The node answers offers after 1 s (`SPLITGO_RIDES_OFFER_TIMEOUT=1`), so the drivers of
these tests answer at once. Each test works in its own area, tens of kilometres from the
others, so one test's drivers are never offered another test's rides.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import pytest
import pytest_asyncio

from tests.support.api import Api, User, eventually, fresh_key
from tests.support.node import PROJECT_ROOT, RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

T = TypeVar("T")

SANDBOX_SECRET = "e2e-sandbox-secret-0123456789abcdef"
OFFER_TIMEOUT = 1.0
TOP_UP = 10_000
CANCELLATION_FEE = 500
PLATFORM_FEE_BP = 2_000
_areas = itertools.count()


@dataclass(frozen=True)
class Area:
    """A patch of map of one test: places given as offsets in metres-ish from its centre."""

    lat: float
    lon: float

    def at(self, north_m: float = 0.0, east_m: float = 0.0) -> dict[str, float]:
        return {"lat": self.lat + north_m / 111_000, "lon": self.lon + east_m / 68_000}


def new_area() -> Area:
    """A fresh area, 0.5 degrees (55 km, beyond every search ring) from any other."""
    return Area(lat=45.0 + 0.5 * next(_areas), lon=10.0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(
        tmp_path_factory.mktemp("rides-node"),
        env={
            "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
            "SPLITGO_RIDES_OFFER_TIMEOUT": str(OFFER_TIMEOUT),
        },
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


# ── helpers ───────────────────────────────────────────────────────────────────────────


async def users(api: Api, count: int) -> list[User]:
    return list(await asyncio.gather(*(api.register(name="Rider") for _ in range(count))))


async def top_up(api: Api, user: User, amount: int = TOP_UP) -> None:
    """A top-up paid on the sandbox's checkout page, then seen in the wallet."""
    await api.top_up(user, amount)
    await eventually(lambda: wallet(api, user), lambda eur: eur["available"] >= amount)


async def wallet(api: Api, user: User) -> dict[str, int]:
    """The user's EUR balance (zeros when there is none yet)."""
    body = await api.ok("GET", "/api/v1/wallet", user)
    for line in body["balances"]:
        if line["currency"] == "EUR":
            return {"available": line["available"], "held": line["held"]}
    return {"available": 0, "held": 0}


async def driver(api: Api, user: User, place: dict[str, float]) -> None:
    """`user` signs up as a driver, pings `place` and goes online."""
    await api.ok(
        "POST", "/api/v1/drivers", user, {"vehicle": "Skoda Octavia", "plate": "b-sg 1"}, 201
    )
    await api.call("POST", "/api/v1/drivers/me/location", user, place)
    await api.ok("POST", "/api/v1/drivers/me/status", user, {"status": "online"})


async def offers(api: Api, user: User) -> list[dict[str, Any]]:
    body = await api.ok("GET", "/api/v1/drivers/me/offers", user)
    assert body["offers"] == body["items"]  # the old key, kept for a release
    return list(body["items"])


async def offered(api: Api, user: User, ride_id: str) -> dict[str, Any]:
    """The offer of `ride_id` once it reaches `user`."""
    found = await eventually(
        lambda: offers(api, user), lambda got: any(o["ride_id"] == ride_id for o in got)
    )
    return next(o for o in found if o["ride_id"] == ride_id)


async def ride(api: Api, user: User, ride_id: str) -> dict[str, Any]:
    body: dict[str, Any] = await api.ok("GET", f"/api/v1/rides/{ride_id}", user)
    return body


async def request(api: Api, rider: User, area: Area, **body: Any) -> dict[str, Any]:
    """A ride from the area's centre to 2 km north-east of it."""
    wanted = {"pickup": area.at(), "dropoff": area.at(1_500, 1_500), **body}
    created: dict[str, Any] = await api.ok("POST", "/api/v1/rides", rider, wanted, status=201)
    return created


async def step(api: Api, user: User, ride_id: str, action: str) -> dict[str, Any]:
    body: dict[str, Any] = await api.ok("POST", f"/api/v1/rides/{ride_id}/{action}", user)
    return body


def statuses(view: dict[str, Any]) -> list[str]:
    return [entry["status"] for entry in view["timeline"]]


def driver_share(fare: int) -> int:
    """What a driver keeps of a fare: the platform's 20 % goes (rounded half up)."""
    return fare - (2 * fare * PLATFORM_FEE_BP + 10_000) // 20_000


async def no_current_ride(api: Api, user: User) -> None:
    await api.problem("GET", "/api/v1/rides/current", user, status=404, code="ride_not_found")


# ── drivers ───────────────────────────────────────────────────────────────────────────


async def test_driver_sign_up_status_location_and_offers(api: Api) -> None:
    """A driver signs up once (and gains the role), goes online and offline, pings a
    position and lists no offer; bad bodies name their field and non-drivers are 403."""
    person, other = await users(api, 2)
    created = await api.ok(
        "POST", "/api/v1/drivers", person, {"vehicle": " VW  Golf ", "plate": "b-xy 12"}, 201
    )
    assert created == {
        "user_id": person.id,
        "vehicle": "VW Golf",
        "plate": "B-XY 12",
        "status": "offline",
        "rating": None,
        "name": "Rider",
    }
    await api.problem(
        "POST",
        "/api/v1/drivers",
        person,
        {"vehicle": "VW", "plate": "X"},
        status=409,
        code="already_a_driver",
    )
    me = await eventually(
        lambda: api.ok("GET", "/api/v1/me", person), lambda got: "driver" in got["roles"]
    )
    assert "driver" in me["roles"]
    await api.problem(
        "POST",
        "/api/v1/drivers",
        other,
        {"vehicle": "VW"},
        status=422,
        code="validation_error",
        field="$.plate",
    )
    await api.problem(
        "POST",
        "/api/v1/drivers",
        other,
        {"vehicle": "VW", "plate": "X", "seats": 4},
        status=422,
        code="validation_error",
        field="$",
        mentions="seats",
    )
    await api.problem(
        "POST",
        "/api/v1/drivers",
        other,
        {"vehicle": "   ", "plate": "X"},
        status=422,
        code="invalid_ride",
        field="$.vehicle",
    )
    await api.problem(
        "POST",
        "/api/v1/drivers",
        other,
        {"vehicle": "VW", "plate": "X" * 17},
        status=422,
        code="invalid_ride",
        field="$.plate",
    )
    online = await api.ok("POST", "/api/v1/drivers/me/status", person, {"status": "online"})
    assert online["status"] == "online"
    await api.problem(
        "POST",
        "/api/v1/drivers/me/status",
        person,
        {"status": "busy"},
        status=422,
        code="validation_error",
        field="$.status",
    )
    offline = await api.ok("POST", "/api/v1/drivers/me/status", person, {"status": "offline"})
    assert offline["status"] == "offline"
    reply = await api.call("POST", "/api/v1/drivers/me/location", person, {"lat": 52, "lon": 13.4})
    assert reply.status == 204
    for body, field in (
        ({"lat": "52.5", "lon": 13.4}, "$.lat"),
        ({"lat": 52.5, "lon": True}, "$.lon"),
        ({"lat": 52.5}, "$.lon"),
    ):
        await api.problem(
            "POST",
            "/api/v1/drivers/me/location",
            person,
            body,
            status=422,
            code="validation_error",
            field=field,
        )
    await api.problem(
        "POST",
        "/api/v1/drivers/me/location",
        person,
        {"lat": 90.5, "lon": 13.4},
        status=422,
        code="invalid_ride",
        field="$.lat",
    )
    await api.problem(
        "POST",
        "/api/v1/drivers/me/location",
        person,
        {"lat": 52.5, "lon": -180.01},
        status=422,
        code="invalid_ride",
        field="$.lon",
    )
    assert await offers(api, person) == []
    drivers_only: list[tuple[str, str, Any]] = [
        ("POST", "/api/v1/drivers/me/status", {"status": "online"}),
        ("POST", "/api/v1/drivers/me/location", {"lat": 1, "lon": 1}),
        ("GET", "/api/v1/drivers/me/offers", None),
    ]
    for method, path, payload in drivers_only:
        await api.problem(method, path, other, payload, status=403, code="not_a_driver")
        await api.problem(method, path, None, payload, status=401, code="invalid_token")


# ── estimates ─────────────────────────────────────────────────────────────────────────


async def test_estimate_quotes_a_fare_and_names_bad_fields(api: Api) -> None:
    """An estimate gives the fare and the trip; bad coordinates, the same place twice or a
    malformed body are 422 naming the field."""
    (rider,) = await users(api, 1)
    area = new_area()
    quote = await api.ok(
        "POST", "/api/v1/rides/estimate", rider, {"pickup": area.at(), "dropoff": area.at(3_000)}
    )
    assert set(quote) == {"amount", "currency", "distance_m", "duration_s", "surge"}
    assert quote["currency"] == "EUR"
    assert isinstance(quote["amount"], int)
    assert quote["amount"] >= 700
    assert 2_900 <= quote["distance_m"] <= 3_100
    assert quote["duration_s"] > 0
    assert quote["surge"] >= 1.0  # no driver near this area: demand exceeds supply
    whole = await api.ok(
        "POST",
        "/api/v1/rides/estimate",
        rider,
        {"pickup": {"lat": 52, "lon": 13}, "dropoff": {"lat": 52, "lon": 13.05}},
    )
    assert whole["distance_m"] > 3_000
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"pickup": {"lat": 91, "lon": 0}, "dropoff": area.at()}, "invalid_ride", "$.pickup.lat"),
        ({"pickup": area.at(), "dropoff": {"lat": 0, "lon": 181}}, "invalid_ride", "$.dropoff.lon"),
        ({"pickup": area.at(), "dropoff": area.at()}, "invalid_ride", "$.dropoff"),
        (
            {"pickup": {"lat": "45", "lon": 10}, "dropoff": area.at()},
            "validation_error",
            "$.pickup.lat",
        ),
        (
            {"pickup": area.at(), "dropoff": {"lat": 45, "lon": False}},
            "validation_error",
            "$.dropoff.lon",
        ),
        ({"pickup": area.at()}, "validation_error", "$.dropoff"),
        (
            {"pickup": {**area.at(), "alt": 3}, "dropoff": area.at(900)},
            "validation_error",
            "$.pickup",
        ),
    ]
    for body, code, field in cases:
        await api.problem(
            "POST", "/api/v1/rides/estimate", rider, body, status=422, code=code, field=field
        )
    await api.problem(
        "POST",
        "/api/v1/rides/estimate",
        None,
        {"pickup": area.at(), "dropoff": area.at(900)},
        status=401,
        code="invalid_token",
    )


# ── the whole trip ────────────────────────────────────────────────────────────────────


async def test_a_whole_trip_holds_charges_pays_the_driver_and_splits_the_fare(api: Api) -> None:
    """Top up, estimate, request with a group (hold placed), the nearest driver declines,
    the next accepts, arrive, start, pings, complete: the rider pays the fare, the driver
    gets it less 20 %, the group splits it, and everyone was told."""
    rider, friend, near, far = await users(api, 4)
    area = new_area()
    await top_up(api, rider)
    group = await api.ok("POST", "/api/v1/groups", rider, {"name": "Taxi", "currency": "EUR"}, 201)
    await api.ok(
        "POST", f"/api/v1/groups/{group['id']}/members", rider, {"user_id": friend.id}, 201
    )
    await driver(api, near, area.at(200))
    await driver(api, far, area.at(-700))
    pickup, dropoff = area.at(), area.at(2_000, 1_000)
    quote = await api.ok(
        "POST", "/api/v1/rides/estimate", rider, {"pickup": pickup, "dropoff": dropoff}
    )

    created = await api.ok(
        "POST",
        "/api/v1/rides",
        rider,
        {"pickup": pickup, "dropoff": dropoff, "group_id": group["id"]},
        status=201,
    )
    ride_id = created["id"]
    assert created["status"] == "requested"
    assert created["rider_id"] == rider.id
    assert created["group_id"] == group["id"]
    assert created["estimate"]["amount"] == quote["amount"]
    held = quote["amount"]
    assert await wallet(api, rider) == {"available": TOP_UP - held, "held": held}

    offer = await offered(api, near, ride_id)
    assert offer["fare"] == held
    assert offer["pickup"] == pytest.approx(pickup)
    assert offer["dropoff"] == pytest.approx(dropoff)
    assert offer["expires_at"].endswith("Z")
    assert await offers(api, far) == []
    declined = await step(api, near, ride_id, "decline")
    assert declined["status"] == "requested"
    await offered(api, far, ride_id)
    assert await offers(api, near) == []
    accepted = await step(api, far, ride_id, "accept")
    assert accepted["status"] == "driver_assigned"
    assert accepted["driver"]["user_id"] == far.id
    assert (await api.ok("GET", "/api/v1/rides/current", rider))["id"] == ride_id
    assert (await api.ok("GET", "/api/v1/rides/current", far))["id"] == ride_id

    await api.call("POST", "/api/v1/drivers/me/location", far, area.at(10))
    assert (await step(api, far, ride_id, "arrive"))["status"] == "driver_arrived"
    assert (await step(api, far, ride_id, "start"))["status"] == "in_progress"
    for fraction in (0.25, 0.5, 0.75, 1.0):
        place = area.at(2_000 * fraction, 1_000 * fraction)
        reply = await api.call("POST", "/api/v1/drivers/me/location", far, place)
        assert reply.status == 204
    moving = await ride(api, rider, ride_id)
    assert moving["driver_position"] == pytest.approx(dropoff)
    done = await step(api, far, ride_id, "complete")
    assert done["status"] == "completed"
    fare = done["fare"]
    assert 0 < fare <= held
    assert done["distance_m"] >= 2_000
    assert statuses(done) == [
        "requested",
        "declined",
        "driver_assigned",
        "driver_arrived",
        "in_progress",
        "completed",
    ]
    await no_current_ride(api, rider)

    charged = {"available": TOP_UP - fare, "held": 0}
    await eventually(lambda: wallet(api, rider), lambda eur: eur == charged)
    await eventually(lambda: wallet(api, far), lambda eur: eur["available"] == driver_share(fare))
    assert await wallet(api, near) == {"available": 0, "held": 0}
    # the rider's statement tells the ride as one story: held, then the rest released
    lines = (await api.ok("GET", "/api/v1/transfers", rider))["items"]
    ride_lines = [line for line in lines if (line.get("about") or {}).get("id") == ride_id]
    assert [line["kind"] for line in ride_lines] == ["hold_release", "hold"]
    assert ride_lines[1]["summary"].endswith("held for the fare")
    assert sum(line["amount"] for line in ride_lines) == -fare
    driver_lines = (await api.ok("GET", "/api/v1/transfers", far))["items"]
    assert driver_lines[0]["about"] == {"kind": "ride", "id": ride_id, "group_id": None}
    assert driver_lines[0]["counterparty_name"] == "Rider"

    def split_done(body: dict[str, Any]) -> bool:
        return any(line["net"] for line in body["balances"])

    balances = await eventually(
        lambda: api.ok("GET", f"/api/v1/groups/{group['id']}/balances", rider), split_done
    )
    nets = {line["user_id"]: line["net"] for line in balances["balances"]}
    assert nets[rider.id] + nets[friend.id] == 0
    assert nets[friend.id] in (-(fare // 2), -(fare - fare // 2))
    expenses = await api.ok("GET", f"/api/v1/groups/{group['id']}/expenses", friend)
    (expense,) = expenses["items"]
    assert expense["amount"] == fare

    def told(body: dict[str, Any]) -> bool:
        kinds = {
            item["kind"]
            for item in body["items"]
            if item["category"] == "rides" and item["data"].get("ride_id") == ride_id
        }
        return {"Ride_requested", "Ride_driver_assigned", "Ride_completed"} <= kinds

    await eventually(lambda: api.ok("GET", "/api/v1/notifications", rider), told)
    feed = await api.ok("GET", "/api/v1/notifications", far)
    assert any(item["category"] == "rides" for item in feed["items"])

    rated = await api.ok(
        "POST", f"/api/v1/rides/{ride_id}/rating", rider, {"stars": 5, "comment": "Smooth"}, 201
    )
    assert rated["rider_rating"] == 5
    by_driver = await api.ok("POST", f"/api/v1/rides/{ride_id}/rating", far, {"stars": 4}, 201)
    assert by_driver["driver_rating"] == 4
    assert by_driver["driver"]["rating"] == 5.0


# ── offers: timeout, nobody, races ────────────────────────────────────────────────────


async def test_an_unanswered_offer_moves_to_the_next_driver(api: Api) -> None:
    """After the offer timeout the ride is offered to the next driver; a late answer is
    409 offer_expired; when the last driver declines the ride has no driver."""
    rider, near, far = await users(api, 3)
    area = new_area()
    await top_up(api, rider)
    await driver(api, near, area.at(100))
    await driver(api, far, area.at(-900))
    ride_id = (await request(api, rider, area))["id"]
    await offered(api, near, ride_id)
    await offered(api, far, ride_id)
    assert await offers(api, near) == []
    await api.problem(
        "POST", f"/api/v1/rides/{ride_id}/accept", near, status=409, code="offer_expired"
    )
    await step(api, far, ride_id, "decline")
    ended = await ride(api, rider, ride_id)
    assert ended["status"] == "no_driver"
    assert statuses(ended) == ["requested", "offer_expired", "declined", "no_driver"]
    await eventually(
        lambda: wallet(api, rider), lambda eur: eur == {"available": TOP_UP, "held": 0}
    )


async def test_no_driver_anywhere_ends_the_ride_and_voids_the_hold(api: Api) -> None:
    """A request far from every driver ends as no_driver and the hold is released."""
    (rider,) = await users(api, 1)
    await top_up(api, rider)
    ride_id = (await request(api, rider, new_area()))["id"]
    ended = await eventually(
        lambda: ride(api, rider, ride_id), lambda view: view["status"] == "no_driver"
    )
    assert ended["driver"] is None
    await eventually(
        lambda: wallet(api, rider), lambda eur: eur == {"available": TOP_UP, "held": 0}
    )
    await no_current_ride(api, rider)


async def test_two_drivers_accepting_at_once_get_one_ride(api: Api) -> None:
    """Accepts racing for one ride: exactly one succeeds, every other is 409."""
    rider, near, far = await users(api, 3)
    area = new_area()
    await top_up(api, rider)
    await driver(api, near, area.at(100))
    await driver(api, far, area.at(300))
    ride_id = (await request(api, rider, area))["id"]
    await offered(api, near, ride_id)
    path = f"/api/v1/rides/{ride_id}/accept"
    replies = await asyncio.gather(
        api.call("POST", path, near), api.call("POST", path, far), api.call("POST", path, near)
    )
    assert sorted(reply.status for reply in replies) == [200, 409, 409]
    assert {r.body["code"] for r in replies if r.status == 409} == {"offer_expired"}
    view = await ride(api, rider, ride_id)
    assert view["status"] == "driver_assigned"
    assert view["driver"]["user_id"] == near.id
    await step(api, rider, ride_id, "cancel")


# ── cancelling ────────────────────────────────────────────────────────────────────────


async def test_cancelling_releases_the_hold_or_charges_a_fee_after_arrival(api: Api) -> None:
    """Cancelling while requested voids the hold; a rider cancelling after the driver
    arrived pays the fee to the driver; a driver cancelling costs the rider nothing."""
    rider, cabbie = await users(api, 2)
    area = new_area()
    await top_up(api, rider)
    await driver(api, cabbie, area.at(150))

    first = (await request(api, rider, area))["id"]
    await offered(api, cabbie, first)
    cancelled = await api.ok(
        "POST", f"/api/v1/rides/{first}/cancel", rider, {"reason": "Changed my mind"}
    )
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "Changed my mind")
    assert cancelled["fare"] is None
    assert await offers(api, cabbie) == []
    await api.problem(
        "POST", f"/api/v1/rides/{first}/accept", cabbie, status=409, code="offer_expired"
    )
    await api.problem(
        "POST", f"/api/v1/rides/{first}/cancel", rider, status=409, code="invalid_transition"
    )
    await eventually(
        lambda: wallet(api, rider), lambda eur: eur == {"available": TOP_UP, "held": 0}
    )

    second = (await request(api, rider, area))["id"]
    await offered(api, cabbie, second)
    await step(api, cabbie, second, "accept")
    await step(api, cabbie, second, "arrive")
    for body in ({"reason": 5}, {"why": "late"}, {"reason": "x" * 201}):
        await api.problem(
            "POST",
            f"/api/v1/rides/{second}/cancel",
            rider,
            body,
            status=422,
            code="validation_error",
        )
    assert (await ride(api, rider, second))["status"] == "driver_arrived"
    fee = await step(api, rider, second, "cancel")
    assert (fee["status"], fee["fare"]) == ("cancelled", CANCELLATION_FEE)
    after_fee = {"available": TOP_UP - CANCELLATION_FEE, "held": 0}
    await eventually(lambda: wallet(api, rider), lambda eur: eur == after_fee)
    await eventually(
        lambda: wallet(api, cabbie), lambda eur: eur["available"] == driver_share(CANCELLATION_FEE)
    )

    third = (await request(api, rider, area))["id"]
    await offered(api, cabbie, third)
    await step(api, cabbie, third, "accept")
    by_driver = await api.ok("POST", f"/api/v1/rides/{third}/cancel", cabbie, {})
    assert (by_driver["status"], by_driver["fare"]) == ("cancelled", None)
    await eventually(lambda: wallet(api, rider), lambda eur: eur == after_fee)
    await no_current_ride(api, cabbie)


# ── bad input and wrong callers ───────────────────────────────────────────────────────


async def test_bad_requests_name_the_field_and_change_nothing(api: Api) -> None:
    """Out-of-range or mistyped coordinates, one place twice, unknown fields or a foreign
    group are refused; no ride is made and nothing is held."""
    (rider,) = await users(api, 1)
    area = new_area()
    await top_up(api, rider)
    here, there = area.at(), area.at(1_000)
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        (
            {"pickup": {"lat": -90.5, "lon": 10}, "dropoff": there},
            422,
            "invalid_ride",
            "$.pickup.lat",
        ),
        (
            {"pickup": here, "dropoff": {"lat": 45, "lon": 200}},
            422,
            "invalid_ride",
            "$.dropoff.lon",
        ),
        ({"pickup": here, "dropoff": here}, 422, "invalid_ride", "$.dropoff"),
        (
            {"pickup": {"lat": None, "lon": 1}, "dropoff": there},
            422,
            "validation_error",
            "$.pickup.lat",
        ),
        ({"pickup": here, "dropoff": there, "tip": 100}, 422, "validation_error", "$"),
        ({"pickup": here, "dropoff": there, "group_id": 7}, 422, "validation_error", "$.group_id"),
    ]
    for body, status, code, field in cases:
        await api.problem(
            "POST", "/api/v1/rides", rider, body, status=status, code=code, field=field
        )
    await api.problem(
        "POST",
        "/api/v1/rides",
        rider,
        {"pickup": here, "dropoff": there, "group_id": "no-such-group"},
        status=404,
        code="group_not_found",
    )
    reply = await api.call(
        "POST",
        "/api/v1/rides",
        rider,
        headers={"Content-Type": "application/json", **fresh_key("POST")},
    )
    assert (reply.status, reply.body["code"]) == (400, "malformed_json")
    assert await wallet(api, rider) == {"available": TOP_UP, "held": 0}
    await no_current_ride(api, rider)


async def test_wrong_callers_out_of_order_steps_and_ratings_are_refused(api: Api) -> None:
    """A rider cannot drive their own ride, a second active ride is 409, steps out of
    order are 409, strangers see nothing, and ratings are 1..5 once per side."""
    rider, cabbie, stranger = await users(api, 3)
    area = new_area()
    await top_up(api, rider)
    await driver(api, cabbie, area.at(120))
    created = await request(api, rider, area)
    ride_id, held = created["id"], created["estimate"]["amount"]

    await api.problem(
        "POST",
        "/api/v1/rides",
        rider,
        {"pickup": area.at(), "dropoff": area.at(-2_000)},
        status=409,
        code="ride_in_progress",
    )
    assert await wallet(api, rider) == {"available": TOP_UP - held, "held": held}
    for action in ("arrive", "accept"):
        await api.problem(
            "POST", f"/api/v1/rides/{ride_id}/{action}", rider, status=403, code="not_a_driver"
        )
    await api.problem(
        "GET", f"/api/v1/rides/{ride_id}", stranger, status=404, code="ride_not_found"
    )
    await api.problem(
        "POST", f"/api/v1/rides/{ride_id}/cancel", stranger, status=404, code="ride_not_found"
    )
    await api.problem("GET", "/api/v1/rides/nope", rider, status=404, code="ride_not_found")
    await api.problem("GET", f"/api/v1/rides/{ride_id}", None, status=401, code="invalid_token")

    await offered(api, cabbie, ride_id)
    await step(api, cabbie, ride_id, "accept")
    await api.problem(
        "POST", f"/api/v1/rides/{ride_id}/start", rider, status=403, code="not_a_driver"
    )
    for action in ("start", "complete"):
        await api.problem(
            "POST",
            f"/api/v1/rides/{ride_id}/{action}",
            cabbie,
            status=409,
            code="invalid_transition",
        )
    await api.problem(
        "POST",
        f"/api/v1/rides/{ride_id}/rating",
        rider,
        {"stars": 5},
        status=409,
        code="invalid_transition",
    )
    assert (await ride(api, rider, ride_id))["status"] == "driver_assigned"
    await step(api, cabbie, ride_id, "arrive")
    await api.problem(
        "POST", f"/api/v1/rides/{ride_id}/arrive", cabbie, status=409, code="invalid_transition"
    )
    await step(api, cabbie, ride_id, "start")
    await step(api, cabbie, ride_id, "complete")
    await api.problem(
        "POST", f"/api/v1/rides/{ride_id}/cancel", rider, status=409, code="invalid_transition"
    )

    rating = f"/api/v1/rides/{ride_id}/rating"
    for body, code in (
        ({"stars": 6}, "invalid_ride"),
        ({"stars": 0}, "invalid_ride"),
        ({"stars": "5"}, "validation_error"),
        ({"stars": 4.5}, "validation_error"),
    ):
        await api.problem("POST", rating, rider, body, status=422, code=code, field="$.stars")
    await api.problem(
        "POST",
        rating,
        rider,
        {"stars": 5, "comment": "x" * 501},
        status=422,
        code="invalid_ride",
        field="$.comment",
    )
    await api.problem("POST", rating, stranger, {"stars": 5}, status=404, code="ride_not_found")
    assert (await ride(api, rider, ride_id))["rider_rating"] is None
    await api.ok("POST", rating, rider, {"stars": 3}, status=201)
    await api.problem("POST", rating, rider, {"stars": 4}, status=409, code="already_rated")
    view = await ride(api, rider, ride_id)
    assert (view["rider_rating"], view["driver_rating"]) == (3, None)


async def test_an_empty_wallet_cannot_request_a_ride(api: Api) -> None:
    """Without money for the hold the request is 422 insufficient_funds and no ride exists."""
    rider, cabbie = await users(api, 2)
    area = new_area()
    await driver(api, cabbie, area.at(100))
    await api.problem(
        "POST",
        "/api/v1/rides",
        rider,
        {"pickup": area.at(), "dropoff": area.at(1_500)},
        status=422,
        code="insufficient_funds",
    )
    await no_current_ride(api, rider)
    assert await offers(api, cabbie) == []
    assert await wallet(api, rider) == {"available": 0, "held": 0}


async def test_an_idempotency_key_names_one_ride(api: Api) -> None:
    """The same Idempotency-Key returns the first ride; with another body it is 409."""
    (rider,) = await users(api, 1)
    area = new_area()
    await top_up(api, rider)
    key = {"Idempotency-Key": secrets.token_hex(8)}
    body = {"pickup": area.at(), "dropoff": area.at(900)}
    first = await api.call("POST", "/api/v1/rides", rider, body, headers=key)
    again = await api.call("POST", "/api/v1/rides", rider, body, headers=key)
    assert (first.status, again.status) == (201, 201)
    assert first.body["id"] == again.body["id"]
    other = await api.call(
        "POST", "/api/v1/rides", rider, {**body, "dropoff": area.at(-900)}, headers=key
    )
    assert (other.status, other.body["code"]) == (409, "idempotency_conflict")
    held = first.body["estimate"]["amount"]
    ended = await eventually(
        lambda: ride(api, rider, first.body["id"]), lambda view: view["status"] == "no_driver"
    )
    assert ended["id"] == first.body["id"]
    await eventually(
        lambda: wallet(api, rider), lambda eur: eur == {"available": TOP_UP, "held": 0}
    )
    assert held > 0


# ── the simulator ─────────────────────────────────────────────────────────────────────


SUMMARY = re.compile(r"^simulate: (?P<pairs>requests=.*)$", re.MULTILINE)


def summary_of(output: str) -> dict[str, str]:
    """The machine-readable summary line of `run.py simulate` as a dict."""
    match = SUMMARY.findall(output)
    assert match, output
    return dict(pair.split("=", 1) for pair in match[-1].split())


async def test_simulate_drives_the_node_and_accounts_for_every_request(
    node: RunningNode,
) -> None:
    """`run.py simulate` against the node: rides are requested and each ends up completed,
    cancelled, without a driver, or still in flight."""
    command = [
        sys.executable,
        "run.py",
        "simulate",
        "--drivers",
        "6",
        "--riders",
        "3",
        "--minutes",
        "0.1",
        "--drain",
        "5",
        "--url",
        node.url,
        "--seed",
        "7",
    ]
    done = await asyncio.to_thread(
        subprocess.run, command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    numbers = summary_of(done.stdout)
    counts = {
        name: int(numbers[name])
        for name in ("requests", "matched", "completed", "cancelled", "no_driver", "in_flight")
    }
    assert counts["requests"] > 0, done.stdout
    ended = counts["completed"] + counts["cancelled"] + counts["no_driver"] + counts["in_flight"]
    assert ended == counts["requests"], done.stdout
    assert counts["matched"] >= counts["completed"], done.stdout


async def test_simulate_says_clearly_when_no_node_answers() -> None:
    """Pointed at a port where nothing listens, simulate exits 2 with a plain message."""
    command = [
        sys.executable,
        "run.py",
        "simulate",
        "--drivers",
        "1",
        "--riders",
        "1",
        "--minutes",
        "0.01",
        "--url",
        "http://127.0.0.1:9",
    ]
    done = await asyncio.to_thread(
        subprocess.run, command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "no splitgo node answers" in done.stderr
