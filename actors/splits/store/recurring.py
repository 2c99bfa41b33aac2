"""Recurring expenses' ends and the active series, a group's simplify switch, and what the
direct plan is read from (splits_recurring_ends, splits_groups.simplify, and the expenses'
and settlements' rows)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from actors.runtime import Executor


async def end_of(db: Executor, expense_id: str) -> tuple[date | None, int | None] | None:
    """(until, times) of a recurring expense that ends; None when it has no end."""
    row = await db.fetchrow(
        "SELECT until, times FROM splits_recurring_ends WHERE expense_id = $1", expense_id
    )
    return None if row is None else (row["until"], row["times"])


async def set_end(
    db: Executor, expense_id: str, until: date | None, times: int | None, *, replace: bool
) -> None:
    """Give the expense its end (`replace`: over any it had; else only if it had none);
    neither `until` nor `times`: no end."""
    if until is None and times is None:
        if replace:
            await db.execute("DELETE FROM splits_recurring_ends WHERE expense_id = $1", expense_id)
        return
    conflict = (
        "DO UPDATE SET until = EXCLUDED.until, times = EXCLUDED.times"
        if replace
        else ("DO NOTHING")
    )
    await db.execute(
        "INSERT INTO splits_recurring_ends (expense_id, until, times) VALUES ($1, $2, $3)"
        f" ON CONFLICT (expense_id) {conflict}",
        expense_id,
        until,
        times,
    )


async def active(db: Executor, group_id: str) -> list[Any]:
    """The group's live recurring expenses with a copy still to come, soonest first, with
    their end and how many copies they made."""
    return await db.fetch(
        "SELECT e.id, e.description, e.amount, e.currency, e.recurrence, e.spent_on,"
        " e.next_due, e.created_by, r.until, r.times,"
        " (SELECT count(*) FROM splits_expenses c WHERE c.recurring_from = e.id) AS copies"
        " FROM splits_expenses e LEFT JOIN splits_recurring_ends r ON r.expense_id = e.id"
        " WHERE e.group_id = $1 AND e.deleted_at IS NULL AND e.recurrence IS NOT NULL"
        " AND e.next_due IS NOT NULL ORDER BY e.next_due, e.id",
        group_id,
    )


async def copies_of(db: Executor, expense_id: str) -> int:
    """How many copies of the expense were made (deleted ones too)."""
    return int(
        await db.fetchval(
            "SELECT count(*) FROM splits_expenses WHERE recurring_from = $1", expense_id
        )
    )


async def stop(db: Executor, expense_id: str, now: datetime) -> None:
    """No more copies: the expense recurs no longer (a new version of it)."""
    await db.execute(
        "UPDATE splits_expenses SET recurrence = NULL, next_due = NULL,"
        " version = version + 1, updated_at = $2 WHERE id = $1",
        expense_id,
        now,
    )


async def simplify(db: Executor, group_id: str) -> bool:
    """Whether the group's plan is simplified (True for a group with no such row)."""
    value = await db.fetchval("SELECT simplify FROM splits_groups WHERE id = $1", group_id)
    return True if value is None else bool(value)


async def set_simplify(db: Executor, group_id: str, value: bool) -> None:
    """Switch the plan, and forget the kept plans so the next read makes a fresh one."""
    await db.execute("UPDATE splits_groups SET simplify = $2 WHERE id = $1", group_id, value)
    await db.execute("DELETE FROM splits_plans WHERE group_id = $1", group_id)


async def movements(db: Executor, group_id: str) -> list[tuple[str, Any]]:
    """(currency, (payers, shares)) of every live expense and completed settlement of the
    group: what the direct plan is made from."""
    rows = await db.fetch(
        "SELECT e.id, e.currency, l.user_id, l.paid, l.owed, l.sharing"
        " FROM splits_expenses e JOIN splits_expense_lines l ON l.expense_id = e.id"
        " WHERE e.group_id = $1 AND e.deleted_at IS NULL ORDER BY e.id, l.position",
        group_id,
    )
    by_expense: dict[str, tuple[str, list[tuple[str, int]], list[tuple[str, int]]]] = {}
    for row in rows:
        _, payers, shares = by_expense.setdefault(row["id"], (row["currency"], [], []))
        if row["paid"]:
            payers.append((row["user_id"], row["paid"]))
        if row["sharing"]:
            shares.append((row["user_id"], row["owed"]))
    found: list[tuple[str, Any]] = [
        (currency, (payers, shares)) for currency, payers, shares in by_expense.values()
    ]
    for row in await db.fetch(
        "SELECT from_user_id, to_user_id, amount, currency FROM splits_settlements"
        " WHERE group_id = $1 AND status = 'completed'",
        group_id,
    ):
        found.append(
            (
                row["currency"],
                (((row["from_user_id"], row["amount"]),), ((row["to_user_id"], row["amount"]),)),
            )
        )
    return found
