"""The rates actor through an ActorSystem (codec check on) on a real PostgreSQL, reading a
fake ECB over real HTTP; and its feed adapters against the same fake.

The clock is the tests': "now" is Monday 2024-05-13 in Frankfurt (summer time, UTC+2),
moved as each test needs. The fake publishes the working week before it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import aiohttp
import asyncpg
import pytest
from structlog.testing import capture_logs

from actors.rates import feed as feed_module
from actors.rates import messages, rules
from actors.rates.actor import Rates
from actors.rates.feed import EcbFeed, FeedCoolingDown, FeedUnavailable, SingleFlightFeed
from actors.rates.messages import RATES, GetRate, RateQuote, RateUnavailable, format_rate, rates_key
from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore
from tests.support.fake_rates import DAILY, HISTORY, RECENT, FakeRates
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

MONDAY = date(2024, 5, 13)
FRIDAY = date(2024, 5, 10)
WEEK = [date(2024, 5, 6) + timedelta(days=n) for n in range(5)]  # Monday to Friday before


def rates_of(day: date) -> dict[str, str]:
    """The fake's rates per EUR for `day`: distinct every day, so a wrong day shows."""
    n = day.toordinal() % 100
    return {
        "USD": f"1.07{n:02d}",
        "GBP": f"0.86{n:02d}",
        "JPY": f"167.{n:02d}",
        "CHF": f"0.97{n:02d}",
    }


def cross(day: date, base: str, quote: str) -> str:
    """The rate the actor should answer for the pair on `day`, from the fake's numbers."""
    per_euro = {code: Decimal(rate) for code, rate in rates_of(day).items()}
    rate = rules.cross_rate(per_euro, base, quote)
    assert rate is not None
    return format_rate(rate)


def frankfurt(day: date, hour: int, minute: int = 0) -> float:
    """Epoch seconds of `day` at hour:minute Frankfurt summer time (UTC+2)."""
    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
    return (moment - timedelta(hours=2)).timestamp()


