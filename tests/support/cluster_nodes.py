"""What the Redis Cluster fault tests share (failover, a dead seed, resharding): a counting
actor and its message, a cluster of a module's own, the nodes' transports, sending keyed
counts and waiting until every one was handled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors.runtime import Actor, ActorRef, ActorSystem, Message, handles
from tests.runtime.conftest import Cluster, wait_until
from tests.support.redis_cluster import ThrowawayCluster, start_throwaway_cluster
from transport.redis_streams import RedisStreamsTransport


class Counted(Message, frozen=True):
    """The n-th message of a key."""

    key: str
    n: int


class Counter(Actor):
    """Records every count it handles, as (key, n)."""

    def __init__(self, seen: list[tuple[str, int]]) -> None:
        self.seen = seen

    @handles(Counted)
    async def count(self, message: Counted) -> None:
        self.seen.append((message.key, message.n))


def own_cluster(**options: Any) -> Iterator[ThrowawayCluster]:
    """A module fixture's body: a cluster started for the module (`start_throwaway_cluster`
    options), stopped after it."""
    cluster = start_throwaway_cluster(**options)
    try:
        yield cluster
    finally:
        cluster.stop()


def live_url(cluster: ThrowawayCluster) -> str:
    """A URL of a cluster node that is up now."""
    return f"redis://127.0.0.1:{cluster.live_ports()[0]}/0"


def streams_transport(system: ActorSystem) -> RedisStreamsTransport:
    transport = system.transport
    assert isinstance(transport, RedisStreamsTransport)
    return transport


async def two_nodes(
    nodes: Cluster, actor: str, shards: int, kind: type[Actor], make: Callable[[], Actor]
) -> list[ActorSystem]:
    """Nodes a and b hosting `shards` shards of `actor` (a `kind` made by `make`, keyed by
    `message.key`), once each owns half of them."""
    systems = []
    for name in ("node-a", "node-b"):
        system = await nodes.node(name)
        system.spawn(kind, actor, factory=make, shards=shards, key=lambda m: m.key)
        systems.append(system)
    transports = [streams_transport(system) for system in systems]
    await wait_until(lambda: [len(t.owned_shards(actor)) for t in transports] == [shards // 2] * 2)
    return systems


async def send_counts(ref: ActorRef, keys: list[str], rounds: range, pause: float = 0.0) -> None:
    """`Counted` n for every key, round by round (`pause` seconds between rounds)."""
    for n in rounds:
        for key in keys:
            await ref.tell(Counted(key=key, n=n), key=key)
        if pause:
            await asyncio.sleep(pause)


async def all_handled(
    seen: list[tuple[str, int]], keys: list[str], rounds: range, timeout: float = 30.0
) -> None:
    """Wait until every count was handled; fail naming the ones that were not."""
    wanted = {(key, n) for key in keys for n in rounds}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not wanted <= set(seen):
        if loop.time() > deadline:
            missing = sorted(wanted - set(seen))
            pytest.fail(f"{len(missing)} of {len(wanted)} never handled: {missing[:10]}")
        await asyncio.sleep(0.01)
