"""Hot balances: the balances of the groups a Splits shard owns, kept in its memory.

A shard is the single writer of its groups (DESIGN.md, "State lives with its owner"), so
it can answer `GetBalances` from memory: the first read of a group loads its balances and
members from PostgreSQL, later reads are served from here; the settle plan made from those
balances (`GetSettlePlan`) is kept beside them once asked for. Every message that may change
a group (an expense, a settlement, a member coming or going, ...) drops that group's copy
once its handler is done, committed or not, and the next read loads it again: the copy is
never newer or older than the tables. Which messages only read, and which group a message
may change, is `dropped_by` (pure). The copies live in the shard's `Resident` (the
runtime's hot state): one unread for `IDLE_SECONDS` is dropped (passivation), the node's
memory budget bounds them all (least recently used first, whichever shard), and they go
when the shard stops here or its lease moved away and came back.

Each copy carries a version (issue 20: the edge's reply cache), made when it is loaded:
this process's random id and a counter that only goes up, so a version is never given
twice, here or on another node, and a group's version changes whenever its copy is dropped
and loaded again, which every change to its balances or members does. A read that names
the version it holds (`GetBalances.known_version`) and still has it is answered
`BalancesUnchanged`, without the lines, once the reader is found a member.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import msgspec

from actors.payments.messages import TransferCompleted, TransferFailed
from actors.runtime import Message
from actors.runtime.resident import Resident
from actors.splits.messages import (
    SETTLEMENT_REFERENCE,
    BalancesUnchanged,
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
    SettlePlanView,
)

IDLE_SECONDS = 300.0  # a copy unread this long is dropped
# what a copy's size is estimated from (tests/bench/hot_bench.py measures ~212 bytes a
# member for the view's line and the member set together)
BYTES_PER_LINE = 150
BYTES_PER_MEMBER = 70
RESIDENT_NAME = "splits_balances"

# versions: this process's random id, then a counter (never reused, whichever the shard)
_PROCESS = secrets.token_hex(8)
_LOADS = itertools.count(1)


def next_version() -> str:
    """A version no copy had before, in this process or any other."""
    return f"{_PROCESS}-{next(_LOADS)}"


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
    """A group's balances view (plain or converted) and its members, as kept, and the
    settle plan made from those balances once it was asked for."""

    members: frozenset[str]
    view: BalancesView
    plan: SettlePlanView | None = None


def copy_size(copy: BalancesCopy) -> int:
    """Bytes a copy holds, estimated cheaply (measured: ~212 a member with its line)."""
    planned = 0 if copy.plan is None else BYTES_PER_LINE * len(copy.plan.transfers)
    return BYTES_PER_LINE * len(copy.view.balances) + BYTES_PER_MEMBER * len(copy.members) + planned


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
        """The kept view for this read (`BalancesUnchanged` when the reader holds its
        version already), or None (not kept: load it). GroupNotFound when the group is
        kept and the reader is not one of its members."""
        if self._holder is None:
            return None
        copy = self._holder().get((message.group_id, message.converted))
        if copy is None:
            return None
        if message.user_id not in copy.members:
            raise GroupNotFound("No such group among yours.", details={"field": "group_id"})
        view = copy.view
        if message.known_version is not None and message.known_version == view.version:
            return BalancesUnchanged(balances=[], converted=view.converted, version=view.version)
        return view

    def plan(self, message: GetSettlePlan) -> SettlePlanView | None:
        """The kept settle plan for this read, or None (not kept: make it). GroupNotFound
        when the group is kept and the reader is not one of its members."""
        if self._holder is None:
            return None
        copy = self._holder().get((message.group_id, message.converted))
        if copy is None or copy.plan is None:
            return None
        if message.user_id not in copy.members:
            raise GroupNotFound("No such group among yours.", details={"field": "group_id"})
        return copy.plan

    def keep_plan(self, group_id: str, converted: bool, plan: SettlePlanView) -> None:
        """Keep a plan just made from the tables beside the group's kept balances (made
        in this same message's handling, so from the same balances); nothing when the
        balances are not kept (their members are what a later read is checked against)."""
        if self._holder is None:
            return
        holder = self._holder()
        copy = holder.get((group_id, converted))
        if copy is not None:
            holder.put((group_id, converted), BalancesCopy(copy.members, copy.view, plan))

    def put(
        self, group_id: str, converted: bool, members: frozenset[str], view: BalancesView
    ) -> BalancesView:
        """Keep a view just loaded from the tables (in this same message's handling); the
        view as kept, with its new version (as it was when nothing is kept)."""
        if self._holder is None:
            return view
        view = msgspec.structs.replace(view, version=next_version())
        self._holder().put((group_id, converted), BalancesCopy(members, view))
        return view

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
