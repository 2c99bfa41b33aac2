"""The hosting side of the Redis Streams transport: shard leases, readers, mailboxes.

Every node that hosts an actor type runs one `ShardHost` for it. The host keeps a
membership entry alive, takes free shards by lease up to its fair share, gives extras
back when more nodes join, claims what a dead owner left pending, and reads the streams
of the shards it owns on one dedicated connection, feeding each shard's local mailbox. On
a Redis Cluster each shard's stream is in a slot of its own, and one XREADGROUP may name
streams of one slot only: there each shard has a reader of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from redis.exceptions import RedisError, ResponseError

from transport.codec import CodecError
from transport.envelope import Envelope
from transport.reader_queue import ReaderQueue
from transport.redis_keys import RedisClient

if TYPE_CHECKING:
    from transport.redis_streams import RedisStreamsTransport

log = structlog.get_logger("transport.redis")


class RedisMailbox(ReaderQueue):
    """One shard's local buffer, filled by its host's reader while this node owns it.

    Envelopes stay pending in the stream until acked, so nothing here is the only copy:
    what is buffered when the shard moves or the node stops is redelivered elsewhere.
    """

    def __init__(self, host: ShardHost, shard: int, capacity: int) -> None:
        super().__init__()
        self.host = host
        self.shard = shard
        self.capacity = capacity
        self.stream = host.transport.keys.stream(host.actor, shard)
        self.owned = False
        # times this node acquired the shard: hot state kept before the last acquisition
        # may be stale (another node wrote meanwhile), see actors/runtime/resident.py
        self.tenure = 0
        self.lease_expires_at = 0.0  # loop time
        self.read_from = ">"  # "0" while re-reading this consumer's own pending entries
        self._entry_ids: dict[str, list[bytes]] = {}  # envelope id -> stream entry ids
        self.attempts: dict[bytes, int] = {}  # entry id -> earlier deliveries, after a claim

    def room(self) -> int:
        return self.capacity - len(self._items)

    def deliver(self, entry_id: bytes, envelope: Envelope) -> None:
        """Called by the reader: one entry read from the stream for this shard."""
        self._entry_ids.setdefault(envelope.id, []).append(entry_id)
        self._items.append(envelope)
        self._wake_reader()

    def _taken(self) -> None:
        self.host.room_made()

    def ack(self, envelope: Envelope) -> None:
        entry_ids = self._entry_ids.get(envelope.id)
        if not entry_ids:
            return
        entry_id = entry_ids.pop(0)
        if not entry_ids:
            del self._entry_ids[envelope.id]
        self.host.transport.queue_ack(self.stream, self.host.group, entry_id)

    def dead_lettered(self, envelope: Envelope, error: str) -> None:
        """Keep a copy in the actor type's dead-letter stream (the ack follows)."""
        self.host.transport.queue_dead_letter(self.host.actor, self.shard, envelope, error)

    def unacked(self) -> int:
        return sum(len(ids) for ids in self._entry_ids.values())

    def revoke(self) -> None:
        """This node no longer owns the shard: forget what was buffered (it stays pending)."""
        self.owned = False
        self.read_from = ">"
        for envelope in self._items:
            ids = self._entry_ids.get(envelope.id)
            if ids:
                ids.pop()
                if not ids:
                    del self._entry_ids[envelope.id]
        self._items.clear()

    def close(self, unfinished: Sequence[Envelope] = ()) -> list[Envelope]:
        """Nothing is lost by closing: every unacked entry is still pending in the stream."""
        self._closed = True
        self._items.clear()
        # the worker has stopped: nothing left will be acked here, so hand_back need not wait
        self._entry_ids.clear()
        self._wake_reader()
        return []


