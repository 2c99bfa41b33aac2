"""Redis Streams mailboxes: the same interface as the memory transport, across nodes.

One stream per actor shard (`<prefix>:{<actor>:<shard>}`), one consumer group per actor
type, consumers named by node; each shard's keys share that hash tag, so the transport
runs on a Redis Cluster too (redis_keys.py). Sends, acks, replies and timer changes made
during one event-loop tick go to Redis in one pipeline. Shards are owned by lease (see
redis_shards.py); entries are acked only after their handler finished. Each stream has a
counter of entries not yet acked, which the send script checks: a full mailbox makes
the sender wait, on every node, and messages to one stream keep their order. Timers wait
in their shard's sorted set, and the shard's owner moves them into the stream when due.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from typing import Any

import structlog
from redis.exceptions import ResponseError

from transport.base import MailboxClosed, ReplyHandler
from transport.codec import Codec
from transport.envelope import Envelope
from transport.redis_keys import (
    REDIS_DOWN,
    TRANSIENT,
    Keys,
    RedisClient,
    Scripts,
    new_client,
)
from transport.redis_legacy import Carrier
from transport.redis_shards import RedisMailbox, ShardHost, cancel_and_wait

log = structlog.get_logger("transport.redis")

SEND_CHUNK = 512  # entries per send-script call
CLUSTER_CONNECTIONS = 4096  # a master's connections from one node at most, on a cluster


class RedisTimer:
    """A timer kept in Redis: it fires even if the node that set it is gone."""

    __slots__ = ("__weakref__", "_key", "_member", "_transport")

    def __init__(self, transport: RedisStreamsTransport, key: str, member: bytes) -> None:
        self._transport = transport
        self._key = key
        self._member = member

    def cancel(self) -> None:
        self._transport.queue_timer_cancel(self._key, self._member)


class RedisStreamsTransport:
    """Actors on many nodes, sharing work through Redis Streams."""

    durable_timers = True

    def __init__(
        self,
        *,
        node_id: str,
        url: str,
        codec: Codec,
        prefix: str = "splitgo",
        lease_ttl: float = 10.0,
        block_ms: int = 1000,
        read_count: int = 256,
        stream_maxlen: int = 1_000_000,
        default_capacity: int = 10_000,
        timer_poll: float = 0.05,
        cluster: bool = False,
    ) -> None:
        if block_ms / 1000 >= 5.0:
            raise ValueError("block_ms must stay under the 5 s socket timeout")
        self.node_id = node_id
        self.url = url
        self.codec = codec
        self.keys = Keys(prefix)
        self.lease_ttl = lease_ttl
        self.block_ms = block_ms
        self.read_count = read_count
        self.stream_maxlen = stream_maxlen
        self.default_capacity = default_capacity
        self.timer_poll = timer_poll
        self.cluster = cluster  # a Redis Cluster: one slot per shard, one read per stream
        self.client = self._new_client()
        self.scripts = Scripts(self.client, cluster=cluster)
        self.carrier = Carrier(self)  # the keys of the version before the hash tags
        self._hosts: dict[str, ShardHost] = {}
        self._capacity: dict[str, int] = {}
        self._sends: dict[str, deque[bytes]] = {}
        self._acks: dict[tuple[str, str], list[bytes]] = {}
        self._other: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._flush_scheduled = False
        self._flushing: asyncio.Task[None] | None = None
        self._flushed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reply_client: RedisClient | None = None
        self._on_reply: ReplyHandler | None = None
        self._healthy = False
        self._last_error: str | None = None
        self._closed = False
        self._groups_made: set[tuple[str, str]] = set()

    # ── connections and health ───────────────────────────────────────────────────────

    def _new_client(self, **options: Any) -> RedisClient:
        if self.cluster:
            # every owned shard's blocking read holds a connection to its master: redis-py's
            # default (100 a master, refusing more) would cap the shards a node can own
            options.setdefault("max_connections", CLUSTER_CONNECTIONS)
        return new_client(
            self.url,
            cluster=self.cluster,
            socket_timeout=5.0,
            socket_connect_timeout=2.0,
            **options,
        )

    def dedicated_client(self) -> RedisClient:
        """A client with one connection of its own, for a blocking reader. On a cluster, the
        shared client: it keeps a pool per node, a blocking read holds one connection of it
        while it waits, and it follows the cluster's topology (never closed by a reader)."""
        if self.cluster:
            return self.client
        return self._new_client(single_connection_client=True)

    async def drop_dedicated(self, client: RedisClient | None) -> None:
        """Close a reader's client, unless it is the shared one."""
        if client is not None and client is not self.client:
            with contextlib.suppress(*REDIS_DOWN):
                await client.aclose()

    def note_healthy(self) -> None:
        if not self._healthy:
            log.info("redis_connected", node=self.node_id)
        self._healthy = True

    def note_unhealthy(self, error: BaseException) -> None:
        if self._healthy or self._last_error != str(error):
            log.warning("redis_unavailable", node=self.node_id, error=str(error))
        self._healthy = False
        self._last_error = str(error)

    async def ping(self) -> bool:
        """The readiness probe: True while Redis answers."""
        try:
            ok = bool(await self.client.ping())
        except REDIS_DOWN as error:
            self.note_unhealthy(error)
            return False
        self.note_healthy()
        return ok

    # ── the Transport interface ───────────────────────────────────────────────────────

    async def start(self, on_reply: ReplyHandler) -> None:
        self._on_reply = on_reply
        await self.client.ping()
        self.note_healthy()
        # replies are read from the newest entry there before any ask could be sent
        reply_from = await self._newest_reply()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_replies(reply_from), name="redis:replies"),
            loop.create_task(self._fire_timers(), name="redis:timers"),
        ]

    def open_mailbox(self, actor: str, shard: int, capacity: int) -> RedisMailbox:
        host = self._hosts.get(actor)
        if host is None:
            host = self._hosts[actor] = ShardHost(self, actor)
            # start once every shard of this spawn is registered (spawn opens them in a row)
            asyncio.get_running_loop().call_soon(host.start)
        self._capacity[actor] = capacity
        # published, so senders on every node hold back at the same mailbox size
        self._other.append(("set", (self.keys.capacity(actor, shard), capacity), {}))
        self._schedule_flush()
        return host.add(shard, capacity)

    def try_send(self, envelope: Envelope) -> bool:
        if self._closed:
            raise MailboxClosed("the transport is closed")
        data = self.codec.encode(envelope)
        if envelope.kind == "reply":
            stream = self.keys.replies(envelope.target)
            self._other.append(("xadd", (stream, {"e": data}), {"maxlen": 10_000}))
            self._other.append(("expire", (stream, 3600), {}))
            self._schedule_flush()
            return True
        stream = self.keys.stream(envelope.target, envelope.shard)
        buffer = self._sends.get(stream)
        if buffer is None:
            buffer = self._sends[stream] = deque()
        if len(buffer) >= self._capacity.get(envelope.target, self.default_capacity):
            return False
        buffer.append(data)
        self._schedule_flush()
        return True

    async def send(self, envelope: Envelope) -> None:
        while not self.try_send(envelope):
            self._flushed.clear()
            await self._flushed.wait()

    def schedule(self, envelope: Envelope, delay: float) -> RedisTimer:
        data = self.codec.encode(envelope)
        key = self.keys.timers(envelope.target, envelope.shard)
        due_ms = int((time.time() + max(delay, 0.0)) * 1000)
        self._other.append(("zadd", (key, {data: due_ms}), {}))
        self._schedule_flush()
        return RedisTimer(self, key, data)

    async def stop_intake(self) -> None:
        """Stop reading new entries (what is unread stays for another node or a restart)."""
        for host in self._hosts.values():
            await host.stop_reading()

    async def close(self, timeout: float = 10.0) -> None:
        """Flush, hand every shard back and disconnect; bounded, should Redis be gone."""
        self._closed = True
        try:
            async with asyncio.timeout(timeout):
                await self.flush_now()
                for host in self._hosts.values():
                    await host.stop()
                await self.flush_now()
        except TimeoutError:
            unsent = sum(len(buffer) for buffer in self._sends.values())
            # leases expire by themselves; unsent tells are what cannot be saved now
            log.error("redis_close_timed_out", node=self.node_id, unsent_messages=unsent)
            if self._flushing is not None:
                await cancel_and_wait(self._flushing)
        for task in self._tasks:
            await cancel_and_wait(task)
        await self.drop_dedicated(self._reply_client)
        with contextlib.suppress(*REDIS_DOWN):
            await self.client.aclose()

    # ── what the shards queue ─────────────────────────────────────────────────────────

    def queue_ack(self, stream: str, group: str, entry_id: bytes) -> None:
        self._acks.setdefault((stream, group), []).append(entry_id)
        self._schedule_flush()

    def queue_timer_cancel(self, key: str, member: bytes) -> None:
        self._other.append(("zrem", (key, member), {}))
        self._schedule_flush()

    def queue_dead_letter(self, actor: str, shard: int, envelope: Envelope, error: str) -> None:
        try:
            data = self.codec.encode(envelope)
        except Exception:
            data = repr(envelope.body).encode()
        self.queue_raw_dead_letter(actor, shard, data, error)

    def queue_raw_dead_letter(self, actor: str, shard: int, data: bytes, error: str) -> None:
        fields = {"e": data, "error": error, "shard": str(shard), "node": self.node_id}
        self._other.append(("xadd", (self.keys.dead(actor), fields), {"maxlen": 100_000}))
        self._schedule_flush()

    async def ensure_group(self, stream: str, group: str) -> None:
        """Create the consumer group reading from the stream's start (entries sent before
        any node hosted the actor are delivered too)."""
        try:
            await self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._groups_made.add((stream, group))

    # ── flushing: one pipeline per tick ──────────────────────────────────────────────

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._begin_flush)

    def _begin_flush(self) -> None:
        self._flush_scheduled = False
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_loop())

    async def flush_now(self) -> None:
        """Wait until everything queued so far has reached Redis (or failed trying)."""
        for _ in range(50):
            running = self._flushing
            if running is not None and not running.done():
                await asyncio.shield(running)
                # another caller may have started the next flush meanwhile: look again,
                # never run two flush loops at once (they would pop each other's batches)
                continue
            if not (self._sends or self._acks or self._other):
                return
            self._flushing = asyncio.get_running_loop().create_task(self._flush_loop())
        log.warning("flush_incomplete", node=self.node_id)

    async def _flush_loop(self) -> None:
        failures = 0
        while self._sends or self._acks or self._other:
            try:
                refused = await self._flush_once()
            except REDIS_DOWN as error:
                self.note_unhealthy(error)
                failures += 1
                await asyncio.sleep(min(0.05 * 2**failures, 1.0))
                continue
            failures = 0
            self.note_healthy()
            self._flushed.set()
            if refused and set(self._sends) <= refused and not (self._acks or self._other):
                # every stream left is full: give its consumers a moment before asking again
                await asyncio.sleep(0.01)

    async def _flush_once(self) -> set[str]:
        """Send one batch; what Redis refused (full streams) stays queued, in order."""
        # one bounded chunk per stream and pipeline: a script call blocks Redis while it
        # runs (5,000 entries ~17 ms), and a second chunk in the same pipeline could be
        # accepted after the first was refused, overtaking it
        sends = {
            stream: list(itertools.islice(buffer, SEND_CHUNK))
            for stream, buffer in self._sends.items()
            if buffer
        }
        acks, self._acks = self._acks, {}
        other, self._other = self._other, []
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for stream, payloads in sends.items():
                    actor, shard = self.keys.shard_of(stream)
                    # closing: sends already accepted go in past the cap (-1), or close()
                    # would wait forever for room that no consumer here makes any more
                    cap = -1 if self._closed else self._capacity.get(actor, self.default_capacity)
                    capacity = self.keys.capacity(actor, shard)
                    await self.scripts.send(
                        keys=[stream, self.keys.counter(stream), capacity],
                        args=[cap, self.stream_maxlen, *payloads],
                        client=pipe,
                    )
                for (stream, group), entry_ids in acks.items():
                    for start in range(0, len(entry_ids), 1000):
                        await self.scripts.ack(
                            keys=[stream, self.keys.counter(stream)],
                            args=[group, *entry_ids[start : start + 1000]],
                            client=pipe,
                        )
                for command, args, kwargs in other:
                    getattr(pipe, command)(*args, **kwargs)
                results = await pipe.execute(raise_on_error=False)
        except (Exception, asyncio.CancelledError):
            # nothing of this batch is known to have landed: put it all back, in order
            self._merge_back(acks, other)
            raise
        refused: set[str] = set()
        transient: Exception | None = None
        for (stream, payloads), accepted in zip(sends.items(), results, strict=False):
            if isinstance(accepted, TRANSIENT):
                # a node away, or the stream's slot moving between masters (TRYAGAIN,
                # redirections that did not settle): the messages stay queued, in order,
                # and the loop backs off before sending them again
                transient = transient or accepted
                continue
            if isinstance(accepted, Exception):
                log.error("redis_send_failed", stream=stream, error=str(accepted))
                refused.add(stream)
                continue
            buffer = self._sends[stream]
            for _ in range(int(accepted)):
                buffer.popleft()
            if int(accepted) < len(payloads):
                refused.add(stream)
            if not buffer:
                del self._sends[stream]
        transient = self._retry_transient(acks, other, results[len(sends) :]) or transient
        if transient is not None:
            raise transient  # what was sent is settled above; the loop backs off, retries
        return refused

    def _retry_transient(
        self,
        acks: dict[tuple[str, str], list[bytes]],
        other: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
        results: list[Any],
    ) -> Exception | None:
        """Queue again the acks and commands a node could not answer (its connection
        closed, a failover under way): each is safe to repeat (an ack counts only what it
        acks, the rest are sets, expiries or copies), and dropping one would lose a reply
        or a timer. Other errors are logged and dropped, as a retry would fail again.
        Returns the first error queued again for, if any."""
        outcomes = iter(results)
        retry_acks: dict[tuple[str, str], list[bytes]] = {}
        for key, entry_ids in acks.items():
            for start in range(0, len(entry_ids), 1000):
                outcome = next(outcomes, None)
                if isinstance(outcome, TRANSIENT):
                    retry_acks.setdefault(key, []).extend(entry_ids[start : start + 1000])
                elif isinstance(outcome, Exception):
                    log.error("redis_ack_failed", stream=key[0], error=str(outcome))
        retry_other = []
        for command, outcome in zip(other, outcomes, strict=False):
            if isinstance(outcome, TRANSIENT):
                retry_other.append(command)
            elif isinstance(outcome, Exception):
                log.error("redis_command_failed", command=command[0], error=str(outcome))
        if not (retry_acks or retry_other):
            return None
        self._merge_back(retry_acks, retry_other)
        return next(r for r in results if isinstance(r, TRANSIENT))

    def _merge_back(
        self,
        acks: dict[tuple[str, str], list[bytes]],
        other: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
    ) -> None:
        for key, entry_ids in acks.items():
            self._acks[key] = entry_ids + self._acks.get(key, [])
        self._other = other + self._other

    # ── replies and timers ───────────────────────────────────────────────────────────

    async def _newest_reply(self) -> bytes | str:
        """The id of the newest entry in this node's reply stream ("0-0": none yet)."""
        newest: Any = await self.client.xrevrange(self.keys.replies(self.node_id), count=1)
        return newest[0][0] if newest else "0-0"

    async def _read_replies(self, last_id: bytes | str) -> None:
        """Read this node's replies from after `last_id`, always from the last one seen: a
        read from "$" would miss what arrived between two reads."""
        stream = self.keys.replies(self.node_id)
        while True:
            try:
                if self._reply_client is None:
                    self._reply_client = self.dedicated_client()
                reply: Any = await self._reply_client.xread(
                    {stream: last_id}, count=500, block=self.block_ms
                )
            except REDIS_DOWN as error:
                self.note_unhealthy(error)
                await self._drop_reply_client()
                await asyncio.sleep(0.2)
                continue
            except asyncio.CancelledError:
                await asyncio.shield(self._drop_reply_client())
                raise
            for _name, entries in reply or []:
                for entry_id, fields in entries:
                    last_id = entry_id
                    self._deliver_reply(fields.get(b"e", b""))

    def _deliver_reply(self, data: bytes) -> None:
        try:
            envelope = self.codec.decode(data)
        except Exception as error:
            log.error("undecodable_reply", error=str(error))
            return
        assert self._on_reply is not None
        self._on_reply(envelope)

    async def _drop_reply_client(self) -> None:
        client, self._reply_client = self._reply_client, None
        await self.drop_dedicated(client)

    async def _fire_timers(self) -> None:
        """Move due timers into their streams, for the shards this node owns: each shard's
        timers share its slot, and whoever takes a dead owner's shard fires them."""
        while True:
            owned = [(actor, shard) for actor in self._hosts for shard in self.owned_shards(actor)]
            try:
                if owned:
                    await self._fire_due(owned)
            except REDIS_DOWN as error:
                self.note_unhealthy(error)
                await asyncio.sleep(0.5)
            await asyncio.sleep(self.timer_poll)

    async def _fire_due(self, shards: list[tuple[str, int]]) -> None:
        now_ms = int(time.time() * 1000)
        async with self.client.pipeline(transaction=False) as pipe:
            for actor, shard in shards:
                stream = self.keys.stream(actor, shard)
                await self.scripts.fire_timers(
                    keys=[self.keys.timers(actor, shard), stream, self.keys.counter(stream)],
                    args=[now_ms, 500, self.stream_maxlen],
                    client=pipe,
                )
            results = await pipe.execute(raise_on_error=False)
        failed = [result for result in results if isinstance(result, Exception)]
        if failed and len(failed) == len(results):
            raise failed[0]  # Redis (or the cluster) is away: the caller backs off
        if failed and all(isinstance(error, TRANSIENT) for error in failed):
            # a master away or a slot moving: those shards' timers fire on a later round
            log.warning("redis_timers_deferred", failed=len(failed), error=str(failed[0]))
        elif failed:
            # one line a round, not one per shard every timer_poll
            log.error(
                "redis_timers_failed", failed=len(failed), shards=len(results), error=str(failed[0])
            )

    # ── what operators see ───────────────────────────────────────────────────────────

    async def shard_info(self, actor: str, shards: int) -> list[dict[str, Any]]:
        """Per shard, cluster-wide: owner node, lease expiry, stream length, pending, lag."""
        streams = [self.keys.stream(actor, shard) for shard in range(shards)]
        async with self.client.pipeline(transaction=False) as pipe:
            for shard, stream in enumerate(streams):
                pipe.get(self.keys.lease(actor, shard))
                pipe.pttl(self.keys.lease(actor, shard))
                pipe.xlen(stream)
                pipe.get(self.keys.counter(stream))
                pipe.xinfo_groups(stream)
            results = await pipe.execute(raise_on_error=False)
        info: list[dict[str, Any]] = []
        for shard in range(shards):
            owner, ttl, length, outstanding, groups = results[shard * 5 : shard * 5 + 5]
            group = _group_named(groups, actor)
            info.append(
                {
                    "shard": shard,
                    "node": _text(owner),
                    "lease_expires_in_ms": int(ttl) if isinstance(ttl, int) and ttl > 0 else None,
                    "stream_length": length if isinstance(length, int) else 0,
                    "outstanding": int(outstanding or 0)
                    if not isinstance(outstanding, Exception)
                    else 0,
                    "pending": int(group.get("pending", 0)) if group else 0,
                    "lag": group.get("lag") if group else None,
                }
            )
        return info

    def owned_shards(self, actor: str) -> dict[int, float]:
        """Shards of `actor` this node owns now, with their lease expiry (loop time)."""
        host = self._hosts.get(actor)
        if host is None:
            return {}
        return {m.shard: m.lease_expires_at for m in host.mailboxes.values() if m.owned}


def _group_named(groups: Any, name: str) -> dict[str, Any] | None:
    if not isinstance(groups, list):
        return None
    for group in groups:
        if _text(group.get("name")) == name:
            return {str(k): v for k, v in group.items()}
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, Exception):
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
