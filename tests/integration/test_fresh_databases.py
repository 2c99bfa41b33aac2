"""The test databases themselves: each a copy of the session's schema template, of its own,
and empty when asked for an empty one (tests/support/postgres.py)."""

from __future__ import annotations

import asyncpg

from splitgo.db import apply_schema
from splitgo.schema import SCHEMA_VERSION, load_steps
from tests.support.postgres import fresh_database


async def test_a_test_database_holds_the_whole_schema(pool: asyncpg.Pool) -> None:
    """The fixture's database has every packaged step recorded, so apply_schema has nothing
    left to run and answers the newest version."""
    rows = await pool.fetch("SELECT step, checksum FROM schema_migrations ORDER BY step")
    assert [(row["step"], row["checksum"]) for row in rows] == [
        (step.number, step.checksum) for step in load_steps()
    ]
    assert await apply_schema(pool) == SCHEMA_VERSION
    assert await pool.fetchval("SELECT count(*) FROM schema_migrations") == len(rows)


async def test_copies_of_the_template_share_nothing(database_url: str) -> None:
    """A row written in one test's database is in no other: neither in one made beside it nor
    in one made afterwards from the same template."""
    insert = (
        "INSERT INTO runtime_dead_letters (id, actor, shard, message_type, message_id,"
        " trace_id, attempts, error, body) VALUES ('d1','a',0,'M','m1','t',1,'e','{}')"
    )
    count = "SELECT count(*) FROM runtime_dead_letters"
    written = await asyncpg.connect(database_url)
    try:
        await written.execute(insert)
        async with fresh_database(schema=True) as beside:
            other = await asyncpg.connect(beside)
            try:
                assert await other.fetchval(count) == 0
                await other.execute(insert)
            finally:
                await other.close()
        async with fresh_database(schema=True) as after:
            later = await asyncpg.connect(after)
            try:
                assert await later.fetchval(count) == 0
            finally:
                await later.close()
        assert await written.fetchval(count) == 1
    finally:
        await written.close()


async def test_an_empty_database_has_no_schema() -> None:
    """fresh_database() without the schema gives a database with no table at all."""
    async with fresh_database() as url:
        connection = await asyncpg.connect(url)
        try:
            tables = await connection.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
        finally:
            await connection.close()
    assert tables == 0