class ShardHost:
    """Leases, membership and the blocking reader for one actor type on this node."""

    def __init__(self, transport: RedisStreamsTransport, actor: str) -> None:
        self.transport = transport
        self.actor = actor
        self.group = actor
        self.mailboxes: dict[int, RedisMailbox] = {}
        self._room = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reader_client: RedisClient | None = None
        self._reading = True
        self._in_flight: dict[str, int] = {}  # stream -> reads naming it, not answered yet
        self._handing_back: set[asyncio.Task[None]] = set()

    def add(self, shard: int, capacity: int) -> RedisMailbox:
        mailbox = RedisMailbox(self, shard, capacity)
        self.mailboxes[shard] = mailbox
        if self._tasks and self.transport.cluster:
            self._tasks.append(self._reader_task(mailbox))  # a shard added after start
        return mailbox

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keep_leases(), name=f"leases:{self.actor}")]
        if self.transport.cluster:
            self._tasks += [self._reader_task(m) for m in self.mailboxes.values()]
        else:
            self._tasks.append(self._reader_task(None))

    def _reader_task(self, mailbox: RedisMailbox | None) -> asyncio.Task[None]:
        name = f"reader:{self.actor}" + ("" if mailbox is None else f":{mailbox.shard}")
        return asyncio.get_running_loop().create_task(self._read(mailbox), name=name)

    def room_made(self) -> None:
        self._room.set()

    # ── leases ───────────────────────────────────────────────────────────────────────

    async def _keep_leases(self) -> None:
        transport = self.transport
        while True:
            try:
                await self.balance()
                transport.note_healthy()
            except (RedisError, OSError) as error:
                transport.note_unhealthy(error)
                self._revoke_all()
            except Exception:
                # a bug here must not end lease renewal for good: log it and try again
                log.exception("lease_keeping_failed", actor=self.actor)
                self._revoke_all()
            await asyncio.sleep(transport.lease_ttl / 3)

    async def balance(self) -> None:
        """Renew what we hold, then take free shards up to a fair share or give extras back."""
        transport = self.transport
        client = transport.client
        keys = transport.keys
        ttl_ms = int(transport.lease_ttl * 1000)
        loop = asyncio.get_running_loop()
        members = keys.members(self.actor)
        now_ms = int(time.time() * 1000)
        async with client.pipeline(transaction=False) as pipe:
            pipe.zadd(members, {transport.node_id: now_ms + ttl_ms})
            pipe.zremrangebyscore(members, "-inf", now_ms)
            pipe.zcard(members)
            _, _, live = await pipe.execute()
        owned = [m for m in self.mailboxes.values() if m.owned]
        if owned:
            # one lease per script call: on a Redis Cluster each shard has its own slot
            async with client.pipeline(transaction=False) as pipe:
                for mailbox in owned:
                    await transport.scripts.renew(
                        keys=[keys.lease(self.actor, mailbox.shard)],
                        args=[transport.node_id, ttl_ms],
                        client=pipe,
                    )
                renewed = await pipe.execute()
            for mailbox, still_ours in zip(owned, renewed, strict=True):
                if still_ours[0]:
                    mailbox.lease_expires_at = loop.time() + transport.lease_ttl
                else:
                    log.warning("shard_lease_lost", actor=self.actor, shard=mailbox.shard)
                    mailbox.revoke()
        fair = math.ceil(len(self.mailboxes) / max(int(live), 1))
        owned_count = sum(1 for m in self.mailboxes.values() if m.owned)
        for mailbox in self._in_preferred_order():
            # a node that stopped reading (shutting down) takes no new shards
            if owned_count >= fair or not self._reading:
                break
            if mailbox.owned:
                continue
            taken = await client.set(
                keys.lease(self.actor, mailbox.shard), transport.node_id, nx=True, px=ttl_ms
            )
            if taken:
                await self._take_over(mailbox)
                mailbox.lease_expires_at = loop.time() + transport.lease_ttl
                owned_count += 1
        if owned_count > fair:
            extras = [m for m in self._in_preferred_order() if m.owned][fair:]
            self._hand_back_later(extras)
        await self._trim([m for m in self.mailboxes.values() if m.owned])

    async def _trim(self, mailboxes: list[RedisMailbox]) -> None:
        """Drop entries every consumer is done with: older than both the oldest pending
        entry and the last one delivered. Never an unread or unacked entry (MAXLEN on
        send is only a safety valve far above any backlog)."""
        if not mailboxes:
            return
        client = self.transport.client
        async with client.pipeline(transaction=False) as pipe:
            for mailbox in mailboxes:
                pipe.xinfo_groups(mailbox.stream)
                pipe.xpending(mailbox.stream, self.group)
            results = await pipe.execute(raise_on_error=False)
        async with client.pipeline(transaction=False) as pipe:
            for index, mailbox in enumerate(mailboxes):
                groups, pending = results[2 * index], results[2 * index + 1]
                limit = _safe_trim_id(groups, pending, self.group)
                if limit is not None:
                    pipe.xtrim(mailbox.stream, minid=limit, approximate=True)
            await pipe.execute(raise_on_error=False)

    def _in_preferred_order(self) -> list[RedisMailbox]:
        """Each node starts at its own offset, so nodes joining at once try different shards."""
        shards = sorted(self.mailboxes)
        start = zlib.crc32(self.transport.node_id.encode()) % max(len(shards), 1)
        return [self.mailboxes[s] for s in shards[start:] + shards[:start]]

    async def _take_over(self, mailbox: RedisMailbox) -> None:
        """Claim every entry a previous owner left pending, then re-read them first."""
        client = self.transport.client
        await self.transport.ensure_group(mailbox.stream, self.group)
        start: bytes | str = "0-0"
        claimed = 0
        while True:
            # the full reply: with justid redis-py drops the cursor
            reply = await client.xautoclaim(
                mailbox.stream, self.group, self.transport.node_id, 0, start, count=500
            )
            next_start, ids = reply[0], reply[1]
            claimed += len(ids)
            if next_start in (b"0-0", "0-0") or not ids:
                break
            start = next_start
        mailbox.attempts = await self._delivery_counts(mailbox)
        mailbox.read_from = "0"
        mailbox.tenure += 1
        mailbox.owned = True
        log.info(
            "shard_acquired",
            actor=self.actor,
            shard=mailbox.shard,
            claimed=claimed,
            pending=len(mailbox.attempts),
        )
        self._room.set()

    async def _delivery_counts(self, mailbox: RedisMailbox) -> dict[bytes, int]:
        """Earlier deliveries of what is pending for us: the entries' attempt numbers."""
        pending: list[dict[str, Any]] = await self.transport.client.xpending_range(
            mailbox.stream,
            self.group,
            min="-",
            max="+",
            count=10_000,
            consumername=self.transport.node_id,
        )
        return {
            _as_bytes(item["message_id"]): max(int(item["times_delivered"]) - 1, 0)
            for item in pending
        }

    def _hand_back_later(self, mailboxes: list[RedisMailbox]) -> None:
        """Give shards back beside the lease loop: waiting for their reads in flight must
        not hold up the renewal of the leases this node keeps."""
        for mailbox in mailboxes:
            mailbox.revoke()  # at once: the next balance must not count or read them
        task = asyncio.get_running_loop().create_task(
            self._hand_back_all(mailboxes), name=f"hand-back:{self.actor}"
        )
        self._handing_back.add(task)
        task.add_done_callback(self._handing_back.discard)

    async def _hand_back_all(self, mailboxes: list[RedisMailbox]) -> None:
        try:
            for mailbox in mailboxes:
                await self.hand_back(mailbox)
        except (RedisError, OSError) as error:
            # the leases not released expire by themselves
            self.transport.note_unhealthy(error)

    async def hand_back(self, mailbox: RedisMailbox, wait: float | None = None) -> None:
        """Give a shard back: stop reading it, let the message in hand finish, drop the lease."""
        mailbox.revoke()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.transport.lease_ttl / 3 if wait is None else wait)
        # polled: it runs when a shard moves, for a fraction of a lease at most
        while mailbox.unacked() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        # a read begun while the shard was ours may still take entries, which stay pending
        # here: the next owner claims those when it takes the lease, so release it only after
        # that read answered (a blocking read lasts block_ms at most)
        read_deadline = loop.time() + self.transport.block_ms / 1000 + 1.0
        while self._in_flight.get(mailbox.stream) and loop.time() < read_deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await self.transport.flush_now()
        await self.transport.scripts.release(
            keys=[self.transport.keys.lease(self.actor, mailbox.shard)],
            args=[self.transport.node_id],
        )
        log.info("shard_released", actor=self.actor, shard=mailbox.shard)

    def _revoke_all(self) -> None:
        for mailbox in self.mailboxes.values():
            if mailbox.owned:
                mailbox.revoke()

    # ── reading ──────────────────────────────────────────────────────────────────────

    async def _read(self, only: RedisMailbox | None = None) -> None:
        """Read every owned shard's stream on one dedicated connection (or, on a cluster,
        only the one shard's)."""
        transport = self.transport
        while self._reading:
            candidates = self.mailboxes.values() if only is None else (only,)
            ready = [m for m in candidates if m.owned and m.room() > 0]
            if not ready:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), timeout=transport.block_ms / 1000)
                continue
            streams: dict[Any, Any] = {m.stream: m.read_from for m in ready}
            count = max(1, min(m.room() for m in ready))
            try:
                reply = await self._read_streams(streams, min(count, transport.read_count))
                transport.note_healthy()
            except ResponseError as error:
                if "NOGROUP" in str(error):
                    await self._recreate_groups(streams)
                    continue
                raise
            except (RedisError, OSError) as error:
                transport.note_unhealthy(error)
                if not transport.cluster:  # a cluster client, shared, reconnects by itself
                    await self._drop_reader_connection()
                await asyncio.sleep(0.2)
                continue
            except Exception:
                log.exception("stream_read_failed", actor=self.actor)
                await asyncio.sleep(0.2)
                continue
            except asyncio.CancelledError:
                # a blocking read cut off mid-way leaves the connection unusable (on a
                # cluster redis-py drops that one connection itself)
                if not transport.cluster:
                    await asyncio.shield(self._drop_reader_connection())
                raise
            self._dispatch(reply or [])

    async def _read_streams(self, streams: dict[Any, Any], count: int) -> Any:
        """One XREADGROUP, counted in flight for every stream it names (see hand_back)."""
        for stream in streams:
            self._in_flight[stream] = self._in_flight.get(stream, 0) + 1
        try:
            client = self._reader_connection()
            return await client.xreadgroup(
                self.group,
                self.transport.node_id,
                streams,
                count=count,
                block=self.transport.block_ms,
            )
        finally:
            for stream in streams:
                self._in_flight[stream] -= 1

    def _dispatch(self, reply: Any) -> None:
        by_stream = {m.stream: m for m in self.mailboxes.values()}
        for stream_name, entries in reply:
            mailbox = by_stream.get(_as_str(stream_name))
            if mailbox is None or not mailbox.owned:
                continue
            if mailbox.read_from != ">" and not entries:
                mailbox.read_from = ">"  # our own backlog is done: on to new entries
                mailbox.attempts = {}
                continue
            for entry_id, fields in entries:
                self._deliver_entry(mailbox, entry_id, fields)

    def _deliver_entry(self, mailbox: RedisMailbox, entry_id: bytes, fields: Any) -> None:
        if mailbox.read_from != ">":
            # the backlog is read again from after the last entry seen (every one: a
            # history read from an id returns only what comes after it, so the next read
            # starts past this batch, and an empty answer means the backlog is done)
            mailbox.read_from = _as_str(entry_id)
        if not fields:
            # trimmed away while pending: nothing to deliver, just settle it
            self.transport.queue_ack(mailbox.stream, self.group, entry_id)
            return
        data = fields.get(b"e") if isinstance(fields, dict) else None
        try:
            envelope = self.transport.codec.decode(data or b"")
        except CodecError as error:
            log.error(
                "undecodable_entry",
                stream=mailbox.stream,
                entry=_as_str(entry_id),
                error=str(error),
            )
            self.transport.queue_raw_dead_letter(self.actor, mailbox.shard, data or b"", str(error))
            self.transport.queue_ack(mailbox.stream, self.group, entry_id)
            return
        earlier = mailbox.attempts.get(_as_bytes(entry_id), 0)
        if earlier > envelope.attempt:
            envelope = msgspec.structs.replace(envelope, attempt=earlier)
        if envelope.shard != mailbox.shard:
            envelope = msgspec.structs.replace(envelope, shard=mailbox.shard)
        mailbox.deliver(_as_bytes(entry_id), envelope)

    async def _recreate_groups(self, streams: dict[Any, Any]) -> None:
        """The server lost its data (a restart without persistence): start the groups again."""
        for stream in streams:
            await self.transport.ensure_group(stream, self.group)

    def _reader_connection(self) -> RedisClient:
        if self._reader_client is None:
            self._reader_client = self.transport.dedicated_client()
        return self._reader_client

    async def _drop_reader_connection(self) -> None:
        client, self._reader_client = self._reader_client, None
        await self.transport.drop_dedicated(client)

    async def stop_reading(self) -> None:
        self._reading = False
        for task in self._tasks[1:]:
            await cancel_and_wait(task)

    async def stop(self) -> None:
        """Hand every owned shard back and leave the membership."""
        await self.stop_reading()
        if self._tasks:
            await cancel_and_wait(self._tasks[0])
        # no read is in flight any more: shards being handed back go at once
        await asyncio.gather(*self._handing_back, return_exceptions=True)
        transport = self.transport
        try:
            for mailbox in [m for m in self.mailboxes.values() if m.owned]:
                await self.hand_back(mailbox, wait=0.5)
            await transport.client.zrem(transport.keys.members(self.actor), transport.node_id)
        except (RedisError, OSError) as error:
            log.warning("shard_hand_back_failed", actor=self.actor, error=str(error))
        await self._drop_reader_connection()


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel a task and wait until it ends, cancelling it again while it runs on: on Python
    3.11 asyncio.wait_for (in redis-py's reads) swallows a cancel landing as a reply arrives,
    and a `while True` loop would then run, and be awaited, forever."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    await asyncio.gather(task, return_exceptions=True)


def _safe_trim_id(groups: Any, pending: Any, group_name: str) -> str | None:
    """The lowest id still needed by the group, or None when that cannot be known."""
    if not isinstance(groups, list) or not isinstance(pending, dict):
        return None
    group = next((g for g in groups if _as_str(g.get("name", b"")) == group_name), None)
    if group is None or group.get("last-delivered-id") is None:
        return None
    candidates = [_as_str(group["last-delivered-id"])]
    if pending.get("pending") and pending.get("min") is not None:
        candidates.append(_as_str(pending["min"]))
    return min(candidates, key=_id_order)


def _id_order(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)


def _as_str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
