"""The in-app feed: a feature part of the Notifications actor.

The in-app channel stores a notice as a feed item (once: its id is the delivery's) and
pushes it to the user's live WebSockets (an event's in-app notices are stored with the
event itself, see deliveries.py, and pushed after that commit: `announce`); the user
pages through the feed and marks items read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import structlog

from actors.notifications import store
from actors.notifications.messages import (
    Acknowledged,
    ListNotifications,
    MarkAllRead,
    MarkRead,
    NotificationNotFound,
    NotificationPage,
    NotificationView,
)
from actors.notifications.notices import Notice
from actors.runtime import Context, rfc3339, row_cursor

log = structlog.get_logger("actors.notifications")

# sends a user's new feed item (a JSON frame) to their live WebSockets
Push = Callable[[str, bytes], Awaitable[None]]


class Feed:
    """Stores and pushes in-app items; lists them and marks them read.

    `context` is the Notifications shard's (the feed table, its clock); `push` reaches
    the user's live WebSockets (None: no live updates on this node).
    """

    def __init__(self, context: Context, *, push: Push | None) -> None:
        self._context = context
        self._pool = context.pool
        self._push = push

    async def add(self, item_id: str, notice: Notice) -> str:
        """Store the notice as a feed item and push it live; the answer for the attempt."""
        row = await store.add_item(
            self._pool,
            item_id=item_id,
            user_id=notice.user_id,
            category=notice.category,
            kind=notice.kind,
            title=notice.title,
            body=notice.text,
            data=notice.data,
            now=self._context.now(),
        )
        if self._push is None:
            return "stored"
        await self._push(notice.user_id, _frame(row))
        return "stored and pushed"

    @property
    def answer(self) -> str:
        """What an in-app delivery stored with its event records as its try's answer."""
        return "stored" if self._push is None else "stored and pushed"

    async def announce(self, rows: Sequence[Any]) -> None:
        """Push feed items stored with their event to their users' live WebSockets, after
        the commit. Best effort: the items are in the feed whatever happens here (a page
        shows them), so a failed push is logged, not retried."""
        if self._push is None:
            return
        for row in rows:
            try:
                await self._push(row["user_id"], _frame(row))
            except Exception as error:
                log.warning("feed_push_failed", item_id=row["id"], error=repr(error))

    async def page(self, message: ListNotifications) -> NotificationPage:
        limit = max(1, min(message.limit, 200))
        rows = await store.page(
            self._pool,
            message.user_id,
            unread_only=message.unread_only,
            limit=limit + 1,
            before=row_cursor(message.cursor),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return NotificationPage(
            items=[_item(row) for row in rows],
            next_cursor=str(rows[-1]["seq"]) if more else None,
            unread=await store.unread_count(self._pool, message.user_id),
        )

    async def mark_read(self, message: MarkRead) -> Acknowledged:
        now = self._context.now()
        if not await store.mark_read(self._pool, message.user_id, message.notification_id, now):
            raise NotificationNotFound("No such notification among yours.")
        return Acknowledged()

    async def mark_all_read(self, message: MarkAllRead) -> Acknowledged:
        await store.mark_all_read(self._pool, message.user_id, self._context.now())
        return Acknowledged()


def _frame(row: Any) -> bytes:
    item = msgspec.to_builtins(_item(row))
    item.pop("msg_type", None)
    return msgspec.json.encode({"type": "notification", "notification": item})


def _item(row: Any) -> NotificationView:
    data = row["data"]
    return NotificationView(
        id=row["id"],
        category=row["category"],
        kind=row["kind"],
        title=row["title"],
        body=row["body"],
        data=json.loads(data) if isinstance(data, str) else dict(data or {}),
        created_at=rfc3339(row["created_at"]),
        read=row["read_at"] is not None,
    )
