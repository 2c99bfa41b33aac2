"""Issue 17's expense form in a real browser, on a phone's width: an itemized bill whose
shares are previewed as the items, tax and tip are typed (a row added in place), then
added with exactly the previewed shares; the rate fields shown only for another
currency than the group's, the end of a series only when it repeats; no console errors
and nothing scrolling sideways."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.harness import BackgroundLoop, Site, sign_in
from tests.support.api import User
from tests.support.fake_rates import FakeRates

PHONE: ViewportSize = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def ecb(background: BackgroundLoop) -> Iterator[FakeRates]:
    """A fake ECB, so the node never reaches for the real one."""
    fake = FakeRates()
    fake.set_day("2024-05-10", {"USD": "1.0772"})
    background.run(fake.start())
    yield fake
    background.run(fake.stop())


@pytest.fixture(scope="module")
def site_env(ecb: FakeRates) -> dict[str, str]:
    return {"SPLITGO_RATES_URL": ecb.url}


def verified(site: Site, name: str) -> User:
    """A new account whose address is verified with its mail's link."""
    user = site.register(name=name)
    token = site.last_link(user.email).split("token=")[1]
    reply = site.call("POST", "/api/v1/auth/verify-email", body={"token": token})
    assert reply.status == 204, reply.body
    return user


def newest(site: Site, group: str, user: User) -> dict[str, Any]:
    reply = site.call("GET", f"/api/v1/groups/{group}/expenses", user)
    assert reply.status == 200, reply.body
    expense: dict[str, Any] = reply.body["items"][0]
    return expense


def test_an_itemized_bill_previewed_then_added_on_a_phone(page: Page, site: Site) -> None:
    """Wine 30.00 for Ana and Bo, pizza 20.00 for everyone, tax 5.00, tip 7.01: the
    preview shows 26.88 / 26.87 / 8.26 as it is typed; a row added in place (bread 3.00)
    joins the preview; the expense added has exactly the previewed shares. Choosing USD
    shows the rate fields, choosing a repeat shows its end; at 360 px nothing scrolls
    sideways."""
    ana, bo, cy = verified(site, "Ana"), verified(site, "Bo"), verified(site, "Cy")
    made = site.call(
        "POST", "/api/v1/groups", ana, {"name": "Pizzeria", "currency": "EUR"},
        headers={"Idempotency-Key": "currencies-browser-group"},
    )  # fmt: skip
    assert made.status == 201, made.body
    group = made.body["id"]
    for member in (bo, cy):
        added = site.call("POST", f"/api/v1/groups/{group}/members", ana, {"user_id": member.id})
        assert added.status == 201, added.body
    page.set_viewport_size(PHONE)
    sign_in(page, ana)
    page.goto(f"/groups/{group}/expenses/new")
    form = page.locator("form[data-expense-form]")
    expect(form).to_have_attribute("data-preview", "ready")

    conversion = page.locator("[data-conversion]")
    expect(conversion).to_be_hidden()
    page.locator("#f-currency").select_option("USD")
    expect(conversion).to_be_visible()
    expect(page.locator('label[for="f-rate"]')).to_contain_text("Rate: 1 USD = ? EUR")
    page.locator("#f-currency").select_option("EUR")
    expect(conversion).to_be_hidden()

    page.locator("details.more > summary").click()
    ends = page.locator("[data-ends]")
    expect(ends).to_be_hidden()
    page.locator("#f-recurrence").select_option("monthly")
    expect(ends).to_be_visible()
    page.locator("#f-recurrence").select_option("")
    expect(ends).to_be_hidden()

    page.locator("#f-description").fill("Dinner")
    page.locator("#f-split-mode").select_option("items")
    expect(page.locator(".split-rows")).to_be_hidden()
    expect(page.locator("[data-items]")).to_be_visible()

    def tick(row: int, user: User) -> None:
        page.locator(f'input[name="items.{row}.shared_by.{user.id}"]').check()

    def share(user: User, minor: str) -> None:
        line = page.locator(f'[data-items-shares] li[data-user="{user.id}"]')
        expect(line).to_have_attribute("data-minor", minor)

    page.locator("#f-items-0-description").fill("Wine")
    page.locator("#f-items-0-amount").fill("30.00")
    tick(0, ana)
    tick(0, bo)
    page.locator("#f-items-1-description").fill("Pizza")
    page.locator("#f-items-1-amount").fill("20")
    page.locator("#f-tax").fill("5.00")
    page.locator("#f-tip").fill("7.01")
    share(ana, "2688")
    share(bo, "2687")
    share(cy, "826")
    first = page.locator('[data-item-row][data-index="0"] [data-item-total]')
    expect(first).to_have_attribute("data-minor", "3721")
    note = page.locator("[data-items-note]")
    expect(note).to_have_text("The items, tax and tip make €62.01.")

    rows = page.locator("[data-item-row]")
    count = rows.count()
    page.get_by_role("link", name="More item rows").click()
    expect(rows).to_have_count(count + 1)
    added_row = page.locator(f"#f-items-{count}-description")
    expect(added_row).to_be_focused()
    added_row.fill("Bread")
    page.locator(f"#f-items-{count}-amount").fill("3")
    expect(note).to_have_text("The items, tax and tip make €65.01.")
    previewed = {
        user.id: page.locator(f'[data-items-shares] li[data-user="{user.id}"]').get_attribute(
            "data-minor"
        )
        for user in (ana, bo, cy)
    }
    assert sum(int(value or 0) for value in previewed.values()) == 6501
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("button", name="Add expense").click()
    expect(page).to_have_url(re.compile(rf"/groups/{group}$"))
    expect(page.get_by_role("status").first).to_contain_text("Expense added.")
    got = newest(site, group, ana)
    assert got["split_mode"] == "items"
    assert {line["user_id"]: str(line["amount"]) for line in got["shares"]} == previewed

    page.goto(f"/groups/{group}/expenses/{got['id']}")
    expect(page.locator("#items")).to_contain_text("Bread")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
