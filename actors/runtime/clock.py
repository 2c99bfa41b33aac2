"""Clocks: what time it is for an actor (injectable in tests), and how replies write it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

# Epoch seconds now; an actor takes one (default `wall_clock`) so tests can move time.
Clock = Callable[[], float]
wall_clock: Clock = time.time


def at(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (what asyncpg takes for timestamptz)."""
    return datetime.fromtimestamp(seconds, UTC)


def utc_now(clock: Clock = wall_clock) -> datetime:
    """The clock's now as an aware UTC datetime."""
    return at(clock())


def rfc3339(moment: datetime, *, timespec: str = "milliseconds") -> str:
    """2024-05-01T12:00:00.123Z (`timespec="seconds"`: 2024-05-01T12:00:00Z)."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
