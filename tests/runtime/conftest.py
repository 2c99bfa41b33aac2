"""Fixtures for the runtime's semantic tests, run on both transports: memory and Redis Streams.

Every test taking `system` (or `cluster`) runs three times: on the codec-checking memory
transport, and on the Redis Streams transport under a key prefix of its own, once on the
test Redis (see tests/support/redis.py) and once on a 3-master Redis Cluster started for
the session (tests/support/redis_cluster.py); their keys are deleted afterwards. The Redis
runs are marked `integration`: `-m "not integration"` keeps to the memory ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.runtime import ActorSystem, MemoryDeadLetterStore
from tests.support.redis import delete_prefix, redis_url, unique_prefix
from tests.support.redis_cluster import delete_cluster_prefix, redis_cluster_url
from tests.unit.conftest import keys_on_distinct_shards, wait_until
from transport import Codec, Envelope, MemoryTransport, Transport
from transport.redis_keys import new_client
from transport.redis_streams import RedisStreamsTransport

__all__ = [
    "keys_on_distinct_shards",
    "left_in_stream",
    "ready",
    "taken_in",
    "timers_in_redis",
    "wait_until",
]

NODE_ID = "runtime-node"
# how long stopping a test's nodes after it waits for their work in hand
STOP_AFTER_TEST = 0.2

TRANSPORTS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.integration),
    pytest.param("redis-cluster", id="redis-cluster", marks=pytest.mark.integration),
]


class Cluster:
    """The nodes of one test, on one transport; on Redis they share a key prefix, so a
    second node takes over what the first one left."""

    def __init__(self, kind: str, url: str = "", prefix: str = "") -> None:
        self.kind = kind
        self.url = url
        self.prefix = prefix
        self._systems: list[ActorSystem] = []
        self._open: list[Transport] = []

    @property
    def redis(self) -> bool:
        return self.kind in ("redis", "redis-cluster")

    def transport(self, node_id: str, codec: Codec) -> Transport:
        if self.redis:
            transport: Transport = RedisStreamsTransport(
                node_id=node_id,
                url=self.url,
                codec=codec,
                prefix=self.prefix,
                lease_ttl=2.0,
                block_ms=200,
                cluster=self.kind == "redis-cluster",
            )
        else:
            transport = MemoryTransport(node_id=node_id, codec=codec)
        self._open.append(transport)
        return transport

    async def node(
        self,
        node_id: str = NODE_ID,
        *,
        codec: Codec | None = None,
        dead_letters: MemoryDeadLetterStore | None = None,
        ask_timeout: float = 10.0,
    ) -> ActorSystem:
        """A started ActorSystem on a transport of its own; stopped after the test. The ask
        timeout is a guard, generous: tests of timing out pass their own."""
        codec = codec or Codec()
        system = ActorSystem(
            self.transport(node_id, codec),
            codec=codec,
            dead_letters=dead_letters or MemoryDeadLetterStore(),
            ask_timeout=ask_timeout,
        )
        self._systems.append(system)
        await system.start()
        return system

    async def close_transport(self, transport: Transport) -> None:
        """Close a transport (after its system stopped); closing it again is a no-op."""
        if transport in self._open:
            self._open.remove(transport)
            await transport.close()

    async def close(self) -> None:
        for system in self._systems:
            # after the test: what it left in hand (a held gate, a parked key waiting out a
            # long backoff) is not waited for; the test has checked what it meant to
            await system.stop(timeout=STOP_AFTER_TEST)
        for transport in list(self._open):
            await self.close_transport(transport)


@pytest.fixture(params=TRANSPORTS)
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """Where this test's nodes run: in memory, or on Redis (one server or a Redis Cluster)
    under a fresh key prefix."""
    if request.param == "redis":
        created = Cluster("redis", redis_url(), unique_prefix())
    elif request.param == "redis-cluster":
        created = Cluster("redis-cluster", redis_cluster_url(), unique_prefix())
    else:
        created = Cluster("memory")
    try:
        yield created
    finally:
        await created.close()
        if created.kind == "redis":
            await delete_prefix(created.url, created.prefix)
        elif created.kind == "redis-cluster":
            await delete_cluster_prefix(created.url, created.prefix)


@pytest.fixture
def codec() -> Codec:
    """A fresh codec per test, so message tags never clash between tests."""
    return Codec()


@pytest.fixture
def dead_letters() -> MemoryDeadLetterStore:
    return MemoryDeadLetterStore()


@pytest.fixture
async def system(
    cluster: Cluster, codec: Codec, dead_letters: MemoryDeadLetterStore
) -> ActorSystem:
    """A started ActorSystem with the codec check on, stopped after the test (a second stop
    is a no-op)."""
    return await cluster.node(NODE_ID, codec=codec, dead_letters=dead_letters)


@pytest.fixture
def transport(system: ActorSystem) -> Transport:
    return system.transport


async def ready(system: ActorSystem, timeout: float = 5.0) -> None:
    """Wait until this node owns every shard it hosts (at once in memory; by lease, a few
    milliseconds after spawn, on Redis)."""
    transport = system.transport
    if not isinstance(transport, RedisStreamsTransport):
        return

    def all_owned() -> bool:
        return all(
            len(transport.owned_shards(name)) == system.ref(name)._route.shards
            for name in system.hosted()
        )

    await wait_until(all_owned, timeout=timeout)


def taken_in(system: ActorSystem) -> int:
    """Messages this node has taken in: handled, in hand, or waiting in its mailboxes.

    In memory a tell lands in the mailbox at once; on Redis it reaches this node's mailbox
    after a round trip, and what a stopping node has not read yet stays in the stream.
    """
    in_hand = sum(
        1 for group in system._groups.values() for w in group.workers if w.current is not None
    )
    return in_hand + sum(s.handled + s.mailbox for s in system.status())


def _redis_transport(system: ActorSystem) -> RedisStreamsTransport:
    transport = system.transport
    assert isinstance(transport, RedisStreamsTransport), "a Redis-only check"
    return transport


async def left_in_stream(system: ActorSystem, actor: str, shard: int = 0) -> list[Envelope]:
    """What the shard's stream still holds for its consumer group, in order: entries
    delivered but never acked (pending) and entries nobody read yet."""
    transport = _redis_transport(system)
    await transport.flush_now()  # acks still queued on this node
    stream = transport.keys.stream(actor, shard)
    client = new_client(transport.url, cluster=transport.cluster)
    try:
        entries: Any = await client.xrange(stream)
        groups: Any = await client.xinfo_groups(stream) if entries else []
        group = next((g for g in groups if g["name"] in (actor, actor.encode())), None)
        if group is None:
            # no node ever took this shard (stopped first): every entry is still there
            return [transport.codec.decode(fields[b"e"]) for _, fields in entries]
        last = _id_order(group["last-delivered-id"])
        pending: Any = await client.xpending_range(stream, actor, min="-", max="+", count=100_000)
        pending_ids = {_id_order(item["message_id"]) for item in pending}
    finally:
        await client.aclose()
    return [
        transport.codec.decode(fields[b"e"])
        for entry_id, fields in entries
        if _id_order(entry_id) in pending_ids or _id_order(entry_id) > last
    ]


async def timers_in_redis(system: ActorSystem) -> list[Envelope]:
    """The timers waiting in Redis, in the sorted sets of every routed shard, by due time."""
    transport = _redis_transport(system)
    client = new_client(transport.url, cluster=transport.cluster)
    try:
        found: list[tuple[bytes, float]] = []
        for actor, shards in system.routes().items():
            for shard in range(shards):
                key = transport.keys.timers(actor, shard)
                timers: Any = await client.zrange(key, 0, -1, withscores=True)
                found += timers
    finally:
        await client.aclose()
    return [transport.codec.decode(member) for member, _ in sorted(found, key=lambda m: m[1])]


def _id_order(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    millis, _, sequence = text.partition("-")
    return int(millis), int(sequence or 0)
