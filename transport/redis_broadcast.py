"""The broadcast of a Redis cluster: one pub/sub channel (`<prefix>:broadcast`) that every
node subscribes to.

Pub/sub keeps nothing: a message published while a node's subscription is down never
reaches it. So every confirmation of the subscription — the first, and each one after
redis-py or this loop reconnected — runs the `on_connected` callbacks, where listeners
catch up from the record (the revocation set reloads from PostgreSQL). On a Redis Cluster
any node will do (PUBLISH reaches every node): the URL may name several, and a lost
connection is made again to whichever answers (redis_seeds.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from transport.broadcast import Connected, Listener, Listeners
from transport.codec import Codec, CodecError, Message
from transport.envelope import Envelope
from transport.ids import IdGenerator
from transport.redis_seeds import plain_client

log = structlog.get_logger("transport.redis_broadcast")

# after a failed subscription: at most this many seconds before the next try
_RETRY_MAX = 5.0


class RedisBroadcast:
    """Messages to every node through Redis pub/sub, encoded like envelopes."""

    def __init__(
        self,
        *,
        url: str,
        prefix: str,
        codec: Codec,
        node_id: str,
        health_check_interval: int = 15,
    ) -> None:
        # named, so an operator (or a test) can tell this node's subscription apart
        self.client_name = f"{prefix}:broadcast:{node_id}"
        # any node of a cluster will do (PUBLISH reaches them all): when the one this
        # is on goes, it reconnects to another named or learnt (redis_seeds.py)
        self._redis = plain_client(
            url,
            client_name=self.client_name,
            socket_connect_timeout=2.0,
            # a silently dead subscription is found by a PING at least this often
            health_check_interval=health_check_interval,
        )
        self.channel = f"{prefix}:broadcast"
        self._codec = codec
        self._node_id = node_id
        self._ids = IdGenerator()
        self._listeners = Listeners()
        self._task: asyncio.Task[None] | None = None
        self.subscriptions = 0  # how many times the subscription was (re)made

    def listen(self, message_type: type[Message], listener: Listener) -> None:
        self._listeners.listen(message_type, listener)

    def on_connected(self, callback: Connected) -> None:
        self._listeners.on_connected(callback)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._listen(), name=f"broadcast:{self._node_id}"
            )

    async def publish(self, message: Message) -> None:
        envelope = Envelope(
            id=self._ids.next(), target="broadcast", shard=0, kind="tell", body=message
        )
        await self._redis.publish(self.channel, self._codec.encode(envelope))

    async def _listen(self) -> None:
        failures = 0
        while True:
            pubsub = self._redis.pubsub()  # subscribe confirmations kept: they mark reconnects
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        failures = 0
                        self._handle(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away or restarting: subscribe again
                failures += 1
                delay = min(0.1 * 2 ** min(failures, 10), _RETRY_MAX)
                log.warning(
                    "broadcast_subscription_lost",
                    node=self._node_id,
                    error=f"{type(error).__name__}: {error}",
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            # the first subscription, or redis-py's own after a reconnect
            self.subscriptions += 1
            log.info("broadcast_subscribed", node=self._node_id, times=self.subscriptions)
            self._listeners.connected()
        elif kind == "message":
            try:
                envelope = self._codec.decode(message["data"])
            except CodecError as error:
                log.error("broadcast_undecodable", node=self._node_id, error=str(error))
                return
            self._listeners.deliver(envelope.body)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._redis.aclose()
