"""One backoff policy for every retry: supervision restarts, the outbox relay, deliveries."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds to wait after failed try number n: exponential, capped, with optional jitter.

    The base delay is `initial * factor**(n-1)`, at most `maximum`; jitter takes a random
    part of up to `jitter` (a fraction) off it, so tries that failed together (a mail server
    outage) do not all come back at the same instant.
    """

    initial: float
    maximum: float
    factor: float = 2.0
    jitter: float = 0.0
    random: Callable[[], float] = dataclasses.field(
        default=random.random, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("backoff: need 0 <= initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff: jitter is a fraction between 0 and 1")

    def base(self, attempt: int) -> float:
        """The delay before jitter after failed try `attempt` (1, 2, ...)."""
        exponent = min(max(attempt - 1, 0), 64)  # factor**64 is past any sane maximum
        return float(min(self.initial * self.factor**exponent, self.maximum))

    def delay(self, attempt: int) -> float:
        """The delay after failed try `attempt`, jitter applied."""
        if self.jitter == 0:
            return self.base(attempt)
        return self.base(attempt) * (1.0 - self.jitter * self.random())
