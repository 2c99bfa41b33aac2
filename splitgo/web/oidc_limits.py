"""The token endpoint's rate limits (`POST /oauth2/token`, splitgo/web/oidc.py).

Two limits, token buckets in memory per node (like the edge's generic one in
hardening.py, whose SPLITGO_RATE_LIMIT they scale):

- per client address, every request: 10 x SPLITGO_RATE_LIMIT a minute (600 by default). An
  app's server exchanges the codes and refreshes of all its users from one address, so
  this is ten times the limit of a person's sign-ins;
- per client_id, refused requests only (a wrong secret, code, verifier or refresh token):
  SPLITGO_RATE_LIMIT a minute. Guessing against one app is capped however many addresses
  it comes from, while an app's own good requests never use this bucket up; the price is
  that someone guessing for an app slows that app's token requests too (as the login
  lockouts do a person's sign-ins).

Past either: 429 with Retry-After and the OAuth error `slow_down` (RFC 8628 3.5, which
registers it for the token endpoint: "polling too quickly"); RFC 6749's
`temporarily_unavailable` is registered for the authorization endpoint only, and says
the server is overloaded rather than that this client asks too often.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from splitgo.web.hardening import HARDENING, RateLimiter

ADDRESS_FACTOR = 10  # per address: this many times SPLITGO_RATE_LIMIT
CLIENT_ID_KEY_MAX = 200  # a client_id past this is no registered one: cut, for the key


class RefusalBuckets:
    """Token buckets that only refusals spend: `per_minute` refusals, refilled evenly over
    a minute; a key whose bucket is empty is refused before it is asked."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def _tokens(self, key: str, now: float) -> float:
        tokens, when = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - when) * self.per_second)

    def wait(self, key: str) -> float:
        """0.0 when `key` may ask; else the seconds until it may."""
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.per_second

    def refused(self, key: str) -> None:
        """One more refusal for `key`."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._prune(now)
        self._buckets[key] = (max(0.0, tokens - 1.0), now)

    def _prune(self, now: float) -> None:
        """Forget buckets that are full again; past that, a flood of new keys: start over."""
        for key in [key for key in self._buckets if self._tokens(key, now) >= self.capacity]:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()


@dataclass(slots=True)
class TokenLimits:
    """The token endpoint's two limits; `per_minute` 0: none."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    addresses: RateLimiter = field(init=False)
    clients: RefusalBuckets = field(init=False)

    def __post_init__(self) -> None:
        per_minute = max(self.per_minute, 1)
        self.addresses = RateLimiter(per_minute * ADDRESS_FACTOR, clock=self.clock)
        self.clients = RefusalBuckets(per_minute, clock=self.clock)

    def address_wait(self, address: str) -> int | None:
        """Whole seconds this address must wait (a request counted against it); None: go on."""
        if self.per_minute <= 0:
            return None
        return _seconds(self.addresses.take("oauth_token", address))

    def client_wait(self, client_id: str) -> int | None:
        """Whole seconds this client must wait after its refusals; None: go on."""
        if self.per_minute <= 0:
            return None
        return _seconds(self.clients.wait(client_id[:CLIENT_ID_KEY_MAX]))

    def refused(self, client_id: str) -> None:
        """The auth actor (or the form's check) refused a request of this client."""
        if self.per_minute > 0:
            self.clients.refused(client_id[:CLIENT_ID_KEY_MAX])


def _seconds(wait: float) -> int | None:
    return max(1, math.ceil(wait)) if wait > 0 else None


TOKEN_LIMITS = web.AppKey("oauth_token_limits", TokenLimits)


def install(app: web.Application) -> None:
    """The token endpoint's limits, scaled from the edge's (install hardening first)."""
    app[TOKEN_LIMITS] = TokenLimits(app[HARDENING].rate_limit)
