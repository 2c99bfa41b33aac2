"""The transport interface: what the runtime needs from any way of moving messages.

A transport delivers envelopes to the mailbox of one shard of one actor type, wherever
that shard is hosted, delivers replies to the node that asked, and fires timers. The
memory transport does this inside one process; the Redis Streams transport does it
across nodes. Actors never see the transport: they only see the runtime's refs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from transport.envelope import Envelope

ReplyHandler = Callable[[Envelope], None]


class UnknownTarget(LookupError):
    """An envelope names an actor type or shard that nothing hosts."""

    code = "unknown_target"


class MailboxClosed(RuntimeError):
    """The mailbox was closed (the node is stopping); nothing more can be put in it."""

    code = "mailbox_closed"


class Timer(Protocol):
    """A scheduled delivery that can still be cancelled."""

    def cancel(self) -> None: ...


class Mailbox(Protocol):
    """The consumer side of one shard's queue, read by exactly one worker."""

    async def get(self) -> Envelope:
        """The next envelope, waiting for one; raises MailboxClosed once closed and empty."""
        ...

    def get_nowait(self) -> Envelope | None:
        """The next envelope if one is already waiting, else None."""
        ...

    def ack(self, envelope: Envelope) -> None:
        """The envelope's handling finished; a reliable transport may forget it now.

        Synchronous on purpose: a network transport queues the ack and flushes acks in
        batches, so an ack can neither block the worker nor be lost to a cancellation
        halfway through.
        """
        ...

    def depth(self) -> int:
        """How many envelopes wait (an estimate on transports where counting costs IO)."""
        ...

    def dead_lettered(self, envelope: Envelope, error: str) -> None:
        """The runtime gave up on this envelope (its ack follows); keep a transport copy."""
        ...

    def close(self, unfinished: Sequence[Envelope] = ()) -> list[Envelope]:
        """Stop intake. Given what the worker took but did not finish, returns everything
        that would be lost now (a durable transport keeps it pending and returns nothing)."""
        ...


class Transport(Protocol):
    """Moves envelopes between refs and mailboxes, on one node or many."""

    node_id: str
    # timers that outlive the node (kept by the transport): a clean stop leaves them be
    durable_timers: bool

    async def start(self, on_reply: ReplyHandler) -> None:
        """Begin delivering replies addressed to this node to `on_reply`."""
        ...

    def open_mailbox(self, actor: str, shard: int, capacity: int) -> Mailbox:
        """Host one shard of an actor type on this node."""
        ...

    def try_send(self, envelope: Envelope) -> bool:
        """Deliver without waiting if that can be done now; False means call `send`.

        The hot path of `tell`: most sends find room and need no await at all.
        """
        ...

    async def send(self, envelope: Envelope) -> None:
        """Deliver to the target shard (or, for a reply, to the asking node).

        Waits while the target mailbox is full: backpressure, never a silent drop.
        """
        ...

    def schedule(self, envelope: Envelope, delay: float) -> Timer:
        """Send `envelope` after `delay` seconds unless cancelled first."""
        ...

    async def stop_intake(self) -> None:
        """Stop taking new envelopes into this node's mailboxes (the node is stopping)."""
        ...

    async def shard_info(self, actor: str, shards: int) -> list[dict[str, Any]]:
        """Per shard, as the transport sees it cluster-wide: owner node, lease expiry (ms),
        stream length, outstanding (not yet acked), pending (delivered, unacked), lag."""
        ...

    async def close(self) -> None:
        """Release connections; mailboxes are closed by their owners first."""
        ...
