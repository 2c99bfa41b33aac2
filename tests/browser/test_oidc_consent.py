"""'Sign in with splitgo' in a real browser: an admin registers an app on the console's
Apps page (its secret shown once); a signed-out person opening the app's authorization
link signs in, sees the consent page, presses Allow and lands on the app's callback with a
code the app exchanges for tokens. A second sign-in skips the consent page.

The app is a small web server of the test's on http://localhost (another origin than the
node's http://127.0.0.1), so the consent form's redirect leaves the pages' origin as a
real app's does (the pages' CSP lets forms lead only to this site: the consent page widens
it to the app; after the sign-in form, a page that goes on by itself). The test reads the
code from the callback's address. The app is the one foreign host the test visits."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp import web
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewPage
from tests.browser.harness import JWT_KEYS, OPS_TOKEN, BackgroundLoop, Site, Watch, sign_in
from tests.support.api import PASSWORD, User
from tests.support.node import PROJECT_ROOT, free_port
from tests.support.postgres import fresh_database

ADMIN = "oidc-browser-admin@example.com"


@pytest.fixture(scope="module")
def database(background: BackgroundLoop) -> Iterator[str]:
    made = fresh_database(schema=True)
    url = background.run(made.__aenter__())
    yield url
    background.run(made.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def site_env(database: str) -> dict[str, str]:
    return {"SPLITGO_DATABASE_URL": database}


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


APP_PAGE = '<!doctype html><title>App</title><link rel="icon" href="data:,"><p>Signed in</p>'


@pytest.fixture(scope="module")
def app_port(background: BackgroundLoop) -> Iterator[int]:
    """The app's own web server (on localhost: another origin than the node's), whose
    callback page loads nothing."""

    async def callback(request: web.Request) -> web.Response:
        return web.Response(text=APP_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/callback", callback)
    runner = web.AppRunner(app)
    port = free_port()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    background.run(start())
    yield port
    background.run(runner.cleanup())


CALLBACK = "http://localhost:{port}/callback"


def authorization_url(site: Site, client_id: str, callback: str) -> tuple[str, str]:
    """The app's link to sign in with splitgo, and its PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback,
        "scope": "openid profile email",
        "state": "browser-state",
        "nonce": "browser-nonce",
        "code_challenge": base64.urlsafe_b64encode(digest).decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    return f"{site.url}/oauth2/authorize?{urlencode(query)}", verifier


def exchange(
    site: Site, client: tuple[str, str], callback: str, code: str, verifier: str
) -> dict[str, str]:
    """The app's back end: the code for tokens (client_secret_post)."""

    async def post() -> dict[str, str]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback,
            "code_verifier": verifier,
            "client_id": client[0],
            "client_secret": client[1],
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{site.url}/oauth2/token", data=form) as response,
        ):
            assert response.status == 200, await response.text()
            return dict(await response.json())

    return site.run(post())


def landed_code(page: Page, callback: str) -> str:
    """The code on the app's callback the browser was sent to."""
    expect(page).to_have_url(re.compile("^" + re.escape(callback) + r"\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == ["browser-state"]
    return query["code"][0]


def sign_in_here(page: Page, person: User) -> None:
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_register_an_app_then_allow_it_on_the_consent_page(
    page: Page, new_page: NewPage, site: Site, admin: User, watch: Watch, app_port: int
) -> None:
    """The console registers the app and shows its secret; a signed-out person is sent to
    sign in, then to the consent page naming the app and what it sees; Allow lands on the
    app's callback with a code that buys an ID token; a second sign-in goes straight back."""
    callback = CALLBACK.format(port=app_port)
    sign_in(page, admin)
    page.goto("/console/apps")
    page.get_by_label("App name").fill("Ride Share")
    page.get_by_label("Redirect URIs").fill(callback)
    page.get_by_role("button", name="Register the app").click()
    expect(page.locator("#created")).to_contain_text("not shown again")
    client = (
        page.locator("#created-client-id").inner_text(),
        page.locator("#created-client-secret").inner_text(),
    )

    person = site.register("Ada Lovelace")
    visitor = new_page()
    url, verifier = authorization_url(site, client[0], callback)
    visitor.goto(url)
    expect(visitor).to_have_url(re.compile(r"/sign-in\?next="))
    sign_in_here(visitor, person)
    expect(visitor.get_by_role("heading", name="Sign in to Ride Share")).to_be_visible()
    expect(visitor.locator(".consent-scopes")).to_contain_text("Your email address")
    visitor.get_by_role("button", name="Allow").click()
    tokens = exchange(site, client, callback, landed_code(visitor, callback), verifier)
    assert tokens["id_token"].count(".") == 2
    assert tokens["scope"] == "openid profile email"

    again = new_page()
    url, verifier = authorization_url(site, client[0], callback)
    again.goto(url)
    sign_in_here(again, person)  # allowed before: no consent page, back to the app
    assert exchange(site, client, callback, landed_code(again, callback), verifier)["access_token"]
    # the app is the one other host this test visits, on purpose
    watch.settle()
    watch.foreign_requests[:] = [
        request for request in watch.foreign_requests if not request.startswith(callback)
    ]
