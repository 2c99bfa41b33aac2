"""The Notifications table of API.md against a real node with two Telegram bots on a fake
Bot API: the live WebSocket and the in-app feed, linking a chat and hearing about
expenses there, preferences, money notices, and the ops view of deliveries."""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio

from tests.support.api import Api, Reply, User
from tests.support.fake_telegram import FakeTelegram, Sent
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SANDBOX_SECRET = "e2e-sandbox-secret-0123456789abcdef"
OPS_TOKEN = "notifications-e2e-ops-token"
# the shape of a real bot token: the bot's id, a colon, 35 characters of secret
FIRST_BOT = "123456:" + "".join(secrets.choice(string.ascii_letters) for _ in range(35))
SECOND_BOT = "654321:" + "".join(secrets.choice(string.ascii_letters) for _ in range(35))
ALICE_CHAT = 5001
PUSH_DEADLINE = 1.0  # seconds from the POST returning to the frame on the socket
# what an in-app notification is, on the socket as in the feed
ITEM_FIELDS = {"id", "category", "kind", "title", "body", "data", "created_at", "read"}

DEFAULT_PREFERENCES = {
    "account": {"email": True, "telegram": True, "inapp": True, "sms": False, "webpush": True},
    "money": {"email": False, "telegram": True, "inapp": True, "sms": False, "webpush": True},
    "splits": {"email": False, "telegram": True, "inapp": True, "sms": False, "webpush": True},
    "rides": {"email": False, "telegram": True, "inapp": True, "sms": False, "webpush": True},
    "chat": {"email": False, "telegram": True, "inapp": True, "sms": False, "webpush": True},
}


@dataclass
class World:
    node: RunningNode
    tg: FakeTelegram


# ── the node and the fake Bot API ─────────────────────────────────────────────────────


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tg() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()  # before the node: its bot starts polling at once
    yield fake
    await fake.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, tg: FakeTelegram) -> AsyncIterator[World]:
    running = await start_node(
        tmp_path_factory.mktemp("notifications-node"),
        env={
            "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
            "SPLITGO_OPS_TOKEN": OPS_TOKEN,
            "SPLITGO_TELEGRAM_BOT_TOKENS": f"{FIRST_BOT},{SECOND_BOT}",
            "SPLITGO_TELEGRAM_API_URL": tg.base_url,
        },
    )
    yield World(running, tg)
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(world: World) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(world.node.url, session)


# ── helpers ───────────────────────────────────────────────────────────────────────────


async def new_user(api: Api, name: str = "Friend") -> User:
    return await api.register(f"n{secrets.token_hex(5)}@example.com", name)


async def new_group(api: Api, owner: User, *members: User, name: str = "Trip") -> str:
    """A EUR group made by `owner` (who is told nothing about it) with `members` added."""
    group = await api.ok(
        "POST", "/api/v1/groups", owner, {"name": name, "currency": "EUR"}, status=201
    )
    for member in members:
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": member.id}, 201
        )
    return str(group["id"])


async def add_expense(
    api: Api, group: str, payer: User, amount: int, description: str, *among: User
) -> dict[str, Any]:
    """An expense `payer` paid, split equally among `among`."""
    body = {
        "description": description,
        "amount": amount,
        "currency": "EUR",
        "paid_by": payer.id,
        "split": {"mode": "equal", "shares": [{"user_id": user.id} for user in among]},
    }
    created: dict[str, Any] = await api.ok(
        "POST", f"/api/v1/groups/{group}/expenses", payer, body, status=201
    )
    return created


async def top_up(api: Api, user: User, amount: int, *, pay: bool = True) -> str:
    """A sandbox top-up paid (or declined) on its checkout page; its id."""
    created = await api.top_up(user, amount, pay=pay)
    return str(created["id"])


async def feed(api: Api, user: User, query: str = "") -> dict[str, Any]:
    page: dict[str, Any] = await api.ok("GET", f"/api/v1/notifications{query}", user)
    return page


