"""The Telegram bot end to end: real auth, payments and splits actors on a real PostgreSQL,
and a fake Telegram Bot API server that the bot polls (or that stands in for Telegram
while updates arrive on the webhook)."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from actors.auth import messages as auth_messages
from actors.auth.actor import Auth
from actors.auth.messages import (
    CreateTelegramLink,
    FindUserByChat,
    GetUser,
    Register,
    TelegramLink,
    UserNotFound,
    UserView,
    auth_key,
)
from actors.auth.passwords import TEST_PARAMETERS, Passwords
from actors.auth.tokens import SigningKeys
from actors.payments import messages as payments_messages
from actors.payments.actor import Payments
from actors.payments.messages import payments_key
from actors.rates import messages as rates_messages
from actors.rates.actor import Rates
from actors.rates.feed import EcbFeed, SingleFlightFeed
from actors.rates.messages import RATES, rates_key
from actors.runtime import ActorSystem, MemoryDeadLetterStore, Message, Outbox
from actors.splits import messages as splits_messages
from actors.splits.actor import Splits
from actors.splits.messages import AddMember, CreateGroup, GetBalances, GroupNotFound, splits_key
from splitgo.bot import app as bot_app
from splitgo.bot import groups as bot_groups
from splitgo.bot.app import TelegramBot
from splitgo.db import apply_schema
from tests.support.fake_rates import FakeRates
from tests.support.fake_telegram import FakeTelegram, Sent
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

TOKEN = "123456:TEST-bot-token"
PASSWORD = "correct horse battery staple"
KEYS = SigningKeys(keys={"k1": b"k" * 32}, current="k1")
WEBHOOK_SECRET = "webhook-secret-for-tests"


@dataclass
class World:
    """The actors and the fake Telegram; `chat` talks to whichever bot is running."""

    system: ActorSystem
    tg: FakeTelegram
    pool: asyncpg.Pool

    async def ask(self, actor: str, message: Message) -> Any:
        return await self.system.ref(actor).ask(message)

    async def register(self, name: str) -> UserView:
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        user: UserView = await self.ask("auth", Register(email=email, password=PASSWORD, name=name))
        return user

    async def link_token(self, user: UserView) -> str:
        link: TelegramLink = await self.ask("auth", CreateTelegramLink(user_id=user.id))
        return parse_qs(urlsplit(link.url).query)["start"][0]

    async def group(
        self, owner: UserView, name: str, *members: UserView, currency: str = "EUR"
    ) -> str:
        group_id = str(uuid.uuid4())
        await self.ask(
            "splits",
            CreateGroup(group_id=group_id, user_id=owner.id, name=name, currency=currency),
        )
        for member in members:
            await self.ask(
                "splits",
                AddMember(group_id=group_id, user_id=owner.id, member_user_id=member.id),
            )
        return group_id

    async def nets(self, group_id: str, user: UserView) -> dict[str, int]:
        view = await self.ask("splits", GetBalances(group_id=group_id, user_id=user.id))
        return {line.user_id: line.net for line in view.balances if line.net}

    def push(self, chat_id: int, text: str = "", **kwargs: Any) -> None:
        self.tg.push_update(TOKEN, self.tg.message_update(chat_id, text, **kwargs))

    async def say(self, chat_id: int, text: str = "", **kwargs: Any) -> Sent:
        """Send the bot a message from this chat; its first reply to the chat."""
        seen = max((m["message_id"] for m in self.tg.sent), default=0)
        self.push(chat_id, text, **kwargs)
        return await self.tg.wait_sent(
            lambda m: m["chat_id"] == chat_id and m["message_id"] > seen, timeout=10.0
        )

    async def linked(self, name: str, chat_id: int) -> UserView:
        """A registered user whose chat is linked through `/start <token>`."""
        user = await self.register(name)
        await self.say(chat_id, f"/start {await self.link_token(user)}")
        return user


@asynccontextmanager
async def running(database_url: str) -> AsyncIterator[World]:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    assert pool is not None
    await apply_schema(pool)
    codec = Codec()
    for module in (auth_messages, payments_messages, splits_messages, rates_messages):
        codec.register_module(module)
    system = ActorSystem(
        MemoryTransport(node_id="bot-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=10.0,
    )
    await system.start()
    passwords = Passwords(TEST_PARAMETERS)
    system.spawn(
        Auth,
        "auth",
        factory=lambda: Auth(
            pool,
            KEYS,
            bot_username="splitgo_bot",
            public_url="https://splitgo.test",
            notifier=None,
            passwords=passwords,
        ),
        shards=2,
        key=auth_key,
    )
    system.spawn(Payments, "payments", factory=lambda: Payments(pool), key=payments_key)
    system.spawn(Splits, "splits", factory=lambda: Splits(pool), shards=2, key=splits_key)
    http = aiohttp.ClientSession()
    rates = FakeRates()
    await rates.start()
    today = datetime.date.today()
    for back in range(12):  # a dollar at 1.08 per euro, every day of the last fortnight
        rates.set_day(today - datetime.timedelta(days=back), {"USD": "1.08", "JPY": "160"})
    feed = SingleFlightFeed(EcbFeed(http, rates.url))
    system.spawn(Rates, RATES, factory=lambda: Rates(pool, feed), key=rates_key)
    try:
        async with FakeTelegram() as tg:
            yield World(system, tg, pool)
    finally:
        await system.stop(timeout=5)
        await rates.stop()
        await http.close()
        await pool.close()


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with running(database_url) as made:
        yield made


@pytest.fixture
async def bot(world: World) -> AsyncIterator[TelegramBot]:
    """The bot in polling mode against the fake Telegram."""
    polling = TelegramBot(world.system, token=TOKEN, api_url=world.tg.base_url, polling_timeout=1)
    await polling.start()
    try:
        yield polling
    finally:
        await polling.stop()


# ── linking ────────────────────────────────────────────────────────────────────────────


@pytest.mark.usefixtures("bot")
async def test_start_with_a_token_links_the_chat_and_offers_the_phone_button(
    world: World,
) -> None:
    """`/start <token>` binds the chat to the account and offers a request_contact button."""
    user = await world.register("Amy")
    reply = await world.say(501, f"/start {await world.link_token(user)}")
    assert "Hello Amy" in reply["text"]
    assert "linked" in reply["text"]
    assert reply["parse_mode"] == "HTML"
    button = reply["reply_markup"]["keyboard"][0][0]
    assert button["request_contact"] is True
    found = await world.ask("auth", FindUserByChat(chat_id=501))
    assert found.id == user.id
    assert found.telegram_linked


@pytest.mark.usefixtures("bot")
async def test_a_used_or_unknown_token_gets_a_clear_answer(world: World) -> None:
    """A token spent by one chat, or one never issued, is refused in a sentence, linking
    nothing."""
    user = await world.register("Amy")
    token = await world.link_token(user)
    await world.say(502, f"/start {token}")
    reused = await world.say(503, f"/start {token}")
    assert "already used or has expired" in reused["text"]
    forged = await world.say(503, "/start not-a-real-token")
    assert "already used or has expired" in forged["text"]
    with pytest.raises(UserNotFound):
        await world.ask("auth", FindUserByChat(chat_id=503))


@pytest.mark.usefixtures("bot")
async def test_start_without_a_token_explains_how_to_link(world: World) -> None:
    """A bare `/start` in an unlinked chat tells where the deep link comes from."""
    reply = await world.say(504, "/start")
    assert "/api/v1/me/telegram-link" in reply["text"]
    assert "t.me" in reply["text"]


@pytest.mark.usefixtures("bot")
async def test_sharing_your_own_contact_confirms_the_phone(world: World) -> None:
    """The sender's own contact verifies the number on the account; anyone else's is
    refused and changes nothing."""
    user = await world.linked("Amy", 505)
    refused = await world.say(
        505, contact={"phone_number": "491709999999", "user_id": 999, "first_name": "Eve"}
    )
    assert "only confirm your own" in refused["text"]
    assert not (await world.ask("auth", GetUser(user_id=user.id))).phone_verified

    confirmed = await world.say(505, contact={"phone_number": "491701234567"})
    assert "confirmed" in confirmed["text"]
    assert confirmed["reply_markup"] == {"remove_keyboard": True}
    view = await world.ask("auth", GetUser(user_id=user.id))
    assert (view.phone, view.phone_verified) == ("+491701234567", True)


@pytest.mark.usefixtures("bot")
async def test_an_unlinked_chat_is_told_how_to_link(world: World) -> None:
    """Every account command in a chat with no account answers with the way to link."""
    for command in ("/balance", "/groups", "/add 5 Coffee", "/settle"):
        reply = await world.say(506, command)
        assert "not linked" in reply["text"], command
        assert "/api/v1/me/telegram-link" in reply["text"]


# ── groups and money ───────────────────────────────────────────────────────────────────


@pytest.mark.usefixtures("bot")
async def test_groups_add_settle_and_balance_from_the_chat(world: World) -> None:
    """/groups lists the groups (names escaped), /add splits equally in the named group,
    /settle shows your transfers in bold, /balance shows wallet and group nets."""
    amy = await world.linked("Amy", 510)
    bob = await world.register("Bob")
    trip = await world.group(amy, "Trip", bob)
    await world.group(amy, "Bar & <Grill>")

    listed = await world.say(510, "/groups")
    assert "<b>Trip</b> (EUR, 2 members): settled up" in listed["text"]
    assert "Bar &amp; &lt;Grill&gt;" in listed["text"]

    added = await world.say(510, "/add 12.50 Pizza @trip")
    assert "Added <b>Pizza</b> to <b>Trip</b>: 12.50 EUR" in added["text"]
    assert "your share 6.25 EUR" in added["text"]
    assert await world.nets(trip, amy) == {amy.id: 625, bob.id: -625}

    plan = await world.say(510, "/settle")
    assert "<b>Bob pays you 6.25 EUR</b>" in plan["text"]
    assert "Bar &amp; &lt;Grill&gt;</b>: all settled up." in plan["text"]

    balance = await world.say(510, "/balance")
    assert "Your wallet is empty." in balance["text"]
    assert "Trip: you are owed 6.25 EUR" in balance["text"]


@pytest.mark.usefixtures("bot")
async def test_add_uses_the_only_group_and_its_currency_exponent(world: World) -> None:
    """Without @ the only group is meant, and "1200" is 1200 minor units in JPY."""
    amy = await world.linked("Amy", 511)
    bob = await world.register("Bob")
    tokyo = await world.group(amy, "Tokyo", bob, currency="JPY")
    added = await world.say(511, "/add 1200 Sushi")
    assert "1200 JPY" in added["text"]
    assert await world.nets(tokyo, amy) == {amy.id: 600, bob.id: -600}
    plan = await world.say(511, "/settle")
    assert "<b>Bob pays you 600 JPY</b>" in plan["text"]


@pytest.mark.usefixtures("bot")
async def test_add_in_another_currency_is_converted_at_the_days_rate(world: World) -> None:
    """`/add 10.80 USD Pizza @trip` in a EUR group is a USD expense carrying the day's
    rate: €10.00 at 1.08 dollars a euro, split equally in both views."""
    amy = await world.linked("Amy", 514)
    bob = await world.register("Bob")
    trip = await world.group(amy, "Trip", bob)
    added = await world.say(514, "/add 10.80 usd Pizza @trip")
    assert "Added <b>Pizza</b> to <b>Trip</b>: 10.80 USD (10.00 EUR at" in added["text"]
    row = await world.pool.fetchrow(
        "SELECT currency, amount, group_amount, rate_source FROM splits_expenses"
        " WHERE group_id = $1",
        trip,
    )
    assert dict(row) == {
        "currency": "USD",
        "amount": 1080,
        "group_amount": 1000,
        "rate_source": "ecb",
    }
    converted = await world.ask(
        "splits", GetBalances(group_id=trip, user_id=amy.id, converted=True)
    )
    assert {(line.user_id, line.currency, line.net) for line in converted.balances} == {
        (amy.id, "EUR", 500),
        (bob.id, "EUR", -500),
    }


@pytest.mark.usefixtures("bot")
async def test_a_double_tapped_add_creates_one_expense(world: World) -> None:
    """The same /add sent twice within seconds (two Telegram messages) adds one expense,
    and both sends are answered with it; the same text after the window is a new one."""
    amy = await world.linked("Amy", 513)
    bob = await world.register("Bob")
    trip = await world.group(amy, "Trip", bob)
    first = await world.say(513, "/add 10 Taxi")
    second = await world.say(513, "/add 10 Taxi")
    assert "Added <b>Taxi</b>" in first["text"]
    assert second["text"] == first["text"]
    assert await world.nets(trip, amy) == {amy.id: 500, bob.id: -500}
    count = await world.pool.fetchval(
        "SELECT count(*) FROM splits_expenses WHERE group_id = $1", trip
    )
    assert count == 1


@pytest.mark.usefixtures("bot")
async def test_malformed_add_arguments_get_the_usage_and_add_nothing(world: World) -> None:
    """A non-number, too many decimals or an unknown group: a reason and the usage."""
    amy = await world.linked("Amy", 512)
    trip = await world.group(amy, "Trip", await world.register("Bob"))
    for args, reason in [
        ("nonsense", "is not an amount"),
        ("1.234 Pizza @Trip", "at most 2 decimals"),
        ("-3 Pizza", "more than zero"),
        ("5 Pizza @Beach", "no group named Beach"),
        ("", "amount"),
    ]:
        reply = await world.say(512, f"/add {args}".strip())
        assert reason in reply["text"], args
        assert "Usage: <code>/add 12.50 Pizza @Trip</code>" in reply["text"]
    assert await world.nets(trip, amy) == {}


@pytest.mark.usefixtures("bot")
async def test_a_crash_in_a_handler_is_a_polite_sentence(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception is logged and answered "Something went wrong", never shown."""
    await world.linked("Amy", 513)

    async def broken(*_args: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(bot_groups, "my_groups", broken)
    reply = await world.say(513, "/groups")
    assert reply["text"].startswith("Something went wrong")
    assert "fire" not in reply["text"]


@pytest.mark.usefixtures("bot")
async def test_a_refusal_from_an_actor_is_a_plain_sentence(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A domain error raised at the asker becomes a sentence, not its code."""
    await world.linked("Amy", 514)

    async def refused(*_args: Any) -> Any:
        raise GroupNotFound("No such group.")

    monkeypatch.setattr(bot_groups, "my_groups", refused)
    reply = await world.say(514, "/settle")
    assert reply["text"] == "That group does not exist, or you are not a member of it."


@pytest.mark.usefixtures("bot")
async def test_account_commands_stay_out_of_group_chats(world: World) -> None:
    """In a group chat the bot does not show anyone's money; it asks for a private chat."""
    update = world.tg.message_update(-100515, "/balance", user_id=515)
    update["message"]["chat"] = {"id": -100515, "type": "supergroup", "title": "Friends"}
    world.tg.push_update(TOKEN, update)
    reply = await world.tg.wait_sent(lambda m: m["chat_id"] == -100515)
    assert "private chat" in reply["text"]


# ── help, rides, unknown commands ──────────────────────────────────────────────────────


@pytest.mark.usefixtures("bot")
async def test_help_rides_and_unknown_commands(world: World) -> None:
    """/help lists the commands, /rides says rides are not here yet, and an unknown
    command gets the help."""
    helped = await world.say(520, "/help")
    for command in ("/balance", "/groups", "/add", "/settle", "/rides"):
        assert command in helped["text"]
    rides = await world.say(520, "/rides")
    assert rides["text"] == "Rides are not available on this server yet."
    unknown = await world.say(520, "/frobnicate now")
    assert "I don't know /frobnicate" in unknown["text"]
    assert "/balance" in unknown["text"]
    chatter = await world.say(520, "hello there")
    assert "/help" in chatter["text"]


async def test_start_registers_the_commands_and_stop_is_idempotent(world: World) -> None:
    """Starting announces the command menu and polls; stopping ends polling and is
    harmless twice."""
    polling = TelegramBot(world.system, token=TOKEN, api_url=world.tg.base_url, polling_timeout=1)
    await polling.start()
    assert (TOKEN, "setMyCommands") in world.tg.calls
    async with asyncio.timeout(5):
        while (TOKEN, "getUpdates") not in world.tg.calls:
            await asyncio.sleep(0.02)
    await polling.stop()
    await polling.stop()
    polls = world.tg.calls.count((TOKEN, "getUpdates"))
    await asyncio.sleep(1.5)  # longer than one long poll of the fake
    assert world.tg.calls.count((TOKEN, "getUpdates")) == polls


# ── webhook mode ───────────────────────────────────────────────────────────────────────


@asynccontextmanager
async def webhook_server(bot: TelegramBot) -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes(bot.webhook_routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}{bot_app.WEBHOOK_PATH}"
    finally:
        await runner.cleanup()


async def test_the_webhook_takes_only_updates_that_carry_the_secret(world: World) -> None:
    """Without the secret header, or with a wrong one, the webhook answers 401 and handles
    nothing; with the right one the update is handled."""
    hooked = TelegramBot(
        world.system,
        token=TOKEN,
        api_url=world.tg.base_url,
        mode="webhook",
        webhook_secret=WEBHOOK_SECRET,
        public_url="https://splitgo.test",
    )
    await hooked.start()
    assert (TOKEN, "setWebhook") in world.tg.calls
    assert (TOKEN, "getUpdates") not in world.tg.calls
    try:
        async with webhook_server(hooked) as url, aiohttp.ClientSession() as http:
            update = world.tg.message_update(530, "/help")
            for headers in ({}, {bot_app.SECRET_HEADER: "wrong"}):
                async with http.post(url, json=update, headers=headers) as response:
                    assert response.status == 401
                    assert response.content_type == "application/problem+json"
            await asyncio.sleep(0.3)
            assert world.tg.sent_to(530) == []

            headers = {bot_app.SECRET_HEADER: WEBHOOK_SECRET}
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 200
            reply = await world.tg.wait_sent(lambda m: m["chat_id"] == 530)
            assert "/balance" in reply["text"]
    finally:
        await hooked.stop()
