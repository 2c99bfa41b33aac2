"""The rates actor's pure rules and shared arithmetic: ECB XML, the calendar, cross rates,
the fixed table, rate text and conversions; worked examples, refusals and properties."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from actors.payments.messages import CURRENCIES, exponent_of
from actors.rates import rules
from actors.rates.messages import (
    MAX_RATE,
    MIN_RATE,
    GetRate,
    InvalidRate,
    RateUnavailable,
    convert,
    format_rate,
    parse_rate,
    rates_key,
)
from actors.runtime import DomainError, InvalidInput
from actors.runtime.errors import Failure
from tests.support.fake_rates import ecb_document

# as many examples as the suite's Hypothesis profile asks (tests/conftest.py)
PROPERTY = settings(deadline=None)

ECB_DAILY = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
    xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube>
    <Cube time='2024-05-10'>
      <Cube currency='USD' rate='1.0772'/>
      <Cube currency='JPY' rate='167.63'/>
      <Cube currency='GBP' rate='0.86008'/>
      <Cube currency='KRW' rate='1472.98'/>
    </Cube>
  </Cube>
</gesmes:Envelope>
"""


def summer(hour: int, minute: int = 0, day: date = date(2024, 5, 13)) -> datetime:
    """`day` at hour:minute Frankfurt summer time (UTC+2), as an aware UTC datetime."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=2)


def winter(hour: int, minute: int = 0, day: date = date(2024, 1, 15)) -> datetime:
    """`day` at hour:minute Frankfurt winter time (UTC+1), as an aware UTC datetime."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=1)


# ── reading the ECB's XML ──────────────────────────────────────────────────────────────


def test_the_daily_file_is_read_with_its_namespaces() -> None:
    """The ECB's daily file, namespaces and all, gives its one day's rates exactly."""
    days = rules.parse_ecb(ECB_DAILY)
    assert days == {
        date(2024, 5, 10): {
            "USD": Decimal("1.0772"),
            "JPY": Decimal("167.63"),
            "GBP": Decimal("0.86008"),
            "KRW": Decimal("1472.98"),
        }
    }


def test_a_history_is_read_and_cut_to_the_window() -> None:
    """Of a file of many days only those from `since` to `until` are returned."""
    start = date(2024, 4, 1)
    history = {start + timedelta(days=n): {"USD": f"1.0{n:02d}"} for n in range(30)}
    document = ecb_document(history)
    assert len(rules.parse_ecb(document)) == 30
    window = rules.parse_ecb(document, since=date(2024, 4, 10), until=date(2024, 4, 12))
    assert window == {
        date(2024, 4, 10): {"USD": Decimal("1.009")},
        date(2024, 4, 11): {"USD": Decimal("1.010")},
        date(2024, 4, 12): {"USD": Decimal("1.011")},
    }
    # a window with no day in it is an empty answer, not a broken document
    assert rules.parse_ecb(document, since=date(2030, 1, 1)) == {}


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b"", "not well-formed"),
        (b"<Cube><Cube time='2024-05-10'>", "not well-formed"),
        (b"not xml at all", "not well-formed"),
        (b"<Cube/>", "no day"),
        (b"<Cube><Cube time='2024-13-01'><Cube currency='USD' rate='1'/></Cube></Cube>", "no such"),
        (b"<Cube><Cube time='10/05/2024'><Cube currency='USD' rate='1'/></Cube></Cube>", "YYYY"),
        (b"<Cube><Cube time='2024-05-10'><Cube currency='usd' rate='1'/></Cube></Cube>", "code"),
        (b"<Cube><Cube time='2024-05-10'><Cube currency='EUR' rate='1'/></Cube></Cube>", "code"),
        (b"<Cube><Cube time='2024-05-10'><Cube currency='USD' rate='-1'/></Cube></Cube>", "rate"),
        (b"<Cube><Cube time='2024-05-10'><Cube currency='USD' rate='NaN'/></Cube></Cube>", "rate"),
        (b"<Cube><Cube time='2024-05-10'><Cube currency='USD' rate='inf'/></Cube></Cube>", "rate"),
        (b"<Cube><Cube time='2024-05-10'><Cube currency='USD' rate='0'/></Cube></Cube>", "rate"),
        (b"<Cube><Cube time='2024-05-10'><Cube currency='USD'/></Cube></Cube>", "rate"),
        (b"<Cube><Cube currency='USD' rate='1.1'/></Cube>", "outside any day"),
        (
            b"<Cube><Cube time='2024-05-10'><Cube currency='USD' rate='1'/>"
            b"<Cube currency='USD' rate='2'/></Cube></Cube>",
            "twice",
        ),
        (
            b"<Cube><Cube time='2024-05-10'><Cube currency='USD' rate='1'/></Cube>"
            b"<Cube time='2024-05-10'><Cube currency='USD' rate='1'/></Cube></Cube>",
            "twice",
        ),
        (
            b"<Cube><Cube time='2024-05-10'><Cube time='2024-05-09'/></Cube></Cube>",
            "inside another",
        ),
        (b"<a>" * 40 + b"</a>" * 40, "deeper"),
        (b"<Cube><Cube time='2024-05-10'>&unknown;</Cube></Cube>", "not well-formed"),
    ],
)
def test_malformed_documents_are_refused_whole(document: bytes, why: str) -> None:
    """A document that is not the ECB's shape, or holds a bad day, code or rate, is refused
    with DocumentInvalid saying what is wrong."""
    with pytest.raises(rules.DocumentInvalid, match=why):
        rules.parse_ecb(document)


