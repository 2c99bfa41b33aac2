"""Restart policies after Erlang/OTP: at most R restarts in T seconds, with backoff."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from actors.runtime.backoff import Backoff


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How often a child may crash and restart before its supervisor gives up on it.

    `max_restarts` within `within` seconds is Erlang's intensity and period. The n-th
    restart inside the window waits `backoff_initial * 2**(n-1)`, capped at `backoff_max`.
    """

    max_restarts: int = 10
    within: float = 60.0
    backoff_initial: float = 0.05
    backoff_max: float = 5.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.within <= 0:
            raise ValueError("max_restarts must be >= 0 and within > 0")
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_initial must be >= 0 and <= backoff_max")

    @property
    def backoff(self) -> Backoff:
        """The wait before the n-th restart inside the window."""
        return Backoff(self.backoff_initial, self.backoff_max)


class RestartWindow:
    """The recent restarts of one child; decides whether the next one is allowed."""

    __slots__ = ("_backoff", "_policy", "_times")

    def __init__(self, policy: RestartPolicy) -> None:
        self._policy = policy
        self._backoff = policy.backoff
        self._times: deque[float] = deque()

    def next_delay(self, now: float | None = None) -> float | None:
        """The backoff before the next restart, or None when the intensity is exceeded."""
        now = time.monotonic() if now is None else now
        policy = self._policy
        while self._times and now - self._times[0] > policy.within:
            self._times.popleft()
        if len(self._times) >= policy.max_restarts:
            return None
        self._times.append(now)
        return self._backoff.base(len(self._times))

    def reset(self) -> None:
        self._times.clear()
