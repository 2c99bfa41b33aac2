"""Builds a node from settings: which actors it hosts, which transport, which edges.

With `splitgo/composition.py` (what a node is made of: the actor types, their factories and
who hears which event) this is where everything meets: it opens the database, makes the
transport and the actor system, spawns the actors with their dependencies, and serves HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import socket
from typing import TYPE_CHECKING, NamedTuple

import aiohttp
import structlog
from aiohttp import web

from actors.auth.messages import GetNames, ListRevokedSessions, ProfileChanged, SessionsRevoked
from actors.runtime import ActorSystem, PgDeadLetterStore
from actors.runtime.broadcast import spawn_relay
from actors.runtime.outbox import Outbox
from actors.runtime.resident import MemoryBudget
from splitgo import heap
from splitgo.composition import (
    ACTORS,
    SUBSCRIPTIONS,
    ActorSpec,
    Channels,
    NodeParts,
    bot_for,
    broadcast_events,
    build_broadcast,
    build_channels,
    email_channel,
    hosted_actors,
    jwt_keys_for,
    kept_secret,
    load_plugins,
    ops_token_for,
    public_jwks_for,
    public_url_for,
    register,
    spawn,
    subscribe_all,
)
from splitgo.config import ConfigError, Settings, refuse_unsafe
from splitgo.db import Database, open_database
from splitgo.event_loop import LoopChoice, running_loop_name
from splitgo.metrics import Metrics
from splitgo.stack import PartStack
from splitgo.tracing import Tracing
from splitgo.tracing import configure as configure_tracing
from splitgo.web import Services, create_app
from splitgo.web.hardening import Hardening
from splitgo.web.keys import Probe
from splitgo.web.names import NameBook
from splitgo.web.revocation import RevocationAwareVerifier, Revocations
from transport import Codec, MemoryTransport, Transport
from transport.broadcast import Broadcast
from transport.redis_streams import RedisStreamsTransport

if TYPE_CHECKING:
    from splitgo.bot.app import TelegramBot  # aiogram: imported only with a token

__all__ = [
    "ACTORS",
    "SUBSCRIPTIONS",
    "ActorSpec",
    "Channels",
    "Node",
    "NodeParts",
    "email_channel",
    "jwt_keys_for",
    "kept_secret",
    "load_plugins",
    "public_url_for",
    "register",
    "serve",
    "spawn",
    "subscribe_all",
]

log = structlog.get_logger("splitgo.node")


def build_transport(settings: Settings, codec: Codec) -> Transport:
    if settings.transport == "redis":
        return RedisStreamsTransport(
            node_id=settings.node_id,
            url=settings.redis_url,
            codec=codec,
            prefix=settings.redis_prefix,
            lease_ttl=settings.lease_ttl,
            cluster=settings.redis_cluster,
        )
    return MemoryTransport(node_id=settings.node_id, codec=codec if settings.codec_check else None)


class _Pools(NamedTuple):
    """What a node opens before its actors, for them to use."""

    database: Database
    transport: Transport
    broadcast: Broadcast  # to every node: the relay publishes, the edge listens
    channels: Channels
    http: aiohttp.ClientSession


class Node:
    """One running splitgo process: database, transport, actors and the HTTP edge.

    Each part is pushed on `stack` with its stop as it starts; `stop` unwinds the stack, so
    the parts stop in reverse order of start. That order is chosen: what the actors use
    (pools, channels, the HTTP client) starts before them and so stops after they drained;
    intake (the web runner, live sockets, the bot) starts after them and stops first.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = ""
        self.database: Database | None = None
        self.transport: Transport | None = None
        self.broadcast: Broadcast | None = None
        self.revocations: Revocations | None = None  # revoked sessions, refused at the edge
        self.system: ActorSystem | None = None
        self._runner: web.AppRunner | None = None
        self._listener: socket.socket | None = None
        self._http: aiohttp.ClientSession | None = None
        self.channels: Channels | None = None
        self.bot: TelegramBot | None = None
        self.tracing: Tracing | None = None  # span export (SPLITGO_OTEL_ENDPOINT)
        # GET /metrics: its own registry, fed by the pool, the actors, the HTTP edge
        self.metrics = Metrics()
        self.stack = PartStack(settings.node_id)

    async def start(self) -> None:
        """Start every part; on failure, `stop` stops what did start."""
        settings, stack = self.settings, self.stack
        refuse_unsafe(settings)
        self.tracing = tracing = configure_tracing(settings)
        if tracing is not None:
            stack.push("tracing", functools.partial(asyncio.to_thread, tracing.shutdown))
        load_plugins(settings)
        hosted = hosted_actors(settings)
        codec = Codec()
        for spec in ACTORS.values():
            codec.register_module(spec.messages)
        self.metrics.start()
        stack.push("metrics", self.metrics.stop)
        pools = await self._start_pools(codec)
        # bound before the actors start: the links they mail must name the real port
        listener = socket.create_server((settings.host, settings.port), reuse_port=False)
        stack.push("listener", listener.close)  # a no-op once the web runner closed it
        self.url = f"http://{settings.host}:{listener.getsockname()[1]}"
        self._listener = listener
        parts = await self._start_actors(hosted, codec, pools)
        names = self._names(parts.system, pools.broadcast)
        revocations = await self._start_revocations(
            parts.system, pools.broadcast, wait="auth" in hosted
        )
        await self._start_edges(
            parts, listener, revocations, names, revocations_probe="auth" in hosted
        )
        log.info(
            "node_started",
            node=settings.node_id,
            url=self.url,
            transport=settings.transport,
            database=parts.database.display,
            actors=hosted,
        )

    async def _start_pools(self, codec: Codec) -> _Pools:
        """The database, the transport, the channels and the HTTP client: what actors use."""
        settings, stack = self.settings, self.stack
        self.database = await open_database(
            settings.database_url,
            settings.data_dir,
            pool_size=settings.db_pool_size,
            query_logger=self.metrics.observe_query,
        )
        stack.push("database", self.database.close)
        self.transport = build_transport(settings, codec)
        stack.push("transport", self.transport.close)
        self.broadcast = build_broadcast(settings, codec)
        stack.push("broadcast", self.broadcast.close)
        self.channels = channels = build_channels(settings)
        stack.push("channels", channels.close)
        if channels.bus is not None:
            await channels.bus.start()
        self._http = http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        stack.push("http", http.close)
        return _Pools(self.database, self.transport, self.broadcast, channels, http)

    async def _start_actors(self, hosted: list[str], codec: Codec, pools: _Pools) -> NodeParts:
        """The actor system, every route and subscription, and the hosted actors."""
        settings = self.settings
        self.system = system = ActorSystem(
            pools.transport,
            codec=codec,
            dead_letters=PgDeadLetterStore(pools.database.pool),
            ask_timeout=settings.ask_timeout,
            outbox=Outbox(pools.database.pool),
            state_budget=MemoryBudget(settings.state_budget_mb * 1024 * 1024),
        )
        # pushed before it starts: a half-started system still stops what it started
        self.stack.push("actors", functools.partial(system.stop, settings.shutdown_timeout))
        await system.start()
        # the Redis transport leases shards: /metrics then shows who holds which, and takeovers
        self.metrics.watch(system, owned=getattr(pools.transport, "owned_shards", None))
        parts = NodeParts(
            settings=settings,
            system=system,
            database=pools.database,
            public_url=public_url_for(settings, self.url),
            jwt_keys=jwt_keys_for(settings),
            http=pools.http,
            email=email_channel(settings),
            channels=pools.channels,
        )
        for spec in ACTORS.values():
            system.route(spec.name, shards=spec.shards, key=spec.key)
        subscribe_all(system)
        # on every node, whatever it hosts: events for every node go out through it
        spawn_relay(system, pools.broadcast, broadcast_events())
        for name in hosted:
            spawn(system, ACTORS[name], parts, self.tracing)
        return parts

    async def _start_revocations(
        self, system: ActorSystem, broadcast: Broadcast, *, wait: bool
    ) -> Revocations:
        """The revoked sessions the edge refuses: heard on the broadcast, loaded from the
        record (through auth) at start and on every reconnection. With auth hosted here the
        start waits for the first load; elsewhere it goes on in the background (and bearer
        requests are refused with 503 until it lands)."""
        auth = system.ref("auth")

        async def ask(message: ListRevokedSessions) -> object:
            return await auth.ask(message)

        self.revocations = revocations = Revocations(ask)
        broadcast.listen(SessionsRevoked, revocations.heard)
        broadcast.on_connected(revocations.resync)
        self.stack.push("revocations", revocations.close)
        await broadcast.start()
        if wait and not await revocations.wait_loaded(self.settings.ask_timeout):
            log.warning("revocations_not_loaded_at_start", node=self.settings.node_id)
        return revocations

    def _names(self, system: ActorSystem, broadcast: Broadcast) -> NameBook:
        """The display names the edge puts beside ids: asked of auth, renames heard on the
        broadcast (listened to before it starts), all forgotten on every reconnection."""
        auth = system.ref("auth")

        async def ask(message: GetNames) -> object:
            return await auth.ask(message)

        book = NameBook(ask, reply_bytes=self.settings.reply_cache_mb * 1024 * 1024)
        broadcast.listen(ProfileChanged, book.heard)
        broadcast.on_connected(book.forget_all)
        return book

    async def _start_edges(
        self,
        parts: NodeParts,
        listener: socket.socket,
        revocations: Revocations,
        names: NameBook,
        *,
        revocations_probe: bool,
    ) -> None:
        """The HTTP edge on the bound listener, then the bot: intake, started last."""
        settings, system, channels = self.settings, parts.system, parts.channels
        probes: dict[str, Probe] = {"database": parts.database.ping}
        if revocations_probe:
            # auth is hosted here: not ready until the revoked sessions are known (bearer
            # requests get 503 till then); a node without auth does not wait on another's
            probes["revocations"] = revocations.ready
        if isinstance(self.transport, RedisStreamsTransport):
            probes["transport"] = self.transport.ping
        services = Services(
            system=system,
            node_id=settings.node_id,
            ops_token=ops_token_for(settings),
            probes=probes,
            verifier=RevocationAwareVerifier(public_jwks_for(parts.jwt_keys), revocations),
            public_url=parts.public_url,
            metrics=self.metrics,
            mfa_required_for_admins=settings.mfa_required_for_admins,
        )
        self.bot = bot_for(settings, system, parts.public_url)
        webhook = [self.bot.webhook_routes()] if self.bot and self.bot.mode == "webhook" else []
        self._runner = web.AppRunner(
            create_app(
                services,
                live=channels.live,
                extra=webhook,
                hardening=Hardening.from_settings(settings, parts.public_url),
                tracing=self.tracing,
                names=names,
            ),
            access_log=None,
            shutdown_timeout=settings.shutdown_timeout / 2,
        )
        self.stack.push("web", self._runner.cleanup)
        # open WebSockets would hold the web runner's cleanup for its whole timeout
        self.stack.push("live", channels.live.close)
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()
        if self.bot is not None:
            self.stack.push("bot", self.bot.stop)
            await self.bot.start()

    async def stop(self) -> None:
        """Stop intake first, then drain the actors, then close the pools: the stack unwound.

        A part whose stop fails is logged (`node_part_stop_failed`) and the others still stop.
        """
        await self.stack.close()
        log.info("node_stopped", node=self.settings.node_id, failed=self.stack.failed)


