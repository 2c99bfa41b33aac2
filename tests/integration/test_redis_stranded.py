"""Entries another node read from a shard after it lost the lease (without noticing yet:
Redis away, a failover, a stalled event loop) stay pending under its name; the shard's
owner claims them once idle a lease long and handles them, on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from actors.runtime import Actor, ActorSystem, MemoryDeadLetterStore, Message, handles
from tests.runtime.conftest import ready, wait_until
from tests.support.redis import delete_prefix, redis_url, unique_prefix
from transport import Codec, Envelope
from transport.redis_streams import RedisStreamsTransport

pytestmark = pytest.mark.integration

ACTOR = "stranded"


class StrandedNote(Message, frozen=True):
    n: int


class Recorder(Actor):
    """Records every note it handles."""

    def __init__(self, handled: list[int]) -> None:
        self.handled = handled

    @handles(StrandedNote)
    async def note(self, message: StrandedNote) -> None:
        self.handled.append(message.n)


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    chosen = unique_prefix()
    yield chosen
    await delete_prefix(redis_url(), chosen)


async def test_entries_left_pending_by_another_node_are_claimed_and_handled(prefix: str) -> None:
    """Three entries read by a node that no longer owns the shard are handled by the owner
    once they have been idle a lease long, each once."""
    codec = Codec()
    codec.register(StrandedNote)
    transport = RedisStreamsTransport(
        node_id="owner", url=redis_url(), codec=codec, prefix=prefix, lease_ttl=0.6, block_ms=100
    )
    system = ActorSystem(transport, codec=codec, dead_letters=MemoryDeadLetterStore())
    handled: list[int] = []
    client = redis.Redis.from_url(redis_url())
    await system.start()
    try:
        system.spawn(Recorder, ACTOR, factory=lambda: Recorder(handled), shards=1)
        await ready(system)
        # what a node that lost the lease did next: it read three entries (now pending
        # under its name) and never handled them; sent and read in one transaction, so the
        # owner's reader cannot take them first
        stream = transport.keys.stream(ACTOR, 0)
        async with client.pipeline(transaction=True) as pipe:
            for n in range(3):
                note = StrandedNote(n=n)
                envelope = Envelope(id=f"e{n}", target=ACTOR, shard=0, kind="tell", body=note)
                pipe.xadd(stream, {"e": codec.encode(envelope)})
            pipe.incrby(transport.keys.counter(stream), 3)
            pipe.xreadgroup(ACTOR, "gone-node", {stream: ">"}, count=3)
            *_, read = await pipe.execute()
        assert len(read[0][1]) == 3

        await wait_until(lambda: sorted(handled) == [0, 1, 2])
        async with asyncio.timeout(10.0):  # their acks follow the handling
            while (await client.xpending(stream, ACTOR))["pending"]:
                await asyncio.sleep(0.02)
        assert handled == [0, 1, 2]
    finally:
        await system.stop(timeout=1.0)
        await transport.close()
        await client.aclose()
