"""A deleted account: how to reach it forgotten, its delivery records kept bare."""

from __future__ import annotations

from datetime import datetime

from actors.runtime import Executor

# ── a deleted account (issue 19) ───────────────────────────────────────────────────────


async def forget_user(db: Executor, user_id: str, now: datetime) -> None:
    """Forget how to reach a deleted account: its push devices, switches, in-app feed and
    Telegram answers go; its delivery records stay (what was sent when) with no address
    and no payload, and what was still pending fails ("account deleted")."""
    for table in (
        "notification_push_subscriptions",
        "notification_preferences",
        "notification_feed",
        "notification_chat_replies",
    ):
        await db.execute(f"DELETE FROM {table} WHERE user_id = $1", user_id)
    await db.execute(
        """
        UPDATE notification_deliveries SET
            recipient = '',
            payload = NULL,
            last_answer = CASE WHEN status = 'pending' THEN 'account deleted'
                               ELSE last_answer END,
            failed_at = CASE WHEN status = 'pending' THEN $2 ELSE failed_at END,
            next_attempt_at = NULL,
            status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
            updated_at = $2
        WHERE user_id = $1
        """,
        user_id,
        now,
    )
