"""The rules of the Splits shard's hot balances: which message drops which copy, and the
copies' bounds (capacity, least recently used first, idle ones dropped)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.messages import AccountDeleted
from actors.payments.messages import TransferCompleted
from actors.splits.hot import EVERYTHING, HotBalances, dropped_by
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


def test_a_kept_view_is_served_to_members_and_refused_to_others() -> None:
    """A member reads the kept view; anyone else gets GroupNotFound, as from the tables."""
    hot = HotBalances(clock=Clock())
    assert hot.get(read()) is None
    hot.put(G, False, frozenset({"amy"}), view(5))
    assert hot.get(read()) == view(5)
    assert hot.get(GetBalances(group_id=G, user_id="amy", converted=True)) is None
    with pytest.raises(GroupNotFound):
        hot.get(read(user_id="mallory"))
    hot.drop(G)
    assert hot.get(read()) is None


def test_idle_copies_are_dropped_and_used_ones_kept() -> None:
    """A copy unread for the idle time goes at the next sweep; one read meanwhile stays."""
    clock = Clock()
    hot = HotBalances(idle_seconds=60.0, clock=clock)
    other = "3f0c1d4e-0000-4000-8000-000000000002"
    hot.put(G, False, frozenset({"amy"}), view())
    hot.put(other, False, frozenset({"amy"}), view())
    clock.now += 45
    assert hot.get(read()) is not None
    clock.now += 30
    hot.sweep()
    assert hot.get(read()) is not None
    assert hot.get(read(group_id=other)) is None


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=200), st.integers(0, 8))
def test_never_more_copies_than_the_capacity(groups: list[int], capacity: int) -> None:
    """However groups are loaded and read, at most `capacity` copies are kept, and the
    one loaded last is one of them (the least recently used go first)."""
    hot = HotBalances(capacity=capacity, clock=Clock())
    for n in groups:
        group_id = f"group-{n}"
        if hot.get(read(group_id=group_id)) is None:
            hot.put(group_id, False, frozenset({"amy"}), view(n))
        assert len(hot) <= capacity
        if capacity:
            assert hot.get(read(group_id=group_id)) == view(n)
