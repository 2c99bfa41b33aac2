"""Several real node processes on the Redis Streams transport, sharing one PostgreSQL.

The nodes load the probe actor (tests/support/probe.py) through SPLITGO_PLUGINS; this
test process talks to them through its own ActorSystem on the same Redis, as a third
kind of node that hosts nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as redis

from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore
from tests.support import probe_messages
from tests.support.node import RunningNode
from tests.support.probe import SHARDS
from tests.support.probe_messages import Echo, Echoed, Explode, ProbeRefused, Record, Refuse
from tests.support.probe_nodes import LEASE_TTL, OPS_TOKEN, Cluster, cluster_on, probe_client
from tests.support.redis import redis_url, start_throwaway_redis
from transport import Codec
from transport.redis_streams import RedisStreamsTransport

# the other multi-node e2e tests import the probe nodes' setup from here too
__all__ = [
    "LEASE_TTL",
    "OPS_TOKEN",
    "Cluster",
    "cluster_on",
    "eventually",
    "owners",
    "spread_over_nodes",
]

pytestmark = pytest.mark.e2e


async def spread_over_nodes(url: str, *, nodes: int, timeout: float = 60.0) -> None:
    """Wait until every actor type's shards are leased and spread over the nodes, the same
    twice a lease renewal apart: a shard handed over while a test asks is a wait of up to
    a renewal, which is what the edge's ask timeout would report, not chat."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    before: object = None
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(
                f"{url}/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
            ) as reply:
                cluster = (await reply.json())["cluster"]
            owners = {
                name: sorted((s["shard"], s.get("node")) for s in shards)
                for name, shards in cluster.items()
            }
            spread = all(
                all(node is not None for _, node in held)
                and max(Counter(node for _, node in held).values()) <= math.ceil(len(held) / nodes)
                for held in owners.values()
            )
            if spread and owners == before:
                return
            assert loop.time() < deadline, f"shards not spread over the nodes: {owners}"
            before = owners if spread else None
            await asyncio.sleep(LEASE_TTL / 3)


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster_on(tmp_path, redis_url()) as built:
        yield built


@pytest_asyncio.fixture
async def client(cluster: Cluster) -> AsyncIterator[ActorRef]:
    """A ref to the probe from this test process, itself a node that hosts nothing."""
    async with probe_client(cluster) as ref:
        yield ref


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


async def owners(node: RunningNode) -> dict[int, str | None]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{node.url}/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
        ) as response,
    ):
        body = await response.json()
    shards = body.get("cluster", {}).get("probe", [])
    held = {shard["shard"]: shard["node"] for shard in shards}
    # while the view is incomplete, every shard counts as unowned
    return held if len(held) == SHARDS else dict.fromkeys(range(SHARDS))


