"""Every SQL statement of the files actor, over its own table (`attachments`): an
expense's attachments (`group_id`, `expense_id`) and a conversation's files
(`conversation_id`, and `message_id` once a message carries them).

Each function takes what runs the statement (an `actors.runtime.Executor`): the pool
(autocommit) or an open `Transaction`. Times are passed in; the actor's clock is the only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from actors.runtime import Executor

_COLUMNS = (
    "id, group_id, expense_id, uploaded_by, filename, content_type, size, sha256,"
    " upload_sha256, storage_key, thumbnail_key, thumbnail_type, created_at, deleted_at,"
    " conversation_id, message_id"
)


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    """One attachment as stored: what it is, where its bytes are, whether it is deleted.
    An expense's has `group_id` and `expense_id`; a conversation's `conversation_id`."""

    id: str
    group_id: str | None
    expense_id: str | None
    uploaded_by: str
    filename: str
    content_type: str
    size: int
    sha256: str  # of the stored original
    upload_sha256: str  # of the bytes as uploaded: a retry's are the same
    storage_key: str
    thumbnail_key: str | None
    thumbnail_type: str | None
    created_at: datetime
    deleted_at: datetime | None = None
    conversation_id: str | None = None
    message_id: str | None = None  # the chat message that carries it, once sent


@dataclass(frozen=True, slots=True)
class Owner:
    """What an attachment belongs to: an expense of a group, or a conversation."""

    group_id: str | None = None
    expense_id: str | None = None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredKeys:
    """Where a deleted attachment's bytes are, until they are removed."""

    id: str
    storage_key: str
    thumbnail_key: str | None

    @property
    def keys(self) -> list[str]:
        return [key for key in (self.storage_key, self.thumbnail_key) if key]


def _row(record: object) -> AttachmentRow:
    return AttachmentRow(**dict(record))  # type: ignore[call-overload]


async def insert(db: Executor, row: AttachmentRow) -> bool:
    """Keep a new attachment; False when its id is taken (the caller reads what is there)."""
    added = await db.fetchval(
        """
        INSERT INTO attachments (id, group_id, expense_id, uploaded_by, filename, content_type,
            size, sha256, upload_sha256, storage_key, thumbnail_key, thumbnail_type, created_at,
            conversation_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (id) DO NOTHING
        RETURNING true
        """,
        row.id,
        row.group_id,
        row.expense_id,
        row.uploaded_by,
        row.filename,
        row.content_type,
        row.size,
        row.sha256,
        row.upload_sha256,
        row.storage_key,
        row.thumbnail_key,
        row.thumbnail_type,
        row.created_at,
        row.conversation_id,
    )
    return bool(added)


async def by_id(db: Executor, attachment_id: str) -> AttachmentRow | None:
    """The attachment with this id, deleted or not, in whatever group."""
    record = await db.fetchrow(f"SELECT {_COLUMNS} FROM attachments WHERE id = $1", attachment_id)
    return None if record is None else _row(record)


async def live(db: Executor, group_id: str, attachment_id: str) -> AttachmentRow | None:
    """The attachment in this group, unless it is deleted."""
    record = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM attachments"
        " WHERE id = $1 AND group_id = $2 AND deleted_at IS NULL",
        attachment_id,
        group_id,
    )
    return None if record is None else _row(record)


async def of_expense(db: Executor, group_id: str, expense_id: str) -> list[AttachmentRow]:
    """The expense's attachments that are not deleted, oldest first."""
    records = await db.fetch(
        f"SELECT {_COLUMNS} FROM attachments"
        " WHERE group_id = $1 AND expense_id = $2 AND deleted_at IS NULL"
        " ORDER BY created_at, id",
        group_id,
        expense_id,
    )
    return [_row(record) for record in records]


async def count_of_expense(db: Executor, group_id: str, expense_id: str) -> int:
    count = await db.fetchval(
        "SELECT count(*) FROM attachments"
        " WHERE group_id = $1 AND expense_id = $2 AND deleted_at IS NULL",
        group_id,
        expense_id,
    )
    return int(count or 0)


async def mark_deleted(
    db: Executor, group_id: str, attachment_id: str, user_id: str, now: datetime
) -> StoredKeys | None:
    """Delete one attachment (the row stays, for the record); its keys, None when there is
    no live attachment of that id in the group."""
    record = await db.fetchrow(
        """
        UPDATE attachments SET deleted_at = $3, deleted_by = $4
        WHERE id = $1 AND group_id = $2 AND deleted_at IS NULL
        RETURNING id, storage_key, thumbnail_key
        """,
        attachment_id,
        group_id,
        now,
        user_id,
    )
    return None if record is None else StoredKeys(**dict(record))


async def mark_expense_deleted(
    db: Executor, group_id: str, expense_id: str, user_id: str, now: datetime
) -> list[StoredKeys]:
    """Delete every attachment of an expense; their keys."""
    records = await db.fetch(
        """
        UPDATE attachments SET deleted_at = $3, deleted_by = $4
        WHERE group_id = $1 AND expense_id = $2 AND deleted_at IS NULL
        RETURNING id, storage_key, thumbnail_key
        """,
        group_id,
        expense_id,
        now,
        user_id,
    )
    return [StoredKeys(**dict(record)) for record in records]


