"""The web app's way in, over HTTP against a real node with real mail and a real OIDC
provider, as a browser without JavaScript uses it: sign up through the form, confirm the
address with the mail's link and its button, sign in, see home, sign out; refusals shown
at their fields; CSRF, the strict CSP and a label on every input on every page."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from splitgo.web.hardening import PAGES_CSP
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.oidc import FakeIdentity, FakeOidcProvider
from tests.support.smtp import SmtpServer, link_in

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "violet elephants juggle 17 lanterns"
HIDDEN = {"hidden", "submit", "button", "reset", "image"}


@dataclass
class World:
    node: RunningNode
    smtp: SmtpServer
    oidc: FakeOidcProvider


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    smtp = SmtpServer()
    smtp.start()
    oidc = FakeOidcProvider(client_id="splitgo-pages", client_secret="oidc-secret")
    await oidc.start()
    env = {
        "SPLITGO_JWT_KEYS": "pages-k1:pages-e2e-signing-secret-long-enough-0123456789",
        "SPLITGO_SMTP_HOST": "127.0.0.1",
        "SPLITGO_SMTP_PORT": str(smtp.port),
        "SPLITGO_SMTP_TLS": "none",
        "SPLITGO_OAUTH_GOOGLE_CLIENT_ID": "splitgo-pages",
        "SPLITGO_OAUTH_GOOGLE_CLIENT_SECRET": "oidc-secret",
        "SPLITGO_OAUTH_GOOGLE_BASE_URL": oidc.url,
    }
    node = await start_node(tmp_path_factory.mktemp("pages-node"), env=env)
    try:
        yield World(node, smtp, oidc)
    finally:
        await stop_node(node)
        await oidc.stop()
        smtp.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without JavaScript: keeps cookies (also of 127.0.0.1), asks for HTML."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as session:
        yield session


@dataclass
class Page:
    """A page as HTML and what the tests look at in it."""

    status: int
    url: str
    headers: Any
    html: str
    forms: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, str]] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)
    ids: dict[str, str] = field(default_factory=dict)  # element id -> its text

    def form(self, action: str) -> dict[str, Any]:
        return next(form for form in self.forms if form["action"] == action)

    def field(self, name: str) -> dict[str, str]:
        return next(i for i in self.inputs if i.get("name") == name)


class _Reader(HTMLParser):
    VOID = frozenset({"input", "img", "br", "meta", "link", "hr", "source", "area", "col"})

    def __init__(self, page: Page) -> None:
        super().__init__()
        self.page = page
        self.open: list[tuple[str, str | None]] = []  # (tag, id) of the elements being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "id" in found:
            self.page.ids.setdefault(found["id"], "")
        if tag not in self.VOID:
            self.open.append((tag, found.get("id")))
        if tag == "form":
            self.page.forms.append({"action": found.get("action", ""), "fields": {}})
        elif tag in ("input", "select", "textarea"):
            self.page.inputs.append(found)
            if self.page.forms and found.get("name"):
                self.page.forms[-1]["fields"][found["name"]] = found.get("value", "")
        elif tag == "label" and "for" in found:
            self.page.labels.add(found["for"])

    def handle_data(self, data: str) -> None:
        for _, element in self.open:
            if element is not None:
                self.page.ids[element] += data

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open[-1][0] != tag:
            self.open.pop()  # an element closed by its parent's end
        if self.open:
            self.open.pop()


async def page_of(response: aiohttp.ClientResponse) -> Page:
    page = Page(response.status, str(response.url), response.headers, await response.text())
    _Reader(page).feed(page.html)
    return page


async def visit(browser: aiohttp.ClientSession, url: str, **options: Any) -> Page:
    async with browser.get(url, **options) as response:
        return await page_of(response)


async def submit(
    browser: aiohttp.ClientSession, page: Page, action: str, values: dict[str, str], **options: Any
) -> Page:
    """Fill in the form of `action` on `page` (its hidden inputs as they came) and send it."""
    data = {**page.form(action)["fields"], **values}
    async with browser.post(urljoin(page.url, action), data=data, **options) as response:
        return await page_of(response)


async def mail_link(world: World, address: str, path: str, count: int = 1) -> str:
    for _ in range(200):
        mails = world.smtp.inbox.to(address)
        if len(mails) >= count:
            return link_in(mails[count - 1], path)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail #{count} for {address}")


async def sign_up(world: World, browser: aiohttp.ClientSession, email: str) -> Page:
    form = await visit(browser, f"{world.node.url}/sign-up")
    values = {"name": "Ada Lovelace", "email": email, "password": PASSWORD}
    return await submit(browser, form, "/sign-up", values)


async def sign_in(
    world: World, browser: aiohttp.ClientSession, email: str, password: str = PASSWORD
) -> Page:
    form = await visit(browser, f"{world.node.url}/sign-in")
    return await submit(browser, form, "/sign-in", {"email": email, "password": password})


async def me_verified(world: World, email: str) -> bool:
    """Whether auth has the address verified (asked through the JSON API)."""
    async with aiohttp.ClientSession() as api:
        body = {"email": email, "password": PASSWORD}
        async with api.post(f"{world.node.url}/api/v1/auth/login", json=body) as response:
            pair = await response.json()
        headers = {"Authorization": f"Bearer {pair['access_token']}"}
        async with api.get(f"{world.node.url}/api/v1/me", headers=headers) as response:
            return bool((await response.json())["email_verified"])


async def test_sign_up_confirm_by_mail_sign_in_and_home(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The form signs up; the mail's link shows a button and changes nothing until it is
    pressed; then sign-in sets an HttpOnly, SameSite=Lax cookie and home greets the person."""
    created = await sign_up(world, browser, "ada@example.com")
    assert created.status == 201, created.html
    assert "Check your email" in created.html
    link = await mail_link(world, "ada@example.com", "/verify-email")
    confirm = await visit(browser, link)
    assert confirm.status == 200
    assert not await me_verified(world, "ada@example.com")  # opening the link alone: nothing
    done = await submit(browser, confirm, "/verify-email", {})
    assert done.status == 200, done.html
    assert "Email verified" in done.html
    assert await me_verified(world, "ada@example.com")
    async with browser.get(f"{world.node.url}/sign-in") as response:
        form = await page_of(response)
    values = {"email": "ada@example.com", "password": PASSWORD}
    data = {**form.form("/sign-in")["fields"], **values}
    async with browser.post(
        f"{world.node.url}/sign-in", data=data, allow_redirects=False
    ) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/home"
        session = response.cookies["splitgo_session"]
    assert session["httponly"]
    assert session["samesite"] == "Lax"
    home = await visit(browser, f"{world.node.url}/home")
    assert home.status == 200
    assert "Hello, Ada Lovelace" in home.html
    assert "Nothing to settle yet" in home.html  # the empty state says what to do
    assert "You are signed in." in home.html


