"""Answers to chat notices in Telegram: a feature part of the Notifications actor.

A chat notice sent over Telegram is remembered by the message Telegram made for it (chat
id and message id), with the person it was for and its conversation. When that person
answers it (a Telegram reply), the bot asks which conversation the answer belongs to
(`FindChatReplyTarget`) and posts it there as them. Remembered for REPLY_DAYS: an answer
to an older notice is no answer the bot recognises.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from actors.notifications import store
from actors.notifications.messages import (
    ChatReplyTarget,
    ChatReplyTargetNotFound,
    FindChatReplyTarget,
)
from actors.notifications.notices import Notice
from actors.runtime import Context

log = structlog.get_logger("actors.notifications")

REPLY_DAYS = 30  # how long a chat notice in Telegram can be answered


class ChatReplies:
    """Remembers chat notices sent over Telegram, and finds the one an answer is to.

    `context` is the Notifications shard's (the table, its clock).
    """

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def remember(self, chat_id: int, message_id: int, notice: Notice) -> None:
        """The Telegram message `message_id` in `chat_id` carries `notice` (a chat one)."""
        assert notice.conversation_id is not None, "only a chat notice can be answered"
        now = self._context.now()
        await store.add_chat_reply(
            self._pool,
            chat_id=chat_id,
            message_id=message_id,
            user_id=notice.user_id,
            conversation_id=notice.conversation_id,
            title=notice.conversation_title,
            now=now,
            forget_before=now - timedelta(days=REPLY_DAYS),
        )

    async def find(self, message: FindChatReplyTarget) -> ChatReplyTarget:
        row = await store.chat_reply(self._pool, message.chat_id, message.message_id)
        if row is None or row.created_at < self._context.now() - timedelta(days=REPLY_DAYS):
            raise ChatReplyTargetNotFound("That message is no chat notice you can answer.")
        return ChatReplyTarget(
            user_id=row.user_id, conversation_id=row.conversation_id, title=row.title
        )
