"""Hot profiles across two nodes on Redis Streams: a user's id routes to one shard, held by
one node at a time; writes from either node reach it, and a shard that moves is loaded
afresh by its new owner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from actors.auth import messages
from actors.auth.actor import Auth
from actors.auth.messages import GetUser, Register, UpdateUser, UserView, auth_key
from actors.auth.passwords import TEST_PARAMETERS, Passwords
from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore, Outbox
from splitgo.db import apply_schema
from tests.integration.test_auth_actor import KEYS, PASSWORD
from tests.support.redis import delete_prefix, redis_url, unique_prefix
from tests.unit.conftest import wait_until
from transport import Codec
from transport.redis_streams import RedisStreamsTransport

pytestmark = pytest.mark.integration

SHARDS = 2


@dataclass
class Node:
    """One node hosting auth's shards it wins the lease of."""

    system: ActorSystem
    transport: RedisStreamsTransport
    auth: ActorRef

    def owned(self) -> set[int]:
        return set(self.transport.owned_shards("auth"))

    def kept(self, user_id: str) -> bool:
        """Whether one of this node's auth shards holds the user in memory."""
        for worker in self.system._groups["auth"].workers:
            actor: Any = worker._actor
            holder = actor.__dict__.get("_residents", {}).get("profiles") if actor else None
            if holder is not None and user_id in holder:
                return True
        return False


async def start_node(pool: asyncpg.Pool, node_id: str, prefix: str) -> Node:
    codec = Codec()
    codec.register_module(messages)
    transport = RedisStreamsTransport(
        node_id=node_id, url=redis_url(), codec=codec, prefix=prefix, lease_ttl=2.0, block_ms=200
    )
    system = ActorSystem(
        transport,
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=10.0,
    )
    await system.start()
    passwords = Passwords(TEST_PARAMETERS)
    auth = system.spawn(
        Auth,
        "auth",
        factory=lambda: Auth(pool, KEYS, passwords=passwords, notifier=None),
        shards=SHARDS,
        key=auth_key,
    )
    return Node(system, transport, auth)


async def stop_node(node: Node) -> None:
    await node.system.stop(2.0)
    await node.transport.close()


@pytest.fixture
async def nodes(pool: asyncpg.Pool) -> AsyncIterator[list[Node]]:
    """Two nodes sharing auth's two shards (one each, once the leases settle)."""
    await apply_schema(pool)
    prefix = unique_prefix()
    started: list[Node] = []
    try:
        for node_id in ("node-a", "node-b"):
            started.append(await start_node(pool, node_id, prefix))
        await wait_until(lambda: all(len(node.owned()) == 1 for node in started), timeout=20.0)
        yield started
    finally:
        for node in started:
            await stop_node(node)
        await delete_prefix(redis_url(), prefix)


async def test_a_write_from_either_node_reaches_the_owner(nodes: list[Node]) -> None:
    """Only the node owning the user's shard keeps them; an update sent from the other node
    goes to that shard, and reads from both nodes show it at once."""
    a, b = nodes
    user: UserView = await a.auth.ask(
        Register(email="carol@example.com", password=PASSWORD, name="Carol")
    )
    await a.auth.ask(GetUser(user_id=user.id))
    await b.auth.ask(GetUser(user_id=user.id))
    shard = a.system.shard_for("auth", user.id)
    owner, other = (a, b) if shard in a.owned() else (b, a)
    assert owner.kept(user.id)
    assert not other.kept(user.id)
    await other.auth.ask(UpdateUser(user_id=user.id, name="Caroline"))
    for node in (a, b):
        shown: UserView = await node.auth.ask(GetUser(user_id=user.id))
        assert shown.name == "Caroline"


async def test_a_shard_that_moves_is_loaded_afresh(nodes: list[Node], pool: asyncpg.Pool) -> None:
    """When the owner stops, the other node takes the shard over and reads the user from
    the table: nothing the old owner kept is answered."""
    a, b = nodes
    user: UserView = await a.auth.ask(
        Register(email="dave@example.com", password=PASSWORD, name="Dave")
    )
    await a.auth.ask(GetUser(user_id=user.id))
    shard = a.system.shard_for("auth", user.id)
    owner, other = (a, b) if shard in a.owned() else (b, a)
    await pool.execute("UPDATE users SET name = 'David' WHERE id = $1", user.id)
    await stop_node(owner)
    nodes.remove(owner)
    await wait_until(lambda: other.owned() == set(range(SHARDS)), timeout=20.0)
    shown: UserView = await asyncio.wait_for(other.auth.ask(GetUser(user_id=user.id)), 15.0)
    assert shown.name == "David"
