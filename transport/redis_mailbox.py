"""One shard's local mailbox on the Redis Streams transport, and small helpers its host uses.

A `RedisMailbox` is the buffer a shard's reader fills while this node owns the shard (see
redis_shards.py); the stream keeps every entry pending until it is acked, so the buffer is
never the only copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from transport.envelope import Envelope
from transport.reader_queue import ReaderQueue

if TYPE_CHECKING:
    from transport.redis_shards import ShardHost


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


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel a task and wait until it ends, cancelling it again while it runs on: on Python
    3.11 asyncio.wait_for (in redis-py's reads) swallows a cancel landing as a reply arrives,
    and a `while True` loop would then run, and be awaited, forever."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    await asyncio.gather(task, return_exceptions=True)


def as_str(value: bytes | str) -> str:
    """A Redis reply's bytes as text."""
    return value.decode() if isinstance(value, bytes) else value


def as_bytes(value: bytes | str) -> bytes:
    """A Redis reply's text as bytes."""
    return value if isinstance(value, bytes) else value.encode()
