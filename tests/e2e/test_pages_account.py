"""The notifications and account pages over HTTP, as a browser without JavaScript uses
them, against a real node with real mail and a fake Telegram Bot API: the feed names
people and links to the group, marks read one or all; the preferences matrix persists
through the JSON route's message; a rename shows in the header; a revoked session's token
stops working; the password changes with the current one or through the mailed link;
the Telegram link comes with a QR code drawn locally, with no style attributes."""

from __future__ import annotations

import asyncio
import re
import secrets
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
import pytest_asyncio

from splitgo.web.hardening import PAGES_CSP
from tests.e2e.test_pages_auth import HIDDEN, NEW_PASSWORD, PASSWORD, Page, page_of, submit, visit
from tests.support.api import Api, User
from tests.support.fake_telegram import FakeTelegram
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.smtp import SmtpServer, link_in

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

BOT = "424242:" + "".join(secrets.choice(string.ascii_letters) for _ in range(35))
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class World:
    node: RunningNode
    smtp: SmtpServer
    tg: FakeTelegram


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    smtp = SmtpServer()
    smtp.start()
    tg = FakeTelegram()
    await tg.start()  # before the node: its bot starts polling at once
    env = {
        "SPLITGO_JWT_KEYS": "acct-k1:account-pages-e2e-signing-secret-0123456789",
        "SPLITGO_SMTP_HOST": "127.0.0.1",
        "SPLITGO_SMTP_PORT": str(smtp.port),
        "SPLITGO_SMTP_TLS": "none",
        "SPLITGO_TELEGRAM_BOT_TOKENS": BOT,
        "SPLITGO_TELEGRAM_API_URL": tg.base_url,
    }
    node = await start_node(tmp_path_factory.mktemp("account-pages-node"), env=env)
    try:
        yield World(node, smtp, tg)
    finally:
        await stop_node(node)
        await tg.stop()
        smtp.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without JavaScript: keeps cookies (also of 127.0.0.1), asks for HTML."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as session:
        yield session


@pytest_asyncio.fixture(loop_scope="module")
async def api(world: World) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(world.node.url, session)


# ── helpers ───────────────────────────────────────────────────────────────────────────


def fresh_email() -> str:
    return f"p{secrets.token_hex(5)}@example.com"


async def signed_up(
    world: World, browser: aiohttp.ClientSession, email: str, name: str = "Ada Lovelace"
) -> Page:
    """Sign up and sign in through the forms; the home page it lands on."""
    form = await visit(browser, f"{world.node.url}/sign-up")
    made = await submit(
        browser, form, "/sign-up", {"name": name, "email": email, "password": PASSWORD}
    )
    assert made.status == 201, made.html
    form = await visit(browser, f"{world.node.url}/sign-in")
    home = await submit(browser, form, "/sign-in", {"email": email, "password": PASSWORD})
    assert home.status == 200, home.html
    return home


async def login(api: Api, email: str, password: str = PASSWORD) -> User | None:
    """The user signed in through the JSON API (a session of their own), or None."""
    reply = await api.call(
        "POST", "/api/v1/auth/login", body={"email": email, "password": password}
    )
    if reply.status != 200:
        return None
    token = reply.body["access_token"]
    me = await api.call("GET", "/api/v1/me", User("", email, token))
    return User(me.body["id"], email, token)


async def post(
    browser: aiohttp.ClientSession, page: Page, action: str, data: Any, **options: Any
) -> Page:
    """Send `data` (pairs, so one name may come many times) to `action` of `page`."""
    async with browser.post(urljoin(page.url, action), data=data, **options) as response:
        return await page_of(response)


def guard(page: Page, action: str) -> list[tuple[str, str]]:
    """The CSRF token and idempotency key the form of `action` was rendered with."""
    fields = page.form(action)["fields"]
    return [(name, fields[name]) for name in ("csrf_token", "idempotency_key")]


def words(text: str) -> str:
    return " ".join(text.split())


