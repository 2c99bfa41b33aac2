"""The rides pages over HTTP against a real node, as a browser without JavaScript uses
them: estimate and request through the rider's form (bad degrees and an empty wallet said
at the form, typed values kept), the ride page in words with the map drawn inline, and a
driver who registers, goes online, types a location, accepts the offer and moves the ride
on with one button at a time, while the rider's page names the driver and ends rated.

Each test works in its own area, far from the others', so no driver of one test is offered
another test's ride."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_pages_auth import PASSWORD, Page, submit, visit
from tests.support.api import Api, User, eventually
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

_areas = itertools.count()
HIDDEN = {"hidden", "submit", "button", "reset", "image"}


@dataclass
class World:
    node: RunningNode
    api: Api


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with fresh_database(schema=True) as database:
        env = {
            "SPLITGO_DATABASE_URL": database,
            "SPLITGO_JWT_KEYS": "rides-k1:rides-pages-e2e-signing-secret-0123456789",
            "SPLITGO_SANDBOX_SECRET": "rides-pages-sandbox-secret-0123456789",
            "SPLITGO_RIDES_OFFER_TIMEOUT": "30",
        }
        node = await start_node(tmp_path_factory.mktemp("rides-pages-node"), env=env)
        try:
            async with aiohttp.ClientSession() as http:
                yield World(node, Api(node.url, http))
        finally:
            await stop_node(node)


@asynccontextmanager
async def browser_of(world: World, user: User) -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without JavaScript (cookies kept, HTML asked for) signed in as `user`
    through the sign-in form."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as browser:
        form = await visit(browser, f"{world.node.url}/sign-in")
        home = await submit(browser, form, "/sign-in", {"email": user.email, "password": PASSWORD})
        assert home.status == 200, home.html
        yield browser


def area() -> tuple[float, float]:
    """A fresh area of the map, 0.5 degrees (55 km) from any other test's."""
    return 40.0 + 0.5 * next(_areas), 20.0


def trip(lat: float, lon: float) -> dict[str, str]:
    """The request form's places: a pickup here and a drop-off about 2 km north-east."""
    return {
        "pickup.lat": f"{lat:.5f}",
        "pickup.lon": f"{lon:.5f}",
        "dropoff.lat": f"{lat + 0.015:.5f}",
        "dropoff.lon": f"{lon + 0.01:.5f}",
    }


async def funded(world: World, user: User, amount: int = 5000) -> None:
    await world.api.top_up(user, amount)

    async def available() -> int:
        body = await world.api.ok("GET", "/api/v1/wallet", user)
        return sum(b["available"] for b in body["balances"] if b["currency"] == "EUR")

    await eventually(available, lambda got: got >= amount)


