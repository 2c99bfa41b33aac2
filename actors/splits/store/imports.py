"""A Splitwise import written in bulk, and the reads of the JSON export (splits_expenses,
splits_expense_lines, splits_settlements, splits_comments).

An import writes thousands of rows: one statement per chunk for the expenses, one for their
lines and one for the settlements (arrays unnested server-side), each `ON CONFLICT (id) DO
NOTHING` so a second run of the same file (the same derived ids) adds nothing. The kept
balances are moved by the caller with `balances.apply_deltas`, for the rows that were new.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from actors.runtime import Executor
from actors.splits.import_mapping import ImportedExpense, ImportedSettlement


async def existing(db: Executor, expense_ids: Sequence[str], settlement_ids: Sequence[str]) -> int:
    """How many of these expenses and settlements are stored already."""
    found = await db.fetchval(
        "SELECT (SELECT count(*) FROM splits_expenses WHERE id = ANY($1::text[]))"
        " + (SELECT count(*) FROM splits_settlements WHERE id = ANY($2::text[]))",
        list(expense_ids),
        list(settlement_ids),
    )
    return int(found or 0)


async def insert_expenses(
    db: Executor,
    group_id: str,
    expenses: Sequence[ImportedExpense],
    created_by: str,
    now: datetime,
) -> list[ImportedExpense]:
    """Store the expenses (split `exact`) with their lines; the ones that were new (an id
    stored before is left as it is)."""
    if not expenses:
        return []
    rows = await db.fetch(
        """
        INSERT INTO splits_expenses (id, group_id, description, amount, currency, spent_on,
            category, split_mode, split_input, created_by, created_at, updated_at, version)
        SELECT e.id, $1, e.description, e.amount, e.currency, e.spent_on, e.category, 'exact',
            e.split_input::jsonb, $2, $3, $3, 1
        FROM unnest($4::text[], $5::text[], $6::bigint[], $7::text[], $8::date[], $9::text[],
            $10::text[]) WITH ORDINALITY
            AS e(id, description, amount, currency, spent_on, category, split_input, n)
        ORDER BY e.n
        ON CONFLICT (id) DO NOTHING RETURNING id
        """,
        group_id,
        created_by,
        now,
        [e.expense_id for e in expenses],
        [e.description for e in expenses],
        [e.amount for e in expenses],
        [e.currency for e in expenses],
        [date.fromisoformat(e.date) for e in expenses],
        [e.category for e in expenses],
        [
            json.dumps([{"user_id": user, "amount": owed} for user, owed in e.shares])
            for e in expenses
        ],
    )
    new = {row["id"] for row in rows}
    added = [e for e in expenses if e.expense_id in new]
    await _insert_lines(db, added)
    return added


async def _insert_lines(db: Executor, expenses: Sequence[ImportedExpense]) -> None:
    """Each expense's lines: the sharers in order, then payers with no share (as
    store.expenses writes them)."""
    ids: list[str] = []
    users: list[str] = []
    paid: list[int] = []
    owed: list[int] = []
    sharing: list[bool] = []
    positions: list[int] = []
    for expense in expenses:
        paid_by = dict(expense.paid_by)
        shares = dict(expense.shares)
        people = [user for user, _ in expense.shares]
        people += [user for user, _ in expense.paid_by if user not in shares]
        for position, user in enumerate(people):
            ids.append(expense.expense_id)
            users.append(user)
            paid.append(paid_by.get(user, 0))
            owed.append(shares.get(user, 0))
            sharing.append(user in shares)
            positions.append(position)
    if not ids:
        return
    await db.execute(
        """
        INSERT INTO splits_expense_lines (expense_id, user_id, paid, owed, sharing, position)
        SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bool[],
            $6::int[])
        """,
        ids,
        users,
        paid,
        owed,
        sharing,
        positions,
    )


async def insert_settlements(
    db: Executor, group_id: str, settlements: Sequence[ImportedSettlement], now: datetime
) -> list[ImportedSettlement]:
    """Store the settlements as completed cash payments made on their day; the ones that
    were new."""
    if not settlements:
        return []
    rows = await db.fetch(
        """
        INSERT INTO splits_settlements (id, group_id, from_user_id, to_user_id, amount,
            currency, method, status, created_at, settled_at)
        SELECT s.id, $1, s.from_user_id, s.to_user_id, s.amount, s.currency, 'cash',
            'completed', $2, s.settled_at
        FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
            $8::timestamptz[]) WITH ORDINALITY
            AS s(id, from_user_id, to_user_id, amount, currency, settled_at, n)
        ORDER BY s.n
        ON CONFLICT (id) DO NOTHING RETURNING id
        """,
        group_id,
        now,
        [s.settlement_id for s in settlements],
        [s.from_user_id for s in settlements],
        [s.to_user_id for s in settlements],
        [s.amount for s in settlements],
        [s.currency for s in settlements],
        [datetime.combine(date.fromisoformat(s.date), time(12), UTC) for s in settlements],
    )
    new = {row["id"] for row in rows}
    return [s for s in settlements if s.settlement_id in new]


async def settlements_of(db: Executor, group_id: str) -> list[Any]:
    """The group's completed settlements, oldest first (the export)."""
    return await db.fetch(
        "SELECT id, from_user_id, to_user_id, amount, currency, method, settled_at"
        " FROM splits_settlements WHERE group_id = $1 AND status = 'completed'"
        " ORDER BY settled_at, created_at, id",
        group_id,
    )


async def comments_of(db: Executor, group_id: str) -> list[Any]:
    """Every comment in the group, oldest first (the export)."""
    return await db.fetch(
        "SELECT id, expense_id, user_id, body, created_at FROM splits_comments"
        " WHERE group_id = $1 ORDER BY created_at, id",
        group_id,
    )
