"""The operator console over HTTP against a real node, as a browser without JavaScript
uses it: only admins get in (the role granted by `run.py admin create`), the shards table
and its live fragment, dead letters listed, inspected (escaped) and replayed one at a time
or many after the confirmation page, an actor type restarted after its confirmation, and
notification deliveries by status.

The dead letters are made by the runtime's own `ActorSystem.dead_letter` (what a handler
that keeps crashing ends in) for the probe actor (tests/support/probe.py, loaded into the
node as a plugin), so a replay is really handled: the probe records its effect."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import aiohttp
import asyncpg
import pytest
import pytest_asyncio

from actors.runtime import ActorSystem, PgDeadLetterStore
from splitgo.web.hardening import PAGES_CSP
from tests.support import probe, probe_messages
from tests.support.api import PASSWORD, Api, User
from tests.support.node import PROJECT_ROOT, RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database
from transport import Codec, Envelope, MemoryTransport

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

OPS_TOKEN = "console-e2e-ops-token"
ADMIN = "root@example.com"
PLAIN = "plain@example.com"


@dataclass
class World:
    node: RunningNode
    database: str
    env: dict[str, str]
    api: Api
    admin: User
    plain: User


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    folder = tmp_path_factory.mktemp("console-node")
    async with fresh_database(schema=True) as database:
        connection = await asyncpg.connect(database)
        try:
            await connection.execute(probe.PROBE_SCHEMA)
        finally:
            await connection.close()
        env = {
            "SPLITGO_DATABASE_URL": database,
            "SPLITGO_JWT_KEYS": "console-k1:console-e2e-signing-secret-long-enough-0123",
            "SPLITGO_OPS_TOKEN": OPS_TOKEN,
            "SPLITGO_PLUGINS": "tests.support.probe",
        }
        node = await start_node(folder, env=env)
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(node.url, http)
                admin = await api.register(ADMIN, "Root Admin")
                plain = await api.register(PLAIN, "Plain Person")
                await make_admin(env, folder, ADMIN)
                yield World(node, database, env, api, admin, plain)
        finally:
            await stop_node(node)


async def make_admin(env: dict[str, str], folder: Any, email: str) -> None:
    """`run.py admin create --email` promotes the existing account to admin."""
    command = [sys.executable, "run.py", "admin", "create", "--email", email]
    command += ["--data-dir", str(folder / "data")]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


async def dead_letter(world: World, key: str) -> str:
    """A probe `Explode` kept as a dead letter by the runtime, as after its last crash."""
    codec = Codec()
    codec.register(probe_messages.Explode)
    pool = await asyncpg.create_pool(world.database, min_size=1, max_size=1)
    try:
        system = ActorSystem(
            MemoryTransport(node_id="console-test", codec=codec),
            codec=codec,
            dead_letters=PgDeadLetterStore(pool),
        )
        envelope = Envelope(
            id=uuid.uuid4().hex,
            target="probe",
            shard=zlib.crc32(key.encode()) % probe.SHARDS,
            kind="tell",
            body=probe_messages.Explode(key=key),
            trace_id=uuid.uuid4().hex,
            attempt=3,
        )
        letter = await system.dead_letter(envelope, f"RuntimeError: probe exploded on {key}")
    finally:
        await pool.close()
    return letter.id


async def set_fixed(world: World, fixed: bool) -> None:
    """The probe's `fixed` switch: while off, an Explode crashes; on, it records its key."""
    connection = await asyncpg.connect(world.database)
    try:
        await connection.execute(
            "INSERT INTO probe_switches (name, on_) VALUES ('fixed', $1)"
            " ON CONFLICT (name) DO UPDATE SET on_ = $1",
            fixed,
        )
    finally:
        await connection.close()


async def recorded(world: World, key: str, timeout: float = 15.0) -> int:
    """How many effects the probe recorded for `key`, once it has recorded one."""
    connection = await asyncpg.connect(world.database)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            count = int(
                await connection.fetchval("SELECT count(*) FROM probe_effects WHERE key = $1", key)
            )
            if count or loop.time() > deadline:
                return count
            await asyncio.sleep(0.05)
    finally:
        await connection.close()


# ── a browser without JavaScript ──────────────────────────────────────────────────────


