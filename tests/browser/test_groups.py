"""Groups in a real browser: one person makes a group and invites another by email, who
accepts on the invitation's page; an expense the first adds shows on the second's open
group page without a reload (the live WebSocket and the server's fragments). And the same
making and inviting with JavaScript off."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import NewPage
from tests.browser.harness import LIVE_CONNECT_MS, Site, sign_in
from tests.support.api import User
from tests.support.smtp import body_text


def verified(site: Site, name: str) -> User:
    """A new account whose address is verified with its mail's link."""
    user = site.register(name=name)
    token = site.last_link(user.email).split("token=")[1]
    reply = site.call("POST", "/api/v1/auth/verify-email", body={"token": token})
    assert reply.status == 204, reply.body
    return user


def create_group(page: Page, name: str) -> str:
    """A EUR group made through the /groups form; its id."""
    page.goto("/groups")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Currency").select_option("EUR")
    page.get_by_role("button", name="Create group").click()
    expect(page).to_have_url(re.compile(r"/groups/[0-9a-f-]+$"))
    found = re.search(r"/groups/([0-9a-f-]+)$", page.url)
    assert found is not None
    return found[1]


def invite(page: Page, group: str, email: str) -> None:
    """Invite `email` from the group's Members tab; the page confirms it."""
    page.goto(f"/groups/{group}/members")
    page.get_by_label("Invite by email").fill(email)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status").first).to_contain_text("The invitation is sent.")
    expect(page.locator("#invitations")).to_contain_text(email)


def invitation_path(site: Site, email: str) -> str:
    """The /invites/{iid} path of the invitation mailed to `email`."""
    mail = site.wait_for_mail(email, count=2)  # the verification mail came first
    found = re.search(r"https?://\S+(/invites/[\w.-]+)", body_text(mail))
    assert found is not None, body_text(mail)
    return found[1]


def test_an_invitee_accepts_and_sees_an_expense_arrive_live(
    page: Page, new_page: NewPage, site: Site
) -> None:
    """Ana makes a group and invites Bo; Bo accepts on the mail's page and lands in the
    group; when Ana adds an expense, Bo's open page shows it and his new balance without
    reloading (the same document all along)."""
    ana = verified(site, "Ana")
    bo = verified(site, "Bo")
    sign_in(page, ana)
    group = create_group(page, "Lisbon")
    expect(page.locator(".group-balance")).to_contain_text("All settled")
    invite(page, group, bo.email)

    theirs = new_page()
    sign_in(theirs, bo)
    theirs.goto(invitation_path(site, bo.email))
    expect(theirs.get_by_role("heading", name="Join Lisbon?")).to_be_visible()
    expect(theirs.locator("#invitation")).to_contain_text("Ana")
    theirs.get_by_role("button", name="Accept and join").click()
    expect(theirs).to_have_url(re.compile(rf"/groups/{group}$"))
    expect(theirs.get_by_role("status").first).to_contain_text("Welcome to the group.")
    expect(theirs.locator(".group-page")).to_have_attribute(
        "data-live", "connected", timeout=LIVE_CONNECT_MS
    )
    theirs.evaluate("window.sameDocument = true")

    expense = {
        "description": "Fish dinner",
        "amount": 4000,
        "currency": "EUR",
        "paid_by": ana.id,
        "split": {"mode": "equal", "shares": [{"user_id": ana.id}, {"user_id": bo.id}]},
    }
    site.run(site.api.ok("POST", f"/api/v1/groups/{group}/expenses", ana, expense, 201))

    expect(theirs.locator(".group-balance")).to_contain_text("You owe", timeout=10_000)
    expect(theirs.locator(".group-balance")).to_contain_text("€20.00")
    expect(theirs.locator("#expenses-region")).to_contain_text("Fish dinner")
    expect(theirs.locator("[data-live-announce]")).to_contain_text("Updated")
    assert theirs.evaluate("window.sameDocument") is True

    theirs.set_viewport_size({"width": 360, "height": 740})
    theirs.goto(f"/groups/{group}/members")
    expect(theirs.locator("#members")).to_contain_text("Ana")
    assert theirs.evaluate("document.documentElement.scrollWidth") <= 360


def test_create_and_invite_without_javascript(new_page: NewPage, site: Site) -> None:
    """With JavaScript off, making a group and inviting by email work through plain forms,
    and deleting asks on a confirmation page of its own."""
    ana = verified(site, "Ana Plain")
    page = new_page(java_script_enabled=False)
    sign_in(page, ana)
    group = create_group(page, "Flat 3B")
    invite(page, group, "cleo@example.com")
    page.get_by_role("link", name="Delete group…").click()
    expect(page).to_have_url(re.compile(rf"/groups/{group}/delete$"))
    page.get_by_role("button", name="Delete group").click()
    expect(page).to_have_url(re.compile(r"/groups$"))
    expect(page.get_by_role("status").first).to_contain_text("The group is deleted.")
