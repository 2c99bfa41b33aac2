"""The API docs page and the sandbox checkout in a real browser: the docs are rendered on
the server from the OpenAPI document under a strict CSP, and a top-up is paid (or declined)
by pressing the checkout's buttons, which then give way to the result and a way back."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tests.browser.conftest import NewPage
from tests.browser.harness import Site, Watch
from tests.support.api import User


def start_top_up(site: Site, user: User, amount: int) -> dict[str, Any]:
    """A EUR top-up started through the JSON API; its checkout is not decided yet."""
    created: dict[str, Any] = site.run(
        site.api.ok(
            "POST", "/api/v1/wallet/top-ups", user, {"amount": amount, "currency": "EUR"}, 201
        )
    )
    assert created["status"] == "pending"
    return created


def available(site: Site, user: User) -> int:
    """The user's available EUR, from GET /api/v1/wallet."""
    wallet = site.call("GET", "/api/v1/wallet", user)
    assert wallet.status == 200, wallet.body
    return sum(b["available"] for b in wallet.body["balances"] if b["currency"] == "EUR")


def top_up_status(site: Site, user: User, top_up: dict[str, Any]) -> str:
    reply = site.call("GET", f"/api/v1/wallet/top-ups/{top_up['id']}", user)
    assert reply.status == 200, reply.body
    return str(reply.body["status"])


def test_the_docs_page_shows_every_path_with_nothing_from_elsewhere(page: Page, site: Site) -> None:
    """/api/docs shows every operation of the OpenAPI document, styled by our own stylesheet,
    under a CSP without 'unsafe-inline', and every request it makes goes to the node."""
    spec = site.call("GET", "/api/openapi.json").body
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto("/api/docs")
    assert response is not None
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # no script may run at all

    shown = page.locator("section.operation h3").all_inner_texts()
    expected = [
        f"{method.upper()} {path}" for path, methods in spec["paths"].items() for method in methods
    ]
    assert sorted(" ".join(text.split()) for text in shown) == sorted(expected)

    expense = page.locator("#op-add_expense")
    expect(expense.locator("h3")).to_have_text("POST /api/v1/groups/{id}/expenses")
    expect(expense.get_by_role("heading", name="Request body")).to_be_visible()
    expect(expense.get_by_role("cell", name="paid_by", exact=True).first).to_be_visible()
    expect(expense.get_by_role("link", name="ExpenseBody")).to_have_attribute(
        "href", "#schema-ExpenseBody"
    )
    expect(page.locator("#schema-ExpenseBody")).to_be_attached()
    # our stylesheet applied: the method badges are rounded
    expect(page.locator(".method").first).to_have_css("border-radius", "8px")

    node = urlsplit(site.url).netloc
    assert requested, "the page loaded nothing"
    assert {urlsplit(url).netloc for url in requested} == {node}
    assert any(urlsplit(url).path == "/api/docs.css" for url in requested)


def test_the_docs_page_fits_a_phone(new_page: NewPage) -> None:
    """On a 360 px wide screen the docs page does not scroll sideways: wide tables scroll in
    their own box."""
    phone = new_page(viewport={"width": 360, "height": 740})
    phone.goto("/api/docs")
    expect(phone.locator("#op-add_expense")).to_be_attached()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360


def test_paying_at_the_sandbox_checkout_shows_paid_and_credits_the_wallet(
    page: Page, site: Site
) -> None:
    """Pressing Pay on the checkout page shows "Paid" with no buttons and a link back to the
    wallet, the top-up succeeds, and the wallet is credited through the API."""
    user = site.register(name="Payer")
    top_up = start_top_up(site, user, 2500)

    response = page.goto(top_up["checkout_url"])
    assert response is not None
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", level=1)).to_have_text("Top up 25.00 EUR")
    page.get_by_role("button", name="Pay", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Paid")
    expect(page.get_by_role("status")).to_contain_text("25.00 EUR")
    expect(page.get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("link", name="Back to your wallet")).to_have_attribute(
        "href", "/wallet"
    )
    assert top_up_status(site, user, top_up) == "succeeded"
    assert available(site, user) == 2500

    # Back comes to the page again from the node (never from a cache): still no button
    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Paid")
    expect(page.get_by_role("button")).to_have_count(0)


def test_declining_shows_declined_and_credits_nothing(page: Page, site: Site) -> None:
    """Pressing Decline shows "Declined" with no buttons, fails the top-up, and the wallet stays
    as it was."""
    user = site.register(name="Decliner")
    top_up = start_top_up(site, user, 700)
    page.goto(top_up["checkout_url"] + "?return_to=/groups")
    page.get_by_role("button", name="Decline").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Declined")
    expect(page.get_by_role("status")).to_contain_text("nothing was charged")
    expect(page.get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("link", name="Back to splitgo")).to_have_attribute("href", "/groups")
    assert top_up_status(site, user, top_up) == "failed"
    assert available(site, user) == 0


def test_a_second_decision_is_refused_and_says_so(
    page: Page, new_page: NewPage, site: Site, watch: Watch
) -> None:
    """With the checkout open in two tabs, Decline pressed in the second after Pay in the first
    answers 409 with the result and a notice that nothing changed, and the wallet keeps the
    payment; a program pressing again gets the 409 as a problem with its code."""
    user = site.register(name="Two tabs")
    top_up = start_top_up(site, user, 1200)
    other = new_page()
    page.goto(top_up["checkout_url"])
    other.goto(top_up["checkout_url"])

    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Paid")

    # Chromium logs a 4xx document as a console error: this one is the point of the test
    watch.allow_console_error(r"status of 409")
    with other.expect_response(lambda r: r.request.method == "POST") as pressed:
        other.get_by_role("button", name="Decline").click()
    assert pressed.value.status == 409
    expect(other.get_by_role("heading", level=1)).to_have_text("Paid")
    expect(other.get_by_role("alert")).to_have_text(
        "This checkout was already paid: pressing Decline changed nothing."
    )
    expect(other.get_by_role("button")).to_have_count(0)

    checkout = urlsplit(top_up["checkout_url"]).path
    again = site.call("POST", f"{checkout}/pay")  # a program: the problem, not the page
    assert (again.status, again.body["code"]) == (409, "checkout_decided")
    assert top_up_status(site, user, top_up) == "succeeded"
    assert available(site, user) == 1200
