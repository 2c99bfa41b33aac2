"""Screenshots of the main pages, at a desktop's and a phone's size, made from a realistic
trip: three friends, a EUR group with expenses in several split modes, a settlement, a
few chat messages and a wallet top-up. Each page must render (its heading shown) and fit
its width (no sideways scrolling); its PNG goes to the test's temporary folder, or to
SPLITGO_SCREENSHOTS_DIR when that is set — how docs/screenshots is made again:

    SPLITGO_SCREENSHOTS_DIR=docs/screenshots make test PYTEST_ARGS=tests/browser/test_screenshots.py
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import NewPage
from tests.browser.harness import Site, sign_in
from tests.support.api import User

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
GROUP = "Lisbon trip"


@dataclass
class Trip:
    """What the test seeded: the three friends and the trip's group."""

    ana: User
    bo: User
    chen: User
    group: str


def verified(site: Site, name: str, email: str) -> User:
    """A new account whose address is verified with its mail's link."""
    user = site.register(name=name, email=email)
    token = site.last_link(user.email).split("token=")[1]
    reply = site.call("POST", "/api/v1/auth/verify-email", body={"token": token})
    assert reply.status == 204, reply.body
    return user


def day(days_ago: int) -> str:
    """The date `days_ago` days before today, as the API writes it."""
    return (datetime.date.today() - datetime.timedelta(days=days_ago)).isoformat()


def post(site: Site, path: str, user: User, body: dict[str, Any]) -> Any:
    """A POST to the JSON API that must answer 201; its body."""
    return site.run(site.api.ok("POST", path, user, body, 201))


def seed(site: Site) -> Trip:
    """Ana, Bo and Chen's trip to Lisbon: five expenses (equal, exact, shares, percent with
    two payers, adjustment), Bo settling part of his debt in cash, Ana's wallet topped up
    and some of it sent to Chen; and a second, smaller group for the list."""
    ana = verified(site, "Ana Costa", "ana.costa@example.com")
    bo = site.register(name="Bo Lindqvist", email="bo.lindqvist@example.com")
    chen = site.register(name="Chen Wei", email="chen.wei@example.com")
    group = post(site, "/api/v1/groups", ana, {"name": GROUP, "currency": "EUR"})["id"]
    path = f"/api/v1/groups/{group}"
    for friend in (bo, chen):
        post(site, f"{path}/members", ana, {"user_id": friend.id})

    def expense(by: User, what: str, amount: int, paid_by: Any, split: Any, **more: Any) -> None:
        body = {"description": what, "amount": amount, "currency": "EUR", "paid_by": paid_by}
        post(site, f"{path}/expenses", by, {**body, "split": split, **more})

    everyone = (ana, bo, chen)
    expense(
        ana, "Flat on Rua da Rosa", 42000, ana.id,
        {"mode": "equal", "shares": [{"user_id": u.id} for u in everyone]},
        date=day(6), category="rent",
    )  # fmt: skip
    expense(
        bo, "Dinner at Time Out Market", 8740, bo.id,
        {"mode": "exact", "shares": [
            {"user_id": ana.id, "amount": 3120},
            {"user_id": bo.id, "amount": 2890},
            {"user_id": chen.id, "amount": 2730},
        ]},
        date=day(5), category="food",
    )  # fmt: skip
    expense(
        chen, "Tram 28 and metro passes", 3600, chen.id,
        {"mode": "shares", "shares": [
            {"user_id": ana.id, "shares": 2},
            {"user_id": bo.id, "shares": 1},
            {"user_id": chen.id, "shares": 1},
        ]},
        date=day(4), category="transport",
    )  # fmt: skip
    expense(
        chen, "Sintra day tour", 13500,
        [{"user_id": ana.id, "amount": 7500}, {"user_id": chen.id, "amount": 6000}],
        {"mode": "percent", "shares": [
            {"user_id": ana.id, "percent": 40},
            {"user_id": bo.id, "percent": 30},
            {"user_id": chen.id, "percent": 30},
        ]},
        date=day(3), category="travel",
    )  # fmt: skip
    expense(
        bo, "Pastéis de Belém", 1260, bo.id,
        {"mode": "adjustment", "shares": [
            {"user_id": ana.id, "amount": 120},
            {"user_id": bo.id, "amount": 0},
            {"user_id": chen.id, "amount": -120},
        ]},
        date=day(2), category="food",
    )  # fmt: skip
    settlement = {"to_user_id": ana.id, "amount": 5000, "currency": "EUR", "method": "cash"}
    post(site, f"{path}/settlements", bo, settlement)

    site.run(site.api.top_up(ana, 15000))
    post(site, "/api/v1/transfers", ana, {
        "to_user_id": chen.id, "amount": 2000, "currency": "EUR", "note": "Fado tickets",
    })  # fmt: skip

    chat = post(site, "/api/v1/conversations", bo, {"group_id": group})["id"]
    for by, text in (
        (bo, "Paid 50 in cash for the Time Out dinner, the rest this weekend"),
        (chen, "@Ana Costa I put the Sintra tour in, 40/30/30 as we said"),
        (ana, "Perfect, thanks! Fado tickets are on me"),
    ):
        post(site, f"/api/v1/conversations/{chat}/messages", by, {"text": text})

    flat = post(site, "/api/v1/groups", chen, {"name": "Flat 3B", "currency": "EUR"})["id"]
    post(site, f"/api/v1/groups/{flat}/members", chen, {"user_id": ana.id})
    post(site, f"/api/v1/groups/{flat}/expenses", chen, {
        "description": "Internet, this month", "amount": 3999, "currency": "EUR",
        "paid_by": chen.id, "date": day(1), "category": "utilities",
        "split": {"mode": "equal", "shares": [{"user_id": chen.id}, {"user_id": ana.id}]},
    })  # fmt: skip
    return Trip(ana, bo, chen, group)


