"""Fixtures: a database per test on the session's PostgreSQL, the schema already applied.

Each test's database is a copy of the session's template (tests/support/postgres.py), so a
fixture's own apply_schema finds nothing left to do. A module that must see apply_schema
work on an empty database (test_schema.py) overrides `database_url` with an empty one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg
import pytest
from aiogram.client.session.aiohttp import AiohttpSession

from tests.support.postgres import fresh_database

if TYPE_CHECKING:
    from tests.integration.test_auth_actor import Harness


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of this test's own, holding the schema; dropped after the test."""
    async with fresh_database(schema=True) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def auth_harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    """The auth actor's harness (tests/integration/test_auth_actor.py `running`: two shards,
    the outbox relay, a fake clock), for the modules that share it."""
    # imported here: only the tests that take the fixture load the auth actor
    from tests.integration.test_auth_actor import running

    async with running(pool) as made:
        yield made


@pytest.fixture(autouse=True)
def no_tls_grace_on_closing(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiogram's session waits 250 ms after closing, for TLS connections to finish closing
    (aiohttp's advice); every Telegram server here is plain HTTP on 127.0.0.1, so a closing
    bot or Telegram channel has nothing to wait for (a quarter to half a second per test)."""

    async def close(self: AiohttpSession) -> None:
        session = self._session
        if session is not None and not session.closed:
            await session.close()

    monkeypatch.setattr(AiohttpSession, "close", close)
