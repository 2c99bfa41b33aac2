"""The insight's pure rules: percentages that add up to 100 by largest remainder, totals by
category and by month that add up to the rows they come from (months zero-filled), the
search filter's refusals naming their field, the ILIKE escaping and the search cursor."""

from __future__ import annotations

import base64
import itertools
import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.payments.messages import MAX_AMOUNT
from actors.runtime import InvalidCursor
from actors.runtime.bounds import EARLIEST_DAY, LATEST_DAY
from actors.splits.insight import (
    CURSOR_MAX,
    MONTHS_MAX,
    SUGGESTED_CATEGORIES,
    InsightView,
    InvalidSearch,
    SearchCursor,
    SearchFilter,
    TotalRow,
    category_series,
    insight,
    known_categories,
    like_pattern,
    member,
    month_key,
    month_range,
    month_series,
    month_span,
    percentages,
    search_filter,
    series_points,
)
from transport import Codec, Envelope

MEMBERS = {"ada", "bo"}
CATEGORIES = known_categories(["pets"])

amounts = st.integers(min_value=0, max_value=MAX_AMOUNT)
months = st.dates(EARLIEST_DAY, LATEST_DAY).map(month_key)
rows = st.lists(
    st.builds(
        TotalRow,
        currency=st.sampled_from(["EUR", "USD", "JPY"]),
        key=st.sampled_from(["food", "rent", "fun", "travel", "general"]),
        amount=amounts,
        count=st.integers(min_value=1, max_value=1000),
    ),
    max_size=30,
)
month_rows = st.lists(
    st.builds(
        TotalRow,
        currency=st.sampled_from(["EUR", "USD"]),
        key=st.dates(date(2020, 1, 1), date(2027, 12, 31)).map(month_key),
        amount=amounts,
        count=st.integers(min_value=1, max_value=1000),
    ),
    max_size=30,
)


# ── percentages ───────────────────────────────────────────────────────────────────────


@given(st.lists(amounts, min_size=1, max_size=40))
def test_percentages_add_up_to_exactly_100(values: list[int]) -> None:
    """Whatever the amounts, their percentages add up to 100 (0 when all are zero), each
    within one point of its exact share, and a zero amount gets zero."""
    shares = percentages(values)
    total = sum(values)
    assert sum(shares) == (100 if total else 0)
    for value, share in zip(values, shares, strict=True):
        if total:
            assert abs(share - value * 100 / total) < 1
        if value == 0:
            assert share == 0


@given(st.lists(amounts, min_size=1, max_size=40))
def test_a_larger_amount_never_gets_a_smaller_percentage(values: list[int]) -> None:
    """Largest remainder keeps the order: more money is never fewer percent."""
    shares = percentages(values)
    for i, j in itertools.permutations(range(len(values)), 2):
        if values[i] > values[j]:
            assert shares[i] >= shares[j]


def test_percentages_give_the_leftover_points_to_the_largest_remainders() -> None:
    """Thirds are 34/33/33 (the earliest wins the tie); 1:1:2 is exact; nothing is 0s."""
    assert percentages([1, 1, 1]) == [34, 33, 33]
    assert percentages([1, 1, 2]) == [25, 25, 50]
    assert percentages([2, 3, 5, 990]) == [0, 0, 1, 99]
    assert percentages([0, 0]) == [0, 0]
    assert percentages([]) == []
    assert percentages([1, 2], whole=10_000) == [3333, 6667]


def test_percentages_of_a_negative_amount_are_refused() -> None:
    """A negative amount is a programming error, never a silent wrong chart."""
    with pytest.raises(ValueError, match="negative"):
        percentages([5, -1])


# ── totals ────────────────────────────────────────────────────────────────────────────


@given(rows)
def test_category_totals_equal_the_sum_of_the_rows(given_rows: list[TotalRow]) -> None:
    """Per currency, the series' total and count are the rows' sums, its slices add up to
    them, each category appears once, largest first, and its percents add up to 100."""
    series = category_series(given_rows)
    assert [one.currency for one in series] == sorted({row.currency for row in given_rows})
    for one in series:
        mine = [row for row in given_rows if row.currency == one.currency]
        assert one.total == sum(row.amount for row in mine)
        assert one.count == sum(row.count for row in mine)
        assert sum(piece.amount for piece in one.slices) == one.total
        assert sum(piece.count for piece in one.slices) == one.count
        keys = [piece.key for piece in one.slices]
        assert sorted(keys) == sorted({row.key for row in mine})
        assert [piece.amount for piece in one.slices] == sorted(
            (piece.amount for piece in one.slices), reverse=True
        )
        assert sum(piece.percent for piece in one.slices) == (100 if one.total else 0)


