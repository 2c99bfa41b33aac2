"""Statistics per actor shard: counters and a window of recent handling latencies."""

from __future__ import annotations

from array import array
from typing import Literal

import msgspec

ShardState = Literal[
    "starting", "running", "restarting", "escalated", "stopping", "stopped", "failed"
]

_WINDOW = 1024  # a power of two, so the ring index wraps with a mask


class ShardStats:
    """Counters one worker updates as it goes; cheap enough for the hot path."""

    __slots__ = (
        "_count",
        "_cursor",
        "_latencies",
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

    def record(self, seconds: float) -> None:
        self._latencies[self._cursor] = seconds
        self._cursor = (self._cursor + 1) & (_WINDOW - 1)
        self._count += 1

    def percentiles_ms(self) -> tuple[float | None, float | None]:
        """p50 and p99 over the most recent handled messages, in milliseconds."""
        n = min(self._count, _WINDOW)
        if n == 0:
            return None, None
        recent = sorted(self._latencies[:n])
        p50 = recent[min(n - 1, n // 2)]
        p99 = recent[min(n - 1, (n * 99) // 100)]
        return round(p50 * 1000, 3), round(p99 * 1000, 3)


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
