"""Rides in a real browser: a driver and a rider in two browser contexts, each with a mocked
geolocation, finish a ride. The driver registers, goes online and shares the browser's
location; the rider's "Use my location" fills the pickup and the request goes out; the
offer appears on the driver's open page with its countdown, is accepted, and moves through
Arrived, Start and Complete; the rider's open page follows every step without a reload,
ends completed with the fare, and the ride is rated."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewPage
from tests.browser.harness import Site, sign_in
from tests.support.api import User

HERE = {"latitude": 48.1372, "longitude": 11.5756}
NEARBY = {"latitude": 48.1380, "longitude": 11.5770}
TOP_UP = 5000
LIVE_MS = 10_000  # an open page learns of a change within a poll (3 s) or a socket frame


@pytest.fixture(scope="module")
def site_env() -> dict[str, str]:
    """Offers wait long enough for a browser that checks every few seconds."""
    return {"SPLITGO_RIDES_OFFER_TIMEOUT": "30"}


def topped_up(site: Site, user: User, amount: int) -> None:
    """A EUR top-up paid at the sandbox, waited for until the wallet shows it."""
    site.run(site.api.top_up(user, amount))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        wallet = site.call("GET", "/api/v1/wallet", user).body
        if any(b["available"] >= amount for b in wallet["balances"] if b["currency"] == "EUR"):
            return
        time.sleep(0.1)
    raise AssertionError("the top-up never reached the wallet")


def earned(driver: Page) -> None:
    """The driver's earnings show the fare once payments captured it (just after the
    ride completed): the page is loaded again until they do."""
    deadline = time.monotonic() + 10
    while "All time" not in driver.locator("#earnings").inner_text():
        assert time.monotonic() < deadline, "the fare never reached the driver's earnings"
        time.sleep(0.2)
        driver.reload()


def test_a_rider_and_a_driver_finish_a_ride(new_page: NewPage, site: Site) -> None:
    """With mocked locations, the driver registers, goes online and shares their location;
    the rider requests from "Use my location"; the driver accepts the offer that appears
    with a countdown and moves the ride through Arrived, Start and Complete, while the
    rider's page, never reloaded, names the driver, ends completed with the fare, and rates
    the ride."""
    bo = site.register(name="Bo Nowak")
    rita = site.register(name="Rita Rider")
    topped_up(site, rita, TOP_UP)

    driver = new_page(geolocation=HERE, permissions=["geolocation"])
    sign_in(driver, bo)
    driver.goto("/driver")
    driver.get_by_label("Vehicle").fill("Skoda Octavia")
    driver.get_by_label("Number plate").fill("B-SG 42")
    driver.get_by_role("button", name="Register as a driver").click()
    expect(driver.locator("#status")).to_contain_text("You are offline")
    driver.get_by_role("button", name="Go online").click()
    expect(driver.locator("#status")).to_contain_text("You are online")
    driver.get_by_role("button", name="Share my location").click()
    expect(driver.locator("[data-share-status]")).to_contain_text("last sent")

    rider = new_page(geolocation=NEARBY, permissions=["geolocation"])
    sign_in(rider, rita)
    rider.goto("/rides")
    expect(rider.get_by_text("No rides yet")).to_be_visible()
    rider.get_by_role("button", name="Use my location").click()
    expect(rider.locator("#f-pickup-lat")).to_have_value("48.138000")
    expect(rider.locator("#f-pickup-lon")).to_have_value("11.577000")
    dropoff = rider.get_by_role("group", name="Drop-off")
    dropoff.get_by_label("Latitude").fill("48.1500")
    dropoff.get_by_label("Longitude").fill("11.5900")
    rider.get_by_role("button", name="Request ride").click()
    expect(rider).to_have_url(re.compile(r"/rides/[0-9a-f-]{36}$"))
    status = rider.locator("[data-status-line]")
    expect(status).to_have_text("Looking for a driver near you…")
    rider.evaluate("window.neverReloaded = true")

    offer = driver.locator(".ride-offer")
    expect(offer).to_contain_text("A ride for", timeout=LIVE_MS)  # came by itself
    expect(offer.locator("[data-countdown-text]")).to_contain_text("s left to answer")
    offer.get_by_role("button", name="Accept").click()

    expect(status).to_contain_text("Bo Nowak is", timeout=LIVE_MS)
    expect(status).to_contain_text("Skoda Octavia, B-SG 42")
    expect(rider.locator(".map-driver")).to_have_count(1)
    for step, then in (
        ("Arrived at pickup", "Start ride"),
        ("Start ride", "Complete ride"),
    ):
        driver.get_by_role("button", name=step).click()
        expect(driver.get_by_role("button", name=then)).to_be_visible()
    driver.get_by_role("button", name="Complete ride").click()
    expect(driver.locator(".toast")).to_contain_text("Ride completed")
    earned(driver)

    expect(status).to_have_text("You arrived. Thanks for riding.", timeout=LIVE_MS)
    fare = site.call("GET", rider.url.replace(site.url, "/api/v1"), rita).body
    assert fare["status"] == "completed"
    assert fare["fare"] > 0
    expect(rider.locator(".ride-facts")).to_contain_text("Fare")
    assert rider.evaluate("window.neverReloaded") is True
    rider.get_by_text("5 stars").click()
    rider.get_by_role("button", name="Rate ride").click()
    expect(rider.get_by_text("You gave this ride 5 stars.")).to_be_visible()
    assert site.call("GET", rider.url.replace(site.url, "/api/v1"), rita).body["rider_rating"] == 5