class MovableClock:
    """Epoch seconds the test sets and moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    system: ActorSystem
    rates: ActorRef
    pool: asyncpg.Pool
    fake: FakeRates
    clock: MovableClock

    async def ask(self, base: str, quote: str, day: date | str) -> RateQuote:
        text = day if isinstance(day, str) else day.isoformat()
        reply = await self.rates.ask(GetRate(base=base, quote=quote, day=text))
        assert isinstance(reply, RateQuote)
        return reply

    async def held_days(self) -> list[date]:
        rows = await self.pool.fetch("SELECT DISTINCT day FROM exchange_rates ORDER BY day")
        return [row["day"] for row in rows]


@pytest.fixture
async def fake() -> AsyncIterator[FakeRates]:
    async with FakeRates() as server:
        for day in WEEK:
            server.set_day(day, rates_of(day))
        yield server


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(frankfurt(MONDAY, 17))


@asynccontextmanager
async def running(
    database_url: str,
    fake: FakeRates,
    clock: MovableClock,
    *,
    shards: int = 1,
    timeout: float = 1.0,
) -> AsyncIterator[Harness]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
    assert pool is not None
    codec = Codec()
    codec.register_module(messages)
    system = ActorSystem(
        MemoryTransport(node_id="rates-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        ask_timeout=10.0,
    )
    await system.start()
    http = aiohttp.ClientSession()
    # one feed for every shard, as the node gives it: they share fetches and the cool-down
    feed = SingleFlightFeed(EcbFeed(http, fake.url, clock=clock, timeout=timeout), clock=clock)
    ref = system.spawn(
        Rates,
        RATES,
        factory=lambda: Rates(pool, feed, clock=clock),
        shards=shards,
        key=rates_key,
    )
    try:
        yield Harness(system, ref, pool, fake, clock)
    finally:
        await system.stop(2.0)
        await http.close()
        await pool.close()


@pytest.fixture
async def harness(
    database_url: str, fake: FakeRates, clock: MovableClock
) -> AsyncIterator[Harness]:
    async with running(database_url, fake, clock) as made:
        yield made


# ── fetching and the cache ─────────────────────────────────────────────────────────────


async def test_a_rate_is_fetched_once_then_answered_from_postgresql(
    database_url: str, fake: FakeRates, clock: MovableClock
) -> None:
    """The first ask reads the 90-day file and keeps every day of it; later asks for any
    pair of those days, and a restarted actor with the feed down, make no request."""
    async with running(database_url, fake, clock) as harness:
        quote = await harness.ask("USD", "GBP", FRIDAY)
        assert quote == RateQuote(
            base="USD",
            quote="GBP",
            day_asked="2024-05-10",
            day="2024-05-10",
            rate=cross(FRIDAY, "USD", "GBP"),
            source="ecb",
        )
        assert fake.requests == [RECENT]
        assert await harness.held_days() == WEEK

        again = await harness.ask("USD", "GBP", FRIDAY)
        assert again == quote
        yen = await harness.ask("JPY", "USD", WEEK[1])
        assert (yen.day, yen.rate, yen.source) == (
            "2024-05-07",
            cross(WEEK[1], "JPY", "USD"),
            "ecb",
        )
        euro = await harness.ask("EUR", "CHF", FRIDAY)
        assert euro.rate == rates_of(FRIDAY)["CHF"]
        assert fake.requests == [RECENT]

    fake.go_down()
    async with running(database_url, fake, clock) as restarted:
        kept = await restarted.ask("USD", "GBP", FRIDAY)
        assert kept == quote
    assert fake.requests == [RECENT]


async def test_a_weekend_day_gets_fridays_rate(harness: Harness) -> None:
    """Saturday and Sunday are answered with Friday's rate and day, each keeping the day
    asked, from one request."""
    saturday = await harness.ask("USD", "JPY", "2024-05-11")
    sunday = await harness.ask("USD", "JPY", "2024-05-12")
    for quote, asked in ((saturday, "2024-05-11"), (sunday, "2024-05-12")):
        assert (quote.day_asked, quote.day, quote.source) == (asked, "2024-05-10", "ecb")
        assert quote.rate == cross(FRIDAY, "USD", "JPY")
    assert harness.fake.requests == [RECENT]


async def test_todays_rate_before_publication_is_yesterdays(harness: Harness) -> None:
    """At 10:00 on Monday, Monday is answered with Friday's rate; once 16:00 has passed
    (and the ECB has published), only the daily file is read, for Monday's."""
    harness.clock.now = frankfurt(MONDAY, 10)
    morning = await harness.ask("GBP", "USD", MONDAY)
    assert (morning.day_asked, morning.day, morning.source) == ("2024-05-13", "2024-05-10", "ecb")

    harness.fake.set_day(MONDAY, rates_of(MONDAY))
    harness.clock.now = frankfurt(MONDAY, 16, 30)
    afternoon = await harness.ask("GBP", "USD", MONDAY)
    assert (afternoon.day, afternoon.rate, afternoon.source) == (
        "2024-05-13",
        cross(MONDAY, "GBP", "USD"),
        "ecb",
    )
    assert harness.fake.requests == [RECENT, DAILY]


async def test_a_late_ecb_is_asked_again_only_after_a_while(harness: Harness) -> None:
    """After 16:00 with the ECB not yet out, Monday gets Friday's rate from the feed's
    answer, and the feed is not asked again for ten minutes; then Monday's is fetched."""
    await harness.ask("USD", "GBP", FRIDAY)  # Friday held
    late = await harness.ask("USD", "GBP", MONDAY)
    assert (late.day, late.source) == ("2024-05-10", "ecb")
    assert harness.fake.requests == [RECENT, DAILY]
    await harness.ask("USD", "CHF", MONDAY)
    assert harness.fake.requests == [RECENT, DAILY]

    harness.fake.set_day(MONDAY, rates_of(MONDAY))
    harness.clock.advance(601)
    published = await harness.ask("USD", "GBP", MONDAY)
    assert (published.day, published.rate, published.source) == (
        "2024-05-13",
        cross(MONDAY, "USD", "GBP"),
        "ecb",
    )
    assert harness.fake.requests == [RECENT, DAILY, DAILY]


