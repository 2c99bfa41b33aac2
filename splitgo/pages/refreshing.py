"""One refresh per refresh token on this node, however many requests need it at once.

A browser that comes back after its access token expired often sends several requests
together (a page and its form post, two tabs). Each would present the same refresh token,
and auth treats a second use of a rotated token as theft: it revokes the whole session.
So the first request here exchanges the token and the others wait for, and share, its new
pair; the answer is kept for a few seconds for requests that arrive just after. Only a
digest of the token is kept as the key.

Requests of one browser that reach two nodes within the same instant can still both
present the token; that needs a grace window in auth itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from actors.auth.messages import TokenPair

Clock = Callable[[], float]


class Refreshes:
    """Single-flight token exchanges, their answers kept `keep` seconds (at most `size`)."""

    def __init__(
        self, *, keep: float = 10.0, size: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self._keep = keep
        self._size = size
        self._clock = clock
        self._done: OrderedDict[bytes, tuple[TokenPair, float]] = OrderedDict()
        self._running: dict[bytes, asyncio.Future[TokenPair]] = {}

    async def exchange(
        self, refresh_token: str, fetch: Callable[[], Awaitable[TokenPair]]
    ) -> TokenPair:
        """The new pair for `refresh_token`: fetched once, shared by concurrent callers.

        A failed exchange is not kept: every waiter gets its error."""
        key = hashlib.sha256(refresh_token.encode()).digest()
        now = self._clock()
        kept = self._done.get(key)
        if kept is not None and now - kept[1] < self._keep:
            return kept[0]
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[TokenPair] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            pair = await fetch()
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: a future nobody awaited must not warn
            raise
        except BaseException:  # cancelled: the waiters are too
            future.cancel()
            raise
        else:
            future.set_result(pair)
            self._remember(key, pair, self._clock())
            return pair
        finally:
            del self._running[key]

    def _remember(self, key: bytes, pair: TokenPair, now: float) -> None:
        self._done[key] = (pair, now)
        self._done.move_to_end(key)
        while self._done and (
            len(self._done) > self._size or now - next(iter(self._done.values()))[1] >= self._keep
        ):
            self._done.popitem(last=False)

    def __len__(self) -> int:
        return len(self._done)
