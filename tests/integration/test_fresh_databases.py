"""The test databases themselves: each a copy of the session's schema template, of its own,
and empty when asked for an empty one (tests/support/postgres.py); a used copy is given to
a later test only as a new one (tests/support/pg_reuse.py)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from splitgo.db import apply_schema
from splitgo.schema import SCHEMA_VERSION, load_steps
from tests.support.postgres import (
    Databases,
    admin_url,
    database_url,
    fresh_database,
    session_databases,
)


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


async def test_a_used_copy_comes_back_as_a_new_one() -> None:
    """A copy a test wrote rows in, advanced a sequence of and analysed is given to a later
    test (not made afresh) with no row, the sequence where the template left it, no
    statistics and the template's planner counts; the first test's URL no longer reaches it."""
    databases = session_databases()
    insert = (
        "INSERT INTO runtime_dead_letters (id, actor, shard, message_type, message_id,"
        " trace_id, attempts, error, body) VALUES ('d1','a',0,'M','m1','t',1,'e','{}')"
    )
    async with fresh_database(schema=True) as first:
        connection = await asyncpg.connect(first)
        try:
            sequence = await connection.fetchval(
                "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences LIMIT 1"
            )
            before = await connection.fetchval("SELECT last_value FROM pg_sequences LIMIT 1")
            await connection.execute(insert)
            if sequence is not None:
                await connection.fetchval("SELECT nextval($1::regclass)", sequence)
            await connection.execute("ANALYZE runtime_dead_letters")
            made = await connection.fetchval("SELECT current_database()")
        finally:
            await connection.close()
    await wait_for_reuse(databases, made)
    waiting = databases.reused()
    assert waiting, "the used copy was made new, not dropped"
    async with fresh_database(schema=True) as later:
        connection = await asyncpg.connect(later)
        try:
            assert await connection.fetchval("SELECT current_database()") == waiting[0]
            assert await connection.fetchval("SELECT count(*) FROM runtime_dead_letters") == 0
            if sequence is not None:
                after = await connection.fetchval("SELECT last_value FROM pg_sequences LIMIT 1")
                assert after == before
            stats = await connection.fetchval(
                "SELECT count(*) FROM pg_statistic"
                " WHERE starelid = 'runtime_dead_letters'::regclass"
            )
            assert stats == 0
            counted = await connection.fetchval(
                "SELECT reltuples FROM pg_class WHERE oid = 'runtime_dead_letters'::regclass"
            )
            assert counted == -1  # never analysed, as in the template
            await connection.execute(insert)  # the same key is free again
        finally:
            await connection.close()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(first)


async def test_a_copy_whose_structure_changed_is_dropped_not_reused() -> None:
    """A copy a test added a trigger to is never given to another test: it is dropped."""
    databases = session_databases()
    async with fresh_database(schema=True) as url:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$"
            )
            await connection.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON runtime_dead_letters"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
            made = await connection.fetchval("SELECT current_database()")
        finally:
            await connection.close()
    await wait_for_reuse(databases, made)
    admin = await asyncpg.connect(admin_url())
    try:
        left = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
    finally:
        await admin.close()
    for row in left:
        if row["datname"] in databases.reused():
            probe = await asyncpg.connect(database_url(row["datname"]))
            try:
                triggers = await probe.fetchval(
                    "SELECT count(*) FROM pg_trigger WHERE tgname = 'refuse'"
                )
            finally:
                await probe.close()
            assert triggers == 0


async def test_a_connection_left_open_is_closed_before_reuse() -> None:
    """A connection a test leaves open on its database is closed when the test ends, and
    the database is given back new all the same."""
    databases = session_databases()
    async with fresh_database(schema=True) as url:
        leftover = await asyncpg.connect(url)
        made = await leftover.fetchval("SELECT current_database()")
    await wait_for_reuse(databases, made)
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        await leftover.fetchval("SELECT 1")
    await leftover.close()


async def wait_for_reuse(databases: Databases, name: str) -> None:
    """Wait until database `name`, given back, has been made new or dropped."""
    async with asyncio.timeout(30):
        while databases.resetting():
            await asyncio.sleep(0.01)
    assert name not in databases.reused()  # renamed when made new
