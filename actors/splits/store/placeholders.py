"""Placeholder members (splits_placeholders): a name with no account, in the group's rows
under their own id until someone claims the place and, with it, their history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from actors.runtime import Executor


@dataclass(frozen=True, slots=True)
class PlaceholderRow:
    """An unclaimed placeholder as stored."""

    id: str
    group_id: str
    name: str
    created_by: str
    created_at: datetime


async def add_placeholder(db: Executor, row: PlaceholderRow) -> bool:
    added = await db.fetchval(
        "INSERT INTO splits_placeholders (id, group_id, name, created_by, created_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING true",
        row.id,
        row.group_id,
        row.name,
        row.created_by,
        row.created_at,
    )
    return bool(added)


async def unclaimed(db: Executor, group_ids: Sequence[str]) -> dict[str, str]:
    """The placeholders of these groups that nobody has claimed: their names by id."""
    rows = await db.fetch(
        "SELECT id, name FROM splits_placeholders"
        " WHERE group_id = ANY($1::text[]) AND claimed_by IS NULL",
        list(group_ids),
    )
    return {row["id"]: row["name"] for row in rows}


async def placeholder(db: Executor, group_id: str, placeholder_id: str) -> PlaceholderRow | None:
    """The group's unclaimed placeholder by that id, if any."""
    row = await db.fetchrow(
        "SELECT id, group_id, name, created_by, created_at FROM splits_placeholders"
        " WHERE id = $1 AND group_id = $2 AND claimed_by IS NULL",
        placeholder_id,
        group_id,
    )
    return None if row is None else PlaceholderRow(**dict(row))


async def has_history(db: Executor, group_id: str, user_id: str) -> bool:
    """Whether `user_id` is in any expense or settlement of the group (a former member)."""
    found = await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM splits_expense_lines l JOIN splits_expenses e"
        " ON e.id = l.expense_id WHERE e.group_id = $1 AND l.user_id = $2)"
        " OR EXISTS (SELECT 1 FROM splits_settlements WHERE group_id = $1"
        " AND $2 IN (from_user_id, to_user_id))",
        group_id,
        user_id,
    )
    return bool(found)


# every row of a group that names a member, rewritten from the placeholder to the claimer
_REWRITES = (
    "UPDATE splits_members SET user_id = $3 WHERE group_id = $1 AND user_id = $2",
    "UPDATE splits_balances SET user_id = $3 WHERE group_id = $1 AND user_id = $2",
    "UPDATE splits_expense_lines l SET user_id = $3 FROM splits_expenses e"
    " WHERE e.id = l.expense_id AND e.group_id = $1 AND l.user_id = $2",
    "UPDATE splits_settlements SET from_user_id = $3 WHERE group_id = $1 AND from_user_id = $2",
    "UPDATE splits_settlements SET to_user_id = $3 WHERE group_id = $1 AND to_user_id = $2",
    "UPDATE splits_plans SET plan = replace(plan::text, $2, $3)::jsonb WHERE group_id = $1",
    "UPDATE splits_converted SET user_id = $3 WHERE group_id = $1 AND user_id = $2",
    "UPDATE splits_converted_plans SET plan = replace(plan::text, $2, $3)::jsonb"
    " WHERE group_id = $1",
    # an itemized bill names its sharers in its items
    "UPDATE splits_expenses SET items = replace(items::text, $2, $3)::jsonb"
    " WHERE group_id = $1 AND items IS NOT NULL",
    "UPDATE splits_expense_history h SET snapshot = replace(h.snapshot::text, $2, $3)::jsonb"
    " FROM splits_expenses e WHERE e.id = h.expense_id AND e.group_id = $1",
    "UPDATE splits_activity SET summary = replace(summary, $2, $3),"
    " data = replace(data::text, $2, $3)::jsonb,"
    " actor_user_id = CASE actor_user_id WHEN $2 THEN $3 ELSE actor_user_id END"
    " WHERE group_id = $1",
)


async def claim(
    db: Executor, group_id: str, placeholder_id: str, user_id: str, now: datetime
) -> None:
    """`user_id` takes the placeholder's place in every row of the group."""
    for statement in _REWRITES:
        await db.execute(statement, group_id, placeholder_id, user_id)
    await db.execute(
        "DELETE FROM splits_reminders WHERE group_id = $1 AND $2 IN (from_user_id, to_user_id)",
        group_id,
        placeholder_id,
    )
    await db.execute(
        "UPDATE splits_placeholders SET claimed_by = $2, claimed_at = $3 WHERE id = $1",
        placeholder_id,
        user_id,
        now,
    )
