"""Join links of groups (splits_join_links): only the SHA-256 of each secret is kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.runtime import Executor


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A join link as stored."""

    id: str
    group_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    max_uses: int
    uses: int
    revoked_at: datetime | None
    placeholder_id: str | None = None  # a claim link: its holder takes this member's place


_COLUMNS = (
    "id, group_id, created_by, created_at, expires_at, max_uses, uses, revoked_at, placeholder_id"
)


def _link(row: Any) -> LinkRow:
    return LinkRow(**{key: row[key] for key in LinkRow.__slots__})


async def insert_link(db: Executor, link: LinkRow, secret_hash: bytes) -> None:
    await db.execute(
        f"INSERT INTO splits_join_links ({_COLUMNS}, secret_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        link.id,
        link.group_id,
        link.created_by,
        link.created_at,
        link.expires_at,
        link.max_uses,
        link.uses,
        link.revoked_at,
        link.placeholder_id,
        secret_hash,
    )


async def links_of(db: Executor, group_id: str) -> list[LinkRow]:
    """The group's links that are not revoked, newest first."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM splits_join_links"
        " WHERE group_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id",
        group_id,
    )
    return [_link(row) for row in rows]


async def link_by_secret(db: Executor, group_id: str, secret_hash: bytes) -> LinkRow | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM splits_join_links WHERE secret_hash = $1 AND group_id = $2",
        secret_hash,
        group_id,
    )
    return None if row is None else _link(row)


async def use_link(db: Executor, link_id: str) -> None:
    await db.execute("UPDATE splits_join_links SET uses = uses + 1 WHERE id = $1", link_id)


async def revoke_link(db: Executor, group_id: str, link_id: str, now: datetime) -> bool:
    """Revoke a live link of the group; False when there is none by that id."""
    done = await db.fetchval(
        "UPDATE splits_join_links SET revoked_at = $3"
        " WHERE id = $1 AND group_id = $2 AND revoked_at IS NULL RETURNING true",
        link_id,
        group_id,
        now,
    )
    return bool(done)