def startup_line(node: Node) -> str:
    """The one human line a started node prints: where it listens and what it runs on."""
    settings = node.settings
    database = node.database.display if node.database else "none"
    token = "" if settings.ops_token else f", ops token in {settings.data_dir / 'ops-token'}"
    return (
        f"splitgo node {settings.node_id} listening on {node.url} "
        f"(transport {settings.transport}, database {database}{token})"
    )


async def serve(settings: Settings, chosen: LoopChoice | None = None) -> int:
    """Run a node until SIGTERM or SIGINT; the process's exit code. `chosen`: the event
    loop the command picked (`splitgo.event_loop`), logged with the one that runs."""
    log.info(
        "event_loop_chosen",
        node=settings.node_id,
        loop=running_loop_name(),
        setting=settings.event_loop,
        reason=chosen.reason if chosen else "started by the caller",
        uvloop_version=chosen.version if chosen else None,
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    node = Node(settings)
    try:
        await node.start()
    except (Exception, asyncio.CancelledError) as error:
        log.error("node_start_failed", error=f"{type(error).__name__}: {error}")
        await asyncio.shield(node.stop())
        if isinstance(error, ConfigError | OSError):
            print(f"splitgo: {error}", flush=True)
            return 2 if isinstance(error, ConfigError) else 1
        raise
    heap.settle()  # after start-up: what exists now lives as long as the node
    print(startup_line(node), flush=True)
    await stopping.wait()
    log.info("node_stopping", node=settings.node_id)
    await node.stop()
    return 0
