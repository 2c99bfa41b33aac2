"""The node SPLITGO_REDIS_URL names (the seed) dies, on a 3-master Redis Cluster with a
replica per master started for this module (tests/support/redis_cluster.py, node timeout
1 s): its replica is promoted, so the cluster keeps every slot, but that address is gone.

What it shows: nodes that were running keep handling messages and hearing broadcasts and
live pushes (their connections find the other nodes, learnt from the cluster); a node
started afterwards with only the dead address cannot start, and one whose URL names
several nodes (comma-separated, transport/redis_seeds.py) starts from the others. The
setting's checks and the plain client's next address need no cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

import pytest
from redis.exceptions import RedisClusterException

from actors.runtime import ActorSystem, Message
from splitgo.config import ConfigError, load, refuse_unsafe
from splitgo.web.live import LiveHub, RedisLiveBus
from tests.runtime.conftest import Cluster, keys_on_distinct_shards, wait_until
from tests.support.cluster_nodes import (
    Counter,
    all_handled,
    live_url,
    own_cluster,
    send_counts,
    streams_transport,
)
from tests.support.node import free_port
from tests.support.redis import redis_url, unique_prefix
from tests.support.redis_cluster import (
    ThrowawayCluster,
    delete_cluster_prefix,
)
from transport import Codec
from transport.redis_broadcast import RedisBroadcast
from transport.redis_seeds import addresses, first_url, plain_client

pytestmark = pytest.mark.integration

SHARDS = 4
ACTOR = "seed-counter"


class SeedHello(Message, frozen=True):
    n: int


class _Recorded(LiveHub):
    """A live hub that records what the bus hands it."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    async def deliver_many(self, user_ids: Iterable[str], frame: bytes) -> int:
        self.frames.append(frame)
        return 1


@pytest.fixture(scope="module")
def replicated() -> Iterator[ThrowawayCluster]:
    """A cluster of this module's own: three masters, a replica each, 1 s node timeout."""
    yield from own_cluster(replicas=1, node_timeout_ms=1000)


@pytest.fixture
async def nodes(replicated: ThrowawayCluster) -> AsyncIterator[Cluster]:
    """Nodes whose URL names the seed only, under a key prefix of their own."""
    created = Cluster("redis-cluster", replicated.url, unique_prefix())
    try:
        yield created
    finally:
        await created.close()
        await delete_cluster_prefix(live_url(replicated), created.prefix)


def _seed_port(cluster: ThrowawayCluster) -> int:
    return cluster.ports[0]


def _kill_seed(cluster: ThrowawayCluster) -> None:
    """Kill the seed (a master at start) and wait for its replica's promotion; a no-op once
    it is dead."""
    seed = _seed_port(cluster)
    if seed in cluster.live_ports():
        cluster.wait_in_sync(cluster.replica_of(seed))  # or it could not take over
        cluster.kill(seed)


def _spawn(system: ActorSystem, seen: list[tuple[str, int]]) -> None:
    system.spawn(Counter, ACTOR, factory=lambda: Counter(seen), shards=SHARDS, key=lambda m: m.key)


