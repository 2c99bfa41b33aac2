"""The CSV export of a group's expenses: pure, no IO."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date

from actors.payments.messages import format_money


def decimal(amount_minor: int, currency_code: str) -> str:
    """The amount as a number in the currency's own decimals (12.50, 1200), no code."""
    return format_money(amount_minor, currency_code).split(" ")[0]


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


def people_of(rows: Sequence[ExportRow], members: Sequence[str]) -> list[str]:
    """The members, then anyone else an expense names (a former member), in order."""
    people = list(members)
    for row in rows:
        for user, _ in (*row.payers, *row.shares):
            if user not in people:
                people.append(user)
    return people


def export_csv(
    rows: Sequence[ExportRow], members: Sequence[str], names: Mapping[str, str] | None = None
) -> str:
    """Every expense with who paid and each person's share, one column per person, people
    shown by name (two people of one name are told apart by the start of their ids)."""
    people = people_of(rows, members)
    shown = _labels(people, names or {})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["expense_id", "date", "description", "category", "currency", "amount", "paid_by"]
        + [f"share:{_cell(shown[user])}" for user in people]
    )
    for row in rows:
        owed = dict(row.shares)
        paid_by = ";".join(
            f"{_cell(shown.get(user, user))}={decimal(paid, row.currency)}"
            for user, paid in row.payers
        )
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


def _labels(people: Sequence[str], names: Mapping[str, str]) -> dict[str, str]:
    """Each person's column label: their name, or the id when the name is unknown."""
    taken = Counter(names.get(user, user) for user in people)
    labels = {}
    for user in people:
        name = names.get(user, user)
        labels[user] = name if taken[name] == 1 else f"{name} ({user[:8]})"
    return labels