def test_a_dtd_is_refused_before_any_entity_expands() -> None:
    """Billion laughs, an external entity and an external DTD are each refused for their
    DTD, before anything is expanded or fetched."""
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode()
            for n in range(1, 10)
        )
        + b"]><Cube><Cube time='2024-05-10'><Cube currency='USD' rate='1'/>&lol9;</Cube></Cube>"
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Cube><Cube time='2024-05-10'>&x;</Cube></Cube>"
    )
    remote_dtd = b'<!DOCTYPE Cube SYSTEM "http://127.0.0.1:9/x.dtd"><Cube/>'
    for document in (laughs, external, remote_dtd):
        with pytest.raises(rules.DocumentInvalid, match="DTD"):
            rules.parse_ecb(document)


def test_oversized_and_overfull_documents_are_refused() -> None:
    """A document past the byte cap, or a day with more currencies than any real one, is
    refused rather than read on."""
    with pytest.raises(rules.DocumentInvalid, match="larger"):
        rules.parse_ecb(b" " * (rules.MAX_DOCUMENT_BYTES + 1))
    codes = [a + b + c for a in "ABCDE" for b in "ABCDE" for c in "ABCDE"][:101]
    crowded = ecb_document({date(2024, 5, 10): {code: "1.5" for code in codes}})
    with pytest.raises(rules.DocumentInvalid, match="more than 100"):
        rules.parse_ecb(crowded)


def test_days_outside_the_window_are_checked_for_shape_only() -> None:
    """A bad rate on a day outside the window does not sink the document; the days inside
    are still returned."""
    document = ecb_document(
        {date(2024, 5, 9): {"USD": "oops"}, date(2024, 5, 10): {"USD": "1.0772"}}
    )
    assert rules.parse_ecb(document, since=date(2024, 5, 10)) == {
        date(2024, 5, 10): {"USD": Decimal("1.0772")}
    }
    with pytest.raises(rules.DocumentInvalid):
        rules.parse_ecb(document)


def test_an_empty_day_is_not_kept() -> None:
    """A day the document leaves without rates says nothing and is left out."""
    document = (
        b"<Cube><Cube time='2024-05-10'/>"
        b"<Cube time='2024-05-09'><Cube currency='USD' rate='1.1'/></Cube></Cube>"
    )
    assert rules.parse_ecb(document) == {date(2024, 5, 9): {"USD": Decimal("1.1")}}


@PROPERTY
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_read_or_refused_never_crash(data: bytes) -> None:
    """Any bytes either parse to days or raise DocumentInvalid; nothing else escapes."""
    with contextlib.suppress(rules.DocumentInvalid):
        rules.parse_ecb(data)


@settings(deadline=None)
@given(
    st.dictionaries(
        st.dates(min_value=date(1999, 1, 4), max_value=date(2099, 12, 31)),
        st.dictionaries(
            st.sampled_from(sorted(set(CURRENCIES) - {"EUR"})),
            st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4),
            min_size=1,
            max_size=8,
        ),
        min_size=1,
        max_size=10,
    )
)
def test_any_document_the_ecb_could_write_reads_back(days: dict[date, dict[str, Decimal]]) -> None:
    """Whatever days and rates a document holds, reading it gives them back exactly."""
    assume(all(rate > 0 for rates in days.values() for rate in rates.values()))
    document = ecb_document(
        {
            day: {code: format_rate(rate) for code, rate in rates.items()}
            for day, rates in days.items()
        }
    )
    assert rules.parse_ecb(document) == days


