"""Dead letters: messages whose handling failed for good, kept for inspection and replay."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import msgspec

from actors.runtime.cursors import InvalidCursor
from actors.runtime.errors import DomainError


class DeadLetter(msgspec.Struct, kw_only=True):
    """One message that could not be handled, with why and where it was headed."""

    id: str
    actor: str
    shard: int
    message_type: str
    message_id: str
    trace_id: str
    attempts: int
    error: str
    body: msgspec.Raw  # the message as JSON, for people
    envelope: bytes | None  # the codec's bytes, for replay; None when it would not encode
    created_at: datetime
    replayed_at: datetime | None = None


class DeadLetterNotFound(DomainError):
    """No dead letter has that id."""

    code = "dead_letter_not_found"
    category = "not_found"


class DeadLetterAlreadyReplayed(DomainError):
    """The dead letter was replayed before; a second replay could apply it twice."""

    code = "dead_letter_already_replayed"
    category = "conflict"


class DeadLetterNotReplayable(DomainError):
    """The dead letter's message could not be encoded, so it cannot be sent again."""

    code = "dead_letter_not_replayable"
    category = "conflict"


class DeadLetterStore(Protocol):
    """Where dead letters are kept: PostgreSQL in a node, memory in unit tests."""

    async def add(self, letter: DeadLetter) -> None: ...

    async def get(self, letter_id: str) -> DeadLetter | None: ...

    async def list(
        self, *, limit: int = 50, cursor: str | None = None, actor: str | None = None
    ) -> tuple[list[DeadLetter], str | None]:
        """Newest first; the second value is the cursor of the next page, or None."""
        ...

    async def mark_replayed(self, letter_id: str) -> bool:
        """Mark it replayed unless it already was; True when this call marked it."""
        ...

    async def unmark_replayed(self, letter_id: str) -> None:
        """Undo mark_replayed after a replay that could not be sent."""
        ...


def encode_cursor(created_at: datetime, letter_id: str) -> str:
    raw = msgspec.json.encode([created_at.isoformat(), letter_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; raises InvalidCursor for anything we did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, letter_id = msgspec.json.decode(raw, type=tuple[str, str])
        return datetime.fromisoformat(stamp), letter_id
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidCursor from None


class MemoryDeadLetterStore:
    """Dead letters in a dict: for unit tests and for nodes run without a database."""

    def __init__(self) -> None:
        self._letters: dict[str, DeadLetter] = {}

    async def add(self, letter: DeadLetter) -> None:
        self._letters[letter.id] = letter

    async def get(self, letter_id: str) -> DeadLetter | None:
        return self._letters.get(letter_id)

    async def list(
        self, *, limit: int = 50, cursor: str | None = None, actor: str | None = None
    ) -> tuple[list[DeadLetter], str | None]:
        letters = sorted(
            (x for x in self._letters.values() if actor is None or x.actor == actor),
            key=lambda x: (x.created_at, x.id),
            reverse=True,
        )
        if cursor is not None:
            position = decode_cursor(cursor)
            letters = [x for x in letters if (x.created_at, x.id) < position]
        page = letters[:limit]
        more = len(letters) > limit
        return page, encode_cursor(page[-1].created_at, page[-1].id) if more else None

    async def mark_replayed(self, letter_id: str) -> bool:
        letter = self._letters.get(letter_id)
        if letter is None or letter.replayed_at is not None:
            return False
        letter.replayed_at = datetime.now(UTC)
        return True

    async def unmark_replayed(self, letter_id: str) -> None:
        letter = self._letters.get(letter_id)
        if letter is not None:
            letter.replayed_at = None


_COLUMNS = (
    "id, actor, shard, message_type, message_id, trace_id, attempts, error, body::text AS body,"
    " envelope, created_at, replayed_at"
)


class PgDeadLetterStore:
    """Dead letters in the runtime's `runtime_dead_letters` table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, letter: DeadLetter) -> None:
        await self._pool.execute(
            """
            INSERT INTO runtime_dead_letters
                (id, actor, shard, message_type, message_id, trace_id, attempts, error, body,
                 envelope, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)
            ON CONFLICT (id) DO NOTHING
            """,
            letter.id,
            letter.actor,
            letter.shard,
            letter.message_type,
            letter.message_id,
            letter.trace_id,
            letter.attempts,
            letter.error,
            bytes(letter.body).decode(),
            letter.envelope,
            letter.created_at,
        )

    async def get(self, letter_id: str) -> DeadLetter | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM runtime_dead_letters WHERE id = $1", letter_id
        )
        return _from_row(row) if row is not None else None

    async def list(
        self, *, limit: int = 50, cursor: str | None = None, actor: str | None = None
    ) -> tuple[list[DeadLetter], str | None]:
        after: tuple[datetime, str] | None = decode_cursor(cursor) if cursor else None
        rows = await self._pool.fetch(
            f"""
            SELECT {_COLUMNS} FROM runtime_dead_letters
            WHERE ($1::text IS NULL OR actor = $1)
              AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
            ORDER BY created_at DESC, id DESC
            LIMIT $4
            """,
            actor,
            after[0] if after else None,
            after[1] if after else "",
            limit + 1,
        )
        letters = [_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return letters, encode_cursor(letters[-1].created_at, letters[-1].id) if more else None

    async def mark_replayed(self, letter_id: str) -> bool:
        marked = await self._pool.fetchval(
            "UPDATE runtime_dead_letters SET replayed_at = now()"
            " WHERE id = $1 AND replayed_at IS NULL RETURNING id",
            letter_id,
        )
        return marked is not None

    async def unmark_replayed(self, letter_id: str) -> None:
        await self._pool.execute(
            "UPDATE runtime_dead_letters SET replayed_at = NULL WHERE id = $1", letter_id
        )


def _from_row(row: Any) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        actor=row["actor"],
        shard=row["shard"],
        message_type=row["message_type"],
        message_id=row["message_id"],
        trace_id=row["trace_id"],
        attempts=row["attempts"],
        error=row["error"],
        body=msgspec.Raw(row["body"].encode()),
        envelope=row["envelope"],
        created_at=row["created_at"],
        replayed_at=row["replayed_at"],
    )