@dataclass
class Page:
    """A page as HTML, its forms (action -> (name, value) pairs) and its text."""

    status: int
    url: str
    headers: Any
    html: str
    forms: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    text: str = ""

    def fields(self, action: str) -> list[tuple[str, str]]:
        return list(self.forms[action])


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__()
        self.page = page
        self.form: str | None = None
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.form = found.get("action", "")
            self.page.forms.setdefault(self.form, [])
        elif tag == "input" and self.form is not None and found.get("name"):
            checkable = found.get("type") in ("checkbox", "radio")
            if not checkable or "checked" in found:
                self.page.forms[self.form].append((found["name"], found.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None

    def handle_data(self, data: str) -> None:
        self.words.append(data)


async def page_of(response: aiohttp.ClientResponse) -> Page:
    page = Page(response.status, str(response.url), response.headers, await response.text())
    reader = _Reader(page)
    reader.feed(page.html)
    page.text = " ".join(" ".join(reader.words).split())
    return page


async def visit(browser: aiohttp.ClientSession, url: str) -> Page:
    async with browser.get(url) as response:
        return await page_of(response)


async def post(
    browser: aiohttp.ClientSession, page: Page, action: str, values: list[tuple[str, str]]
) -> Page:
    """Send the form of `action` on `page` (its hidden inputs as they came) plus `values`."""
    data = [(k, v) for k, v in page.fields(action) if k in ("csrf_token", "idempotency_key")]
    async with browser.post(urljoin(page.url, action), data=data + values) as response:
        return await page_of(response)


@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as session:
        yield session


async def sign_in(world: World, browser: aiohttp.ClientSession, email: str) -> Page:
    form = await visit(browser, f"{world.node.url}/sign-in")
    data = [*form.fields("/sign-in"), ("email", email), ("password", PASSWORD)]
    async with browser.post(f"{world.node.url}/sign-in", data=data) as response:
        home = await page_of(response)
    assert home.status == 200, home.text
    return home


# ── tests ─────────────────────────────────────────────────────────────────────────────


async def test_only_admins_get_into_the_console(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Signed out, the console sends to sign in; a signed-in person without the admin role
    gets a 403 page on every console page and action, and no Console in the navigation."""
    async with browser.get(f"{world.node.url}/console", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/sign-in?next=%2Fconsole"
    home = await sign_in(world, browser, PLAIN)
    assert 'href="/console"' not in home.html
    for path in ("/console", "/console/shards", "/console/dead-letters", "/console/deliveries"):
        page = await visit(browser, f"{world.node.url}{path}")
        assert page.status == 403, path
        assert "The console is for admins" in page.text
    letter = await dead_letter(world, "not-for-plain")
    guard = home.fields("/sign-out")  # this browser's CSRF token: the POST is well-formed
    action = f"/console/dead-letters/{letter}/replay"
    async with browser.post(f"{world.node.url}{action}", data=guard) as response:
        assert response.status == 403
    assert await recorded(world, "not-for-plain", timeout=0.5) == 0


async def test_an_admin_sees_every_shard_and_its_live_fragment(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The admin's console lists this node's shards with their state and numbers, under
    the pages' CSP; its fragment is the table alone, and from its second look on it says
    how many messages each shard handled per second."""
    home = await sign_in(world, browser, ADMIN)
    assert 'href="/console"' in home.html
    page = await visit(browser, f"{world.node.url}/console")
    assert page.status == 200
    assert page.headers["Content-Security-Policy"] == PAGES_CSP
    assert 'aria-current="page"' in page.html
    for actor in ("auth", "payments", "splits", "notifications", "probe"):
        assert f'<th scope="row">{actor}</th>' in page.html
    assert page.html.count('data-cell="probe/') == probe.SHARDS * 6
    assert "running" in page.text
    assert 'href="/console" data-refresh' in page.html  # without JavaScript: Refresh
    assert '<script type="module" src="/static/console.' in page.html

    first = await visit(browser, f"{world.node.url}/console/shards")
    assert first.status == 200
    assert first.html.lstrip().startswith("<section")
    assert "<html" not in first.html
    await asyncio.sleep(0.6)
    second = await visit(browser, f"{world.node.url}/console/shards")
    assert 'data-cell="auth/0/rate">—<' not in second.html  # measured since the first look
    assert 'data-cell="auth/0/rate">' in second.html


async def test_dead_letters_are_listed_inspected_and_replayed_one_by_one(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """A dead letter shows with its error, actor and type; its page shows the message
    pretty-printed and escaped; Replay sends it once (the probe records it), and a second
    Replay says it was replayed already."""
    await set_fixed(world, False)
    letter = await dead_letter(world, "<b>one</b>")
    await sign_in(world, browser, ADMIN)
    listed = await visit(browser, f"{world.node.url}/console/dead-letters?actor=probe")
    assert listed.status == 200
    assert "RuntimeError: probe exploded on <b>one</b>" in listed.text
    assert "<b>one</b>" not in listed.html  # escaped
    assert f'href="/console/dead-letters/{letter}"' in listed.html
    assert "Explode" in listed.text

    shown = await visit(browser, f"{world.node.url}/console/dead-letters/{letter}")
    assert shown.status == 200
    assert '"key": "<b>one</b>"' in shown.text  # indented JSON, read as text
    assert "&lt;b&gt;one&lt;/b&gt;" in shown.html
    assert "Not replayed yet" in shown.text

    await set_fixed(world, True)
    action = f"/console/dead-letters/{letter}/replay"
    done = await post(browser, shown, action, [("next", f"/console/dead-letters/{letter}")])
    assert done.status == 200
    assert done.url.endswith(f"/console/dead-letters/{letter}")
    assert "The dead letter was sent again." in done.text
    assert "Replayed" in done.text
    assert await recorded(world, "<b>one</b>") == 1
    again = await post(browser, shown, action, [("next", "/console/dead-letters")])
    assert "had been replayed already" in again.text
    await asyncio.sleep(0.3)
    assert await recorded(world, "<b>one</b>") == 1  # once, not twice

    missing = await visit(browser, f"{world.node.url}/console/dead-letters/no-such-letter")
    assert missing.status == 404


async def test_many_dead_letters_are_replayed_after_a_confirmation_naming_how_many(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Picking dead letters and pressing Replay selected first shows "Replay 2 dead
    letters?"; confirming replays exactly those; picking none is refused in words."""
    await set_fixed(world, True)
    picked = [await dead_letter(world, f"bulk-{n}") for n in range(2)]
    left = await dead_letter(world, "bulk-left")
    await sign_in(world, browser, ADMIN)
    listed = await visit(browser, f"{world.node.url}/console/dead-letters")
    action = "/console/dead-letters/replay"
    for letter in [*picked, left]:
        assert f'value="{letter}"' in listed.html  # a checkbox to pick it

    none = await post(browser, listed, action, [("replay", "selected")])
    assert none.status == 422
    assert "Pick the dead letters to replay" in none.text

    ask = await post(browser, listed, action, [("ids", i) for i in picked])
    assert ask.status == 200
    assert "Replay 2 dead letters?" in ask.text
    assert ask.fields(action).count(("confirmed", "yes")) == 1
    assert [v for k, v in ask.fields(action) if k == "ids"] == picked
    assert await recorded(world, "bulk-0", timeout=0.3) == 0  # nothing yet

    data = [(k, v) for k, v in ask.fields(action) if k != "idempotency_key"]
    async with browser.post(f"{world.node.url}{action}", data=data) as response:
        done = await page_of(response)
    assert done.status == 200
    assert done.url.endswith("/console/dead-letters")
    assert "The dead letters were sent again." in done.text
    assert await recorded(world, "bulk-0") == 1
    assert await recorded(world, "bulk-1") == 1
    assert await recorded(world, "bulk-left", timeout=0.3) == 0
    assert f'value="{left}"' in done.html  # still there to pick
    assert f'value="{picked[0]}"' not in done.html  # replayed: no checkbox


async def test_an_actor_type_is_restarted_after_its_confirmation(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Restart has a confirmation page naming the actor type; confirming restarts it, as
    POST /ops/actors/{name}/restart does, and says so; an unknown type is a 404 page."""
    await sign_in(world, browser, ADMIN)
    ask = await visit(browser, f"{world.node.url}/console/actors/probe/restart")
    assert ask.status == 200
    assert "Restart probe?" in ask.text
    done = await post(browser, ask, "/console/actors/probe/restart", [])
    assert done.status == 200
    assert done.url.endswith("/console")
    assert "The actor type is starting again." in done.text
    async with browser.get(f"{world.node.url}/readyz") as response:
        assert response.status == 200
    unknown = await visit(browser, f"{world.node.url}/console/actors/nobody/restart")
    assert unknown.status == 404


async def test_deliveries_show_who_on_which_channel_by_status(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The verification mails of sign-up show as email deliveries with the person's name;
    the status filter narrows them, an empty filter says so, a bogus one is refused."""
    await sign_in(world, browser, ADMIN)

    async def listed() -> Page:
        return await visit(browser, f"{world.node.url}/console/deliveries")

    page = await listed()
    for _ in range(100):
        if "Plain Person" in page.text:
            break
        await asyncio.sleep(0.1)
        page = await listed()
    assert page.status == 200
    assert "Plain Person" in page.text
    assert "Root Admin" in page.text
    assert "email" in page.text
    assert "EmailVerificationRequested" in page.text
    failed = await visit(browser, f"{world.node.url}/console/deliveries?status=failed")
    assert failed.status == 200
    assert "No failed deliveries" in failed.text
    sent = await visit(browser, f"{world.node.url}/console/deliveries?status=sent")
    assert "Plain Person" in sent.text
    bogus = await visit(browser, f"{world.node.url}/console/deliveries?status=bogus")
    assert bogus.status == 422
