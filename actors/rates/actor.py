"""The rates actor: answers `GetRate` from the rates it holds in PostgreSQL, fetching what
it lacks from the rates feed (the ECB by default), and falling back when the feed fails.

How a day's rate is found (`Quotes.quote`), for a pair of currencies payments accepts:

1. A currency against itself is exactly 1 ("fixed": no feed involved), whatever the day.
2. A day more than one ahead of Frankfurt's today is refused (`rate_unavailable`): no rate
   is published for it, and a guess would be taken for one. Tomorrow (a time zone east of
   CET) is today; today before 16:00 CET is yesterday (`rules.effective_day`). A day
   before 1999-01-04 is refused too: the euro's reference rates start then.
3. Held: if the cache has the working day that day should get (or a later one within the
   lookback), that is the answer ("ecb"), with no request.
4. Otherwise the feed is asked for the missing days (through one `SingleFlightFeed` per
   node, so concurrent asks share one request and a failure stops requests for 60 s), the
   days are stored, and the latest day on or before is the answer ("ecb"). A working day
   the feed did not have (the ECB late today, or a closing the calendar does not know) is
   remembered, so the next asks do not fetch again: for 10 minutes when it may still come,
   for good when the feed has later days.
5. The feed unavailable: the nearest day held on or before, within a year ("cache");
   failing that, the fixed table ("fixed", dated `rules.FIXED_DAY`). A currency the ECB
   does not publish (UAH, KWD, BHD, AED) is always answered from the fixed table.

One shard is plenty (an answer is one indexed read); the key is the day asked, so one
day's asks, and its fetch, meet on one shard whatever the shard count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import structlog

from actors.payments.messages import CURRENCIES
from actors.rates import rules, store
from actors.rates.feed import FeedCoolingDown, RatesFeed, SingleFlightFeed
from actors.rates.messages import (
    GetRate,
    RateQuote,
    RateSource,
    RateUnavailable,
    format_rate,
)
from actors.rates.store import HeldDay
from actors.runtime import Actor, Clock, Context, handles, wall_clock

log = structlog.get_logger("actors.rates")

RECHECK_SECONDS = 600.0  # a working day the feed lacked is asked for again after this
_MISSING_MAX = 1_024  # working days remembered as missing, at most


class Rates(Actor):
    """Exchange rates: `GetRate` answered with a `RateQuote` (see the module docstring).

    `pool` holds the `exchange_rates` table; `feed` is where rates come from (give every
    shard of a node the same `SingleFlightFeed`; any other feed is wrapped in one of this
    shard's own); `clock` is what time it is.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        feed: RatesFeed,
        *,
        clock: Clock = wall_clock,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        if not isinstance(feed, SingleFlightFeed):
            feed = SingleFlightFeed(feed, clock=clock)
        self.quotes = Quotes(self.context(pool, clock), feed=feed, recheck_seconds=recheck_seconds)

    @handles(GetRate)
    async def get_rate(self, message: GetRate) -> RateQuote:
        return await self.quotes.quote(message)


class Quotes:
    """The rate for a pair on a day: from the cache, the feed, or the fallbacks."""

    def __init__(self, context: Context, *, feed: RatesFeed, recheck_seconds: float) -> None:
        self._context = context
        self._feed = feed
        self._recheck = recheck_seconds
        # a working day the feed did not have -> until when (clock seconds) that holds
        self._missing: dict[date, float] = {}

    async def quote(self, message: GetRate) -> RateQuote:
        """The answer to `message`; RateUnavailable when there can be none."""
        base, quote, asked_text = message.base.upper(), message.quote.upper(), message.day
        for code in (base, quote):
            if code not in CURRENCIES:
                raise RateUnavailable.of(
                    base, quote, asked_text, f"{code} is not a currency splitgo knows"
                )
        if base == quote:
            return RateQuote(
                base=base,
                quote=quote,
                day_asked=asked_text,
                day=asked_text,
                rate="1",
                source="fixed",
            )
        asked = date.fromisoformat(asked_text)
        now = self._context.now()
        if rules.in_future(asked, now):
            raise RateUnavailable.of(base, quote, asked_text, "the day is in the future")
        if asked < rules.ECB_FIRST_DAY:
            raise RateUnavailable.of(
                base, quote, asked_text, f"reference rates start on {rules.ECB_FIRST_DAY}"
            )
        effective = rules.effective_day(asked, now)
        expected = rules.working_day_on_or_before(effective)
        held = await self._nearest(effective, rules.LOOKBACK_DAYS)
        if held is not None and (held.day >= expected or self._known_missing(expected)):
            return self._answer(base, quote, asked_text, held, "ecb")
        fetched = await self._fetch(effective, expected, held)
        if fetched is not None:
            # what was held and what came: together every day from the lookback on
            days = {day: dict(rates) for day, rates in fetched.items()}
            if held is not None:
                days.setdefault(held.day, held.rates)
            chosen = rules.nearest_day(days, effective)
            if chosen is not None:
                return self._answer(base, quote, asked_text, HeldDay(chosen, days[chosen]), "ecb")
        return await self._fallback(base, quote, asked_text, effective)

    async def _nearest(self, effective: date, days_back: int) -> HeldDay | None:
        return await store.nearest(
            self._context.pool,
            on_or_before=effective,
            not_before=effective - timedelta(days=days_back),
        )

    def _known_missing(self, expected: date) -> bool:
        until = self._missing.get(expected)
        return until is not None and self._context.clock() < until

    async def _fetch(
        self, effective: date, expected: date, held: HeldDay | None
    ) -> Mapping[date, Mapping[str, Decimal]] | None:
        """Ask the feed for the days missing to answer for `effective`, and keep them; the
        days it answered, or None when it did not."""
        since, until = rules.fetch_window(
            effective, held.day if held else None, self._context.now()
        )
        try:
            days = await self._feed.fetch(since, until)
        except FeedCoolingDown as error:
            log.debug("rates_feed_cooling_down", error=str(error))
            return None
        except Exception as error:  # whatever the adapter: the fallbacks answer
            log.warning("rates_feed_unavailable", error=str(error), error_type=type(error).__name__)
            return None
        if days:
            await self._save(days)
        if expected not in days:
            self._remember_missing(expected, days)
        return days

    async def _save(self, days: Mapping[date, Mapping[str, Decimal]]) -> None:
        # one transaction: a day is held whole or not at all
        async with self._context.pool.acquire() as connection, connection.transaction():
            written = await store.save(connection, days, fetched_at=self._context.now())
        log.info("rates_stored", days=len(days), rows=written)

    def _remember_missing(self, expected: date, days: Mapping[date, object]) -> None:
        """The feed answered without `expected`: never published if it has a later day,
        else maybe not yet (ask again after RECHECK_SECONDS)."""
        final = any(day > expected for day in days)
        self._missing[expected] = math.inf if final else self._context.clock() + self._recheck
        if len(self._missing) > _MISSING_MAX:
            del self._missing[next(iter(self._missing))]  # the oldest remembered
        log.info("rates_day_missing", day=expected.isoformat(), final=final)

    async def _fallback(self, base: str, quote: str, asked: str, effective: date) -> RateQuote:
        """No fresh answer: the nearest day held on or before, else the fixed table."""
        held = await self._nearest(effective, rules.FALLBACK_DAYS)
        if held is not None and rules.cross_rate(held.rates, base, quote) is not None:
            log.info("rate_from_cache", base=base, quote=quote, day=asked, held=str(held.day))
            return self._answer(base, quote, asked, held, "cache")
        return self._fixed(base, quote, asked)

    def _answer(
        self, base: str, quote: str, asked: str, held: HeldDay, source: RateSource
    ) -> RateQuote:
        """The pair's rate on the day held; the fixed table's when the day lacks a currency
        (one the ECB does not publish)."""
        rate = rules.cross_rate(held.rates, base, quote)
        if rate is None:
            return self._fixed(base, quote, asked)
        return RateQuote(
            base=base,
            quote=quote,
            day_asked=asked,
            day=held.day.isoformat(),
            rate=format_rate(rate),
            source=source,
        )

    def _fixed(self, base: str, quote: str, asked: str) -> RateQuote:
        rate = rules.fixed_rate(base, quote)
        if rate is None:  # every currency payments accepts is in the table: a new one is not
            raise RateUnavailable.of(base, quote, asked, "no rate is held for it")
        log.info("rate_from_fixed_table", base=base, quote=quote, day=asked)
        return RateQuote(
            base=base,
            quote=quote,
            day_asked=asked,
            day=rules.FIXED_DAY.isoformat(),
            rate=format_rate(rate),
            source="fixed",
        )
