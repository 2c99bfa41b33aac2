"""The reading side of a shard host: blocking XREADGROUP reads feeding the mailboxes.

One reader reads every owned shard's stream on one dedicated connection; on a Redis
Cluster each shard's stream is in a slot of its own, and one XREADGROUP may name streams
of one slot only: there each shard has a reader of its own. `ShardHost` (redis_shards.py)
adds the leases that say which shards are owned.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from redis.exceptions import ResponseError

from transport.codec import CodecError
from transport.redis_keys import REDIS_DOWN, RedisClient
from transport.redis_mailbox import RedisMailbox, as_bytes, as_str

if TYPE_CHECKING:
    from transport.redis_streams import RedisStreamsTransport

log = structlog.get_logger("transport.redis")


class ShardReader:
    """The blocking readers of one actor type's owned shards on this node."""

    def __init__(self, transport: RedisStreamsTransport, actor: str) -> None:
        self.transport = transport
        self.actor = actor
        self.group = actor
        self.mailboxes: dict[int, RedisMailbox] = {}
        self._room = asyncio.Event()
        self._reader_client: RedisClient | None = None
        self._reading = True
        self._in_flight: dict[str, int] = {}  # stream -> reads naming it, not answered yet

    def room_made(self) -> None:
        self._room.set()

    def _reader_task(self, mailbox: RedisMailbox | None) -> asyncio.Task[None]:
        name = f"reader:{self.actor}" + ("" if mailbox is None else f":{mailbox.shard}")
        return asyncio.get_running_loop().create_task(self._read(mailbox), name=name)

    async def _read(self, only: RedisMailbox | None = None) -> None:
        """Read every owned shard's stream on one dedicated connection (or, on a cluster,
        only the one shard's)."""
        transport = self.transport
        loop = asyncio.get_running_loop()
        # a read must be answered before the lease could expire: a shard not renewed
        # for that long (Redis away, a failover) is not read until it is, or entries read
        # after another node took the shard over would sit pending here, out of its
        # reach and out of order (_claim_stranded is the safety net, for a stalled loop)
        guard = min(transport.block_ms / 1000 + transport.lease_ttl / 10, transport.lease_ttl / 2)
        while self._reading:
            candidates = self.mailboxes.values() if only is None else (only,)
            now = loop.time()
            ready = [
                m
                for m in candidates
                if m.owned and m.room() > 0 and m.lease_expires_at - now > guard
            ]
            if not ready:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), timeout=transport.block_ms / 1000)
                continue
            streams: dict[Any, Any] = {m.stream: m.read_from for m in ready}
            tenures = {m.stream: m.tenure for m in ready}
            count = max(1, min(m.room() for m in ready))
            try:
                reply = await self._read_streams(streams, min(count, transport.read_count))
                transport.note_healthy()
            except ResponseError as error:
                if "NOGROUP" in str(error):
                    await self._recreate_groups(streams)
                    continue
                # e.g. UNBLOCKED: the master this read waited on became a replica (a
                # failover). Read again, where the cluster now says; ending here would
                # leave the shard owned but never read
                transport.note_unhealthy(error)
                await asyncio.sleep(0.05)
                continue
            except REDIS_DOWN as error:
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
            self._dispatch(reply or [], tenures)

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

    def _dispatch(self, reply: Any, tenures: dict[str, int]) -> None:
        """Hand a read's entries to their mailboxes, if the shard is still held in the
        tenure the read was made in (`tenures`: stream -> tenure then)."""
        by_stream = {m.stream: m for m in self.mailboxes.values()}
        for stream_name, entries in reply:
            stream = as_str(stream_name)
            mailbox = by_stream.get(stream)
            if mailbox is None or not mailbox.owned or mailbox.tenure != tenures.get(stream):
                # a read that outlived the shard's loss (or, on a cluster mid-failover, its
                # loss and taking back): its entries stay pending for this consumer, and
                # the new tenure's backlog read from "0" comes after this one. Delivered
                # now they would move that read past the backlog the takeover claimed
                continue
            if mailbox.read_from != ">" and not entries:
                mailbox.read_from = ">"  # our own backlog is done: on to new entries
                mailbox.attempts = {}
                continue
            for entry_id, fields in entries:
                self._deliver_entry(mailbox, entry_id, fields)

    def _deliver_entry(
        self,
        mailbox: RedisMailbox,
        entry_id: bytes,
        fields: Any,
        delivered_before: int | None = None,
    ) -> None:
        """Hand one stream entry to the shard's mailbox; its attempt counts the deliveries
        before it (`delivered_before`, else what the mailbox noted of its backlog)."""
        if mailbox.read_from != ">":
            # the backlog is read again from after the last entry seen (every one: a
            # history read from an id returns only what comes after it, so the next read
            # starts past this batch, and an empty answer means the backlog is done)
            mailbox.read_from = as_str(entry_id)
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
                entry=as_str(entry_id),
                error=str(error),
            )
            self.transport.queue_raw_dead_letter(self.actor, mailbox.shard, data or b"", str(error))
            self.transport.queue_ack(mailbox.stream, self.group, entry_id)
            return
        earlier = (
            mailbox.attempts.get(as_bytes(entry_id), 0)
            if delivered_before is None
            else delivered_before
        )
        if earlier > envelope.attempt:
            envelope = msgspec.structs.replace(envelope, attempt=earlier)
        if envelope.shard != mailbox.shard:
            envelope = msgspec.structs.replace(envelope, shard=mailbox.shard)
        mailbox.deliver(as_bytes(entry_id), envelope)

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