async def feed_with(
    world: World, browser: aiohttp.ClientSession, needle: str, count: int = 1
) -> Page:
    """The feed page once it shows `needle` `count` times (notices arrive asynchronously)."""
    for _ in range(100):
        page = await visit(browser, f"{world.node.url}/notifications")
        if page.html.count(needle) >= count:
            return page
        await asyncio.sleep(0.1)
    raise AssertionError(f"the feed never showed {needle!r} {count} times")


async def gone(api: Api, user: User) -> bool:
    """Whether the user's access token stops working within a few seconds."""
    for _ in range(60):
        if (await api.call("GET", "/api/v1/me", user)).status == 401:
            return True
        await asyncio.sleep(0.05)
    return False


def assert_labelled(page: Page) -> None:
    assert page.headers["Content-Security-Policy"] == PAGES_CSP
    for found in page.inputs:
        if found.get("type", "text") not in HIDDEN:
            assert found.get("id") in page.labels, found
        for described in found.get("aria-describedby", "").split():
            assert described in page.ids, described


# ── the feed ──────────────────────────────────────────────────────────────────────────


async def test_the_feed_names_people_links_the_group_and_marks_read(
    world: World, browser: aiohttp.ClientSession, api: Api
) -> None:
    """Being added to Bo's group and Bo's expenses show in Ada's feed, newest first, with
    Bo's name and links to the group and the expense; the badge counts them; Mark read
    and Mark all read leave nothing unread."""
    email = fresh_email()
    empty = await signed_up(world, browser, email)
    assert empty.status == 200
    first = await visit(browser, f"{world.node.url}/notifications")
    assert "No notifications yet" in first.html  # the empty state says what comes here
    assert_labelled(first)
    ada = await login(api, email)
    assert ada is not None
    bo = await api.register(fresh_email(), "Bo Diddley")
    group = await api.ok("POST", "/api/v1/groups", bo, {"name": "Lisbon", "currency": "EUR"}, 201)
    await api.ok("POST", f"/api/v1/groups/{group['id']}/members", bo, {"user_id": ada.id}, 201)
    for description in ("Dinner", "Taxi"):
        body = {
            "description": description,
            "amount": 9000,
            "currency": "EUR",
            "paid_by": bo.id,
            "split": {"mode": "equal", "shares": [{"user_id": ada.id}, {"user_id": bo.id}]},
        }
        await api.ok("POST", f"/api/v1/groups/{group['id']}/expenses", bo, body, 201)
    feed = await feed_with(world, browser, "New expense in Lisbon", count=2)
    text = words(feed.ids["feed"])
    assert "Bo Diddley added “Taxi”" in text
    assert "Bo Diddley added you to Lisbon" in text
    assert "3 unread notifications" in text
    assert f'href="/groups/{group["id"]}"' in feed.html  # being added: the group
    assert f'href="/groups/{group["id"]}/expenses/' in feed.html  # an expense: itself
    assert bo.id not in feed.html
    assert ada.id not in feed.html
    assert text.index("Taxi") < text.index("Dinner")  # newest first
    badge = feed.html.split("data-unread-badge>")[1].split("</a>")[0]
    assert 'data-unread="3"' in badge
    reads = [form["action"] for form in feed.forms if form["action"].endswith("/read")]
    assert len(reads) == 3
    one = await submit(browser, feed, reads[0], {})
    assert one.status == 200
    assert one.url.endswith("/notifications")
    assert "Marked read." in one.html
    assert "2 unread notifications" in words(one.ids["feed"])
    all_read = await submit(browser, one, "/notifications/read-all", {})
    assert "Every notification is marked read." in all_read.html
    assert "You have read everything" in all_read.html
    async with browser.get(f"{world.node.url}/notifications/badge") as response:
        assert 'data-unread="0"' in await response.text()
    older = await visit(browser, f"{world.node.url}/notifications?cursor=1")
    assert "No older notifications" in older.html  # past the oldest: the end, and a way back
    assert 'href="/notifications"' in older.html
    assert (await visit(browser, f"{world.node.url}/notifications?cursor=x")).status == 400
    unread = await api.ok("GET", "/api/v1/notifications?unread=true", ada)
    assert unread["items"] == []
    assert unread["unread"] == 0


