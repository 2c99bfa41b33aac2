"""The chat actor through an ActorSystem (on the memory transport and on Redis Streams) on
a real PostgreSQL, beside the real splits actor (membership through its events and the
outbox relay), a stand-in for auth's names and a recording live push: the edit window,
quiet-conversation and mention notices, the rate limit, members who leave, deleted groups,
retries, typing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from actors.auth.messages import GetNames, Names, Person
from actors.chat import messages as chat_messages
from actors.chat.actor import Chat
from actors.chat.messages import (
    EDIT_SECONDS,
    QUIET_SECONDS,
    RATE_BURST,
    ChatMessagePosted,
    ChatRateLimited,
    ConversationNotFound,
    DeleteMessage,
    EditMessage,
    EditWindowClosed,
    GetConversation,
    ListMessages,
    MarkChatRead,
    NoSharedGroup,
    NotYourMessage,
    OpenConversation,
    PostMessage,
    ShowTyping,
    chat_key,
    conversation_id_for,
)
from actors.runtime import (
    Actor,
    ActorRef,
    ActorSystem,
    IdempotencyConflict,
    MemoryDeadLetterStore,
    Outbox,
    handles,
)
from actors.splits import messages as splits_messages
from actors.splits.actor import Splits
from actors.splits.messages import (
    AddMember,
    CreateGroup,
    DeleteGroup,
    GroupDeleted,
    MemberAdded,
    MemberRemoved,
    PlaceholderClaimed,
    RemoveMember,
    splits_key,
)
from splitgo.db import apply_schema
from tests.support.redis import delete_prefix, redis_url, unique_prefix
from transport import Codec, MemoryTransport, Transport
from transport.redis_streams import RedisStreamsTransport

pytestmark = pytest.mark.integration

NAMES = {"amy": "Amy Pond", "bob": "Bob", "cy": "Cy", "dee": "Dee"}


class FakeAuth(Actor):
    """Stands in for auth: names everyone in NAMES."""

    @handles(GetNames)
    async def names(self, message: GetNames) -> Names:
        return Names(
            people=[
                Person(user_id=user_id, name=NAMES[user_id])
                for user_id in message.user_ids
                if user_id in NAMES
            ]
        )


class Listener(Actor):
    """Stands in for notifications: records what chat publishes."""

    def __init__(self, seen: list[ChatMessagePosted]) -> None:
        self.seen = seen

    @handles(ChatMessagePosted)
    async def record(self, event: ChatMessagePosted) -> None:
        self.seen.append(event)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@dataclass
class Pushes:
    """Every live frame the chat actor sent, by user."""

    frames: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, user_ids: list[str], frame: bytes) -> None:
        body = msgspec.json.decode(frame)
        self.frames.extend((user_id, body) for user_id in user_ids)

    def of(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(user, body) for user, body in self.frames if body["type"] == kind]


@dataclass
class Harness:
    chat: ActorRef
    splits: ActorRef
    clock: Clock
    events: list[ChatMessagePosted]
    pushes: Pushes

    async def group(self, *members: str) -> str:
        group_id = str(uuid.uuid4())
        await self.splits.ask(
            CreateGroup(group_id=group_id, user_id=members[0], name="Trip", currency="EUR")
        )
        for member in members[1:]:
            await self.splits.ask(
                AddMember(group_id=group_id, user_id=members[0], member_user_id=member)
            )
        return group_id

    async def open_group(self, group_id: str, user_id: str) -> str:
        conversation = conversation_id_for("group", group_id)
        await self.chat.ask(
            OpenConversation(
                conversation_id=conversation, user_id=user_id, kind="group", subject_id=group_id
            )
        )
        return conversation

    async def post(self, conversation: str, user_id: str, text: str) -> Any:
        return await self.chat.ask(
            PostMessage(
                conversation_id=conversation,
                user_id=user_id,
                message_id=str(uuid.uuid4()),
                text=text,
            )
        )

    async def history(self, conversation: str, user_id: str) -> list[Any]:
        page = await self.chat.ask(ListMessages(conversation_id=conversation, user_id=user_id))
        return list(page.items)


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


def transport(kind: str, codec: Codec, prefix: str) -> Transport:
    if kind == "redis":
        return RedisStreamsTransport(
            node_id="chat-test", url=redis_url(), codec=codec, prefix=prefix, block_ms=200
        )
    return MemoryTransport(node_id="chat-test", codec=codec)


@pytest.fixture(params=["memory", "redis"])
async def harness(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """The actors on one transport: in memory, or on Redis Streams under a fresh prefix."""
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    assert pool is not None
    await apply_schema(pool)
    codec = Codec()
    codec.register_module(splits_messages)
    codec.register_module(chat_messages)
    codec.register(GetNames, Names, Person)
    prefix = unique_prefix()
    system = ActorSystem(
        transport(request.param, codec, prefix),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=20.0,
    )
    await system.start()
    for event in (MemberAdded, MemberRemoved, GroupDeleted, PlaceholderClaimed):
        system.subscribe(event, "chat")
    system.subscribe(ChatMessagePosted, "listener")
    clock, pushes = Clock(), Pushes()
    events: list[ChatMessagePosted] = []
    system.spawn(FakeAuth, "auth", factory=FakeAuth)
    system.spawn(Listener, "listener", factory=lambda: Listener(events))
    splits = system.spawn(
        Splits, "splits", factory=lambda: Splits(pool, clock=clock), shards=2, key=splits_key
    )
    chat = system.spawn(
        Chat, "chat", factory=lambda: Chat(pool, push=pushes, clock=clock), shards=3, key=chat_key
    )
    try:
        yield Harness(chat, splits, clock, events, pushes)
    finally:
        await system.stop(timeout=5)
        # stopping the system leaves the transport's own loops (its reply reader, timer
        # poller, flushes) running: closed here, or the loop's close had to cancel them
        await system.transport.close()
        await pool.close()
        if request.param == "redis":
            await delete_prefix(redis_url(), prefix)


async def test_an_author_edits_and_deletes_only_within_fifteen_minutes(harness: Harness) -> None:
    """At the last second of the window an edit lands; a second later both editing and
    deleting are refused as edit_window_closed, and someone else may never change it."""
    chat = await harness.open_group(await harness.group("amy", "bob"), "amy")
    posted = await harness.post(chat, "amy", "hello")
    with pytest.raises(NotYourMessage):
        await harness.chat.ask(
            EditMessage(conversation_id=chat, user_id="bob", message_id=posted.id, text="x")
        )
    harness.clock.now += EDIT_SECONDS
    edited = await harness.chat.ask(
        EditMessage(conversation_id=chat, user_id="amy", message_id=posted.id, text="hello!")
    )
    assert edited.text == "hello!"
    assert edited.edited_at is not None
    harness.clock.now += 1
    with pytest.raises(EditWindowClosed):
        await harness.chat.ask(
            EditMessage(conversation_id=chat, user_id="amy", message_id=posted.id, text="late")
        )
    with pytest.raises(EditWindowClosed):
        await harness.chat.ask(
            DeleteMessage(conversation_id=chat, user_id="amy", message_id=posted.id)
        )
    assert [m.text for m in await harness.history(chat, "bob")] == ["hello!"]


async def test_quiet_conversations_and_mentions_notify(harness: Harness) -> None:
    """The first message tells everyone else; one soon after tells nobody, unless it
    mentions someone (only them); after a quiet spell everyone is told again."""
    chat = await harness.open_group(await harness.group("amy", "bob", "cy"), "amy")
    first = await harness.post(chat, "amy", "Dinner was great")
    await harness.post(chat, "bob", "agreed")
    mention = await harness.post(chat, "bob", "@amy pond can you pay @Cy back?")
    harness.clock.now += QUIET_SECONDS
    later = await harness.post(chat, "cy", "done")

    async def three_told() -> bool:
        return len(harness.events) >= 3

    await eventually(three_told)
    told = {event.message_id: (event.mentioned, event.notify) for event in harness.events}
    assert told == {
        first.id: ([], ["bob", "cy"]),
        mention.id: (["amy", "cy"], []),
        later.id: ([], ["amy", "bob"]),
    }
    assert mention.mentions == ["amy", "cy"]
    named = next(e for e in harness.events if e.message_id == mention.id)
    assert named.author_name == "Bob"
    assert named.title == "Trip"


async def test_the_rate_limit_refuses_a_burst_and_refills(harness: Harness) -> None:
    """RATE_BURST messages at once are taken, the next is chat_rate_limited (stored
    nowhere), and a second later one more is taken."""
    chat = await harness.open_group(await harness.group("amy", "bob"), "amy")
    for n in range(RATE_BURST):
        await harness.post(chat, "amy", f"m{n}")
    with pytest.raises(ChatRateLimited) as refused:
        await harness.post(chat, "amy", "one too many")
    assert refused.value.details["retry_after"] >= 1
    assert len(await harness.history(chat, "bob")) == RATE_BURST
    await harness.post(chat, "bob", "others still may")
    harness.clock.now += 1
    await harness.post(chat, "amy", "after a second")


async def test_a_member_who_leaves_loses_the_conversation_but_keeps_their_messages(
    harness: Harness,
) -> None:
    """Once splits removes Bob, chat refuses him (not found) and stops pushing to him;
    his message stays in the history; a member added later is in at once."""
    group = await harness.group("amy", "bob")
    chat = await harness.open_group(group, "amy")
    await harness.post(chat, "bob", "bye")
    await harness.splits.ask(RemoveMember(group_id=group, user_id="bob", member_user_id="bob"))

    async def bob_gone() -> bool:
        try:
            await harness.chat.ask(GetConversation(conversation_id=chat, user_id="bob"))
        except ConversationNotFound:
            return True
        return False

    await eventually(bob_gone)
    await harness.splits.ask(AddMember(group_id=group, user_id="amy", member_user_id="cy"))

    async def cy_in() -> bool:
        view = await harness.chat.ask(GetConversation(conversation_id=chat, user_id="amy"))
        return {p.user_id for p in view.participants} == {"amy", "cy"}

    await eventually(cy_in)
    harness.pushes.frames.clear()
    await harness.post(chat, "cy", "hi")
    assert {user for user, _ in harness.pushes.of("chat_message")} == {"amy", "cy"}
    assert [m.author_id for m in await harness.history(chat, "cy")] == ["cy", "bob"]


async def test_a_deleted_group_takes_its_conversations(harness: Harness) -> None:
    """After the group is deleted its conversation is not found for anyone."""
    group = await harness.group("amy", "bob")
    chat = await harness.open_group(group, "amy")
    await harness.splits.ask(DeleteGroup(group_id=group, user_id="amy"))

    async def gone() -> bool:
        try:
            await harness.chat.ask(GetConversation(conversation_id=chat, user_id="amy"))
        except ConversationNotFound:
            return True
        return False

    await eventually(gone)
    with pytest.raises(ConversationNotFound):
        await harness.post(chat, "bob", "anyone?")


async def test_a_retry_posts_once_and_a_reused_id_is_refused(harness: Harness) -> None:
    """The same message id with the same text answers the first message; with another
    text, or in another conversation, it is an idempotency conflict; the history holds one
    message."""
    chat = await harness.open_group(await harness.group("amy", "bob"), "amy")
    message = PostMessage(conversation_id=chat, user_id="amy", message_id="m-1", text="once")
    first = await harness.chat.ask(message)
    again = await harness.chat.ask(message)
    assert (again.id, again.seq) == (first.id, first.seq)
    with pytest.raises(IdempotencyConflict):
        await harness.chat.ask(msgspec.structs.replace(message, text="twice"))
    other = await harness.open_group(await harness.group("amy", "cy"), "amy")
    with pytest.raises(IdempotencyConflict):
        await harness.chat.ask(msgspec.structs.replace(message, conversation_id=other))
    assert len(await harness.history(chat, "bob")) == 1
    assert await harness.history(other, "cy") == []


async def test_direct_conversations_need_a_shared_group(harness: Harness) -> None:
    """Two people in one group talk directly (the same conversation either way);
    someone who shares no group with the caller is refused."""
    await harness.group("amy", "bob")
    await harness.group("cy", "dee")
    opened = await harness.chat.ask(
        OpenConversation(
            conversation_id=conversation_id_for("direct", "bob", "amy"),
            user_id="amy",
            kind="direct",
            subject_id="bob",
        )
    )
    assert [p.user_id for p in opened.participants] == ["amy", "bob"]
    back = await harness.chat.ask(
        OpenConversation(
            conversation_id=conversation_id_for("direct", "amy", "bob"),
            user_id="bob",
            kind="direct",
            subject_id="amy",
        )
    )
    assert back.id == opened.id
    assert not back.created
    with pytest.raises(NoSharedGroup):
        await harness.chat.ask(
            OpenConversation(
                conversation_id=conversation_id_for("direct", "cy", "amy"),
                user_id="amy",
                kind="direct",
                subject_id="cy",
            )
        )


async def test_typing_and_read_markers_are_pushed_to_the_right_people(harness: Harness) -> None:
    """Typing reaches the others (at most once per two seconds, nothing stored); a read
    marker reaches only the reader's own sessions and never goes back."""
    chat = await harness.open_group(await harness.group("amy", "bob", "cy"), "amy")
    first = await harness.post(chat, "amy", "one")
    second = await harness.post(chat, "amy", "two")
    harness.pushes.frames.clear()
    for _ in range(3):
        await harness.chat.ask(ShowTyping(conversation_id=chat, user_id="bob"))
    assert sorted(user for user, _ in harness.pushes.of("chat_typing")) == ["amy", "cy"]
    read = await harness.chat.ask(
        MarkChatRead(conversation_id=chat, user_id="bob", message_id=second.id)
    )
    assert (read.last_read_seq, read.unread) == (2, 0)
    back = await harness.chat.ask(
        MarkChatRead(conversation_id=chat, user_id="bob", message_id=first.id)
    )
    assert back.last_read_seq == 2
    assert {user for user, _ in harness.pushes.of("chat_read")} == {"bob"}
    assert len(await harness.history(chat, "cy")) == 2
