"""What the tests of the auth actor's hot state share (tests/integration/test_auth_profiles.py,
test_auth_hot_sessions.py, test_auth_session_writers.py, test_auth_names.py): each shard's
holder of one kind of state, a routing key for the other shard, and waiting for the outbox.

They run on the harness of tests/integration/test_auth_actor.py (two auth shards), which
the `auth_harness` fixture of tests/integration/conftest.py starts.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from actors.runtime.resident import Resident

if TYPE_CHECKING:
    from tests.integration.test_auth_actor import Harness


def holders(harness: Harness, name: str) -> list[Resident[str, Any] | None]:
    """Each auth shard's holder called `name` (None before its first use)."""
    group = harness.system._groups["auth"]
    found: list[Resident[str, Any] | None] = []
    for worker in group.workers:
        actor = worker._actor
        residents = actor.__dict__.get("_residents", {}) if actor is not None else {}
        found.append(residents.get(name))
    return found


def elsewhere(harness: Harness, user_id: str) -> str:
    """A routing key that lands on another auth shard than the user's."""
    home = harness.system.shard_for("auth", user_id)
    for n in range(100):
        if harness.system.shard_for("auth", f"elsewhere-{n}") != home:
            return f"elsewhere-{n}"
    raise AssertionError("every key routes to one shard")


async def relayed(harness: Harness) -> None:
    """Wait until the outbox sent what commits wrote (a Forget… from a write elsewhere
    reaches the owner through it too: a second drop, after the direct one)."""
    async with asyncio.timeout(5.0):
        while await harness.pool.fetchval(
            "SELECT count(*) FROM runtime_outbox WHERE sent_at IS NULL"
        ):
            await asyncio.sleep(0.01)
