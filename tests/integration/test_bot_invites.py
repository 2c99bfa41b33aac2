"""The bot's `/invites` end to end: real auth and splits actors on a real PostgreSQL, a fake
Telegram Bot API server that the bot polls, and button presses sent as callback queries."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from actors.auth import messages as auth_messages
from actors.auth.actor import Auth
from actors.auth.messages import (
    CreateTelegramLink,
    EmailVerificationRequested,
    Register,
    TelegramLink,
    UserView,
    VerifyEmail,
    auth_key,
)
from actors.auth.passwords import TEST_PARAMETERS, Passwords
from actors.auth.tokens import SigningKeys
from actors.runtime import Actor, ActorSystem, MemoryDeadLetterStore, Message, Outbox, handles
from actors.splits import messages as splits_messages
from actors.splits.actor import Splits
from actors.splits.messages import (
    CancelInvite,
    CreateGroup,
    GroupList,
    InviteList,
    InviteMember,
    InviteView,
    ListGroups,
    ListInvites,
    splits_key,
)
from splitgo.bot import invites as bot_invites
from splitgo.bot.app import TelegramBot
from splitgo.db import apply_schema
from tests.support.fake_telegram import FakeTelegram, Sent
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

TOKEN = "123456:TEST-bot-token"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "splitgo", "username": "splitgo_bot"}
PASSWORD = "correct horse battery staple"
KEYS = SigningKeys(keys={"k1": b"k" * 32}, current="k1")
WAIT = 10.0  # seconds a reply may take


class Mailer(Actor):
    """Stands in for notifications: keeps the verification mails auth asks it to send."""

    def __init__(self, mails: list[EmailVerificationRequested]) -> None:
        self.mails = mails

    @handles(EmailVerificationRequested)
    async def record(self, message: EmailVerificationRequested) -> None:
        self.mails.append(message)


@dataclass
class World:
    """The actors, the fake Telegram and the verification mails; `chat` helpers talk to
    the running bot."""

    system: ActorSystem
    tg: FakeTelegram
    pool: asyncpg.Pool
    mails: list[EmailVerificationRequested]
    _callback_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def ask(self, actor: str, message: Message) -> Any:
        return await self.system.ref(actor).ask(message)

    async def register(self, name: str) -> UserView:
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        user: UserView = await self.ask("auth", Register(email=email, password=PASSWORD, name=name))
        return user

    async def verify(self, user: UserView) -> None:
        """Spend the token of the user's verification mail, as its link would."""
        async with asyncio.timeout(WAIT):
            while not any(mail.user_id == user.id for mail in self.mails):
                await asyncio.sleep(0.02)
        mail = next(mail for mail in self.mails if mail.user_id == user.id)
        await self.ask("auth", VerifyEmail(token=mail.token))

    async def linked(self, name: str, chat_id: int, *, verified: bool = True) -> UserView:
        """A registered user (verified unless told) whose chat is linked by `/start`."""
        user = await self.register(name)
        if verified:
            await self.verify(user)
        link: TelegramLink = await self.ask("auth", CreateTelegramLink(user_id=user.id))
        token = parse_qs(urlsplit(link.url).query)["start"][0]
        await self.say(chat_id, f"/start {token}")
        return user

    async def group(self, owner: UserView, name: str) -> str:
        group_id = str(uuid.uuid4())
        await self.ask(
            "splits", CreateGroup(group_id=group_id, user_id=owner.id, name=name, currency="EUR")
        )
        return group_id

    async def invite(self, group_id: str, inviter: UserView, invitee: UserView) -> InviteView:
        view: InviteView = await self.ask(
            "splits",
            InviteMember(
                group_id=group_id,
                user_id=inviter.id,
                email=invitee.email,
                invitee_user_id=invitee.id,
            ),
        )
        return view

    async def group_names(self, user: UserView) -> list[str]:
        listed: GroupList = await self.ask("splits", ListGroups(user_id=user.id))
        return [group.name for group in listed.groups]

    async def pending(self, group_id: str, member: UserView) -> list[str]:
        """The ids of the group's pending invitations, as a member sees them."""
        listed: InviteList = await self.ask(
            "splits", ListInvites(group_id=group_id, user_id=member.id)
        )
        return [item.id for item in listed.items]

    async def replies(self, chat_id: int, text: str, count: int) -> list[Sent]:
        """Send the bot a message from this chat; its first `count` replies, in order."""
        seen = max((m["message_id"] for m in self.tg.sent), default=0)
        self.tg.push_update(TOKEN, self.tg.message_update(chat_id, text))

        def fresh() -> list[Sent]:
            return [m for m in self.tg.sent if m["chat_id"] == chat_id and m["message_id"] > seen]

        async with asyncio.timeout(WAIT):
            while len(fresh()) < count:
                await asyncio.sleep(0.02)
        return fresh()[:count]

    async def say(self, chat_id: int, text: str) -> Sent:
        """Send the bot a message from this chat; its first reply."""
        return (await self.replies(chat_id, text, 1))[0]

    async def press(self, chat_id: int, sent: Sent, label: str) -> Sent:
        """Press the inline button `label` under a message the bot sent; the edit of that
        message that follows."""
        rows = sent["reply_markup"]["inline_keyboard"]
        data = next(b["callback_data"] for row in rows for b in row if b["text"] == label)
        return await self.tap(chat_id, sent, data)

    async def tap(self, chat_id: int, sent: Sent, data: str) -> Sent:
        """Send a callback query with `data` from the message `sent`; the edit that follows."""
        before = len(self.tg.edited)
        message = {
            "message_id": sent["message_id"],
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            "text": sent["text"],
        }
        sender = {"id": chat_id, "is_bot": False, "first_name": "Tess"}
        query = {
            "id": str(next(self._callback_ids)),
            "from": sender,
            "message": message,
            "chat_instance": f"instance-{chat_id}",
            "data": data,
        }
        self.tg.push_update(TOKEN, {"callback_query": query})

        def edit() -> Sent | None:
            return next(
                (
                    e
                    for e in self.tg.edited[before:]
                    if e.get("chat_id") == chat_id and e.get("message_id") == sent["message_id"]
                ),
                None,
            )

        async with asyncio.timeout(WAIT):
            while (found := edit()) is None:
                await asyncio.sleep(0.02)
        return found


