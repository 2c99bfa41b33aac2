"""The rates actor's pure rules, no IO: reading the ECB's XML, its calendar (which day's
rate a day gets), cross rates through the euro, what to ask the feed for, and the fixed
last-resort table.

The ECB publishes reference rates as units of each currency per 1 EUR, once a day around
16:00 CET on TARGET working days (no weekends, no TARGET holidays). A day's rate is the
latest published on or before it, at most `LOOKBACK_DAYS` back; today's before publication
is the previous working day's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from xml.parsers import expat
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from actors.rates.messages import MAX_RATE, MIN_RATE, InvalidRate, parse_rate

LOOKBACK_DAYS = 10  # a day's rate is the latest published on or before it, this far back
ECB_FIRST_DAY = date(1999, 1, 4)  # the first euro reference rates: none before
PUBLISHED_AT = time(16, 0)  # ECB local time: "usually around 16:00 CET"
# A day up to one ahead of Frankfurt's is today somewhere east of it (UTC+14 at most):
# answered as today. Further ahead is refused: no rate is published for it yet.
FUTURE_GRACE_DAYS = 1
RECENT_DAYS = 85  # the 90-day file holds the last 90 days: 5 days' margin for its lag
HISTORY_SPAN_DAYS = 31  # from the whole history, a month after the day asked is kept
FALLBACK_DAYS = 366  # the feed down: a held day this far back still beats the fixed table
RATE_DIGITS = 10  # cross rates are rounded to this many significant digits
_CROSS = Context(prec=RATE_DIGITS, rounding=ROUND_HALF_EVEN)

# The ECB's three files, all one shape: Cube / Cube time= / Cube currency= rate=
DAILY = "eurofxref-daily.xml"  # the latest working day
RECENT = "eurofxref-hist-90d.xml"  # the last 90 days
HISTORY = "eurofxref-hist.xml"  # every day since 1999-01-04
DOCUMENTS = (DAILY, RECENT, HISTORY)

# What a document may hold before it is refused rather than read on: the whole history
# is ~6,700 days of ~30 currencies.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_DAYS = 20_000
MAX_CURRENCIES_PER_DAY = 100
MAX_DEPTH = 16
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CODE = re.compile(r"[A-Z]{3}")

try:
    ECB_ZONE: timezone | ZoneInfo = ZoneInfo("Europe/Berlin")  # Frankfurt: CET and CEST
except ZoneInfoNotFoundError:  # no time zone data installed: winter time all year
    ECB_ZONE = timezone(timedelta(hours=1), "CET")

Rates = dict[str, Decimal]  # currency -> units per 1 EUR (EUR itself implied, 1)


# ── the fixed table ────────────────────────────────────────────────────────────────────

# THE LAST RESORT: approximate units per 1 EUR, rounded from the reference rates around
# FIXED_DAY (UAH, KWD, BHD and AED, which the ECB does not publish, from their dollar
# rates then). Used only when no published rate can be had: the feed unreachable with
# nothing held, or a currency the ECB does not publish. It goes stale: a quote from it
# says so (source "fixed", day FIXED_DAY). Covers every currency payments accepts.
FIXED_DAY = date(2025, 1, 2)
FIXED: dict[str, Decimal] = {
    code: Decimal(rate)
    for code, rate in {
        "USD": "1.035", "GBP": "0.8271", "CHF": "0.9382", "SEK": "11.49", "NOK": "11.77",
        "DKK": "7.460", "PLN": "4.271", "CZK": "25.22", "HUF": "412.6", "RON": "4.974",
        "BGN": "1.956", "CAD": "1.488", "AUD": "1.664", "NZD": "1.839", "JPY": "162.7",
        "CNY": "7.545", "INR": "88.53", "BRL": "6.407", "MXN": "21.50", "ZAR": "19.45",
        "TRY": "36.47", "UAH": "43.55", "ILS": "3.771", "SGD": "1.410", "HKD": "8.020",
        "KRW": "1517", "KWD": "0.3190", "BHD": "0.3892", "AED": "3.801",
    }.items()
}  # fmt: skip


def fixed_rate(base: str, quote: str) -> Decimal | None:
    """`quote` per 1 `base` from the fixed table; None for a currency it lacks."""
    return cross_rate(FIXED, base, quote)


# ── cross rates ────────────────────────────────────────────────────────────────────────


def cross_rate(rates: Mapping[str, Decimal], base: str, quote: str) -> Decimal | None:
    """Units of `quote` per 1 `base` from one day's rates per EUR, rounded half to even to
    `RATE_DIGITS` significant digits (a currency against itself is exactly 1); None when
    the day lacks either currency or the result is outside a rate's bounds."""
    per_euro_base = Decimal(1) if base == "EUR" else rates.get(base)
    per_euro_quote = Decimal(1) if quote == "EUR" else rates.get(quote)
    if per_euro_base is None or per_euro_quote is None:
        return None
    value = _CROSS.divide(per_euro_quote, per_euro_base)
    return value if MIN_RATE <= value < MAX_RATE else None


