"""Chat notices against a real node with two Telegram bots on a fake Bot API: a mention
shows in the in-app feed (GET /api/v1/notifications) and in Telegram, always from the bot
the node listens to, and a Telegram reply to it is in the conversation's history; the
`chat` category is in the preferences."""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio

from tests.support.api import Api, User
from tests.support.fake_telegram import FakeTelegram, Sent
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# the shape of a real bot token: the bot's id, a colon, 35 characters of secret
FIRST_BOT = "123456:" + "".join(secrets.choice(string.ascii_letters) for _ in range(35))
SECOND_BOT = "654321:" + "".join(secrets.choice(string.ascii_letters) for _ in range(35))
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "splitgo", "username": "splitgo_bot"}
WAIT = 10.0  # seconds a notice or an answer may take


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tg() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()  # before the node: its bot starts polling at once
    yield fake
    await fake.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(
    tmp_path_factory: pytest.TempPathFactory, tg: FakeTelegram
) -> AsyncIterator[RunningNode]:
    running = await start_node(
        tmp_path_factory.mktemp("chat-notices-node"),
        env={
            "SPLITGO_TELEGRAM_BOT_TOKENS": f"{FIRST_BOT},{SECOND_BOT}",
            "SPLITGO_TELEGRAM_API_URL": tg.base_url,
        },
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


async def answer_to(tg: FakeTelegram, update: dict[str, Any]) -> Sent:
    """Give the listening bot this update; its first answer to the update's chat."""
    chat_id = update["message"]["chat"]["id"]
    seen = max((int(m["message_id"]) for m in tg.sent), default=0)
    tg.push_update(FIRST_BOT, update)
    return await tg.wait_sent(
        lambda m: m["chat_id"] == chat_id and int(m["message_id"]) > seen, WAIT
    )


async def link_chat(api: Api, tg: FakeTelegram, user: User, chat_id: int) -> None:
    link = await api.ok("POST", "/api/v1/me/telegram-link", user, status=201)
    token = parse_qs(urlsplit(link["url"]).query)["start"][0]
    greeting = await answer_to(tg, tg.message_update(chat_id, f"/start {token}"))
    assert "now linked" in greeting["text"]


async def group_chat(api: Api, owner: User, member: User) -> str:
    """A group "Trip" of the two, and its conversation's id."""
    group = await api.ok(
        "POST", "/api/v1/groups", owner, {"name": "Trip", "currency": "EUR"}, status=201
    )
    await api.ok(
        "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": member.id}, 201
    )
    opened = await api.ok(
        "POST", "/api/v1/conversations", owner, {"group_id": group["id"]}, status=201
    )
    return str(opened["id"])


async def post(api: Api, user: User, conversation: str, text: str) -> dict[str, Any]:
    posted: dict[str, Any] = await api.ok(
        "POST", f"/api/v1/conversations/{conversation}/messages", user, {"text": text}, 201
    )
    return posted


async def chat_item(api: Api, user: User, message_id: str) -> dict[str, Any]:
    """The user's in-app item about chat message `message_id`, waiting for it to arrive."""
    async with asyncio.timeout(WAIT):
        while True:
            page = await api.ok("GET", "/api/v1/notifications", user)
            for item in page["items"]:
                if item["category"] == "chat" and item["data"].get("message_id") == message_id:
                    return dict(item)
            await asyncio.sleep(0.05)


async def notice_of(tg: FakeTelegram, chat_id: int, words: str) -> Sent:
    """The Telegram message to the chat that has `words`, waiting for it."""
    return await tg.wait_sent(lambda m: m["chat_id"] == chat_id and words in m["text"], WAIT)


def reply(tg: FakeTelegram, chat_id: int, to: Sent, text: str) -> dict[str, Any]:
    """An update: the chat's user answers the bot's message `to` with `text`."""
    update = tg.message_update(chat_id, text)
    update["message"]["reply_to_message"] = {
        "message_id": to["message_id"],
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private"},
        "from": BOT_USER,
        "text": to["text"],
    }
    return update


async def test_a_mention_is_in_the_feed_and_a_telegram_answer_in_the_conversation(
    api: Api, tg: FakeTelegram
) -> None:
    """Ann's two mentions of Bob show in his feed (category chat, linked to the
    conversation's page) and reach his Telegram chat, both from the first bot (the one
    the node listens to, though the bots otherwise take turns); Bob's reply to a notice
    is in the history, posted by him from Telegram."""
    ann, bob = await api.register(name="Ann"), await api.register(name="Bob")
    await link_chat(api, tg, bob, 8101)
    conversation = await group_chat(api, ann, bob)
    first = await post(api, ann, conversation, "@Bob did you book the hotel?")
    item = await chat_item(api, bob, first["id"])
    assert item["kind"] == "ChatMention"
    assert item["title"] == "Ann mentioned you in Trip"
    assert item["body"] == "Ann mentioned you in Trip: @Bob did you book the hotel?"
    assert item["data"]["conversation_id"] == conversation
    assert item["data"]["path"] == f"/messages/{conversation}"
    second = await post(api, ann, conversation, "@Bob and the train?")
    await chat_item(api, bob, second["id"])
    notices = [await notice_of(tg, 8101, words) for words in ("book the hotel?", "and the train?")]
    assert {notice["token"] for notice in notices} == {FIRST_BOT}
    answer = await answer_to(tg, reply(tg, 8101, notices[0], "Booked, 2 nights"))
    assert answer["text"] == "Posted to <b>Trip</b>."
    history = await api.ok("GET", f"/api/v1/conversations/{conversation}/messages", ann)
    newest = history["items"][0]
    assert (newest["author_id"], newest["text"], newest["via"]) == (
        bob.id,
        "Booked, 2 nights",
        "telegram",
    )


async def test_the_chat_category_is_in_the_preferences(api: Api) -> None:
    """GET preferences lists `chat` (mail and SMS off by default); PUT switches it."""
    user = await api.register()
    chosen = await api.ok("GET", "/api/v1/notifications/preferences", user)
    assert chosen["chat"] == {
        "email": False,
        "telegram": True,
        "inapp": True,
        "sms": False,
        "webpush": True,
    }
    changed = await api.ok(
        "PUT", "/api/v1/notifications/preferences", user, {"chat": {"telegram": False}}
    )
    assert changed["chat"]["telegram"] is False
    assert changed["chat"]["inapp"] is True
