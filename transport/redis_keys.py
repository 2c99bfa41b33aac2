"""Where the Redis Streams transport keeps things: its keys, clients and scripts, on one
Redis or on a Redis Cluster.

Every key of one shard — its stream (and the consumer group inside it), the stream's
counter of entries not yet acked, its mailbox size, its lease and its timers — carries the
hash tag `{<actor>:<shard>}`, so on a Redis Cluster they all live in one slot: the Lua
scripts that touch several of them run there as they do on a single Redis. Keys used
alone (the actor type's members, each node's reply stream, the dead-letter copies) need
no tag. On a cluster, scripts are sent whole (EVAL): a node that joined, restarted or was
promoted since they were loaded would not know them by their SHA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as redis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisClusterException, RedisError

from transport import redis_scripts
from transport.redis_seeds import cluster_client

# a single Redis or a Redis Cluster: the transport uses what both offer
RedisClient = redis.Redis | RedisCluster

# what a loop talking to Redis rides out (and retries): a cluster client also raises
# RedisClusterException, which is no RedisError (a slot without a master mid-failover,
# no node reachable), and would otherwise end the loop for good
REDIS_DOWN = (RedisError, RedisClusterException, OSError)

# a command's failures that say nothing of the command (a node away or changing role, or
# its slot moving between masters), so it is safe and right to send it again. ClusterError
# is redis-py's "TTL exhausted.": redirections that did not settle within its retries, as
# while a slot is resharded (redis-py 8.2 sends the ASKING of an ASK redirect on a pooled
# connection that is not always the one the command then takes, so the command bounces
# between the two masters, ASK and MOVED, until the slot's move completes)
TRANSIENT = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,  # ClusterDownError too
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,
    redis_errors.SlotNotCoveredError,
    redis_errors.RedisClusterUnreachableError,
)


@dataclass(frozen=True, slots=True)
class Keys:
    """Every Redis key the transport uses, under one prefix; one hash tag per shard."""

    prefix: str

    def __post_init__(self) -> None:
        if any(c in self.prefix for c in ":{}"):
            raise ValueError("a key prefix has no ':' or braces (they would split the hash tag)")

    def stream(self, actor: str, shard: int) -> str:
        return f"{self.prefix}:{{{actor}:{shard}}}"

    def counter(self, stream: str) -> str:
        return f"{stream}:n"

    def capacity(self, actor: str, shard: int) -> str:
        return f"{self.stream(actor, shard)}:capacity"

    def lease(self, actor: str, shard: int) -> str:
        return f"{self.stream(actor, shard)}:lease"

    def timers(self, actor: str, shard: int) -> str:
        return f"{self.stream(actor, shard)}:timers"

    def of_shard(self, actor: str, shard: int) -> tuple[str, ...]:
        """Every key of one shard (they share one hash slot)."""
        stream = self.stream(actor, shard)
        return (
            stream,
            self.counter(stream),
            self.capacity(actor, shard),
            self.lease(actor, shard),
            self.timers(actor, shard),
        )

    def shard_of(self, stream: str) -> tuple[str, int]:
        """The actor type and shard a stream key belongs to."""
        tag = stream[len(self.prefix) + 2 : -1]
        actor, _, shard = tag.rpartition(":")
        return actor, int(shard)

    def members(self, actor: str) -> str:
        return f"{self.prefix}:members:{actor}"

    def replies(self, node_id: str) -> str:
        return f"{self.prefix}:reply:{node_id}"

    def dead(self, actor: str) -> str:
        return f"{self.prefix}:dead:{actor}"


def new_client(url: str, *, cluster: bool, **options: Any) -> RedisClient:
    """A client for `url`: one Redis, or the Redis Cluster its node(s) belong to (several
    comma-separated URLs name several seeds: redis_seeds.py)."""
    if cluster:
        return cluster_client(url, **options)
    return redis.Redis.from_url(url, **options)


class Script(Protocol):
    """A Lua script to call with its keys and arguments, on a client or in a pipeline."""

    async def __call__(
        self, keys: Sequence[str], args: Sequence[Any], client: Any = None
    ) -> Any: ...


class EvalScript:
    """A Lua script sent whole each time (EVAL): on a cluster, any node can run it at once."""

    def __init__(self, client: RedisClient, script: str) -> None:
        self.client = client
        self.script = script

    async def __call__(
        self, keys: Sequence[str], args: Sequence[Any], client: Any | None = None
    ) -> Any:
        target = self.client if client is None else client
        queued = target.eval(self.script, len(keys), *keys, *args)
        if isinstance(target, ClusterPipeline):
            return queued  # a cluster pipeline queues without waiting: nothing to await
        return await queued


class Scripts:
    """The Lua scripts, registered once per client."""

    def __init__(self, client: RedisClient, *, cluster: bool) -> None:
        def script(text: str) -> Script:
            if cluster:
                return EvalScript(client, text)
            registered: AsyncScript = client.register_script(text)
            return registered

        self.send = script(redis_scripts.SEND)
        self.ack = script(redis_scripts.ACK)
        self.fire_timers = script(redis_scripts.FIRE_TIMERS)
        self.renew = script(redis_scripts.RENEW)
        self.release = script(redis_scripts.RELEASE)
