"""A conversation's files: a feature part of the files actor (issue 18, item 4).

A chat file is uploaded first (`store`: an image or a PDF, processed and stored like a
receipt, by the `Attachments` part), then carried by a message: `attach` marks the files
with the message's id before the edge posts it, `detach` undoes that when the post was
refused, and `delete_with_message` deletes them with their message. Until it is sent, a
file is seen only by its uploader; files never sent are deleted after UNSENT_HOURS by
the upkeep (`sweep_unsent`).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from actors.files import store
from actors.files.messages import (
    CHAT_CONTENT_TYPES,
    MAX_UNSENT_PER_CONVERSATION,
    UNSENT_HOURS,
    AttachChatFiles,
    AttachmentContent,
    AttachmentNotFound,
    ChatAttachmentList,
    ChatAttachmentView,
    ChatFilesDone,
    DeleteChatFiles,
    DetachChatFiles,
    GetChatAttachment,
    StoreAttachment,
    StoreChatAttachment,
    TooManyAttachments,
)
from actors.files.store import AttachmentRow, Owner
from actors.runtime import Context, rfc3339

if TYPE_CHECKING:  # the part it builds on; actor.py imports this module
    from actors.files.actor import Attachments

log = structlog.get_logger("actors.files")

SWEEP_BATCH = 100  # unsent files the upkeep deletes per round


def chat_view_of(row: AttachmentRow) -> ChatAttachmentView:
    """A conversation's file as the API shows it."""
    return ChatAttachmentView(
        id=row.id,
        conversation_id=row.conversation_id or "",  # a chat file always has one
        message_id=row.message_id,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        uploaded_by=row.uploaded_by,
        created_at=rfc3339(row.created_at),
        has_thumbnail=row.thumbnail_key is not None,
    )


class ChatFiles:
    """Storing, reading, sending and deleting the files of conversations."""

    def __init__(self, context: Context, attachments: Attachments) -> None:
        self._context = context
        self._db = context.pool
        self._attachments = attachments

    async def store(self, message: StoreChatAttachment) -> ChatAttachmentView:
        row = await self._attachments.keep(
            message,
            Owner(conversation_id=message.conversation_id),
            check=self._room,
            content_types=CHAT_CONTENT_TYPES,
        )
        return chat_view_of(row)

    async def _room(self, message: StoreAttachment | StoreChatAttachment, owner: Owner) -> None:
        """A person keeps at most MAX_UNSENT_PER_CONVERSATION unsent files in one."""
        assert owner.conversation_id is not None
        count = await store.count_unsent(self._db, owner.conversation_id, message.user_id)
        if count >= MAX_UNSENT_PER_CONVERSATION:
            raise TooManyAttachments(
                f"you have {count} files uploaded here and not sent; at most "
                f"{MAX_UNSENT_PER_CONVERSATION}: send them first",
                details={"limit": MAX_UNSENT_PER_CONVERSATION},
            )

    async def get(self, message: GetChatAttachment) -> AttachmentContent:
        row = await store.live_in_conversation(
            self._db, message.conversation_id, message.attachment_id
        )
        # a file not sent yet is its uploader's alone
        if row is None or (row.message_id is None and row.uploaded_by != message.user_id):
            raise AttachmentNotFound("no such file in this conversation")
        return await self._attachments.content_of(row, message.variant)

    async def attach(self, message: AttachChatFiles) -> ChatAttachmentList:
        wanted = list(dict.fromkeys(message.attachment_ids))  # a repeated id counts once
        rows = await store.in_conversation(self._db, message.conversation_id, wanted)
        for index, attachment_id in enumerate(message.attachment_ids):
            row = rows.get(attachment_id)
            if (
                row is None
                or row.uploaded_by != message.user_id
                or row.message_id not in (None, message.message_id)
            ):
                raise AttachmentNotFound(
                    "no such file of yours in this conversation to send (upload it here "
                    "first; a file goes in one message)",
                    details={"field": f"$.attachment_ids[{index}]"},
                )
        async with self._context.transaction(dedupe=False) as tx:
            taken = await store.attach(
                tx, message.conversation_id, message.user_id, message.message_id, wanted
            )
            if taken != len(wanted):  # one changed since it was read: nothing is taken
                raise AttachmentNotFound(
                    "a file changed while the message was sent; try again",
                    details={"field": "$.attachment_ids"},
                )
        log.info(
            "chat_files_attached",
            conversation_id=message.conversation_id,
            message_id=message.message_id,
            files=len(wanted),
        )
        sent = [dataclasses.replace(rows[one], message_id=message.message_id) for one in wanted]
        return ChatAttachmentList(items=[chat_view_of(row) for row in sent])

    async def detach(self, message: DetachChatFiles) -> ChatFilesDone:
        ids = await store.detach(self._db, message.conversation_id, message.message_id)
        if ids:
            log.info(
                "chat_files_detached",
                conversation_id=message.conversation_id,
                message_id=message.message_id,
                files=len(ids),
            )
        return ChatFilesDone(ids=ids)

    async def delete_with_message(self, message: DeleteChatFiles) -> ChatFilesDone:
        kept = await store.mark_message_deleted(
            self._db,
            message.conversation_id,
            message.message_id,
            message.user_id,
            self._context.now(),
        )
        if kept:
            log.info(
                "chat_files_deleted",
                conversation_id=message.conversation_id,
                message_id=message.message_id,
                files=len(kept),
            )
            await self._attachments.purge(kept)
        return ChatFilesDone(ids=[one.id for one in kept])

    async def sweep_unsent(self) -> int:
        """Delete files uploaded UNSENT_HOURS ago and never sent; how many."""
        now = self._context.now()
        kept = await store.mark_unsent_deleted(
            self._db, now - timedelta(hours=UNSENT_HOURS), now, SWEEP_BATCH
        )
        if kept:
            log.info("chat_files_unsent_deleted", files=len(kept))
            await self._attachments.purge(kept)
        return len(kept)
