"""The Redis Streams transport's flush keeps what a node could not answer: acks and
commands that failed on a closed connection or a cluster mid-failover are queued again,
in order, and only errors that would repeat are dropped (no server needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    ResponseError,
    SlotNotCoveredError,
)

from transport import Codec
from transport.redis_streams import RedisStreamsTransport


@pytest.fixture
async def transport() -> AsyncIterator[RedisStreamsTransport]:
    """A transport never started (its client connects only when used)."""
    created = RedisStreamsTransport(node_id="n", url="redis://127.0.0.1:1/0", codec=Codec())
    yield created
    await created.client.aclose()


async def test_transient_failures_are_queued_again_and_others_dropped(
    transport: RedisStreamsTransport,
) -> None:
    """An ack and a timer whose node closed the connection come back for the next flush
    (before what was queued since), a command refused for good does not."""
    acks = {("s1", "g"): [b"1-0", b"2-0"], ("s2", "g"): [b"3-0"]}
    other: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("zadd", ("timers", {b"t": 1}), {}),
        ("set", ("capacity", 5), {}),
        ("xadd", ("reply", {"e": b"r"}), {}),
    ]
    transport._other = [("expire", ("later", 1), {})]
    results = [
        ConnectionError("Connection closed by server."),
        1,
        ClusterDownError("The cluster is down"),
        True,
        ResponseError("WRONGTYPE"),
    ]

    error = transport._retry_transient(acks, other, results)

    assert isinstance(error, ConnectionError)
    assert transport._acks == {("s1", "g"): [b"1-0", b"2-0"]}
    assert [command for command, _, _ in transport._other] == ["zadd", "expire"]


async def test_nothing_is_queued_again_when_every_command_landed(
    transport: RedisStreamsTransport,
) -> None:
    """A flush whose commands all succeeded leaves nothing to retry."""
    error = transport._retry_transient({("s", "g"): [b"1-0"]}, [("set", ("k", 1), {})], [1, True])

    assert error is None
    assert (transport._acks, transport._other) == ({}, [])


async def test_a_cluster_error_that_is_no_redis_error_does_not_end_the_flush_loop(
    transport: RedisStreamsTransport,
) -> None:
    """A slot without a master mid-failover (redis-py's SlotNotCoveredError, which is no
    RedisError) is waited out like Redis being away: the loop tries again and sends."""
    transport._other = [("set", ("k", 1), {})]
    attempts: list[int] = []

    async def flush_once() -> set[str]:
        attempts.append(1)
        if len(attempts) == 1:
            raise SlotNotCoveredError("slot 42 is not covered by the cluster")
        transport._other = []
        return set()

    transport._flush_once = flush_once  # type: ignore[method-assign]
    await transport._flush_loop()

    assert len(attempts) == 2
    assert transport._other == []