async def test_three_nodes_share_the_work_and_survive_a_sigkill(
    cluster: Cluster, client: ActorRef
) -> None:
    """10,000 keyed messages, one of three nodes killed midway: each effect once, in order."""
    nodes = await cluster.start("n1", "n2", "n3")

    async def spread() -> bool:
        held = await owners(nodes[0])
        return None not in held.values() and len(set(held.values())) == 3

    await eventually(spread, 20, "every shard owned, by all three nodes")
    keys = [f"k{n}" for n in range(50)]
    for index in range(10_000):
        if index == 3_000:
            nodes[1].process.kill()
        await client.tell(Record(key=keys[index % 50], seq=index // 50))

    database = await asyncpg.connect(cluster.database_url)
    try:

        async def all_recorded() -> bool:
            return bool(await database.fetchval("SELECT count(*) FROM probe_effects") >= 10_000)

        await eventually(all_recorded, 90, "10,000 effects recorded")
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
        survivors = await database.fetchval(
            "SELECT count(DISTINCT node) FROM probe_effects WHERE node <> 'n2'"
        )
    finally:
        await database.close()
    assert (total, distinct) == (10_000, 10_000)
    assert out_of_order == 0
    assert survivors == 2
    held = await owners(nodes[0])
    assert set(held.values()) <= {"n1", "n3"}


async def test_ask_crosses_nodes_with_replies_and_domain_errors(
    cluster: Cluster, client: ActorRef
) -> None:
    """An ask from this process is answered by a node, and a refusal comes back typed."""
    [node] = await cluster.start("solo")

    async def owned() -> bool:
        return None not in (await owners(node)).values()

    await eventually(owned, 20, "shards owned")
    reply = await client.ask(Echo(text="hello"), key="any", timeout=5)
    assert reply == Echoed(text="hello", node="solo")
    with pytest.raises(ProbeRefused, match="refused: not today"):
        await client.ask(Refuse(reason="not today"), key="any", timeout=5)


async def test_a_poison_message_reaches_the_dead_letters_and_replays_once_fixed(
    cluster: Cluster, client: ActorRef
) -> None:
    """Always crashing: retried, dead-lettered (stream and /ops), then replayed once."""
    [node] = await cluster.start("solo")

    async def owned() -> bool:
        return None not in (await owners(node)).values()

    await eventually(owned, 20, "shards owned")
    await client.tell(Explode(key="boom"))
    headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        letters: list[dict[str, object]] = []

        async def dead_lettered() -> bool:
            nonlocal letters
            async with http.get(f"{node.url}/ops/dead-letters?actor=probe") as response:
                letters = (await response.json())["items"]
            return bool(letters)

        await eventually(dead_lettered, 20, "the poison message in /ops/dead-letters")
        [letter] = letters
        assert letter["message_type"] == "Explode"
        assert "probe exploded on boom" in str(letter["error"])
        stream = redis.Redis.from_url(cluster.redis_url)
        assert await stream.xlen(f"{cluster.prefix}:dead:probe") == 1
        await stream.aclose()

        database = await asyncpg.connect(cluster.database_url)
        try:
            await database.execute("INSERT INTO probe_switches VALUES ('fixed', true)")
            async with http.post(f"{node.url}/ops/dead-letters/{letter['id']}/replay") as response:
                assert response.status == 202

            async def recorded() -> bool:
                return bool(
                    await database.fetchval("SELECT count(*) FROM probe_effects WHERE key = 'boom'")
                    == 1
                )

            await eventually(recorded, 20, "the replayed message's effect")
            async with http.post(f"{node.url}/ops/dead-letters/{letter['id']}/replay") as response:
                assert response.status == 409
            await asyncio.sleep(0.5)
            assert (
                await database.fetchval("SELECT count(*) FROM probe_effects WHERE key = 'boom'")
                == 1
            )
        finally:
            await database.close()


async def test_nodes_ride_out_a_redis_restart(tmp_path: Path) -> None:
    """Redis goes away: /readyz turns 503; it comes back empty: nodes reconnect and work."""
    server = start_throwaway_redis()
    try:
        async with cluster_on(tmp_path, server.url) as cluster:
            [node] = await cluster.start("solo")
            async with aiohttp.ClientSession() as http:

                async def ready_is(status: int) -> Callable[[], Awaitable[bool]]:
                    async def check() -> bool:
                        async with http.get(f"{node.url}/readyz") as response:
                            return response.status == status

                    return check

                server.kill()
                await eventually(await ready_is(503), 15, "/readyz 503 while Redis is down")
                server.start()
                await eventually(await ready_is(200), 30, "/readyz 200 once Redis is back")

                async def owned() -> bool:
                    return None not in (await owners(node)).values()

                await eventually(owned, 20, "shards owned again on the empty Redis")
            codec = Codec()
            codec.register_module(probe_messages)
            transport = RedisStreamsTransport(
                node_id="tester-restart", url=server.url, codec=codec, prefix=cluster.prefix
            )
            system = ActorSystem(transport, codec=codec, dead_letters=MemoryDeadLetterStore())
            await system.start()
            system.route("probe", shards=SHARDS, key=lambda m: getattr(m, "key", None))
            try:
                reply = await system.ref("probe").ask(Echo(text="back"), key="k", timeout=10)
                assert reply == Echoed(text="back", node="solo")
                await system.ref("probe").tell(Record(key="after-restart", seq=1))
                database = await asyncpg.connect(cluster.database_url)
                try:

                    async def recorded() -> bool:
                        count = await database.fetchval(
                            "SELECT count(*) FROM probe_effects WHERE key = 'after-restart'"
                        )
                        return bool(count == 1)

                    await eventually(recorded, 20, "a message handled after the restart")
                finally:
                    await database.close()
            finally:
                await system.stop(2.0)
                await transport.close()
    finally:
        server.stop()