def folder(tmp_path: Path) -> Path:
    """Where the PNGs go: SPLITGO_SCREENSHOTS_DIR when set, else the test's own folder."""
    chosen = os.environ.get("SPLITGO_SCREENSHOTS_DIR", "").strip()
    where = Path(chosen) if chosen else tmp_path
    where.mkdir(parents=True, exist_ok=True)
    return where


def shoot(page: Page, where: Path, name: str, heading: str, *shown: Locator) -> Path:
    """The page rendered (its first heading says `heading`, each of `shown` is visible)
    and fits its width; then its PNG, `name`.png, in `where`."""
    expect(page.get_by_role("heading", level=1).first).to_have_text(heading)
    for part in shown:
        expect(part).to_be_visible()
    width = page.evaluate(
        "[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
    )
    assert width[0] <= width[1], f"{name}: {width[0]} px of content in {width[1]} px"
    shot = where / f"{name}.png"
    page.screenshot(path=shot, full_page=False, animations="disabled", caret="initial")
    return shot


def test_the_main_pages_render_and_fit_on_a_desktop_and_a_phone(
    new_page: NewPage, site: Site, tmp_path: Path
) -> None:
    """With a realistic trip seeded, the welcome page (signed out), home, the groups list,
    a group's expenses, the add-expense form with More open, balances, settle up, the
    group's chat, wallet, notifications, account and the two-factor setup (its QR code) each
    render their heading and content without sideways scrolling on a 1280 px desktop and a
    360 px phone, each saved as a PNG; and home in the dark scheme on a phone too."""
    trip = seed(site)
    where = folder(tmp_path)
    group = f"/groups/{trip.group}"
    made: list[Path] = []

    for size, viewport in SIZES.items():
        page = new_page(viewport=viewport, color_scheme="light")
        page.goto("/")
        made.append(
            shoot(page, where, f"welcome-{size}", "Share costs with friends. Settle up in seconds.")
        )
        sign_in(page, trip.ana)

        page.goto("/home")
        made.append(shoot(page, where, f"home-{size}", "Hello, Ana Costa", page.locator("#totals")))
        expect(page.locator("#people")).to_contain_text("Bo Lindqvist")

        page.goto("/groups")
        flat = page.get_by_role("link", name=re.compile(r"^Flat 3B"))
        made.append(shoot(page, where, f"groups-{size}", "Groups", flat))
        expect(page.get_by_role("link", name=re.compile(rf"^{GROUP}"))).to_be_visible()

        page.goto(group)
        region = page.locator("#expenses-region")
        made.append(shoot(page, where, f"group-{size}", GROUP, region))
        expect(region).to_contain_text("Sintra day tour")
        expect(region).to_contain_text("Pastéis de Belém")

        page.goto(f"{group}/expenses/new")
        expense_form = page.locator("form[data-expense-form]")
        expect(expense_form).to_have_attribute("data-preview", "ready")
        page.locator("details.more > summary").click()
        expect(page.locator("details.more")).to_have_attribute("open", "")
        page.locator("#f-description").fill("Fado night")
        page.locator("#f-amount").fill("64.50")
        page.locator("#f-amount").blur()
        # the split the "More" fold opened, rather than the fields above it
        page.locator("[data-split-summary]").evaluate("node => node.scrollIntoView()")
        made.append(shoot(page, where, f"add-expense-{size}", GROUP, expense_form))
        expect(expense_form).to_contain_text("Chen Wei")

        page.goto(f"{group}/balances")
        balances = page.locator("#balances")
        made.append(shoot(page, where, f"balances-{size}", GROUP, balances))
        expect(balances).to_contain_text("Bo Lindqvist")

        page.goto(f"{group}/settle")
        plan = page.locator("#settle-plan")
        made.append(shoot(page, where, f"settle-{size}", GROUP, plan))
        expect(plan).to_contain_text("Chen Wei")

        page.goto(f"{group}/chat")
        panel = page.locator("#chat")
        made.append(shoot(page, where, f"chat-{size}", GROUP, panel))
        expect(panel).to_contain_text("Fado tickets are on me")

        page.goto("/wallet")
        statement = page.locator("#statement")
        made.append(shoot(page, where, f"wallet-{size}", "Wallet", statement))
        expect(statement).to_contain_text("Chen Wei")
        expect(page.locator("#wallet-balances")).to_contain_text("€130.00")

        page.goto("/notifications")
        made.append(
            shoot(
                page, where, f"notifications-{size}", "Notifications", page.locator(".notice").first
            )
        )

        page.goto("/account")
        made.append(shoot(page, where, f"account-{size}", "Your account"))
        expect(page.locator("main")).to_contain_text("ana.costa@example.com")

        page.goto("/account/mfa")
        page.get_by_role("button", name="Set up").click()
        setup = page.locator("#totp-setup")
        made.append(shoot(page, where, f"two-factor-{size}", "Two-factor sign-in", setup))
        expect(setup.locator("svg.qr-code")).to_be_visible()

    dark = new_page(viewport=PHONE, color_scheme="dark")
    sign_in(dark, trip.ana)
    dark.goto("/home")
    made.append(shoot(dark, where, "home-dark-phone", "Hello, Ana Costa", dark.locator("#totals")))
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(part) for part in re.findall(r"\d+", background)[:3]]
    assert sum(channels) < 3 * 96, f"the dark scheme's background is {background}"

    assert len(made) == 25
    assert all(shot.stat().st_size > 5_000 for shot in made)
