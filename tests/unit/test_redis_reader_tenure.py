"""A shard's stream read is handed to its mailbox only while the shard is held in the tenure
the read was made in: a read that outlived the shard's loss and taking back (a cluster
failing over) must not move the new tenure's backlog read past the entries the takeover
claimed (no server needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from transport import Codec, Envelope, Message
from transport.redis_shards import RedisMailbox, ShardHost
from transport.redis_streams import RedisStreamsTransport


class Counted(Message, frozen=True):
    """A message to put in a stream entry."""

    n: int


@pytest.fixture
async def transport() -> AsyncIterator[RedisStreamsTransport]:
    """A transport never started (its client connects only when used)."""
    codec = Codec()
    codec.register(Counted)
    created = RedisStreamsTransport(node_id="n", url="redis://127.0.0.1:1/0", codec=codec)
    yield created
    await created.client.aclose()


def held_shard(transport: RedisStreamsTransport, tenure: int) -> RedisMailbox:
    """Shard 0 of actor `a`, owned in `tenure`, its own backlog still to be read."""
    host = ShardHost(transport, "a")
    mailbox = host.add(0, capacity=10)
    mailbox.owned = True
    mailbox.tenure = tenure
    mailbox.read_from = "0"
    return mailbox


def entry(
    transport: RedisStreamsTransport, entry_id: bytes, n: int
) -> tuple[bytes, dict[bytes, bytes]]:
    """A stream entry as XREADGROUP answers it, holding `Counted` n."""
    envelope = Envelope(id=f"m{n}", target="a", shard=0, kind="tell", body=Counted(n=n))
    return entry_id, {b"e": transport.codec.encode(envelope)}


async def test_a_read_from_an_earlier_tenure_is_left_pending(
    transport: RedisStreamsTransport,
) -> None:
    """Entries a read took before the shard was lost and taken back are not delivered, and
    the backlog read still starts from the beginning of this consumer's pending entries."""
    mailbox = held_shard(transport, tenure=2)
    reply = [(mailbox.stream.encode(), [entry(transport, b"9-0", 36)])]

    mailbox.host._dispatch(reply, {mailbox.stream: 1})

    assert mailbox.room() == 10
    assert mailbox.read_from == "0"


async def test_a_read_from_the_current_tenure_is_delivered(
    transport: RedisStreamsTransport,
) -> None:
    """Entries of a read made in the tenure that still holds the shard reach the mailbox,
    and the backlog read goes on after the last of them."""
    mailbox = held_shard(transport, tenure=2)
    reply = [
        (mailbox.stream.encode(), [entry(transport, b"3-0", 31), entry(transport, b"4-0", 32)])
    ]

    mailbox.host._dispatch(reply, {mailbox.stream: 2})

    assert mailbox.room() == 8
    assert mailbox.read_from == "4-0"


async def test_an_empty_read_from_an_earlier_tenure_does_not_end_the_backlog(
    transport: RedisStreamsTransport,
) -> None:
    """An empty backlog answer from before the shard was taken back does not switch the
    new tenure to new entries, which would leave the claimed backlog unread."""
    mailbox = held_shard(transport, tenure=2)
    mailbox.attempts = {b"3-0": 1}

    mailbox.host._dispatch([(mailbox.stream.encode(), [])], {mailbox.stream: 1})

    assert (mailbox.read_from, mailbox.attempts) == ("0", {b"3-0": 1})
