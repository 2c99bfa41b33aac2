"""The Redis broadcast (transport/redis_broadcast.py) on a real Redis: a message reaches
every node's listeners, and a dropped subscription is made again and announced, so the
listeners can catch up on what pub/sub dropped meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis

from tests.support.redis import redis_url, unique_prefix
from transport import Codec, Message
from transport.redis_broadcast import RedisBroadcast

pytestmark = pytest.mark.integration


class Hello(Message, frozen=True):
    n: int


async def poll(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def nodes() -> AsyncIterator[list[RedisBroadcast]]:
    codec = Codec()
    codec.register(Hello)
    prefix = unique_prefix()
    made = [
        RedisBroadcast(url=redis_url(), prefix=prefix, codec=codec, node_id=name)
        for name in ("a", "b")
    ]
    try:
        yield made
    finally:
        for broadcast in made:
            await broadcast.close()


async def test_a_message_reaches_every_node_and_survives_a_dropped_subscription(
    nodes: list[RedisBroadcast],
) -> None:
    """Published on node a, heard on a and b; after b's subscription is killed, b
    subscribes again, says so (on_connected), and hears the next message."""
    heard: dict[str, list[Message]] = {"a": [], "b": []}
    connected = {"a": 0, "b": 0}

    def counter(name: str) -> Callable[[], None]:
        def count() -> None:
            connected[name] += 1

        return count

    for name, broadcast in zip(("a", "b"), nodes, strict=True):
        broadcast.listen(Hello, heard[name].append)
        broadcast.on_connected(counter(name))
        await broadcast.start()
    await poll(lambda: connected == {"a": 1, "b": 1})
    await nodes[0].publish(Hello(n=1))
    await poll(lambda: heard["a"] == [Hello(n=1)] and heard["b"] == [Hello(n=1)])

    client = redis.Redis.from_url(redis_url())
    try:
        subscribers = await client.client_list(_type="pubsub")
        ids = [c["id"] for c in subscribers if c["name"] == nodes[1].client_name]
        assert len(ids) == 1
        await client.client_kill_filter(_id=ids[0])
    finally:
        await client.aclose()
    await poll(lambda: connected["b"] == 2)
    await nodes[0].publish(Hello(n=2))
    await poll(lambda: heard["b"] == [Hello(n=1), Hello(n=2)])
    assert connected["a"] == 1
