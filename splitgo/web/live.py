"""Live pushes to WebSocket clients: the sockets open on this node, and the bus that
reaches the sockets on every node.

`LiveHub` holds this node's sockets by user and writes a frame to each of a user's
sockets. On the memory transport a push goes straight to the hub. With Redis, a push is
published on one channel (`<prefix>:live`) and every node's `RedisLiveBus` hands what it
hears to its own hub, so the notifications actor may run on another node than the
user's socket. Pushes are best effort, like any live feed: the stored feed
(`GET /api/v1/notifications`) is the record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import msgspec
import redis.asyncio as aioredis
import structlog
from aiohttp import web

log = structlog.get_logger("splitgo.live")


class LiveHub:
    """The WebSockets open on this node, by user."""

    def __init__(self) -> None:
        self._sockets: defaultdict[str, set[web.WebSocketResponse]] = defaultdict(set)

    def add(self, user_id: str, socket: web.WebSocketResponse) -> None:
        self._sockets[user_id].add(socket)

    def remove(self, user_id: str, socket: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[user_id]

    @property
    def connected(self) -> int:
        return sum(len(sockets) for sockets in self._sockets.values())

    async def deliver(self, user_id: str, frame: bytes) -> int:
        """Write the frame to each of the user's sockets here; how many took it."""
        sockets = list(self._sockets.get(user_id, ()))
        if not sockets:
            return 0
        text = frame.decode()
        results = await asyncio.gather(
            *(socket.send_str(text) for socket in sockets), return_exceptions=True
        )
        delivered = 0
        for socket, result in zip(sockets, results, strict=True):
            if isinstance(result, BaseException):
                # a socket closing under us: the handler removes it when it ends
                log.debug("live_push_dropped", user_id=user_id, error=type(result).__name__)
            elif not socket.closed:
                delivered += 1
        return delivered

    async def close(self) -> None:
        for sockets in list(self._sockets.values()):
            for socket in list(sockets):
                await socket.close(code=1001, message=b"server shutdown")


class _Published(msgspec.Struct, frozen=True, array_like=True):
    user_id: str
    frame: bytes


class RedisLiveBus:
    """Pushes through Redis pub/sub, so they reach the user's sockets on any node."""

    def __init__(self, url: str, prefix: str, hub: LiveHub) -> None:
        self._redis = aioredis.Redis.from_url(url)
        self._channel = f"{prefix}:live"
        self._hub = hub
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel)
        self._task = asyncio.get_running_loop().create_task(self._listen(pubsub), name="live-bus")

    async def push(self, user_id: str, frame: bytes) -> None:
        await self._redis.publish(
            self._channel, msgspec.msgpack.encode(_Published(user_id=user_id, frame=frame))
        )

    async def _listen(self, pubsub: aioredis.client.PubSub) -> None:
        decoder = msgspec.msgpack.Decoder(_Published)
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    published = decoder.decode(message["data"])
                    await self._hub.deliver(published.user_id, published.frame)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
                raise
            except Exception as error:  # Redis restarting: keep listening
                log.warning("live_bus_error", error=repr(error))
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._redis.aclose()
