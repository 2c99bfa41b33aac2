"""The soak's three nodes: `python run.py` processes on the Redis Streams transport sharing
one PostgreSQL database and one Redis key prefix of this run's own, started the way the
end-to-end tests start them (tests/support/node.py), and killed and restarted in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as redis
import structlog

from tests.support.node import RunningNode, start_node, stop_node

log = structlog.get_logger("soak")

OPS_TOKEN = "soak-ops-token"
JWT_KEYS = "soak:" + "s" * 48
SANDBOX_SECRET = "soak-sandbox-secret-0123456789abcdef"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def answers(host: str, port: int) -> bool:
    """Whether something accepts connections at host:port (the local PostgreSQL)."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.3):
        return True
    return False


@dataclass
class Kill:
    """One SIGKILL and the restart after it (s since the load began)."""

    node: str
    at: float
    ready_after: float | None = None  # s from the kill until the new process was ready


@dataclass
class Cluster:
    """The nodes by name (the current process of each), and the kills so far."""

    database_url: str
    redis_url: str
    prefix: str
    folder: Path
    lease_ttl: float
    ask_timeout: float
    nodes: dict[str, RunningNode] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    kills: list[Kill] = field(default_factory=list)
    _lives: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            "SPLITGO_DATABASE_URL": self.database_url,
            "SPLITGO_REDIS_URL": self.redis_url,
            "SPLITGO_REDIS_PREFIX": self.prefix,
            "SPLITGO_LEASE_TTL": str(self.lease_ttl),
            "SPLITGO_ASK_TIMEOUT": str(self.ask_timeout),
            "SPLITGO_OPS_TOKEN": OPS_TOKEN,
            "SPLITGO_JWT_KEYS": JWT_KEYS,
            "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
            "SPLITGO_SHUTDOWN_TIMEOUT": "5",
            "SPLITGO_CODEC_CHECK": "0",  # a production node does not check its codec
        }

    def live(self) -> list[str]:
        """The URLs a load balancer would send to: the nodes up and ready."""
        return [
            node.url
            for name, node in self.nodes.items()
            if name not in self.down and node.process.poll() is None
        ]

    async def start(self, name: str) -> RunningNode:
        """Start (or start again) node `name`, each life in a folder of its own."""
        life = self._lives.get(name, 0)
        self._lives[name] = life + 1
        node = await start_node(
            self.folder / f"{name}-{life}",
            "--transport",
            "redis",
            "--node-id",
            name,
            env=self.env(),
            ready_timeout=120.0,
        )
        self.nodes[name] = node
        return node

    async def kill_and_restart(self, name: str, at: float) -> Kill:
        """SIGKILL node `name`, then start it again at once; the kill, with how long the
        new process took to be ready."""
        kill = Kill(name, at)
        self.kills.append(kill)
        self.down.add(name)
        began = time.monotonic()
        node = self.nodes[name]
        node.process.kill()
        await asyncio.to_thread(node.process.wait)
        log.info("soak_node_killed", node=name, at=round(at, 1))
        await self.start(name)
        self.down.discard(name)
        kill.ready_after = time.monotonic() - began
        log.info("soak_node_restarted", node=name, ready_after=round(kill.ready_after, 1))
        return kill

    async def stop(self) -> None:
        for node in self.nodes.values():
            if node.process.poll() is None:
                with contextlib.suppress(Exception):
                    await stop_node(node)


@asynccontextmanager
async def cluster_on(
    database_url: str, redis_url: str, folder: Path, *, lease_ttl: float, ask_timeout: float
) -> AsyncIterator[Cluster]:
    """A cluster on a fresh key prefix; its nodes stopped and its Redis keys deleted after."""
    cluster = Cluster(
        database_url, redis_url, f"soak{secrets.token_hex(4)}", folder, lease_ttl, ask_timeout
    )
    try:
        yield cluster
    finally:
        await cluster.stop()
        client = redis.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=f"*{cluster.prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
