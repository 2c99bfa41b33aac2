"""Chat end to end against a real node over HTTP and its WebSocket: conversations of a
group, an expense and two people, messages live to every participant, history by cursor,
unread counts and read markers, typing, edits and deletions, members who leave, and the
refusals of bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_splits import add_expense, equal, expense_body, new_group
from tests.support.api import Api, User
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path_factory.mktemp("chat-node"))
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


def socket_url(api: Api, user: User) -> str:
    return f"{api.url.replace('http://', 'ws://', 1)}/api/v1/ws?access_token={user.token}"


async def next_frame(
    socket: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 10.0
) -> dict[str, Any]:
    """The next frame of `kind` the socket receives (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await socket.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame: dict[str, Any] = json.loads(message.data)
            if frame["type"] == kind:
                return frame


async def open_group_chat(api: Api, user: User, group: str, status: int = 201) -> dict[str, Any]:
    found: dict[str, Any] = await api.ok(
        "POST", "/api/v1/conversations", user, {"group_id": group}, status=status
    )
    return found


async def post(api: Api, user: User, conversation: str, text: str) -> dict[str, Any]:
    posted: dict[str, Any] = await api.ok(
        "POST", f"/api/v1/conversations/{conversation}/messages", user, {"text": text}, 201
    )
    return posted


async def test_a_group_conversation_reaches_every_member_live(api: Api) -> None:
    """Opening a group's conversation twice finds the first (201, then 200) with every
    member in it; a message posted by one reaches the other's open WebSocket with the
    author's name, and the history lists it newest first."""
    ann, bob = await api.register(name="Ann Lee"), await api.register(name="Bob")
    group = await new_group(api, ann, bob)
    opened = await open_group_chat(api, ann, group)
    assert {p["user_id"] for p in opened["participants"]} == {ann.id, bob.id}
    again = await open_group_chat(api, bob, group, status=200)
    assert again["id"] == opened["id"]
    async with api.http.ws_connect(socket_url(api, bob)) as socket:
        await next_frame(socket, "hello")
        posted = await post(api, ann, opened["id"], "  Who paid for the taxi?  ")
        assert posted["text"] == "Who paid for the taxi?"
        assert posted["author_name"] == "Ann Lee"
        frame = await next_frame(socket, "chat_message")
    assert frame["id"] == posted["id"]
    assert frame["author_name"] == "Ann Lee"
    assert frame["conversation_id"] == opened["id"]
    second = await post(api, bob, opened["id"], "I did")
    history = await api.ok("GET", f"/api/v1/conversations/{opened['id']}/messages", ann)
    assert [m["id"] for m in history["items"]] == [second["id"], posted["id"]]
    assert history["items"][0]["author_name"] == "Bob"


async def test_history_pages_back_by_cursor(api: Api) -> None:
    """Five messages read two at a time come back newest first, each once, and the last
    page says there is no more."""
    ann, bob = await api.register(), await api.register()
    chat = (await open_group_chat(api, ann, await new_group(api, ann, bob)))["id"]
    sent = [(await post(api, ann, chat, f"message {n}"))["id"] for n in range(5)]
    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        page = await api.ok(
            "GET", f"/api/v1/conversations/{chat}/messages?limit=2&cursor={cursor}", bob
        )
        seen += [m["id"] for m in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(sent))


async def test_unread_counts_and_read_markers(api: Api) -> None:
    """Messages from others count as unread until you mark the newest read (posting marks
    what came before read: you were there); the conversation list and the total agree."""
    ann, bob = await api.register(), await api.register()
    chat = (await open_group_chat(api, ann, await new_group(api, ann, bob)))["id"]
    await post(api, bob, chat, "mine")
    await post(api, ann, chat, "one")
    last = await post(api, ann, chat, "two")
    listed = await api.ok("GET", "/api/v1/conversations", bob)
    mine = next(c for c in listed["items"] if c["id"] == chat)
    assert mine["unread"] == 2
    assert mine["last_message"]["text"] == "two"
    assert (await api.ok("GET", "/api/v1/conversations/unread", bob))["total"] == 2
    assert (await api.ok("GET", "/api/v1/conversations/unread", ann))["total"] == 0
    reply = await api.call(
        "POST", f"/api/v1/conversations/{chat}/read", bob, {"message_id": last["id"]}
    )
    assert reply.status == 204, reply.body
    assert (await api.ok("GET", "/api/v1/conversations/unread", bob))["total"] == 0


async def test_typing_reaches_the_others_and_is_never_stored(api: Api) -> None:
    """Typing is pushed to the other participant as `chat_typing` and leaves no message."""
    ann, bob = await api.register(name="Ann"), await api.register()
    chat = (await open_group_chat(api, ann, await new_group(api, ann, bob)))["id"]
    async with api.http.ws_connect(socket_url(api, bob)) as socket:
        await next_frame(socket, "hello")
        reply = await api.call("POST", f"/api/v1/conversations/{chat}/typing", ann)
        assert reply.status == 204, reply.body
        frame = await next_frame(socket, "chat_typing")
    assert frame == {
        "type": "chat_typing",
        "conversation_id": chat,
        "user_id": ann.id,
        "name": "Ann",
    }
    history = await api.ok("GET", f"/api/v1/conversations/{chat}/messages", bob)
    assert history["items"] == []


async def test_editing_and_deleting_your_own_message(api: Api) -> None:
    """An author edits (shown with `edited_at`) and deletes (kept as deleted, no text)
    their message; someone else's is 403 and changes nothing."""
    ann, bob = await api.register(), await api.register()
    chat = (await open_group_chat(api, ann, await new_group(api, ann, bob)))["id"]
    posted = await post(api, ann, chat, "We owe 20")
    path = f"/api/v1/conversations/{chat}/messages/{posted['id']}"
    await api.problem("PATCH", path, bob, {"text": "nope"}, status=403, code="not_your_message")
    await api.problem("DELETE", path, bob, status=403, code="not_your_message")
    edited = await api.ok("PATCH", path, ann, {"text": "We owe 25"})
    assert edited["text"] == "We owe 25"
    assert edited["edited_at"]
    deleted = await api.ok("DELETE", path, ann)
    assert deleted["deleted"] is True
    assert deleted["text"] == ""
    again = await api.ok("DELETE", path, ann)
    assert again["deleted"] is True
    history = await api.ok("GET", f"/api/v1/conversations/{chat}/messages", bob)
    assert [(m["id"], m["deleted"], m["text"]) for m in history["items"]] == [
        (posted["id"], True, "")
    ]


async def test_bad_input_is_refused_and_changes_nothing(api: Api) -> None:
    """An empty or oversized message is 422 naming `$.text`; a conversation you are not
    in is 404; a body naming two subjects is 422; nothing is stored."""
    ann, bob, eve = await api.register(), await api.register(), await api.register()
    chat = (await open_group_chat(api, ann, await new_group(api, ann, bob)))["id"]
    messages = f"/api/v1/conversations/{chat}/messages"
    await api.problem(
        "POST",
        messages,
        ann,
        {"text": " \n "},
        status=422,
        code="invalid_chat_message",
        field="$.text",
    )
    await api.problem(
        "POST",
        messages,
        ann,
        {"text": "x" * 4_001},
        status=422,
        code="invalid_chat_message",
        field="$.text",
    )
    await api.problem(
        "POST", messages, eve, {"text": "hi"}, status=404, code="conversation_not_found"
    )
    await api.problem("GET", messages, eve, status=404, code="conversation_not_found")
    await api.problem(
        "POST",
        "/api/v1/conversations",
        ann,
        {"expense_id": "x", "user_id": bob.id},
        status=422,
        code="validation_error",
    )
    assert (await api.ok("GET", messages, ann))["items"] == []


async def test_a_member_who_leaves_leaves_the_conversation(api: Api) -> None:
    """After Bob leaves the group its conversation is 404 to him; his message stays, with
    his name."""
    ann, bob = await api.register(), await api.register(name="Bob Stays")
    group = await new_group(api, ann, bob)
    chat = (await open_group_chat(api, ann, group))["id"]
    await post(api, bob, chat, "bye all")
    reply = await api.call("DELETE", f"/api/v1/groups/{group}/members/{bob.id}", bob)
    assert reply.status in (200, 204), reply.body
    for _ in range(100):
        gone = await api.call("GET", f"/api/v1/conversations/{chat}/messages", bob)
        if gone.status == 404:
            break
        await asyncio.sleep(0.05)
    assert gone.status == 404
    history = await api.ok("GET", f"/api/v1/conversations/{chat}/messages", ann)
    assert history["items"][0]["author_name"] == "Bob Stays"


async def test_direct_and_expense_conversations(api: Api) -> None:
    """Two people who share a group talk directly (the same conversation from either
    side); someone who shares none is refused; an expense's conversation has the group's
    members and the expense's description as its title."""
    ann, bob, eve = await api.register(), await api.register(), await api.register()
    group = await new_group(api, ann, bob)
    direct = await api.ok("POST", "/api/v1/conversations", ann, {"user_id": bob.id}, 201)
    back = await api.ok("POST", "/api/v1/conversations", bob, {"user_id": ann.id}, 200)
    assert back["id"] == direct["id"]
    assert direct["kind"] == "direct"
    await api.problem(
        "POST",
        "/api/v1/conversations",
        ann,
        {"user_id": eve.id},
        status=422,
        code="no_shared_group",
        field="$.user_id",
    )
    expense = await add_expense(
        api, group, ann, expense_body(1200, ann.id, equal(ann, bob), description="Taxi")
    )
    about = await api.ok("POST", "/api/v1/conversations", bob, {"expense_id": expense["id"]}, 201)
    assert about["title"] == "Taxi"
    assert about["group_id"] == group
    assert {p["user_id"] for p in about["participants"]} == {ann.id, bob.id}
    await api.problem(
        "POST",
        "/api/v1/conversations",
        eve,
        {"expense_id": expense["id"]},
        status=404,
        code="expense_not_found",
    )


async def test_a_retry_with_its_key_posts_once(api: Api) -> None:
    """The same Idempotency-Key twice answers the first message; the history has one."""
    ann, bob = await api.register(), await api.register()
    chat = (await open_group_chat(api, ann, await new_group(api, ann, bob)))["id"]
    path = f"/api/v1/conversations/{chat}/messages"
    key = {"Idempotency-Key": "retry-me-1"}
    first = await api.call("POST", path, ann, {"text": "once"}, key)
    second = await api.call("POST", path, ann, {"text": "once"}, key)
    assert first.status == second.status == 201
    assert first.body["id"] == second.body["id"]
    assert len((await api.ok("GET", path, ann))["items"]) == 1
