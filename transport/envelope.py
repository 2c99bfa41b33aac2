"""The envelope every message travels in, whatever the transport."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Kind = Literal["tell", "ask", "reply"]


class Envelope(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """One message on its way to one shard of one actor type.

    `reply_to` names the node whose reply stream an `ask` answers to; a reply carries the
    id of the ask it answers in `in_reply_to`. `deadline` is wall-clock epoch seconds so it
    means the same on every node. `attempt` counts earlier failed deliveries.
    """

    id: str
    target: str
    shard: int
    kind: Kind
    body: Any
    sender: str | None = None
    reply_to: str | None = None
    in_reply_to: str | None = None
    trace_id: str = ""
    attempt: int = 0
    deadline: float | None = None
