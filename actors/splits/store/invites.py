"""Invitations of addresses to groups (splits_invites): one pending per group and address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.runtime import Executor


@dataclass(frozen=True, slots=True)
class InviteRow:
    """A pending invitation as stored (with its group's name, where a read joins it)."""

    id: str
    group_id: str
    email: str
    invited_by: str
    invited_at: datetime
    group_name: str = ""


_COLUMNS = "i.id, i.group_id, i.email, i.invited_by, i.invited_at"


def _invite(row: Any) -> InviteRow:
    return InviteRow(
        row["id"],
        row["group_id"],
        row["email"],
        row["invited_by"],
        row["invited_at"],
        row.get("group_name") or "",
    )


async def invites(db: Executor, group_ids: Sequence[str]) -> dict[str, list[InviteRow]]:
    """Each group's pending invitations, oldest first."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM splits_invites i"
        " WHERE i.group_id = ANY($1::text[]) ORDER BY i.invited_at, i.email",
        list(group_ids),
    )
    found: dict[str, list[InviteRow]] = {group_id: [] for group_id in group_ids}
    for row in rows:
        found[row["group_id"]].append(_invite(row))
    return found


async def invites_to(db: Executor, email: str) -> list[InviteRow]:
    """The pending invitations of `email` to live groups, newest first."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS}, g.name AS group_name FROM splits_invites i"
        " JOIN splits_groups g ON g.id = i.group_id"
        " WHERE i.email = $1 AND g.deleted_at IS NULL ORDER BY i.invited_at DESC, i.id",
        email,
    )
    return [_invite(row) for row in rows]


async def invite(db: Executor, group_id: str, invite_id: str) -> InviteRow | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM splits_invites i WHERE i.id = $1 AND i.group_id = $2",
        invite_id,
        group_id,
    )
    return None if row is None else _invite(row)


async def invite_of(db: Executor, group_id: str, email: str) -> InviteRow | None:
    """The group's pending invitation of `email`, if any."""
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM splits_invites i WHERE i.group_id = $1 AND i.email = $2",
        group_id,
        email,
    )
    return None if row is None else _invite(row)


async def add_invite(db: Executor, invite: InviteRow) -> bool:
    """Record the invitation; False when the address is invited to the group already."""
    added = await db.fetchval(
        "INSERT INTO splits_invites (id, group_id, email, invited_by, invited_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
        invite.id,
        invite.group_id,
        invite.email,
        invite.invited_by,
        invite.invited_at,
    )
    return bool(added)


async def take_invite(db: Executor, group_id: str, email: str) -> str | None:
    """Remove the group's invitation of `email`; who had sent it (None: there was none)."""
    by = await db.fetchval(
        "DELETE FROM splits_invites WHERE group_id = $1 AND email = $2 RETURNING invited_by",
        group_id,
        email,
    )
    return None if by is None else str(by)


async def groups_inviting(db: Executor, email: str) -> list[str]:
    rows = await db.fetch("SELECT group_id FROM splits_invites WHERE email = $1", email)
    return [row["group_id"] for row in rows]
