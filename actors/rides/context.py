"""What the rides actor's feature parts are given: the runtime's `Context` and the fare table.

The actor builds one `RidesContext` and hands it to each part, so a part holds no reference
to the actor itself: it reads through `pool`, tells time by `clock`, commits through
`transaction` (the shard's own, so the inbox and outbox work as for any handler, and
`tx.publish` reaches the declared subscribers), and sends and schedules messages through
`tell`, `tell_self`, `ask` and `schedule` (see actors/runtime/parts.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.rides.fares import FareTable
from actors.runtime import Context


@dataclass(frozen=True, slots=True)
class RidesContext(Context):
    """The shard's `Context`, with the fare table every price is made from."""

    table: FareTable
    regional: bool = False  # sharded by region (issue 20): a driver may be owned elsewhere
