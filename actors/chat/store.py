"""The chat actor's SQL and nothing else: conversations, the members of groups as chat
knows them, messages, read markers and the rate limit (splitgo/schema/0014_chat.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from actors.chat.rules import Bucket
from actors.runtime import Executor

UNREAD_COUNTED_MAX = 100  # unread messages counted per conversation (shown as 99+ past it)


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: str
    kind: str
    subject_id: str
    group_id: str | None
    title: str
    created_at: datetime
    last_seq: int
    last_message_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessageRow:
    conversation_id: str
    seq: int
    id: str
    author_id: str
    text: str
    attachments: list[dict[str, Any]]
    mentions: list[str]
    via: str
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListedConversation:
    conversation: ConversationRow
    participant_count: int
    participants: list[str]
    last_read_seq: int
    unread: int
    last_message: MessageRow | None = field(default=None)


_CONVERSATION = (
    "c.id, c.kind, c.subject_id, c.group_id, c.title, c.created_at, c.last_seq, c.last_message_at"
)
_MESSAGE = (
    "m.conversation_id, m.seq, m.id, m.author_id, m.text, m.attachments, m.mentions, m.via,"
    " m.created_at, m.edited_at, m.deleted_at"
)
_json = msgspec.json.Decoder(list[dict[str, Any]])


def _conversation(row: Any) -> ConversationRow:
    return ConversationRow(
        id=row["id"],
        kind=row["kind"],
        subject_id=row["subject_id"],
        group_id=row["group_id"],
        title=row["title"],
        created_at=row["created_at"],
        last_seq=row["last_seq"],
        last_message_at=row["last_message_at"],
    )


def _message(row: Any) -> MessageRow:
    attachments = row["attachments"]
    return MessageRow(
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        id=row["id"],
        author_id=row["author_id"],
        text=row["text"],
        attachments=_json.decode(attachments) if isinstance(attachments, str) else attachments,
        mentions=list(row["mentions"]),
        via=row["via"],
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        deleted_at=row["deleted_at"],
    )


# ── conversations ──────────────────────────────────────────────────────────────────────


async def conversation(db: Executor, conversation_id: str) -> ConversationRow | None:
    """The conversation, unless there is none or its group was deleted."""
    row = await db.fetchrow(
        f"SELECT {_CONVERSATION} FROM chat_conversations c WHERE c.id = $1 AND c.closed_at IS NULL",
        conversation_id,
    )
    return None if row is None else _conversation(row)


async def insert_conversation(
    db: Executor, row: ConversationRow, created_by: str, direct: Sequence[str] = ()
) -> bool:
    """Keep a new conversation (the two people of a direct one); False: it exists."""
    made = await db.fetchval(
        "INSERT INTO chat_conversations (id, kind, subject_id, group_id, title, created_by,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING"
        " RETURNING true",
        row.id,
        row.kind,
        row.subject_id,
        row.group_id,
        row.title,
        created_by,
        row.created_at,
    )
    if made and direct:
        await db.execute(
            "INSERT INTO chat_direct (conversation_id, user_id)"
            " SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            row.id,
            list(direct),
        )
    return bool(made)


async def retitle(db: Executor, conversation_id: str, title: str) -> None:
    await db.execute(
        "UPDATE chat_conversations SET title = $2 WHERE id = $1 AND title <> $2",
        conversation_id,
        title,
    )


async def participants(db: Executor, conversation: ConversationRow) -> list[str]:
    """Who is in the conversation now, in a stable order."""
    if conversation.group_id is None:
        rows = await db.fetch(
            "SELECT user_id FROM chat_direct WHERE conversation_id = $1 ORDER BY user_id",
            conversation.id,
        )
    else:
        rows = await db.fetch(
            "SELECT user_id FROM chat_members WHERE group_id = $1 AND left_at IS NULL"
            " ORDER BY user_id",
            conversation.group_id,
        )
    return [row["user_id"] for row in rows]


async def is_participant(db: Executor, conversation: ConversationRow, user_id: str) -> bool:
    if conversation.group_id is None:
        query = "SELECT true FROM chat_direct WHERE conversation_id = $1 AND user_id = $2"
        return bool(await db.fetchval(query, conversation.id, user_id))
    query = "SELECT true FROM chat_members WHERE group_id = $1 AND user_id = $2 AND left_at IS NULL"
    return bool(await db.fetchval(query, conversation.group_id, user_id))


# The conversations user $1 is in: those of the groups they are a member of, and their
# direct ones (the WITH clause both lists and the badge's total read from).
_MINE = """
    WITH mine AS (
        SELECT c.* FROM chat_members m
        JOIN chat_conversations c ON c.group_id = m.group_id AND c.closed_at IS NULL
        WHERE m.user_id = $1 AND m.left_at IS NULL
        UNION ALL
        SELECT c.* FROM chat_direct d
        JOIN chat_conversations c ON c.id = d.conversation_id AND c.closed_at IS NULL
        WHERE d.user_id = $1
    )
