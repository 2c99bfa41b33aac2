"""When one member last reminded another in a group (splits_reminders)."""

from __future__ import annotations

from datetime import datetime

from actors.runtime import Executor


async def claim_reminder(
    db: Executor, group_id: str, from_user_id: str, to_user_id: str, now: datetime, since: datetime
) -> bool:
    """Record a reminder at `now` unless one was sent after `since`; whether it was."""
    claimed = await db.fetchval(
        """
        INSERT INTO splits_reminders (group_id, from_user_id, to_user_id, sent_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (group_id, from_user_id, to_user_id)
        DO UPDATE SET sent_at = EXCLUDED.sent_at WHERE splits_reminders.sent_at <= $5
        RETURNING true
        """,
        group_id,
        from_user_id,
        to_user_id,
        now,
        since,
    )
    return bool(claimed)
