"""schema.sql against a real PostgreSQL: idempotent, versioned, refused when too new."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from splitgo.db import SCHEMA_VERSION, SchemaTooNew, apply_schema, open_database


async def test_schema_applies_twice_and_records_its_version(pool: asyncpg.Pool) -> None:
    """Applying the schema a second time changes nothing and keeps one version row."""
    assert await apply_schema(pool) == SCHEMA_VERSION
    await pool.execute(
        "INSERT INTO runtime_dead_letters (id, actor, shard, message_type, message_id,"
        " trace_id, attempts, error, body) VALUES ('d1','a',0,'M','m1','t',1,'e','{}')"
    )
    assert await apply_schema(pool) == SCHEMA_VERSION
    assert await pool.fetchval("SELECT count(*) FROM schema_version") == 1
    assert await pool.fetchval("SELECT version FROM schema_version") == SCHEMA_VERSION
    assert await pool.fetchval("SELECT count(*) FROM runtime_dead_letters") == 1


async def test_concurrent_nodes_apply_the_schema_safely(pool: asyncpg.Pool) -> None:
    """Several nodes starting at once all succeed: the advisory lock serialises them."""
    results = await asyncio.gather(*(apply_schema(pool) for _ in range(4)))
    assert results == [SCHEMA_VERSION] * 4


async def test_a_database_from_newer_code_is_refused(pool: asyncpg.Pool) -> None:
    """Older code must not run on a database that newer code already upgraded."""
    await apply_schema(pool)
    await pool.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaTooNew, match=r"holds schema version \d+; this code knows"):
        await apply_schema(pool)


async def test_open_database_with_a_url_applies_the_schema(
    database_url: str, tmp_path: Path
) -> None:
    """A configured URL is used as is, the schema applied, and the password kept out of logs."""
    database = await open_database(database_url, tmp_path)
    try:
        assert await database.ping()
        assert not database.embedded
        assert ":@" not in database.display or "password" not in database.display
        tables = await database.pool.fetchval(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'runtime_dead_letters'"
        )
        assert tables == 1
    finally:
        await database.close()
