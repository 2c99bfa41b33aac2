"""Hot balances: the balances of the groups a Splits shard owns, kept in its memory.

A shard is the single writer of its groups (DESIGN.md, "State lives with its owner"), so
it can answer `GetBalances` from memory: the first read of a group loads its balances and
members from PostgreSQL, later reads are served from here. Every message that may change
a group (an expense, a settlement, a member coming or going, ...) drops that group's copy
once its handler is done, committed or not, and the next read loads it again: the copy is
never newer or older than the tables. Which messages only read, and which group a message
may change, is `dropped_by` (pure). The copies live in the shard's `Resident` (the
runtime's hot state): one unread for `IDLE_SECONDS` is dropped (passivation), the node's
memory budget bounds them all (least recently used first, whichever shard), and they go
when the shard stops here or its lease moved away and came back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from actors.payments.messages import TransferCompleted, TransferFailed
from actors.runtime import Message
from actors.runtime.resident import Resident
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

IDLE_SECONDS = 300.0  # a copy unread this long is dropped
# what a copy's size is estimated from (tests/bench/hot_bench.py measures ~212 bytes a
# member for the view's line and the member set together)
BYTES_PER_LINE = 150
BYTES_PER_MEMBER = 70
RESIDENT_NAME = "splits_balances"

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
class BalancesCopy:
    """A group's balances view (plain or converted) and its members, as kept."""

    members: frozenset[str]
    view: BalancesView


def copy_size(copy: BalancesCopy) -> int:
    """Bytes a copy holds, estimated cheaply (measured: ~212 a member with its line)."""
    return BYTES_PER_LINE * len(copy.view.balances) + BYTES_PER_MEMBER * len(copy.members)


Holder = Resident[tuple[str, bool], BalancesCopy]


class HotBalances:
    """Each owned group's balances view (plain and converted) and members, kept in memory.

    `holder` gives the shard's `Resident` (actors/runtime/resident.py: idle passivation,
    the node's memory budget, emptied when the shard stops or its lease came back); None
    keeps nothing, so every read goes to the tables. Only the Splits shard that owns the
    groups uses it, one message at a time: no locks.
    """

    def __init__(self, holder: Callable[[], Holder] | None) -> None:
        self._holder = holder

    def __len__(self) -> int:
        return 0 if self._holder is None else len(self._holder())

    def get(self, message: GetBalances) -> BalancesView | None:
        """The kept view for this read, or None (not kept: load it). GroupNotFound when the
        group is kept and the reader is not one of its members."""
        if self._holder is None:
            return None
        copy = self._holder().get((message.group_id, message.converted))
        if copy is None:
            return None
        if message.user_id not in copy.members:
            raise GroupNotFound("No such group among yours.", details={"field": "group_id"})
        return copy.view

    def put(
        self, group_id: str, converted: bool, members: frozenset[str], view: BalancesView
    ) -> None:
        """Keep a view just loaded from the tables (in this same message's handling)."""
        if self._holder is not None:
            self._holder().put((group_id, converted), BalancesCopy(members, view))

    def drop(self, which: str | Everything | None) -> None:
        """Forget what a handled message may have changed (see `dropped_by`)."""
        if which is None or self._holder is None:
            return
        holder = self._holder()
        if isinstance(which, Everything):
            holder.clear()
            return
        holder.drop((which, False))
        holder.drop((which, True))