# ── the calendar ───────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("year", "easter"),
    [(1999, date(1999, 4, 4)), (2000, date(2000, 4, 23)), (2008, date(2008, 3, 23)),
     (2019, date(2019, 4, 21)), (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)),
     (2038, date(2038, 4, 25))],
)  # fmt: skip
def test_easter_sunday(year: int, easter: date) -> None:
    """Easter Sunday falls where the Gregorian computus puts it."""
    assert rules.easter_sunday(year) == easter


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2024, 5, 10), True),  # a Friday
        (date(2024, 5, 11), False),  # Saturday
        (date(2024, 5, 12), False),  # Sunday
        (date(2024, 3, 29), False),  # Good Friday
        (date(2024, 4, 1), False),  # Easter Monday
        (date(2024, 5, 1), False),  # Labour Day
        (date(2024, 12, 25), False),
        (date(2024, 12, 26), False),
        (date(2025, 1, 1), False),
        (date(2024, 12, 24), True),  # Christmas Eve: TARGET is open
        (date(2024, 5, 9), True),  # Ascension: open
    ],
)
def test_working_days_follow_target(day: date, working: bool) -> None:
    """Weekends and the TARGET holidays are closed; every other day the ECB publishes."""
    assert rules.is_working_day(day) is working


def test_a_day_gets_the_working_day_on_or_before_it() -> None:
    """Weekend days get Friday, Easter Monday gets the Thursday before Good Friday, a
    working day itself; the day after one is the next working day."""
    assert rules.working_day_on_or_before(date(2024, 5, 12)) == date(2024, 5, 10)
    assert rules.working_day_on_or_before(date(2024, 4, 1)) == date(2024, 3, 28)
    assert rules.working_day_on_or_before(date(2024, 5, 13)) == date(2024, 5, 13)
    assert rules.working_day_after(date(2024, 5, 10)) == date(2024, 5, 13)
    assert rules.working_day_after(date(2024, 3, 28)) == date(2024, 4, 2)


@PROPERTY
@given(st.dates(min_value=date(1999, 1, 10), max_value=date(2099, 12, 31)))
def test_the_working_day_on_or_before_is_close_and_working(day: date) -> None:
    """For any day, the working day it gets is a working day, not after it, within the
    lookback, and no working day lies between the two."""
    chosen = rules.working_day_on_or_before(day)
    assert rules.is_working_day(chosen)
    assert day - timedelta(days=rules.LOOKBACK_DAYS) <= chosen <= day
    between = [chosen + timedelta(days=n) for n in range(1, (day - chosen).days + 1)]
    assert not any(rules.is_working_day(d) for d in between)


def test_todays_rate_comes_at_four_in_frankfurt() -> None:
    """Before 16:00 Frankfurt time (summer or winter) the newest publishable day is
    yesterday; from 16:00 it is today."""
    assert rules.publishable_day(summer(15, 59)) == date(2024, 5, 12)
    assert rules.publishable_day(summer(16, 0)) == date(2024, 5, 13)
    assert rules.publishable_day(winter(15, 59)) == date(2024, 1, 14)
    assert rules.publishable_day(winter(16, 0)) == date(2024, 1, 15)
    # 23:30 UTC on the 13th is already the 14th in Frankfurt
    late = datetime(2024, 5, 13, 23, 30, tzinfo=UTC)
    assert rules.ecb_today(late) == date(2024, 5, 14)


def test_the_effective_day_and_the_future() -> None:
    """A past day is itself; today before 16:00 and tomorrow are yesterday's; tomorrow is
    not the future yet, the day after is."""
    morning = summer(10)
    assert rules.effective_day(date(2024, 5, 10), morning) == date(2024, 5, 10)
    assert rules.effective_day(date(2024, 5, 13), morning) == date(2024, 5, 12)
    assert rules.effective_day(date(2024, 5, 14), morning) == date(2024, 5, 12)
    assert rules.effective_day(date(2024, 5, 13), summer(17)) == date(2024, 5, 13)
    assert not rules.in_future(date(2024, 5, 14), morning)
    assert rules.in_future(date(2024, 5, 15), morning)


