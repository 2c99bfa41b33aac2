"""Hot balances: the balances of the groups a Splits shard owns, kept in its memory.

A shard is the single writer of its groups (DESIGN.md, "State lives with its owner"), so
it can answer `GetBalances` from memory: the first read of a group loads its balances and
members from PostgreSQL, later reads are served from here. Every message that may change
a group (an expense, a settlement, a member coming or going, ...) drops that group's copy
once its handler is done, committed or not, and the next read loads it again: the copy is
never newer or older than the tables. Which messages only read, and which group a message
may change, is `dropped_by` (pure). A copy unused for `idle_seconds` is dropped
(passivation), and at most `capacity` are kept (the least recently used go first), so the
memory a shard holds for balances is bounded: see `MEMORY_NOTE`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from actors.payments.messages import TransferCompleted, TransferFailed
from actors.runtime import Message
from actors.splits.messages import (
    SETTLEMENT_REFERENCE,
    BalancesView,
    DescribeChatSubject,
    DescribeMySplits,
    ExportGroup,
    ExportGroupJson,
    GetActivity,
    GetBalances,
    GetExpense,
    GetGroup,
    GetGroupHeader,
    GetGroupSettings,
    GetInsight,
    GetNetBreakdown,
    GetSettlement,
    GetSettlePlan,
    GetSummary,
    GroupNotFound,
    ListComments,
    ListExpenses,
    ListGroups,
    ListInvites,
    ListJoinLinks,
    ListMyInvites,
    ListRecurring,
    SearchExpenses,
)

DEFAULT_CAPACITY = 1_024  # groups a shard keeps (each up to 1,000 members)
DEFAULT_IDLE_SECONDS = 300.0  # a copy unread this long is dropped
SWEEP_SECONDS = 30.0  # how often idle copies are looked for (on a read or a load)
MEMORY_NOTE = (
    "about 150 bytes per member line; a 1,000-member group's copy is ~0.2 MiB "
    "(measured by `python -m tests.bench hot`)"
)

# messages that only read: they leave every copy as it is
READS: Final[frozenset[type[Message]]] = frozenset(
    {
        DescribeChatSubject,
        DescribeMySplits,
        ExportGroup,
        ExportGroupJson,
        GetActivity,
        GetBalances,
        GetExpense,
        GetGroup,
        GetGroupHeader,
        GetGroupSettings,
        GetInsight,
        GetNetBreakdown,
        GetSettlement,
        GetSettlePlan,
        GetSummary,
        ListComments,
        ListExpenses,
        ListGroups,
        ListInvites,
        ListJoinLinks,
        ListMyInvites,
        ListRecurring,
        SearchExpenses,
    }
)


class Everything:
    """`dropped_by`'s answer for a message that may change any group of the shard."""


EVERYTHING: Final = Everything()


def dropped_by(message: Message) -> str | Everything | None:
    """Which copy a message may make stale once handled: None (it only reads, or changes no
    group), a group id, or EVERYTHING (a message not tied to one group: drop them all)."""
    kind = type(message)
    if kind in READS:
        return None
    if kind is TransferCompleted or kind is TransferFailed:
        reference = getattr(message, "reference", None) or ""
        if reference.startswith(SETTLEMENT_REFERENCE):
            return reference[len(SETTLEMENT_REFERENCE) :].split(":")[0] or EVERYTHING
        # payments' other transfers (p2p, fares) never touch a group
        return None
    group_id = getattr(message, "group_id", None)
    if isinstance(group_id, str) and group_id:
        return group_id
    return EVERYTHING


@dataclass(slots=True)
class _Copy:
    members: frozenset[str]
    view: BalancesView
    used: float


class HotBalances:
    """Each owned group's balances view (plain and converted) and members, kept in memory.

    Only the Splits shard that owns the groups uses it, one message at a time: no locks.
    `clock` is monotonic seconds (tests move it).
    """

    def __init__(
        self,
        *,
        capacity: int = DEFAULT_CAPACITY,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 0 or idle_seconds <= 0:
            raise ValueError("capacity must be >= 0 and idle_seconds > 0")
        self._capacity = capacity
        self._idle = idle_seconds
        self._clock = clock
        self._copies: OrderedDict[tuple[str, bool], _Copy] = OrderedDict()
        self._swept = clock()
        self.hits = 0
        self.loads = 0

    def __len__(self) -> int:
        return len(self._copies)

    def get(self, message: GetBalances) -> BalancesView | None:
        """The kept view for this read, or None (not kept: load it). GroupNotFound when the
        group is kept and the reader is not one of its members."""
        key = (message.group_id, message.converted)
        copy = self._copies.get(key)
        if copy is None:
            return None
        if message.user_id not in copy.members:
            raise GroupNotFound("No such group among yours.", details={"field": "group_id"})
        copy.used = self._clock()
        self._copies.move_to_end(key)
        self.hits += 1
        self._sweep()
        return copy.view

    def put(
        self, group_id: str, converted: bool, members: frozenset[str], view: BalancesView
    ) -> None:
        """Keep a view just loaded from the tables (in this same message's handling)."""
        if self._capacity == 0:
            return
        key = (group_id, converted)
        self._copies[key] = _Copy(members, view, self._clock())
        self._copies.move_to_end(key)
        self.loads += 1
        while len(self._copies) > self._capacity:
            self._copies.popitem(last=False)
        self._sweep()

    def drop(self, which: str | Everything | None) -> None:
        """Forget what a handled message may have changed (see `dropped_by`)."""
        if which is None or not self._copies:
            return
        if isinstance(which, Everything):
            self._copies.clear()
            return
        self._copies.pop((which, False), None)
        self._copies.pop((which, True), None)

    def _sweep(self) -> None:
        """Sweep now and then, on reads and loads."""
        if self._clock() - self._swept >= min(SWEEP_SECONDS, self._idle):
            self.sweep()

    def sweep(self, now: float | None = None) -> None:
        """Drop the copies idle for `idle_seconds` at `now` (default: the clock's time)."""
        now = self._swept = self._clock() if now is None else now
        while self._copies:
            key, copy = next(iter(self._copies.items()))
            if now - copy.used < self._idle:
                break
            del self._copies[key]
