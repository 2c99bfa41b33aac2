"""Pure rules of the splits actor beside the share arithmetic: what a valid name,
description, date and currency are, when a recurring expense comes again, how money reads
in a summary, and the CSV export. No IO."""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Sequence
from datetime import date, timedelta

from actors.payments.messages import CURRENCIES, MAX_AMOUNT
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
    return day


def next_occurrence(day: date, recurrence: str) -> date:
    """The same expense's next date: a week, a month (clamped to the month's last day) or
    a year later (29 February becomes 28 February)."""
    if recurrence == "weekly":
        return day + timedelta(days=7)
    if recurrence == "monthly":
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
    if recurrence == "yearly":
        last = calendar.monthrange(day.year + 1, day.month)[1]
        return date(day.year + 1, day.month, min(day.day, last))
    raise ValueError(f"unknown recurrence {recurrence!r}")


def money(amount_minor: int, currency_code: str) -> str:
    """12.50 EUR, 1200 JPY: integer arithmetic only."""
    exponent = CURRENCIES.get(currency_code, 2)
    sign = "-" if amount_minor < 0 else ""
    whole, part = divmod(abs(amount_minor), 10**exponent)
    shown = f"{whole}.{part:0{exponent}d}" if exponent else str(whole)
    return f"{sign}{shown} {currency_code}"


def decimal(amount_minor: int, currency_code: str) -> str:
    return money(amount_minor, currency_code).split(" ")[0]


class ExportRow:
    """One expense as the CSV export shows it."""

    __slots__ = ("amount", "category", "currency", "day", "description", "id", "payers", "shares")

    def __init__(
        self,
        *,
        id: str,
        day: date,
        description: str,
        category: str,
        amount: int,
        currency: str,
        payers: Sequence[tuple[str, int]],
        shares: Sequence[tuple[str, int]],
    ) -> None:
        self.id, self.day, self.description, self.category = id, day, description, category
        self.amount, self.currency, self.payers, self.shares = amount, currency, payers, shares


def export_csv(rows: Sequence[ExportRow], members: Sequence[str]) -> str:
    """Every expense with who paid and each person's share, one column per person."""
    people = list(members)
    for row in rows:
        for user, _ in (*row.payers, *row.shares):
            if user not in people:
                people.append(user)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["expense_id", "date", "description", "category", "currency", "amount", "paid_by"]
        + [f"share:{user}" for user in people]
    )
    for row in rows:
        owed = dict(row.shares)
        paid_by = ";".join(f"{user}={decimal(paid, row.currency)}" for user, paid in row.payers)
        writer.writerow(
            [row.id, row.day.isoformat(), _cell(row.description), _cell(row.category)]
            + [row.currency]
            + [decimal(row.amount, row.currency), paid_by]
            + [decimal(owed[user], row.currency) if user in owed else "" for user in people]
        )
    return out.getvalue()


def _cell(value: str) -> str:
    # a spreadsheet runs a cell that starts like a formula: keep user text text
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value
