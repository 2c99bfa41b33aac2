"""Messages in a conversation: a feature part of the Chat actor.

A message is numbered, stored and counted against its author's rate limit in one
transaction; after the commit it is pushed live to every participant's open sessions
(on any node: `Push`), and, when it mentions people or breaks a quiet spell,
`ChatMessagePosted` (through the outbox) tells the notifications actor. Typing is pushed
and never stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import structlog

from actors.chat import rules, store
from actors.chat.conversations import Conversations, not_found
from actors.chat.messages import (
    RATE_BURST,
    RATE_PER_SECOND,
    ChatDone,
    ChatMessageDeleted,
    ChatMessageNotFound,
    ChatMessagePage,
    ChatMessagePosted,
    ChatMessageView,
    ChatRateLimited,
    DeleteMessage,
    EditMessage,
    EditWindowClosed,
    ListMessages,
    MarkChatRead,
    MessageDeleted,
    NotYourMessage,
    PostMessage,
    ReadMarker,
    ShowTyping,
)
from actors.chat.people import People
from actors.chat.store import ConversationRow, MessageRow
from actors.chat.views import frame, message_view
from actors.runtime import Context, Executor, IdempotencyConflict

log = structlog.get_logger("actors.chat")

# the frame to every open session of each user, on whichever node holds it
PushMany = Callable[[list[str], bytes], Awaitable[None]]
TYPING_SECONDS = 2.0  # a person's typing is pushed at most this often per conversation
_TYPING_KEPT = 10_000


class Posting:
    """Posts, pages, edits and deletes messages; read markers; typing."""

    def __init__(
        self,
        context: Context,
        *,
        conversations: Conversations,
        people: People,
        push: PushMany | None,
    ) -> None:
        self._context = context
        self._pool = context.pool
        self._conversations = conversations
        self._people = people
        self._push = push
        self._typing: dict[tuple[str, str], float] = {}

    async def post(self, message: PostMessage) -> ChatMessageView:
        conversation, participants, known_id = await self._joined(
            message.conversation_id, message.user_id, message.message_id
        )
        text = rules.message_text(message.text, has_attachments=bool(message.attachments))
        if known_id:
            known = await store.any_message(self._pool, message.message_id)
            if known is not None:
                return self._replayed(known, message, text)
        names = await self._names_for(text, participants, message.user_id)
        mentions = rules.mentioned(text, names, author_id=message.user_id)
        now = self._context.now()
        async with self._context.transaction(dedupe=False) as tx:
            if not await store.take_rate_token(
                tx, message.user_id, self._context.clock(), RATE_BURST, RATE_PER_SECOND
            ):
                await self._take_token(tx, message.user_id)  # raises, with the wait
            row = MessageRow(
                conversation_id=conversation.id,
                seq=0,
                id=message.message_id,
                author_id=message.user_id,
                text=text,
                attachments=[
                    {
                        "id": ref.id,
                        "filename": ref.filename,
                        "content_type": ref.content_type,
                        "size": ref.size,
                    }
                    for ref in message.attachments
                ],
                mentions=mentions,
                via=message.via,
                created_at=now,
            )
            try:
                seq, previous_at = await store.append_message(tx, row)
            except asyncpg.UniqueViolationError:
                raise IdempotencyConflict(
                    "this message id was used for another message",
                    details={"field": "message_id"},
                ) from None
            row = dataclasses.replace(row, seq=seq)
            notify = rules.to_notify(
                participants,
                author_id=message.user_id,
                mentioned=mentions,
                previous_at=previous_at,
                now=now,
            )
            if mentions or notify:
                await tx.publish(
                    ChatMessagePosted(
                        conversation_id=conversation.id,
                        message_id=row.id,
                        kind=conversation.kind,  # type: ignore[arg-type]  # checked by the table
                        title=conversation.title,
                        author_id=message.user_id,
                        author_name=names[message.user_id],
                        text=text,
                        mentioned=mentions,
                        notify=notify,
                        group_id=conversation.group_id,
                    )
                )
        view = message_view(row)
        await self._send(
            participants,
            frame("chat_message", view, author_name=names[message.user_id]),
        )
        return view

    async def _joined(
        self, conversation_id: str, user_id: str, message_id: str = ""
    ) -> tuple[ConversationRow, list[str], bool]:
        """The conversation `user_id` is in, its participants and whether `message_id` is
        known, in one read; ConversationNotFound when they are not in it."""
        found = await store.posting_lookup(self._pool, conversation_id, message_id)
        if found is None or user_id not in found[1]:
            raise not_found()
        return found

    async def _names_for(
        self, text: str, participants: Sequence[str], author_id: str
    ) -> dict[str, str]:
        """The author's name, and every participant's when the text may mention one."""
        if "@" in text:
            return await self._people.names([*participants, author_id])
        return await self._people.names([author_id], along=participants)

    async def _take_token(self, tx: Executor, user_id: str) -> None:
        bucket, wait = rules.take_token(await store.bucket(tx, user_id), self._context.clock())
        if wait > 0:
            seconds = max(1, round(wait + 0.5))
            raise ChatRateLimited(
                f"You are posting too fast; try again in {seconds} s.",
                details={"retry_after": seconds},
            )
        await store.save_bucket(tx, user_id, bucket)

    @staticmethod
    def _replayed(known: MessageRow, message: PostMessage, text: str) -> ChatMessageView:
        """A retry finds the first message; the same id for anything else is refused."""
        same = (
            known.conversation_id == message.conversation_id
            and known.author_id == message.user_id
            and (known.text == text or known.deleted_at is not None)
        )
        if not same:
            raise IdempotencyConflict(
                "this message id was used for another message", details={"field": "message_id"}
            )
        return message_view(known)

    async def page(self, message: ListMessages) -> ChatMessagePage:
        conversation = await self._conversations.find(message.conversation_id, message.user_id)
        rows = await store.messages_before(
            self._pool, conversation.id, message.before, message.limit
        )
        more = bool(rows) and rows[-1].seq > 1 and len(rows) == message.limit
        return ChatMessagePage(
            items=[message_view(row) for row in rows],
            next_cursor=str(rows[-1].seq) if more else None,
        )

    async def edit(self, message: EditMessage) -> ChatMessageView:
        conversation, row = await self._own_message(
            message.conversation_id, message.user_id, message.message_id
        )
        if row.deleted_at is not None:
            raise MessageDeleted("This message was deleted.", details={"field": "message_id"})
        text = rules.message_text(message.text, has_attachments=bool(row.attachments))
        participants = await store.participants(self._pool, conversation)
        names = await self._names_for(text, participants, message.user_id)
        mentions = rules.mentioned(text, names, author_id=message.user_id)
        now = self._context.now()
        if text != row.text:
            async with self._context.transaction(dedupe=False) as tx:
                await store.edit_message(tx, row.id, text, mentions, now)
        edited = await store.message_by_id(self._pool, conversation.id, row.id)
        assert edited is not None  # messages are never removed
        view = message_view(edited)
        await self._send(participants, frame("chat_message_edited", view))
        return view

    async def delete(self, message: DeleteMessage) -> ChatMessageView:
        conversation, row = await self._own_message(
            message.conversation_id, message.user_id, message.message_id, retry=True
        )
        if row.deleted_at is None:
            async with self._context.transaction(dedupe=False) as tx:
                await store.delete_message(tx, row.id, self._context.now())
                if row.attachments:
                    # the files go with it, through the outbox: even if this node dies now
                    await tx.publish(
                        ChatMessageDeleted(
                            conversation_id=conversation.id,
                            message_id=row.id,
                            user_id=message.user_id,
                            attachment_ids=[ref["id"] for ref in row.attachments],
                        )
                    )
        deleted = await store.message_by_id(self._pool, conversation.id, row.id)
        assert deleted is not None  # messages are never removed
        view = message_view(deleted)
        participants = await store.participants(self._pool, conversation)
        await self._send(participants, frame("chat_message_deleted", view))
        return view

    async def _own_message(
        self, conversation_id: str, user_id: str, message_id: str, *, retry: bool = False
    ) -> tuple[ConversationRow, MessageRow]:
        """The caller's own message, still within the edit window (a deletion retried
        after it is answered as it was)."""
        conversation = await self._conversations.find(conversation_id, user_id)
        row = await store.message_by_id(self._pool, conversation.id, message_id)
        if row is None:
            raise ChatMessageNotFound(
                "No such message in this conversation.", details={"field": "message_id"}
            )
        if row.author_id != user_id:
            raise NotYourMessage("Only its author may change a message.")
        if retry and row.deleted_at is not None:
            return conversation, row
        if not rules.still_editable(row.created_at, self._context.now()):
            raise EditWindowClosed(
                "A message can be changed for 15 minutes after it was posted; this one no"
                " longer can."
            )
        return conversation, row

    async def mark_read(self, message: MarkChatRead) -> ReadMarker:
        conversation = await self._conversations.find(message.conversation_id, message.user_id)
        row = await store.message_by_id(self._pool, conversation.id, message.message_id)
        if row is None:
            raise ChatMessageNotFound(
                "No such message in this conversation.", details={"field": "$.message_id"}
            )
        async with self._context.transaction(dedupe=False) as tx:
            marker = await store.mark_read(tx, conversation.id, message.user_id, row.seq)
        unread = await store.unread_in(self._pool, conversation.id, message.user_id, marker)
        read = ReadMarker(conversation_id=conversation.id, last_read_seq=marker, unread=unread)
        await self._send([message.user_id], frame("chat_read", read))
        return read

    async def typing(self, message: ShowTyping) -> ChatDone:
        key = (message.conversation_id, message.user_id)
        now = self._context.clock()
        if now - self._typing.get(key, -TYPING_SECONDS) < TYPING_SECONDS:
            return ChatDone()
        conversation, participants, _ = await self._joined(message.conversation_id, message.user_id)
        if len(self._typing) >= _TYPING_KEPT:
            self._typing.clear()
        self._typing[key] = now
        others = [user_id for user_id in participants if user_id != message.user_id]
        name = await self._people.name(message.user_id)
        await self._send(
            others,
            frame(
                "chat_typing",
                conversation_id=conversation.id,
                user_id=message.user_id,
                name=name,
            ),
        )
        return ChatDone()

    async def _send(self, user_ids: list[str], body: bytes) -> None:
        """Best effort, like every live push: the stored history is the record."""
        if self._push is None or not user_ids:
            return
        try:
            await self._push(user_ids, body)
        except Exception as error:  # Redis away: the message is stored all the same
            log.warning("chat_push_failed", error=repr(error), users=len(user_ids))
