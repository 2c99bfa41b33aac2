"""The splits rules at the edges of their bounds: days from 1900-01-01 to 2099-12-31, the
next date of a recurring expense (never an error, ending with 2099), and how far back a
catch-up goes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.runtime.bounds import EARLIEST_DAY, LATEST_DAY
from actors.splits import rules
from actors.splits.messages import InvalidExpense

RECURRENCES = ("weekly", "monthly", "yearly")
TODAY = date(2026, 3, 1)


@given(st.dates(), st.sampled_from(RECURRENCES))
def test_the_next_date_never_raises_and_stays_within_2099(day: date, recurrence: str) -> None:
    """For any day at all (9999-12-31 included), the next date is later and at most
    2099-12-31, or None: the series has ended."""
    following = rules.next_occurrence(day, recurrence)
    if following is not None:
        assert day < following <= LATEST_DAY


def test_every_series_ends_with_2099() -> None:
    """The last day in range and the far future have no next date; the day before the
    last still has one (the last)."""
    assert rules.next_occurrence(date(9999, 12, 31), "yearly") is None
    assert rules.next_occurrence(LATEST_DAY, "weekly") is None
    assert rules.next_occurrence(date(2099, 12, 24), "weekly") == LATEST_DAY
    assert rules.next_occurrence(date(2099, 11, 30), "monthly") == date(2099, 12, 30)
    assert rules.next_occurrence(date(2099, 1, 1), "yearly") is None


def test_a_catch_up_starts_at_most_366_days_back() -> None:
    """A series due since 1900 resumes at its first date within the last 366 days; one due
    lately is left as it is; an ended one stays ended."""
    assert rules.catch_up_from(date(1900, 1, 1), "monthly", TODAY) == date(2025, 3, 1)
    assert rules.catch_up_from(date(1900, 3, 1), "yearly", TODAY) == date(2025, 3, 1)
    assert rules.catch_up_from(date(2026, 1, 15), "weekly", TODAY) == date(2026, 1, 15)
    assert rules.catch_up_from(None, "weekly", TODAY) is None


@given(
    st.dates(EARLIEST_DAY, LATEST_DAY),
    st.sampled_from(RECURRENCES),
    st.dates(date(2000, 1, 1), LATEST_DAY),
)
def test_a_catch_up_never_goes_back_more_than_a_year(
    due: date, recurrence: str, today: date
) -> None:
    """Whatever is due, the catch-up's first date is `due` itself or a later date of the
    series, and none lies more than CATCH_UP_DAYS before today."""
    start = rules.catch_up_from(due, recurrence, today)
    if start is None:
        return
    assert start >= due
    assert start == due or start >= today - timedelta(days=rules.CATCH_UP_DAYS)


@pytest.mark.parametrize("value", ["1899-12-31", "2100-01-01", "0001-01-01", "9999-12-31"])
def test_a_day_outside_1900_to_2099_is_refused_naming_the_date(value: str) -> None:
    """An expense day before 1900 or after 2099 is InvalidExpense naming `date`."""
    with pytest.raises(InvalidExpense) as refused:
        rules.spent_on(value, TODAY)
    assert refused.value.details["field"] == "date"


def test_the_first_and_last_day_are_accepted() -> None:
    """1900-01-01 and 2099-12-31 are days an expense may have."""
    assert rules.spent_on("1900-01-01", TODAY) == EARLIEST_DAY
    assert rules.spent_on("2099-12-31", TODAY) == LATEST_DAY
