"""Two-factor sign-in in a real browser: set up an authenticator app from the account page
(the QR code drawn on the page, the key in text), save the recovery codes, sign out, and
sign in again with a code pyotp computes from the key the page showed; then a recovery
code works once. The node requires it of admins (SPLITGO_MFA_REQUIRED_FOR_ADMINS): the
console is refused to an admin until they set it up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import JWT_KEYS, OPS_TOKEN, BackgroundLoop, Site, sign_in
from tests.support.api import PASSWORD, User
from tests.support.node import PROJECT_ROOT
from tests.support.postgres import fresh_database

ADMIN = "mfa-admin@example.com"


@pytest.fixture(scope="module")
def database(background: BackgroundLoop) -> Iterator[str]:
    """A database of this module's own, so `run.py admin create` reaches the node's."""
    made = fresh_database(schema=True)
    url = background.run(made.__aenter__())
    yield url
    background.run(made.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def site_env(database: str) -> dict[str, str]:
    return {"SPLITGO_DATABASE_URL": database, "SPLITGO_MFA_REQUIRED_FOR_ADMINS": "1"}


@pytest.fixture(scope="module")
def admin(site: Site, site_env: dict[str, str]) -> User:
    """A person made an admin by `run.py admin create`, as an operator does."""
    user = site.register("Root Admin", ADMIN)
    env = {**os.environ, **site_env, "SPLITGO_JWT_KEYS": JWT_KEYS, "SPLITGO_OPS_TOKEN": OPS_TOKEN}
    result = subprocess.run(
        [
            sys.executable, "run.py", "admin", "create", "--email", ADMIN,
            "--data-dir", str(site.node.folder / "data"),
        ],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return user


def set_up(page: Page) -> tuple[pyotp.TOTP, list[str]]:
    """Turn TOTP on from the account page: the app (pyotp) and the recovery codes."""
    page.goto("/account")
    page.get_by_role("link", name="Two-factor sign-in").click()
    expect(page).to_have_url(re.compile(r"/account/mfa$"))
    page.get_by_role("button", name="Set up").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    codes = page.get_by_role("list", name="Recovery codes").locator("code").all_inner_texts()
    assert len(codes) == 10
    return totp, codes


def sign_in_with_password(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page: Page) -> None:
    page.goto("/account")
    page.locator("li.session", has_text="This browser").get_by_role("button").click()
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_set_up_then_sign_in_with_a_code(page: Page, site: Site) -> None:
    """The account page leads to the setup; a code from the shown key turns it on and shows
    ten recovery codes; after signing out, the password asks for a code, a wrong one is
    refused at the field, the right one signs in, and a recovery code signs in once."""
    ana = site.register("Ana")
    sign_in(page, ana)
    page.goto("/account")
    page.get_by_role("link", name="Two-factor sign-in").click()
    expect(page).to_have_url(re.compile(r"/account/mfa$"))
    page.get_by_role("button", name="Set up").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    totp = pyotp.TOTP(secret)

    page.get_by_label("Code from the app").fill("12")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("6-digit code")
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    codes = page.get_by_role("list", name="Recovery codes").locator("code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator("#totp-on")).to_contain_text("10 recovery codes left")

    sign_out(page)
    sign_in_with_password(page, ana.email)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    assert "mfa_token" not in page.url
    right = totp.at(time.time() + 30)  # the next step's: later than the one spent, in the window
    page.get_by_label("Code", exact=True).fill(f"{(int(right) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".field.has-error")).to_contain_text("not right")
    page.get_by_label("Code", exact=True).fill(right)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/home$"))

    sign_out(page)
    sign_in_with_password(page, ana.email)
    page.get_by_label("Code", exact=True).fill(codes[0])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/home$"))
    page.goto("/account/mfa")
    expect(page.locator("#totp-on")).to_contain_text("9 recovery codes left")


def test_an_admin_reaches_the_console_only_with_two_factors(
    page: Page, site: Site, admin: User
) -> None:
    """An admin signed in with the password alone gets a 403 saying to turn on two-factor
    sign-in at /account/mfa; once it is on, the same session reaches the console."""
    sign_in(page, admin)
    response = page.goto("/console")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_text("Turn on two-factor sign-in at /account/mfa")).to_be_visible()
    set_up(page)
    response = page.goto("/console")
    assert response is not None
    assert response.status == 200
