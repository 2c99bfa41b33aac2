"""Every SQL statement of the splits actor, over its own tables (schema.sql's splits section).

Each function takes what runs the statement: the pool (autocommit) or an open
`Transaction`. Times are passed in; the actor's clock is the only one. A group's rows are
written by the one shard that owns the group, so nothing here locks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol


class Executor(Protocol):
    """An asyncpg pool or connection, or a runtime Transaction."""

    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


# ── groups and members ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: str
    name: str
    currency: str
    created_by: str
    created_at: datetime


def _group(row: Any) -> GroupRow:
    return GroupRow(row["id"], row["name"], row["currency"], row["created_by"], row["created_at"])


async def insert_group(
    db: Executor, group_id: str, name: str, currency: str, user_id: str, now: datetime
) -> bool:
    """Create the group with its creator as the first member; False if the id is taken."""
    created = await db.fetchval(
        "INSERT INTO splits_groups (id, name, currency, created_by, created_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING true",
        group_id,
        name,
        currency,
        user_id,
        now,
    )
    if created:
        await add_member(db, group_id, user_id, now)
    return bool(created)


async def group(db: Executor, group_id: str) -> GroupRow | None:
    row = await db.fetchrow("SELECT * FROM splits_groups WHERE id = $1", group_id)
    return None if row is None else _group(row)


async def groups_of(db: Executor, user_id: str) -> list[GroupRow]:
    rows = await db.fetch(
        "SELECT g.* FROM splits_groups g JOIN splits_members m ON m.group_id = g.id"
        " WHERE m.user_id = $1 ORDER BY g.created_at, g.id",
        user_id,
    )
    return [_group(row) for row in rows]


async def is_member(db: Executor, group_id: str, user_id: str) -> bool:
    found = await db.fetchval(
        "SELECT true FROM splits_members WHERE group_id = $1 AND user_id = $2", group_id, user_id
    )
    return bool(found)


async def members(db: Executor, group_ids: Sequence[str]) -> dict[str, list[tuple[str, datetime]]]:
    """(user_id, joined_at) per group, in joining order."""
    rows = await db.fetch(
        "SELECT group_id, user_id, joined_at FROM splits_members WHERE group_id = ANY($1::text[])"
        " ORDER BY joined_at, user_id",
        list(group_ids),
    )
    found: dict[str, list[tuple[str, datetime]]] = {group_id: [] for group_id in group_ids}
    for row in rows:
        found[row["group_id"]].append((row["user_id"], row["joined_at"]))
    return found


async def member_count(db: Executor, group_id: str) -> int:
    count = await db.fetchval("SELECT count(*) FROM splits_members WHERE group_id = $1", group_id)
    return int(count)


async def add_member(db: Executor, group_id: str, user_id: str, now: datetime) -> bool:
    added = await db.fetchval(
        "INSERT INTO splits_members (group_id, user_id, joined_at) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        group_id,
        user_id,
        now,
    )
    return bool(added)


async def remove_member(db: Executor, group_id: str, user_id: str) -> None:
    await db.execute(
        "DELETE FROM splits_members WHERE group_id = $1 AND user_id = $2", group_id, user_id
    )
    await db.execute(
        "DELETE FROM splits_balances WHERE group_id = $1 AND user_id = $2 AND net = 0",
        group_id,
        user_id,
    )


async def invites(
    db: Executor, group_ids: Sequence[str]
) -> dict[str, list[tuple[str, str, datetime]]]:
    """(email, invited_by, invited_at) per group."""
    rows = await db.fetch(
        "SELECT group_id, email, invited_by, invited_at FROM splits_invites"
        " WHERE group_id = ANY($1::text[]) ORDER BY invited_at, email",
        list(group_ids),
    )
    found: dict[str, list[tuple[str, str, datetime]]] = {group_id: [] for group_id in group_ids}
    for row in rows:
        found[row["group_id"]].append((row["email"], row["invited_by"], row["invited_at"]))
    return found


async def add_invite(db: Executor, group_id: str, email: str, by: str, now: datetime) -> bool:
    added = await db.fetchval(
        "INSERT INTO splits_invites (group_id, email, invited_by, invited_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
        group_id,
        email,
        by,
        now,
    )
    return bool(added)


async def take_invite(db: Executor, group_id: str, email: str) -> str | None:
    """Remove the invite; who made it (None: there was none)."""
    by: str | None = await db.fetchval(
        "DELETE FROM splits_invites WHERE group_id = $1 AND email = $2 RETURNING invited_by",
        group_id,
        email,
    )
    return by


async def groups_inviting(db: Executor, email: str) -> list[str]:
    rows = await db.fetch("SELECT group_id FROM splits_invites WHERE email = $1", email)
    return [row["group_id"] for row in rows]


# ── balances and plans ─────────────────────────────────────────────────────────────────


async def balances(db: Executor, group_id: str) -> list[tuple[str, str, int]]:
    """(user_id, currency, net) of every member with a balance row, by currency then user."""
    rows = await db.fetch(
        "SELECT user_id, currency, net FROM splits_balances WHERE group_id = $1"
        " ORDER BY currency, user_id",
        group_id,
    )
    return [(row["user_id"], row["currency"], row["net"]) for row in rows]


async def unsettled(db: Executor, group_id: str, user_id: str) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT currency, net FROM splits_balances"
        " WHERE group_id = $1 AND user_id = $2 AND net <> 0",
        group_id,
        user_id,
    )
    return {row["currency"]: row["net"] for row in rows}


async def apply_deltas(
    db: Executor, group_id: str, currency: str, deltas: Mapping[str, int]
) -> None:
    """Add each user's change to their net balance in this currency (one statement)."""
    changed = sorted((user, delta) for user, delta in deltas.items() if delta)
    if not changed:
        return
    await db.execute(
        """
        INSERT INTO splits_balances (group_id, user_id, currency, net)
        SELECT $1, d.user_id, $2, d.delta FROM unnest($3::text[], $4::bigint[]) AS d(user_id, delta)
        ON CONFLICT (group_id, user_id, currency)
        DO UPDATE SET net = splits_balances.net + EXCLUDED.net
        """,
        group_id,
        currency,
        [user for user, _ in changed],
        [delta for _, delta in changed],
    )


