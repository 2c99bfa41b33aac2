"""Rows as the chat actor's replies and live frames show them, with no IO."""

from __future__ import annotations

from typing import Any

import msgspec

from actors.chat.messages import AttachmentRef, ChatMessageView, ConversationView, Participant
from actors.chat.store import ConversationRow, ListedConversation, MessageRow
from actors.runtime import rfc3339

_frames = msgspec.json.Encoder()


def message_view(row: MessageRow) -> ChatMessageView:
    deleted = row.deleted_at is not None
    return ChatMessageView(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        author_id=row.author_id,
        text="" if deleted else row.text,
        created_at=rfc3339(row.created_at),
        edited_at=rfc3339(row.edited_at) if row.edited_at is not None else None,
        deleted=deleted,
        attachments=[] if deleted else [AttachmentRef(**ref) for ref in row.attachments],
        via=row.via,
        mentions=[] if deleted else row.mentions,
    )


def conversation_view(
    row: ConversationRow,
    participants: list[str],
    *,
    participant_count: int | None = None,
    last_read_seq: int = 0,
    unread: int = 0,
    last_message: MessageRow | None = None,
    created: bool = False,
) -> ConversationView:
    return ConversationView(
        id=row.id,
        kind=row.kind,
        subject_id=row.subject_id,
        title=row.title,
        participants=[Participant(user_id=user_id) for user_id in participants],
        participant_count=len(participants) if participant_count is None else participant_count,
        group_id=row.group_id,
        unread=unread,
        last_read_seq=last_read_seq,
        last_message=message_view(last_message) if last_message is not None else None,
        created=created,
    )


def listed_view(listed: ListedConversation) -> ConversationView:
    return conversation_view(
        listed.conversation,
        listed.participants,
        participant_count=listed.participant_count,
        last_read_seq=listed.last_read_seq,
        unread=listed.unread,
        last_message=listed.last_message,
    )


def frame(kind: str, view: msgspec.Struct | None = None, **fields: Any) -> bytes:
    """A live frame: `{"type": kind, ...the view's fields, ...fields}` as JSON bytes."""
    body: dict[str, Any] = {"type": kind}
    if view is not None:
        body.update(_untagged(msgspec.to_builtins(view)))
    body.update(fields)
    return _frames.encode(body)


def _untagged(data: Any) -> Any:
    """Plain data without our messages' `msg_type` tag (nested ones too)."""
    if type(data) is dict:
        return {key: _untagged(value) for key, value in data.items() if key != "msg_type"}
    if type(data) is list:
        return [_untagged(value) for value in data]
    return data
