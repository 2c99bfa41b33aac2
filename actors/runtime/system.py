"""The ActorSystem: spawns sharded actor groups, routes tell/ask by key, supervises."""

from __future__ import annotations

import asyncio
import time
import weakref
import zlib
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from actors.runtime.actor import Actor
from actors.runtime.asks import PendingAsks
from actors.runtime.context import current_trace_id, trace_id_var
from actors.runtime.dead_letters import (
    DeadLetter,
    DeadLetterAlreadyReplayed,
    DeadLetterNotFound,
    DeadLetterNotReplayable,
    DeadLetterStore,
)
from actors.runtime.errors import (
    REPLY_LATER,
    Failure,
    SystemStopping,
    UnknownActor,
)
from actors.runtime.group import DEFAULT_GROUP_POLICY, ActorGroup
from actors.runtime.outbox import Outbox
from actors.runtime.redaction import without_secrets
from actors.runtime.resident import MemoryBudget
from actors.runtime.shard import ShardWorker, describe
from actors.runtime.stats import LiveShard, ShardStatus
from actors.runtime.supervision import RestartPolicy
from transport import Codec, CodecError, Envelope, IdGenerator, Message, Timer, Transport

log = structlog.get_logger("actors.runtime")

KeyFunction = Callable[[Any], Hashable | None]


class Route:
    """Where messages for one actor type go: how many shards, and which shard for a key.

    A key is hashed with CRC-32 (not Python's salted hash) so every node picks the same
    shard for it; messages without a key are spread round-robin and keep no order.
    """

    __slots__ = ("_next", "key", "name", "shards")

    def __init__(self, name: str, shards: int, key: KeyFunction | None) -> None:
        if shards < 1:
            raise ValueError(f"{name}: shards must be at least 1")
        self.name = name
        self.shards = shards
        self.key = key
        self._next = -1

    def shard_for(self, message: object, key: object = None) -> int:
        if self.shards == 1:
            return 0
        if key is None and self.key is not None:
            key = self.key(message)
        if key is None:
            self._next = (self._next + 1) % self.shards
            return self._next
        return zlib.crc32(str(key).encode()) % self.shards


class ActorRef:
    """A handle on an actor type: `tell` and `ask`, routed to the shard of the message's key."""

    __slots__ = ("_next_id", "_route", "_system", "_try_send", "name")

    def __init__(self, system: ActorSystem, route: Route) -> None:
        self._system = system
        self._route = route
        self.name = route.name
        # bound once: tell is the hottest path there is
        self._next_id = system.ids.next
        self._try_send = system.transport.try_send

    async def tell(
        self, message: Message, *, key: object = None, sender: str | None = None
    ) -> None:
        """Enqueue and return; waits only while the target mailbox is full."""
        system = self._system
        if system.closed:
            raise SystemStopping("the node is stopping")
        route = self._route
        message_id = self._next_id()
        envelope = Envelope(
            id=message_id,
            target=self.name,
            shard=0 if route.shards == 1 else route.shard_for(message, key),
            kind="tell",
            body=message,
            sender=sender,
            trace_id=trace_id_var.get() or message_id,
        )
        if not self._try_send(envelope):
            await system.transport.send(envelope)

    async def ask(
        self,
        message: Message,
        *,
        key: object = None,
        timeout: float | None = None,
        sender: str | None = None,
    ) -> Any:
        """Send and await the reply; re-raises the handler's DomainError; AskTimeout on time-out."""
        system = self._system
        if system.closed:
            raise SystemStopping("the node is stopping")
        timeout = system.ask_timeout if timeout is None else timeout
        message_id = system.ids.next()
        envelope = Envelope(
            id=message_id,
            target=self.name,
            shard=self._route.shard_for(message, key),
            kind="ask",
            body=message,
            sender=sender,
            reply_to=system.node_id,
            trace_id=current_trace_id() or message_id,
            deadline=time.time() + timeout,
        )
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Envelope] = loop.create_future()
        pending = system.pending_asks
        pending.add(
            message_id, waiter, loop.time() + timeout, self.name, type(message).__name__, timeout
        )
        try:
            if not system.transport.try_send(envelope):
                await _send_before(system.transport, envelope, waiter)
            reply = await waiter
        finally:
            pending.discard(message_id)
        body = reply.body
        if type(body) is Failure:
            raise body.to_error()
        return body

    def shard_of(self, message: Message) -> int:
        """The shard `message` goes to by its route's key (an edge gathering messages of
        one shard into one)."""
        return self._route.shard_for(message)


