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
from collections.abc import Iterable

import msgspec
import redis.asyncio as aioredis
import structlog
from aiohttp import web

from transport.redis_seeds import plain_client

log = structlog.get_logger("splitgo.live")


SOCKET_BACKLOG = 256  # frames a socket may have waiting; a reader this far behind is dropped


class _Outlet:
    """One socket's frames in order, written by its own task, so a push never waits on a
    slow reader: a reader SOCKET_BACKLOG frames behind is closed (it reconnects and reads
    the stored history)."""

    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket
        self.frames: asyncio.Queue[str] = asyncio.Queue(SOCKET_BACKLOG)
        self.task = asyncio.get_running_loop().create_task(self._write(), name="live-socket")

    async def _write(self) -> None:
        while True:
            text = await self.frames.get()
            try:
                await self.socket.send_str(text)
            except (ConnectionError, RuntimeError) as error:
                # a socket closing under us: the handler removes it when it ends
                log.debug("live_push_dropped", error=type(error).__name__)
                return

    async def _close_slow(self) -> None:
        await self.socket.close(code=1013, message=b"too slow")

    def offer(self, text: str) -> bool:
        if self.socket.closed or self.task.done():
            return False
        try:
            self.frames.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("live_socket_too_slow", backlog=SOCKET_BACKLOG)
            self.task.cancel()
            self.task = asyncio.get_running_loop().create_task(
                self._close_slow(), name="live-socket-close"
            )
            return False
        return True


class LiveHub:
    """The WebSockets open on this node, by user."""

    def __init__(self) -> None:
        self._sockets: defaultdict[str, dict[web.WebSocketResponse, _Outlet]] = defaultdict(dict)

    def add(self, user_id: str, socket: web.WebSocketResponse) -> None:
        self._sockets[user_id][socket] = _Outlet(socket)

    def remove(self, user_id: str, socket: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            outlet = sockets.pop(socket, None)
            if outlet is not None:
                outlet.task.cancel()
            if not sockets:
                del self._sockets[user_id]

    @property
    def connected(self) -> int:
        return sum(len(sockets) for sockets in self._sockets.values())

    def is_connected(self, user_id: str) -> bool:
        return user_id in self._sockets

    async def deliver(self, user_id: str, frame: bytes) -> int:
        """Queue the frame on each of the user's sockets here; how many took it."""
        return await self.deliver_many((user_id,), frame)

    async def deliver_many(self, user_ids: Iterable[str], frame: bytes) -> int:
        """Queue the frame on every socket here of each of `user_ids`; how many took it."""
        text = frame.decode()
        delivered = 0
        for user_id in user_ids:
            for outlet in list(self._sockets.get(user_id, {}).values()):
                delivered += outlet.offer(text)
        return delivered

    async def close(self) -> None:
        for sockets in list(self._sockets.values()):
            for socket in list(sockets):
                await socket.close(code=1001, message=b"server shutdown")


class _Published(msgspec.Struct, frozen=True, array_like=True):
    user_ids: list[str]
    frame: bytes


class RedisLiveBus:
    """Pushes through Redis pub/sub, so they reach the user's sockets on any node."""

    def __init__(self, url: str, prefix: str, hub: LiveHub) -> None:
        # any node of a cluster will do, and another when it goes (transport/redis_seeds.py)
        self._redis = plain_client(url)
        self._channel = f"{prefix}:live"
        self._hub = hub
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel)
        self._task = asyncio.get_running_loop().create_task(self._listen(pubsub), name="live-bus")

    async def push(self, user_id: str, frame: bytes) -> None:
        await self.push_many([user_id], frame)

    async def push_many(self, user_ids: list[str], frame: bytes) -> None:
        """One publish for every user (each node hands it to the sockets it holds)."""
        await self._redis.publish(
            self._channel, msgspec.msgpack.encode(_Published(user_ids=user_ids, frame=frame))
        )

    async def _listen(self, pubsub: aioredis.client.PubSub) -> None:
        decoder = msgspec.msgpack.Decoder(_Published)
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    published = decoder.decode(message["data"])
                    await self._hub.deliver_many(published.user_ids, published.frame)
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