async def test_an_old_day_reads_a_window_of_the_whole_history(harness: Harness) -> None:
    """A day older than the 90-day file is read from the whole history, keeping only a
    window around it; its neighbours are then answered from the cache."""
    harness.fake.set_day("2023-06-15", rates_of(date(2023, 6, 15)))
    harness.fake.set_day("2023-06-16", rates_of(date(2023, 6, 16)))
    harness.fake.set_day("2021-01-04", rates_of(date(2021, 1, 4)))
    saturday = await harness.ask("CHF", "JPY", "2023-06-17")
    assert (saturday.day, saturday.rate, saturday.source) == (
        "2023-06-16",
        cross(date(2023, 6, 16), "CHF", "JPY"),
        "ecb",
    )
    thursday = await harness.ask("CHF", "JPY", "2023-06-15")
    assert thursday.day == "2023-06-15"
    assert harness.fake.requests == [HISTORY]
    # the window, not the whole history: neither 2021 nor last week's days
    assert await harness.held_days() == [date(2023, 6, 15), date(2023, 6, 16)]


# ── when the feed fails ────────────────────────────────────────────────────────────────


async def test_feed_down_answers_from_the_cache_and_waits_a_minute(harness: Harness) -> None:
    """With Friday held and the feed answering 500, Monday gets Friday's rate marked
    "cache"; no request is made for a minute, then the feed is asked again."""
    await harness.ask("USD", "GBP", FRIDAY)
    harness.fake.go_down(status=500)
    harness.fake.set_day(MONDAY, rates_of(MONDAY))
    with capture_logs() as logs:
        stale = await harness.ask("USD", "GBP", MONDAY)
    assert (stale.day_asked, stale.day, stale.rate, stale.source) == (
        "2024-05-13",
        "2024-05-10",
        cross(FRIDAY, "USD", "GBP"),
        "cache",
    )
    assert any(entry["event"] == "rates_feed_unavailable" for entry in logs)
    assert harness.fake.requests == [RECENT, DAILY]

    harness.fake.come_up()
    harness.clock.advance(30)
    still = await harness.ask("USD", "GBP", MONDAY)
    assert still.source == "cache"
    assert harness.fake.requests == [RECENT, DAILY]

    harness.clock.advance(31)
    fresh = await harness.ask("USD", "GBP", MONDAY)
    assert (fresh.day, fresh.source) == ("2024-05-13", "ecb")
    assert harness.fake.requests == [RECENT, DAILY, DAILY]


async def test_an_empty_cache_and_a_feed_down_give_the_fixed_table(harness: Harness) -> None:
    """With nothing held and the feed answering 500, the answer is the fixed table's rate,
    dated with the table's day."""
    harness.fake.go_down(status=503)
    quote = await harness.ask("USD", "JPY", FRIDAY)
    expected = rules.fixed_rate("USD", "JPY")
    assert expected is not None
    assert (quote.day_asked, quote.day, quote.rate, quote.source) == (
        "2024-05-10",
        rules.FIXED_DAY.isoformat(),
        format_rate(expected),
        "fixed",
    )
    assert await harness.held_days() == []


async def test_a_feed_that_never_answers_times_out_to_the_fixed_table(
    database_url: str, fake: FakeRates, clock: MovableClock
) -> None:
    """A feed that hangs is given up on at the timeout and the fixed table answers, well
    before the ask's own deadline."""
    fake.go_down(hang=True)
    async with running(database_url, fake, clock, timeout=0.3) as harness:
        started = time.monotonic()
        quote = await harness.ask("GBP", "CHF", FRIDAY)
        assert quote.source == "fixed"
        assert time.monotonic() - started < 3.0
        assert fake.requests == [RECENT]


