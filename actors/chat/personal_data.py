"""A user's own messages, for their data export: a feature part of the Chat actor.

Reads only, bounded (MY_MESSAGES_MAX): the conversations' shards keep writing. A message
deleted by its author is listed as deleted, with no text (its text is gone).
"""

from __future__ import annotations

from typing import Any

from actors.chat import store
from actors.chat.messages import MY_MESSAGES_MAX, DescribeMyChat, MyChat, MyChatMessage
from actors.runtime import Context, rfc3339


class PersonalData:
    """Answers DescribeMyChat: what the user wrote, in every conversation."""

    def __init__(self, context: Context) -> None:
        self._pool = context.pool

    async def describe(self, message: DescribeMyChat) -> MyChat:
        rows = await store.messages_by_author(self._pool, message.user_id, MY_MESSAGES_MAX + 1)
        return MyChat(
            messages=[_message(row) for row in rows[:MY_MESSAGES_MAX]],
            truncated=len(rows) > MY_MESSAGES_MAX,
        )


def _message(row: Any) -> MyChatMessage:
    return MyChatMessage(
        message_id=row["id"],
        conversation_id=row["conversation_id"],
        conversation_kind=row["kind"],
        conversation_title=row["title"],
        text="" if row["deleted"] else row["text"],
        created_at=rfc3339(row["created_at"]),
        edited_at=rfc3339(row["edited_at"]) if row["edited_at"] is not None else None,
        deleted=row["deleted"],
    )
