"""Conversations and who is in them: a feature part of the Chat actor.

Opening a conversation asks splits what it is about (`DescribeChatSubject`: the group's
members, the expense's title, whether two people share a group), which also says whether
the caller may see it. The members of a group are copied the first time one of its
conversations opens and kept current from splits' events after that (`chat_members`), so
no message waits on another actor to know who hears it.
"""

from __future__ import annotations

from actors.chat import store
from actors.chat.messages import (
    LISTED_PARTICIPANTS,
    ConversationList,
    ConversationNotFound,
    ConversationView,
    CountUnread,
    GetConversation,
    ListConversations,
    NoSharedGroup,
    OpenConversation,
    UnreadCount,
    conversation_id_for,
)
from actors.chat.store import ConversationRow
from actors.chat.views import conversation_view, listed_view
from actors.runtime import Context, Transaction, row_cursor
from actors.splits.messages import (
    ChatSubject,
    DescribeChatSubject,
    GroupDeleted,
    MemberAdded,
    MemberRemoved,
    NotAMember,
    PlaceholderClaimed,
)

SPLITS = "splits"


def not_found() -> ConversationNotFound:
    return ConversationNotFound(
        "No such conversation among yours.", details={"field": "conversation_id"}
    )


class Conversations:
    """Opens, finds and lists conversations; keeps the members of groups."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def open(self, message: OpenConversation) -> ConversationView:
        expected = conversation_id_for(message.kind, message.subject_id, message.user_id)
        if message.conversation_id != expected:
            raise ConversationNotFound(
                "conversation_id is not the one of this subject",
                details={"field": "conversation_id"},
            )
        found = await store.conversation(self._pool, expected)
        if found is not None and await store.is_participant(self._pool, found, message.user_id):
            return await self.view(found, message.user_id)
        subject = await self._describe(message)
        now = self._context.now()
        row = ConversationRow(
            id=expected,
            kind=message.kind,
            subject_id=message.subject_id,
            group_id=subject.group_id,
            title=subject.title,
            created_at=now,
            last_seq=0,
            last_message_at=None,
        )
        async with self._context.transaction(dedupe=False) as tx:
            if subject.group_id is not None:
                await self._copy_members(tx, subject.group_id, subject.members, message.user_id)
            created = await store.insert_conversation(
                tx, row, message.user_id, direct=subject.members if row.group_id is None else ()
            )
            if not created and subject.title:
                await store.retitle(tx, row.id, subject.title)
        opened = await store.conversation(self._pool, expected)
        if opened is None:  # its group was deleted in between
            raise not_found()
        return await self.view(opened, message.user_id, created=created)

    async def _describe(self, message: OpenConversation) -> ChatSubject:
        group_id = message.subject_id if message.kind == "group" else message.group_id
        try:
            subject: ChatSubject = await self._context.ask(
                SPLITS,
                DescribeChatSubject(
                    user_id=message.user_id,
                    kind=message.kind,
                    subject_id=message.subject_id,
                    group_id=group_id,
                ),
            )
        except NotAMember:
            raise NoSharedGroup(
                "You share no group with this person.", details={"field": "$.user_id"}
            ) from None
        return subject

    async def _copy_members(
        self, tx: Transaction, group_id: str, members: list[str], caller: str
    ) -> None:
        """The first copy of the group's members; later, only the caller, who splits just
        said is a member (their MemberAdded may still be on its way)."""
        now = self._context.now()
        if await store.group_gone(tx, group_id):
            raise not_found()
        if not await store.group_copied(tx, group_id):
            await store.copy_members(tx, group_id, members, now)
        elif caller in members:
            await store.member_joined(tx, group_id, caller, now)

    async def get(self, message: GetConversation) -> ConversationView:
        found = await self.find(message.conversation_id, message.user_id)
        return await self.view(found, message.user_id)

    async def find(self, conversation_id: str, user_id: str) -> ConversationRow:
        """The conversation if `user_id` is in it; ConversationNotFound otherwise."""
        found = await store.conversation(self._pool, conversation_id)
        if found is None or not await store.is_participant(self._pool, found, user_id):
            raise not_found()
        return found

    async def view(
        self, row: ConversationRow, user_id: str, *, created: bool = False
    ) -> ConversationView:
        marker = await store.read_marker(self._pool, row.id, user_id)
        last = None
        if row.last_seq:
            newest = await store.messages_before(self._pool, row.id, None, 1)
            last = newest[0] if newest else None
        return conversation_view(
            row,
            await store.participants(self._pool, row),
            last_read_seq=marker,
            unread=await store.unread_in(self._pool, row.id, user_id, marker),
            last_message=last,
            created=created,
        )

    async def listing(self, message: ListConversations) -> ConversationList:
        offset = row_cursor(message.before) or 0
        found = await store.conversations_of(
            self._pool,
            message.user_id,
            offset=offset,
            limit=message.limit + 1,
            listed=LISTED_PARTICIPANTS,
        )
        more = len(found) > message.limit
        return ConversationList(
            items=[listed_view(listed) for listed in found[: message.limit]],
            next_cursor=str(offset + message.limit) if more else None,
        )

    async def unread(self, message: CountUnread) -> UnreadCount:
        total, conversations = await store.unread_total(self._pool, message.user_id)
        return UnreadCount(total=total, conversations=conversations)

    # ── splits' events: who is in a group ──────────────────────────────────────────────

    async def member_added(self, event: MemberAdded) -> None:
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.member_joined(
                    tx, event.group_id, event.member_user_id, self._context.now()
                )

    async def member_removed(self, event: MemberRemoved) -> None:
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.member_left(
                    tx, event.group_id, event.member_user_id, self._context.now()
                )

    async def placeholder_claimed(self, event: PlaceholderClaimed) -> None:
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.replace_member(
                    tx, event.group_id, event.placeholder_id, event.user_id, self._context.now()
                )

    async def group_deleted(self, event: GroupDeleted) -> None:
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.group_deleted(tx, event.group_id, self._context.now())
