"""The rates port: where exchange rates come from, and the European Central Bank's adapter.

`RatesFeed.fetch(since_day, until_day=None)` answers every day the source published from
`since_day` (to `until_day`, or its newest) with that day's rates as units per 1 EUR, or
raises `FeedUnavailable`: unreachable, too slow, refusing, or answering something that is
not rates. Nothing else escapes an adapter.

- `EcbFeed` reads the ECB's reference rates over HTTP: the daily file when only the newest
  working day is wanted, the 90-day file for recent days, the whole history otherwise
  (`rules.document_for`). Each request is bounded in time (3 s) and in size.
- `SingleFlightFeed` sits in front of another feed: concurrent fetches that one already
  under way covers share it, and after a failure no fetch is made for 60 s (every fetch
  then fails at once), so an unreachable feed costs one timeout a minute, not one an ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Protocol

import aiohttp
import structlog

from actors.rates import rules
from actors.runtime import Clock, at, wall_clock

log = structlog.get_logger("actors.rates.feed")

ECB_URL = "https://www.ecb.europa.eu/stats/eurofxref/"
TIMEOUT_SECONDS = 3.0  # a whole request: connecting, asking, reading the body
FAILURE_COOLDOWN_SECONDS = 60.0
# Each file's cap, some ten times its size today (daily ~2 KB, 90 days ~150 KB, the whole
# history ~7 MB, decompressed): a bigger answer is not the file we asked for.
MAX_BYTES = {
    rules.DAILY: 64 * 1024,
    rules.RECENT: 2 * 1024 * 1024,
    rules.HISTORY: rules.MAX_DOCUMENT_BYTES,
}
# a document above this is parsed on a worker thread: the event loop keeps serving
THREAD_PARSE_BYTES = 256 * 1024
_CHUNK = 64 * 1024

Days = Mapping[date, Mapping[str, Decimal]]  # day -> currency -> units per 1 EUR


class FeedUnavailable(Exception):
    """The feed gave no rates this time (unreachable, slow, refusing, unreadable). Never
    reaches an asker: the actor falls back to what it holds."""

    code = "rates_feed_unavailable"


class FeedCoolingDown(FeedUnavailable):
    """A fetch was not even tried: the feed failed less than the cool-down ago."""

    code = "rates_feed_cooling_down"


class RatesFeed(Protocol):
    """Where exchange rates come from (the ECB by default; a fake in tests)."""

    async def fetch(self, since_day: date, until_day: date | None = None) -> Days:
        """Every published day from `since_day` to `until_day` (None: the newest) with its
        rates per EUR; FeedUnavailable when none can be had now."""
        ...


class EcbFeed:
    """`RatesFeed` over the ECB's eurofxref files at `base_url` (a fake one in tests).

    `session` is the node's HTTP client; `clock` says what day it is (which file to read);
    `timeout` bounds a whole request in seconds.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str = ECB_URL,
        *,
        clock: Clock = wall_clock,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the rates URL {base_url!r} must start with http:// or https://")
        self._session = session
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._clock = clock
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"EcbFeed(base_url={self._base_url!r})"

    async def fetch(self, since_day: date, until_day: date | None = None) -> Days:
        """The days from the one ECB file that holds them all (see `rules.document_for`)."""
        document = rules.document_for(since_day, at(self._clock()))
        body = await self._download(document)
        try:
            if len(body) > THREAD_PARSE_BYTES:
                days = await asyncio.to_thread(
                    rules.parse_ecb, body, since=since_day, until=until_day
                )
            else:
                days = rules.parse_ecb(body, since=since_day, until=until_day)
        except rules.DocumentInvalid as error:
            log.warning("rates_document_invalid", document=document, error=str(error))
            raise FeedUnavailable(f"the rates file {document} could not be read: {error}") from None
        log.info(
            "rates_fetched",
            document=document,
            since=since_day.isoformat(),
            until=until_day.isoformat() if until_day else None,
            days=len(days),
            bytes=len(body),
        )
        return days

    async def _download(self, document: str) -> bytes:
        """The file's bytes (decompressed), or FeedUnavailable."""
        url = self._base_url + document
        limit = MAX_BYTES[document]
        try:
            # the ClientTimeout covers aiohttp's own steps; the outer one everything (DNS too)
            async with (
                asyncio.timeout(self._timeout),
                self._session.get(
                    url, timeout=aiohttp.ClientTimeout(total=self._timeout)
                ) as response,
            ):
                if response.status != 200:
                    raise FeedUnavailable(
                        f"the rates feed answered {document} with HTTP {response.status}"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise FeedUnavailable(
                            f"the rates feed's {document} is larger than {limit:,} bytes"
                        )
                    chunks.append(chunk)
        except TimeoutError:
            raise FeedUnavailable(
                f"the rates feed did not send {document} within {self._timeout:g} s"
            ) from None
        except aiohttp.ClientError as error:
            raise FeedUnavailable(
                f"the rates feed could not be reached for {document} ({type(error).__name__})"
            ) from None
        return b"".join(chunks)


class SingleFlightFeed:
    """`RatesFeed` in front of `feed`: one fetch at a time for what it covers, and none for
    `cooldown` seconds after a failure (measured on `clock`). Give one to every shard of the
    rates actor on a node, so they share its fetches and its cool-down."""

    def __init__(
        self,
        feed: RatesFeed,
        *,
        clock: Clock = wall_clock,
        cooldown: float = FAILURE_COOLDOWN_SECONDS,
    ) -> None:
        self._feed = feed
        self._clock = clock
        self._cooldown = cooldown
        self._failed_at: float | None = None
        # the fetches under way, by the (since, until) each asked for
        self._flights: dict[tuple[date, date | None], asyncio.Future[Days]] = {}

    def __repr__(self) -> str:
        return f"SingleFlightFeed({self._feed!r})"

    def cooling_down(self) -> bool:
        """Whether the last fetch failed less than the cool-down ago (no fetch is made)."""
        failed = self._failed_at
        return failed is not None and self._clock() - failed < self._cooldown

    async def fetch(self, since_day: date, until_day: date | None = None) -> Days:
        """The fetch under way that covers these days, else a new one; FeedCoolingDown
        without a request while the cool-down lasts."""
        if self.cooling_down():
            raise FeedCoolingDown(
                f"the rates feed failed less than {self._cooldown:g} s ago; not asked again yet"
            )
        for (since, until), flight in self._flights.items():
            if since <= since_day and (
                until is None or (until_day is not None and until_day <= until)
            ):
                # shielded: an asker that gives up does not cancel the others' fetch
                return _window(await asyncio.shield(flight), since_day, until_day)
        key = (since_day, until_day)
        flight = asyncio.ensure_future(self._fetch(since_day, until_day))
        self._flights[key] = flight
        flight.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight)

    async def _fetch(self, since_day: date, until_day: date | None) -> Days:
        try:
            days = await self._feed.fetch(since_day, until_day)
        except Exception:
            self._failed_at = self._clock()
            raise
        self._failed_at = None
        return days

    def _landed(self, key: tuple[date, date | None], done: asyncio.Future[Days]) -> None:
        if self._flights.get(key) is done:
            del self._flights[key]
        if not done.cancelled():
            done.exception()  # retrieved: an error nobody awaited any more is not "lost"


def _window(days: Days, since_day: date, until_day: date | None) -> Days:
    """The days of a shared (wider) answer that this fetch asked for."""
    return {
        day: rates
        for day, rates in days.items()
        if day >= since_day and (until_day is None or day <= until_day)
    }
