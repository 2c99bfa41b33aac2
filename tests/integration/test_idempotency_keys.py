"""The runtime's one idempotency helper (`KeyTable`) on a real PostgreSQL table: a key is
recorded with the effect, replays its first reply, refuses another request, answers a
pending flow as in flight until it completes, loses a race without a second effect, and
is pruned after its retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest

from actors.runtime import IdempotencyConflict, IdempotencyInFlight, IdempotencyKey, KeyTable
from actors.runtime.idempotency import fingerprint_of
from splitgo.db import apply_schema

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Made(msgspec.Struct, frozen=True):
    id: str
    amount: int


def key(name: str = "k1", body: object = None) -> IdempotencyKey:
    return IdempotencyKey(
        scope="u1 POST /api/v1/things", key=name, fingerprint=fingerprint_of(body or {"a": 1})
    )


@pytest.fixture
async def keys(pool: asyncpg.Pool) -> KeyTable:
    await apply_schema(pool)
    await pool.execute("CREATE TABLE things (id text PRIMARY KEY)")
    return KeyTable("splits_idempotency")


async def make(pool: asyncpg.Pool, keys: KeyTable, given: IdempotencyKey, thing: str) -> Made:
    """The pattern every handler follows: replay, else the effect and the key in one commit."""
    known = await keys.recall(pool, given, Made)
    if known is not None:
        return known
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("INSERT INTO things (id) VALUES ($1)", thing)
        made = Made(id=thing, amount=100)
        await keys.remember(connection, given, made, NOW)
    return made


async def test_a_retry_gets_the_first_reply_and_no_second_effect(
    pool: asyncpg.Pool, keys: KeyTable
) -> None:
    """The same key and request twice: one row, the first reply both times."""
    first = await make(pool, keys, key(), "t1")
    again = await make(pool, keys, key(), "t2")
    assert again == first == Made(id="t1", amount=100)
    assert await pool.fetchval("SELECT count(*) FROM things") == 1


async def test_another_request_under_the_key_is_a_conflict(
    pool: asyncpg.Pool, keys: KeyTable
) -> None:
    """The same key with another body is refused, naming the header, and changes nothing."""
    await make(pool, keys, key(), "t1")
    with pytest.raises(IdempotencyConflict) as refused:
        await make(pool, keys, key(body={"a": 2}), "t2")
    assert refused.value.details == {"field": "Idempotency-Key"}
    assert await pool.fetchval("SELECT count(*) FROM things") == 1


async def test_keys_of_other_scopes_do_not_meet(pool: asyncpg.Pool, keys: KeyTable) -> None:
    """One key string used by two callers is two keys."""
    await make(pool, keys, key(), "t1")
    theirs = msgspec.structs.replace(key(), scope="u2 POST /api/v1/things")
    assert await make(pool, keys, theirs, "t2") == Made(id="t2", amount=100)


async def test_a_rolled_back_effect_leaves_no_key(pool: asyncpg.Pool, keys: KeyTable) -> None:
    """A crash before the commit takes the key with the effect: the retry runs anew."""

    async def crashing() -> None:
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("INSERT INTO things (id) VALUES ('t1')")
            await keys.remember(connection, key(), Made(id="t1", amount=100), NOW)
            raise RuntimeError("crash before the commit")

    with pytest.raises(RuntimeError):
        await crashing()
    assert await keys.recall(pool, key(), Made) is None
    assert await make(pool, keys, key(), "t1") == Made(id="t1", amount=100)


async def test_a_pending_flow_is_in_flight_until_completed(
    pool: asyncpg.Pool, keys: KeyTable
) -> None:
    """A key recorded as pending refuses its retry as in flight; once the flow completes
    the retry gets the final reply."""
    await keys.remember(pool, key(), None, NOW, pending=True, subject="s1")
    with pytest.raises(IdempotencyInFlight):
        await keys.recall(pool, key(), Made)
    await keys.complete(pool, "s1", Made(id="s1", amount=7))
    assert await keys.recall(pool, key(), Made) == Made(id="s1", amount=7)
    await keys.complete(pool, "s1", Made(id="s1", amount=8))  # only pending ones change
    assert await keys.recall(pool, key(), Made) == Made(id="s1", amount=7)


async def test_two_racing_transactions_commit_one_effect(
    pool: asyncpg.Pool, keys: KeyTable
) -> None:
    """Two transactions inserting one key at once (two shards, two nodes): one commits,
    the other is refused as in flight and its effect rolls back."""
    both_wrote = asyncio.Barrier(2)

    async def attempt(thing: str) -> str:
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("INSERT INTO things (id) VALUES ($1)", thing)
            await both_wrote.wait()
            await keys.remember(connection, key(), Made(id=thing, amount=1), NOW)
        return thing

    results = await asyncio.gather(attempt("t1"), attempt("t2"), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["IdempotencyInFlight", "str"]
    assert await pool.fetchval("SELECT count(*) FROM things") == 1


async def test_keys_are_pruned_after_their_retention(pool: asyncpg.Pool, keys: KeyTable) -> None:
    """Pruning forgets keys recorded before the cut-off and keeps the rest."""
    await keys.remember(pool, key("old"), Made(id="a", amount=1), NOW - timedelta(days=3))
    await keys.remember(pool, key("new"), Made(id="b", amount=1), NOW)
    assert await keys.prune(pool, NOW - timedelta(days=2), chunk=1) == 1
    assert await keys.recall(pool, key("old"), Made) is None
    assert await keys.recall(pool, key("new"), Made) == Made(id="b", amount=1)


def test_a_table_must_be_an_actors_idempotency_table() -> None:
    """The helper refuses any other table name (it is spliced into SQL)."""
    with pytest.raises(ValueError, match="_idempotency"):
        KeyTable("users; DROP TABLE x")


def test_fingerprints_follow_the_content_not_the_order_of_keys() -> None:
    """A body's fingerprint is canonical: the same dict in another order is the same."""
    assert fingerprint_of({"a": 1, "b": 2}) == fingerprint_of({"b": 2, "a": 1})
    assert fingerprint_of({"a": 1}) != fingerprint_of({"a": 2})
    assert fingerprint_of("ab", "c") != fingerprint_of("a", "bc")