@asynccontextmanager
async def running(database_url: str) -> AsyncIterator[World]:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    assert pool is not None
    await apply_schema(pool)
    codec = Codec()
    for module in (auth_messages, splits_messages):
        codec.register_module(module)
    system = ActorSystem(
        MemoryTransport(node_id="bot-invites-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=10.0,
    )
    await system.start()
    mails: list[EmailVerificationRequested] = []
    passwords = Passwords(TEST_PARAMETERS)
    system.spawn(Mailer, "notifications", factory=lambda: Mailer(mails))
    system.spawn(
        Auth,
        "auth",
        factory=lambda: Auth(
            pool,
            KEYS,
            bot_username="splitgo_bot",
            public_url="https://splitgo.test",
            passwords=passwords,
        ),
        shards=2,
        key=auth_key,
    )
    system.spawn(Splits, "splits", factory=lambda: Splits(pool), shards=2, key=splits_key)
    try:
        async with FakeTelegram() as tg:
            bot = TelegramBot(system, token=TOKEN, api_url=tg.base_url, polling_timeout=1)
            await bot.start()
            try:
                yield World(system, tg, pool, mails)
            finally:
                await bot.stop()
    finally:
        await system.stop(timeout=5)
        await pool.close()


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with running(database_url) as made:
        yield made


def buttons(sent: Sent) -> list[tuple[str, str]]:
    """The (label, callback data) of every inline button under a sent message."""
    rows = sent["reply_markup"]["inline_keyboard"]
    return [(button["text"], button["callback_data"]) for row in rows for button in row]


async def test_invites_lists_each_invitation_with_its_buttons(world: World) -> None:
    """Each pending invitation is a message naming the inviter and the group (escaped, no
    ids) with Accept and Decline buttons whose callback data is short and id-free."""
    bob = await world.linked("Bob", 701)
    alice, carol = await world.register("Alice"), await world.register("Carol")
    trip = await world.group(alice, "Trip")
    bar = await world.group(carol, "Bar & <Grill>")
    first = await world.invite(trip, alice, bob)
    second = await world.invite(bar, carol, bob)

    listed = await world.replies(701, "/invites", 2)
    texts = [sent["text"] for sent in listed]
    assert texts == [
        "<b>Carol</b> invited you to <b>Bar &amp; &lt;Grill&gt;</b>.",
        "<b>Alice</b> invited you to <b>Trip</b>.",
    ]
    for sent, invite in zip(listed, (second, first), strict=True):
        labels = [label for label, _ in buttons(sent)]
        assert labels == ["Accept", "Decline"]
        for _, data in buttons(sent):
            assert len(data.encode()) <= 64
            assert invite.id not in data
            assert invite.group_id not in data
    assert all(alice.id not in text and carol.id not in text for text in texts)


async def test_accepting_joins_the_group(world: World) -> None:
    """Accept makes the user a member, edits the message to say so (buttons gone), and the
    invitation is no longer waiting."""
    bob = await world.linked("Bob", 702)
    alice = await world.register("Alice")
    trip = await world.group(alice, "Trip")
    await world.invite(trip, alice, bob)

    listed = await world.say(702, "/invites")
    edited = await world.press(702, listed, "Accept")
    assert edited["text"].startswith("You joined <b>Trip</b>.")
    assert edited.get("reply_markup") is None
    assert (TOKEN, "answerCallbackQuery") in world.tg.calls
    assert await world.group_names(bob) == ["Trip"]
    assert await world.pending(trip, alice) == []
    again = await world.say(702, "/invites")
    assert again["text"] == "No invitations are waiting for you."


async def test_declining_leaves_the_group_as_it_was(world: World) -> None:
    """Decline edits the message to say so; the user does not join and the invitation is
    gone from the group's list."""
    bob = await world.linked("Bob", 703)
    alice = await world.register("Alice")
    trip = await world.group(alice, "Trip")
    await world.invite(trip, alice, bob)

    listed = await world.say(703, "/invites")
    edited = await world.press(703, listed, "Decline")
    assert edited["text"] == "Declined: you did not join <b>Trip</b>."
    assert await world.group_names(bob) == []
    assert await world.pending(trip, alice) == []


async def test_a_button_of_an_answered_or_withdrawn_invitation_says_so(world: World) -> None:
    """Pressing a button again after answering, or after the inviter withdrew the
    invitation, answers nothing and says the invitation is gone."""
    bob = await world.linked("Bob", 704)
    alice = await world.register("Alice")
    trip = await world.group(alice, "Trip")
    beach = await world.group(alice, "Beach")
    await world.invite(trip, alice, bob)
    withdrawn = await world.invite(beach, alice, bob)

    beach_message, trip_message = await world.replies(704, "/invites", 2)
    assert "Beach" in beach_message["text"]
    await world.press(704, trip_message, "Decline")
    again = await world.press(704, trip_message, "Accept")
    assert again["text"] == "This invitation was already answered or withdrawn."

    await world.ask(
        "splits", CancelInvite(group_id=beach, user_id=alice.id, invite_id=withdrawn.id)
    )
    gone = await world.press(704, beach_message, "Accept")
    assert gone["text"] == "This invitation was already answered or withdrawn."
    assert await world.group_names(bob) == []


async def test_no_invitations_and_an_unlinked_chat(world: World) -> None:
    """With nothing pending the bot says so; an unlinked chat is told how to link."""
    await world.linked("Bob", 705)
    empty = await world.say(705, "/invites")
    assert empty["text"] == "No invitations are waiting for you."
    stranger = await world.say(706, "/invites")
    assert "not linked" in stranger["text"]


async def test_an_unverified_address_may_not_list_or_answer(world: World) -> None:
    """Before the address is verified /invites asks to verify it, and a button for its
    invitation answers nothing: the user does not join and the invitation still waits."""
    dan = await world.linked("Dan", 707, verified=False)
    alice = await world.register("Alice")
    trip = await world.group(alice, "Trip")
    invite = await world.invite(trip, alice, dan)

    refused = await world.say(707, "/invites")
    assert refused["text"].startswith("Verify your email address first")
    assert "reply_markup" not in refused or refused["reply_markup"] is None

    accept = bot_invites.InviteAnswer(action="a", ref=bot_invites.invite_ref(invite.id)).pack()
    edited = await world.tap(707, refused, accept)
    assert edited["text"].startswith("Verify your email address first")
    assert await world.group_names(dan) == []
    assert await world.pending(trip, alice) == [invite.id]
