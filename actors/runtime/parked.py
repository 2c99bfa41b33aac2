"""Keys a shard has set aside after a crash, so that one poison message stalls only its key.

A message whose handler crashed parks its key: the message waits at the head of that key's
queue for a retry after a backoff, and the key's later messages wait behind it in arrival
order, while the shard goes on serving every other key. When the head finally succeeds,
is refused, or is dead-lettered, the key is released and its waiting messages run in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from actors.runtime.backoff import Backoff
from transport import Envelope


class _WholeShard:
    """The key of a message that has none (no key function, or it returned None): such
    messages are parked together, as if the shard were one key."""

    def __repr__(self) -> str:
        return "<whole shard>"


WHOLE_SHARD: Hashable = _WholeShard()


@dataclass(slots=True)
class _Queue:
    """One parked key: the failed message first, then the key's later messages."""

    messages: deque[Envelope]
    due: float | None  # monotonic time of the head's next try; None while it is in hand
    since: float  # when the key was parked (for logs)
    held: int = field(default=0)


class ParkedKeys:
    """The parked keys of one shard, with when each one's failed message is tried again.

    `queues` is read directly on the worker's hot path (a dict is falsy when nothing is
    parked), so it is never replaced, only changed in place.
    """

    __slots__ = ("_backoff", "count", "limit", "queues")

    def __init__(self, backoff: Backoff, limit: int) -> None:
        self._backoff = backoff
        self.limit = limit  # past this many held messages the worker stops taking new ones
        self.queues: dict[Hashable, _Queue] = {}
        self.count = 0  # messages held, heads included

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    def park(self, key: Hashable, failed: Envelope, now: float) -> float:
        """Put `failed` at the head of its key's queue (a new one, or replacing the head it
        retried) and schedule its next try; returns the delay."""
        delay = self._backoff.delay(max(failed.attempt, 1))
        queue = self.queues.get(key)
        if queue is None:
            self.queues[key] = _Queue(deque((failed,)), now + delay, now)
            self.count += 1
        elif queue.messages[0].id == failed.id:
            queue.messages[0] = failed
            queue.due = now + delay
        else:
            # the key is already parked behind another message: this one waits its turn
            # there, its attempts counted (never lost, never ahead of the head)
            queue.messages.append(failed)
            queue.held += 1
            self.count += 1
        return delay

    def hold(self, key: Hashable, envelope: Envelope) -> bool:
        """If `key` is parked, keep `envelope` behind its queue (True); else False."""
        queue = self.queues.get(key)
        if queue is None:
            return False
        queue.messages.append(envelope)
        queue.held += 1
        self.count += 1
        return True

    def due(self, now: float) -> Hashable | None:
        """The key whose failed message should be tried now (the longest overdue), if any."""
        found: Hashable | None = None
        earliest = now
        for key, queue in self.queues.items():
            if queue.due is not None and queue.due <= earliest:
                found, earliest = key, queue.due
        return found

    def next_due(self) -> float | None:
        """When the next try falls due (monotonic), or None when none is scheduled."""
        times = [q.due for q in self.queues.values() if q.due is not None]
        return min(times) if times else None

    def take_head(self, key: Hashable) -> Envelope:
        """The failed message of `key`, now in hand: it is not due again until re-parked."""
        queue = self.queues[key]
        queue.due = None
        return queue.messages[0]

    def release(self, key: Hashable, finished: Envelope) -> list[Envelope] | None:
        """`finished` is done for good: if it heads its key's queue and no retry is pending
        for it, unpark the key and return the messages that waited behind it, in order."""
        queue = self.queues.get(key)
        if queue is None or queue.due is not None or queue.messages[0].id != finished.id:
            return None
        del self.queues[key]
        self.count -= len(queue.messages)
        queue.messages.popleft()
        return list(queue.messages)

    def wake_idle(self, now: float) -> None:
        """A head taken in hand but never finished (the worker was stopped mid-retry) is
        due again now."""
        for queue in self.queues.values():
            if queue.due is None:
                queue.due = now

    def envelopes(self) -> list[Envelope]:
        """Every parked message, heads first within each key."""
        return [envelope for queue in self.queues.values() for envelope in queue.messages]

    def clear(self) -> None:
        self.queues.clear()
        self.count = 0
