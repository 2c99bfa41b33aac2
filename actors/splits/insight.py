"""Pure rules of a group's search and insight (issue 17, item 4): what a valid search filter
is, the page cursor of a search, and the shapes of an insight (totals by category and by
month, for the group or for one person's own shares) made from the rows the store sums.

Months are keys `YYYY-MM`; a month series is zero-filled so that every month of its range
appears. Every series' percentages add up to exactly 100 (largest remainder), and its
slices add up to its total, which is the sum of the rows it was made from. Money stays in
integer minor units. No IO.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import msgspec

from actors.payments.messages import CURRENCIES, MAX_AMOUNT
from actors.runtime import InvalidCursor, Message
from actors.runtime.bounds import EARLIEST_DAY, ID_MAX, LATEST_DAY
from actors.splits.errors import InvalidSearch

TEXT_MAX = 100  # characters of the searched text
MONTHS_MAX = 120  # a longer month range shrinks to its data's own (see month_series)
# characters of a search cursor: a day, a time and an id of up to ID_MAX characters (each
# at most six bytes in JSON), in base64
CURSOR_MAX = 2_000
# the categories the expense form suggests (splitgo/pages/expenses.py, CATEGORIES); a group
# also knows every category its expenses use (see `known_categories`)
SUGGESTED_CATEGORIES = frozenset(
    ("general", "food", "groceries", "rent", "transport", "travel", "fun", "utilities")
)


def _refuse(field: str, message: str) -> InvalidSearch:
    return InvalidSearch(message, details={"field": field})


# ── the filter ────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchFilter:
    """Which of a group's live expenses a search or an insight covers; every field that is
    None leaves that side open. `text` is matched anywhere in the description, ignoring
    case; `person` has a line in the expense (paid or shares); the dates are inclusive;
    the amounts bound the expense's whole amount in minor units.

    Made with `search_filter` from what a person typed; constructing one directly still
    checks everything that needs no knowledge of the group."""

    text: str | None = None
    person: str | None = None
    category: str | None = None
    currency: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    amount_min: int | None = None
    amount_max: int | None = None

    def __post_init__(self) -> None:
        if self.text is not None:
            if not self.text or len(self.text) > TEXT_MAX:
                raise _refuse("text", f"text must be 1 to {TEXT_MAX} characters")
            if _has_control(self.text):
                raise _refuse("text", "text must not contain control characters")
        if self.person is not None and not 0 < len(self.person) <= ID_MAX:
            raise _refuse("person", "person must be a member's id")
        if self.currency is not None and self.currency not in CURRENCIES:
            raise _refuse("currency", f"{self.currency!r} is not a currency we know")
        for field in ("date_from", "date_to"):
            day = getattr(self, field)
            if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
                raise _refuse(field, f"{field} must be from {EARLIEST_DAY} to {LATEST_DAY}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise _refuse("date_to", "date_to must not be before date_from")
        for field in ("amount_min", "amount_max"):
            amount = getattr(self, field)
            if amount is None:
                continue
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise _refuse(field, f"{field} must be a whole number of minor units")
            if not 0 <= amount <= MAX_AMOUNT:
                raise _refuse(field, f"{field} must be from 0 to {MAX_AMOUNT} minor units")
        if (
            self.amount_min is not None
            and self.amount_max is not None
            and self.amount_min > self.amount_max
        ):
            raise _refuse("amount_max", "amount_max must not be below amount_min")

    @property
    def pattern(self) -> str | None:
        """The ILIKE pattern of `text` (its `%`, `_` and `\\` taken literally), or None."""
        return None if self.text is None else like_pattern(self.text)

    @property
    def months(self) -> tuple[str | None, str | None]:
        """The first and last month the dates name (None where a side is open)."""
        return (
            None if self.date_from is None else month_key(self.date_from),
            None if self.date_to is None else month_key(self.date_to),
        )


def search_filter(
    *,
    members: Collection[str],
    categories: Collection[str],
    text: str | None = None,
    person: str | None = None,
    category: str | None = None,
    currency: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    amount_min: int | None = None,
    amount_max: int | None = None,
) -> SearchFilter:
    """A filter from what a person gave (a form, a query, a message): blank text means no
    text; the category is compared as expenses store it (lower case); `person` must be one
    of `members` and `category` one of `categories` (`known_categories`). Refused with
    InvalidSearch naming the first wrong field."""
    cleaned_text = _collapse(text)
    cleaned_category = _collapse(category)
    if cleaned_category is not None:
        cleaned_category = cleaned_category.lower()
        if cleaned_category not in {known.lower() for known in categories}:
            raise _refuse("category", f"{cleaned_category!r} is not a category of this group")
    cleaned_person = member(person, members, "person")
    return SearchFilter(
        text=cleaned_text,
        person=cleaned_person,
        category=cleaned_category,
        currency=currency or None,
        date_from=_day(date_from, "date_from"),
        date_to=_day(date_to, "date_to"),
        amount_min=amount_min,
        amount_max=amount_max,
    )


def member(value: str | None, members: Collection[str], field: str) -> str | None:
    """`value` if it is one of `members`, None if blank; InvalidSearch naming `field` for
    anyone else (the person of a filter, whose own shares an insight sums)."""
    if not value:
        return None
    if value not in members:
        raise _refuse(field, f"{field} must be a member of the group")
    return value


def known_categories(used: Iterable[str]) -> frozenset[str]:
    """The categories a group's filter may name: those suggested and those it uses."""
    return SUGGESTED_CATEGORIES | {category.lower() for category in used}


