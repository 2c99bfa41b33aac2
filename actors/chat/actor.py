"""The Chat actor: one handler per message, each handing it to the feature part that owns
it: `conversations` (opening, finding and listing conversations, the members of groups
from splits' events), `posting` (messages, read markers, typing, the live pushes) and
`people` (names for live frames and mentions). Sharded by conversation (`chat_key`).
"""

from __future__ import annotations

import asyncpg

from actors.chat.conversations import Conversations
from actors.chat.messages import (
    ChatDone,
    ChatMessagePage,
    ChatMessageView,
    ConversationList,
    ConversationView,
    CountUnread,
    DeleteMessage,
    DescribeMyChat,
    EditMessage,
    GetConversation,
    ListConversations,
    ListMessages,
    MarkChatRead,
    MyChat,
    OpenConversation,
    PostMessage,
    ReadMarker,
    ShowTyping,
    UnreadCount,
)
from actors.chat.people import People
from actors.chat.personal_data import PersonalData
from actors.chat.posting import Posting, PushMany
from actors.runtime import Actor, Clock, handles, wall_clock
from actors.splits.messages import GroupDeleted, MemberAdded, MemberRemoved, PlaceholderClaimed


class Chat(Actor):
    """Conversations about money between people who share a group.

    `pool` holds the chat tables; `push` sends a frame to users' open WebSockets on any
    node (None: no live pushes, as in a tool); `clock` is what time it is.
    """

    def __init__(
        self, pool: asyncpg.Pool, *, push: PushMany | None = None, clock: Clock = wall_clock
    ) -> None:
        context = self.context(pool, clock)
        self.people = People(context)
        self.conversations = Conversations(context)
        self.posting = Posting(
            context, conversations=self.conversations, people=self.people, push=push
        )
        self.personal_data = PersonalData(context)  # issue 19: the data export

    # ── conversations ──────────────────────────────────────────────────────────────────

    @handles(OpenConversation)
    async def open_conversation(self, message: OpenConversation) -> ConversationView:
        return await self.conversations.open(message)

    @handles(GetConversation)
    async def get_conversation(self, message: GetConversation) -> ConversationView:
        return await self.conversations.get(message)

    @handles(ListConversations)
    async def list_conversations(self, message: ListConversations) -> ConversationList:
        return await self.conversations.listing(message)

    @handles(CountUnread)
    async def count_unread(self, message: CountUnread) -> UnreadCount:
        return await self.conversations.unread(message)

    # ── messages ───────────────────────────────────────────────────────────────────────

    @handles(PostMessage)
    async def post_message(self, message: PostMessage) -> ChatMessageView:
        return await self.posting.post(message)

    @handles(ListMessages)
    async def list_messages(self, message: ListMessages) -> ChatMessagePage:
        return await self.posting.page(message)

    @handles(EditMessage)
    async def edit_message(self, message: EditMessage) -> ChatMessageView:
        return await self.posting.edit(message)

    @handles(DeleteMessage)
    async def delete_message(self, message: DeleteMessage) -> ChatMessageView:
        return await self.posting.delete(message)

    @handles(MarkChatRead)
    async def mark_read(self, message: MarkChatRead) -> ReadMarker:
        return await self.posting.mark_read(message)

    @handles(ShowTyping)
    async def show_typing(self, message: ShowTyping) -> ChatDone:
        return await self.posting.typing(message)

    # ── splits' events ─────────────────────────────────────────────────────────────────

    @handles(MemberAdded)
    async def on_member_added(self, event: MemberAdded) -> None:
        await self.conversations.member_added(event)

    @handles(MemberRemoved)
    async def on_member_removed(self, event: MemberRemoved) -> None:
        await self.conversations.member_removed(event)

    @handles(PlaceholderClaimed)
    async def on_placeholder_claimed(self, event: PlaceholderClaimed) -> None:
        await self.conversations.placeholder_claimed(event)

    @handles(GroupDeleted)
    async def on_group_deleted(self, event: GroupDeleted) -> None:
        await self.conversations.group_deleted(event)

    # ── issue 19: a user's own data (export) ───────────────────────────────────────────

    @handles(DescribeMyChat)
    async def describe_my_chat(self, message: DescribeMyChat) -> MyChat:
        return await self.personal_data.describe(message)
