"""In-process mailboxes: bounded queues in memory, no serialization unless asked for."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog

from transport.base import MailboxClosed, ReplyHandler, UnknownTarget
from transport.codec import Codec
from transport.envelope import Envelope
from transport.reader_queue import ReaderQueue

log = structlog.get_logger("transport.memory")


class MemoryMailbox(ReaderQueue):
    """A bounded FIFO for one shard, read by one worker; a full mailbox makes senders wait.

    Leaner than asyncio.Queue (no task accounting, one reader): a deque plus a waiter
    future for the reader and a queue of waiter futures for blocked senders.
    """

    __slots__ = ("_capacity", "_putters", "_reserved")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        super().__init__()
        self._capacity = capacity
        self._putters: deque[asyncio.Future[None]] = deque()
        self._reserved = 0  # room promised to woken senders that have not run yet

    def offer(self, envelope: Envelope) -> bool:
        """Enqueue if there is room (and nobody queued before us); False otherwise."""
        if self._closed:
            raise MailboxClosed("mailbox is closed")
        items = self._items
        if len(items) + self._reserved >= self._capacity or self._putters:
            return False
        items.append(envelope)
        reader = self._reader
        if reader is not None:
            self._reader = None
            if not reader.done():
                reader.set_result(None)
        return True

    async def put(self, envelope: Envelope) -> None:
        """Enqueue, waiting in line while the mailbox is full."""
        if self.offer(envelope):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._putters.append(waiter)
        try:
            await waiter
        except BaseException:
            self._drop_putter(waiter)
            raise
        if self._closed:
            raise MailboxClosed("mailbox closed while the sender waited")
        # our turn: the room reserved for us when we were woken
        self._reserved -= 1
        self._items.append(envelope)
        self._wake_reader()
        self._wake_putter()

    def _drop_putter(self, waiter: asyncio.Future[None]) -> None:
        try:
            self._putters.remove(waiter)
        except ValueError:
            # Already off the line. Woken (a result set): give back its room and pass the
            # turn on. Cancelled while waiting: _wake_putter skipped it and reserved nothing,
            # so there is no room to give back.
            if not self._closed and not waiter.cancelled():
                self._reserved -= 1
                self._wake_putter()

    def _wake_putter(self) -> None:
        while self._putters and len(self._items) + self._reserved < self._capacity:
            waiter = self._putters.popleft()
            if not waiter.done():
                self._reserved += 1
                waiter.set_result(None)

    def _taken(self) -> None:
        if self._putters:
            self._wake_putter()

    def ack(self, envelope: Envelope) -> None:
        return None

    def dead_lettered(self, envelope: Envelope, error: str) -> None:
        return None

    def close(self, unfinished: Sequence[Envelope] = ()) -> list[Envelope]:
        self._closed = True
        left = [*unfinished, *self._items]
        self._items.clear()
        self._wake_reader()
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        return left


class _MemoryTimer:
    __slots__ = ("__weakref__", "_handle", "_task")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._task is not None:
            self._task.cancel()


class MemoryTransport:
    """Every shard of every actor type lives in this process.

    With `codec` set, every envelope is encoded and decoded on the way, so a message that
    could not cross a network fails here exactly as it would over Redis (the test suite
    turns this on).
    """

    durable_timers = False

    def __init__(self, *, node_id: str, codec: Codec | None = None) -> None:
        self.node_id = node_id
        self._codec = codec
        self._boxes: dict[tuple[str, int], MemoryMailbox] = {}
        self._on_reply: ReplyHandler | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, on_reply: ReplyHandler) -> None:
        self._on_reply = on_reply

    def open_mailbox(self, actor: str, shard: int, capacity: int) -> MemoryMailbox:
        box = MemoryMailbox(capacity)
        self._boxes[(actor, shard)] = box
        return box

    def try_send(self, envelope: Envelope) -> bool:
        if self._codec is not None:
            envelope = self._codec.roundtrip(envelope)
        if envelope.kind == "reply":
            self._deliver_reply(envelope)
            return True
        box = self._boxes.get((envelope.target, envelope.shard))
        if box is None:
            raise UnknownTarget(f"no actor {envelope.target!r} shard {envelope.shard} here")
        return box.offer(envelope)

    async def send(self, envelope: Envelope) -> None:
        if self._codec is not None:
            envelope = self._codec.roundtrip(envelope)
        if envelope.kind == "reply":
            self._deliver_reply(envelope)
            return
        await self._box(envelope).put(envelope)

    def _box(self, envelope: Envelope) -> MemoryMailbox:
        box = self._boxes.get((envelope.target, envelope.shard))
        if box is None:
            raise UnknownTarget(f"no actor {envelope.target!r} shard {envelope.shard} here")
        return box

    def _deliver_reply(self, envelope: Envelope) -> None:
        if envelope.target != self.node_id:
            raise UnknownTarget(f"no node {envelope.target!r} in this process")
        assert self._on_reply is not None, "transport not started"
        self._on_reply(envelope)

    def schedule(self, envelope: Envelope, delay: float) -> _MemoryTimer:
        if self._codec is not None:
            # fail now, at the caller, rather than later inside a timer callback
            envelope = self._codec.roundtrip(envelope)
        timer = _MemoryTimer()
        loop = asyncio.get_running_loop()
        timer._handle = loop.call_later(max(delay, 0.0), self._fire, timer, envelope)
        return timer

    def _fire(self, timer: _MemoryTimer, envelope: Envelope) -> None:
        if self._try_offer(envelope):
            return
        task = asyncio.get_running_loop().create_task(self._deliver_timer(envelope))
        timer._task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _try_offer(self, envelope: Envelope) -> bool:
        try:
            return self.try_send(envelope)
        except MailboxClosed:
            log.info("timer_dropped_mailbox_closed", target=envelope.target, id=envelope.id)
            return True

    async def _deliver_timer(self, envelope: Envelope) -> None:
        try:
            await self.send(envelope)
        except MailboxClosed:
            log.info("timer_dropped_mailbox_closed", target=envelope.target, id=envelope.id)
        except Exception:
            log.exception("timer_delivery_failed", target=envelope.target, id=envelope.id)

    async def stop_intake(self) -> None:
        # senders are the intake here, and actors may still tell each other while draining
        return None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._boxes.clear()

    async def shard_info(self, actor: str, shards: int) -> list[dict[str, Any]]:
        info: list[dict[str, Any]] = []
        for shard in range(shards):
            box = self._boxes.get((actor, shard))
            depth = box.depth() if box is not None else 0
            info.append(
                {
                    "shard": shard,
                    "node": self.node_id if box is not None else None,
                    "lease_expires_in_ms": None,
                    "stream_length": depth,
                    "outstanding": depth,
                    "pending": 0,
                    "lag": depth,
                }
            )
        return info

    def mailboxes(self) -> dict[tuple[str, int], MemoryMailbox]:
        """The hosted mailboxes, for inspection in tests."""
        return dict(self._boxes)
