"""Real node processes on a 3-master Redis Cluster (SPLITGO_REDIS_CLUSTER=1), sharing one
PostgreSQL: they split the probe actor's shards, and when one is killed the other takes its
shards over with nothing lost, doubled or reordered.

The nodes load the probe actor (tests/support/probe.py); this test process talks to them
through its own ActorSystem on the same cluster, as a node that hosts nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from actors.runtime import ActorRef
from tests.e2e.test_cluster import eventually, owners
from tests.support.probe_messages import Echo, Echoed, Record
from tests.support.probe_nodes import LEASE_TTL, Cluster, cluster_on, probe_client
from tests.support.redis_cluster import redis_cluster_url

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """A fresh database with the probe's tables and a fresh key prefix on the cluster, its
    nodes told the Redis is a cluster."""
    async with cluster_on(tmp_path, redis_cluster_url(), redis_cluster=True) as built:
        yield built


@pytest_asyncio.fixture
async def client(cluster: Cluster) -> AsyncIterator[ActorRef]:
    """A ref to the probe from this test process, itself a node on the cluster."""
    async with probe_client(cluster) as ref:
        yield ref


async def test_two_nodes_on_a_redis_cluster_share_the_work_and_survive_a_sigkill(
    cluster: Cluster, client: ActorRef
) -> None:
    """Asks are answered across the cluster; 2,000 keyed messages, one node killed midway:
    each effect once, in order per key, the rest done by the survivor."""
    nodes = await cluster.start("n1", "n2")

    async def spread() -> bool:
        held = await owners(nodes[0])
        return None not in held.values() and set(held.values()) == {"n1", "n2"}

    await eventually(spread, 30, "every shard owned, by both nodes")
    reply = await client.ask(Echo(text="hello"), key="any", timeout=5)
    assert isinstance(reply, Echoed)
    assert reply.text == "hello"
    keys = [f"k{n}" for n in range(20)]
    for index in range(2_000):
        if index == 600:
            nodes[1].process.kill()
        await client.tell(Record(key=keys[index % 20], seq=index // 20))

    database = await asyncpg.connect(cluster.database_url)
    try:

        async def all_recorded() -> bool:
            return bool(await database.fetchval("SELECT count(*) FROM probe_effects") >= 2_000)

        await eventually(all_recorded, 90, "2,000 effects recorded")
        await asyncio.sleep(LEASE_TTL)  # a late duplicate would show up now
        total, distinct = await database.fetchrow(
            "SELECT count(*), count(DISTINCT (key, seq)) FROM probe_effects"
        )
        out_of_order = await database.fetchval(
            """
            SELECT count(*) FROM (
                SELECT seq, lag(seq) OVER (PARTITION BY key ORDER BY id) AS before
                FROM probe_effects
            ) ordered WHERE before IS NOT NULL AND before >= seq
            """
        )
    finally:
        await database.close()
    assert (total, distinct) == (2_000, 2_000)
    assert out_of_order == 0
    assert set((await owners(nodes[0])).values()) == {"n1"}