async def _poll(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_running_nodes_outlive_the_seed(nodes: Cluster, replicated: ThrowawayCluster) -> None:
    """After the node their URL names is killed (its replica promoted), running nodes
    handle every message sent before and after, and their broadcast and live bus, which
    were connected to it, hear what is published after."""
    seen: list[tuple[str, int]] = []
    systems = [await nodes.node(name) for name in ("node-a", "node-b")]
    for system in systems:
        _spawn(system, seen)
    await wait_until(
        lambda: (
            [len(streams_transport(s).owned_shards(ACTOR)) for s in systems] == [SHARDS // 2] * 2
        )
    )
    codec = Codec()
    codec.register(SeedHello)
    prefix = nodes.prefix
    heard: list[Message] = []
    broadcast = RedisBroadcast(url=nodes.url, prefix=prefix, codec=codec, node_id="node-a")
    broadcast.listen(SeedHello, heard.append)
    hub = _Recorded()
    bus = RedisLiveBus(nodes.url, prefix, hub)
    keys = keys_on_distinct_shards(SHARDS)
    ref = systems[0].ref(ACTOR)
    try:
        await broadcast.start()
        await bus.start()
        await _poll(lambda: broadcast.subscriptions == 1)
        await send_counts(ref, keys, range(0, 20))
        await all_handled(seen, keys, range(0, 20))

        await asyncio.to_thread(_kill_seed, replicated)
        await send_counts(ref, keys, range(20, 40))
        await all_handled(seen, keys, range(0, 40))
        # published (on another node) until heard: the subscription is made again after
        # the kill, and pub/sub keeps nothing for a subscriber away
        for n in range(1000):
            await broadcast.publish(SeedHello(n=n))
            await bus.push("user-1", b"frame")
            if heard and hub.frames:
                break
            await asyncio.sleep(0.05)
        assert heard
        assert hub.frames
        assert broadcast.subscriptions >= 2
    finally:
        await broadcast.close()
        await bus.close()


async def test_a_node_starting_after_the_seed_died_starts_from_another(
    replicated: ThrowawayCluster,
) -> None:
    """With the seed dead, a node whose URL names it alone cannot start; one whose URL
    names it and another node starts, takes every shard and handles messages."""
    await asyncio.to_thread(_kill_seed, replicated)
    other = next(port for port in replicated.live_ports() if port != _seed_port(replicated))
    prefix = unique_prefix()
    alone = Cluster("redis-cluster", replicated.url, prefix)
    with pytest.raises((RedisClusterException, OSError)):
        await alone.node("node-c")
    await alone.close()

    seeds = f"{replicated.url},redis://127.0.0.1:{other}/0"
    created = Cluster("redis-cluster", seeds, prefix)
    seen: list[tuple[str, int]] = []
    try:
        system = await created.node("node-d")
        _spawn(system, seen)
        await wait_until(lambda: len(streams_transport(system).owned_shards(ACTOR)) == SHARDS)
        keys = keys_on_distinct_shards(SHARDS)
        await send_counts(system.ref(ACTOR), keys, range(10))
        await all_handled(seen, keys, range(10))

        codec = Codec()
        codec.register(SeedHello)
        heard: list[Message] = []
        broadcast = RedisBroadcast(url=seeds, prefix=prefix, codec=codec, node_id="node-d")
        broadcast.listen(SeedHello, heard.append)
        try:
            await broadcast.start()
            await _poll(lambda: broadcast.subscriptions == 1)
            await broadcast.publish(SeedHello(n=1))
            await _poll(lambda: heard == [SeedHello(n=1)])
        finally:
            await broadcast.close()
    finally:
        await created.close()
        await delete_cluster_prefix(live_url(replicated), prefix)


def test_the_url_setting_names_several_nodes_of_a_cluster() -> None:
    """SPLITGO_REDIS_URL may list nodes of a cluster, comma-separated: each host and port is
    a seed and the first URL's options apply to all; each URL is checked as one was."""
    url = "redis://:hunter2@10.0.0.1:7000/0, redis://10.0.0.2:7001,rediss://10.0.0.3"
    settings = load({"SPLITGO_REDIS_CLUSTER": "1", "SPLITGO_REDIS_URL": url})
    refuse_unsafe(settings)
    assert addresses(url) == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 6379)]
    assert first_url(url) == "redis://:hunter2@10.0.0.1:7000/0"
    bad = "redis://:hunter2@10.0.0.1:7000/0,redis://10.0.0.2:7001/2"
    with pytest.raises(ConfigError, match="database 0 only") as refused:
        refuse_unsafe(load({"SPLITGO_REDIS_CLUSTER": "1", "SPLITGO_REDIS_URL": bad}))
    assert "hunter2" not in str(refused.value)


def test_several_urls_are_for_a_cluster_only() -> None:
    """Without cluster mode, a URL list is refused (one Redis has one address)."""
    settings = load({"SPLITGO_REDIS_URL": "redis://:p@a:6379/0,redis://b:6379/0"})
    with pytest.raises(ConfigError, match="SPLITGO_REDIS_CLUSTER") as refused:
        refuse_unsafe(settings)
    assert ":p@" not in str(refused.value)


async def test_a_plain_client_tries_the_next_address_when_one_is_gone() -> None:
    """A plain client (broadcast, live bus) whose first address refuses connections
    connects to the next one it names."""
    closed = free_port()
    client = plain_client(f"redis://127.0.0.1:{closed}/0,{redis_url()}")
    try:
        assert await client.ping()
    finally:
        await client.aclose()