"""
# Messages of conversation c after read marker r that user $1 has not read (others',
# not deleted), counted up to UNREAD_COUNTED_MAX: the work stays bounded however far behind.
_UNREAD = f"""
    (SELECT count(*) FROM (
        SELECT 1 FROM chat_messages u
        WHERE u.conversation_id = c.id AND u.seq > coalesce(r.last_read_seq, 0)
          AND u.author_id <> $1 AND u.deleted_at IS NULL
        LIMIT {UNREAD_COUNTED_MAX}) counted)
"""


async def conversations_of(
    db: Executor, user_id: str, *, offset: int, limit: int, listed: int
) -> list[ListedConversation]:
    """The user's conversations, the latest message first (then the newest made): each
    with `listed` participants, its unread count (up to UNREAD_COUNTED_MAX) and its last
    message."""
    rows = await db.fetch(
        f"""
        {_MINE}
        SELECT {_CONVERSATION}, coalesce(r.last_read_seq, 0) AS last_read_seq,
            {_UNREAD} AS unread
        FROM mine c
        LEFT JOIN chat_reads r ON r.conversation_id = c.id AND r.user_id = $1
        ORDER BY c.last_message_at DESC NULLS LAST, c.created_at DESC, c.id
        OFFSET $2 LIMIT $3
        """,
        user_id,
        offset,
        limit,
    )
    found = [(_conversation(row), row["last_read_seq"], row["unread"]) for row in rows]
    if not found:
        return []
    last = await _last_messages(db, [(c.id, c.last_seq) for c, _, _ in found])
    people = await _some_participants(db, [c for c, _, _ in found], listed)
    return [
        ListedConversation(
            conversation=c,
            participant_count=people[c.id][0],
            participants=people[c.id][1],
            last_read_seq=read,
            unread=unread,
            last_message=last.get(c.id),
        )
        for c, read, unread in found
    ]


async def _last_messages(db: Executor, seqs: list[tuple[str, int]]) -> dict[str, MessageRow]:
    rows = await db.fetch(
        f"SELECT {_MESSAGE} FROM chat_messages m"
        " JOIN unnest($1::text[], $2::bigint[]) AS last (id, seq)"
        " ON m.conversation_id = last.id AND m.seq = last.seq",
        [c for c, _ in seqs],
        [s for _, s in seqs],
    )
    return {row["conversation_id"]: _message(row) for row in rows}


async def _some_participants(
    db: Executor, conversations: list[ConversationRow], listed: int
) -> dict[str, tuple[int, list[str]]]:
    """Per conversation: how many are in it, and the first `listed` of them."""
    found: dict[str, tuple[int, list[str]]] = {}
    groups = sorted({c.group_id for c in conversations if c.group_id is not None})
    by_group: dict[str, tuple[int, list[str]]] = {}
    if groups:
        rows = await db.fetch(
            "SELECT group_id, count(*) OVER (PARTITION BY group_id) AS total, user_id,"
            " row_number() OVER (PARTITION BY group_id ORDER BY user_id) AS n"
            " FROM chat_members WHERE group_id = ANY($1::text[]) AND left_at IS NULL",
            groups,
        )
        for row in rows:
            _, names = by_group.setdefault(row["group_id"], (row["total"], []))
            if row["n"] <= listed:
                names.append(row["user_id"])
    direct = [c.id for c in conversations if c.group_id is None]
    if direct:
        rows = await db.fetch(
            "SELECT conversation_id, user_id FROM chat_direct"
            " WHERE conversation_id = ANY($1::text[]) ORDER BY user_id",
            direct,
        )
        pairs: dict[str, list[str]] = {}
        for row in rows:
            pairs.setdefault(row["conversation_id"], []).append(row["user_id"])
        for conversation_id, people in pairs.items():
            found[conversation_id] = (len(people), people)
    for c in conversations:
        if c.group_id is not None:
            found[c.id] = by_group.get(c.group_id, (0, []))
        found.setdefault(c.id, (0, []))
    return found


async def unread_total(db: Executor, user_id: str) -> tuple[int, int]:
    """(unread messages, conversations with any), each conversation counted up to
    UNREAD_COUNTED_MAX."""
    row = await db.fetchrow(
        f"""
        {_MINE}, counts AS (
            SELECT {_UNREAD} AS unread
            FROM mine c
            LEFT JOIN chat_reads r ON r.conversation_id = c.id AND r.user_id = $1
            WHERE c.last_seq > 0
        )
        SELECT coalesce(sum(unread), 0) AS total, count(*) FILTER (WHERE unread > 0) AS n
        FROM counts
        """,
        user_id,
    )
    return int(row["total"]), int(row["n"])


# ── the members of groups ──────────────────────────────────────────────────────────────


async def group_copied(db: Executor, group_id: str) -> bool:
    """Whether the group's members were copied from splits (or it was deleted)."""
    return bool(await db.fetchval("SELECT true FROM chat_groups WHERE group_id = $1", group_id))


