"""The Redis Streams transport on a real 3-master Redis Cluster (tests/support/redis_cluster.py):
an actor type's shards spread over the masters with each shard's keys on one of them, two
nodes share the shards by lease, and the pub/sub parts (broadcast, live pushes) reach nodes
connected to different masters. The runtime's own tests run on the cluster too
(tests/runtime, the `redis-cluster` parameter)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

import pytest
from redis.asyncio.cluster import RedisCluster

from actors.runtime import Actor, ActorSystem, Message, handles
from splitgo.web.live import LiveHub, RedisLiveBus
from tests.runtime.conftest import Cluster, keys_on_distinct_shards, wait_until
from tests.support.redis import delete_prefix, redis_url, unique_prefix
from tests.support.redis_cluster import (
    delete_cluster_prefix,
    master_urls,
    redis_cluster_url,
)
from transport import Codec
from transport.redis_broadcast import RedisBroadcast
from transport.redis_streams import RedisStreamsTransport

pytestmark = pytest.mark.integration

SHARDS = 8


class Count(Message, frozen=True):
    key: str
    n: int


class Counter(Actor):
    """Records every message it handles, with the node and shard that handled it."""

    def __init__(self, node: str, seen: list[tuple[str, int, Count]]) -> None:
        self.node = node
        self.seen = seen

    @handles(Count)
    async def count(self, message: Count) -> None:
        self.seen.append((self.node, self.shard, message))


@pytest.fixture
async def nodes() -> AsyncIterator[Cluster]:
    """Nodes on the session's Redis Cluster, under a key prefix of their own."""
    created = Cluster("redis-cluster", redis_cluster_url(), unique_prefix())
    try:
        yield created
    finally:
        await created.close()
        await delete_cluster_prefix(created.url, created.prefix)


@pytest.fixture
async def one_redis() -> AsyncIterator[Cluster]:
    """Nodes on the test Redis (a single server), under a key prefix of their own."""
    created = Cluster("redis", redis_url(), unique_prefix())
    try:
        yield created
    finally:
        await created.close()
        await delete_prefix(created.url, created.prefix)


def _home(client: RedisCluster, key: str) -> str:
    node = client.get_node_from_key(key)
    assert node is not None
    return node.name


def _owned(system: ActorSystem) -> int:
    transport = system.transport
    assert isinstance(transport, RedisStreamsTransport)
    return len(transport.owned_shards("counter"))


async def _share_and_count(nodes: Cluster) -> RedisStreamsTransport:
    """Two nodes take half the shards each (the first hands back what the second takes);
    every message is then handled once, in order per key, by the shard's owner."""
    seen: list[tuple[str, int, Count]] = []
    systems = []
    for name in ("node-a", "node-b"):
        system = await nodes.node(name)
        system.spawn(
            Counter,
            "counter",
            factory=lambda name=name: Counter(name, seen),  # type: ignore[misc]
            shards=SHARDS,
            key=lambda m: m.key,
        )
        systems.append(system)
    await wait_until(lambda: [_owned(s) for s in systems] == [SHARDS // 2] * 2)
    keys = keys_on_distinct_shards(SHARDS)
    ref = systems[0].ref("counter")
    for n in range(5):
        for key in keys:
            await ref.tell(Count(key=key, n=n))
    await wait_until(lambda: len(seen) == 5 * SHARDS)
    for key in keys:
        assert [m.n for _, _, m in seen if m.key == key] == list(range(5))
    assert {node for node, _, _ in seen} == {"node-a", "node-b"}
    transport = systems[0].transport
    assert isinstance(transport, RedisStreamsTransport)
    return transport


async def test_shards_handed_back_lose_nothing_to_a_read_in_flight(one_redis: Cluster) -> None:
    """On one Redis: a shard handed to a joining node gets every later message (a blocking
    read the old owner had in flight no longer keeps entries pending out of reach)."""
    await _share_and_count(one_redis)


async def test_two_nodes_share_the_shards_whose_keys_stay_together_on_one_master(
    nodes: Cluster,
) -> None:
    """On the cluster: two nodes share the shards and every message is handled once, in
    order; the streams sit on more than one master, each with its lease, counter, timers."""
    transport = await _share_and_count(nodes)
    client = RedisCluster.from_url(nodes.url)
    try:
        await client.initialize()
        masters = set()
        for shard in range(SHARDS):
            homes = {_home(client, key) for key in transport.keys.of_shard("counter", shard)}
            assert len(homes) == 1
            masters |= homes
        assert len(masters) > 1
    finally:
        await client.aclose()


async def test_operators_see_every_shard_on_the_cluster(nodes: Cluster) -> None:
    """shard_info (the ops view) reads each shard's lease and stream across the masters."""
    system = await nodes.node("node-a")
    system.spawn(Counter, "counter", factory=lambda: Counter("node-a", []), shards=SHARDS)
    await wait_until(lambda: _owned(system) == SHARDS)
    transport = system.transport
    assert isinstance(transport, RedisStreamsTransport)
    info = await transport.shard_info("counter", SHARDS)
    assert [row["shard"] for row in info] == list(range(SHARDS))
    assert {row["node"] for row in info} == {"node-a"}
    assert all(row["lease_expires_in_ms"] for row in info)


class Hello(Message, frozen=True):
    n: int


class _Recorded(LiveHub):
    """A live hub that records what the bus hands it."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    async def deliver_many(self, user_ids: Iterable[str], frame: bytes) -> int:
        self.frames.append(frame)
        return 1


async def _poll(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_broadcast_and_live_pushes_reach_nodes_on_other_masters() -> None:
    """PUBLISH on one master is heard by subscribers connected to the others: the broadcast
    and the live bus work on a cluster as they are."""
    urls = master_urls(redis_cluster_url())
    assert len(urls) == 3
    codec = Codec()
    codec.register(Hello)
    prefix = unique_prefix()
    heard: list[list[Message]] = [[] for _ in urls]
    broadcasts = [
        RedisBroadcast(url=url, prefix=prefix, codec=codec, node_id=f"node-{i}")
        for i, url in enumerate(urls)
    ]
    hubs = [_Recorded() for _ in urls]
    buses = [RedisLiveBus(url, prefix, hub) for url, hub in zip(urls, hubs, strict=True)]
    try:
        for broadcast, into in zip(broadcasts, heard, strict=True):
            broadcast.listen(Hello, into.append)
            await broadcast.start()
        for bus in buses:
            await bus.start()
        await _poll(lambda: all(b.subscriptions == 1 for b in broadcasts))
        await broadcasts[0].publish(Hello(n=1))
        await _poll(lambda: all(into == [Hello(n=1)] for into in heard))
        await buses[2].push("user-1", b"frame")
        await _poll(lambda: all(hub.frames == [b"frame"] for hub in hubs))
    finally:
        for broadcast in broadcasts:
            await broadcast.close()
        for bus in buses:
            await bus.close()
