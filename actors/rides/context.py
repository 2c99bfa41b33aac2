"""What the rides actor's feature parts share: the database, the clock, transactions and
the fare table.

The actor builds one `RidesContext` and hands it to each part, so a part holds no reference
to the actor itself: it reads through `pool`, commits through `transaction` (the actor's
own, so the inbox and outbox work as for any handler, and `tx.publish` reaches the declared
subscribers) and tells time by `clock`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from actors.rides.fares import FareTable
from actors.runtime import Clock, Executor, Message, Transaction, at

# `Actor.tell` and `Actor.ask`, to another actor type.
Tell = Callable[[str, Message], Awaitable[None]]
Ask = Callable[[str, Message], Awaitable[Any]]
# `Actor.schedule`: a message to the actor's own shard after a delay.
Schedule = Callable[[float, Message], object]


class Transact(Protocol):
    """`Actor.transaction`: one database transaction with the outbox (and the inbox)."""

    def __call__(self, *, dedupe: bool = True) -> Transaction: ...


@dataclass(frozen=True, slots=True)
class RidesContext:
    """The database, clock, transactions and fares every feature part of the actor uses."""

    pool: Executor
    clock: Clock
    transaction: Transact
    table: FareTable

    def now(self) -> datetime:
        return at(self.clock())