def like_pattern(text: str) -> str:
    """`text` anywhere, for `ILIKE … ESCAPE '\\'`: its wildcards match only themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _collapse(value: str | None) -> str | None:
    # whitespace collapsed as expenses store their text; blank is no filter at all
    if value is None:
        return None
    return " ".join(value.split()) or None


def _has_control(value: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in value)


def _day(value: str | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    if len(value) != 10:
        raise _refuse(field, f"{field} must be YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _refuse(field, f"{field} must be YYYY-MM-DD") from None


# ── the search cursor ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class SearchCursor:
    """Where a search page ended: the last expense's (date, created, id), the order of a
    search (newest date first), so the next page starts strictly after it. `created_at`
    is an aware time (as the database gives it)."""

    spent_on: date
    created_at: datetime
    id: str

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("a search cursor's created_at must be an aware time")

    def encode(self) -> str:
        """The opaque text a page gives out as its `next_cursor`: short (the day and the
        time as whole numbers), so a UUID's cursor stays well within an edge's limit."""
        micros = (self.created_at - _EPOCH) // _MICROSECOND
        raw = msgspec.json.encode([self.spent_on.toordinal(), micros, self.id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str | None) -> SearchCursor | None:
        """The position `text` names, None for the first page; InvalidCursor for anything
        `encode` did not make."""
        if text is None:
            return None
        if not text or len(text) > CURSOR_MAX or not text.isascii():
            raise InvalidCursor
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            day, micros, ident = msgspec.json.decode(raw, type=tuple[int, int, str])
            spent_on = date.fromordinal(day)
            created_at = _EPOCH + micros * _MICROSECOND
        except (
            ValueError,
            OverflowError,
            binascii.Error,
            msgspec.DecodeError,
            msgspec.ValidationError,
        ):
            raise InvalidCursor from None
        if not 0 < len(ident) <= ID_MAX:
            raise InvalidCursor
        return cls(spent_on, created_at, ident)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# ── months ────────────────────────────────────────────────────────────────────────────


def month_key(day: date) -> str:
    """The month of `day` as `YYYY-MM`."""
    return f"{day.year:04d}-{day.month:02d}"


def _month(key: str) -> tuple[int, int]:
    if len(key) != 7 or key[4] != "-" or not (key[:4] + key[5:]).isdigit():
        raise ValueError(f"{key!r} is not a month YYYY-MM")
    year, month = int(key[:4]), int(key[5:])
    if not 1 <= month <= 12 or year < 1:
        raise ValueError(f"{key!r} is not a month YYYY-MM")
    return year, month


def month_span(first: str, last: str) -> int:
    """How many months from `first` to `last`, both counted (0 when last is earlier)."""
    (y1, m1), (y2, m2) = _month(first), _month(last)
    return max(0, (y2 * 12 + m2) - (y1 * 12 + m1) + 1)


def month_range(first: str, last: str) -> list[str]:
    """Every month from `first` to `last`, both included, oldest first (empty when `last`
    is earlier); ValueError for a key that is not `YYYY-MM`."""
    year, month = _month(first)
    months: list[str] = []
    for _ in range(month_span(first, last)):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


# ── the shapes of an insight ──────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class TotalRow:
    """One sum as the store makes it: in `currency`, for `key` (a category, or a month
    `YYYY-MM`), `amount` minor units over `count` expenses."""

    currency: str
    key: str
    amount: int
    count: int


class InsightSlice(Message, frozen=True):
    """One category or month of a series: its sum, how many expenses, and its share of
    the series' total in whole percent (a series' percents add up to 100)."""

    key: str
    amount: int
    count: int
    percent: int


class InsightSeries(Message, frozen=True):
    """One currency's totals (amounts in different currencies are never added)."""

    currency: str
    total: int
    count: int
    slices: list[InsightSlice]


class InsightView(Message, frozen=True):
    """A group's insight for a filter: the totals by category (largest first) and by month
    (oldest first, zero-filled), for the group's expenses or (`person`) for that member's
    own shares of them."""

    person: str | None
    by_category: list[InsightSeries]
    by_month: list[InsightSeries]


