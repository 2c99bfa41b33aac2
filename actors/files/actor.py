"""The files actor: attachments of expenses and files of chat conversations, their rows
in PostgreSQL and their bytes in the storage port.

The actor is the mailbox and its handlers; the work is done by its parts `attachments`
(storing, reading and deleting any attachment; an expense's list) and `chat`
(actors/files/conversations.py: a conversation's files and the messages that carry
them), given the shard's `Context` (database, clock) and the `Storage`. Shards are keyed
by group, or by conversation for chat files (`files_key`), so one group's or one
conversation's attachments change in order.

Storing: the upload is hashed, then sniffed, checked, stripped and thumbnailed on a thread
(`processing.process`), both files are put in the storage under fresh random keys, and
the row is written last: a row always points at bytes that exist. A retry with the same
`attachment_id` finds the row and answers it without a second effect; a failure before the
row is written removes what was put. Deleting marks the row and removes the bytes; bytes a
failed removal left behind are removed by shard 0's upkeep (`sweep`). An expense deleted
in splits (`ExpenseDeleted`, when the node subscribes this actor to it) deletes its
attachments the same way, and a deleted group (`GroupDeleted`) all of its receipts.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import asyncpg
import structlog

from actors.chat.messages import ChatMessageDeleted
from actors.files import store
from actors.files.conversations import ChatFiles
from actors.files.messages import (
    CONTENT_TYPES,
    MAX_PER_EXPENSE,
    AttachChatFiles,
    AttachmentContent,
    AttachmentDeleted,
    AttachmentList,
    AttachmentNotFound,
    AttachmentView,
    ChatAttachmentList,
    ChatAttachmentView,
    ChatFilesDone,
    DeleteAttachment,
    DeleteChatFiles,
    DetachChatFiles,
    GetAttachment,
    GetChatAttachment,
    ListAttachments,
    StoreAttachment,
    StoreChatAttachment,
    TooManyAttachments,
    Variant,
)
from actors.files.processing import process
from actors.files.rules import safe_filename, thumbnail_filename
from actors.files.storage import ObjectMissing, Storage, object_key
from actors.files.store import AttachmentRow, Owner, StoredKeys
from actors.runtime import (
    Actor,
    Clock,
    Context,
    IdempotencyConflict,
    handles,
    rfc3339,
    wall_clock,
)
from actors.splits.messages import ExpenseDeleted, GroupDeleted

log = structlog.get_logger("actors.files")

# deleted attachments whose bytes the upkeep removes per round, and how long it leaves a
# fresh deletion to the handler that made it (which removes the bytes itself)
SWEEP_BATCH = 100
SWEEP_GRACE = timedelta(minutes=5)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# what is uploaded: to an expense or to a conversation
Upload = StoreAttachment | StoreChatAttachment


def view_of(row: AttachmentRow) -> AttachmentView:
    """An expense's attachment as the API shows it."""
    return AttachmentView(
        id=row.id,
        group_id=row.group_id or "",  # an expense's always has both (the table's CHECK)
        expense_id=row.expense_id or "",
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        uploaded_by=row.uploaded_by,
        created_at=rfc3339(row.created_at),
        has_thumbnail=row.thumbnail_key is not None,
    )