async def _send_before(
    transport: Transport, envelope: Envelope, waiter: asyncio.Future[Envelope]
) -> None:
    """Wait for room in a full mailbox, but no longer than the ask's own deadline."""
    send = asyncio.ensure_future(transport.send(envelope))
    await asyncio.wait((send, waiter), return_when=asyncio.FIRST_COMPLETED)
    if send.done():
        send.result()
        return
    send.cancel()
    await asyncio.gather(send, return_exceptions=True)


class ActorSystem:
    """Hosts actor groups on this node and routes messages to them through a transport."""

    def __init__(
        self,
        transport: Transport,
        *,
        codec: Codec,
        dead_letters: DeadLetterStore,
        ask_timeout: float = 5.0,
        ids: IdGenerator | None = None,
        outbox: Outbox | None = None,
        state_budget: MemoryBudget | None = None,
    ) -> None:
        self.transport = transport
        self.codec = codec
        self.dead_letters = dead_letters
        self.ask_timeout = ask_timeout
        self.ids = ids or IdGenerator()
        # reliable hand-off (Actor.transaction); None on a node without a database
        self.outbox = outbox
        # what the shards' hot state (Actor.resident) may hold on this node, together
        self.state_budget = state_budget or MemoryBudget()
        self.node_id = transport.node_id
        self.pending_asks = PendingAsks()
        self.closed = False
        self._started = False
        self._routes: dict[str, Route] = {}
        # event type -> the actor types that hear it (declared where the node is composed)
        self._subscribers: dict[type[Message], tuple[str, ...]] = {}
        self._groups: dict[str, ActorGroup] = {}
        self._timers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._reply_tasks: set[asyncio.Task[None]] = set()
        codec.register(Failure)

    async def start(self) -> None:
        await self.transport.start(self._on_reply)
        if self.outbox is not None:
            self.outbox.start(self)
        self._started = True

    def subscribe(self, event_type: type[Message], *actors: str) -> None:
        """Let `actors` hear every `event_type` an actor publishes (`tx.publish`) from now on."""
        known = self._subscribers.get(event_type, ())
        self._subscribers[event_type] = known + tuple(a for a in actors if a not in known)

    def subscribers(self, event_type: type[Message]) -> tuple[str, ...]:
        """The actor types that hear `event_type`, in the order they subscribed."""
        return self._subscribers.get(event_type, ())

    def route(self, name: str, *, shards: int = 1, key: KeyFunction | None = None) -> Route:
        """Declare an actor type hosted on some node, so refs here can reach it."""
        route = Route(name, shards, key)
        self._routes[name] = route
        return route

    def spawn(
        self,
        actor_type: type[Actor],
        name: str,
        *,
        factory: Callable[[], Actor] | None = None,
        shards: int = 1,
        key: KeyFunction | None = None,
        mailbox_size: int = 1024,
        policy: RestartPolicy | None = None,
        group_policy: RestartPolicy | None = None,
        max_attempts: int = 3,
    ) -> ActorRef:
        """Host `shards` shards of `actor_type` here; `factory` builds a fresh instance."""
        if name in self._groups:
            raise ValueError(f"actor {name!r} is already spawned")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.codec.register(*actor_type.message_types())
        route = self.route(name, shards=shards, key=key)
        group = ActorGroup(
            self,
            route,
            factory or actor_type,
            policy=policy or RestartPolicy(),
            group_policy=group_policy or DEFAULT_GROUP_POLICY,
            max_attempts=max_attempts,
            mailbox_size=mailbox_size,
        )
        self._groups[name] = group
        group.start()
        return ActorRef(self, route)

    def shard_for(self, name: str, key: object) -> int:
        """The shard of actor type `name` that messages routed by `key` go to."""
        route = self._routes.get(name)
        if route is None:
            raise UnknownActor(f"no actor named {name!r} is known to this node")
        return route.shard_for(None, key)

    def ref(self, name: str) -> ActorRef:
        route = self._routes.get(name)
        if route is None:
            raise UnknownActor(f"no actor named {name!r} is known to this node")
        return ActorRef(self, route)

    def schedule_to_shard(self, name: str, shard: int, delay: float, message: Message) -> Timer:
        envelope = Envelope(
            id=self.ids.next(),
            target=name,
            shard=shard,
            kind="tell",
            body=message,
            sender=f"{name}/{shard}",
            trace_id=current_trace_id() or self.ids.trace_id(),
        )
        timer = self.transport.schedule(envelope, delay)
        self._timers.add(timer)
        return timer

    def reply(self, request: Envelope, body: Any) -> None:
        """Answer an ask; never raises (a lost reply shows up as the asker's time-out).

        Synchronous when the transport takes the reply at once (always, in memory), so
        the worker's hot path awaits nothing for it; otherwise it is sent from a task.
        """
        if request.reply_to is None or body is REPLY_LATER:
            return  # no asker, or the handler answers later itself
        reply = Envelope(
            id=self.ids.next(),
            target=request.reply_to,
            shard=0,
            kind="reply",
            body=body,
            sender=request.target,
            in_reply_to=request.id,
            trace_id=request.trace_id,
        )
        try:
            if self.transport.try_send(reply):
                return
        except CodecError as error:
            log.error("reply_not_encodable", actor=request.target, error=str(error))
            failure = Failure(code="reply_not_encodable", category="internal", message=str(error))
            reply = msgspec.structs.replace(reply, body=failure)
        except Exception as error:
            log.error("reply_failed", actor=request.target, error=describe(error))
            return
        task = asyncio.get_running_loop().create_task(self._send_reply(reply))
        self._reply_tasks.add(task)
        task.add_done_callback(self._reply_tasks.discard)

    async def _send_reply(self, reply: Envelope) -> None:
        try:
            await self.transport.send(reply)
        except Exception as error:
            log.error("reply_failed", actor=reply.sender, error=describe(error))

    def _on_reply(self, envelope: Envelope) -> None:
        if not self.pending_asks.resolve(envelope.in_reply_to or "", envelope):
            log.info("late_reply", in_reply_to=envelope.in_reply_to, sender=envelope.sender)

    async def dead_letter(self, envelope: Envelope, error: str) -> DeadLetter:
        """Store a message that failed for good, with enough to inspect and replay it.

        A message with secret fields (a password, a token) is kept redacted and cannot be
        replayed: its secret must not rest in a table operators read.
        """
        envelope, redacted = without_secrets(envelope)
        try:
            encoded: bytes | None = None if redacted else self.codec.encode(envelope)
        except CodecError:
            encoded = None
        letter = DeadLetter(
            id=self.ids.next(),
            actor=envelope.target,
            shard=envelope.shard,
            message_type=type(envelope.body).__name__,
            message_id=envelope.id,
            trace_id=envelope.trace_id,
            attempts=envelope.attempt,
            error=error,
            body=msgspec.Raw(self.codec.body_json(envelope.body)),
            envelope=encoded,
            created_at=datetime.now(UTC),
        )
        await self.dead_letters.add(letter)
        log.error(
            "message_dead_lettered",
            actor=letter.actor,
            message_type=letter.message_type,
            dead_letter_id=letter.id,
            error=error,
        )
        return letter

    async def replay(self, letter_id: str) -> DeadLetter:
        """Send a dead letter's message again, once; it arrives as a tell with fresh attempts."""
        letter = await self.dead_letters.get(letter_id)
        if letter is None:
            raise DeadLetterNotFound(f"no dead letter {letter_id!r}")
        if letter.envelope is None:
            raise DeadLetterNotReplayable(f"dead letter {letter_id!r} holds no encodable message")
        if not await self.dead_letters.mark_replayed(letter_id):
            raise DeadLetterAlreadyReplayed(f"dead letter {letter_id!r} was already replayed")
        original = self.codec.decode(letter.envelope)
        route = self._routes.get(original.target)
        shard = original.shard
        if route is not None and shard >= route.shards:
            shard = route.shard_for(original.body)
        envelope = msgspec.structs.replace(
            original, kind="tell", shard=shard, attempt=0, reply_to=None, deadline=None
        )
        try:
            await self.transport.send(envelope)
        except (Exception, asyncio.CancelledError):
            await asyncio.shield(self.dead_letters.unmark_replayed(letter_id))
            raise
        log.info("dead_letter_replayed", dead_letter_id=letter_id, actor=original.target)
        return letter

    def restart(self, name: str) -> None:
        """Revive a failed actor type (an operator's decision after fixing the cause)."""
        group = self._groups.get(name)
        if group is None:
            raise UnknownActor(f"no actor named {name!r} runs on this node")
        group.revive()

    @property
    def ready(self) -> bool:
        return (
            self._started
            and not self.closed
            and all(group.state == "running" for group in self._groups.values())
        )

    def hosted(self) -> list[str]:
        return list(self._groups)

    def routes(self) -> dict[str, int]:
        """Every actor type this node can reach, with its number of shards."""
        return {name: route.shards for name, route in self._routes.items()}

    def status(self) -> list[ShardStatus]:
        shards: list[ShardStatus] = []
        for group in self._groups.values():
            for worker in group.workers:
                p50, p99 = worker.stats.percentiles_ms()
                stats = worker.stats
                shards.append(
                    ShardStatus(
                        name=group.name,
                        shard=worker.shard,
                        node=self.node_id,
                        state=worker.state,
                        mailbox=worker.waiting(),
                        parked=worker.parked.count,
                        handled=stats.handled,
                        failed=stats.failed,
                        rejected=stats.rejected,
                        dead_lettered=stats.dead_lettered,
                        expired=stats.expired,
                        restarts=stats.restarts,
                        last_error=stats.last_error,
                        p50_ms=p50,
                        p99_ms=p99,
                    )
                )
        return shards

    def live_shards(self) -> list[LiveShard]:
        """Every local shard's state, mailbox depth and live counters, as status() reads
        them but without sorting latencies into percentiles: cheap enough for every scrape."""
        return [
            LiveShard(
                group.name,
                worker.shard,
                worker.state,
                worker.waiting(),
                worker.stats,
            )
            for group in self._groups.values()
            for worker in group.workers
        ]

    async def stop(self, timeout: float = 10.0) -> None:
        """Drain mailboxes up to `timeout`, stop every shard, keep what was left undelivered."""
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._cancel_timers()
        await self.transport.stop_intake()
        if self.outbox is not None:
            # the relay is intake too: what commits from now on waits in the outbox table
            await self.outbox.stop(deadline - loop.time())
        workers = [worker for group in self._groups.values() for worker in group.workers]
        for group in self._groups.values():
            group.stop_restarts()
        # polling is enough here: it runs once, at shutdown, for at most `timeout`
        while loop.time() < deadline and any(_has_work(w) for w in workers):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self.closed = True
        for worker in workers:
            worker.request_stop()
        if workers:
            remaining = max(deadline - loop.time(), 0.05)
            waits = [loop.create_task(worker.wait_stopped()) for worker in workers]
            await asyncio.wait(waits, timeout=remaining)
        for worker in workers:
            worker.cancel()
            await worker.wait_stopped()
        # again: handlers may have armed timers while draining, and none may outlive the system
        self._cancel_timers()
        await self._keep_undelivered(workers)
        self.pending_asks.fail_all(SystemStopping("the node stopped before the reply came"))
        log.info("actor_system_stopped", node=self.node_id, shards=len(workers))

    def _cancel_timers(self) -> None:
        """In-process timers die with the system; a transport's durable timers fire later,
        on whichever node then owns the shard."""
        if self.transport.durable_timers:
            return
        for timer in list(self._timers):
            timer.cancel()

    async def _keep_undelivered(self, workers: list[ShardWorker]) -> None:
        """What the drain deadline cut off goes to the dead letters, to be replayed later."""
        kept = 0
        for worker in workers:
            left = worker.mailbox.close(worker.unfinished())
            worker.forget_unfinished()
            for envelope in left:
                try:
                    await self.dead_letter(envelope, "undelivered at shutdown")
                    kept += 1
                except Exception as error:
                    log.error("undelivered_message_lost", id=envelope.id, error=describe(error))
        if kept:
            log.warning("undelivered_kept_as_dead_letters", count=kept)


def _has_work(worker: ShardWorker) -> bool:
    return not worker.stopped and worker.has_work
