"""Expenses in a real browser: every split mode through the expense form, each share
previewed as it is typed (the page's own arithmetic, with the left-over cents named)
before the form is sent, then checked against the JSON API; and a refused split shown at
its inputs, tied to them by aria-describedby."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.harness import Site, sign_in
from tests.support.api import User


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


def test_every_split_mode_previewed_then_added(page: Page, site: Site) -> None:
    """Equal with one person unticked, exact, percent, shares and adjustment: the preview
    shows each share (and where the left-over cents go) as it is typed, and the expense
    the form adds has exactly those shares; a split that does not add up is refused at
    its inputs, which name the error by aria-describedby, what was typed kept; on a phone
    nothing scrolls sideways."""
    ana, bo, cy = verified(site, "Ana"), verified(site, "Bo"), verified(site, "Cy")
    made = site.call(
        "POST", "/api/v1/groups", ana, {"name": "Lisbon", "currency": "EUR"},
        headers={"Idempotency-Key": "expenses-browser-group"},
    )  # fmt: skip
    assert made.status == 201, made.body
    group = made.body["id"]
    for member in (bo, cy):
        added = site.call("POST", f"/api/v1/groups/{group}/members", ana, {"user_id": member.id})
        assert added.status == 201, added.body
    sign_in(page, ana)

    def open_form() -> dict[str, str]:
        page.goto(f"/groups/{group}/expenses/new")
        expect(page.locator("form[data-expense-form]")).to_have_attribute("data-preview", "ready")
        rows = {}
        for user in (ana, bo, cy):
            box = page.locator(f'input[type="checkbox"][value="{user.id}"]')
            name = box.get_attribute("name") or ""
            rows[user.id] = "#f-" + name.removesuffix(".user_id").replace(".", "-")
        page.locator("details.more > summary").click()
        return rows

    def share(row: str, minor: str) -> None:
        line = page.locator(f"{row}-user_id").locator("xpath=ancestor::div[@data-row][1]")
        expect(line.locator("[data-share]")).to_have_attribute("data-minor", minor)

    def add_and_check(expected: dict[str, int]) -> None:
        page.get_by_role("button", name="Add expense").click()
        expect(page).to_have_url(re.compile(rf"/groups/{group}$"))
        expect(page.get_by_role("status").first).to_contain_text("Expense added.")
        got = newest(site, group, ana)
        assert {line["user_id"]: line["amount"] for line in got["shares"]} == expected

    note = page.locator("[data-split-note]")

    rows = open_form()
    page.locator("#f-description").fill("Bread")
    page.locator("#f-amount").fill("10.01")
    share(rows[bo.id], "334")
    page.locator(f"{rows[bo.id]}-user_id").uncheck()
    share(rows[ana.id], "501")
    share(rows[cy.id], "500")
    share(rows[bo.id], "")
    expect(note).to_have_text("1 cent goes to you.")
    add_and_check({ana.id: 501, cy.id: 500})

    rows = open_form()
    page.locator("#f-description").fill("Dinner")
    page.locator("#f-amount").fill("90")
    page.locator("#f-split-mode").select_option("exact")
    expect(page.locator(f"{rows[ana.id]}-percent")).to_be_hidden()
    for user, typed in ((ana, "20"), (bo, "30.00"), (cy, "35")):
        page.locator(f"{rows[user.id]}-amount").fill(typed)
    expect(note).to_have_text("Shares add up to €85.00; the expense is €90.00.")
    page.locator(f"{rows[cy.id]}-amount").fill("40")
    share(rows[cy.id], "4000")
    expect(page.locator("[data-split-summary]")).to_contain_text("Bo €30.00")
    add_and_check({ana.id: 2000, bo.id: 3000, cy.id: 4000})

    rows = open_form()
    page.locator("#f-description").fill("Museum")
    page.locator("#f-amount").fill("99.99")
    page.locator("#f-split-mode").select_option("percent")
    for user, typed in ((ana, "50"), (bo, "25"), (cy, "25")):
        page.locator(f"{rows[user.id]}-percent").fill(typed)
    share(rows[ana.id], "4999")
    share(rows[bo.id], "2500")
    expect(note).to_have_text("2 cents go to Bo and Cy.")
    add_and_check({ana.id: 4999, bo.id: 2500, cy.id: 2500})

    rows = open_form()
    page.locator("#f-description").fill("Boat")
    page.locator("#f-amount").fill("60")
    page.locator("#f-split-mode").select_option("shares")
    for user, typed in ((ana, "1"), (bo, "2"), (cy, "3")):
        page.locator(f"{rows[user.id]}-shares").fill(typed)
    share(rows[cy.id], "3000")
    add_and_check({ana.id: 1000, bo.id: 2000, cy.id: 3000})

    rows = open_form()
    page.locator("#f-description").fill("Taxi")
    page.locator("#f-amount").fill("30")
    page.locator("#f-split-mode").select_option("adjustment")
    page.locator(f"{rows[ana.id]}-amount").fill("-1.50")
    page.locator(f"{rows[cy.id]}-amount").fill("6")
    share(rows[ana.id], "700")
    share(rows[bo.id], "850")
    share(rows[cy.id], "1450")
    add_and_check({ana.id: 700, bo.id: 850, cy.id: 1450})

    rows = open_form()
    page.locator("#f-description").fill("Concert")
    page.locator("#f-amount").fill("40")
    page.locator("#f-split-mode").select_option("percent")
    page.locator(f"{rows[ana.id]}-percent").fill("50")
    page.locator(f"{rows[bo.id]}-percent").fill("40")
    expect(note).to_have_text("Percentages add up to 90 %; make them 100 %.")
    page.get_by_role("button", name="Add expense").click()
    error = page.locator("#f-split-shares-error")
    expect(error).to_contain_text("Percentages add up to 90 %")
    kept = page.locator(f"{rows[bo.id]}-percent")
    expect(kept).to_have_value("40")
    expect(kept).to_be_visible()
    described = (kept.get_attribute("aria-describedby") or "").split()
    assert "f-split-shares-error" in described
    assert newest(site, group, ana)["description"] == "Taxi"  # nothing was added

    page.set_viewport_size({"width": 360, "height": 740})  # a phone: nothing sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.goto(f"/groups/{group}")
    expect(page.locator("#expenses-region")).to_contain_text("You paid · you lent")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
