"""Real node processes hosting the probe actor (tests/support/probe.py) on one PostgreSQL
and one Redis or Redis Cluster, and a client node in the test process: what the e2e tests
of several nodes share (tests/e2e/test_cluster.py, test_redis_cluster_nodes.py, ...)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as redis

from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore
from tests.support import probe_messages
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database
from tests.support.probe import PROBE_SCHEMA, SHARDS
from tests.support.redis_cluster import delete_cluster_prefix
from transport import Codec
from transport.redis_streams import RedisStreamsTransport

OPS_TOKEN = "cluster-ops-token"
LEASE_TTL = 2.0


@dataclass
class Cluster:
    """Where the nodes keep their state, and how to start more of them."""

    database_url: str
    redis_url: str
    prefix: str
    folder: Path
    nodes: list[RunningNode]
    redis_cluster: bool = False  # the Redis is a Redis Cluster (SPLITGO_REDIS_CLUSTER=1)

    def env(self) -> dict[str, str]:
        env = {
            "SPLITGO_DATABASE_URL": self.database_url,
            "SPLITGO_REDIS_URL": self.redis_url,
            "SPLITGO_REDIS_PREFIX": self.prefix,
            "SPLITGO_LEASE_TTL": str(LEASE_TTL),
            "SPLITGO_PLUGINS": "tests.support.probe",
            "SPLITGO_OPS_TOKEN": OPS_TOKEN,
            # a node with SPLITGO_DATABASE_URL refuses to start on a generated signing key
            "SPLITGO_JWT_KEYS": "cluster:" + "c" * 48,
            "SPLITGO_SHUTDOWN_TIMEOUT": "5",
        }
        if self.redis_cluster:
            env["SPLITGO_REDIS_CLUSTER"] = "1"
        return env

    async def start(self, *names: str) -> list[RunningNode]:
        flags = ("--transport", "redis", "--actors", "probe")
        started = await asyncio.gather(
            *(
                start_node(self.folder / name, *flags, "--node-id", name, env=self.env())
                for name in names
            )
        )
        self.nodes += started
        return list(started)


@asynccontextmanager
async def cluster_on(
    folder: Path, url: str, *, redis_cluster: bool = False
) -> AsyncIterator[Cluster]:
    """A fresh database with the probe's tables and a fresh key prefix on the Redis (or
    Redis Cluster) at `url`; the nodes stopped and the keys deleted after."""
    async with fresh_database() as database_url:
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(PROBE_SCHEMA)
        finally:
            await connection.close()
        prefix = f"c{secrets.token_hex(4)}"
        cluster = Cluster(database_url, url, prefix, folder, [], redis_cluster=redis_cluster)
        try:
            yield cluster
        finally:
            for node in cluster.nodes:
                if node.process.poll() is None:
                    await stop_node(node)
            if redis_cluster:
                await delete_cluster_prefix(url, prefix)
            else:
                client = redis.Redis.from_url(url)
                keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
                if keys:
                    await client.delete(*keys)
                await client.aclose()


@asynccontextmanager
async def probe_client(cluster: Cluster) -> AsyncIterator[ActorRef]:
    """A ref to the probe from the test process, itself a node that hosts nothing."""
    codec = Codec()
    codec.register_module(probe_messages)
    transport = RedisStreamsTransport(
        node_id=f"tester-{secrets.token_hex(3)}",
        url=cluster.redis_url,
        codec=codec,
        prefix=cluster.prefix,
        lease_ttl=LEASE_TTL,
        cluster=cluster.redis_cluster,
    )
    system = ActorSystem(transport, codec=codec, dead_letters=MemoryDeadLetterStore())
    await system.start()
    system.route("probe", shards=SHARDS, key=lambda message: getattr(message, "key", None))
    try:
        yield system.ref("probe")
    finally:
        await system.stop(2.0)
        await transport.close()
