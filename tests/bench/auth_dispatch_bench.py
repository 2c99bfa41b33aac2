"""What the auth actor's dispatch adds to a read answered from memory (GetUser, the hot
`GET /api/v1/me` path): the handler as the shard's loop calls it (`actor.dispatch`) against
the bare handler method, on the owner shard, the user already hot.

Run: `.venv/bin/python -m tests.bench.auth_dispatch_bench` (needs the tests' PostgreSQL;
SPLITGO_TEST_DATABASE_URL as for the integration tests). Prints microseconds per message,
best of `ROUNDS` rounds of `CALLS` calls each. Until session writes were tracked by the
auth transaction (actors/auth/profiles.py, `SessionsTransaction`), every handler ran inside
a tracking wrapper, about 1 µs per message on the shared test VM.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from actors.auth.actor import Auth
from actors.auth.messages import GetUser
from tests.integration.test_auth_actor import running
from tests.support.postgres import fresh_database

CALLS = 20_000
ROUNDS = 15


async def per_call(calls: list[Callable[[Any], Awaitable[Any]]], message: Any) -> list[float]:
    """Microseconds per awaited call of each of `calls`, best of ROUNDS (the rounds of the
    calls interleaved, so a busy machine slows them alike)."""
    best = [float("inf")] * len(calls)
    for _ in range(ROUNDS):
        for n, call in enumerate(calls):
            started = time.perf_counter()
            for _ in range(CALLS):
                await call(message)
            best[n] = min(best[n], time.perf_counter() - started)
    return [seconds / CALLS * 1e6 for seconds in best]


async def measure() -> tuple[float, float, bool]:
    """(through the dispatch table, the bare handler), in µs per GetUser from memory, and
    whether the dispatch entry is the bare handler itself."""
    async with fresh_database(schema=True) as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            async with running(pool) as harness:
                user = await harness.register()
                message = GetUser(user_id=user.id)
                await harness.ask(message)  # the owner now keeps the user
                home = harness.system.shard_for("auth", user.id)
                actor = harness.system._groups["auth"].workers[home]._actor
                assert isinstance(actor, Auth)
                dispatched, bare = await per_call(
                    [actor.dispatch[GetUser], actor.get_user], message
                )
                return dispatched, bare, actor.dispatch[GetUser] == actor.get_user
        finally:
            await pool.close()


def main() -> None:
    dispatched, bare, same = asyncio.run(measure())
    print(
        f"GetUser from memory: {dispatched:.2f} µs through actor.dispatch, "
        f"{bare:.2f} µs bare handler, dispatch adds {dispatched - bare:.2f} µs"
        + (" (the entry is the bare handler: the difference is noise)" if same else "")
    )


if __name__ == "__main__":
    main()
