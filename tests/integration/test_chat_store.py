"""The chat store's one-statement rate limit on a real PostgreSQL takes exactly what the
pure token bucket (actors/chat/rules.py) takes, try after try."""

from __future__ import annotations

import random

import asyncpg
import pytest

from actors.chat import store
from actors.chat.messages import RATE_BURST, RATE_PER_SECOND
from actors.chat.rules import Bucket, take_token

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_upsert_takes_what_the_pure_bucket_takes(pool: asyncpg.Pool, seed: int) -> None:
    """Over 300 tries at random gaps (bursts, pauses, a clock that goes back), the
    database's bucket and the rules' bucket take and refuse the same tries."""
    chance = random.Random(seed)
    now, bucket = 1_000_000.0, None
    pure: list[bool] = []
    stored: list[bool] = []
    for _ in range(300):
        now += chance.choice([0.0, 0.0, 0.05, 0.3, 1.0, 2.5, -1.0])
        after, wait = take_token(bucket, now)
        pure.append(wait == 0.0)
        if wait == 0.0:
            bucket = after
        async with pool.acquire() as connection, connection.transaction():
            stored.append(
                await store.take_rate_token(connection, "amy", now, RATE_BURST, RATE_PER_SECOND)
            )
    assert stored == pure
    assert any(pure)
    assert not all(pure)


async def test_a_refused_try_leaves_the_bucket_as_it_was(pool: asyncpg.Pool) -> None:
    """A try with no token changes nothing in the database: the next one a second later
    is taken."""
    for _ in range(RATE_BURST):
        assert await store.take_rate_token(pool, "bob", 50.0, RATE_BURST, RATE_PER_SECOND)
    before = await store.bucket(pool, "bob")
    assert not await store.take_rate_token(pool, "bob", 50.0, RATE_BURST, RATE_PER_SECOND)
    assert await store.bucket(pool, "bob") == before
    assert isinstance(before, Bucket)
    assert await store.take_rate_token(
        pool, "bob", 50.0 + 1 / RATE_PER_SECOND, RATE_BURST, RATE_PER_SECOND
    )
