"""Fixtures: a database per test on the session's PostgreSQL, the schema already applied.

Each test's database is a copy of the session's template (tests/support/postgres.py), so a
fixture's own apply_schema finds nothing left to do. A module that must see apply_schema
work on an empty database (test_schema.py) overrides `database_url` with an empty one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support.postgres import fresh_database


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