@given(month_rows, st.one_of(st.none(), months), st.one_of(st.none(), months))
def test_month_totals_equal_the_sum_of_the_rows_with_every_month_present(
    given_rows: list[TotalRow], first: str | None, last: str | None
) -> None:
    """Each currency's months run without a gap, oldest first, over at least the rows'
    months; their amounts add up to the rows' and their percents to 100."""
    series = month_series(given_rows, first, last)
    if not given_rows:
        assert series == []
        return
    spans = {tuple(piece.key for piece in one.slices) for one in series}
    assert len(spans) == 1  # every currency over the same months: the charts line up
    (keys,) = spans
    assert list(keys) == month_range(keys[0], keys[-1])
    assert {row.key for row in given_rows} <= set(keys)
    for one in series:
        mine = [row for row in given_rows if row.currency == one.currency]
        assert one.total == sum(row.amount for row in mine) == sum(p.amount for p in one.slices)
        assert one.count == sum(row.count for row in mine)
        assert sum(piece.percent for piece in one.slices) == (100 if one.total else 0)


def test_months_are_zero_filled_over_the_filter_dates() -> None:
    """A filter from November to February shows all four months, zero where nothing was
    spent, and the group's currency first."""
    found = [
        TotalRow("USD", "2025-12", 500, 1),
        TotalRow("EUR", "2025-12", 1000, 2),
        TotalRow("EUR", "2026-02", 3000, 1),
    ]
    criteria = SearchFilter(date_from=date(2025, 11, 3), date_to=date(2026, 2, 27))
    view = insight([], found, criteria, primary="USD")
    assert [one.currency for one in view.by_month] == ["USD", "EUR"]
    eur = view.by_month[1]
    assert [(p.key, p.amount, p.count, p.percent) for p in eur.slices] == [
        ("2025-11", 0, 0, 0),
        ("2025-12", 1000, 2, 25),
        ("2026-01", 0, 0, 0),
        ("2026-02", 3000, 1, 75),
    ]
    assert series_points(eur) == [
        ("2025-11", 0),
        ("2025-12", 1000),
        ("2026-01", 0),
        ("2026-02", 3000),
    ]


def test_a_filter_from_1900_does_not_draw_two_hundred_years() -> None:
    """A range wider than MONTHS_MAX months shrinks to the months that have data."""
    found = [TotalRow("EUR", "2026-01", 100, 1), TotalRow("EUR", "2026-03", 100, 1)]
    series = month_series(found, "1900-01", "2099-12")
    assert [p.key for p in series[0].slices] == ["2026-01", "2026-02", "2026-03"]
    assert len(month_series(found, "2020-01", None)[0].slices) == 75 <= MONTHS_MAX


def test_rows_of_the_same_key_are_added_not_replaced() -> None:
    """Two rows for one category (a store that groups more finely) add up."""
    (series,) = category_series([TotalRow("EUR", "food", 5, 1), TotalRow("EUR", "food", 7, 2)])
    assert [(p.key, p.amount, p.count, p.percent) for p in series.slices] == [("food", 12, 3, 100)]


def test_an_insight_crosses_the_codec() -> None:
    """The insight's shapes are messages: encoded and decoded as they are."""
    view = insight(
        [TotalRow("EUR", "food", 300, 2)],
        [TotalRow("EUR", "2026-03", 300, 2)],
        SearchFilter(),
        person="ada",
    )
    codec = Codec()
    codec.register(InsightView)
    envelope = Envelope(id="1", target="splits", shard=0, kind="reply", body=view)
    assert codec.decode(codec.encode(envelope)).body == view


# ── months ────────────────────────────────────────────────────────────────────────────


