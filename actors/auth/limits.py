"""Login limits, as pure logic: when failed logins lock an email or an address out, for how long.

The rule: 5 failed logins for one email, or 20 from one address, within 15 minutes lock that
email (or address) out. While locked out, every login for it answers 429 with the seconds
left, even with the right password, so guessing gains nothing. Each further lockout of the
same key doubles the wait (5 min, 10, 20, … up to a day); a key that stayed clean for a
day starts again from the first step.

Failures that led to a lockout are not counted again once it ends: counting starts after
the previous lockout's end, so the next lockout needs five fresh failures (and is longer).

Times are epoch seconds, passed in explicitly (`now`), so every rule is testable without
waiting. The store keeps the failures and lockouts; this module only decides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

KeyKind = Literal["email", "ip"]


@dataclass(frozen=True, slots=True)
class Lockout:
    """One key's lockout: locked until `until`; `count` lockouts in a row so far."""

    until: float
    count: int


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """The thresholds and the lockout schedule."""

    window: float = 15 * 60.0  # failures older than this do not count
    email_threshold: int = 5  # failures for one email within the window
    ip_threshold: int = 20  # failures from one address within the window
    base_lockout: float = 5 * 60.0  # the first lockout
    growth: float = 2.0  # each further lockout lasts this much longer
    max_lockout: float = 24 * 3600.0
    forget_after: float = 24 * 3600.0  # a key clean this long starts again from the first step

    def __post_init__(self) -> None:
        if self.window <= 0 or self.base_lockout <= 0 or self.growth < 1:
            raise ValueError("window and base_lockout must be positive, growth at least 1")
        if self.email_threshold < 1 or self.ip_threshold < 1:
            raise ValueError("thresholds must be at least 1")

    @staticmethod
    def key(kind: KeyKind, value: str) -> str:
        """The lockout key of an email or an address."""
        return f"{kind}:{value}"

    def threshold(self, kind: KeyKind) -> int:
        return self.email_threshold if kind == "email" else self.ip_threshold

    def retry_after(self, lockouts: Iterable[Lockout | None], now: float) -> int | None:
        """Whole seconds until every lockout among these is over; None when none holds."""
        left = max((lock.until - now for lock in lockouts if lock is not None), default=0.0)
        return math.ceil(left) if left > 0 else None

    def counting_since(self, lockout: Lockout | None, now: float) -> float:
        """Failures at or before this moment do not count towards the next lockout."""
        since = now - self.window
        if lockout is not None:
            since = max(since, lockout.until)
        return since

    def tripped(self, kind: KeyKind, failures: int) -> bool:
        """Whether this many counted failures lock the key out."""
        return failures >= self.threshold(kind)

    def duration(self, count: int) -> float:
        """How long the `count`-th lockout in a row lasts (count >= 1)."""
        steps = max(count, 1) - 1
        # capped before the power, so a huge count cannot overflow a float
        if steps > 64:
            return self.max_lockout
        return float(min(self.base_lockout * self.growth**steps, self.max_lockout))

    def next_lockout(self, previous: Lockout | None, now: float) -> Lockout:
        """The lockout that starts now, one step longer than a recent previous one."""
        count = 1
        if previous is not None and now - previous.until < self.forget_after:
            count = previous.count + 1
        return Lockout(until=now + self.duration(count), count=count)
