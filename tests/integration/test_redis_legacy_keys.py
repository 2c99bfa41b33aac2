"""Upgrading from the keys before the hash tags, on a real Redis: what an older version left
in a shard's old stream (entries pending or unread) and in the old timers set is carried
into the new keys by the node that takes the shard, once, in order, with the envelope ids
the inbox deduplicates by (transport/redis_legacy.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis

from actors.runtime import Actor, ActorSystem, MemoryDeadLetterStore, Message, Outbox, handles
from tests.runtime.conftest import left_in_stream, ready, wait_until
from tests.support.redis import delete_prefix, redis_url, unique_prefix
from transport import Codec, Envelope
from transport.redis_legacy import CarriedOver, LegacyKeys
from transport.redis_streams import RedisStreamsTransport

pytestmark = pytest.mark.integration

ACTOR = "notes"


class LegacyNote(Message, frozen=True):
    n: int


class Notes(Actor):
    """Writes one row per message, deduplicated by the inbox; records every handling."""

    def __init__(self, handled: list[int]) -> None:
        self.handled = handled

    @handles(LegacyNote)
    async def note(self, message: LegacyNote) -> None:
        self.handled.append(message.n)
        async with self.transaction() as tx:
            if tx.duplicate:
                return
            await tx.execute("INSERT INTO legacy_notes (n) VALUES ($1)", message.n)


def _codec() -> Codec:
    codec = Codec()
    codec.register(LegacyNote)
    return codec


def _envelope(n: int) -> Envelope:
    return Envelope(id=f"old-{n}", target=ACTOR, shard=0, kind="tell", body=LegacyNote(n=n))


async def _seed_old_version(client: redis.Redis, prefix: str, timer_in: float) -> None:
    """What a node of the older version left: five messages in shard 0's old stream, the
    first handled and acked, the second handled (its inbox row committed) but never acked,
    three never read; and one timer for the shard in the old timers set."""
    codec = _codec()
    old = LegacyKeys(prefix)
    stream = old.stream(ACTOR, 0)
    for n in range(5):
        await client.xadd(stream, {"e": codec.encode(_envelope(n))})
    await client.xgroup_create(stream, ACTOR, id="0")
    read: Any = await client.xreadgroup(ACTOR, "old-node", {stream: ">"}, count=2)
    first_id = read[0][1][0][0]
    await client.xack(stream, ACTOR, first_id)
    await client.set(old.counter(ACTOR, 0), 4)
    await client.set(old.capacity(ACTOR), 10_000)
    timer = Envelope(id="old-timer", target=ACTOR, shard=0, kind="tell", body=LegacyNote(n=100))
    member = stream.encode() + b"\n" + codec.encode(timer)
    await client.zadd(old.timers, {member: int((time.time() + timer_in) * 1000)})


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the test Redis, deleted afterwards."""
    chosen = unique_prefix()
    yield chosen
    await delete_prefix(redis_url(), chosen)


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    created = redis.Redis.from_url(redis_url())
    yield created
    await created.aclose()


@pytest.fixture
async def transport(prefix: str) -> AsyncIterator[RedisStreamsTransport]:
    """A transport, not started: its carrier is called by hand."""
    created = RedisStreamsTransport(
        node_id="new-node", url=redis_url(), codec=_codec(), prefix=prefix
    )
    yield created
    await created.close()


async def _new_stream_ids(transport: RedisStreamsTransport) -> list[str]:
    entries: Any = await transport.client.xrange(transport.keys.stream(ACTOR, 0))
    return [transport.codec.decode(fields[b"e"]).id for _, fields in entries]


async def test_pending_and_unread_entries_move_in_order_before_new_ones_once(
    transport: RedisStreamsTransport, client: redis.Redis, prefix: str
) -> None:
    """The old stream's pending and unread entries land in the new stream in their order,
    ids unchanged, ahead of an entry sent there before nobody read it; the timer moves to
    the shard's set; the old keys are gone, and a second carry-over moves nothing."""
    await _seed_old_version(client, prefix, timer_in=60.0)
    new_stream = transport.keys.stream(ACTOR, 0)
    await client.xadd(new_stream, {"e": transport.codec.encode(_envelope(50))})
    await client.set(transport.keys.counter(new_stream), 1)

    carried = await transport.carrier.carry_over(ACTOR, 0)

    assert carried == CarriedOver(pending=1, unread=3, behind=1, timers=1)
    assert await _new_stream_ids(transport) == ["old-1", "old-2", "old-3", "old-4", "old-50"]
    assert int(await client.get(transport.keys.counter(new_stream)) or 0) == 5
    timers: Any = await client.zrange(transport.keys.timers(ACTOR, 0), 0, -1)
    assert [transport.codec.decode(member).id for member in timers] == ["old-timer"]
    old = LegacyKeys(prefix)
    gone = [old.stream(ACTOR, 0), old.counter(ACTOR, 0), old.capacity(ACTOR), old.timers]
    assert await client.exists(*gone) == 0

    assert await transport.carrier.carry_over(ACTOR, 0) == CarriedOver()
    assert await _new_stream_ids(transport) == ["old-1", "old-2", "old-3", "old-4", "old-50"]