async def copy_members(db: Executor, group_id: str, members: Sequence[str], now: datetime) -> None:
    """The first copy of a group's members: who left since keeps their `left_at`."""
    await db.execute(
        "INSERT INTO chat_members (group_id, user_id, changed_at)"
        " SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING",
        group_id,
        list(members),
        now,
    )
    await db.execute(
        "INSERT INTO chat_groups (group_id, copied_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        group_id,
        now,
    )


async def member_joined(db: Executor, group_id: str, user_id: str, now: datetime) -> None:
    await db.execute(
        "INSERT INTO chat_members (group_id, user_id, changed_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (group_id, user_id) DO UPDATE SET left_at = NULL, changed_at = $3",
        group_id,
        user_id,
        now,
    )


async def member_left(db: Executor, group_id: str, user_id: str, now: datetime) -> None:
    await db.execute(
        "INSERT INTO chat_members (group_id, user_id, left_at, changed_at) VALUES ($1, $2, $3, $3)"
        " ON CONFLICT (group_id, user_id) DO UPDATE SET left_at = $3, changed_at = $3",
        group_id,
        user_id,
        now,
    )


async def group_deleted(db: Executor, group_id: str, now: datetime) -> None:
    """Every conversation of the group is gone; a late copy of its members changes nothing."""
    await db.execute(
        "UPDATE chat_conversations SET closed_at = $2 WHERE group_id = $1 AND closed_at IS NULL",
        group_id,
        now,
    )
    await db.execute(
        "INSERT INTO chat_groups (group_id, copied_at, deleted_at) VALUES ($1, $2, $2)"
        " ON CONFLICT (group_id) DO UPDATE SET deleted_at = $2",
        group_id,
        now,
    )


async def group_gone(db: Executor, group_id: str) -> bool:
    found = await db.fetchval("SELECT deleted_at FROM chat_groups WHERE group_id = $1", group_id)
    return found is not None


async def replace_member(
    db: Executor, group_id: str, placeholder_id: str, user_id: str, now: datetime
) -> None:
    """A placeholder claimed: its messages and markers are the claimer's from now on."""
    await member_left(db, group_id, placeholder_id, now)
    await member_joined(db, group_id, user_id, now)


