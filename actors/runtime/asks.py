"""Asks waiting for their replies, expired at their deadlines by one shared timer."""

from __future__ import annotations

import asyncio
import math

from actors.runtime.errors import AskTimeout
from transport import Envelope

# waiter, deadline (loop time), target, message type, timeout
_Entry = tuple["asyncio.Future[Envelope]", float, str, str, float]


class PendingAsks:
    """The asks of this node that have not been answered yet.

    One timer handle per ask (call_later + cancel) costs about a sixth of an in-memory
    round trip; instead one timer is armed for the earliest deadline, and re-armed only
    when a new ask would expire sooner. Asks with the same timeout arm almost no timers.
    """

    __slots__ = ("_entries", "_handle", "_sweep_at")

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._sweep_at = math.inf

    def add(
        self,
        ask_id: str,
        waiter: asyncio.Future[Envelope],
        deadline: float,
        target: str,
        message_type: str,
        timeout: float,
    ) -> None:
        self._entries[ask_id] = (waiter, deadline, target, message_type, timeout)
        if deadline < self._sweep_at:
            self._arm(deadline)

    def discard(self, ask_id: str) -> None:
        self._entries.pop(ask_id, None)

    def resolve(self, ask_id: str, reply: Envelope) -> bool:
        """Hand the reply to its asker; False when nobody waits for it any more."""
        entry = self._entries.pop(ask_id, None)
        if entry is None or entry[0].done():
            return False
        entry[0].set_result(reply)
        return True

    def fail_all(self, error: BaseException) -> None:
        entries, self._entries = self._entries, {}
        for waiter, *_ in entries.values():
            if not waiter.done():
                waiter.set_exception(error)
        if self._handle is not None:
            self._handle.cancel()
            self._handle, self._sweep_at = None, math.inf

    def __len__(self) -> int:
        return len(self._entries)

    def _arm(self, at: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = asyncio.get_running_loop().call_at(at, self._sweep)
        self._sweep_at = at

    def _sweep(self) -> None:
        self._handle, self._sweep_at = None, math.inf
        now = asyncio.get_running_loop().time()
        soonest = math.inf
        for ask_id, (waiter, deadline, target, message_type, timeout) in list(
            self._entries.items()
        ):
            if deadline <= now:
                del self._entries[ask_id]
                if not waiter.done():
                    waiter.set_exception(
                        AskTimeout(f"{target} did not answer {message_type} within {timeout}s")
                    )
            elif deadline < soonest:
                soonest = deadline
        if soonest < math.inf:
            self._arm(soonest)
