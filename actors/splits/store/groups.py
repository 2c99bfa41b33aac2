"""Groups and their members (splits_groups, splits_members)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.runtime import Executor


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A group as stored."""

    id: str
    name: str
    currency: str
    created_by: str
    created_at: datetime
    archived_at: datetime | None = None


def _group(row: Any) -> GroupRow:
    return GroupRow(
        row["id"],
        row["name"],
        row["currency"],
        row["created_by"],
        row["created_at"],
        row["archived_at"],
    )


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
    """The group, unless there is none or it was deleted."""
    row = await db.fetchrow(
        "SELECT * FROM splits_groups WHERE id = $1 AND deleted_at IS NULL", group_id
    )
    return None if row is None else _group(row)


async def groups_of(db: Executor, user_id: str, *, archived: bool = False) -> list[GroupRow]:
    """The user's live groups: the active ones, or (`archived`) the archived ones."""
    rows = await db.fetch(
        "SELECT g.* FROM splits_groups g JOIN splits_members m ON m.group_id = g.id"
        " WHERE m.user_id = $1 AND g.deleted_at IS NULL"
        " AND (g.archived_at IS NOT NULL) = $2 ORDER BY g.created_at, g.id",
        user_id,
        archived,
    )
    return [_group(row) for row in rows]


async def rename_group(db: Executor, group_id: str, name: str) -> None:
    await db.execute("UPDATE splits_groups SET name = $2 WHERE id = $1", group_id, name)


async def archive_group(db: Executor, group_id: str, at: datetime | None) -> None:
    """Archive the group at `at`, or (None) bring it back."""
    await db.execute("UPDATE splits_groups SET archived_at = $2 WHERE id = $1", group_id, at)


async def delete_group(db: Executor, group_id: str, now: datetime) -> None:
    """Gone for everyone; the row stays for the history that names it."""
    await db.execute("UPDATE splits_groups SET deleted_at = $2 WHERE id = $1", group_id, now)


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
    await db.execute(
        "DELETE FROM splits_converted WHERE group_id = $1 AND user_id = $2 AND net = 0",
        group_id,
        user_id,
    )


async def share_a_group(db: Executor, user_id: str, other_id: str) -> bool:
    """Whether the two are members of one group that is not deleted."""
    found = await db.fetchval(
        "SELECT true FROM splits_members mine"
        " JOIN splits_members theirs ON theirs.group_id = mine.group_id AND theirs.user_id = $2"
        " JOIN splits_groups g ON g.id = mine.group_id AND g.deleted_at IS NULL"
        " WHERE mine.user_id = $1 LIMIT 1",
        user_id,
        other_id,
    )
    return bool(found)