def test_the_nearest_day_on_or_before_within_the_lookback() -> None:
    """The latest of the days on or before the one asked, never one after it nor more
    than ten days before."""
    days = [date(2024, 5, 1), date(2024, 5, 8), date(2024, 5, 10), date(2024, 5, 20)]
    assert rules.nearest_day(days, date(2024, 5, 12)) == date(2024, 5, 10)
    assert rules.nearest_day(days, date(2024, 5, 9)) == date(2024, 5, 8)
    assert rules.nearest_day(days, date(2024, 4, 30)) is None
    assert rules.nearest_day([date(2024, 5, 1)], date(2024, 5, 12)) is None  # 11 days back
    assert rules.nearest_day([date(2024, 5, 2)], date(2024, 5, 12)) == date(2024, 5, 2)


# ── what to ask the feed for ───────────────────────────────────────────────────────────


def test_the_fetch_window_and_the_file_that_holds_it() -> None:
    """With a recent day held only the days after it are asked (the daily file when that
    is the newest working day); with none, the whole recent file; for an old day, a
    window of the whole history."""
    now = summer(17)  # Monday 2024-05-13, after publication
    since, until = rules.fetch_window(date(2024, 5, 13), date(2024, 5, 10), now)
    assert (since, until) == (date(2024, 5, 13), None)
    assert rules.document_for(since, now) == rules.DAILY

    since, until = rules.fetch_window(date(2024, 5, 13), date(2024, 5, 8), now)
    assert (since, until) == (date(2024, 5, 9), None)
    assert rules.document_for(since, now) == rules.RECENT

    since, until = rules.fetch_window(date(2024, 5, 10), None, now)
    assert (since, until) == (date(2024, 5, 13) - timedelta(days=rules.RECENT_DAYS), None)
    assert rules.document_for(since, now) == rules.RECENT

    since, until = rules.fetch_window(date(2023, 6, 15), None, now)
    assert (since, until) == (date(2023, 6, 5), date(2023, 7, 16))
    assert rules.document_for(since, now) == rules.HISTORY

    # never before the first reference rates
    since, _ = rules.fetch_window(date(1999, 1, 6), None, now)
    assert since == rules.ECB_FIRST_DAY


def test_before_publication_the_daily_file_serves_yesterday() -> None:
    """At 10:00 on Monday the newest publishable working day is Friday: asking from
    Friday takes the daily file."""
    assert rules.document_for(date(2024, 5, 10), summer(10)) == rules.DAILY
    assert rules.document_for(date(2024, 5, 9), summer(10)) == rules.RECENT


# ── cross rates and the fixed table ────────────────────────────────────────────────────

DAY = {"USD": Decimal("1.0772"), "JPY": Decimal("167.63"), "GBP": Decimal("0.86008")}


def test_cross_rates_go_through_the_euro() -> None:
    """EUR to X is X's rate, X to EUR its inverse, X to Y is Y/X, all to ten significant
    digits; a missing currency is None."""
    assert rules.cross_rate(DAY, "EUR", "USD") == Decimal("1.0772")
    assert rules.cross_rate(DAY, "USD", "EUR") == Decimal("0.9283327144")
    assert rules.cross_rate(DAY, "USD", "JPY") == Decimal("155.6164129")
    assert rules.cross_rate(DAY, "GBP", "USD") == Decimal("1.252441633")
    assert rules.cross_rate(DAY, "USD", "CHF") is None
    assert rules.cross_rate(DAY, "CHF", "EUR") is None


rates_per_euro = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100000"), places=5)


@PROPERTY
@given(rates_per_euro, st.sampled_from(sorted(CURRENCIES)))
def test_a_currency_against_itself_is_one(rate: Decimal, code: str) -> None:
    """Whatever its rate per euro, a currency's cross rate with itself is exactly 1."""
    assume(rate > 0)
    assert rules.cross_rate({code: rate}, code, code) == 1
    assert format_rate(Decimal(1)) == "1"


@PROPERTY
@given(rates_per_euro, rates_per_euro)
def test_a_cross_rate_and_its_inverse_multiply_to_one(one: Decimal, two: Decimal) -> None:
    """X→Y times Y→X is 1 within the rounding of ten significant digits, and both are
    valid rate text."""
    assume(one > 0 and two > 0)
    day = {"USD": one, "JPY": two}
    there = rules.cross_rate(day, "USD", "JPY")
    back = rules.cross_rate(day, "JPY", "USD")
    assert there is not None
    assert back is not None
    assert abs(there * back - 1) <= Decimal("2e-9")
    assert parse_rate(format_rate(there)) == there
    assert parse_rate(format_rate(back)) == back