async def wait_feed(
    api: Api, user: User, found: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    """The first in-app item matching, waiting for it to arrive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        items = (await feed(api, user))["items"]
        for item in items:
            if found(item):
                return dict(item)
        if loop.time() > deadline:
            raise AssertionError(f"no matching notification within {timeout}s: {items}")
        await asyncio.sleep(0.05)


def last_message_id(tg: FakeTelegram) -> int:
    return max((int(m["message_id"]) for m in tg.sent), default=0)


async def sent_after(
    tg: FakeTelegram, mark: int, chat_id: int, contains: str, timeout: float = 5.0
) -> Sent:
    """The first message to the chat after `mark` (a message id) whose text has `contains`."""
    return await tg.wait_sent(
        lambda m: (
            int(m["message_id"]) > mark
            and m["chat_id"] == chat_id
            and contains in str(m.get("text"))
        ),
        timeout,
    )


async def say(tg: FakeTelegram, chat_id: int, text: str, contains: str) -> Sent:
    """Send `text` from the chat to the first bot; its answer containing `contains`."""
    mark = last_message_id(tg)
    tg.push_update(FIRST_BOT, tg.message_update(chat_id, text))
    return await sent_after(tg, mark, chat_id, contains)


async def link_chat(api: Api, tg: FakeTelegram, user: User, chat_id: int) -> Sent:
    """Link a chat through the app's deep link and `/start <token>`; the bot's reply."""
    link = await api.ok("POST", "/api/v1/me/telegram-link", user, status=201)
    assert link["url"].startswith("https://t.me/")
    assert link["expires_at"].endswith("Z")
    token = parse_qs(urlsplit(link["url"]).query)["start"][0]
    return await say(tg, chat_id, f"/start {token}", "now linked")


def socket_url(api: Api, token: str) -> str:
    return f"{api.url.replace('http://', 'ws://', 1)}/api/v1/ws?access_token={token}"


async def deliveries(api: Api, query: str) -> list[dict[str, Any]]:
    reply = await api.call(
        "GET",
        f"/ops/notifications/deliveries{query}",
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
    )
    assert reply.status == 200, reply.body
    return list(reply.body["items"])


def assert_problem(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.content_type == "application/problem+json"
    assert reply.body["status"] == status
    assert reply.body["code"] == code


# ── the node ──────────────────────────────────────────────────────────────────────────


async def test_the_bot_polls_on_the_first_token_only(world: World) -> None:
    """With two bot tokens the node runs its bot (commands, polling) on the first only."""
    tg = world.tg
    for _ in range(100):
        if (FIRST_BOT, "getUpdates") in tg.calls:
            break
        await asyncio.sleep(0.05)
    assert (FIRST_BOT, "getUpdates") in tg.calls
    assert (FIRST_BOT, "setMyCommands") in tg.calls
    assert not [call for call in tg.calls if call[0] == SECOND_BOT]


# ── in-app: the live socket and the feed ─────────────────────────────────────────────


async def test_in_app_notifications_are_pushed_live_and_kept_in_the_feed(api: Api) -> None:
    """A co-member's expense reaches the WebSocket within a second, then the feed marks it read."""
    alice, bob = await new_user(api, "Alice"), await new_user(api, "Bob")
    group = await new_group(api, alice, bob, name="Porto")
    loop = asyncio.get_running_loop()
    async with api.http.ws_connect(socket_url(api, alice.token)) as socket:
        hello = await socket.receive_json(timeout=5)
        assert hello["type"] == "hello"

        async def next_frame() -> tuple[dict[str, Any], float]:
            frame = await socket.receive_json(timeout=10)
            return frame, loop.time()

        listening = asyncio.create_task(next_frame())
        await asyncio.sleep(0)  # the receive is waiting before the POST goes out
        expense = await add_expense(api, group, bob, 3000, "Ferry tickets", alice, bob)
        returned = loop.time()
        frame, arrived = await listening
        latency = arrived - returned
        print(f"\nWebSocket push latency after the POST returned: {latency * 1000:.1f} ms")
        assert latency < PUSH_DEADLINE, f"the push took {latency:.3f}s"

        assert frame["type"] == "notification"
        pushed = {field: frame["notification"][field] for field in ITEM_FIELDS}
        assert pushed["category"] == "splits"
        assert pushed["kind"] == "ExpenseAdded"
        assert pushed["title"] == "New expense in Porto"
        assert "Ferry tickets" in pushed["body"]
        assert "30.00 EUR" in pushed["body"]
        assert "your share is 15.00 EUR" in pushed["body"]
        assert pushed["data"] == {"group_id": group, "expense_id": expense["id"]}
        assert pushed["read"] is False
        assert pushed["created_at"].endswith("Z")

        second = await add_expense(api, group, bob, 1000, "Coffee", alice, bob)
        frame = await socket.receive_json(timeout=5)
        assert frame["notification"]["data"]["expense_id"] == second["id"]

    page = await feed(api, alice)
    assert page["unread"] == 2
    assert all(set(item) == ITEM_FIELDS for item in page["items"])
    assert [item["id"] for item in page["items"]] == [frame["notification"]["id"], pushed["id"]]
    assert page["items"][1] == pushed
    # the one who added it is not told about it
    assert [i["kind"] for i in (await feed(api, bob))["items"]] == ["MemberAdded"]

    read = await api.call("POST", f"/api/v1/notifications/{pushed['id']}/read", alice)
    assert read.status == 204
    page = await feed(api, alice)
    assert page["unread"] == 1
    assert {item["id"]: item["read"] for item in page["items"]}[pushed["id"]] is True
    unread = await feed(api, alice, "?unread=true")
    assert [item["id"] for item in unread["items"]] == [frame["notification"]["id"]]

    assert (await api.call("POST", "/api/v1/notifications/read-all", alice)).status == 204
    unread = await feed(api, alice, "?unread=true")
    assert (unread["items"], unread["unread"]) == ([], 0)
    assert [item["read"] for item in (await feed(api, alice))["items"]] == [True, True]

    unknown = await api.call("POST", "/api/v1/notifications/no-such-id/read", alice)
    assert_problem(unknown, 404, "notification_not_found")
    not_bobs = await api.call("POST", f"/api/v1/notifications/{pushed['id']}/read", bob)
    assert_problem(not_bobs, 404, "notification_not_found")
    bad_filter = await api.call("GET", "/api/v1/notifications?unread=maybe", alice)
    assert_problem(bad_filter, 422, "validation_error")
    assert (await api.call("GET", "/api/v1/notifications")).status == 401


async def test_the_socket_refuses_a_bad_token(api: Api) -> None:
    """A bad or missing access_token on /api/v1/ws is refused with 401 before the upgrade."""
    for url in (socket_url(api, "not-a-token"), f"{api.url}/api/v1/ws"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with api.http.ws_connect(url):
                pass
        assert refused.value.status == 401
    plain = await api.call("GET", "/api/v1/ws?access_token=not-a-token")
    assert_problem(plain, 401, "invalid_token")


async def test_the_pushed_item_has_the_feed_fields_only(api: Api) -> None:
    """The socket's `notification` has exactly the fields of a feed item, no internal tag."""
    alice, bob = await new_user(api, "Alice"), await new_user(api, "Bob")
    group = await new_group(api, alice, bob, name="Braga")
    async with api.http.ws_connect(socket_url(api, alice.token)) as socket:
        assert (await socket.receive_json(timeout=5))["type"] == "hello"
        await add_expense(api, group, bob, 800, "Lunch", alice, bob)
        frame = await socket.receive_json(timeout=5)
    assert set(frame) == {"type", "notification"}
    assert set(frame["notification"]) == ITEM_FIELDS


# ── Telegram ──────────────────────────────────────────────────────────────────────────


async def test_a_linked_chat_hears_about_expenses_and_answers_commands(
    api: Api, world: World
) -> None:
    """After `/start <token>` the chat gets notifications (bots in turn) and answers
    /balance and /groups."""
    tg = world.tg
    alice, bob = await new_user(api, "Alice"), await new_user(api, "Bob")
    group = await new_group(api, alice, bob, name="Lisbon")
    mark = last_message_id(tg)

    welcome = await link_chat(api, tg, alice, ALICE_CHAT)
    assert welcome["token"] == FIRST_BOT  # the bot answers on its own token
    assert "Hello Alice!" in welcome["text"]
    linked = await sent_after(tg, mark, ALICE_CHAT, "Telegram linked")

    expense_mark = last_message_id(tg)
    await add_expense(api, group, bob, 3000, "Tram & pastries", alice, bob)
    told = await sent_after(tg, expense_mark, ALICE_CHAT, "New expense in Lisbon")
    assert told["parse_mode"] == "HTML"
    assert "Tram &amp; pastries" in told["text"]
    assert "your share is 15.00 EUR" in told["text"]
    # notifications take the bots in turn: the next one goes through the other token
    assert {linked["token"], told["token"]} == {FIRST_BOT, SECOND_BOT}

    money_mark = last_message_id(tg)
    await top_up(api, alice, 2500)
    await sent_after(tg, money_mark, ALICE_CHAT, "Wallet topped up")

    balance = await say(tg, ALICE_CHAT, "/balance", "Wallet")
    assert "25.00 EUR available" in balance["text"]
    assert "Lisbon: you owe 15.00 EUR" in balance["text"]
    groups = await say(tg, ALICE_CHAT, "/groups", "Your groups")
    assert "<b>Lisbon</b> (EUR, 2 members): you owe 15.00 EUR" in groups["text"]
    # a chat nobody linked is told how to link, and learns nothing
    stranger = await say(tg, 5999, "/balance", "not linked")
    assert "25.00" not in stranger["text"]


# ── preferences ───────────────────────────────────────────────────────────────────────


async def test_preferences_switch_a_channel_off(api: Api, world: World) -> None:
    """PUT preferences turns splits off on Telegram: the next expense is in-app only;
    unknown categories and non-booleans are 422 and change nothing."""
    tg = world.tg
    chat = ALICE_CHAT + 1
    alice, bob = await new_user(api, "Alice"), await new_user(api, "Bob")
    group = await new_group(api, alice, bob, name="Sintra")
    await link_chat(api, tg, alice, chat)
    path = "/api/v1/notifications/preferences"

    defaults = await api.ok("GET", path, alice)
    assert {k: v for k, v in defaults.items() if k != "always_sent"} == DEFAULT_PREFERENCES
    assert "PasswordChanged" in defaults["always_sent"]
    assert "TelegramLinked" in defaults["always_sent"]

    mark = last_message_id(tg)
    await add_expense(api, group, bob, 1200, "Before: train", alice, bob)
    await sent_after(tg, mark, chat, "Before: train")  # on by default

    changed = await api.ok("PUT", path, alice, {"splits": {"telegram": False}})
    expected = {**DEFAULT_PREFERENCES, "splits": {**DEFAULT_PREFERENCES["splits"]}}
    expected["splits"]["telegram"] = False
    assert {k: v for k, v in changed.items() if k != "always_sent"} == expected
    assert changed["always_sent"] == defaults["always_sent"]
    assert await api.ok("GET", path, alice) == changed
    # someone else's switches are their own
    assert await api.ok("GET", path, bob) == defaults

    mark = last_message_id(tg)
    await add_expense(api, group, bob, 1800, "After: palace tickets", alice, bob)
    item = await wait_feed(api, alice, lambda i: "After: palace tickets" in i["body"])
    assert item["kind"] == "ExpenseAdded"
    # the in-app try comes after the Telegram one would have: give a stray one time anyway
    await asyncio.sleep(0.3)
    assert not [m for m in tg.sent if m["message_id"] > mark and m["chat_id"] == chat]
    telegram = await deliveries(api, f"?user_id={alice.id}")
    sent_by_telegram = [
        d for d in telegram if d["channel"] == "telegram" and d["event_type"] == "ExpenseAdded"
    ]
    assert len(sent_by_telegram) == 1  # the one before the switch

    invalid: list[tuple[dict[str, Any], str]] = [
        ({"spam": {"email": True}}, "$.spam"),
        ({"splits": {"email": True}, "spam": {"email": True}}, "$.spam"),
        ({"splits": {"pigeon": True}}, "$.splits.pigeon"),
    ]
    for body, field in invalid:
        refused = await api.call("PUT", path, alice, body)
        assert_problem(refused, 422, "invalid_preference")
        assert refused.body["errors"][0]["field"] == field, (body, refused.body)
        assert await api.ok("GET", path, alice) == changed, body
    malformed: list[Any] = [
        {"splits": {"telegram": "yes"}},
        {"splits": {"telegram": 1}},
        {"splits": {"telegram": None}},
        {"splits": True},
        ["splits"],
    ]
    for body in malformed:
        refused = await api.call("PUT", path, alice, body)
        assert_problem(refused, 422, "validation_error")
        assert refused.body["errors"], refused.body
        assert await api.ok("GET", path, alice) == changed, body


async def test_a_non_boolean_preference_names_its_field(api: Api) -> None:
    """PUT preferences with a non-boolean is a 422 naming `$.<category>.<channel>`."""
    alice = await new_user(api, "Alice")
    refused = await api.call(
        "PUT", "/api/v1/notifications/preferences", alice, {"splits": {"telegram": "yes"}}
    )
    assert_problem(refused, 422, "validation_error")
    assert refused.body["errors"][0]["field"] == "$.splits.telegram"


# ── money ─────────────────────────────────────────────────────────────────────────────


async def test_top_ups_are_announced_in_app(api: Api) -> None:
    """A completed sandbox top-up brings "Wallet topped up"; a declined one "Top-up failed"."""
    alice = await new_user(api, "Alice")
    paid = await top_up(api, alice, 2500)
    item = await wait_feed(api, alice, lambda i: i["kind"] == "TopUpSucceeded")
    assert item["category"] == "money"
    assert item["title"] == "Wallet topped up"
    assert item["body"] == "25.00 EUR arrived in your wallet."
    assert item["data"] == {"top_up_id": paid}
    assert item["read"] is False
    assert (await feed(api, alice))["unread"] == 1


async def test_a_declined_top_up_is_announced_in_app(api: Api) -> None:
    """A declined sandbox top-up brings an in-app "Top-up failed" notification."""
    alice = await new_user(api, "Alice")
    declined = await top_up(api, alice, 700, pay=False)
    failed = await wait_feed(api, alice, lambda i: i["kind"] == "TopUpFailed", timeout=3.0)
    assert failed["category"] == "money"
    assert failed["title"] == "Top-up failed"
    assert "7.00 EUR" in failed["body"]
    assert failed["data"] == {"top_up_id": declined}


# ── ops ───────────────────────────────────────────────────────────────────────────────


async def test_ops_lists_deliveries_with_their_tries(api: Api) -> None:
    """GET /ops/notifications/deliveries shows each delivery's tries; bad status 422, no token
    401, a user's token 403."""
    alice, bob = await new_user(api, "Alice"), await new_user(api, "Bob")
    group = await new_group(api, alice, bob, name="Faro")
    expense = await add_expense(api, group, bob, 2000, "Boat trip", alice, bob)
    await wait_feed(api, alice, lambda i: i["data"].get("expense_id") == expense["id"])

    found: list[dict[str, Any]] = []
    for _ in range(100):
        found = [
            d
            for d in await deliveries(api, f"?user_id={alice.id}")
            if d["event_type"] == "ExpenseAdded" and d["status"] == "sent"
        ]
        if found:
            break
        await asyncio.sleep(0.05)
    assert [d["channel"] for d in found] == ["inapp"]  # no chat linked, no mail for splits
    delivery = found[0]
    assert (delivery["user_id"], delivery["attempts"]) == (alice.id, 1)
    assert delivery["created_at"].endswith("Z")
    assert len(delivery["tries"]) == 1
    first = delivery["tries"][0]
    assert (first["attempt"], first["status"]) == (1, "sent")
    assert first["provider_answer"] == delivery["last_answer"]
    assert "stored" in first["provider_answer"]

    sent = await deliveries(api, f"?status=sent&user_id={alice.id}")
    assert delivery["id"] in {d["id"] for d in sent}
    assert all(d["status"] == "sent" and d["user_id"] == alice.id for d in sent)
    assert await deliveries(api, f"?status=failed&user_id={alice.id}") == []
    assert not [
        d for d in await deliveries(api, f"?user_id={bob.id}") if d["event_type"] == "ExpenseAdded"
    ]

    bogus = await api.call(
        "GET",
        "/ops/notifications/deliveries?status=bogus",
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
    )
    assert_problem(bogus, 422, "validation_error")
    assert bogus.body["errors"][0]["field"] == "status"
    anonymous = await api.call("GET", "/ops/notifications/deliveries")
    assert_problem(anonymous, 401, "unauthenticated")
    wrong = await api.call(
        "GET", "/ops/notifications/deliveries", headers={"Authorization": "Bearer nope"}
    )
    assert_problem(wrong, 401, "invalid_token")
    not_admin = await api.call("GET", "/ops/notifications/deliveries", alice)
    assert_problem(not_admin, 403, "not_an_admin")
