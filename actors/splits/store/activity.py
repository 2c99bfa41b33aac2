"""The group's activity log and the comments on expenses (splits_activity,
splits_comments)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from actors.runtime import Executor


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


async def recent_in_groups(db: Executor, group_ids: Sequence[str], limit: int) -> list[Any]:
    """The newest activity across these groups."""
    return await db.fetch(
        "SELECT id, group_id, kind, actor_user_id, summary, expense_id, data, created_at"
        " FROM splits_activity WHERE group_id = ANY($1::text[]) ORDER BY id DESC LIMIT $2",
        list(group_ids),
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