async def mark_group_deleted(
    db: Executor, group_id: str, user_id: str, now: datetime
) -> list[StoredKeys]:
    """Delete every attachment of a group's expenses; their keys."""
    records = await db.fetch(
        """
        UPDATE attachments SET deleted_at = $2, deleted_by = $3
        WHERE group_id = $1 AND deleted_at IS NULL
        RETURNING id, storage_key, thumbnail_key
        """,
        group_id,
        now,
        user_id,
    )
    return [StoredKeys(**dict(record)) for record in records]


async def mark_purged(db: Executor, attachment_ids: Sequence[str], now: datetime) -> None:
    """The bytes of these deleted attachments are gone from the storage."""
    if attachment_ids:
        await db.execute(
            "UPDATE attachments SET purged_at = $2"
            " WHERE id = ANY($1::text[]) AND deleted_at IS NOT NULL",
            list(attachment_ids),
            now,
        )


async def unpurged(db: Executor, deleted_before: datetime, limit: int) -> list[StoredKeys]:
    """Deleted attachments whose bytes a failed removal left in the storage."""
    records = await db.fetch(
        """
        SELECT id, storage_key, thumbnail_key FROM attachments
        WHERE deleted_at IS NOT NULL AND purged_at IS NULL AND deleted_at < $1
        ORDER BY deleted_at
        LIMIT $2
        """,
        deleted_before,
        limit,
    )
    return [StoredKeys(**dict(record)) for record in records]


# ── a conversation's files ─────────────────────────────────────────────────────────────


async def live_in_conversation(
    db: Executor, conversation_id: str, attachment_id: str
) -> AttachmentRow | None:
    """The conversation's file, unless it is deleted."""
    record = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM attachments"
        " WHERE id = $1 AND conversation_id = $2 AND deleted_at IS NULL",
        attachment_id,
        conversation_id,
    )
    return None if record is None else _row(record)


async def in_conversation(
    db: Executor, conversation_id: str, attachment_ids: Sequence[str]
) -> dict[str, AttachmentRow]:
    """These of the conversation's files that are not deleted, by id."""
    records = await db.fetch(
        f"SELECT {_COLUMNS} FROM attachments"
        " WHERE id = ANY($2::text[]) AND conversation_id = $1 AND deleted_at IS NULL",
        conversation_id,
        list(attachment_ids),
    )
    return {record["id"]: _row(record) for record in records}


async def count_unsent(db: Executor, conversation_id: str, user_id: str) -> int:
    """Files the person uploaded to the conversation and has not sent."""
    count = await db.fetchval(
        "SELECT count(*) FROM attachments WHERE conversation_id = $1 AND uploaded_by = $2"
        " AND message_id IS NULL AND deleted_at IS NULL",
        conversation_id,
        user_id,
    )
    return int(count or 0)


async def attach(
    db: Executor, conversation_id: str, user_id: str, message_id: str, ids: Sequence[str]
) -> int:
    """These files of the person's go in the message (those in it already stay); how many
    are in it now of those named."""
    count = await db.fetchval(
        """
        WITH taken AS (
            UPDATE attachments SET message_id = $3
            WHERE id = ANY($4::text[]) AND conversation_id = $1 AND uploaded_by = $2
                AND deleted_at IS NULL AND (message_id IS NULL OR message_id = $3)
            RETURNING id
        )
        SELECT count(*) FROM taken
        """,
        conversation_id,
        user_id,
        message_id,
        list(ids),
    )
    return int(count or 0)


async def detach(db: Executor, conversation_id: str, message_id: str) -> list[str]:
    """The message's files are unsent again; their ids."""
    records = await db.fetch(
        "UPDATE attachments SET message_id = NULL"
        " WHERE conversation_id = $1 AND message_id = $2 AND deleted_at IS NULL"
        " RETURNING id",
        conversation_id,
        message_id,
    )
    return [record["id"] for record in records]


async def mark_message_deleted(
    db: Executor, conversation_id: str, message_id: str, user_id: str, now: datetime
) -> list[StoredKeys]:
    """Delete every file of a chat message; their keys."""
    records = await db.fetch(
        """
        UPDATE attachments SET deleted_at = $3, deleted_by = $4
        WHERE conversation_id = $1 AND message_id = $2 AND deleted_at IS NULL
        RETURNING id, storage_key, thumbnail_key
        """,
        conversation_id,
        message_id,
        now,
        user_id,
    )
    return [StoredKeys(**dict(record)) for record in records]


async def mark_unsent_deleted(
    db: Executor, before: datetime, now: datetime, limit: int
) -> list[StoredKeys]:
    """Delete chat files uploaded before `before` and never sent (nobody deleted them:
    `deleted_by` stays empty); their keys."""
    records = await db.fetch(
        """
        UPDATE attachments SET deleted_at = $2
        WHERE id IN (
            SELECT id FROM attachments
            WHERE conversation_id IS NOT NULL AND message_id IS NULL
                AND deleted_at IS NULL AND created_at < $1
            ORDER BY created_at
            LIMIT $3
        )
            -- again here: a file sent meanwhile (its row changed) is checked as it is now
            AND message_id IS NULL AND deleted_at IS NULL
        RETURNING id, storage_key, thumbnail_key
        """,
        before,
        now,
        limit,
    )
    return [StoredKeys(**dict(record)) for record in records]
