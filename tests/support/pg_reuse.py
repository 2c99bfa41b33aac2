"""Giving a test database back as new: its rows deleted, its counters as the template's.

Making a copy of the schema template (CREATE DATABASE … TEMPLATE) creates some 670 files
on the server, a fifth of a second of its CPU: with hundreds of database tests that was
more CPU than the tests themselves. So tests/support/postgres.py gives a database a test
is done with to a later test instead, once `reset` has made it what a new copy would be:

* its structure is the template's (a fingerprint of the catalogs: relations, columns,
  constraints, triggers, functions, types, policies, rules, grants, settings), else it is
  dropped: a test that added a trigger, altered a column or left a prepared transaction
  does not pass it on;
* the tables the template fills (the schema's own records) hold exactly the template's
  rows, else it is dropped; every other table is emptied (DELETE, triggers and foreign
  keys off: no files made, unlike TRUNCATE);
* every sequence is where the template's is;
* the planner sees what it sees in a new copy: no statistics, the template's page and row
  counts, and no relation larger than `SMALL` (a larger one is dropped, as the planner
  would size it by its dead pages).

It needs a superuser (catalog counters, session_replication_role); `pristine` answers None
for another role, and the databases are then dropped as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

# a relation up to this size is planned as an empty one is: the planner takes a relation
# never vacuumed as 10 pages until it is larger
SMALL = 8 * 8192

# every user relation (not the catalogs, not another session's temporary ones)
_USER = """
    c.relnamespace NOT IN (
        SELECT oid FROM pg_namespace
        WHERE nspname IN ('pg_catalog', 'information_schema')
           OR nspname LIKE 'pg_toast%' OR nspname LIKE 'pg_temp%'
    )
"""

_FINGERPRINT = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(concat_ws(',', oid, relname, relkind, relnamespace, relnatts,
      relhasindex, relhastriggers, relrowsecurity, relpersistence, relacl::text,
      reloptions::text), ';' ORDER BY oid) FROM pg_class),
  (SELECT string_agg(concat_ws(',', attrelid, attnum, attname, atttypid, atttypmod,
      attnotnull, atthasdef, attisdropped, attgenerated, attidentity), ';'
      ORDER BY attrelid, attnum) FROM pg_attribute),
  (SELECT string_agg(concat_ws(',', oid, conname, convalidated, condeferrable,
      condeferred), ';' ORDER BY oid) FROM pg_constraint),
  (SELECT string_agg(concat_ws(',', oid, tgname, tgenabled), ';' ORDER BY oid)
      FROM pg_trigger),
  (SELECT string_agg(concat_ws(',', oid, proname, md5(prosrc), proconfig::text), ';'
      ORDER BY oid) FROM pg_proc),
  (SELECT string_agg(oid::text, ';' ORDER BY oid) FROM pg_attrdef),
  (SELECT string_agg(concat_ws(',', oid, typname), ';' ORDER BY oid) FROM pg_type),
  (SELECT string_agg(oid::text, ';' ORDER BY oid) FROM pg_enum),
  (SELECT string_agg(concat_ws(',', indexrelid, indisvalid, indisready), ';'
      ORDER BY indexrelid) FROM pg_index),
  (SELECT string_agg(concat_ws(',', seqrelid, seqincrement, seqmin, seqmax, seqcycle,
      seqstart), ';' ORDER BY seqrelid) FROM pg_sequence),
  (SELECT string_agg(concat_ws(',', oid, nspacl::text), ';' ORDER BY oid)
      FROM pg_namespace WHERE nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'),
  (SELECT string_agg(oid::text, ';' ORDER BY oid) FROM pg_policy),
  (SELECT string_agg(concat_ws(',', oid, ev_enabled), ';' ORDER BY oid) FROM pg_rewrite),
  (SELECT string_agg(concat_ws(',', oid, extversion), ';' ORDER BY oid) FROM pg_extension),
  (SELECT string_agg(oid::text, ';' ORDER BY oid) FROM pg_event_trigger),
  (SELECT count(*) FROM pg_largeobject_metadata),
  (SELECT string_agg(array_to_string(setconfig, ','), ';' ORDER BY setrole)
      FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
      WHERE d.datname = current_database()),
  (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database())
))
"""


@dataclass(frozen=True)
class Pristine:
    """What a new copy of the template looks like, to give a used database back as one."""

    fingerprint: str
    # every ordinary table, quoted and qualified, with its oid
    tables: dict[int, str]
    # the tables the template holds rows in: the md5 of their rows
    seeded: dict[int, str]
    # every sequence: (quoted name, last value or None when never called, start value)
    sequences: tuple[tuple[str, int | None, int], ...]
    # every user relation's planner counters: oid -> (relpages, reltuples, relallvisible)
    counters: dict[int, tuple[int, float, int]]
    statistics: int  # rows of pg_statistic about user relations
    oversized: int  # user relations larger than SMALL