async def test_a_refusal_is_shown_at_its_field_with_what_was_typed(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The JSON route's problems come back at their inputs: a malformed email (the body's
    validation) and a guessable password (auth's refusal), the typed values kept but the
    password, each error tied to its input by aria-describedby."""
    form = await visit(browser, f"{world.node.url}/sign-up")
    values = {"name": "Bo", "email": "not-an-email", "password": "short"}
    refused = await submit(browser, form, "/sign-up", values)
    assert refused.status == 422
    email = refused.field("email")
    assert email["value"] == "not-an-email"
    assert email["aria-invalid"] == "true"
    assert "f-email-error" in email["aria-describedby"].split()
    assert "email address" in refused.ids["f-email-error"]
    assert refused.field("name")["value"] == "Bo"
    assert "value" not in refused.field("password")
    weak = await submit(
        browser, refused, "/sign-up", {"email": "bo@example.com", "password": "password123"}
    )
    assert weak.status == 422
    assert weak.field("password")["aria-invalid"] == "true"
    assert "guess" in weak.ids["f-password-error"]
    assert weak.field("email")["value"] == "bo@example.com"
    assert world.smtp.inbox.to("bo@example.com") == []  # nothing was made


async def test_a_form_without_its_csrf_token_is_a_403(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """A POST without the token, or with another browser's, is a 403 page and does nothing."""
    await visit(browser, f"{world.node.url}/sign-in")  # this browser has a CSRF cookie now
    body = {"email": "ada@example.com", "password": PASSWORD}
    async with browser.post(f"{world.node.url}/sign-in", data=body) as response:
        page = await page_of(response)
    assert page.status == 403
    assert page.headers["Content-Type"].startswith("text/html")
    assert "reload the page" in page.html
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as other:
        theirs = await visit(other, f"{world.node.url}/sign-up")
    token = theirs.form("/sign-up")["fields"]["csrf_token"]
    refused = await sign_up_with(world, browser, {"csrf_token": token, "email": "x@example.com"})
    assert refused.status == 403
    assert world.smtp.inbox.to("x@example.com") == []


async def sign_up_with(
    world: World, browser: aiohttp.ClientSession, values: dict[str, str]
) -> Page:
    body = {"name": "X", "password": PASSWORD, "idempotency_key": "k", **values}
    async with browser.post(f"{world.node.url}/sign-up", data=body) as response:
        return await page_of(response)


async def test_a_double_submit_makes_one_account(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The same form sent twice (one idempotency key) answers the same and mails once."""
    form = await visit(browser, f"{world.node.url}/sign-up")
    values = {"name": "Cy", "email": "cy@example.com", "password": PASSWORD}
    first, second = [await submit(browser, form, "/sign-up", values) for _ in range(2)]
    assert (first.status, second.status) == (201, 201)
    await mail_link(world, "cy@example.com", "/verify-email")
    await asyncio.sleep(0.5)
    assert len(world.smtp.inbox.to("cy@example.com")) == 1


async def test_every_page_has_the_strict_csp_and_labelled_inputs(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Signed out and in, every page (an error page too) carries the pages' CSP, with no
    'unsafe-inline', and every visible input has a label; every described-by id exists."""
    base = world.node.url
    paths = ["/", "/sign-in", "/sign-up", "/forgot-password", "/reset-password?token=t"]
    paths += ["/verify-email?token=t", "/verify-email", "/no/such/page"]
    await sign_up(world, browser, "dee@example.com")
    for signed_in in (False, True):
        if signed_in:
            assert (await sign_in(world, browser, "dee@example.com")).status == 200
            paths = ["/home", "/no/such/page"]
        for path in paths:
            page = await visit(browser, base + path)
            assert page.headers["Content-Security-Policy"] == PAGES_CSP, path
            assert "'unsafe-inline'" not in PAGES_CSP
            assert page.headers["Cache-Control"] == "no-store", path
            for found in page.inputs:
                if found.get("type", "text") not in HIDDEN:
                    assert found.get("id") in page.labels, (path, found)
                for described in found.get("aria-describedby", "").split():
                    assert described in page.ids, (path, described)


async def test_a_signed_out_visit_goes_to_sign_in_and_back(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """A signed-in page sends a signed-out browser to sign in with ?next=, and back after;
    a ?next= to another site is ignored."""
    await sign_up(world, browser, "eve@example.com")
    async with browser.get(f"{world.node.url}/home?tab=1", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/sign-in?next=%2Fhome%3Ftab%3D1"
    form = await visit(browser, f"{world.node.url}/sign-in?next=%2Fhome%3Ftab%3D1")
    values = {"email": "eve@example.com", "password": PASSWORD}
    back = await submit(browser, form, "/sign-in", values, allow_redirects=False)
    assert back.headers["Location"] == "/home?tab=1"
    await submit(browser, await visit(browser, f"{world.node.url}/home"), "/sign-out", {})
    form = await visit(browser, f"{world.node.url}/sign-in?next=//evil.example/x")
    away = await submit(browser, form, "/sign-in", values, allow_redirects=False)
    assert away.headers["Location"] == "/home"


async def test_sign_out_ends_the_session_everywhere(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Sign-out revokes the session at auth: its access token stops working for the API."""
    await sign_up(world, browser, "fay@example.com")
    home = await sign_in(world, browser, "fay@example.com")
    access = browser.cookie_jar.filter_cookies(URL(world.node.url))["splitgo_session"].value
    access = access.split("~")[0]
    out = await submit(browser, home, "/sign-out", {})
    assert out.status == 200
    assert "You are signed out." in out.html
    assert "splitgo_session" not in browser.cookie_jar.filter_cookies(URL(world.node.url))
    headers = {"Authorization": f"Bearer {access}"}
    async with aiohttp.ClientSession() as api:
        for _ in range(40):
            async with api.get(f"{world.node.url}/api/v1/me", headers=headers) as response:
                if response.status == 401:
                    break
            await asyncio.sleep(0.05)
        assert response.status == 401


async def test_an_expired_access_token_is_refreshed_once(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """With an access token that no longer verifies, pages refresh the pair from the cookie
    — three requests at once share one refresh, so the session is not taken for stolen."""
    await sign_up(world, browser, "gus@example.com")
    await sign_in(world, browser, "gus@example.com")
    held = browser.cookie_jar.filter_cookies(URL(world.node.url))["splitgo_session"].value
    refresh = held.split("~")[1]
    stale = {"splitgo_session": f"expired.access.token~{refresh}"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        other.cookie_jar.update_cookies(stale, response_url=URL(world.node.url))
        pages = await asyncio.gather(*(visit(other, f"{world.node.url}/home") for _ in range(3)))
        assert [page.status for page in pages] == [200, 200, 200]
        renewed = other.cookie_jar.filter_cookies(URL(world.node.url))["splitgo_session"].value
        assert renewed.split("~")[1] != refresh
        assert (await visit(other, f"{world.node.url}/home")).status == 200


async def test_forgot_and_reset_password_through_the_mail(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Forgot mails a /reset-password link; its form sets the new password, which signs in."""
    await sign_up(world, browser, "hal@example.com")
    form = await visit(browser, f"{world.node.url}/forgot-password")
    sent = await submit(browser, form, "/forgot-password", {"email": "hal@example.com"})
    assert sent.status == 202
    assert "hal@example.com" in sent.html
    link = await mail_link(world, "hal@example.com", "/reset-password", count=2)
    reset = await visit(browser, link)
    weak = await submit(browser, reset, "/reset-password", {"password": "short"})
    assert weak.status == 422
    assert weak.field("password")["aria-invalid"] == "true"
    done = await submit(browser, weak, "/reset-password", {"password": NEW_PASSWORD})
    assert done.status == 200
    assert "Your password is changed" in done.html
    again = await submit(browser, weak, "/reset-password", {"password": NEW_PASSWORD})
    assert again.status == 401
    assert "Ask for a new link" in again.html
    assert (await sign_in(world, browser, "hal@example.com", NEW_PASSWORD)).status == 200


async def test_repeated_wrong_passwords_meet_the_lockout(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Auth's lockout applies to the form: past it, a 429 page with Retry-After and words."""
    await sign_up(world, browser, "ivy@example.com")
    statuses = [
        (await sign_in(world, browser, "ivy@example.com", "wrong password!")).status
        for _ in range(5)
    ]
    assert statuses == [401] * 5
    locked = await sign_in(world, browser, "ivy@example.com")
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Try again in" in locked.html
    assert locked.field("email")["value"] == "ivy@example.com"


async def test_google_sign_in_from_the_sign_in_page(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The configured provider's button signs in through it and lands on home; a callback
    opened in another browser signs nobody in."""
    world.oidc.identity = FakeIdentity(sub=f"g-{secrets.token_hex(4)}", email="jo@example.com")
    form = await visit(browser, f"{world.node.url}/sign-in")
    assert 'href="/sign-in/google?next=/home"' in form.html
    assert "/sign-in/github" not in form.html  # not configured: no button
    async with browser.get(f"{world.node.url}/sign-in/google", allow_redirects=False) as response:
        to_provider = response.headers["Location"]
    async with browser.get(to_provider, allow_redirects=False) as response:
        back = response.headers["Location"]
    async with aiohttp.ClientSession(headers={"Accept": "text/html"}) as elsewhere:
        stolen = await visit(elsewhere, back)
    assert stolen.status == 400
    assert "not started in this browser" in stolen.html
    home = await visit(browser, back)
    assert home.status == 200
    assert home.url.endswith("/home")
    assert "Hello, Ada Lovelace" in home.html


async def test_home_shows_where_you_stand_with_names(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Home answers first what you owe, then per person and per group, in the reader's
    money format, and the recent activity names people, never ids."""
    await sign_up(world, browser, "kim@example.com")
    await sign_in(world, browser, "kim@example.com")
    async with aiohttp.ClientSession(base_url=world.node.url) as api:
        kim = await api_user(api, "kim@example.com", register=False)
        lou = await api_user(api, "lou@example.com")
        group = await api_call(
            api, lou, "POST", "/api/v1/groups", {"name": "Lisbon", "currency": "EUR"}
        )
        path = f"/api/v1/groups/{group['id']}"
        await api_call(api, lou, "POST", f"{path}/members", {"user_id": kim["id"]})
        split = {"mode": "equal", "shares": [{"user_id": kim["id"]}, {"user_id": lou["id"]}]}
        expense = {"description": "Dinner", "amount": 9000, "currency": "EUR"}
        await api_call(
            api, lou, "POST", f"{path}/expenses", {**expense, "paid_by": lou["id"], "split": split}
        )
    home = await visit(browser, f"{world.node.url}/home", headers={"Accept-Language": "de-DE"})
    assert home.status == 200
    # (spaces, the non-breaking one of "45,00 €" too, read as one space)
    assert "You owe 45,00 €" in " ".join(home.ids["totals"].split())  # words, not a minus
    assert "Lou you owe 45,00 €" in " ".join(home.ids["people"].split())
    assert "Lisbon you owe 45,00 €" in " ".join(home.ids["groups"].split())
    recent = home.ids["recent"]
    assert "Lou" in recent
    assert "Dinner" in recent
    # a person is named, never shown by id (an id is only in links: "Settle all with Lou")
    assert lou["id"] not in " ".join(home.ids.values())
    assert f'href="/people/{lou["id"]}/settle"' in home.html


async def api_user(
    api: aiohttp.ClientSession, email: str, *, register: bool = True
) -> dict[str, Any]:
    """A user through the JSON API: registered (unless already), signed in, with their id."""
    if register:
        body = {"email": email, "password": PASSWORD, "name": email.split("@")[0].title()}
        async with api.post("/api/v1/auth/register", json=body) as response:
            assert response.status == 201, await response.text()
    async with api.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    ) as response:
        token = (await response.json())["access_token"]
    async with api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}) as response:
        return {**(await response.json()), "token": token}


async def api_call(
    api: aiohttp.ClientSession, user: dict[str, Any], method: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {user['token']}", "Idempotency-Key": secrets.token_hex(8)}
    async with api.request(method, path, json=body, headers=headers) as response:
        assert response.status < 300, await response.text()
        return dict(await response.json())
