"""The local end of a mailbox: a FIFO that one worker reads, waiting when it is empty."""

from __future__ import annotations

import asyncio
from collections import deque

from transport.base import MailboxClosed
from transport.envelope import Envelope


class ReaderQueue:
    """Envelopes waiting for the one worker of a shard; both transports' mailboxes build on it.

    Subclasses decide how envelopes arrive (senders, a stream reader) and what taking one
    frees up (`_taken`).
    """

    __slots__ = ("_closed", "_items", "_reader")

    def __init__(self) -> None:
        self._items: deque[Envelope] = deque()
        self._reader: asyncio.Future[None] | None = None
        self._closed = False

    def _taken(self) -> None:
        """An envelope left the queue: room for whoever waits to put one in."""

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            if not reader.done():
                reader.set_result(None)

    def get_nowait(self) -> Envelope | None:
        if not self._items:
            return None
        envelope = self._items.popleft()
        self._taken()
        return envelope

    async def get(self) -> Envelope:
        while not self._items:
            if self._closed:
                raise MailboxClosed("mailbox is closed")
            waiter = asyncio.get_running_loop().create_future()
            self._reader = waiter
            try:
                await waiter
            finally:
                if self._reader is waiter:
                    self._reader = None
        envelope = self._items.popleft()
        self._taken()
        return envelope

    def depth(self) -> int:
        return len(self._items)
