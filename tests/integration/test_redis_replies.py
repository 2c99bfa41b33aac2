"""The Redis transport's reply reader, on one Redis and on the test Redis Cluster: a reply
that lands while no read is waiting (between two blocking reads) is still delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.redis import delete_prefix, redis_url, unique_prefix
from tests.support.redis_cluster import delete_cluster_prefix, redis_cluster_url
from tests.unit.conftest import wait_until
from transport import Codec, Envelope, Message
from transport.redis_streams import RedisStreamsTransport

pytestmark = pytest.mark.integration

NODE = "asker"


class Answer(Message, frozen=True):
    n: int


class GapClient:
    """The reader's client, with a reply added right after its first read came back empty
    and before the next read begins."""

    def __init__(self, transport: RedisStreamsTransport, inner: Any, reply: bytes) -> None:
        self.transport = transport
        self.inner = inner
        self.reply = reply
        self.reads = 0

    async def xread(self, streams: dict[Any, Any], **options: Any) -> Any:
        self.reads += 1
        result = await self.inner.xread(streams, **options)
        if self.reads == 1:
            stream = self.transport.keys.replies(NODE)
            await self.transport.client.xadd(stream, {"e": self.reply})
        return result

    async def aclose(self) -> None:
        if self.inner is not self.transport.client:  # the cluster's client is shared
            await self.inner.aclose()


@pytest.fixture(params=["redis", "redis-cluster"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[RedisStreamsTransport]:
    cluster = request.param == "redis-cluster"
    url = redis_cluster_url() if cluster else redis_url()
    prefix = unique_prefix()
    codec = Codec()
    codec.register(Answer)
    made = RedisStreamsTransport(
        node_id=NODE, url=url, codec=codec, prefix=prefix, block_ms=50, cluster=cluster
    )
    try:
        yield made
    finally:
        await made.close()
        if cluster:
            await delete_cluster_prefix(url, prefix)
        else:
            await delete_prefix(url, prefix)


async def test_a_reply_landing_between_two_reads_is_delivered(
    transport: RedisStreamsTransport,
) -> None:
    """The reader goes on from the last entry it saw, so a reply added while no read is
    waiting is read by the next one (a read from "$" would skip it)."""
    reply = Envelope(id="r1", target=NODE, shard=0, kind="reply", body=Answer(n=1))
    real = transport.dedicated_client
    clients: list[GapClient] = []

    def gap_client() -> Any:
        clients.append(GapClient(transport, real(), transport.codec.encode(reply)))
        return clients[-1]

    transport.dedicated_client = gap_client  # type: ignore[method-assign]
    delivered: list[Envelope] = []
    await transport.start(delivered.append)
    await wait_until(lambda: len(delivered) == 1)
    assert delivered[0].body == Answer(n=1)
    assert clients[0].reads >= 2
