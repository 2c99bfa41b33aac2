"""Events for every node: the `broadcast` actor, which hands what it is told to the node
broadcast (transport/broadcast.py), so the event reaches every node's listeners.

An actor type's messages are handled on one node, so `tx.publish` alone reaches one node.
An event every node must hear (a revoked session, which every HTTP edge refuses) is
subscribed to `BROADCAST` in the node's subscriptions instead: the outbox delivers it,
reliably, to the one `broadcast` shard, whose handler publishes it to every node. Every
node spawns that actor, whatever actor types it hosts; on Redis one of them holds its shard.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from actors.runtime.actor import Actor
from actors.runtime.system import ActorSystem
from transport import Message
from transport.broadcast import Broadcast

log = structlog.get_logger("actors.runtime.broadcast")

# the actor type to subscribe an event to so that every node hears it
BROADCAST = "broadcast"


class BroadcastRelay(Actor):
    """Publishes every event it is told on the node broadcast (a failed publish is retried
    and dead-lettered like any handler's failure)."""

    def __init__(self, broadcast: Broadcast, event_types: Iterable[type[Message]]) -> None:
        self._broadcast = broadcast
        self._event_types = tuple(event_types)

    def bind(self, *, name: str, shard: int, system: ActorSystem) -> None:
        super().bind(name=name, shard=shard, system=system)
        # the event types are the node's choice, not the class's: one handler for each
        self.dispatch = {event_type: self.relay for event_type in self._event_types}

    async def relay(self, event: Message) -> None:
        await self._broadcast.publish(event)
        log.debug("broadcast_relayed", message_type=type(event).__name__)


def spawn_relay(
    system: ActorSystem, broadcast: Broadcast, event_types: Iterable[type[Message]]
) -> None:
    """Host the `broadcast` actor here, relaying `event_types` (every node does this)."""
    types = tuple(event_types)
    system.codec.register(*types)
    system.spawn(
        BroadcastRelay,
        BROADCAST,
        factory=lambda: BroadcastRelay(broadcast, types),
        shards=1,
    )
