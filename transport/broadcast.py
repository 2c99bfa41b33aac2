"""A broadcast: one message to every node of the cluster, not to one actor shard.

An actor shard lives on one node, so an event told to an actor type is heard on one node.
What every node must learn (a revoked session, refused by every node's HTTP edge) goes
through a `Broadcast` instead: each node registers listeners by message type, and
`publish` hands a message to the listeners of every node. `LocalBroadcast` is one process
(the memory transport); `transport/redis_broadcast.py` reaches every node through Redis
pub/sub.

A broadcast is best effort (pub/sub drops what is published while a subscriber is
disconnected), so it also tells its `on_connected` callbacks each time its subscription is
(re)made: that is where a listener catches up on what it may have missed, from the record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

import structlog

from transport.codec import Message

log = structlog.get_logger("transport.broadcast")

Listener = Callable[[Message], None]
Connected = Callable[[], None]


class Broadcast(Protocol):
    """Messages to every node, and word of each (re)connection."""

    def listen(self, message_type: type[Message], listener: Listener) -> None:
        """Call `listener` (on this node) with every `message_type` published anywhere."""
        ...

    def on_connected(self, callback: Connected) -> None:
        """Call `callback` each time the subscription is (re)made: messages published while
        it was down are lost, and the callback is where to catch up."""
        ...

    async def start(self) -> None:
        """Subscribe; `on_connected` callbacks run once the subscription stands."""
        ...

    async def publish(self, message: Message) -> None:
        """Hand `message` to the listeners of every node (this one included)."""
        ...

    async def close(self) -> None: ...


class Listeners:
    """Who listens to what on this node; a listener that raises never stops the others."""

    def __init__(self) -> None:
        self._by_type: defaultdict[type[Message], list[Listener]] = defaultdict(list)
        self._connected: list[Connected] = []

    def listen(self, message_type: type[Message], listener: Listener) -> None:
        self._by_type[message_type].append(listener)

    def on_connected(self, callback: Connected) -> None:
        self._connected.append(callback)

    def deliver(self, message: Message) -> None:
        for listener in self._by_type.get(type(message), ()):
            try:
                listener(message)
            except Exception as error:
                log.error(
                    "broadcast_listener_failed",
                    message_type=type(message).__name__,
                    error=f"{type(error).__name__}: {error}",
                )

    def connected(self) -> None:
        for callback in self._connected:
            try:
                callback()
            except Exception as error:
                log.error("broadcast_connected_failed", error=f"{type(error).__name__}: {error}")


class LocalBroadcast:
    """The broadcast of a single process: publishing is delivering here."""

    def __init__(self) -> None:
        self._listeners = Listeners()

    def listen(self, message_type: type[Message], listener: Listener) -> None:
        self._listeners.listen(message_type, listener)

    def on_connected(self, callback: Connected) -> None:
        self._listeners.on_connected(callback)

    async def start(self) -> None:
        # nothing can be missed in one process; the callbacks still run once, to load
        self._listeners.connected()

    async def publish(self, message: Message) -> None:
        self._listeners.deliver(message)

    async def close(self) -> None:
        return None
