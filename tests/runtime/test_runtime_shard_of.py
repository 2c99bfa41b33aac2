"""ActorRef.shard_of names the shard a message goes to by its route's key, as sending does."""

from __future__ import annotations

import zlib

from actors.runtime import Actor, ActorSystem, Message, handles
from transport import Codec


class Keyed(Message, frozen=True):
    key: str


class Where(Message, frozen=True):
    shard: int


class Sink(Actor):
    """Answers which shard handled the message."""

    @handles(Keyed)
    async def keyed(self, message: Keyed) -> Where:
        return Where(shard=self.shard)


async def test_shard_of_is_where_the_message_is_handled(system: ActorSystem, codec: Codec) -> None:
    """For several keys, shard_of equals the CRC-32 routing and the shard that answers."""
    codec.register(Where)
    ref = system.spawn(Sink, "sink", shards=4, key=lambda m: getattr(m, "key", None))
    for key in ("a", "b", "c", "driver-7"):
        message = Keyed(key=key)
        assert ref.shard_of(message) == zlib.crc32(key.encode()) % 4
        assert await ref.ask(message) == Where(shard=ref.shard_of(message))
