"""Chat notices in Telegram, end to end: real auth, splits, chat and notifications actors on
a real PostgreSQL, the bot polling a fake Telegram Bot API. A mention reaches the person
in the app and in Telegram; answering that notice in Telegram posts to the conversation;
other replies and a switched-off preference do not."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from actors.auth import messages as auth_messages
from actors.auth.actor import Auth
from actors.auth.messages import CreateTelegramLink, Register, TelegramLink, UserView, auth_key
from actors.auth.passwords import TEST_PARAMETERS, Passwords
from actors.auth.tokens import SigningKeys
from actors.chat import messages as chat_messages
from actors.chat.actor import Chat
from actors.chat.messages import (
    CHAT,
    ChatMessagePosted,
    ChatMessageView,
    ConversationNotFound,
    ListMessages,
    OpenConversation,
    PostMessage,
    chat_key,
    conversation_id_for,
)
from actors.notifications import messages as notifications_messages
from actors.notifications.actor import Notifications
from actors.notifications.channels.email import FolderEmail
from actors.notifications.channels.telegram import TelegramChannel
from actors.notifications.messages import (
    NOTIFICATIONS,
    ChatReplyTarget,
    ChatReplyTargetNotFound,
    DeliveryList,
    FindChatReplyTarget,
    ListDeliveries,
    ListNotifications,
    NotificationPage,
    NotificationView,
    SetPreferences,
    notifications_key,
)
from actors.runtime import ActorSystem, MemoryDeadLetterStore, Message, Outbox
from actors.splits import messages as splits_messages
from actors.splits.actor import Splits
from actors.splits.messages import (
    AddMember,
    CreateGroup,
    MemberAdded,
    MemberRemoved,
    RemoveMember,
    splits_key,
)
from splitgo.bot import chat as bot_chat
from splitgo.bot.app import TelegramBot
from splitgo.db import apply_schema
from tests.support.fake_telegram import FakeTelegram, Sent
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

TOKEN = "123456:TEST-bot-token"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "splitgo", "username": "splitgo_bot"}
PASSWORD = "correct horse battery staple"
KEYS = SigningKeys(keys={"k1": b"k" * 32}, current="k1")
PUBLIC_URL = "https://splitgo.test"
WAIT = 10.0  # seconds a reply or a notice may take


@dataclass
class World:
    """The actors, the fake Telegram and the running bot."""

    system: ActorSystem
    tg: FakeTelegram

    async def ask(self, actor: str, message: Message) -> Any:
        return await self.system.ref(actor).ask(message)

    async def register(self, name: str) -> UserView:
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        user: UserView = await self.ask("auth", Register(email=email, password=PASSWORD, name=name))
        return user

    async def linked(self, name: str, chat_id: int) -> tuple[UserView, Sent]:
        """A registered user whose chat is linked through `/start <token>`; the greeting."""
        user = await self.register(name)
        link: TelegramLink = await self.ask("auth", CreateTelegramLink(user_id=user.id))
        token = parse_qs(urlsplit(link.url).query)["start"][0]
        greeting = await self.say(self.tg.message_update(chat_id, f"/start {token}"))
        return user, greeting

    async def say(self, update: dict[str, Any]) -> Sent:
        """Give the bot this update; its first answer to the update's chat."""
        chat_id = update["message"]["chat"]["id"]
        seen = max((m["message_id"] for m in self.tg.sent), default=0)
        self.tg.push_update(TOKEN, update)
        return await self.tg.wait_sent(
            lambda m: m["chat_id"] == chat_id and m["message_id"] > seen, timeout=WAIT
        )

    def reply(self, chat_id: int, to: Sent, text: str) -> dict[str, Any]:
        """An update: the chat's user answers the bot's message `to` with `text`."""
        update = self.tg.message_update(chat_id, text)
        update["message"]["reply_to_message"] = {
            "message_id": to["message_id"],
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            "text": to["text"],
        }
        return update

    async def group_chat(self, owner: UserView, *members: UserView) -> str:
        """A group "Trip" of them all and its conversation's id."""
        group_id = str(uuid.uuid4())
        await self.ask(
            "splits",
            CreateGroup(group_id=group_id, user_id=owner.id, name="Trip", currency="EUR"),
        )
        for member in members:
            await self.ask(
                "splits",
                AddMember(group_id=group_id, user_id=owner.id, member_user_id=member.id),
            )
        conversation_id = conversation_id_for("group", group_id)
        await self.ask(
            CHAT,
            OpenConversation(
                conversation_id=conversation_id, user_id=owner.id, kind="group", subject_id=group_id
            ),
        )
        return conversation_id

    async def post(self, conversation_id: str, author: UserView, text: str) -> ChatMessageView:
        view: ChatMessageView = await self.ask(
            CHAT,
            PostMessage(
                conversation_id=conversation_id,
                user_id=author.id,
                message_id=str(uuid.uuid4()),
                text=text,
            ),
        )
        return view

    async def history(self, conversation_id: str, reader: UserView) -> list[ChatMessageView]:
        page = await self.ask(
            CHAT, ListMessages(conversation_id=conversation_id, user_id=reader.id)
        )
        return list(page.items)

    async def feed_item(
        self, user: UserView, found: Callable[[NotificationView], bool]
    ) -> NotificationView:
        """The first in-app item of the user's matching, waiting for it to arrive."""
        async with asyncio.timeout(WAIT):
            while True:
                page: NotificationPage = await self.ask(
                    NOTIFICATIONS, ListNotifications(user_id=user.id)
                )
                for item in page.items:
                    if found(item):
                        return item
                await asyncio.sleep(0.05)

    async def notice(self, chat_id: int, contains: str) -> Sent:
        """The chat notice Telegram was sent, once notifications has recorded it as one to
        answer (it records the notice after Telegram took it: a reply sooner finds none)."""
        sent = await self.tg.wait_sent(
            lambda m: m["chat_id"] == chat_id and contains in str(m.get("text")), timeout=WAIT
        )

        async def answerable() -> bool:
            try:
                await self.ask(
                    NOTIFICATIONS,
                    FindChatReplyTarget(chat_id=chat_id, message_id=sent["message_id"]),
                )
            except ChatReplyTargetNotFound:
                return False
            return True

        await eventually(answerable)
        return sent


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(WAIT):
        while not await check():
            await asyncio.sleep(0.05)


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    assert pool is not None
    await apply_schema(pool)
    codec = Codec()
    for module in (auth_messages, splits_messages, chat_messages, notifications_messages):
        codec.register_module(module)
    system = ActorSystem(
        MemoryTransport(node_id="bot-chat-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=10.0,
    )
    # the flows of splitgo/composition.py SUBSCRIPTIONS these actors need
    system.subscribe(ChatMessagePosted, NOTIFICATIONS)
    system.subscribe(MemberAdded, CHAT)
    system.subscribe(MemberRemoved, CHAT)
    await system.start()
    passwords = Passwords(TEST_PARAMETERS)
    system.spawn(
        Auth,
        "auth",
        factory=lambda: Auth(
            pool,
            KEYS,
            bot_username="splitgo_bot",
            public_url=PUBLIC_URL,
            notifier=None,
            passwords=passwords,
        ),
        shards=2,
        key=auth_key,
    )
    system.spawn(Splits, "splits", factory=lambda: Splits(pool), shards=2, key=splits_key)
    system.spawn(Chat, CHAT, factory=lambda: Chat(pool), shards=2, key=chat_key)
    bot: TelegramBot | None = None
    async with FakeTelegram() as tg:
        channel = TelegramChannel([TOKEN], api_url=tg.base_url)
        system.spawn(
            Notifications,
            NOTIFICATIONS,
            factory=lambda: Notifications(
                pool,
                FolderEmail(tmp_path / "mail"),
                public_url=PUBLIC_URL,
                telegram=channel,
            ),
            shards=2,
            key=notifications_key,
        )
        try:
            bot = TelegramBot(system, token=TOKEN, api_url=tg.base_url, polling_timeout=1)
            await bot.start()
            yield World(system, tg)
        finally:
            if bot is not None:
                await bot.stop()
            await system.stop(timeout=5)
            await channel.close()
            await pool.close()


async def test_a_mention_reaches_the_person_in_the_app_and_in_telegram(world: World) -> None:
    """Ann's "@Bob" gives Bob an in-app item in the chat category, linked to the
    conversation, and a Telegram notice that quotes the message and says it can be
    answered; Ann, the author, hears nothing."""
    ann, _ = await world.linked("Ann", 7101)
    bob, _ = await world.linked("Bob", 7102)
    conversation = await world.group_chat(ann, bob)
    posted = await world.post(conversation, ann, "@Bob did you pay the taxi?")
    notice = await world.notice(7102, "did you pay the taxi?")
    assert notice["parse_mode"] == "HTML"
    assert "<b>Ann</b> mentioned you in <b>Trip</b>" in notice["text"]
    assert "Reply to this message" in notice["text"]
    assert f"{PUBLIC_URL}/messages/{conversation}" in notice["text"]
    item = await world.feed_item(bob, lambda i: i.category == "chat")
    assert item.kind == "ChatMention"
    assert item.body == "Ann mentioned you in Trip: @Bob did you pay the taxi?"
    assert item.data["conversation_id"] == conversation
    assert item.data["message_id"] == posted.id
    assert item.data["path"] == f"/messages/{conversation}"
    target: ChatReplyTarget = await world.ask(
        NOTIFICATIONS, FindChatReplyTarget(chat_id=7102, message_id=notice["message_id"])
    )
    assert (target.user_id, target.conversation_id, target.title) == (bob.id, conversation, "Trip")
    assert not [m for m in world.tg.sent_to(7101) if "did you pay" in m]


async def test_an_answer_to_the_notice_lands_in_the_conversation_once(world: World) -> None:
    """Bob's Telegram reply to the notice is posted as Bob with via=telegram and is the
    newest message of the history; Telegram delivering the update again posts nothing
    more."""
    ann, _ = await world.linked("Ann", 7201)
    bob, _ = await world.linked("Bob", 7202)
    conversation = await world.group_chat(ann, bob)
    await world.post(conversation, ann, "@Bob did you pay the taxi?")
    notice = await world.notice(7202, "did you pay the taxi?")
    update = world.reply(7202, notice, "Yes, 12 euros")
    confirmed = await world.say(update)
    assert confirmed["text"] == "Posted to <b>Trip</b>."
    newest = (await world.history(conversation, ann))[0]
    assert (newest.author_id, newest.text, newest.via) == (bob.id, "Yes, 12 euros", "telegram")
    assert newest.id == bot_chat.message_id_for(7202, update["message"]["message_id"])
    again = await world.say(update)  # the same message, a new update id: a redelivery
    assert again["text"] == "Posted to <b>Trip</b>."
    texts = [m.text for m in await world.history(conversation, ann)]
    assert texts.count("Yes, 12 euros") == 1


async def test_a_reply_to_another_message_posts_nothing(world: World) -> None:
    """A reply to the bot's greeting is no answer to a notice: the help router answers it
    and the conversation stays as it was; the look-up of that message is refused."""
    ann, _ = await world.linked("Ann", 7301)
    bob, greeting = await world.linked("Bob", 7302)
    conversation = await world.group_chat(ann, bob)
    await world.post(conversation, ann, "@Bob hello")
    await world.notice(7302, "hello")
    answer = await world.say(world.reply(7302, greeting, "thanks!"))
    assert "I answer commands" in answer["text"]
    assert [m.text for m in await world.history(conversation, bob)] == ["@Bob hello"]
    with pytest.raises(ChatReplyTargetNotFound):
        await world.ask(
            NOTIFICATIONS, FindChatReplyTarget(chat_id=7302, message_id=greeting["message_id"])
        )


async def test_someone_no_longer_in_the_conversation_is_told_so(world: World) -> None:
    """Bob, removed from the group after the notice, answers it: nothing is posted and the
    bot says he is no longer in the conversation."""
    ann, _ = await world.linked("Ann", 7401)
    bob, _ = await world.linked("Bob", 7402)
    conversation = await world.group_chat(ann, bob)
    await world.post(conversation, ann, "@Bob are you coming?")
    notice = await world.notice(7402, "are you coming?")
    group_id = (await world.ask(CHAT, _get(conversation, ann))).group_id
    await world.ask(
        "splits", RemoveMember(group_id=group_id, user_id=ann.id, member_user_id=bob.id)
    )

    async def bob_is_out() -> bool:
        try:
            await world.ask(CHAT, _get(conversation, bob))
        except ConversationNotFound:
            return True
        return False

    await eventually(bob_is_out)  # chat hears of the removal through the outbox
    reply = await world.say(world.reply(7402, notice, "wait for me"))
    assert reply["text"] == bot_chat.NOT_IN_CONVERSATION
    assert [m.text for m in await world.history(conversation, ann)] == ["@Bob are you coming?"]


async def test_the_chat_preference_switched_off_stops_the_telegram_notice(world: World) -> None:
    """With chat notices off in Telegram, Bob's mention reaches the app only: no Telegram
    delivery is recorded for it."""
    ann, _ = await world.linked("Ann", 7501)
    bob, _ = await world.linked("Bob", 7502)
    await world.ask(
        NOTIFICATIONS, SetPreferences(user_id=bob.id, changes={"chat": {"telegram": False}})
    )
    conversation = await world.group_chat(ann, bob)
    await world.post(conversation, ann, "@Bob quiet please")
    # the event's deliveries are recorded together, before any is tried: once the in-app
    # item is there, every delivery of the event is known
    await world.feed_item(bob, lambda i: i.category == "chat")
    listed: DeliveryList = await world.ask(NOTIFICATIONS, ListDeliveries(user_id=bob.id))
    chat_channels = {d.channel for d in listed.items if d.event_type == "ChatMessagePosted"}
    assert chat_channels == {"inapp"}
    assert not [m for m in world.tg.sent_to(7502) if "quiet please" in m]


def _get(conversation_id: str, user: UserView) -> Message:
    return chat_messages.GetConversation(conversation_id=conversation_id, user_id=user.id)


async def test_chats_lists_conversations_with_what_is_unread(world: World) -> None:
    """/chats shows the group's conversation with Bob's unread count and Ann's last
    message, and a direct one titled by the other person; someone with none is told
    how to start."""
    ann, _ = await world.linked("Ann", 7601)
    bob, _ = await world.linked("Bob", 7602)
    conversation = await world.group_chat(ann, bob)
    await world.post(conversation, ann, "first")
    await world.post(conversation, ann, "taxi was 12 euros")
    direct = conversation_id_for("direct", ann.id, bob.id)
    await world.ask(
        CHAT,
        OpenConversation(conversation_id=direct, user_id=bob.id, kind="direct", subject_id=ann.id),
    )
    await world.say(world.tg.message_update(7602, "/chats"))
    # a chat notice to this chat may come first: the list is the reply that counts unread
    listed = await world.tg.wait_sent(
        lambda m: m["chat_id"] == 7602 and "unread" in str(m.get("text", "")), timeout=10.0
    )
    text = str(listed["text"])
    assert "<b>Trip</b> — 2 unread" in text
    assert "Ann: taxi was 12 euros" in text
    assert "<b>Ann</b>\nNo messages yet." in text
    assert bot_chat.CHATS_FOOTER in text
    await world.linked("Eve", 7603)
    nothing = await world.say(world.tg.message_update(7603, "/chats"))
    assert nothing["text"] == bot_chat.NO_CHATS