@given(st.dates(EARLIEST_DAY, LATEST_DAY), st.integers(min_value=0, max_value=400))
def test_a_month_range_counts_every_month_once(start: date, days: int) -> None:
    """From one day's month to a later day's: as many keys as month_span says, each the
    next month of the one before, starting and ending where asked."""
    end = min(start + timedelta(days=days), LATEST_DAY)
    keys = month_range(month_key(start), month_key(end))
    assert len(keys) == month_span(month_key(start), month_key(end))
    assert keys[0] == month_key(start)
    assert keys[-1] == month_key(end)
    assert keys == sorted(set(keys))
    assert all(re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", key) for key in keys)


def test_month_keys_and_ranges_at_their_edges() -> None:
    """December turns into January; a backwards range is empty; a bad key is refused."""
    assert month_key(date(1900, 1, 31)) == "1900-01"
    assert month_range("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert month_range("2026-02", "2026-01") == []
    for bad in ("2026-13", "2026-1", "26-01", "2026/01", "abcd-ef"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            month_range(bad, "2026-01")


# ── the filter ────────────────────────────────────────────────────────────────────────


def _filter(**fields: object) -> SearchFilter:
    return search_filter(members=MEMBERS, categories=CATEGORIES, **fields)  # type: ignore[arg-type]


def test_a_filter_is_cleaned_as_expenses_are_stored() -> None:
    """Whitespace collapses, blank means no filter, the category is lower case, the dates
    are days."""
    criteria = _filter(
        text="  Pizza   night ",
        category=" Food ",
        person="bo",
        currency="EUR",
        date_from="2026-01-01",
        date_to="2026-01-31",
        amount_min=0,
        amount_max=5000,
    )
    assert criteria == SearchFilter(
        text="Pizza night",
        category="food",
        person="bo",
        currency="EUR",
        date_from=date(2026, 1, 1),
        date_to=date(2026, 1, 31),
        amount_min=0,
        amount_max=5000,
    )
    assert criteria.months == ("2026-01", "2026-01")
    assert _filter(text="   ", category="", person="", currency="", date_from="") == SearchFilter()
    assert _filter(category="PETS").category == "pets"  # one the group uses
    assert SUGGESTED_CATEGORIES <= CATEGORIES


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"text": "x" * 101}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-31"}, "date_to"),
        ({"date_from": "2026-2-1"}, "date_from"),
        ({"date_to": "2026-02-30"}, "date_to"),
        ({"date_from": "1899-12-31"}, "date_from"),
        ({"date_to": "2100-01-01"}, "date_to"),
        ({"amount_min": -1}, "amount_min"),
        ({"amount_max": -5}, "amount_max"),
        ({"amount_min": 10, "amount_max": 9}, "amount_max"),
        ({"amount_max": MAX_AMOUNT + 1}, "amount_max"),
        ({"amount_min": True}, "amount_min"),
        ({"category": "cars"}, "category"),
        ({"person": "eve"}, "person"),
        ({"currency": "eur"}, "currency"),
    ],
)
def test_a_wrong_filter_is_refused_naming_its_field(fields: dict[str, object], field: str) -> None:
    """Each refusal is InvalidSearch (code invalid_search) with the field it is about."""
    with pytest.raises(InvalidSearch) as refused:
        _filter(**fields)
    assert refused.value.code == "invalid_search"
    assert refused.value.details == {"field": field}
    assert refused.value.message


def test_whose_shares_must_be_a_member() -> None:
    """A member is taken, blank is nobody, anyone else is refused naming the field."""
    assert member("bo", MEMBERS, "shares_of") == "bo"
    assert member("", MEMBERS, "shares_of") is None
    assert member(None, MEMBERS, "shares_of") is None
    with pytest.raises(InvalidSearch) as refused:
        member("eve", MEMBERS, "shares_of")
    assert refused.value.details == {"field": "shares_of"}


def test_limits_themselves_are_allowed() -> None:
    """100 characters, one day from and to, min equal to max, zero: all fine."""
    criteria = _filter(
        text="x" * 100,
        date_from="2026-01-01",
        date_to="2026-01-01",
        amount_min=0,
        amount_max=0,
    )
    assert criteria.text == "x" * 100
    assert criteria.amount_max == 0


