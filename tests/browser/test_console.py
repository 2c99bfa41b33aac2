"""The operator console in a real browser: a dead letter picked with its checkbox is
replayed only once the <dialog> naming how many is confirmed, and the shards table updates
itself without a reload when a shard handles a message.

The node loads the probe actor (tests/support/probe.py) as a plugin, on a database this
module makes, so the test can keep dead letters for it with the runtime's own
`ActorSystem.dead_letter` and see a replay handled (the probe records its key)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator

import asyncpg
import pytest
from playwright.sync_api import Page, expect

from actors.runtime import ActorSystem, PgDeadLetterStore
from tests.browser.harness import JWT_KEYS, OPS_TOKEN, BackgroundLoop, Site, sign_in
from tests.support import probe, probe_messages
from tests.support.api import User
from tests.support.node import PROJECT_ROOT
from tests.support.postgres import fresh_database
from transport import Codec, Envelope, MemoryTransport

ADMIN = "console-admin@example.com"


@pytest.fixture(scope="module")
def database(background: BackgroundLoop) -> Iterator[str]:
    """A database of this module's own, with the probe's tables and its `fixed` switch on."""
    made = fresh_database(schema=True)
    url = background.run(made.__aenter__())

    async def prepare() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(probe.PROBE_SCHEMA)
            await connection.execute(
                "INSERT INTO probe_switches (name, on_) VALUES ('fixed', true)"
            )
        finally:
            await connection.close()

    background.run(prepare())
    yield url
    background.run(made.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def site_env(database: str) -> dict[str, str]:
    return {"SPLITGO_DATABASE_URL": database, "SPLITGO_PLUGINS": "tests.support.probe"}


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


def keep_dead_letter(site: Site, database: str, key: str) -> tuple[str, int]:
    """A probe `Explode` for `key` kept as a dead letter, as after its last crash: its id
    and shard."""
    shard = zlib.crc32(key.encode()) % probe.SHARDS

    async def keep() -> str:
        codec = Codec()
        codec.register(probe_messages.Explode)
        pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
        try:
            system = ActorSystem(
                MemoryTransport(node_id="console-browser-test", codec=codec),
                codec=codec,
                dead_letters=PgDeadLetterStore(pool),
            )
            envelope = Envelope(
                id=uuid.uuid4().hex,
                target="probe",
                shard=shard,
                kind="tell",
                body=probe_messages.Explode(key=key),
                trace_id=uuid.uuid4().hex,
                attempt=3,
            )
            letter = await system.dead_letter(envelope, f"RuntimeError: probe exploded on {key}")
        finally:
            await pool.close()
        return letter.id

    return site.run(keep()), shard


def recorded(site: Site, database: str, key: str) -> int:
    """How many effects the probe has recorded for `key` so far."""

    async def count() -> int:
        connection = await asyncpg.connect(database)
        try:
            found = await connection.fetchval(
                "SELECT count(*) FROM probe_effects WHERE key = $1", key
            )
        finally:
            await connection.close()
        return int(found)

    return site.run(count())


def test_a_dead_letter_is_replayed_after_the_confirmation_dialog(
    page: Page, site: Site, database: str, admin: User
) -> None:
    """Picking one dead letter and pressing Replay selected opens a dialog asking "Replay 1
    dead letter?"; Cancel sends nothing; confirming replays that one (the probe handles it)
    and the list comes back saying so, the other one untouched."""
    picked, _ = keep_dead_letter(site, database, "browser-picked")
    keep_dead_letter(site, database, "browser-left")
    sign_in(page, admin)
    page.get_by_role("link", name="Console").click()
    page.get_by_role("link", name="Dead letters").click()
    expect(page.get_by_role("heading", name="Dead letters", level=1)).to_be_visible()

    page.locator(f'input[name="ids"][value="{picked}"]').check()
    page.get_by_role("button", name="Replay selected").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Replay 1 dead letter?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert recorded(site, database, "browser-picked") == 0

    page.get_by_role("button", name="Replay selected").click()
    dialog.get_by_role("button", name="Replay 1 dead letter").click()
    expect(page.get_by_role("status")).to_contain_text("The dead letters were sent again.")
    expect(page).to_have_url(re.compile(r"/console/dead-letters$"))
    expect(page.locator(f'input[name="ids"][value="{picked}"]')).to_have_count(0)
    expect(page.get_by_text("Replayed").first).to_be_visible()
    for _ in range(100):
        if recorded(site, database, "browser-picked"):
            break
        page.wait_for_timeout(50)
    assert recorded(site, database, "browser-picked") == 1
    assert recorded(site, database, "browser-left") == 0


def test_the_shards_table_updates_itself(
    page: Page, site: Site, database: str, admin: User
) -> None:
    """With the console open, a message the probe handles shows up as handled per second in
    its shard's row, highlighted, without the page being reloaded."""
    letter, shard = keep_dead_letter(site, database, "browser-live-2")
    # on another shard than the letter replayed above, so its rate settles at 0.0 at once
    sign_in(page, admin)
    page.goto("/console")
    expect(page.get_by_role("link", name="Refresh")).to_be_hidden()  # JavaScript updates
    page.evaluate("window.sameDocument = true")
    rate = page.locator(f'[data-cell="probe/{shard}/rate"]')
    expect(rate).to_have_text("0.0", timeout=10_000)  # measured by the live refresh

    replayed = site.call(
        "POST",
        f"/ops/dead-letters/{letter}/replay",
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
    )
    assert replayed.status == 202, replayed.body
    expect(rate).to_have_text(re.compile(r"^(?!0\.0$)\d+\.\d$"), timeout=8000)
    expect(rate).to_have_class(re.compile(r"\bis-changed\b"))
    assert page.evaluate("window.sameDocument") is True
