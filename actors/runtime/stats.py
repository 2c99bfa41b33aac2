"""Statistics per actor shard: counters and a window of recent handling latencies."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Literal, NamedTuple

import msgspec

ShardState = Literal[
    "starting", "running", "restarting", "escalated", "stopping", "stopped", "failed"
]

_WINDOW = 1024  # a power of two, so the ring index wraps with a mask
# upper bounds (seconds) of the handling-time histogram's buckets; one more counts the rest
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip


class ShardStats:
    """Counters one worker updates as it goes; cheap enough for the hot path."""

    __slots__ = (
        "_buckets",
        "_count",
        "_cursor",
        "_latencies",
        "_sum",
        "dead_lettered",
        "expired",
        "failed",
        "handled",
        "last_error",
        "rejected",
        "restarts",
    )

    def __init__(self) -> None:
        self.handled = 0
        self.failed = 0
        self.rejected = 0
        self.dead_lettered = 0
        self.expired = 0
        self.restarts = 0
        self.last_error: str | None = None
        self._latencies = array("d", bytes(8 * _WINDOW))
        self._cursor = 0
        self._count = 0
        # every recorded latency also counts in its bucket, for good (the ring forgets)
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._sum = 0.0

    def record(self, seconds: float) -> None:
        self._latencies[self._cursor] = seconds
        self._cursor = (self._cursor + 1) & (_WINDOW - 1)
        self._count += 1
        self._buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._sum += seconds

    def histogram(self) -> tuple[list[int], float]:
        """Recorded latencies per bucket of LATENCY_BUCKETS (the last: above them all), not
        cumulative, and their sum in seconds. The hot path records one message in four."""
        return list(self._buckets), self._sum

    def percentiles_ms(self) -> tuple[float | None, float | None]:
        """p50 and p99 over the most recent handled messages, in milliseconds."""
        n = min(self._count, _WINDOW)
        if n == 0:
            return None, None
        recent = sorted(self._latencies[:n])
        p50 = recent[min(n - 1, n // 2)]
        p99 = recent[min(n - 1, (n * 99) // 100)]
        return round(p50 * 1000, 3), round(p99 * 1000, 3)


class LiveShard(NamedTuple):
    """One local shard's live statistics, read where they are kept (for metrics exporters)."""

    name: str
    shard: int
    state: ShardState
    mailbox: int
    stats: ShardStats


class ShardStatus(msgspec.Struct, kw_only=True):
    """A snapshot of one shard, as `/ops/actors` shows it."""

    name: str
    shard: int
    node: str
    state: ShardState
    mailbox: int
    handled: int
    failed: int
    rejected: int
    dead_lettered: int
    expired: int
    restarts: int
    last_error: str | None
    p50_ms: float | None
    p99_ms: float | None
    # of `mailbox`: messages set aside behind a key whose message crashed (heads included)
    parked: int = 0