async def test_a_shard_still_leased_by_an_old_node_waits(
    transport: RedisStreamsTransport, client: redis.Redis, prefix: str
) -> None:
    """While a node of the old version holds the shard's old lease its stream stays where
    it is (that node may still be handling it); once the lease is gone it moves."""
    await _seed_old_version(client, prefix, timer_in=60.0)
    old = LegacyKeys(prefix)
    await client.set(old.lease(ACTOR, 0), "old-node", px=60_000)

    assert await transport.carrier.carry_over(ACTOR, 0) is None
    assert await client.exists(old.stream(ACTOR, 0)) == 1

    await client.delete(old.lease(ACTOR, 0))
    carried = await transport.carrier.carry_over(ACTOR, 0)
    assert carried is not None
    assert (carried.pending, carried.unread) == (1, 3)


@pytest.fixture
async def notes_db(pool: asyncpg.Pool) -> asyncpg.Pool:
    """The test database with a table of handled notes and the inbox rows the old version
    wrote for the two messages it handled (`old-0`, acked; `old-1`, never acked)."""
    await pool.execute("CREATE TABLE legacy_notes (n integer PRIMARY KEY)")
    for n in (0, 1):
        await pool.execute("INSERT INTO legacy_notes (n) VALUES ($1)", n)
        await pool.execute(
            "INSERT INTO runtime_inbox (actor, message_id) VALUES ($1, $2)", ACTOR, f"old-{n}"
        )
    return pool


async def _node(pool: asyncpg.Pool, prefix: str, node_id: str, handled: list[int]) -> ActorSystem:
    codec = _codec()
    transport = RedisStreamsTransport(
        node_id=node_id, url=redis_url(), codec=codec, prefix=prefix, lease_ttl=2.0, block_ms=200
    )
    system = ActorSystem(
        transport,
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, relay=False),
    )
    await system.start()
    system.spawn(Notes, ACTOR, factory=lambda: Notes(handled), shards=1)
    return system


async def _until_all_acked(system: ActorSystem) -> None:
    """Poll until the shard's stream holds nothing pending or unread (the last handler's
    ack follows its commit)."""
    async with asyncio.timeout(10.0):
        while await left_in_stream(system, ACTOR):
            await asyncio.sleep(0.02)


async def _stop(system: ActorSystem) -> None:
    await system.stop(timeout=1.0)
    transport = system.transport
    assert isinstance(transport, RedisStreamsTransport)
    await transport.close()


async def test_a_node_of_the_new_version_handles_what_the_old_one_left_exactly_once(
    notes_db: asyncpg.Pool, client: redis.Redis, prefix: str
) -> None:
    """A node taking the shard handles the unread messages and the timer once each, the one
    handled but never acked is redelivered and dropped by the inbox, the acked one never
    comes back; a node started after it finds nothing left to carry over."""
    await _seed_old_version(client, prefix, timer_in=0.3)
    handled: list[int] = []
    system = await _node(notes_db, prefix, "new-node-1", handled)
    try:
        await wait_until(lambda: sorted(handled) == [1, 2, 3, 4, 100])
        await _until_all_acked(system)
    finally:
        await _stop(system)
    rows = await notes_db.fetch("SELECT n FROM legacy_notes ORDER BY n")
    assert [row["n"] for row in rows] == [0, 1, 2, 3, 4, 100]
    assert handled[:4] == [1, 2, 3, 4]  # in the old stream's order

    again: list[int] = []
    system = await _node(notes_db, prefix, "new-node-2", again)
    try:
        await ready(system)
        transport = system.transport
        assert isinstance(transport, RedisStreamsTransport)
        assert await transport.carrier.carry_over(ACTOR, 0) == CarriedOver()
        assert await left_in_stream(system, ACTOR) == []
    finally:
        await _stop(system)
    assert again == []
    assert await notes_db.fetchval("SELECT count(*) FROM legacy_notes") == 6


class Recorder(Actor):
    """Records every note it handles."""

    def __init__(self, handled: list[int]) -> None:
        self.handled = handled

    @handles(LegacyNote)
    async def note(self, message: LegacyNote) -> None:
        self.handled.append(message.n)


async def test_a_node_carries_over_a_shard_once_the_old_nodes_lease_expired(
    client: redis.Redis, prefix: str
) -> None:
    """A node that took the shard while an old node's lease on it still ran carries the
    shard's old stream over at a later lease round, once that lease expired."""
    await _seed_old_version(client, prefix, timer_in=0.0)
    await client.set(LegacyKeys(prefix).lease(ACTOR, 0), "old-node", px=800)
    codec = _codec()
    transport = RedisStreamsTransport(
        node_id="new-node", url=redis_url(), codec=codec, prefix=prefix, lease_ttl=2.0, block_ms=200
    )
    system = ActorSystem(transport, codec=codec, dead_letters=MemoryDeadLetterStore())
    handled: list[int] = []
    await system.start()
    try:
        system.spawn(Recorder, ACTOR, factory=lambda: Recorder(handled), shards=1)
        await wait_until(lambda: sorted(handled) == [1, 2, 3, 4, 100])
        await _until_all_acked(system)
    finally:
        await _stop(system)
    assert handled[handled.index(1) :][:4] == [1, 2, 3, 4]
