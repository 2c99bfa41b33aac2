"""Passkeys in a real browser, with Chromium's virtual authenticator (over the DevTools
protocol) standing in for a phone's screen lock: a person signed in with a password adds a
passkey on /account/passkeys, signs out, and signs in with the passkey alone; a deleted one
signs nobody in; without JavaScript the sign-in page says passkeys need it.

WebAuthn takes no IP address as a relying party, so this module's node is reached at
http://localhost:<port>, its public URL (a secure context, as http://localhost is)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import CDPSession, Page, expect

from tests.browser.conftest import NewPage
from tests.browser.harness import BackgroundLoop, Site, Watch, sign_in, start_site, stop_site
from tests.support.api import PASSWORD
from tests.support.node import free_port


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    background: BackgroundLoop,
    site_env: dict[str, str],
) -> Iterator[Site]:
    """The module's node at http://localhost:<port>, which is also its public URL."""
    port = free_port()
    env = {**site_env, "SPLITGO_PUBLIC_URL": f"http://localhost:{port}"}
    folder = tmp_path_factory.mktemp("browser-node")
    running = background.run(start_site(folder, background, env, port=port, host="localhost"))
    yield running
    background.run(stop_site(running))


def virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A platform authenticator for the page's tab that holds passkeys and verifies the
    person at once (as a fingerprint would)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, str(added["authenticatorId"])


def credentials(cdp: CDPSession, authenticator: str) -> list[dict[str, Any]]:
    """The passkeys the virtual authenticator holds."""
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    found: list[dict[str, Any]] = held["credentials"]
    return found


def sign_out(page: Page) -> None:
    page.locator("form[action='/sign-out'] button").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_a_passkey_added_in_the_account_signs_in_without_a_password(
    page: Page, site: Site, watch: Watch
) -> None:
    """Pat adds a passkey named Laptop, renames it, signs out and back in with it alone;
    once deleted, the same passkey is refused in words."""
    cdp, authenticator = virtual_authenticator(page)
    pat = site.register("Pat")
    sign_in(page, pat)
    page.goto("/account")
    page.get_by_role("link", name="Passkeys").click()
    expect(page).to_have_url(re.compile(r"/account/passkeys$"))
    page.get_by_label("Name of the passkey").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Your passkey is added")).to_be_visible()
    listed = page.locator("#passkey-list .row")
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("Laptop")
    expect(listed.first).to_contain_text("not used yet")
    held = credentials(cdp, authenticator)
    assert len(held) == 1
    assert held[0]["isResidentCredential"] is True
    assert held[0]["rpId"] == "localhost"

    listed.first.get_by_text("Rename").click()
    listed.first.get_by_label("New name").fill("Work laptop")
    listed.first.get_by_role("button", name="Save name").click()
    expect(page.get_by_text("Your passkey is renamed")).to_be_visible()
    expect(page.locator("#passkey-list .row").first).to_contain_text("Work laptop")

    sign_out(page)
    page.goto("/sign-in")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    page.goto("/account/passkeys")
    expect(page.locator("#passkey-list .row").first).to_contain_text("last used")

    page.locator("#passkey-list .row").first.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("That passkey no longer signs you in")).to_be_visible()
    expect(page.get_by_text("No passkeys yet")).to_be_visible()
    sign_out(page)
    # the authenticator still offers it; the site no longer knows it (a 401, in words)
    watch.allow_console_error(r"status of 401")
    page.goto("/sign-in")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("not registered here")
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_without_javascript_the_sign_in_page_says_passkeys_need_it(
    new_page: NewPage, site: Site
) -> None:
    """With JavaScript off, no passkey button shows, and the page says why; the password
    form is there as always."""
    page = new_page(java_script_enabled=False)
    page.goto("/sign-in")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
    expect(page.get_by_text("Signing in with a passkey needs JavaScript")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()


def test_the_passkeys_page_fits_a_phone_and_says_what_it_needs_without_javascript(
    new_page: NewPage, site: Site
) -> None:
    """On a 360 px phone with JavaScript off, the passkeys page has no sideways scroll and
    says that adding one needs JavaScript."""
    user = site.register("Kim")
    page = new_page(viewport={"width": 360, "height": 740}, java_script_enabled=False)
    page.goto("/sign-in")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto("/account/passkeys")
    expect(page.get_by_text("Adding a passkey needs JavaScript")).to_be_visible()
    expect(page.get_by_role("button", name="Add a passkey")).to_be_hidden()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
