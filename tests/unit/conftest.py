"""Fixtures for the runtime's unit tests: an ActorSystem on a codec-checking memory transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from actors.runtime import ActorSystem, MemoryDeadLetterStore
from actors.runtime.system import Route
from transport import Codec, MemoryTransport

NODE_ID = "unit-node"


async def wait_until(
    condition: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.001
) -> None:
    """Poll `condition` until it holds; fail the test (rather than hang) after `timeout` s
    (a guard, generous: the suite runs on two busy workers)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            pytest.fail(f"condition not met within {timeout}s: {condition}")
        await asyncio.sleep(interval)


def keys_on_distinct_shards(shards: int) -> list[str]:
    """One key per shard (the i-th key routes to shard i), found with the runtime's routing."""
    route = Route("probe", shards, None)
    found: dict[int, str] = {}
    for i in range(10_000):
        key = f"key-{i}"
        found.setdefault(route.shard_for(None, key), key)
        if len(found) == shards:
            return [found[shard] for shard in range(shards)]
    raise AssertionError(f"no keys cover all {shards} shards")


@pytest.fixture
def codec() -> Codec:
    """A fresh codec per test, so message tags never clash between tests."""
    return Codec()


@pytest.fixture
def dead_letters() -> MemoryDeadLetterStore:
    return MemoryDeadLetterStore()


@pytest.fixture
def transport(codec: Codec) -> MemoryTransport:
    """The memory transport with the codec switch on: every envelope is encoded and decoded."""
    return MemoryTransport(node_id=NODE_ID, codec=codec)


@pytest.fixture
async def system(
    transport: MemoryTransport, codec: Codec, dead_letters: MemoryDeadLetterStore
) -> AsyncIterator[ActorSystem]:
    """A started ActorSystem, stopped after the test (a second stop is a no-op)."""
    actor_system = ActorSystem(transport, codec=codec, dead_letters=dead_letters, ask_timeout=10.0)
    await actor_system.start()
    try:
        yield actor_system
    finally:
        await actor_system.stop(timeout=1.0)
        await transport.close()