def percentages(amounts: Sequence[int], whole: int = 100) -> list[int]:
    """Each amount's share of their sum in whole parts of `whole`, adding up to exactly
    `whole` (largest remainder: the floors first, then one more part to the largest
    remainders, earlier first on a tie); all zero when the sum is zero. A zero amount
    always gets zero. ValueError for a negative amount."""
    if any(amount < 0 for amount in amounts):
        raise ValueError("percentages of negative amounts are not defined")
    total = sum(amounts)
    if total == 0:
        return [0] * len(amounts)
    parts = [amount * whole // total for amount in amounts]
    remainders = [amount * whole % total for amount in amounts]
    missing = whole - sum(parts)
    for index in sorted(range(len(amounts)), key=lambda i: (-remainders[i], i))[:missing]:
        parts[index] += 1
    return parts


def _sums(rows: Iterable[TotalRow]) -> dict[str, dict[str, tuple[int, int]]]:
    # currency -> key -> (amount, count); rows for the same key are added, not replaced
    sums: dict[str, dict[str, tuple[int, int]]] = {}
    for row in rows:
        keyed = sums.setdefault(row.currency, {})
        amount, count = keyed.get(row.key, (0, 0))
        keyed[row.key] = (amount + int(row.amount), count + int(row.count))
    return sums


def _series(currency: str, keyed: Sequence[tuple[str, int, int]]) -> InsightSeries:
    shares = percentages([amount for _, amount, _ in keyed])
    return InsightSeries(
        currency=currency,
        total=sum(amount for _, amount, _ in keyed),
        count=sum(count for _, _, count in keyed),
        slices=[
            InsightSlice(key=key, amount=amount, count=count, percent=percent)
            for (key, amount, count), percent in zip(keyed, shares, strict=True)
        ],
    )


def _currency_order(currencies: Iterable[str], primary: str | None) -> list[str]:
    # the group's own currency first, then the others alphabetically
    return sorted(currencies, key=lambda currency: (currency != primary, currency))


def category_series(rows: Iterable[TotalRow], primary: str | None = None) -> list[InsightSeries]:
    """Totals by category, one series per currency (`primary` first, then alphabetical),
    its slices largest first (then by name)."""
    sums = _sums(rows)
    return [
        _series(
            currency,
            sorted(
                ((key, amount, count) for key, (amount, count) in sums[currency].items()),
                key=lambda item: (-item[1], item[0]),
            ),
        )
        for currency in _currency_order(sums, primary)
    ]


def month_series(
    rows: Iterable[TotalRow],
    first: str | None = None,
    last: str | None = None,
    primary: str | None = None,
) -> list[InsightSeries]:
    """Totals by month, one series per currency (`primary` first), every month from
    `first` to `last` present (zero where nothing was spent), oldest first. An open side
    is where the data starts or ends; the range always covers every row. A range longer
    than MONTHS_MAX months (a filter from 1900) shrinks to the data's own first and last."""
    sums = _sums(rows)
    keys = sorted({key for keyed in sums.values() for key in keyed})
    if not keys:
        return []
    low = min(first or keys[0], keys[0])
    high = max(last or keys[-1], keys[-1])
    if month_span(low, high) > MONTHS_MAX:
        low, high = keys[0], keys[-1]
    months = month_range(low, high)
    return [
        _series(currency, [(month, *sums[currency].get(month, (0, 0))) for month in months])
        for currency in _currency_order(sums, primary)
    ]


def insight(
    by_category: Iterable[TotalRow],
    by_month: Iterable[TotalRow],
    criteria: SearchFilter,
    *,
    person: str | None = None,
    primary: str | None = None,
) -> InsightView:
    """The insight of the rows the store summed for `criteria` (for `person`'s own shares
    when given), the month series zero-filled over the filter's dates."""
    first, last = criteria.months
    return InsightView(
        person=person,
        by_category=category_series(by_category, primary),
        by_month=month_series(by_month, first, last, primary),
    )


def series_points(series: InsightSeries) -> list[tuple[str, int]]:
    """A series as (label, amount) pairs: what `splitgo.pages.charts` draws."""
    return [(piece.key, piece.amount) for piece in series.slices]


__all__ = [
    "CURSOR_MAX",
    "MONTHS_MAX",
    "SUGGESTED_CATEGORIES",
    "TEXT_MAX",
    "InsightSeries",
    "InsightSlice",
    "InsightView",
    "InvalidSearch",
    "SearchCursor",
    "SearchFilter",
    "TotalRow",
    "category_series",
    "insight",
    "known_categories",
    "like_pattern",
    "member",
    "month_key",
    "month_range",
    "month_series",
    "month_span",
    "percentages",
    "search_filter",
    "series_points",
]
