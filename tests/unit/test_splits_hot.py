"""The rules of the Splits shard's hot balances: which message drops which copy, and the
copies' bounds in the runtime's Resident (the node's memory budget, idle ones dropped)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.messages import AccountDeleted
from actors.payments.messages import TransferCompleted
from actors.runtime.resident import ENTRY_OVERHEAD, MemoryBudget, Resident
from actors.splits.hot import (
    EVERYTHING,
    IDLE_SECONDS,
    BalancesCopy,
    Holder,
    HotBalances,
    copy_size,
    dropped_by,
)
from actors.splits.messages import (
    AddMember,
    BalanceLine,
    BalancesView,
    GetBalances,
    GroupNotFound,
    ListGroups,
    RemoveMember,
    settlement_reference,
)

G = "3f0c1d4e-0000-4000-8000-000000000001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def view(net: int = 0) -> BalancesView:
    return BalancesView(balances=[BalanceLine(user_id="amy", currency="EUR", net=net)])


def read(group_id: str = G, user_id: str = "amy") -> GetBalances:
    return GetBalances(group_id=group_id, user_id=user_id)


def test_reads_drop_nothing_and_group_changes_drop_their_group() -> None:
    """Reads keep every copy; a change names its group; a settlement's transfer names the
    group in its reference; p2p transfers touch no group; anything else drops them all."""
    assert dropped_by(read()) is None
    assert dropped_by(ListGroups(user_id="amy")) is None
    assert dropped_by(AddMember(group_id=G, user_id="amy", member_user_id="bob")) == G
    assert dropped_by(RemoveMember(group_id=G, user_id="amy", member_user_id="bob")) == G
    paid = TransferCompleted(
        transfer_id="t",
        from_user_id="bob",
        to_user_id="amy",
        amount=1,
        currency="EUR",
        kind="settlement",
        reference=settlement_reference(G, "s-1"),
    )
    assert dropped_by(paid) == G
    p2p = TransferCompleted(
        transfer_id="t", from_user_id="bob", to_user_id="amy", amount=1, currency="EUR", kind="p2p"
    )
    assert dropped_by(p2p) is None
    assert dropped_by(AccountDeleted(user_id="amy")) is EVERYTHING


def holding(clock: Clock, limit: int = 1 << 30) -> tuple[HotBalances, Holder, MemoryBudget]:
    budget = MemoryBudget(limit)
    holder: Holder = Resident(
        "splits_balances", budget=budget, size=copy_size, idle=IDLE_SECONDS, clock=clock
    )
    return HotBalances(lambda: holder), holder, budget


def test_a_kept_view_is_served_to_members_and_refused_to_others() -> None:
    """A member reads the kept view; anyone else gets GroupNotFound, as from the tables."""
    hot, _, _ = holding(Clock())
    assert hot.get(read()) is None
    hot.put(G, False, frozenset({"amy"}), view(5))
    assert hot.get(read()) == view(5)
    assert hot.get(GetBalances(group_id=G, user_id="amy", converted=True)) is None
    with pytest.raises(GroupNotFound):
        hot.get(read(user_id="mallory"))
    hot.drop(G)
    assert hot.get(read()) is None


def test_a_change_drops_its_group_and_a_wider_one_drops_all() -> None:
    """Dropping a group forgets its plain and converted copies only; EVERYTHING forgets
    every copy; None forgets nothing; with no holder nothing is ever kept."""
    hot, _, _ = holding(Clock())
    other = "3f0c1d4e-0000-4000-8000-000000000002"
    for group_id in (G, other):
        for converted in (False, True):
            hot.put(group_id, converted, frozenset({"amy"}), view())
    hot.drop(None)
    assert len(hot) == 4
    hot.drop(G)
    assert len(hot) == 2
    assert hot.get(read(group_id=other)) is not None
    hot.drop(EVERYTHING)
    assert len(hot) == 0
    nothing = HotBalances(None)
    nothing.put(G, False, frozenset({"amy"}), view())
    assert nothing.get(read()) is None
    assert len(nothing) == 0


def test_idle_copies_are_dropped_and_used_ones_kept() -> None:
    """A copy unread for the idle time is gone; one read meanwhile stays."""
    clock = Clock()
    hot, holder, _ = holding(clock)
    other = "3f0c1d4e-0000-4000-8000-000000000002"
    hot.put(G, False, frozenset({"amy"}), view())
    hot.put(other, False, frozenset({"amy"}), view())
    clock.now += IDLE_SECONDS * 0.75
    assert hot.get(read()) is not None
    clock.now += IDLE_SECONDS * 0.5
    holder.sweep()
    assert hot.get(read()) is not None
    assert hot.get(read(group_id=other)) is None


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=200), st.integers(0, 8))
def test_the_copies_never_exceed_the_memory_budget(groups: list[int], fits: int) -> None:
    """However groups are loaded and read, the kept copies fit the node's budget (room for
    `fits` of them), and the one loaded last is kept whenever one fits at all."""
    one = ENTRY_OVERHEAD + copy_size(BalancesCopy(frozenset({"amy"}), view()))
    hot, holder, budget = holding(Clock(), limit=one * fits)
    for n in groups:
        group_id = f"group-{n}"
        if hot.get(read(group_id=group_id)) is None:
            hot.put(group_id, False, frozenset({"amy"}), view(n))
        assert budget.used <= budget.limit
        assert len(holder) <= fits
        if fits:
            assert hot.get(read(group_id=group_id)) == view(n)