# ── messages ───────────────────────────────────────────────────────────────────────────


async def message_by_id(db: Executor, conversation_id: str, message_id: str) -> MessageRow | None:
    row = await db.fetchrow(
        f"SELECT {_MESSAGE} FROM chat_messages m WHERE m.id = $1 AND m.conversation_id = $2",
        message_id,
        conversation_id,
    )
    return None if row is None else _message(row)


async def any_message(db: Executor, message_id: str) -> MessageRow | None:
    """The message with this id in whichever conversation (a retry's id, checked)."""
    row = await db.fetchrow(f"SELECT {_MESSAGE} FROM chat_messages m WHERE m.id = $1", message_id)
    return None if row is None else _message(row)


async def messages_before(
    db: Executor, conversation_id: str, before: int | None, limit: int
) -> list[MessageRow]:
    """Newest first: the `limit` messages before seq `before` (or the newest)."""
    rows = await db.fetch(
        f"SELECT {_MESSAGE} FROM chat_messages m WHERE m.conversation_id = $1"
        " AND ($2::bigint IS NULL OR m.seq < $2) ORDER BY m.seq DESC LIMIT $3",
        conversation_id,
        before,
        limit,
    )
    return [_message(row) for row in rows]


async def edit_message(
    db: Executor, message_id: str, text: str, mentions: list[str], now: datetime
) -> None:
    await db.execute(
        "UPDATE chat_messages SET text = $2, mentions = $3, edited_at = $4 WHERE id = $1",
        message_id,
        text,
        mentions,
        now,
    )


async def delete_message(db: Executor, message_id: str, now: datetime) -> None:
    await db.execute(
        "UPDATE chat_messages SET text = '', attachments = '[]', mentions = '{}',"
        " deleted_at = $2 WHERE id = $1",
        message_id,
        now,
    )


# ── read markers ───────────────────────────────────────────────────────────────────────


async def mark_read(db: Executor, conversation_id: str, user_id: str, seq: int) -> int:
    """Move the marker up to `seq` (never back); where it is now."""
    marker = await db.fetchval(
        "INSERT INTO chat_reads (conversation_id, user_id, last_read_seq) VALUES ($1, $2, $3)"
        " ON CONFLICT (conversation_id, user_id) DO UPDATE"
        " SET last_read_seq = greatest(chat_reads.last_read_seq, $3)"
        " RETURNING last_read_seq",
        conversation_id,
        user_id,
        seq,
    )
    return int(marker)


async def read_marker(db: Executor, conversation_id: str, user_id: str) -> int:
    marker = await db.fetchval(
        "SELECT last_read_seq FROM chat_reads WHERE conversation_id = $1 AND user_id = $2",
        conversation_id,
        user_id,
    )
    return int(marker or 0)


async def unread_in(db: Executor, conversation_id: str, user_id: str, after: int) -> int:
    count = await db.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM chat_messages WHERE conversation_id = $1"
        f" AND seq > $3 AND author_id <> $2 AND deleted_at IS NULL"
        f" LIMIT {UNREAD_COUNTED_MAX}) counted",
        conversation_id,
        user_id,
        after,
    )
    return int(count)


# ── the rate limit ─────────────────────────────────────────────────────────────────────


async def bucket(db: Executor, user_id: str) -> Bucket | None:
    """The person's bucket, locked for the caller's transaction."""
    row = await db.fetchrow(
        "SELECT tokens, extract(epoch FROM at) AS at FROM chat_rate WHERE user_id = $1 FOR UPDATE",
        user_id,
    )
    return None if row is None else Bucket(tokens=row["tokens"], at=float(row["at"]))


async def save_bucket(db: Executor, user_id: str, bucket: Bucket) -> None:
    await db.execute(
        "INSERT INTO chat_rate (user_id, tokens, at) VALUES ($1, $2, to_timestamp($3))"
        " ON CONFLICT (user_id) DO UPDATE SET tokens = $2, at = to_timestamp($3)",
        user_id,
        bucket.tokens,
        bucket.at,
    )