async def saved_plans(db: Executor, group_id: str) -> dict[str, list[tuple[str, str, int]]]:
    rows = await db.fetch("SELECT currency, plan FROM splits_plans WHERE group_id = $1", group_id)
    return {row["currency"]: [tuple(item) for item in json.loads(row["plan"])] for row in rows}


async def save_plan(
    db: Executor, group_id: str, currency: str, plan: Sequence[tuple[str, str, int]]
) -> None:
    await db.execute(
        "INSERT INTO splits_plans (group_id, currency, plan) VALUES ($1, $2, $3::jsonb)"
        " ON CONFLICT (group_id, currency) DO UPDATE SET plan = EXCLUDED.plan",
        group_id,
        currency,
        json.dumps([list(item) for item in plan]),
    )


# ── expenses ───────────────────────────────────────────────────────────────────────────


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
        }


_EXPENSE_COLUMNS = (
    "id, seq, group_id, description, amount, currency, spent_on, category, split_mode,"
    " split_input, created_by, created_at, updated_at, version, recurrence, next_due,"
    " recurring_from, deleted_at IS NOT NULL AS deleted"
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
    )


async def _attach_lines(db: Executor, expenses: list[ExpenseRecord]) -> list[ExpenseRecord]:
    if not expenses:
        return expenses
    rows = await db.fetch(
        "SELECT expense_id, user_id, paid, owed, sharing FROM splits_expense_lines"
        " WHERE expense_id = ANY($1::text[]) ORDER BY expense_id, position",
        [expense.id for expense in expenses],
    )
    by_id = {expense.id: expense for expense in expenses}
    for row in rows:
        expense = by_id[row["expense_id"]]
        if row["paid"]:
            expense.payers.append((row["user_id"], row["paid"]))
        if row["sharing"]:
            expense.shares.append((row["user_id"], row["owed"]))
    return expenses


