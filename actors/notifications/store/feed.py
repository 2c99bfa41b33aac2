"""The in-app feed (pages, unread counts, read marks) and the preferences."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from actors.runtime import Executor

# ── the in-app feed and the preferences ────────────────────────────────────────────────


async def add_item(
    db: Executor,
    *,
    item_id: str,
    user_id: str,
    category: str,
    kind: str,
    title: str,
    body: str,
    data: Mapping[str, Any],
    now: datetime,
) -> Any:
    """Store a feed item once (its id is the delivery's); the row, new or already there."""
    row = await db.fetchrow(
        """
        INSERT INTO notification_feed (id, user_id, category, kind, title, body, data,
            created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
        ON CONFLICT (id) DO NOTHING
        RETURNING id, user_id, category, kind, title, body, data, created_at, read_at
        """,
        item_id,
        user_id,
        category,
        kind,
        title,
        body,
        json.dumps(dict(data)),
        now,
    )
    if row is None:
        row = await db.fetchrow(
            "SELECT id, user_id, category, kind, title, body, data, created_at, read_at"
            " FROM notification_feed WHERE id = $1",
            item_id,
        )
    return row


async def page(
    db: Executor, user_id: str, *, unread_only: bool, limit: int, before: int | None
) -> list[Any]:
    rows: list[Any] = await db.fetch(
        """
        SELECT seq, id, category, kind, title, body, data, created_at, read_at
        FROM notification_feed
        WHERE user_id = $1 AND ($2::bool IS FALSE OR read_at IS NULL)
          AND ($3::bigint IS NULL OR seq < $3)
        ORDER BY seq DESC LIMIT $4
        """,
        user_id,
        unread_only,
        before,
        limit,
    )
    return rows


async def unread_count(db: Executor, user_id: str) -> int:
    count = await db.fetchval(
        "SELECT count(*) FROM notification_feed WHERE user_id = $1 AND read_at IS NULL", user_id
    )
    return int(count)


async def mark_read(db: Executor, user_id: str, item_id: str, now: datetime) -> bool:
    """Mark one item read; False if the user has no such item."""
    found = await db.fetchval(
        "UPDATE notification_feed SET read_at = COALESCE(read_at, $3)"
        " WHERE id = $1 AND user_id = $2 RETURNING true",
        item_id,
        user_id,
        now,
    )
    return bool(found)


async def mark_all_read(db: Executor, user_id: str, now: datetime) -> int:
    status = await db.execute(
        "UPDATE notification_feed SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL",
        user_id,
        now,
    )
    return int(status.split()[-1])


async def preferences(db: Executor, user_id: str) -> list[tuple[str, str, bool]]:
    """The user's own switches: (category, channel, enabled), over the defaults."""
    rows = await db.fetch(
        "SELECT category, channel, enabled FROM notification_preferences WHERE user_id = $1",
        user_id,
    )
    return [(row["category"], row["channel"], row["enabled"]) for row in rows]


async def preferences_and_devices(
    db: Executor, user_ids: Sequence[str], device_users: Sequence[str]
) -> tuple[dict[str, list[tuple[str, str, bool]]], set[str]]:
    """`preferences` of several users (a user with none has an empty list) and which of
    `device_users` have a Web Push subscription, in one query (one round trip for a
    batch's recipients)."""
    found: dict[str, list[tuple[str, str, bool]]] = {user_id: [] for user_id in user_ids}
    pushable: set[str] = set()
    if not found and not device_users:
        return found, pushable
    rows = await db.fetch(
        """
        SELECT user_id, category, channel, enabled FROM notification_preferences
        WHERE user_id = ANY($1::text[])
        UNION ALL
        SELECT DISTINCT user_id, NULL, NULL, NULL::bool FROM notification_push_subscriptions
        WHERE user_id = ANY($2::text[])
        """,
        list(found),
        list(device_users),
    )
    for row in rows:
        if row["category"] is None:  # a device row
            pushable.add(row["user_id"])
        else:
            found[row["user_id"]].append((row["category"], row["channel"], row["enabled"]))
    return found, pushable


async def set_preferences(
    db: Executor, user_id: str, changes: Mapping[str, Mapping[str, bool]]
) -> None:
    rows = [
        (category, channel, enabled)
        for category, channels in changes.items()
        for channel, enabled in channels.items()
    ]
    if not rows:
        return
    await db.execute(
        """
        INSERT INTO notification_preferences (user_id, category, channel, enabled)
        SELECT $1, c.category, c.channel, c.enabled
        FROM unnest($2::text[], $3::text[], $4::bool[]) AS c(category, channel, enabled)
        ON CONFLICT (user_id, category, channel) DO UPDATE SET enabled = EXCLUDED.enabled
        """,
        user_id,
        [row[0] for row in rows],
        [row[1] for row in rows],
        [row[2] for row in rows],
    )