@pytest.mark.parametrize(
    "document",
    [
        b"<html><body>maintenance</body></html>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Cube>&a;</Cube>',
        b"<Cube><Cube time='2024-05-10'><Cube currency='USD' rate='-3'/></Cube></Cube>",
    ],
)
async def test_a_document_that_is_not_rates_is_not_kept(harness: Harness, document: bytes) -> None:
    """A maintenance page, a DTD or a negative rate where the rates should be is refused
    whole: nothing is stored and the fixed table answers."""
    harness.fake.raw = document
    quote = await harness.ask("EUR", "USD", FRIDAY)
    assert quote.source == "fixed"
    assert await harness.held_days() == []


# ── refusals and the special pairs ─────────────────────────────────────────────────────


async def test_unknown_currencies_and_impossible_days_are_rate_unavailable(
    harness: Harness,
) -> None:
    """A currency splitgo does not know, a day past tomorrow, or one before the euro's
    reference rates is refused as rate_unavailable naming the pair and day, with no
    request; tomorrow is answered as today."""
    with pytest.raises(RateUnavailable) as caught:
        await harness.ask("USD", "XYZ", FRIDAY)
    assert caught.value.code == "rate_unavailable"
    for named in ("USD", "XYZ", "2024-05-10"):
        assert named in caught.value.message
    with pytest.raises(RateUnavailable, match="future"):
        await harness.ask("USD", "GBP", "2024-05-15")
    with pytest.raises(RateUnavailable, match="1999-01-04"):
        await harness.ask("USD", "GBP", "1998-12-31")
    assert harness.fake.requests == []

    harness.fake.set_day(MONDAY, rates_of(MONDAY))
    tomorrow = await harness.ask("USD", "GBP", "2024-05-14")
    assert (tomorrow.day_asked, tomorrow.day) == ("2024-05-14", "2024-05-13")


async def test_a_currency_against_itself_is_one(harness: Harness) -> None:
    """The same currency twice is exactly 1 for any day, upper-cased, with no request."""
    quote = await harness.ask("usd", "USD", "2001-02-03")
    assert quote == RateQuote(
        base="USD",
        quote="USD",
        day_asked="2001-02-03",
        day="2001-02-03",
        rate="1",
        source="fixed",
    )
    assert harness.fake.requests == []


async def test_a_currency_the_ecb_does_not_publish_comes_from_the_fixed_table(
    harness: Harness,
) -> None:
    """UAH, which the ECB does not publish, is answered from the fixed table even with the
    feed up, and asking again makes no second request."""
    quote = await harness.ask("EUR", "UAH", FRIDAY)
    assert (quote.source, quote.day) == ("fixed", rules.FIXED_DAY.isoformat())
    assert quote.rate == format_rate(rules.FIXED["UAH"])
    await harness.ask("UAH", "USD", FRIDAY)
    assert harness.fake.requests == [RECENT]


# ── concurrency ────────────────────────────────────────────────────────────────────────


async def test_concurrent_asks_share_one_request(
    database_url: str, fake: FakeRates, clock: MovableClock
) -> None:
    """Twenty asks at once for five days and four pairs, spread over four shards, are all
    answered from one request to the feed."""
    fake.delay = 0.3  # every ask arrives while the first fetch is under way
    pairs = [("USD", "GBP"), ("GBP", "JPY"), ("CHF", "USD"), ("EUR", "JPY")]
    async with running(database_url, fake, clock, shards=4) as harness:
        quotes = await asyncio.gather(
            *(harness.ask(base, quote, day) for day in WEEK for base, quote in pairs)
        )
    assert fake.requests == [RECENT]
    answered = iter(quotes)
    for day in WEEK:
        for base, quote in pairs:
            got = next(answered)
            assert (got.day, got.rate, got.source) == (
                day.isoformat(),
                cross(day, base, quote),
                "ecb",
            )