def test_the_fixed_table_covers_every_accepted_currency() -> None:
    """Every currency payments accepts has a positive fixed rate, so the last resort always
    answers; it is dated."""
    assert set(rules.FIXED) | {"EUR"} == set(CURRENCIES)
    assert all(rate > 0 for rate in rules.FIXED.values())
    for base in CURRENCIES:
        for quote in CURRENCIES:
            assert rules.fixed_rate(base, quote) is not None
    assert rules.fixed_rate("EUR", "USD") == rules.FIXED["USD"]
    assert rules.fixed_rate("XXX", "USD") is None
    assert date.today() >= rules.FIXED_DAY


# ── rate text ──────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("1.0772", Decimal("1.0772")),
        (" 167.63 ", Decimal("167.63")),
        ("0.000000000001", MIN_RATE),
        ("999999999999.99", Decimal("999999999999.99")),
        ("00012.500", Decimal("12.5")),
    ],
)
def test_rates_are_read_exactly(text: str, value: Decimal) -> None:
    """Plain decimal text is read to the exact Decimal it writes."""
    assert parse_rate(text) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0", "more than zero"),
        ("0.000", "more than zero"),
        ("-1", "positive decimal"),
        ("+1", "positive decimal"),
        ("NaN", "positive decimal"),
        ("inf", "positive decimal"),
        ("Infinity", "positive decimal"),
        ("1e3", "positive decimal"),
        ("1,5", "positive decimal"),
        (".5", "positive decimal"),
        ("5.", "positive decimal"),
        ("", "positive decimal"),
        ("١٢", "positive decimal"),  # Arabic-Indic digits are not ours
        ("1.2.3", "positive decimal"),
        ("0.0000000000001", "at least"),
        ("1000000000000", "below"),
        ("1.234567890123456789012", "significant digits"),
        ("1" * 49, "at most 48 characters"),
    ],
)
def test_bad_rates_are_refused(text: str, why: str) -> None:
    """Zero, signs, NaN, infinity, exponents, other digits, absurd size or precision are
    InvalidRate naming the field."""
    with pytest.raises(InvalidRate, match=why) as caught:
        parse_rate(text)
    assert caught.value.code == "invalid_rate"
    assert caught.value.details == {"field": "rate"}


def test_rate_text_must_be_text() -> None:
    """A number where rate text goes is refused, never guessed at."""
    with pytest.raises(InvalidRate):
        parse_rate(1.5)  # type: ignore[arg-type]


@PROPERTY
@given(st.text(max_size=45))
def test_any_text_is_a_valid_rate_or_refused(text: str) -> None:
    """Any text is either a rate within the bounds or InvalidRate; nothing else escapes."""
    try:
        value = parse_rate(text)
    except InvalidRate:
        return
    assert MIN_RATE <= value < MAX_RATE


# every rate parse_rate accepts: up to 20 significant digits, from 1e-12 to below 1e12
valid_rates = st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(exponent),
    st.integers(min_value=1, max_value=10**20 - 1),
    st.integers(min_value=-32, max_value=12),
).filter(lambda value: MIN_RATE <= value < MAX_RATE)


@PROPERTY
@given(valid_rates)
def test_rate_text_round_trips(value: Decimal) -> None:
    """A valid rate written by format_rate reads back to the same value, with no exponent
    and no trailing zeros."""
    text = format_rate(value)
    assert "e" not in text.lower()
    assert not ("." in text and text.endswith("0"))
    assert parse_rate(text) == value


# ── conversions ────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("amount", "source", "target", "rate", "expected"),
    [
        (10_000, "EUR", "USD", "1.0772", 10_772),  # 100.00 EUR -> 107.72 USD
        (10_000, "EUR", "JPY", "167.63", 16_763),  # 100.00 EUR -> 16,763 JPY
        (16_763, "JPY", "EUR", "0.005965519298", 10_000),
        (1_000, "EUR", "KWD", "0.3312", 3_312),  # 10.00 EUR -> 3.312 KWD
        (3_312, "KWD", "EUR", "3.019323671", 1_000),
        (125, "USD", "USD", "1", 125),
        (5, "EUR", "USD", "0.5", 2),  # 2.5 -> 2: half to even
        (15, "EUR", "USD", "0.5", 8),  # 7.5 -> 8: half to even
        (-15, "EUR", "USD", "0.5", -8),
        (0, "EUR", "JPY", "167.63", 0),
        (1, "EUR", "JPY", "167.63", 2),  # 0.01 EUR = 1.6763 JPY -> 2
    ],
)
def test_convert_examples(amount: int, source: str, target: str, rate: str, expected: int) -> None:
    """Amounts convert exactly by each currency's exponent, rounding half to even."""
    assert convert(amount, source, target, rate) == expected


