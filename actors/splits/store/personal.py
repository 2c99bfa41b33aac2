"""What splits keeps about one user across every group, for their data export and for an
account deletion's check (splits_members, splits_expenses and their lines, settlements,
comments, balances and plans). Reads only, each bounded by `limit`."""

from __future__ import annotations

from typing import Any

from actors.runtime import Executor


async def groups(db: Executor, user_id: str, limit: int) -> list[Any]:
    """The user's live groups, active and archived, oldest membership first."""
    return await db.fetch(
        "SELECT g.id, g.name, g.currency, g.archived_at, m.joined_at"
        " FROM splits_members m JOIN splits_groups g ON g.id = m.group_id"
        " WHERE m.user_id = $1 AND g.deleted_at IS NULL"
        " ORDER BY m.joined_at, g.id LIMIT $2",
        user_id,
        limit,
    )


async def expenses(db: Executor, user_id: str, limit: int) -> list[Any]:
    """The expenses the user made or has a line in (paid or shares), with their line."""
    return await db.fetch(
        """
        SELECT e.id, e.group_id, e.description, e.amount, e.currency, e.spent_on,
               e.category, e.created_by, e.created_at, e.deleted_at IS NOT NULL AS deleted,
               coalesce(l.paid, 0) AS paid, coalesce(l.owed, 0) AS owed
        FROM splits_expenses e
        LEFT JOIN splits_expense_lines l ON l.expense_id = e.id AND l.user_id = $1
        WHERE e.created_by = $1
           OR e.id IN (SELECT expense_id FROM splits_expense_lines WHERE user_id = $1)
        ORDER BY e.created_at, e.id
        LIMIT $2
        """,
        user_id,
        limit,
    )


async def settlements(db: Executor, user_id: str, limit: int) -> list[Any]:
    """The settlements the user paid or was paid."""
    return await db.fetch(
        "SELECT id, group_id, from_user_id, to_user_id, amount, currency, method, status,"
        " created_at FROM splits_settlements WHERE from_user_id = $1 OR to_user_id = $1"
        " ORDER BY created_at, id LIMIT $2",
        user_id,
        limit,
    )


async def comments(db: Executor, user_id: str, limit: int) -> list[Any]:
    """The comments the user wrote on expenses."""
    return await db.fetch(
        "SELECT id, group_id, expense_id, body, created_at FROM splits_comments"
        " WHERE user_id = $1 ORDER BY created_at, id LIMIT $2",
        user_id,
        limit,
    )


async def unsettled_groups(db: Executor, user_id: str) -> list[Any]:
    """(id, name) of the live groups where the user's balance is not zero, in any
    currency: member or not (a balance outlives a membership)."""
    return await db.fetch(
        "SELECT DISTINCT g.id, g.name FROM splits_balances b"
        " JOIN splits_groups g ON g.id = b.group_id"
        " WHERE b.user_id = $1 AND b.net <> 0 AND g.deleted_at IS NULL ORDER BY g.id",
        user_id,
    )
