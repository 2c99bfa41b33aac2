"""Expenses with their payers' and sharers' lines, their history and the recurring ones'
next dates (splits_expenses, splits_expense_lines, splits_expense_history).

An expense in another currency than its group's keeps its rate and its amount in the
group's currency, and its lines their converted amounts (`group_payers`, `group_shares`);
an itemized bill keeps its items (as given and as priced), tax, tip and spread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from actors.runtime import Executor


@dataclass(slots=True)
class ExpenseRecord:
    """An expense with its payers and shares, as stored."""

    id: str
    group_id: str
    description: str
    amount: int
    currency: str
    spent_on: date
    category: str
    split_mode: str
    split_input: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int = 1
    recurrence: str | None = None
    next_due: date | None = None
    recurring_from: str | None = None
    deleted: bool = False
    seq: int = 0
    payers: list[tuple[str, int]] = field(default_factory=list)
    shares: list[tuple[str, int]] = field(default_factory=list)
    # another currency than the group's: the rate (group currency per 1 unit), where it
    # came from, its day, the amount and the lines in the group's currency (all None
    # when the expense has no rate)
    rate: Decimal | None = None
    rate_source: str | None = None
    rate_day: date | None = None
    group_amount: int | None = None
    group_payers: list[tuple[str, int]] | None = None
    group_shares: list[tuple[str, int]] | None = None
    # an itemized bill (split_mode "items"): each item as given and priced, tax, tip, spread
    items: list[dict[str, Any]] | None = None
    tax: int | None = None
    tip: int | None = None
    spread: str | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "amount": self.amount,
            "currency": self.currency,
            "date": self.spent_on.isoformat(),
            "category": self.category,
            "split_mode": self.split_mode,
            "paid_by": [[user, paid] for user, paid in self.payers],
            "shares": [[user, owed] for user, owed in self.shares],
            "recurrence": self.recurrence,
            "rate": None if self.rate is None else str(self.rate),
            "rate_source": self.rate_source,
            "group_amount": self.group_amount,
            "items": self.items,
            "tax": self.tax,
            "tip": self.tip,
        }


_EXPENSE_COLUMNS = (
    "id, seq, group_id, description, amount, currency, spent_on, category, split_mode,"
    " split_input, created_by, created_at, updated_at, version, recurrence, next_due,"
    " recurring_from, deleted_at IS NOT NULL AS deleted,"
    " rate, rate_source, rate_day, group_amount, items, tax, tip, spread"
)


def _expense(row: Any) -> ExpenseRecord:
    return ExpenseRecord(
        id=row["id"],
        group_id=row["group_id"],
        description=row["description"],
        amount=row["amount"],
        currency=row["currency"],
        spent_on=row["spent_on"],
        category=row["category"],
        split_mode=row["split_mode"],
        split_input=json.loads(row["split_input"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        recurrence=row["recurrence"],
        next_due=row["next_due"],
        recurring_from=row["recurring_from"],
        deleted=row["deleted"],
        seq=row["seq"],
        rate=row["rate"],
        rate_source=row["rate_source"],
        rate_day=row["rate_day"],
        group_amount=row["group_amount"],
        items=None if row["items"] is None else json.loads(row["items"]),
        tax=row["tax"],
        tip=row["tip"],
        spread=row["spread"],
    )


async def _attach_lines(db: Executor, expenses: list[ExpenseRecord]) -> list[ExpenseRecord]:
    if not expenses:
        return expenses
    rows = await db.fetch(
        "SELECT expense_id, user_id, paid, owed, sharing, group_paid, group_owed"
        " FROM splits_expense_lines WHERE expense_id = ANY($1::text[])"
        " ORDER BY expense_id, position",
        [expense.id for expense in expenses],
    )
    by_id = {expense.id: expense for expense in expenses}
    for expense in expenses:
        if expense.rate is not None:
            expense.group_payers, expense.group_shares = [], []
    for row in rows:
        expense = by_id[row["expense_id"]]
        converted = expense.rate is not None
        if row["paid"]:
            expense.payers.append((row["user_id"], row["paid"]))
            if converted and expense.group_payers is not None:
                expense.group_payers.append((row["user_id"], row["group_paid"] or 0))
        if row["sharing"]:
            expense.shares.append((row["user_id"], row["owed"]))
            if converted and expense.group_shares is not None:
                expense.group_shares.append((row["user_id"], row["group_owed"] or 0))
    return expenses


async def insert_expense(db: Executor, expense: ExpenseRecord) -> bool:
    """Store a new expense and its lines; False if its id exists already."""
    seq = await db.fetchval(
        """
        INSERT INTO splits_expenses (id, group_id, description, amount, currency, spent_on,
            category, split_mode, split_input, created_by, created_at, updated_at, version,
            recurrence, next_due, recurring_from, rate, rate_source, rate_day, group_amount,
            items, tax, tip, spread)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16,
            $17, $18, $19, $20, $21::jsonb, $22, $23, $24)
        ON CONFLICT (id) DO NOTHING RETURNING seq
        """,
        expense.id,
        expense.group_id,
        expense.description,
        expense.amount,
        expense.currency,
        expense.spent_on,
        expense.category,
        expense.split_mode,
        json.dumps(expense.split_input),
        expense.created_by,
        expense.created_at,
        expense.updated_at,
        expense.version,
        expense.recurrence,
        expense.next_due,
        expense.recurring_from,
        *_money(expense),
    )
    if seq is None:
        return False
    expense.seq = seq
    await _write_lines(db, expense)
    return True


def _money(expense: ExpenseRecord) -> tuple[Any, ...]:
    """The expense's rate and items columns, in the order the statements list them."""
    return (
        expense.rate,
        expense.rate_source,
        expense.rate_day,
        expense.group_amount,
        None if expense.items is None else json.dumps(expense.items),
        expense.tax,
        expense.tip,
        expense.spread,
    )


