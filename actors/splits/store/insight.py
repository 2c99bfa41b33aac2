"""Search and sums over a group's live expenses (splits_expenses, splits_expense_lines):
the statements behind the insight (`actors/splits/insight.py` holds their rules).

Each statement is put together from fixed fragments, one per filter field that is set, so
PostgreSQL plans the conditions it really has (no `$n IS NULL OR …`, which keeps a generic
plan from using a range on an index); every value travels as a parameter. A search pages
by keyset on (spent_on, created_at, id), newest date first: the next page starts strictly
after the last row of the one before, whatever was added in between.
"""

from __future__ import annotations

from typing import Any

from actors.runtime import Executor
from actors.splits.insight import SearchCursor, SearchFilter, TotalRow
from actors.splits.store.expenses import (
    _EXPENSE_COLUMNS,
    ExpenseRecord,
    _attach_lines,
    _expense,
)


class _Where:
    """A WHERE clause grown one condition at a time, numbering its parameters."""

    def __init__(self, group_id: str) -> None:
        self.conditions = ["e.group_id = $1", "e.deleted_at IS NULL"]
        self.values: list[Any] = [group_id]

    def param(self, value: Any) -> str:
        """The placeholder of `value`, added as the next parameter."""
        self.values.append(value)
        return f"${len(self.values)}"

    def add(self, fragment: str, *values: Any) -> None:
        """`fragment` with a placeholder for each `{}`, in order, one per value."""
        self.conditions.append(fragment.format(*(self.param(value) for value in values)))

    def sql(self) -> str:
        return " AND ".join(self.conditions)


def _where(group_id: str, criteria: SearchFilter) -> _Where:
    where = _Where(group_id)
    if criteria.pattern is not None:
        # the pattern escapes its own % and _ with a backslash (insight.like_pattern)
        where.add("e.description ILIKE {} ESCAPE '\\'", criteria.pattern)
    if criteria.person is not None:
        # a payer not among the sharers has a line too (paid > 0, sharing false);
        # the lines' key (expense_id, user_id) answers this per expense
        where.add(
            "EXISTS (SELECT 1 FROM splits_expense_lines p"
            " WHERE p.expense_id = e.id AND p.user_id = {})",
            criteria.person,
        )
    if criteria.category is not None:
        where.add("e.category = {}", criteria.category)
    if criteria.currency is not None:
        where.add("e.currency = {}", criteria.currency)
    if criteria.date_from is not None:
        where.add("e.spent_on >= {}", criteria.date_from)
    if criteria.date_to is not None:
        where.add("e.spent_on <= {}", criteria.date_to)
    if criteria.amount_min is not None:
        where.add("e.amount >= {}", criteria.amount_min)
    if criteria.amount_max is not None:
        where.add("e.amount <= {}", criteria.amount_max)
    return where


async def search_expenses(
    db: Executor,
    group_id: str,
    criteria: SearchFilter,
    limit: int,
    cursor: SearchCursor | None,
) -> list[ExpenseRecord]:
    """The group's live expenses that match, newest date first (then newest created, then
    id), at most `limit` (ask for one more to know whether there is a next page), after
    `cursor` when given, with their payers and shares."""
    where = _where(group_id, criteria)
    if cursor is not None:
        # a row comparison: an index on (group_id, spent_on, created_at, id) seeks to it
        where.add(
            "(e.spent_on, e.created_at, e.id) < ({}, {}, {})",
            cursor.spent_on,
            cursor.created_at,
            cursor.id,
        )
    rows = await db.fetch(
        f"SELECT {_EXPENSE_COLUMNS} FROM splits_expenses e WHERE {where.sql()}"
        " ORDER BY e.spent_on DESC, e.created_at DESC, e.id DESC"
        f" LIMIT {where.param(limit)}",
        *where.values,
    )
    return await _attach_lines(db, [_expense(row) for row in rows])


def cursor_after(expense: ExpenseRecord) -> SearchCursor:
    """The cursor of the page that follows `expense` (the last of a page)."""
    return SearchCursor(expense.spent_on, expense.created_at, expense.id)


async def _totals(
    db: Executor, group_id: str, criteria: SearchFilter, key: str, share_of: str | None
) -> list[TotalRow]:
    where = _where(group_id, criteria)
    if share_of is None:
        source, amount = "splits_expenses e", "e.amount"
    else:
        # the person's own shares: their line among the sharers (a share may be 0)
        source = (
            "splits_expenses e JOIN splits_expense_lines s ON s.expense_id = e.id"
            f" AND s.sharing AND s.user_id = {where.param(share_of)}"
        )
        amount = "s.owed"
    rows = await db.fetch(
        f"SELECT e.currency, {key} AS key, sum({amount}) AS amount, count(*) AS count"
        f" FROM {source} WHERE {where.sql()} GROUP BY 1, 2 ORDER BY 1, 2",
        *where.values,
    )
    # sum(bigint) is numeric: exact, so int() of it is too
    return [TotalRow(row["currency"], row["key"], int(row["amount"]), row["count"]) for row in rows]


async def totals_by_category(
    db: Executor, group_id: str, criteria: SearchFilter, *, share_of: str | None = None
) -> list[TotalRow]:
    """Per currency and category: the sum and count of the matching expenses, or (with
    `share_of`) of that member's own shares of those they share."""
    return await _totals(db, group_id, criteria, "e.category", share_of)


async def totals_by_month(
    db: Executor, group_id: str, criteria: SearchFilter, *, share_of: str | None = None
) -> list[TotalRow]:
    """Per currency and month (`YYYY-MM`), as `totals_by_category`; months with nothing
    are absent (insight.month_series fills them in)."""
    return await _totals(db, group_id, criteria, "to_char(e.spent_on, 'YYYY-MM')", share_of)


async def categories(db: Executor, group_id: str) -> list[str]:
    """Every category the group's live expenses use, in order."""
    rows = await db.fetch(
        "SELECT DISTINCT category FROM splits_expenses"
        " WHERE group_id = $1 AND deleted_at IS NULL ORDER BY category",
        group_id,
    )
    return [row["category"] for row in rows]