async def test_the_preferences_matrix_persists(
    world: World, browser: aiohttp.ClientSession, api: Api
) -> None:
    """Ticking and unticking boxes of the matrix sets exactly those switches, as the JSON
    route reads them, and the page shows them again."""
    email = fresh_email()
    await signed_up(world, browser, email)
    page = await visit(browser, f"{world.node.url}/notifications/preferences")
    assert page.status == 200
    assert_labelled(page)
    cells = [i["value"] for i in page.inputs if i.get("name") == "cell"]
    assert "splits.email" in cells
    assert "rides.sms" in cells
    ticked = {name for name in cells if "checked" in page.field(name)}
    wanted = (ticked - {"splits.telegram"}) | {"splits.email", "money.sms"}
    data = guard(page, "/notifications/preferences")
    data += [("cell", name) for name in cells] + [(name, "on") for name in sorted(wanted)]
    saved = await post(browser, page, "/notifications/preferences", data)
    assert saved.status == 200
    assert "Your choices are saved." in saved.html
    assert {name for name in cells if "checked" in saved.field(name)} == wanted
    user = await login(api, email)
    assert user is not None
    chosen = await api.ok("GET", "/api/v1/notifications/preferences", user)
    assert chosen["splits"]["email"] is True
    assert chosen["splits"]["telegram"] is False
    assert chosen["money"]["sms"] is True
    damaged = [*guard(saved, "/notifications/preferences"), ("cell", "splits.pigeon")]
    refused = await post(browser, saved, "/notifications/preferences", damaged)
    assert refused.status == 422
    assert "There is a problem" in refused.html


# ── the account ───────────────────────────────────────────────────────────────────────