async def _write_lines(db: Executor, expense: ExpenseRecord) -> None:
    paid = dict(expense.payers)
    owed = dict(expense.shares)
    users = [user for user, _ in expense.shares]
    users += [user for user, _ in expense.payers if user not in owed]
    # converted amounts only for an expense with a rate (NULL: as paid and owed, or apart)
    converted = expense.group_payers is not None and expense.group_shares is not None
    group_paid = dict(expense.group_payers or ())
    group_owed = dict(expense.group_shares or ())
    await db.execute(
        """
        INSERT INTO splits_expense_lines (expense_id, user_id, paid, owed, sharing, position,
            group_paid, group_owed)
        SELECT $1, l.user_id, l.paid, l.owed, l.sharing, l.n - 1, l.group_paid, l.group_owed
        FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bool[], $6::bigint[],
            $7::bigint[]) WITH ORDINALITY AS l(user_id, paid, owed, sharing, group_paid,
            group_owed, n)
        """,
        expense.id,
        users,
        [paid.get(user, 0) for user in users],
        [owed.get(user, 0) for user in users],
        [user in owed for user in users],
        [group_paid.get(user, 0) if converted else None for user in users],
        [group_owed.get(user, 0) if converted else None for user in users],
    )


async def update_expense(db: Executor, expense: ExpenseRecord) -> None:
    """Write the expense's new version (its fields and lines)."""
    await db.execute(
        """
        UPDATE splits_expenses SET description = $2, amount = $3, currency = $4,
            spent_on = $5, category = $6, split_mode = $7, split_input = $8::jsonb,
            updated_at = $9, version = $10, recurrence = $11, next_due = $12, rate = $13,
            rate_source = $14, rate_day = $15, group_amount = $16, items = $17::jsonb,
            tax = $18, tip = $19, spread = $20
        WHERE id = $1
        """,
        expense.id,
        expense.description,
        expense.amount,
        expense.currency,
        expense.spent_on,
        expense.category,
        expense.split_mode,
        json.dumps(expense.split_input),
        expense.updated_at,
        expense.version,
        expense.recurrence,
        expense.next_due,
        *_money(expense),
    )
    await db.execute("DELETE FROM splits_expense_lines WHERE expense_id = $1", expense.id)
    await _write_lines(db, expense)


async def mark_deleted(db: Executor, expense_id: str, now: datetime) -> None:
    await db.execute(
        "UPDATE splits_expenses SET deleted_at = $2, next_due = NULL, version = version + 1"
        " WHERE id = $1",
        expense_id,
        now,
    )


async def record_history(
    db: Executor, expense: ExpenseRecord, action: str, by: str, now: datetime
) -> None:
    """Keep the version an edit or deletion replaces."""
    await db.execute(
        "INSERT INTO splits_expense_history (expense_id, version, action, changed_by,"
        " changed_at, snapshot) VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        expense.id,
        expense.version,
        action,
        by,
        now,
        json.dumps(expense.snapshot()),
    )


async def expense(db: Executor, expense_id: str) -> ExpenseRecord | None:
    row = await db.fetchrow(
        f"SELECT {_EXPENSE_COLUMNS} FROM splits_expenses WHERE id = $1", expense_id
    )
    if row is None:
        return None
    return (await _attach_lines(db, [_expense(row)]))[0]


async def expense_page(
    db: Executor, group_id: str, limit: int, before_seq: int | None
) -> list[ExpenseRecord]:
    """Live expenses newest first, `limit` of them, older than `before_seq` when given."""
    rows = await db.fetch(
        f"SELECT {_EXPENSE_COLUMNS} FROM splits_expenses"
        " WHERE group_id = $1 AND deleted_at IS NULL AND ($2::bigint IS NULL OR seq < $2)"
        " ORDER BY seq DESC LIMIT $3",
        group_id,
        before_seq,
        limit,
    )
    return await _attach_lines(db, [_expense(row) for row in rows])


async def all_expenses(db: Executor, group_id: str) -> list[ExpenseRecord]:
    """Every live expense of the group, oldest first (the export)."""
    rows = await db.fetch(
        f"SELECT {_EXPENSE_COLUMNS} FROM splits_expenses"
        " WHERE group_id = $1 AND deleted_at IS NULL ORDER BY seq",
        group_id,
    )
    return await _attach_lines(db, [_expense(row) for row in rows])


async def due_recurring(db: Executor, today: date, limit: int = 500) -> list[tuple[str, str]]:
    """(group_id, expense_id) of recurring expenses whose next copy is due, in groups that
    are neither archived (read-only: copies resume when it is brought back) nor deleted."""
    rows = await db.fetch(
        "SELECT e.group_id, e.id FROM splits_expenses e"
        " JOIN splits_groups g ON g.id = e.group_id"
        " WHERE e.next_due IS NOT NULL AND e.next_due <= $1 AND e.deleted_at IS NULL"
        " AND g.archived_at IS NULL AND g.deleted_at IS NULL"
        " ORDER BY e.next_due LIMIT $2",
        today,
        limit,
    )
    return [(row["group_id"], row["id"]) for row in rows]


async def set_next_due(db: Executor, expense_id: str, next_due: date | None) -> None:
    await db.execute("UPDATE splits_expenses SET next_due = $2 WHERE id = $1", expense_id, next_due)
