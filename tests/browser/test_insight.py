"""The Insight tab in a real browser: its inline SVG charts render (bars by category,
columns by month) with their tables, in light and dark, with no console error, and the page
fits a 360 px phone; the advanced search fits it too."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import NewPage
from tests.browser.harness import Site, Watch, sign_in
from tests.support.api import User

PHONE = {"width": 360, "height": 740}


def verified(site: Site, name: str) -> User:
    """A new account whose address is verified with its mail's link."""
    user = site.register(name=name)
    token = site.last_link(user.email).split("token=")[1]
    reply = site.call("POST", "/api/v1/auth/verify-email", body={"token": token})
    assert reply.status == 204, reply.body
    return user


def group_with_spending(site: Site, ana: User, bo: User) -> str:
    """A EUR group of Ana and Bo with three expenses in two categories and two months."""
    made = site.call(
        "POST", "/api/v1/groups", ana, {"name": "Lisbon", "currency": "EUR"},
        headers={"Idempotency-Key": "insight-browser-group"},
    )  # fmt: skip
    assert made.status == 201, made.body
    group: str = made.body["id"]
    added = site.call("POST", f"/api/v1/groups/{group}/members", ana, {"user_id": bo.id})
    assert added.status == 201, added.body
    for description, amount, category, day in (
        ("Dinner at Lupo", 9000, "food", "2026-01-15"),
        ("A long description of a bus ticket to the coast", 2400, "transport", "2026-02-02"),
        ("Lunch", 3000, "food", "2026-02-10"),
    ):  # fmt: skip
        body = {
            "description": description,
            "amount": amount,
            "currency": "EUR",
            "paid_by": ana.id,
            "split": {"mode": "equal", "shares": [{"user_id": ana.id}, {"user_id": bo.id}]},
            "date": day,
            "category": category,
        }
        reply = site.call("POST", f"/api/v1/groups/{group}/expenses", ana, body)
        assert reply.status == 201, reply.body
    return group


def no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_insight_charts_render_and_fit_a_phone(
    page: Page, site: Site, new_page: NewPage, watch: Watch
) -> None:
    """The Insight tab shows two SVG charts drawn to scale with their tables (the
    numbers the same), "Just my share" halves them, the dark scheme gives the bars its
    own colours, no page logs an error, and on a 360 px phone nothing scrolls sideways."""
    ana, bo = verified(site, "Ana"), verified(site, "Bo")
    group = group_with_spending(site, ana, bo)
    sign_in(page, ana)
    page.goto(f"/groups/{group}")
    page.get_by_role("link", name="Insight").click()
    expect(page).to_have_url(f"{site.url}/groups/{group}/insight")
    bars = page.locator("svg.chart-bars")
    months = page.locator("svg.chart-months")
    expect(bars).to_have_count(1)
    expect(months).to_have_count(1)
    expect(page.get_by_role("img", name="Spending by category, EUR")).to_be_visible()
    expect(page.get_by_role("img", name="Spending by month, EUR")).to_be_visible()
    # the bars are drawn to scale and coloured by the stylesheet, not by attributes
    assert bars.locator("rect").count() == 2
    widths = [float(rect.get_attribute("width") or 0) for rect in bars.locator("rect").all()]
    assert widths[0] > widths[1] > 0
    light = bars.locator("rect").first.evaluate("rect => getComputedStyle(rect).fill")
    assert light == "rgb(15, 118, 110)"
    box = bars.bounding_box()
    assert box is not None
    assert box["width"] > 200
    assert box["height"] > 50
    table = page.locator("table.chart-table").first
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first).to_contain_text("Food")
    expect(table.locator("tbody tr").first).to_contain_text("€120.00")
    expect(page.locator("table.chart-table").nth(1).locator("tbody tr")).to_have_count(2)

    page.get_by_role("link", name="Just my share").click()
    expect(page.get_by_role("img", name="Your share by category, EUR")).to_be_visible()
    expect(page.locator("table.chart-table").first.locator("tbody tr").first).to_contain_text(
        "€60.00"
    )

    phone = new_page(viewport=PHONE, color_scheme="dark")
    sign_in(phone, ana)
    phone.goto(f"/groups/{group}/insight")
    expect(phone.locator("svg.chart-bars")).to_have_count(1)
    dark = phone.locator("svg.chart-bars rect").first.evaluate(
        "rect => getComputedStyle(rect).fill"
    )
    assert dark == "rgb(45, 212, 191)"
    no_sideways_scroll(phone)
    chart = phone.locator("svg.chart-bars").bounding_box()
    assert chart is not None
    assert chart["x"] + chart["width"] <= PHONE["width"]
    phone.goto(f"/groups/{group}/search?text=dinner")
    expect(phone.locator("[data-search-results] li")).to_have_count(1)
    no_sideways_scroll(phone)
    phone.goto(f"/groups/{group}/search?date_from=2026-02-30")
    expect(phone.locator("#f-date_from-error")).to_be_visible()
    no_sideways_scroll(phone)
    watch.settle()
    assert watch.problems() == []