@given(st.text(max_size=120))
def test_any_text_is_taken_or_refused_as_text(text: str) -> None:
    """Whatever is typed, it is searched collapsed, or refused naming `text` when that is
    too long or holds a control character."""
    cleaned = " ".join(text.split())
    if len(cleaned) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        with pytest.raises(InvalidSearch) as refused:
            _filter(text=text)
        assert refused.value.details == {"field": "text"}
    else:
        assert _filter(text=text).text == (cleaned or None)


def test_wildcards_in_the_text_are_taken_literally() -> None:
    """`%`, `_` and the escape character itself match only themselves."""
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"
    assert SearchFilter(text="a_b").pattern == "%a\\_b%"
    assert SearchFilter().pattern is None


@given(st.text(min_size=1, max_size=100))
def test_an_escaped_pattern_matches_exactly_its_own_text(text: str) -> None:
    """Read back as LIKE reads it, the pattern is its text between two `%`."""
    pattern = like_pattern(text)
    assert pattern.startswith("%")
    assert pattern.endswith("%")
    inner, literal, index = pattern[1:-1], [], 0
    while index < len(inner):
        if inner[index] == "\\":
            index += 1
        else:
            assert inner[index] not in "%_"  # an unescaped wildcard would match too much
        literal.append(inner[index])
        index += 1
    assert "".join(literal) == text


# ── the cursor ────────────────────────────────────────────────────────────────────────


@given(
    st.dates(EARLIEST_DAY, LATEST_DAY),
    st.datetimes(timezones=st.just(UTC)),
    st.text(min_size=1, max_size=200),
)
def test_a_cursor_reads_back_as_it_was_made(day: date, created: datetime, ident: str) -> None:
    """Encode then decode gives the same position, its time with its zone."""
    cursor = SearchCursor(day, created, ident)
    assert SearchCursor.decode(cursor.encode()) == cursor


def _raw(value: object) -> str:
    """`value` encoded as a cursor is, whatever it holds."""
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        "x" * 2001,
        "é",
        _raw([]),
        _raw(["2026-01-01", "2026-01-01T00:00:00+00:00", "e1"]),  # not ours: words
        _raw([0, 0, "e1"]),  # day 0 is before 0001-01-01
        _raw([739_000, 10**30, "e1"]),  # a time past year 9999
        _raw([739_000, 0, ""]),  # no id
        _raw([739_000, 0, "x" * 201]),
        _raw([739_000, 0, "e1", "more"]),
    ],
)
def test_a_cursor_we_did_not_give_out_is_refused(text: str) -> None:
    """Anything but an encoded position is invalid_cursor naming `cursor`."""
    with pytest.raises(InvalidCursor) as refused:
        SearchCursor.decode(text)
    assert refused.value.details == {"field": "cursor"}


def test_a_cursor_needs_an_aware_time() -> None:
    """A time with no zone has no one instant: refused when the cursor is made; another
    zone's time reads back as the same instant."""
    with pytest.raises(ValueError, match="aware"):
        SearchCursor(date(2026, 1, 1), datetime(2026, 1, 1), "e1")
    paris = datetime(2026, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))
    back = SearchCursor.decode(SearchCursor(date(2026, 1, 1), paris, "e1").encode())
    assert back is not None
    assert back.created_at == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_a_uuid_cursor_is_short() -> None:
    """A cursor of a UUID or a recurring copy's id stays within the edges' 200 characters."""
    ident = f"{uuid.uuid4()}@2026-03-01"
    cursor = SearchCursor(LATEST_DAY, datetime.max.replace(tzinfo=UTC), ident)
    assert len(cursor.encode()) < 120


def test_a_cursor_of_the_longest_id_is_taken_back() -> None:
    """An id of 200 characters that each take several bytes still makes a cursor that
    decodes (the length limit is above anything we give out)."""
    for ident in ("\u20ac" * 200, "\x01" * 200, "\U0001f355" * 200):
        cursor = SearchCursor(LATEST_DAY, datetime.max.replace(tzinfo=UTC), ident)
        assert len(cursor.encode()) <= CURSOR_MAX
        assert SearchCursor.decode(cursor.encode()) == cursor


def test_no_cursor_is_the_first_page() -> None:
    """None decodes to None: start at the newest."""
    assert SearchCursor.decode(None) is None