# ── posting: a message in few round trips (the shard's time per post) ──────────────────


async def posting_lookup(
    db: Executor, conversation_id: str, message_id: str
) -> tuple[ConversationRow, list[str], bool] | None:
    """The conversation, its participants and whether `message_id` is known: one query."""
    row = await db.fetchrow(
        f"SELECT {_CONVERSATION},"
        " CASE WHEN c.group_id IS NULL"
        "  THEN array(SELECT user_id FROM chat_direct WHERE conversation_id = c.id"
        "   ORDER BY user_id)"
        "  ELSE array(SELECT user_id FROM chat_members WHERE group_id = c.group_id"
        "   AND left_at IS NULL ORDER BY user_id) END AS participants,"
        " EXISTS (SELECT 1 FROM chat_messages WHERE id = $2) AS known"
        " FROM chat_conversations c WHERE c.id = $1 AND c.closed_at IS NULL",
        conversation_id,
        message_id,
    )
    if row is None:
        return None
    return _conversation(row), list(row["participants"]), bool(row["known"])


async def take_rate_token(
    db: Executor, user_id: str, now: float, burst: int, per_second: float
) -> bool:
    """Take one token from the person's bucket in one upsert; False when there is none."""
    taken = await db.fetchval(
        "INSERT INTO chat_rate AS r (user_id, tokens, at) VALUES ($1, $2::float8 - 1,"
        " to_timestamp($3)) ON CONFLICT (user_id) DO UPDATE SET"
        " tokens = least($2::float8, r.tokens + greatest(0, $3 - extract(epoch FROM r.at))"
        "  * $4) - 1, at = greatest(to_timestamp($3), r.at)"
        " WHERE least($2::float8, r.tokens + greatest(0, $3 - extract(epoch FROM r.at)) * $4)"
        "  >= 1 RETURNING true",
        user_id,
        float(burst),
        now,
        per_second,
    )
    return bool(taken)


async def append_message(db: Executor, row: MessageRow) -> tuple[int, datetime | None]:
    """Number, insert and mark read by its author in one statement: (seq, previous_at)."""
    found = await db.fetchrow(
        "WITH s AS (UPDATE chat_conversations c SET last_seq = c.last_seq + 1,"
        "  last_message_at = $2"
        "  FROM (SELECT last_message_at FROM chat_conversations WHERE id = $1 FOR UPDATE) b"
        "  WHERE c.id = $1 RETURNING c.last_seq, b.last_message_at AS previous_at),"
        " m AS (INSERT INTO chat_messages (conversation_id, seq, id, author_id, text,"
        "  attachments, mentions, via, created_at)"
        "  SELECT $1, s.last_seq, $3, $4, $5, $6::jsonb, $7, $8, $2 FROM s RETURNING seq),"
        " r AS (INSERT INTO chat_reads (conversation_id, user_id, last_read_seq)"
        "  SELECT $1, $4, m.seq FROM m ON CONFLICT (conversation_id, user_id) DO UPDATE"
        "  SET last_read_seq = greatest(chat_reads.last_read_seq, excluded.last_read_seq))"
        " SELECT last_seq, previous_at FROM s",
        row.conversation_id,
        row.created_at,
        row.id,
        row.author_id,
        row.text,
        msgspec.json.encode(row.attachments).decode(),
        row.mentions,
        row.via,
    )
    return int(found["last_seq"]), found["previous_at"]


async def messages_by_author(db: Executor, user_id: str, limit: int) -> list[Any]:
    """The messages `user_id` wrote, with their conversation's kind and title, oldest
    first, at most `limit` (for the author's data export)."""
    return await db.fetch(
        """
        SELECT m.id, m.conversation_id, c.kind, c.title, m.text, m.created_at, m.edited_at,
               m.deleted_at IS NOT NULL AS deleted
        FROM chat_messages m JOIN chat_conversations c ON c.id = m.conversation_id
        WHERE m.author_id = $1
        ORDER BY m.created_at, m.id
        LIMIT $2
        """,
        user_id,
        limit,
    )
