"""Pure validation of the splits actor beside the share arithmetic: what a valid name,
description, date and currency are, and when a recurring expense comes again.
No IO."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, timedelta

from actors.payments.messages import CURRENCIES, MAX_AMOUNT
from actors.runtime.bounds import EARLIEST_DAY, LATEST_DAY
from actors.splits.messages import (
    CATEGORY_MAX,
    COMMENT_MAX,
    DESCRIPTION_MAX,
    InvalidExpense,
    MixedCurrencies,
)


def invalid(field: str, message: str) -> InvalidExpense:
    return InvalidExpense(message, details={"field": field})


def text(value: str, field: str, maximum: int) -> str:
    """Whitespace collapsed; 1..maximum characters with no control characters."""
    cleaned = " ".join(value.split())
    if not cleaned:
        raise invalid(field, f"{field} must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        raise invalid(field, f"{field} must not contain control characters")
    if len(cleaned) > maximum:
        raise invalid(field, f"{field} is longer than {maximum} characters")
    return cleaned


def group_name(value: str) -> str:
    return text(value, "name", 100)


def description(value: str) -> str:
    return text(value, "description", DESCRIPTION_MAX)


def category(value: str) -> str:
    return text(value, "category", CATEGORY_MAX).lower()


def comment(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise invalid("text", "a comment must not be empty")
    if len(stripped) > COMMENT_MAX or any(ord(c) < 32 and c not in "\n\t" for c in stripped):
        raise invalid("text", f"a comment is at most {COMMENT_MAX} printable characters")
    return stripped


def currency(value: str, field: str = "currency") -> str:
    if value not in CURRENCIES:
        raise invalid(field, f"{value!r} is not a currency we know (ISO 4217, upper case)")
    return value


def amount(value: int, field: str = "amount") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AMOUNT:
        raise invalid(field, f"{field} must be a whole number of minor units, 1 to {MAX_AMOUNT}")
    return value


def same_currency(expense_currency: str, others: Sequence[tuple[str, str]]) -> None:
    """Refuse a line (field, currency) in another currency than its expense."""
    for field, other in others:
        if other != expense_currency:
            raise MixedCurrencies(
                f"one expense is in one currency: {other} is not {expense_currency}",
                details={"field": field},
            )


def spent_on(value: str | None, today: date) -> date:
    if value is None:
        return today
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise invalid("date", "date must be YYYY-MM-DD") from None
    if len(value) != 10:
        raise invalid("date", "date must be YYYY-MM-DD")
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise invalid("date", f"date must be from {EARLIEST_DAY} to {LATEST_DAY}")
    return day


# A recurring expense's copies are made for at most this many days back: a series further
# behind (a start date long ago, a node that was down) resumes at its first date within
# them, so one expense makes at most a year of copies, never decades of them.
CATCH_UP_DAYS = 366


def next_occurrence(day: date, recurrence: str) -> date | None:
    """The same expense's next date: a week, a month (clamped to the month's last day) or
    a year later (29 February becomes 28 February); None once that would be past
    LATEST_DAY (2099-12-31), where every series ends. Never raises for a known recurrence,
    whatever the day (a stored 9999-12-31 has no next)."""
    if day >= LATEST_DAY:
        return None
    if recurrence == "weekly":
        following = day + timedelta(days=7)
    elif recurrence == "monthly":
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        following = date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
    elif recurrence == "yearly":
        last = calendar.monthrange(day.year + 1, day.month)[1]
        following = date(day.year + 1, day.month, min(day.day, last))
    else:
        raise ValueError(f"unknown recurrence {recurrence!r}")
    return following if following <= LATEST_DAY else None


def catch_up_from(due: date | None, recurrence: str, today: date) -> date | None:
    """The first date of a series to copy, from `due` on: `due` itself, or, when it lies
    more than CATCH_UP_DAYS before `today`, the series' first date within them."""
    oldest = today - timedelta(days=CATCH_UP_DAYS)
    while due is not None and due < oldest:
        due = next_occurrence(due, recurrence)
    return due