# ── the feed adapters on their own ─────────────────────────────────────────────────────


async def test_single_flight_shares_a_fetch_and_cools_down(fake: FakeRates) -> None:
    """Concurrent fetches one under way covers share it; a narrower-or-equal window joins,
    a wider one does not; after a failure no request is made for the cool-down."""
    clock = MovableClock(frankfurt(MONDAY, 17))
    async with aiohttp.ClientSession() as http:
        feed = SingleFlightFeed(EcbFeed(http, fake.url, clock=clock), clock=clock)
        fake.delay = 0.2
        since = MONDAY - timedelta(days=rules.RECENT_DAYS)
        results = await asyncio.gather(
            feed.fetch(since), feed.fetch(since), feed.fetch(FRIDAY), feed.fetch(WEEK[1])
        )
        assert fake.requests == [RECENT]
        assert all(set(WEEK) <= set(days) for days in results[:2])
        # each joiner gets the shared answer cut to what it asked for
        assert set(results[2]) == {FRIDAY}
        assert set(results[3]) == set(WEEK[1:])
        # a window the fetch under way does not cover is a fetch of its own
        fake.requests.clear()
        await asyncio.gather(feed.fetch(since), feed.fetch(date(2024, 1, 2)))
        assert sorted(fake.requests) == sorted([HISTORY, RECENT])

        fake.delay = 0.0
        fake.go_down(status=500)
        with pytest.raises(FeedUnavailable, match="HTTP 500"):
            await feed.fetch(FRIDAY)
        assert feed.cooling_down()
        with pytest.raises(FeedCoolingDown):
            await feed.fetch(FRIDAY)
        assert fake.count() == 3
        clock.advance(60)
        fake.come_up()
        assert set(await feed.fetch(WEEK[0])) == set(WEEK)
        assert fake.count() == 4


async def test_the_ecb_feed_refuses_oversized_and_unreachable_answers(fake: FakeRates) -> None:
    """An answer past the file's size cap, or a server that cannot be reached, is
    FeedUnavailable; a good daily file gives its day."""
    clock = MovableClock(frankfurt(MONDAY, 17))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as http:
        feed = EcbFeed(http, fake.url, clock=clock)
        assert await feed.fetch(MONDAY) == {}  # the newest day is Friday: none from Monday
        fake.raw = b" " * (65 * 1024)
        with pytest.raises(FeedUnavailable, match="larger"):
            await feed.fetch(MONDAY)
        nowhere = EcbFeed(http, f"http://127.0.0.1:{closed_port}/stats", clock=clock)
        with pytest.raises(FeedUnavailable, match="could not be reached"):
            await nowhere.fetch(MONDAY)
    assert fake.requests == [DAILY, DAILY]
    with pytest.raises(ValueError, match="http"):
        EcbFeed(http, "ftp://example.org/")


async def test_a_large_history_is_parsed_off_the_event_loop(fake: FakeRates) -> None:
    """A history file past the thread threshold is read on a worker thread, and only the
    window asked for comes back."""
    start = date(2012, 1, 2)
    for n in range(2_500):
        fake.set_day(start + timedelta(days=n), rates_of(start + timedelta(days=n)))
    assert len(fake.document(HISTORY)) > feed_module.THREAD_PARSE_BYTES
    clock = MovableClock(frankfurt(MONDAY, 17))
    async with aiohttp.ClientSession() as http:
        feed = EcbFeed(http, fake.url, clock=clock)
        days = await feed.fetch(date(2013, 3, 1), date(2013, 3, 3))
    assert fake.requests == [HISTORY]
    assert days == {
        day: {code: Decimal(rate) for code, rate in rates_of(day).items()}
        for day in (date(2013, 3, 1), date(2013, 3, 2), date(2013, 3, 3))
    }
