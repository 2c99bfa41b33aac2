"""The files actor: attachments of expenses, their rows in PostgreSQL and their bytes in
the storage port.

The actor is the mailbox and its handlers; the work is done by its part `attachments`,
given the shard's `Context` (database, clock) and the `Storage`. Shards are keyed by
group (`files_key`), so one group's attachments change in order.

Storing: the upload is hashed, then sniffed, checked, stripped and thumbnailed on a thread
(`processing.process`), both files are put in the storage under fresh random keys, and
the row is written last: a row always points at bytes that exist. A retry with the same
`attachment_id` finds the row and answers it without a second effect; a failure before the
row is written removes what was put. Deleting marks the row and removes the bytes; bytes a
failed removal left behind are removed by shard 0's upkeep (`sweep`). An expense deleted
in splits (`ExpenseDeleted`, when the node subscribes this actor to it) deletes its
attachments the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg
import structlog

from actors.files import store
from actors.files.messages import (
    MAX_PER_EXPENSE,
    AttachmentContent,
    AttachmentDeleted,
    AttachmentList,
    AttachmentNotFound,
    AttachmentView,
    DeleteAttachment,
    GetAttachment,
    ListAttachments,
    StoreAttachment,
    TooManyAttachments,
)
from actors.files.processing import process
from actors.files.rules import safe_filename, thumbnail_filename
from actors.files.storage import ObjectMissing, Storage, object_key
from actors.files.store import AttachmentRow, StoredKeys
from actors.runtime import (
    Actor,
    Clock,
    Context,
    IdempotencyConflict,
    handles,
    rfc3339,
    wall_clock,
)
from actors.splits.messages import ExpenseDeleted

log = structlog.get_logger("actors.files")

# deleted attachments whose bytes the upkeep removes per round, and how long it leaves a
# fresh deletion to the handler that made it (which removes the bytes itself)
SWEEP_BATCH = 100
SWEEP_GRACE = timedelta(minutes=5)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def view_of(row: AttachmentRow) -> AttachmentView:
    """An attachment as the API shows it."""
    return AttachmentView(
        id=row.id,
        group_id=row.group_id,
        expense_id=row.expense_id,
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
        # hashed on a thread: ten megabytes take a few milliseconds the loop should not wait
        upload_sha256 = await asyncio.to_thread(_sha256, message.content)
        existing = await store.by_id(self._db, message.attachment_id)
        if existing is not None:
            return self._replay(existing, message, upload_sha256)
        count = await store.count_of_expense(self._db, message.group_id, message.expense_id)
        if count >= MAX_PER_EXPENSE:
            raise TooManyAttachments(
                f"the expense has {count} attachments; at most {MAX_PER_EXPENSE}",
                details={"limit": MAX_PER_EXPENSE},
            )
        # sniffing, the size and pixel limits, metadata stripping and the thumbnail:
        # TooLarge, UnsupportedType or InvalidImage before anything is kept
        processed = await asyncio.to_thread(process, message.content)
        token = uuid.uuid4().hex
        original_key, thumbnail_key = object_key("original", token), object_key("thumbnail", token)
        row = AttachmentRow(
            id=message.attachment_id,
            group_id=message.group_id,
            expense_id=message.expense_id,
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
            return self._replay(first, message, upload_sha256)
        log.info(
            "attachment_stored",
            attachment_id=row.id,
            group_id=row.group_id,
            expense_id=row.expense_id,
            content_type=row.content_type,
            size=row.size,
            uploaded_size=len(message.content),
        )
        return view_of(row)

    def _replay(
        self, first: AttachmentRow, message: StoreAttachment, upload_sha256: str
    ) -> AttachmentView:
        """The first upload with this id answers its retry; anything else under the id is a
        conflict (it says no more about the first than that it exists)."""
        same = (
            first.group_id == message.group_id
            and first.expense_id == message.expense_id
            and first.uploaded_by == message.user_id
            and first.upload_sha256 == upload_sha256
        )
        if not same:
            raise IdempotencyConflict(
                "this attachment id was used for another upload",
                details={"field": "$.attachment_id"},
            )
        return view_of(first)

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
        if message.variant == "thumbnail":
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
                variant=message.variant,
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
            await self._purge([kept])
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
            await self._purge(kept)

    async def sweep(self) -> int:
        """Remove the bytes that failed removals left behind; how many attachments'."""
        before = self._now() - SWEEP_GRACE
        pending = await store.unpurged(self._db, before, SWEEP_BATCH)
        return await self._purge(pending) if pending else 0

    async def _purge(self, deleted: Sequence[StoredKeys]) -> int:
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
    """Attachments of expenses: rows in PostgreSQL, bytes in the storage port."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        storage: Storage,
        *,
        clock: Clock = wall_clock,
        sweep_interval: float = 600.0,
    ) -> None:
        self._sweep_interval = sweep_interval
        self.attachments = Attachments(self.context(pool, clock), storage)

    async def on_start(self) -> None:
        # one shard does the upkeep for all: they share the table
        if self.shard == 0 and self._sweep_interval > 0:
            self.every(self._sweep_interval, self.attachments.sweep, "sweep")

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
