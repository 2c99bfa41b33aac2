"""Notifications and the account in a real browser: the unread badge on the navigation
goes up live when a friend adds an expense in a shared group (over the tab's WebSocket,
no reload), and the account page, the Telegram QR code included, fits a 360 px phone."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewPage
from tests.browser.harness import BackgroundLoop, Site, sign_in
from tests.support.api import User
from tests.support.fake_telegram import FakeTelegram

BOT = "515151:" + "".join(secrets.choice(string.ascii_letters) for _ in range(35))
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def telegram(background: BackgroundLoop) -> Iterator[FakeTelegram]:
    """A fake Bot API for the node's bot (started before the node: it polls at once)."""
    fake = FakeTelegram()
    background.run(fake.start())
    yield fake
    background.run(fake.stop())


@pytest.fixture(scope="module")
def site_env(telegram: FakeTelegram) -> dict[str, str]:
    return {"SPLITGO_TELEGRAM_BOT_TOKENS": BOT, "SPLITGO_TELEGRAM_API_URL": telegram.base_url}


def add_expense(site: Site, group_id: str, payer: User, other: User, description: str) -> None:
    body = {
        "description": description,
        "amount": 4000,
        "currency": "EUR",
        "paid_by": payer.id,
        "split": {"mode": "equal", "shares": [{"user_id": payer.id}, {"user_id": other.id}]},
    }
    headers = {"Idempotency-Key": secrets.token_hex(8)}
    reply = site.call("POST", f"/api/v1/groups/{group_id}/expenses", payer, body, headers)
    assert reply.status == 201, reply.body


def test_the_unread_badge_goes_up_live(page: Page, site: Site) -> None:
    """Ana's badge shows her unread notice, then goes up without a reload when Bo adds an
    expense in their group; the feed names Bo."""
    ana, bo = site.register("Ana"), site.register("Bo")
    group = site.call(
        "POST",
        "/api/v1/groups",
        bo,
        {"name": "Flat", "currency": "EUR"},
        {"Idempotency-Key": secrets.token_hex(8)},
    )
    assert group.status == 201, group.body
    added = site.call(
        "POST",
        f"/api/v1/groups/{group.body['id']}/members",
        bo,
        {"user_id": ana.id},
        {"Idempotency-Key": secrets.token_hex(8)},
    )
    assert added.status == 201, added.body
    sign_in(page, ana)
    badge = page.locator("[data-unread-badge] .nav-badge")
    expect(badge).to_have_attribute("data-unread", "1")  # "Bo added you to Flat"
    expect(badge).to_be_visible()
    page.evaluate("window.stayed = true")
    add_expense(site, group.body["id"], bo, ana, "Groceries")
    expect(badge).to_have_attribute("data-unread", "2")
    expect(badge).to_contain_text("2")
    assert page.evaluate("window.stayed") is True  # the same page: no reload
    page.get_by_role("link", name=re.compile(r"^Notifications")).click()
    expect(page.locator("#feed")).to_contain_text("Bo added “Groceries”")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#feed")).to_contain_text("You have read everything")
    expect(badge).to_be_hidden()


def test_the_account_page_fits_a_phone(new_page: NewPage, site: Site) -> None:
    """On a 360 px phone the account page, with the Telegram link's QR code shown, scrolls
    only up and down."""
    page = new_page(viewport=PHONE)
    sign_in(page, site.register("Ana Maria Quintanilla-Bergström"))
    page.goto("/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    fits = "document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"
    assert page.evaluate(fits)
    page.get_by_role("button", name="Link Telegram").click()
    qr = page.locator("svg.qr-code")
    expect(qr).to_be_visible()
    expect(page.get_by_role("link", name="Open Telegram")).to_have_attribute(
        "href", re.compile(r"^https://t\.me/splitgo_bot\?start=")
    )
    box = qr.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate(fits)