# ── the calendar ───────────────────────────────────────────────────────────────────────


def ecb_time(now: datetime) -> datetime:
    """`now` (aware) on the ECB's clock in Frankfurt."""
    return now.astimezone(ECB_ZONE)


def ecb_today(now: datetime) -> date:
    """Frankfurt's date at `now`."""
    return ecb_time(now).date()


def publishable_day(now: datetime) -> date:
    """The latest day whose rates may be out at `now`: today from 16:00 Frankfurt time,
    else yesterday."""
    local = ecb_time(now)
    if local.time() >= PUBLISHED_AT:
        return local.date()
    return local.date() - timedelta(days=1)


def in_future(asked: date, now: datetime) -> bool:
    """Whether `asked` lies beyond today (with a day's grace for time zones east of CET)."""
    return asked > ecb_today(now) + timedelta(days=FUTURE_GRACE_DAYS)


def effective_day(asked: date, now: datetime) -> date:
    """The day whose rate answers `asked` at `now`: itself, or the latest day that may be
    published already (today before 16:00 CET, and tomorrow, are asked as yesterday)."""
    return min(asked, publishable_day(now))


def easter_sunday(year: int) -> date:
    """Easter Sunday in the Gregorian calendar (the anonymous algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday) // 451
    month, day = divmod(h + weekday - 7 * m + 114, 31)
    return date(year, month, day + 1)


@functools.lru_cache(maxsize=256)
def target_holidays(year: int) -> frozenset[date]:
    """The days TARGET (and so the ECB's rates) is closed besides weekends, as they stand
    since 2002: New Year, Good Friday, Easter Monday, 1 May, 25 and 26 December. (Rarer
    closings of 1999-2001 are found by the feed: a day it never published is remembered.)"""
    easter = easter_sunday(year)
    return frozenset(
        {
            date(year, 1, 1),
            easter - timedelta(days=2),
            easter + timedelta(days=1),
            date(year, 5, 1),
            date(year, 12, 25),
            date(year, 12, 26),
        }
    )


def is_working_day(day: date) -> bool:
    """Whether the ECB publishes rates on `day` (a TARGET working day)."""
    return day.weekday() < 5 and day not in target_holidays(day.year)


def working_day_on_or_before(day: date) -> date:
    """The latest working day on or before `day`: the day whose rate `day` should get."""
    while not is_working_day(day):  # at most four steps back (Easter)
        day -= timedelta(days=1)
    return day


def working_day_after(day: date) -> date:
    """The first working day after `day`."""
    day += timedelta(days=1)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def nearest_day(
    days: Iterable[date], on_or_before: date, *, max_back: int = LOOKBACK_DAYS
) -> date | None:
    """The latest of `days` on or before `on_or_before`, at most `max_back` days earlier."""
    earliest = on_or_before - timedelta(days=max_back)
    candidates = [day for day in days if earliest <= day <= on_or_before]
    return max(candidates, default=None)


# ── what to ask the feed for ───────────────────────────────────────────────────────────


def fetch_window(effective: date, held: date | None, now: datetime) -> tuple[date, date | None]:
    """The days to ask the feed for (since, until; None: up to the newest) to answer for
    `effective`, given `held`, the nearest day the cache has within the lookback.

    With a day held, only the days after it. With none, the lookback; for a recent day the
    whole recent file instead, so every recent day is held after one fetch and concurrent
    asks for different recent days ask for the same thing (and share one fetch). From the
    whole history, at most a month after the day asked is kept.
    """
    recent = ecb_today(now) - timedelta(days=RECENT_DAYS)
    if held is not None:
        since = working_day_after(held)
    else:
        since = max(effective - timedelta(days=LOOKBACK_DAYS), ECB_FIRST_DAY)
        if since >= recent:
            since = recent
    until = None if since >= recent else effective + timedelta(days=HISTORY_SPAN_DAYS)
    return since, until


def document_for(since: date, now: datetime) -> str:
    """Which ECB file holds every published day from `since`: the daily one when only the
    newest working day is wanted, the 90-day one for recent days, else the whole history."""
    if since >= working_day_on_or_before(publishable_day(now)):
        return DAILY
    if since >= ecb_today(now) - timedelta(days=RECENT_DAYS):
        return RECENT
    return HISTORY


# ── reading the ECB's XML ──────────────────────────────────────────────────────────────


class DocumentInvalid(ValueError):
    """A rates document that is not what the ECB publishes: refused whole, nothing kept."""

    code = "rates_document_invalid"


def parse_ecb(
    data: bytes, *, since: date | None = None, until: date | None = None
) -> dict[date, Rates]:
    """Every day from `since` to `until` (both optional, inclusive) in an ECB rates document,
    with its rates per EUR; DocumentInvalid for anything else.

    Read as a stream by the parser under xml.etree (expat), with no tree built and nothing
    kept outside the window, so memory stays bounded by the window. Any DTD is refused
    before it is read: no entity can be declared, so none expands (billion laughs) or
    reaches outside (external entities); an undeclared one is an error. The sizes are
    bounded: the bytes, the days, the currencies a day, the nesting. Days outside the
    window are checked for shape only.
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentInvalid(f"the document is larger than {MAX_DOCUMENT_BYTES:,} bytes")
    reader = _Reader(since, until)
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        reason = expat.ErrorString(error.code)
        raise DocumentInvalid(f"not well-formed XML ({reason}, line {error.lineno})") from None
    return reader.finish()


def _refuse_doctype(*_args: object) -> None:
    raise DocumentInvalid("a rates document has no DTD")


def _refuse_entity(*_args: object) -> None:
    raise DocumentInvalid("a rates document declares no entities")


class _Reader:
    """Collects the days of one document as expat reports its elements."""

    def __init__(self, since: date | None, until: date | None) -> None:
        self.since = since
        self.until = until
        self.days: dict[date, Rates] = {}
        self.seen: set[date] = set()
        self.depth = 0
        self.day: date | None = None  # the day whose currencies are being read
        self.day_depth = 0
        self.keep = False  # whether that day is inside the window
        self.count = 0  # currencies seen in that day

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise DocumentInvalid(f"elements are nested deeper than {MAX_DEPTH}")
        if name.rpartition("}")[2] != "Cube":
            return
        if "time" in attributes:
            self._open_day(attributes["time"])
        elif "currency" in attributes or "rate" in attributes:
            self._add_rate(attributes.get("currency", ""), attributes.get("rate", ""))

    def end(self, name: str) -> None:
        if self.day is not None and self.depth == self.day_depth:
            self.day = None
        self.depth -= 1

    def _open_day(self, text: str) -> None:
        if self.day is not None:
            raise DocumentInvalid("a day's Cube is inside another day's")
        if _DAY.fullmatch(text) is None:
            raise DocumentInvalid(f"a day is not YYYY-MM-DD: {text[:20]!r}")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise DocumentInvalid(f"no such day: {text!r}") from None
        if day in self.seen:
            raise DocumentInvalid(f"the day {day} appears twice")
        if len(self.seen) >= MAX_DAYS:
            raise DocumentInvalid(f"the document holds more than {MAX_DAYS:,} days")
        self.seen.add(day)
        self.day, self.day_depth, self.count = day, self.depth, 0
        self.keep = (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )
        if self.keep:
            self.days[day] = {}

    def _add_rate(self, currency: str, rate: str) -> None:
        if self.day is None:
            raise DocumentInvalid("a rate is outside any day")
        self.count += 1
        if self.count > MAX_CURRENCIES_PER_DAY:
            raise DocumentInvalid(f"{self.day} has more than {MAX_CURRENCIES_PER_DAY} rates")
        if not self.keep:
            return
        if _CODE.fullmatch(currency) is None or currency == "EUR":
            raise DocumentInvalid(f"{self.day}: not a currency code: {currency[:20]!r}")
        rates = self.days[self.day]
        if currency in rates:
            raise DocumentInvalid(f"{self.day}: {currency} appears twice")
        try:
            rates[currency] = parse_rate(rate)
        except InvalidRate:
            raise DocumentInvalid(f"{self.day}: {currency} has no valid rate") from None

    def finish(self) -> dict[date, Rates]:
        if not self.seen:
            raise DocumentInvalid("the document holds no day of rates")
        # a day the ECB left empty says nothing: it is not kept
        return {day: rates for day, rates in self.days.items() if rates}
