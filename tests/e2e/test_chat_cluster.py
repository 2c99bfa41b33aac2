"""Chat across two nodes on Redis: a message posted on one node reaches the participants'
WebSockets on both, typing too, and history, unread counts and read markers read the same
from either node.

Two real nodes (`python run.py --transport redis`, every actor type on each) share one
PostgreSQL and one Redis (a throwaway one when none answers; see tests/support/redis.py);
the chat actor's shards lease themselves to either node, so a conversation's messages
may be stored on the node that was not asked. The memory transport is tested in
test_chat.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_chat import next_frame, open_group_chat, post, socket_url
from tests.e2e.test_cluster import Cluster, cluster_on, spread_over_nodes
from tests.e2e.test_splits import new_group
from tests.support.api import Api, User
from tests.support.node import start_node
from tests.support.redis import redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Nodes a and b on Redis, each hosting every actor type, on one database."""
    folder = tmp_path_factory.mktemp("chat-cluster")
    async with cluster_on(folder, redis_url()) as built:
        env = {**built.env(), "SPLITGO_PLUGINS": ""}
        for name in ("a", "b"):
            node = await start_node(
                folder / name, "--transport", "redis", "--node-id", name, env=env
            )
            built.nodes.append(node)
        await spread_over_nodes(built.nodes[0].url, nodes=2)
        yield built


@pytest_asyncio.fixture(loop_scope="module")
async def apis(cluster: Cluster) -> AsyncIterator[tuple[Api, Api]]:
    """A client of node a and one of node b (one HTTP session)."""
    async with aiohttp.ClientSession() as session:
        yield Api(cluster.nodes[0].url, session), Api(cluster.nodes[1].url, session)


async def three_in_a_group(on_a: Api) -> tuple[User, User, User, str]:
    """Ann, Bob and Cy in a group whose conversation Ann opened: its id last."""
    ann = await on_a.register(name="Ann")
    bob = await on_a.register(name="Bob")
    cy = await on_a.register(name="Cy")
    group = await new_group(on_a, ann, bob, cy)
    chat = (await open_group_chat(on_a, ann, group))["id"]
    return ann, bob, cy, str(chat)


async def test_a_message_posted_on_one_node_reaches_sockets_on_both(
    apis: tuple[Api, Api],
) -> None:
    """Ann posts on node a: Bob's socket on node b, Cy's on node a and Ann's own other
    session on node b each get the message once, with its author's name."""
    on_a, on_b = apis
    ann, bob, cy, chat = await three_in_a_group(on_a)
    async with (
        on_b.http.ws_connect(socket_url(on_b, bob)) as bob_on_b,
        on_a.http.ws_connect(socket_url(on_a, cy)) as cy_on_a,
        on_b.http.ws_connect(socket_url(on_b, ann)) as ann_on_b,
    ):
        for socket in (bob_on_b, cy_on_a, ann_on_b):
            await next_frame(socket, "hello")
        posted = await post(on_a, ann, chat, "Dinner was 84 EUR, I paid")
        frames = [
            await next_frame(socket, "chat_message") for socket in (bob_on_b, cy_on_a, ann_on_b)
        ]
        # the other way round: Bob posts on b, Cy hears it on a
        answer = await post(on_b, bob, chat, "Thanks, I'll settle up")
        heard = await next_frame(cy_on_a, "chat_message")
    for frame in frames:
        assert frame["id"] == posted["id"]
        assert frame["conversation_id"] == chat
        assert frame["text"] == "Dinner was 84 EUR, I paid"
        assert frame["author_name"] == "Ann"
    assert (heard["id"], heard["author_name"]) == (answer["id"], "Bob")


async def test_typing_crosses_nodes(apis: tuple[Api, Api]) -> None:
    """Bob typing on node b shows on Ann's socket on node a as `chat_typing` with his
    name, and leaves no message behind."""
    on_a, on_b = apis
    ann, bob, _cy, chat = await three_in_a_group(on_a)
    async with on_a.http.ws_connect(socket_url(on_a, ann)) as ann_on_a:
        await next_frame(ann_on_a, "hello")
        reply = await on_b.call("POST", f"/api/v1/conversations/{chat}/typing", bob)
        assert reply.status == 204, reply.body
        frame = await next_frame(ann_on_a, "chat_typing")
    assert frame == {
        "type": "chat_typing",
        "conversation_id": chat,
        "user_id": bob.id,
        "name": "Bob",
    }
    history = await on_a.ok("GET", f"/api/v1/conversations/{chat}/messages", ann)
    assert history["items"] == []


async def test_history_and_unread_agree_from_either_node(apis: tuple[Api, Api]) -> None:
    """Messages posted through both nodes make one history, the same from a and b, in the
    order posted; Bob's unread count is the same on both; a read marker set on b reaches
    his socket on a (`chat_read`) and is what a reads."""
    on_a, on_b = apis
    ann, bob, cy, chat = await three_in_a_group(on_a)
    sent = []
    for number, (api, author) in enumerate([(on_a, ann), (on_b, cy), (on_a, cy), (on_b, ann)]):
        sent.append((await post(api, author, chat, f"message {number}"))["id"])
    path = f"/api/v1/conversations/{chat}/messages"
    from_a = await on_a.ok("GET", path, bob)
    from_b = await on_b.ok("GET", path, bob)
    assert [m["id"] for m in from_a["items"]] == list(reversed(sent))
    assert from_a == from_b
    assert [m["seq"] for m in from_a["items"]] == [4, 3, 2, 1]

    unread_a = await on_a.ok("GET", "/api/v1/conversations/unread", bob)
    unread_b = await on_b.ok("GET", "/api/v1/conversations/unread", bob)
    assert unread_a == unread_b == {"total": 4, "conversations": 1}

    async with on_a.http.ws_connect(socket_url(on_a, bob)) as bob_on_a:
        await next_frame(bob_on_a, "hello")
        await on_b.ok(
            "POST", f"/api/v1/conversations/{chat}/read", bob, {"message_id": sent[1]}, 204
        )
        marker = await next_frame(bob_on_a, "chat_read")
    assert (marker["conversation_id"], marker["last_read_seq"], marker["unread"]) == (chat, 2, 2)
    [mine] = (await on_a.ok("GET", "/api/v1/conversations", bob))["items"]
    assert (mine["id"], mine["last_read_seq"], mine["unread"]) == (chat, 2, 2)
    assert (await on_a.ok("GET", "/api/v1/conversations/unread", bob))["total"] == 2
    assert (await on_b.ok("GET", f"/api/v1/conversations/{chat}", bob))["unread"] == 2