def text_of(page: Page) -> str:
    """The page's words, tags left out, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", page.html).split())


def assert_labelled(page: Page) -> None:
    for found in page.inputs:
        if found.get("type", "text") not in HIDDEN:
            assert found.get("id") in page.labels, found
        for described in found.get("aria-describedby", "").split():
            assert described in page.ids, described


async def until(browser: aiohttp.ClientSession, url: str, words: str, tries: int = 100) -> Page:
    """The page at `url` once it says `words` (asked again every 0.1 s)."""
    for _ in range(tries):
        page = await visit(browser, url)
        if words in text_of(page):
            return page
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never said {words!r}:\n{text_of(page)}")


async def test_the_rider_estimates_requests_and_is_told_what_is_wrong(world: World) -> None:
    """The form estimates a trip (fare, distance, a map with its words); bad degrees are
    refused at their inputs; a request with an empty wallet is a 422 saying to top up, with
    what was typed kept; after a top-up the request makes a ride whose page says no driver
    was free, and /rides lists it as a past ride."""
    rider = await world.api.register(name="Rita Rider")
    lat, lon = area()
    async with browser_of(world, rider) as browser:
        first = await visit(browser, f"{world.node.url}/rides")
        assert first.status == 200
        assert "No rides yet" in text_of(first)
        assert_labelled(first)

        quoted = await submit(browser, first, "/rides", {**trip(lat, lon), "intent": "estimate"})
        assert quoted.status == 200, quoted.html
        words = text_of(quoted)
        assert "Fare" in words
        assert "km" in words
        assert 'role="img"' in quoted.html
        assert "Pickup and drop-off are" in words
        assert quoted.field("pickup.lat")["value"] == f"{lat:.5f}"

        bad = await submit(browser, quoted, "/rides", {"pickup.lat": "north", "intent": "estimate"})
        assert bad.status == 422
        assert "number" in bad.ids["f-pickup-lat-error"]
        assert bad.field("pickup.lat")["value"] == "north"
        assert "f-pickup-lat-error" in bad.field("pickup.lat")["aria-describedby"].split()
        outside = await submit(browser, bad, "/rides", {"pickup.lat": "95", "intent": "estimate"})
        assert outside.status == 422
        assert "90" in outside.ids["f-pickup-lat-error"]

        short = await submit(browser, quoted, "/rides", {**trip(lat, lon), "intent": "request"})
        assert short.status == 422
        assert "does not have enough for this ride" in text_of(short)
        assert 'href="/wallet"' in short.html
        assert short.field("dropoff.lon")["value"] == f"{lon + 0.01:.5f}"

        await funded(world, rider)
        group = await world.api.ok(
            "POST", "/api/v1/groups", rider, {"name": "Night out", "currency": "EUR"}, 201
        )
        form = await visit(browser, f"{world.node.url}/rides")
        assert f'<option value="{group["id"]}">Night out</option>' in form.html
        assert_labelled(form)
        values = {**trip(lat, lon), "group_id": group["id"], "intent": "request"}
        made = await submit(browser, form, "/rides", values)
        assert made.status == 200, made.html
        assert re.search(r"/rides/[0-9a-f-]{36}$", made.url), made.url
        assert "Ride requested" in text_of(made)
        again = await submit(browser, form, "/rides", values)  # the same form sent twice
        assert again.url == made.url
        ride_id = made.url.rsplit("/", 1)[1]
        shown = await world.api.ok("GET", f"/api/v1/rides/{ride_id}", rider)
        assert shown["group_id"] == group["id"]
        ride_page = await until(browser, made.url, "No driver was free nearby")
        assert "Nothing charged" in text_of(ride_page) or "Charged Nothing" in text_of(ride_page)
        assert "Request another ride" in text_of(ride_page)

        listed = await visit(browser, f"{world.node.url}/rides")
        assert "No rides yet" not in text_of(listed)
        assert made.url.removeprefix(world.node.url) in listed.html


async def test_a_driver_takes_a_ride_through_the_forms(world: World) -> None:
    """A driver registers, goes online and types a location; the rider's request reaches
    them as an offer, accepted through its form; the rider's page names the driver with
    car and plate; Arrived, Start and Complete move it on one button at a time; the
    driver's earnings show the fare, and the rider rates the ride (no stars is refused at
    the stars)."""
    lat, lon = area()
    bo = await world.api.register(name="Bo Nowak")
    rita = await world.api.register(name="Rita Rider")
    await funded(world, rita)
    async with browser_of(world, bo) as driver, browser_of(world, rita) as rider:
        base = world.node.url
        join = await visit(driver, f"{base}/driver")
        assert "Become a driver" in text_of(join)
        assert_labelled(join)
        refused = await submit(driver, join, "/driver", {"vehicle": "", "plate": "B-SG 42"})
        assert refused.status == 422
        assert "f-vehicle-error" in refused.ids
        assert refused.field("plate")["value"] == "B-SG 42"
        joined = await submit(
            driver, refused, "/driver", {"vehicle": "Skoda Octavia", "plate": "b-sg 42"}
        )
        assert joined.status == 200, joined.html
        words = text_of(joined)
        assert "You are registered as a driver" in words
        assert "You are offline" in words
        online = await submit(driver, joined, "/driver/status", {"status": "online"})
        assert "You are online" in text_of(online)
        placed = await submit(
            driver, online, "/driver/location", {"lat": f"{lat:.5f}", "lon": f"{lon:.5f}"}
        )
        assert "Your location is updated" in text_of(placed)
        assert_labelled(placed)

        form = await visit(rider, f"{base}/rides")
        made = await submit(rider, form, "/rides", {**trip(lat, lon), "intent": "request"})
        ride_path = made.url.removeprefix(base)
        ride_id = ride_path.rsplit("/", 1)[1]

        offered = await until(driver, f"{base}/driver", "A ride for")
        assert f"/driver/offers/{ride_id}/accept" in offered.html
        assert "seconds" in text_of(offered)
        accepted = await submit(driver, offered, f"/driver/offers/{ride_id}/accept", {})
        assert "Offer accepted" in text_of(accepted)
        assert "Arrived at pickup" in text_of(accepted)
        assert "Rita" in text_of(accepted)

        overview = await visit(rider, f"{base}/rides")
        assert "Follow your ride" in text_of(overview)
        assert f'href="{ride_path}"' in overview.html

        following = await visit(rider, f"{base}{ride_path}")
        words = text_of(following)
        assert "Bo Nowak is" in words
        assert "Skoda Octavia, B-SG 42" in words
        assert 'class="map-driver"' in following.html
        assert "Cancel ride" in words

        page = accepted
        for step, button in (("arrive", "Start ride"), ("start", "Complete ride")):
            page = await submit(driver, page, f"/driver/rides/{ride_id}/{step}", {})
            assert button in text_of(page), text_of(page)
        done = await submit(driver, page, f"/driver/rides/{ride_id}/complete", {})
        assert "Ride completed" in text_of(done)
        fare: dict[str, Any] = await world.api.ok("GET", f"/api/v1/rides/{ride_id}", rita)
        assert fare["status"] == "completed"
        assert fare["fare"] > 0
        await until(driver, f"{base}/driver", "All time")

        finished = await visit(rider, f"{base}{ride_path}")
        words = text_of(finished)
        assert "You arrived" in words
        assert "Fare" in words
        assert "How was your ride?" in words
        assert_labelled(finished)
        no_stars = await submit(rider, finished, f"{ride_path}/rating", {"stars": ""})
        assert no_stars.status == 422
        assert "f-stars-error" in no_stars.ids
        rated = await submit(rider, no_stars, f"{ride_path}/rating", {"stars": "5"})
        assert "You gave this ride 5 stars" in text_of(rated)
        after: dict[str, Any] = await world.api.ok("GET", f"/api/v1/rides/{ride_id}", rita)
        assert after["rider_rating"] == 5


async def test_the_rider_cancels_before_the_driver_answers(world: World) -> None:
    """A ride offered to a driver who does not answer is cancelled through the ride page's
    form: the page says so in words, offers another ride, and the wallet holds nothing."""
    lat, lon = area()
    bo = await world.api.register(name="Bo Slow")
    await world.api.ok(
        "POST", "/api/v1/drivers", bo, {"vehicle": "Fiat Panda", "plate": "M-AB 1"}, 201
    )
    await world.api.call("POST", "/api/v1/drivers/me/location", bo, {"lat": lat, "lon": lon})
    await world.api.ok("POST", "/api/v1/drivers/me/status", bo, {"status": "online"})
    rita = await world.api.register(name="Rita Rider")
    await funded(world, rita)
    async with browser_of(world, rita) as rider:
        form = await visit(rider, f"{world.node.url}/rides")
        made = await submit(rider, form, "/rides", {**trip(lat, lon), "intent": "request"})
        assert "Looking for a driver near you" in text_of(made)
        ride_path = made.url.removeprefix(world.node.url)
        cancelled = await submit(rider, made, f"{ride_path}/cancel", {})
        words = text_of(cancelled)
        assert "Your ride is cancelled" in words
        assert "This ride was cancelled" in words
        assert "Cancelled by the rider" in words
        assert "Request another ride" in words
        assert "Cancel ride" not in words
    wallet = await world.api.ok("GET", "/api/v1/wallet", rita)
    eur = next(b for b in wallet["balances"] if b["currency"] == "EUR")
    assert eur["held"] == 0
    assert eur["available"] == 5000