async def test_a_rename_shows_in_the_header_and_bad_input_at_its_field(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The profile form renames (the header says the new name at once); a bad phone number
    is refused at its input with what was typed kept."""
    await signed_up(world, browser, fresh_email())
    page = await visit(browser, f"{world.node.url}/account")
    assert page.status == 200
    assert_labelled(page)
    assert page.field("name")["value"] == "Ada Lovelace"
    renamed = await submit(browser, page, "/account/profile", {"name": "Ada King"})
    assert renamed.status == 200
    assert renamed.url.endswith("/account")
    assert "Your profile is saved." in renamed.html
    header = renamed.html.split("</header>")[0]
    assert "Ada King" in header
    assert "Lovelace" not in header
    refused = await submit(browser, renamed, "/account/profile", {"phone": "0151 not a number"})
    assert refused.status == 422
    phone = refused.field("phone")
    assert phone["value"] == "0151 not a number"
    assert phone["aria-invalid"] == "true"
    assert "country code" in refused.ids["f-phone-error"]
    saved = await submit(browser, refused, "/account/profile", {"phone": "+4915112345678"})
    assert saved.field("phone")["value"] == "+4915112345678"
    assert "Not confirmed yet." in saved.ids["phone-state"]


async def test_revoke_a_session_and_sign_out_everywhere(
    world: World, browser: aiohttp.ClientSession, api: Api
) -> None:
    """Revoke ends another session (its token is refused at once); Sign out everywhere
    ends the rest and this browser's."""
    email = fresh_email()
    await signed_up(world, browser, email)
    phone, laptop = await login(api, email), await login(api, email)
    assert phone is not None
    assert laptop is not None
    sessions = (await api.ok("GET", "/api/v1/auth/sessions", phone))["items"]
    phone_session = next(item["id"] for item in sessions if item["current"])
    page = await visit(browser, f"{world.node.url}/account")
    revokes = [form["action"] for form in page.forms if form["action"].endswith("/revoke")]
    assert len(revokes) == 3
    assert "This browser" in words(page.ids["sessions"])
    done = await submit(browser, page, f"/account/sessions/{phone_session}/revoke", {})
    assert done.status == 200
    assert "That session is signed out." in done.html
    assert await gone(api, phone)
    assert (await api.call("GET", "/api/v1/me", laptop)).status == 200
    after = [form["action"] for form in done.forms if form["action"].endswith("/revoke")]
    assert len(after) == 2
    out = await submit(browser, done, "/account/sign-out-everywhere", {})
    assert out.status == 200
    assert out.url.endswith("/sign-in")
    assert "You are signed out everywhere." in out.html
    assert await gone(api, laptop)
    async with browser.get(f"{world.node.url}/account", allow_redirects=False) as response:
        assert response.status == 303  # this browser is signed out too


async def test_the_password_changes_through_the_mailed_link(
    world: World, browser: aiohttp.ClientSession, api: Api
) -> None:
    """The password card mails a reset link; its page sets the new password, after which
    the old one no longer signs in and the new one does."""
    email = fresh_email()
    await signed_up(world, browser, email)
    page = await visit(browser, f"{world.node.url}/account")
    sent = await submit(browser, page, "/account/password", {})
    assert sent.status == 200
    assert "We sent you a link" in sent.html
    link = ""
    for _ in range(200):
        mails = world.smtp.inbox.to(email)
        if len(mails) >= 2:
            link = link_in(mails[1], "/reset-password")
            break
        await asyncio.sleep(0.05)
    assert link, "no reset mail"
    reset = await visit(browser, link)
    changed = await submit(browser, reset, "/reset-password", {"password": NEW_PASSWORD})
    assert changed.status == 200
    assert "Your password is changed" in changed.html
    assert await login(api, email) is None
    assert await login(api, email, NEW_PASSWORD) is not None


async def test_the_password_changes_with_the_current_one(
    world: World, browser: aiohttp.ClientSession, api: Api
) -> None:
    """A wrong current password is refused at its field and changes nothing; the right one
    changes it: the old one no longer signs in, the new one does, and this browser stays in."""
    email = fresh_email()
    await signed_up(world, browser, email)
    page = await visit(browser, f"{world.node.url}/account")
    wrong = {"current_password": "not my password at all", "password": NEW_PASSWORD}
    refused = await submit(browser, page, "/account/password/change", wrong)
    assert refused.status == 422
    assert refused.field("current_password")["aria-invalid"] == "true"
    assert "not your current password" in refused.html
    assert await login(api, email) is not None
    right = {"current_password": PASSWORD, "password": NEW_PASSWORD}
    changed = await submit(browser, refused, "/account/password/change", right)
    assert changed.status == 200
    assert "Your password is changed" in changed.html
    assert await login(api, email) is None
    assert await login(api, email, NEW_PASSWORD) is not None
    still = await visit(browser, f"{world.node.url}/account")
    assert still.status == 200
    assert still.url.endswith("/account")


async def test_the_telegram_link_comes_with_a_local_qr_code(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Link Telegram shows the bot's deep link and its QR code as inline SVG, with no style
    attribute anywhere on the page (the strict CSP)."""
    await signed_up(world, browser, fresh_email())
    page = await visit(browser, f"{world.node.url}/account")
    assert "Not linked" in page.ids["telegram"]
    linked = await submit(browser, page, "/account/telegram", {})
    assert linked.status == 200
    found = re.search(r'href="(https://t\.me/splitgo_bot\?start=[A-Za-z0-9_-]+)"', linked.html)
    assert found, linked.ids["telegram"]
    svg = linked.html.split('<svg role="img"')[1].split("</svg>")[0]
    assert 'class="qr-code"' in svg
    assert "<path" in svg
    assert "style=" not in linked.html
    assert linked.headers["Content-Security-Policy"] == PAGES_CSP
    assert UUID.search(linked.ids["telegram"]) is None