def test_convert_refuses_bad_rates_and_amounts() -> None:
    """A bad rate is InvalidRate; an amount that is no int64 is refused before any maths."""
    with pytest.raises(InvalidRate):
        convert(100, "EUR", "USD", "0")
    with pytest.raises(InvalidRate):
        convert(100, "EUR", "USD", "NaN")
    with pytest.raises(OverflowError):
        convert(2**63, "EUR", "USD", "1")
    with pytest.raises(TypeError):
        convert(True, "EUR", "USD", "1")


money = st.integers(min_value=-(10**12), max_value=10**12)
codes = st.sampled_from(sorted(CURRENCIES))


@PROPERTY
@given(money, codes, codes, rates_per_euro, rates_per_euro)
def test_there_and_back_stays_within_the_rounding(
    amount: int, source: str, target: str, one: Decimal, two: Decimal
) -> None:
    """Converting at a cross rate and back at its inverse returns the amount within one
    minor unit for each rounding: the target's (measured in source units) and the
    source's own, plus what the two rates' own rounding moves."""
    assume(one > 0 and two > 0)
    day = {source: one, target: two} if source != target else {source: one}
    there_rate = rules.cross_rate(day, source, target)
    back_rate = rules.cross_rate(day, target, source)
    assert there_rate is not None
    assert back_rate is not None
    there = convert(amount, source, target, format_rate(there_rate))
    assume(abs(there) < 2**63)  # an amount no ledger holds is not converted back
    back = convert(there, target, source, format_rate(back_rate))
    # one target minor unit, in source minor units, is back_rate * 10^(e_source - e_target)
    target_unit = back_rate.scaleb(exponent_of(source) - exponent_of(target))
    drift = abs(amount) * abs(there_rate * back_rate - 1)
    assert abs(back - amount) <= target_unit / 2 + Decimal("0.5") + drift


@PROPERTY
@given(money, money, codes, codes, valid_rates)
def test_convert_is_monotonic_and_odd(
    one: int, two: int, source: str, target: str, rate: Decimal
) -> None:
    """More in gives no less out, and a negative amount converts to the negative of its
    positive: half to even favours no side."""
    text = format_rate(rate)
    low, high = sorted((one, two))
    assert convert(low, source, target, text) <= convert(high, source, target, text)
    assert convert(-one, source, target, text) == -convert(one, source, target, text)


@PROPERTY
@given(money, codes)
def test_a_rate_of_one_between_equal_exponents_changes_nothing(amount: int, code: str) -> None:
    """At rate 1 between currencies with the same exponent the amount is unchanged."""
    same = [other for other in CURRENCIES if exponent_of(other) == exponent_of(code)]
    for other in same[:3]:
        assert convert(amount, code, other, "1") == amount


# ── the message and its refusal ────────────────────────────────────────────────────────


def test_get_rate_checks_its_bounds_and_keys_by_day() -> None:
    """A malformed day or currency is InvalidInput naming the field; the shard key is the
    day asked."""
    message = GetRate(base="USD", quote="GBP", day="2024-05-10")
    assert rates_key(message) == "2024-05-10"
    assert rates_key(object()) is None
    with pytest.raises(InvalidInput) as caught:
        GetRate(base="USD", quote="GBP", day="10/05/2024")
    assert caught.value.details == {"field": "$.day"}
    with pytest.raises(InvalidInput) as caught:
        GetRate(base="US", quote="GBP", day="2024-05-10")
    assert caught.value.details == {"field": "$.base"}


def test_rate_unavailable_names_the_pair_and_day_and_crosses_a_network() -> None:
    """The refusal is code rate_unavailable (a 422), names the pair and day, asks for a
    rate, and comes back as the same class from its Failure."""
    error = RateUnavailable.of("USD", "XYZ", "2024-05-10", "XYZ is not a currency splitgo knows")
    assert (error.code, error.category) == ("rate_unavailable", "invalid")
    for named in ("USD", "XYZ", "2024-05-10"):
        assert named in error.message
    assert "give the rate yourself" in error.message
    assert error.details == {"base": "USD", "quote": "XYZ", "day": "2024-05-10", "field": "rate"}
    again = Failure.of(error).to_error()
    assert type(again) is RateUnavailable
    assert again.message == error.message
    assert DomainError.for_code("invalid_rate") is InvalidRate
