"""Reaching Redis through any of several addresses, so no one node of a cluster is needed.

SPLITGO_REDIS_URL may name several nodes of a Redis Cluster, comma-separated:
`redis://:secret@10.0.0.1:6379/0,redis://10.0.0.2:6379,redis://10.0.0.3:6379`. The first
URL's options (user, password, TLS, query) apply to every address; the others give a
host and port only. A node starting while some of them are down starts from another.

The cluster client (`cluster_client`) gets every address as a startup node, and learns
the rest of the cluster from whichever answers (redis-py then refreshes its topology
from every node it knows, not the seed). The plain connections, for pub/sub (broadcast,
live pushes: PUBLISH reaches every node of a cluster), come from `plain_client`: each new
connection tries the address that worked last, then the others in turn, and learns on
connecting every node the cluster lists (CLUSTER SLOTS), so a running node's broadcast
reconnects elsewhere when the node it was on, the seed included, is gone. It asks again
only when an address failed since, or a minute after it last asked: a node opening many
connections at once asks once, not once each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool, SSLConnection
from redis.exceptions import ResponseError

from transport.redis_urls import seed_urls

DEFAULT_PORT = 6379
LEARN_EVERY = 60.0  # seconds between asking a cluster for its nodes while all is well
Address = tuple[str, int]


def first_url(url: str) -> str:
    """The first URL a setting names: where the options for every address come from."""
    urls = seed_urls(url)
    return urls[0] if urls else url


def addresses(url: str) -> list[Address]:
    """The host and port of every TCP URL the setting names, in order, without repeats."""
    found: list[Address] = []
    for part in seed_urls(url):
        split = urlsplit(part)
        if split.scheme in ("redis", "rediss") and split.hostname:
            address = (split.hostname, split.port or DEFAULT_PORT)
            if address not in found:
                found.append(address)
    return found


def cluster_client(url: str, **options: Any) -> RedisCluster:
    """A Redis Cluster client with every address the setting names as a startup node."""
    others = [ClusterNode(host, port) for host, port in addresses(url)[1:]]
    if others:
        options["startup_nodes"] = others  # the first URL's own host is added by redis-py
    return RedisCluster.from_url(first_url(url), **options)


class Seeds:
    """The addresses a plain client may connect to: the ones named, then the ones learnt
    from the cluster; the one that worked last is tried first."""

    def __init__(self, named: list[Address], clock: Callable[[], float] = time.monotonic) -> None:
        self._known = list(named)
        self.learning = True  # off once the server says it is no cluster (or may not say)
        self._clock = clock
        self._learnt_at: float | None = None
        self._failed_since = False  # an address failed after the cluster was last asked

    def in_turn(self) -> list[Address]:
        return list(self._known)

    def worked(self, address: Address) -> None:
        if address in self._known:
            self._known.remove(address)
        self._known.insert(0, address)

    def failed(self) -> None:
        """An address did not answer: the cluster may have changed, ask it again."""
        self._failed_since = True

    def learn_now(self) -> bool:
        """Whether a connection just made should ask the cluster for its nodes."""
        if not self.learning:
            return False
        last = self._learnt_at
        return self._failed_since or last is None or self._clock() - last >= LEARN_EVERY

    def add(self, found: list[Address]) -> None:
        """What the cluster listed: known from now on, after the addresses known before."""
        self._learnt_at = self._clock()
        self._failed_since = False
        for address in found:
            if address not in self._known:
                self._known.append(address)


class _SeedConnecting:
    """Connects to the first of the seeds that answers, then learns the cluster's nodes."""

    seeds: Seeds
    host: str
    port: int

    async def _connect(self) -> None:
        error: BaseException | None = None
        for host, port in self.seeds.in_turn():
            self.host, self.port = host, port
            try:
                await super()._connect()  # type: ignore[misc]
            except (OSError, TimeoutError) as failed:
                error = failed  # that node is gone (or unreachable): the next one
                self.seeds.failed()
                continue
            self.seeds.worked((host, port))
            return
        raise error if error is not None else OSError("no Redis address to connect to")

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        await super().on_connect_check_health(check_health)  # type: ignore[misc]
        if self.seeds.learn_now():
            await self._learn()

    async def _learn(self) -> None:
        """Add every node CLUSTER SLOTS lists (masters and replicas) to the seeds."""
        connection: Any = self
        try:
            await connection.send_command("CLUSTER", "SLOTS", check_health=False)
            rows = await connection.read_response()
        except ResponseError:
            self.seeds.learning = False  # no cluster here, or no right to ask: the named ones
            return
        found: list[Address] = []
        for row in rows or []:
            for node in row[2:]:
                host = node[0].decode() if isinstance(node[0], bytes) else str(node[0])
                # an empty or '?' host means the one this connection reached
                found.append((host if host not in ("", "?") else self.host, int(node[1])))
        self.seeds.add(found)


class SeedConnection(_SeedConnecting, Connection):
    """A TCP connection to whichever of the seeds answers."""

    def __init__(self, *, seeds: Seeds, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seeds = seeds


class SeedSSLConnection(_SeedConnecting, SSLConnection):
    """A TLS connection to whichever of the seeds answers."""

    def __init__(self, *, seeds: Seeds, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seeds = seeds


def plain_client(url: str, **options: Any) -> redis.Redis:
    """A plain (not cluster) client for the setting's URL(s): on a TCP URL, each new
    connection goes to whichever of the addresses named or learnt answers first."""
    first = first_url(url)
    named = addresses(url)
    if not named:  # a unix socket: one server, one address
        return redis.Redis.from_url(first, **options)
    tls = urlsplit(first).scheme == "rediss"
    pool = ConnectionPool.from_url(
        first,
        connection_class=SeedSSLConnection if tls else SeedConnection,
        seeds=Seeds(named),
        **options,
    )
    return redis.Redis.from_pool(pool)