async def insert_expense(db: Executor, expense: ExpenseRecord) -> bool:
    """Store a new expense and its lines; False if its id exists already."""
    seq = await db.fetchval(
        """
        INSERT INTO splits_expenses (id, group_id, description, amount, currency, spent_on,
            category, split_mode, split_input, created_by, created_at, updated_at, version,
            recurrence, next_due, recurring_from)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16)
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
    )
    if seq is None:
        return False
    expense.seq = seq
    await _write_lines(db, expense)
    return True


async def _write_lines(db: Executor, expense: ExpenseRecord) -> None:
    paid = dict(expense.payers)
    owed = dict(expense.shares)
    users = [user for user, _ in expense.shares]
    users += [user for user, _ in expense.payers if user not in owed]
    await db.execute(
        """
        INSERT INTO splits_expense_lines (expense_id, user_id, paid, owed, sharing, position)
        SELECT $1, l.user_id, l.paid, l.owed, l.sharing, l.n - 1
        FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bool[])
            WITH ORDINALITY AS l(user_id, paid, owed, sharing, n)
        """,
        expense.id,
        users,
        [paid.get(user, 0) for user in users],
        [owed.get(user, 0) for user in users],
        [user in owed for user in users],
    )


async def update_expense(db: Executor, expense: ExpenseRecord) -> None:
    """Write the expense's new version (its fields and lines)."""
    await db.execute(
        """
        UPDATE splits_expenses SET description = $2, amount = $3, currency = $4,
            spent_on = $5, category = $6, split_mode = $7, split_input = $8::jsonb,
            updated_at = $9, version = $10, recurrence = $11, next_due = $12
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
    """(group_id, expense_id) of recurring expenses whose next copy is due."""
    rows = await db.fetch(
        "SELECT group_id, id FROM splits_expenses"
        " WHERE next_due IS NOT NULL AND next_due <= $1 AND deleted_at IS NULL"
        " ORDER BY next_due LIMIT $2",
        today,
        limit,
    )
    return [(row["group_id"], row["id"]) for row in rows]


async def set_next_due(db: Executor, expense_id: str, next_due: date | None) -> None:
    await db.execute("UPDATE splits_expenses SET next_due = $2 WHERE id = $1", expense_id, next_due)


# ── settlements ────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class SettlementRow:
    id: str
    group_id: str
    from_user_id: str
    to_user_id: str
    amount: int
    currency: str
    method: str
    status: str
    created_at: datetime
    transfer_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


async def insert_settlement(db: Executor, row: SettlementRow, settled_at: datetime | None) -> bool:
    inserted = await db.fetchval(
        """
        INSERT INTO splits_settlements (id, group_id, from_user_id, to_user_id, amount,
            currency, method, status, created_at, settled_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (id) DO NOTHING RETURNING true
        """,
        row.id,
        row.group_id,
        row.from_user_id,
        row.to_user_id,
        row.amount,
        row.currency,
        row.method,
        row.status,
        row.created_at,
        settled_at,
    )
    return bool(inserted)


async def settlement(db: Executor, settlement_id: str) -> SettlementRow | None:
    row = await db.fetchrow(
        "SELECT id, group_id, from_user_id, to_user_id, amount, currency, method, status,"
        " created_at, transfer_id, failure_code, failure_message"
        " FROM splits_settlements WHERE id = $1",
        settlement_id,
    )
    return None if row is None else SettlementRow(**dict(row))


async def finish_settlement(
    db: Executor,
    settlement_id: str,
    status: str,
    now: datetime,
    *,
    transfer_id: str | None = None,
    failure: tuple[str, str] | None = None,
) -> bool:
    """Move a pending settlement to completed or failed; False if it was not pending."""
    done = await db.fetchval(
        "UPDATE splits_settlements SET status = $2, settled_at = $3, transfer_id = $4,"
        " failure_code = $5, failure_message = $6 WHERE id = $1 AND status = 'pending'"
        " RETURNING true",
        settlement_id,
        status,
        now,
        transfer_id,
        None if failure is None else failure[0],
        None if failure is None else failure[1],
    )
    return bool(done)


# ── activity and comments ──────────────────────────────────────────────────────────────


async def add_activity(
    db: Executor,
    group_id: str,
    kind: str,
    actor_user_id: str | None,
    summary: str,
    now: datetime,
    *,
    expense_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    await db.execute(
        "INSERT INTO splits_activity (group_id, kind, actor_user_id, summary, expense_id, data,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
        group_id,
        kind,
        actor_user_id,
        summary,
        expense_id,
        None if data is None else json.dumps(data),
        now,
    )


async def activity_page(
    db: Executor, group_id: str, limit: int, before_id: int | None
) -> list[Any]:
    return await db.fetch(
        "SELECT id, kind, actor_user_id, summary, expense_id, data, created_at"
        " FROM splits_activity WHERE group_id = $1 AND ($2::bigint IS NULL OR id < $2)"
        " ORDER BY id DESC LIMIT $3",
        group_id,
        before_id,
        limit,
    )


async def add_comment(
    db: Executor,
    comment_id: str,
    expense_id: str,
    group_id: str,
    user_id: str,
    text: str,
    now: datetime,
) -> bool:
    added = await db.fetchval(
        "INSERT INTO splits_comments (id, expense_id, group_id, user_id, body, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING true",
        comment_id,
        expense_id,
        group_id,
        user_id,
        text,
        now,
    )
    return bool(added)


async def comments(db: Executor, expense_id: str) -> list[Any]:
    return await db.fetch(
        "SELECT id, expense_id, user_id, body, created_at FROM splits_comments"
        " WHERE expense_id = $1 ORDER BY created_at, id",
        expense_id,
    )
