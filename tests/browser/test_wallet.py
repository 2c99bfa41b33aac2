"""The wallet and settling up in a real browser: a top-up through the wallet's form, the
sandbox checkout and back to the wallet showing the credited money; then a debt settled
from the wallet on a group's settle page, seen completed."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

from tests.browser.harness import LIVE_CONNECT_MS, Site, sign_in


def test_top_up_at_the_checkout_then_settle_a_debt_from_the_wallet(page: Page, site: Site) -> None:
    """A top-up made through the wallet's form is paid on the sandbox checkout (a wallet
    open meanwhile turns from pending to paid by itself), whose link comes back to the
    wallet showing it credited; then paying a group debt from the wallet
    on the settle page completes, leaves everyone settled and takes the money."""
    ana = site.register(name="Ana")
    bo = site.register(name="Bo")
    group = site.run(
        site.api.ok("POST", "/api/v1/groups", bo, {"name": "Lisbon", "currency": "EUR"}, 201)
    )
    path = f"/api/v1/groups/{group['id']}"
    site.run(site.api.ok("POST", f"{path}/members", bo, {"user_id": ana.id}, 201))
    expense = {
        "description": "Dinner",
        "amount": 3000,
        "currency": "EUR",
        "paid_by": bo.id,
        "split": {"mode": "equal", "shares": [{"user_id": ana.id}, {"user_id": bo.id}]},
    }
    site.run(site.api.ok("POST", f"{path}/expenses", bo, expense, 201))

    sign_in(page, ana)
    page.goto("/wallet")
    expect(page.locator("#wallet-balances")).to_contain_text("Your wallet is empty")
    page.locator("#topup-f-amount").fill("20.00")
    page.locator("#topup-f-currency").select_option("EUR")
    page.get_by_role("button", name="Top up").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Top up 20.00 EUR")
    # the wallet open in another tab meanwhile shows the top-up pending, then paid, live
    back = parse_qs(urlsplit(page.url).query)["return_to"][0]
    waiting = page.context.new_page()
    waiting.goto(back)
    expect(waiting.locator("#top-up-status")).to_contain_text("Pending")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(waiting.locator("#top-up-status")).to_contain_text("Topped up €20.00")
    expect(waiting.locator("#wallet-balances")).to_contain_text("€20.00")
    waiting.close()
    expect(page.get_by_role("heading", level=1)).to_have_text("Paid")
    page.get_by_role("link", name="Back to splitgo").click()

    expect(page).to_have_url(re.compile(r"/wallet\?top_up=[^&]+$"))
    expect(page.locator("#top-up-status")).to_contain_text("Topped up €20.00")
    expect(page.locator("#wallet-balances")).to_contain_text("€20.00")
    expect(page.locator("#statement")).to_contain_text("Wallet top-up")
    page.set_viewport_size({"width": 360, "height": 740})  # a phone: no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.goto(f"/groups/{group['id']}/settle")
    expect(page.locator("#settle-plan")).to_contain_text("You pay Bo €15.00")
    form = page.locator("#settle-form")
    expect(form).to_contain_text("€20.00")  # what the wallet has, beside the choice
    expect(form.get_by_label("Pay from wallet")).to_be_checked()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    form.get_by_role("button", name="Settle up").click()

    # recorded at once, or pending and followed live until payments answers
    expect(page.locator("#settle-plan")).to_contain_text("Everyone is settled up")
    expect(page.locator("main")).to_contain_text(re.compile(r"Settled\.|Paid Bo €15\.00"))
    wallet = site.call("GET", "/api/v1/wallet", ana)
    assert [(b["currency"], b["available"]) for b in wallet.body["balances"]] == [("EUR", 500)]
    balances = site.call("GET", f"{path}/balances", bo)
    assert all(line["net"] == 0 for line in balances.body["balances"])


def test_money_arriving_shows_on_an_open_wallet(page: Page, site: Site) -> None:
    """Money sent to someone whose wallet page is open appears there without a reload:
    the balance and the statement's newest line."""
    ana = site.register(name="Ana")
    bo = site.register(name="Bo")
    group = site.run(
        site.api.ok("POST", "/api/v1/groups", bo, {"name": "Flat", "currency": "EUR"}, 201)
    )
    site.run(
        site.api.ok("POST", f"/api/v1/groups/{group['id']}/members", bo, {"user_id": ana.id}, 201)
    )
    site.run(site.api.top_up(bo, 5000))

    sign_in(page, ana)
    page.goto("/wallet")
    expect(page.locator("#wallet-balances")).to_contain_text("Your wallet is empty")
    expect(page.locator(".wallet-page")).to_have_attribute(
        "data-live", "connected", timeout=LIVE_CONNECT_MS
    )
    transfer = {"to_user_id": ana.id, "amount": 1250, "currency": "EUR", "note": "Pizza"}
    site.run(site.api.ok("POST", "/api/v1/transfers", bo, transfer, 201))
    expect(page.locator("#wallet-balances")).to_contain_text("€12.50")
    expect(page.locator("#statement")).to_contain_text("Pizza")