async def pristine(connection: asyncpg.Connection) -> Pristine | None:
    """The template's state, read on a connection to it; None when this role may not
    reset databases (no superuser)."""
    if not await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        return None
    tables = {
        row["oid"]: row["name"]
        for row in await connection.fetch(
            f"""SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND {_USER}"""
        )
    }
    seeded = {}
    for oid, name in tables.items():
        if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name})"):
            seeded[oid] = await _rows_md5(connection, name)
    sequences = tuple(
        (row["name"], row["last_value"], row["start_value"])
        for row in await connection.fetch(
            """SELECT format('%I.%I', schemaname, sequencename) AS name, last_value, start_value
               FROM pg_sequences ORDER BY 1"""
        )
    )
    counters = {
        row["oid"]: (row["relpages"], row["reltuples"], row["relallvisible"])
        for row in await connection.fetch(
            f"SELECT c.oid, relpages, reltuples, relallvisible FROM pg_class c WHERE {_USER}"
        )
    }
    return Pristine(
        fingerprint=await connection.fetchval(_FINGERPRINT),
        tables=tables,
        seeded=seeded,
        sequences=sequences,
        counters=counters,
        statistics=await _statistics(connection),
        oversized=await _oversized(connection),
    )


async def reset(connection: asyncpg.Connection, template: Pristine) -> bool:
    """Make the database `connection` is on what a new copy of the template is; False
    (having changed nothing) when it cannot be: its structure or the template's own rows
    changed, or a relation grew past SMALL. Nothing else may be connected to it."""
    if await connection.fetchval(_FINGERPRINT) != template.fingerprint:
        return False
    for oid, rows in template.seeded.items():
        if await _rows_md5(connection, template.tables[oid]) != rows:
            return False
    if await _oversized(connection) != template.oversized:
        return False
    statistics = await _statistics(connection)
    if template.statistics and statistics != template.statistics:
        return False  # the template was analysed: its statistics cannot be put back
    # a table that never held a row has no page; one that did may be empty by now
    used = await connection.fetch(
        f"""SELECT c.oid FROM pg_class c
            WHERE c.relkind = 'r' AND {_USER} AND pg_relation_size(c.oid) > 0"""
    )
    async with connection.transaction():
        # no trigger and no foreign key check: every table is emptied at once
        await connection.execute("SET LOCAL session_replication_role = replica")
        for row in used:
            if row["oid"] not in template.seeded:
                await connection.execute(f"DELETE FROM {template.tables[row['oid']]}")
        for name, last, start in template.sequences:
            if last is None:
                await connection.execute("SELECT setval($1::regclass, $2, false)", name, start)
            else:
                await connection.execute("SELECT setval($1::regclass, $2, true)", name, last)
        if statistics and not template.statistics:
            await connection.execute(
                f"""DELETE FROM pg_statistic WHERE starelid IN (
                        SELECT c.oid FROM pg_class c WHERE {_USER})"""
            )
        await _restore_counters(connection, template.counters)
    return True


async def _restore_counters(
    connection: asyncpg.Connection, counters: dict[int, tuple[int, float, int]]
) -> None:
    """The planner's page and row counts of every user relation, as in the template (a
    vacuum or an analyse during the test set them)."""
    oids = list(counters)
    await connection.execute(
        """UPDATE pg_class AS c
           SET relpages = t.relpages, reltuples = t.reltuples, relallvisible = t.relallvisible
           FROM unnest($1::oid[], $2::int[], $3::real[], $4::int[])
                AS t(oid, relpages, reltuples, relallvisible)
           WHERE c.oid = t.oid
             AND (c.relpages, c.reltuples, c.relallvisible)
                 IS DISTINCT FROM (t.relpages, t.reltuples, t.relallvisible)""",
        oids,
        [counters[oid][0] for oid in oids],
        [counters[oid][1] for oid in oids],
        [counters[oid][2] for oid in oids],
    )


async def _rows_md5(connection: asyncpg.Connection, table: str) -> str:
    found: Any = await connection.fetchval(
        f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"
    )
    return str(found)


async def _statistics(connection: asyncpg.Connection) -> int:
    found: Any = await connection.fetchval(
        f"""SELECT count(*) FROM pg_statistic
            WHERE starelid IN (SELECT c.oid FROM pg_class c WHERE {_USER})"""
    )
    return int(found)


async def _oversized(connection: asyncpg.Connection) -> int:
    """How many relations (their TOAST tables too) are larger than SMALL."""
    found: Any = await connection.fetchval(
        f"""SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'i', 't', 'm')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
              AND pg_relation_size(c.oid) > {SMALL}"""
    )
    return int(found)
