"""The schema's run-once steps against a real PostgreSQL: applied in order and once, recorded
with their checksums, refused when edited or too new, and adopted from the old schema.sql."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from splitgo.db import apply_schema, open_database
from splitgo.schema import (
    BASELINE_VERSION,
    SCHEMA_VERSION,
    STEPS_DIR,
    SchemaStepEdited,
    SchemaTooNew,
    load_steps,
)
from tests.support.postgres import fresh_database

OLD_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "schema_before_migrations.sql"
# what splitgo/db.py did at every start before the steps, with the version it recorded
OLD_LOCK = 7_350_001
OLD_VERSION = 9
# the number a step added after the packaged ones takes (the packaged steps grow)
NEXT = len(load_steps()) + 1


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """An empty database (not the conftest's copy of the schema): these tests apply it."""
    async with fresh_database() as url:
        yield url


def _next(what: str) -> str:
    """The file name of a step added after every packaged one."""
    return f"{NEXT:04d}_{what}.sql"


def _steps(folder: Path, files: dict[str, str], *, with_baseline: bool = False) -> Path:
    """A steps folder holding `files` (after a copy of the packaged steps if asked)."""
    folder.mkdir(exist_ok=True)
    if with_baseline:
        for step in STEPS_DIR.glob("*.sql"):
            shutil.copy2(step, folder / step.name)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


async def _recorded(pool: asyncpg.Pool) -> list[tuple[int, str, str]]:
    rows = await pool.fetch("SELECT step, name, checksum FROM schema_migrations ORDER BY step")
    return [(row["step"], row["name"], row["checksum"]) for row in rows]


async def _apply_the_old_way(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", OLD_LOCK)
        await connection.execute(OLD_SCHEMA.read_text(encoding="utf-8"))
        await connection.execute(
            "INSERT INTO schema_version (singleton, version) VALUES (true, $1)", OLD_VERSION
        )


async def _catalog(pool: asyncpg.Pool) -> dict[str, list[tuple[object, ...]]]:
    """Every table's columns, index, constraint and trigger of the public schema."""
    queries = {
        "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default
                      FROM information_schema.columns WHERE table_schema = 'public'""",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                          FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
        "triggers": """SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
                       FROM pg_trigger WHERE NOT tgisinternal""",
    }
    return {
        kind: sorted(tuple(row) for row in await pool.fetch(query))
        for kind, query in queries.items()
    }


async def _some_data(pool: asyncpg.Pool) -> None:
    """A user, a wallet topped up through the ledger, and a group with its member."""
    await pool.execute(
        """
        INSERT INTO users (id, email, name) VALUES ('u1', 'ada@example.com', 'Ada');
        INSERT INTO payment_accounts (id, owner_kind, owner, currency, allow_negative, debits)
            VALUES (1, 'system', 'provider_clearing', 'EUR', true, 500);
        INSERT INTO payment_accounts (id, owner_kind, owner, currency, credits)
            VALUES (2, 'user', 'u1', 'EUR', 500);
        INSERT INTO payment_transfers (id, kind, debit_account_id, credit_account_id, amount,
                                       currency, to_user_id, created_at)
            VALUES ('t1', 'top_up', 1, 2, 500, 'EUR', 'u1', now());
        INSERT INTO payment_entries (transfer_id, account_id, side, amount, balance_after,
                                     created_at)
            VALUES ('t1', 1, 'debit', 500, -500, now()), ('t1', 2, 'credit', 500, 500, now());
        INSERT INTO splits_groups (id, name, currency, created_by, created_at)
            VALUES ('g1', 'Trip', 'EUR', 'u1', now());
        INSERT INTO splits_members (group_id, user_id, joined_at) VALUES ('g1', 'u1', now());
        """
    )


async def test_a_fresh_database_gets_every_step(pool: asyncpg.Pool) -> None:
    """A fresh database runs every packaged step and records each with its checksum and the
    newest step's schema version."""
    assert await pool.fetchval("SELECT to_regclass('schema_migrations') IS NULL")
    assert await apply_schema(pool) == SCHEMA_VERSION
    expected = [(step.number, step.name, step.checksum) for step in load_steps()]
    assert await _recorded(pool) == expected
    assert await pool.fetchval("SELECT version FROM schema_version") == SCHEMA_VERSION
    assert await pool.fetchval("SELECT to_regclass('rides_timeline') IS NOT NULL")


async def test_applying_twice_changes_nothing(pool: asyncpg.Pool) -> None:
    """A second start runs no step again: the data, the records and the version row stay."""
    await apply_schema(pool)
    before = await pool.fetch("SELECT * FROM schema_migrations ORDER BY step")
    await pool.execute(
        "INSERT INTO runtime_dead_letters (id, actor, shard, message_type, message_id,"
        " trace_id, attempts, error, body) VALUES ('d1','a',0,'M','m1','t',1,'e','{}')"
    )
    assert await apply_schema(pool) == SCHEMA_VERSION
    assert await pool.fetch("SELECT * FROM schema_migrations ORDER BY step") == before
    assert await pool.fetchval("SELECT count(*) FROM schema_version") == 1
    assert await pool.fetchval("SELECT count(*) FROM runtime_dead_letters") == 1


async def test_steps_run_in_order_and_once(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """Each step runs once, in number order: a later start runs only the steps added since."""
    folder = _steps(
        tmp_path / "steps",
        {
            "0002_first_run.sql": "INSERT INTO runs VALUES (2);",
            "0001_runs.sql": "CREATE TABLE runs (step integer NOT NULL);",
        },
    )
    assert await apply_schema(pool, folder) == BASELINE_VERSION + 1
    _steps(folder, {"0003_second_run.sql": "INSERT INTO runs VALUES (3);"})
    assert await apply_schema(pool, folder) == BASELINE_VERSION + 2
    assert await apply_schema(pool, folder) == BASELINE_VERSION + 2
    assert [row["step"] for row in await pool.fetch("SELECT step FROM runs")] == [2, 3]
    assert [step for step, _, _ in await _recorded(pool)] == [1, 2, 3]
    assert await pool.fetchval("SELECT version FROM schema_version") == BASELINE_VERSION + 2


async def test_an_edited_applied_step_stops_the_start(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """A step whose file changed after the database applied it stops the start with
    schema_step_edited, naming the step and asking for a new one; nothing else runs."""
    folder = _steps(tmp_path / "steps", {"0001_runs.sql": "CREATE TABLE runs (step integer);"})
    await apply_schema(pool, folder)
    _steps(
        folder,
        {
            "0001_runs.sql": "CREATE TABLE runs (step integer, note text);",
            "0002_more.sql": "INSERT INTO runs VALUES (2);",
        },
    )
    with pytest.raises(SchemaStepEdited, match=r"0001_runs\.sql has changed") as refused:
        await apply_schema(pool, folder)
    assert refused.value.code == "schema_step_edited"
    assert "put the change in a new step, 0003_what.sql" in str(refused.value)
    assert await pool.fetchval("SELECT count(*) FROM runs") == 0
    assert [step for step, _, _ in await _recorded(pool)] == [1]


async def test_a_database_with_steps_this_code_lacks_is_refused(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Older code must not run on a database a newer code's step changed: schema_too_new."""
    newer = _steps(tmp_path / "newer", {_next("index"): "SELECT 1;"}, with_baseline=True)
    await apply_schema(pool, newer)
    too_new = f"holds schema version {SCHEMA_VERSION + 1}; this code knows {SCHEMA_VERSION}"
    with pytest.raises(SchemaTooNew, match=too_new):
        await apply_schema(pool)
    await pool.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION)
    unknown = re.escape(f"does not know ({_next('index')}")
    with pytest.raises(SchemaTooNew, match=unknown) as refused:
        await apply_schema(pool)
    assert refused.value.code == "schema_too_new"


async def test_a_newer_schema_version_row_is_refused(pool: asyncpg.Pool) -> None:
    """A version row above what this code knows is refused, as before the steps."""
    await apply_schema(pool)
    await pool.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaTooNew, match=r"holds schema version \d+; this code knows"):
        await apply_schema(pool)


async def test_a_failing_step_keeps_nothing(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """A step that fails rolls back every step of that start, and the error names it."""
    folder = _steps(
        tmp_path / "steps",
        {
            "0001_runs.sql": "CREATE TABLE runs (step integer);",
            "0002_broken.sql": "INSERT INTO runs (no_such_column) VALUES (1);",
        },
    )
    with pytest.raises(asyncpg.UndefinedColumnError) as failed:
        await apply_schema(pool, folder)
    assert any("0002_broken.sql" in note for note in failed.value.__notes__)
    assert await pool.fetchval("SELECT to_regclass('runs') IS NULL")
    assert await pool.fetchval("SELECT to_regclass('schema_migrations') IS NULL")


async def test_two_nodes_starting_at_once_apply_each_step_once(
    database_url: str, tmp_path: Path
) -> None:
    """Two nodes (two pools) applying at once all succeed and run each step once: the
    advisory lock makes the second wait and then find nothing left to do."""
    folder = _steps(
        tmp_path / "steps",
        {_next("once"): "CREATE TABLE once_only (n integer); INSERT INTO once_only VALUES (1);"},
        with_baseline=True,
    )
    pools = [await asyncpg.create_pool(database_url, min_size=1, max_size=3) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(apply_schema(pool, folder) for pool in pools for _ in range(3))
        )
        assert results == [SCHEMA_VERSION + 1] * 6
        assert await pools[0].fetchval("SELECT count(*) FROM once_only") == 1
        assert [step for step, _, _ in await _recorded(pools[1])] == list(range(1, NEXT + 1))
    finally:
        await asyncio.gather(*(pool.close() for pool in pools))


async def test_a_database_of_the_old_schema_is_adopted(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """A database the old schema.sql made (its version row, no steps recorded) keeps its data,
    records step 1 as applied, runs the steps after it once, and keeps its ledger's rules."""
    await _apply_the_old_way(pool)
    await _some_data(pool)
    later = _steps(
        tmp_path / "steps",
        {_next("nicknames"): "ALTER TABLE users ADD COLUMN nickname text;"},
        with_baseline=True,
    )
    assert await apply_schema(pool) == SCHEMA_VERSION
    assert await apply_schema(pool, later) == SCHEMA_VERSION + 1
    assert await apply_schema(pool, later) == SCHEMA_VERSION + 1

    steps = load_steps(later)
    assert await _recorded(pool) == [(s.number, s.name, s.checksum) for s in steps]
    assert await pool.fetchval("SELECT version FROM schema_version") == SCHEMA_VERSION + 1
    assert await pool.fetchval("SELECT name FROM users WHERE id = 'u1'") == "Ada"
    assert await pool.fetchval("SELECT nickname FROM users WHERE id = 'u1'") is None
    assert await pool.fetchval("SELECT credits - debits FROM payment_accounts WHERE id = 2") == 500
    assert await pool.fetchval("SELECT count(*) FROM payment_entries") == 2
    assert await pool.fetchval("SELECT user_id FROM splits_members WHERE group_id = 'g1'") == "u1"
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE payment_transfers SET amount = 1")


async def test_an_adopted_database_matches_a_fresh_one(pool: asyncpg.Pool) -> None:
    """The old schema.sql and step 1 make the same tables, columns, indexes, constraints and
    triggers: adoption loses nothing and adds nothing."""
    await _apply_the_old_way(pool)
    await apply_schema(pool)
    async with fresh_database() as url:
        fresh = await asyncpg.create_pool(url, min_size=1, max_size=1)
        try:
            await apply_schema(fresh)
            adopted = await _catalog(pool)
            assert all(adopted.values())
            assert adopted == await _catalog(fresh)
        finally:
            await fresh.close()


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
        assert await database.pool.fetchval("SELECT count(*) FROM schema_migrations") >= 1
    finally:
        await database.close()