class Attachments:
    """Storing, listing, reading and deleting attachments: the files actor's one part."""

    def __init__(self, context: Context, storage: Storage) -> None:
        self._context = context
        self._db = context.pool
        self._storage = storage

    # ── storing ────────────────────────────────────────────────────────────────────────

    async def store(self, message: StoreAttachment) -> AttachmentView:
        owner = Owner(group_id=message.group_id, expense_id=message.expense_id)
        row = await self.keep(message, owner, check=self._room_in_expense)
        return view_of(row)

    async def _room_in_expense(self, message: Upload, owner: Owner) -> None:
        assert owner.group_id is not None
        assert owner.expense_id is not None
        count = await store.count_of_expense(self._db, owner.group_id, owner.expense_id)
        if count >= MAX_PER_EXPENSE:
            raise TooManyAttachments(
                f"the expense has {count} attachments; at most {MAX_PER_EXPENSE}",
                details={"limit": MAX_PER_EXPENSE},
            )

    async def keep(
        self,
        message: Upload,
        owner: Owner,
        *,
        check: Callable[[Upload, Owner], Awaitable[None]],
        content_types: tuple[str, ...] = CONTENT_TYPES,
    ) -> AttachmentRow:
        """Keep an upload as `owner`'s attachment (after `check`, which refuses what does
        not fit), or find it kept by a retry; its row."""
        # hashed on a thread: ten megabytes take a few milliseconds the loop should not wait
        upload_sha256 = await asyncio.to_thread(_sha256, message.content)
        existing = await store.by_id(self._db, message.attachment_id)
        if existing is not None:
            return self._replay(existing, message, owner, upload_sha256)
        await check(message, owner)
        # sniffing, the size and pixel limits, metadata stripping and the thumbnail:
        # TooLarge, UnsupportedType or InvalidImage before anything is kept
        processed = await asyncio.to_thread(process, message.content, content_types)
        token = uuid.uuid4().hex
        original_key, thumbnail_key = object_key("original", token), object_key("thumbnail", token)
        row = AttachmentRow(
            id=message.attachment_id,
            group_id=owner.group_id,
            expense_id=owner.expense_id,
            conversation_id=owner.conversation_id,
            uploaded_by=message.user_id,
            filename=safe_filename(message.filename, processed.content_type),
            content_type=processed.content_type,
            size=len(processed.content),
            sha256=processed.sha256,
            upload_sha256=upload_sha256,
            storage_key=original_key,
            thumbnail_key=thumbnail_key,
            thumbnail_type=processed.thumbnail_type,
            created_at=self._context.now(),
        )
        kept = StoredKeys(row.id, original_key, thumbnail_key)
        await self._put_all(
            kept,
            [
                (original_key, processed.content, processed.content_type),
                (thumbnail_key, processed.thumbnail, processed.thumbnail_type),
            ],
        )
        try:
            added = await store.insert(self._db, row)
        except BaseException:
            await self._remove(kept)
            raise
        if not added:
            # the id was taken between the read and the write (another node, another
            # group's shard): what is there answers, and these bytes are not needed
            await self._remove(kept)
            first = await store.by_id(self._db, message.attachment_id)
            if first is None:  # pragma: no cover - rows are never removed
                raise AttachmentNotFound("the attachment was not kept; try again")
            return self._replay(first, message, owner, upload_sha256)
        log.info(
            "attachment_stored",
            attachment_id=row.id,
            group_id=row.group_id,
            expense_id=row.expense_id,
            conversation_id=row.conversation_id,
            content_type=row.content_type,
            size=row.size,
            uploaded_size=len(message.content),
        )
        return row

    @staticmethod
    def _replay(
        first: AttachmentRow, message: Upload, owner: Owner, upload_sha256: str
    ) -> AttachmentRow:
        """The first upload with this id answers its retry; anything else under the id is a
        conflict (it says no more about the first than that it exists)."""
        same = (
            first.group_id == owner.group_id
            and first.expense_id == owner.expense_id
            and first.conversation_id == owner.conversation_id
            and first.uploaded_by == message.user_id
            and first.upload_sha256 == upload_sha256
        )
        if not same:
            raise IdempotencyConflict(
                "this attachment id was used for another upload",
                details={"field": "$.attachment_id"},
            )
        return first

    async def _put_all(self, kept: StoredKeys, objects: Sequence[tuple[str, bytes, str]]) -> None:
        """Put every object, at once; on any failure remove them all and raise the first."""
        results = await asyncio.gather(
            *(self._storage.put(key, data, kind) for key, data, kind in objects),
            return_exceptions=True,
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            await self._remove(kept)
            raise failures[0]

    # ── reading ────────────────────────────────────────────────────────────────────────

    async def of_expense(self, message: ListAttachments) -> AttachmentList:
        rows = await store.of_expense(self._db, message.group_id, message.expense_id)
        return AttachmentList(items=[view_of(row) for row in rows])

    async def get(self, message: GetAttachment) -> AttachmentContent:
        row = await self._live(message.group_id, message.attachment_id, message.expense_id)
        return await self.content_of(row, message.variant)

    async def content_of(self, row: AttachmentRow, variant: Variant) -> AttachmentContent:
        """The bytes of a live attachment, or of its thumbnail, from the storage."""
        if variant == "thumbnail":
            if row.thumbnail_key is None or row.thumbnail_type is None:
                raise AttachmentNotFound("the attachment has no thumbnail")
            key, content_type = row.thumbnail_key, row.thumbnail_type
            filename = thumbnail_filename(row.filename, content_type)
        else:
            key, content_type, filename = row.storage_key, row.content_type, row.filename
        try:
            content = await self._storage.get(key)
        except ObjectMissing:
            # a row whose bytes are gone: the storage lost them (a folder restored without
            # them, a bucket's lifecycle rule); nothing to serve
            log.error(
                "attachment_bytes_missing",
                attachment_id=row.id,
                variant=variant,
                store=self._storage.name,
            )
            raise AttachmentNotFound("the attachment's file is missing") from None
        return AttachmentContent(
            content=content,
            content_type=content_type,
            filename=filename,
            sha256=await asyncio.to_thread(_sha256, content),
        )

    async def _live(
        self, group_id: str, attachment_id: str, expense_id: str | None
    ) -> AttachmentRow:
        row = await store.live(self._db, group_id, attachment_id)
        if row is None or (expense_id is not None and row.expense_id != expense_id):
            raise AttachmentNotFound("no such attachment")
        return row

    # ── deleting ───────────────────────────────────────────────────────────────────────

    async def delete(self, message: DeleteAttachment) -> AttachmentDeleted:
        first = await store.by_id(self._db, message.attachment_id)
        if (
            first is None
            or first.group_id != message.group_id
            or (message.expense_id is not None and first.expense_id != message.expense_id)
        ):
            raise AttachmentNotFound("no such attachment")
        kept = await store.mark_deleted(
            self._db, message.group_id, message.attachment_id, message.user_id, self._now()
        )
        if kept is not None:  # None: deleted before (a retry), the upkeep has the bytes
            log.info(
                "attachment_deleted",
                attachment_id=message.attachment_id,
                group_id=message.group_id,
                user_id=message.user_id,
            )
            await self.purge([kept])
        return AttachmentDeleted(id=message.attachment_id)

    async def expense_deleted(self, event: ExpenseDeleted) -> None:
        """The expense is gone: so are its attachments (told again, nothing more happens)."""
        kept = await store.mark_expense_deleted(
            self._db, event.group_id, event.expense_id, event.deleted_by, self._now()
        )
        if kept:
            log.info(
                "expense_attachments_deleted",
                group_id=event.group_id,
                expense_id=event.expense_id,
                attachments=len(kept),
            )
            await self.purge(kept)

    async def group_deleted(self, event: GroupDeleted) -> None:
        """The group is gone: so are its receipts. The first SWEEP_BATCH files' bytes go at
        once, the rest with the upkeep (a group may hold thousands)."""
        kept = await store.mark_group_deleted(
            self._db, event.group_id, event.deleted_by, self._now()
        )
        if kept:
            log.info("group_attachments_deleted", group_id=event.group_id, attachments=len(kept))
            await self.purge(kept[:SWEEP_BATCH])

    async def sweep(self) -> int:
        """Remove the bytes that failed removals left behind; how many attachments'."""
        before = self._now() - SWEEP_GRACE
        pending = await store.unpurged(self._db, before, SWEEP_BATCH)
        return await self.purge(pending) if pending else 0

    async def purge(self, deleted: Sequence[StoredKeys]) -> int:
        """Remove deleted attachments' bytes and note which are gone; a failure is logged
        and left to the upkeep, never raised (the deletion itself is done)."""
        purged: list[str] = []
        for kept in deleted:
            if await self._remove(kept):
                purged.append(kept.id)
        await store.mark_purged(self._db, purged, self._now())
        return len(purged)

    async def _remove(self, kept: StoredKeys) -> bool:
        """Delete the objects of one attachment; False when the storage failed."""
        results = await asyncio.gather(
            *(self._storage.delete(key) for key in kept.keys), return_exceptions=True
        )
        failed = [result for result in results if isinstance(result, BaseException)]
        for error in failed:
            log.warning(
                "attachment_bytes_not_removed",
                attachment_id=kept.id,
                store=self._storage.name,
                error=repr(error),
            )
        return not failed

    def _now(self) -> datetime:
        return self._context.now()


class Files(Actor):
    """Attachments of expenses and files of conversations: rows in PostgreSQL, bytes in
    the storage port."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        storage: Storage,
        *,
        clock: Clock = wall_clock,
        sweep_interval: float = 600.0,
    ) -> None:
        self._sweep_interval = sweep_interval
        context = self.context(pool, clock)
        self.attachments = Attachments(context, storage)
        self.chat = ChatFiles(context, self.attachments)

    async def on_start(self) -> None:
        # one shard does the upkeep for all: they share the table
        if self.shard == 0 and self._sweep_interval > 0:
            self.every(self._sweep_interval, self.upkeep, "sweep")

    async def upkeep(self) -> None:
        """Delete chat files never sent, then remove the bytes removals left behind."""
        await self.chat.sweep_unsent()
        await self.attachments.sweep()

    @handles(StoreAttachment)
    async def store_attachment(self, message: StoreAttachment) -> AttachmentView:
        return await self.attachments.store(message)

    @handles(ListAttachments)
    async def list_attachments(self, message: ListAttachments) -> AttachmentList:
        return await self.attachments.of_expense(message)

    @handles(GetAttachment)
    async def get_attachment(self, message: GetAttachment) -> AttachmentContent:
        return await self.attachments.get(message)

    @handles(DeleteAttachment)
    async def delete_attachment(self, message: DeleteAttachment) -> AttachmentDeleted:
        return await self.attachments.delete(message)

    @handles(ExpenseDeleted)
    async def expense_deleted(self, event: ExpenseDeleted) -> None:
        await self.attachments.expense_deleted(event)

    @handles(GroupDeleted)
    async def group_deleted(self, event: GroupDeleted) -> None:
        await self.attachments.group_deleted(event)

    @handles(StoreChatAttachment)
    async def store_chat_attachment(self, message: StoreChatAttachment) -> ChatAttachmentView:
        return await self.chat.store(message)

    @handles(GetChatAttachment)
    async def get_chat_attachment(self, message: GetChatAttachment) -> AttachmentContent:
        return await self.chat.get(message)

    @handles(AttachChatFiles)
    async def attach_chat_files(self, message: AttachChatFiles) -> ChatAttachmentList:
        return await self.chat.attach(message)

    @handles(DetachChatFiles)
    async def detach_chat_files(self, message: DetachChatFiles) -> ChatFilesDone:
        return await self.chat.detach(message)

    @handles(DeleteChatFiles)
    async def delete_chat_files(self, message: DeleteChatFiles) -> ChatFilesDone:
        return await self.chat.delete_with_message(message)

    @handles(ChatMessageDeleted)
    async def on_chat_message_deleted(self, event: ChatMessageDeleted) -> None:
        await self.chat.delete_with_message(
            DeleteChatFiles(
                conversation_id=event.conversation_id,
                message_id=event.message_id,
                user_id=event.user_id,
            )
        )
