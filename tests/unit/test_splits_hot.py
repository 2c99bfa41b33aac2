"""The rules of the Splits shard's hot balances: which message drops which copy, and the
copies' bounds in the runtime's Resident (the node's memory budget, idle ones dropped)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.messages import AccountDeleted
from actors.payments.messages import TransferCompleted
from actors.runtime.resident import ENTRY_OVERHEAD, MemoryBudget, Resident
from actors.splits import messages as splits_messages
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
    BalancesUnchanged,
    BalancesView,
    GetBalances,
    GetSettlePlan,
    GroupNotFound,
    ListGroups,
    PlanTransfer,
    RemoveMember,
    SettlePlanView,
    settlement_reference,
)
from transport import Codec
from transport.envelope import Envelope

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
    kept = hot.put(G, False, frozenset({"amy"}), view(5))
    assert kept.balances == view(5).balances
    assert kept.version is not None
    assert hot.get(read()) == kept
    assert hot.get(GetBalances(group_id=G, user_id="amy", converted=True)) is None
    with pytest.raises(GroupNotFound):
        hot.get(read(user_id="mallory"))
    hot.drop(G)
    assert hot.get(read()) is None


def test_a_plan_is_kept_beside_its_balances_and_dropped_with_them() -> None:
    """A settle plan is kept only beside kept balances, served to members only, counted in
    the copy's size, keeps the balances' version, and goes when the group changes."""
    hot, _, _ = holding(Clock())
    ask = GetSettlePlan(group_id=G, user_id="amy")
    line = PlanTransfer(
        from_user_id="bob", to_user_id="amy", amount=5, currency="EUR", from_net=-5, to_net=5
    )
    plan = SettlePlanView(transfers=[line])
    hot.keep_plan(G, False, plan)  # no balances kept: nothing to check members against
    assert hot.plan(ask) is None
    kept = hot.put(G, False, frozenset({"amy", "bob"}), view(5))
    assert hot.plan(ask) is None
    hot.keep_plan(G, False, plan)
    assert hot.plan(ask) == plan
    assert hot.get(read()) == kept  # the same version: the balances did not change
    assert hot.plan(GetSettlePlan(group_id=G, user_id="amy", converted=True)) is None
    with pytest.raises(GroupNotFound):
        hot.plan(GetSettlePlan(group_id=G, user_id="mallory"))
    assert copy_size(BalancesCopy(frozenset({"amy", "bob"}), kept, plan)) > copy_size(
        BalancesCopy(frozenset({"amy", "bob"}), kept)
    )
    hot.drop(G)
    assert hot.plan(ask) is None


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
            kept = hot.get(read(group_id=group_id))
            assert kept is not None
            assert kept.balances == view(n).balances


def test_each_load_gets_a_new_version_and_a_reader_holding_it_gets_unchanged() -> None:
    """A copy's version is new at every load; a member naming it gets BalancesUnchanged
    without lines, an older version gets the view, a stranger GroupNotFound all the same."""
    hot, _, _ = holding(Clock())
    first = hot.put(G, False, frozenset({"amy"}), view(5))
    same = GetBalances(group_id=G, user_id="amy", known_version=first.version)
    unchanged = hot.get(same)
    assert isinstance(unchanged, BalancesUnchanged)
    assert unchanged.balances == []
    assert unchanged.version == first.version
    with pytest.raises(GroupNotFound):
        hot.get(GetBalances(group_id=G, user_id="mallory", known_version=first.version))
    hot.drop(G)
    second = hot.put(G, False, frozenset({"amy"}), view(6))
    assert second.version not in (None, first.version)
    assert hot.get(same) == second
    assert hot.get(GetBalances(group_id=G, user_id="amy", known_version="other")) == second


def test_nothing_kept_means_no_version() -> None:
    """With no holder a loaded view goes back as it was, unversioned (never cached)."""
    hot = HotBalances(None)
    assert hot.put(G, False, frozenset({"amy"}), view(5)) == view(5)
    assert hot.get(GetBalances(group_id=G, user_id="amy", known_version="x")) is None


def test_versions_and_unchanged_replies_cross_a_network() -> None:
    """A read naming its version and the small unchanged answer survive the codec as
    themselves (on Redis the answer is encoded: it carries no lines)."""
    codec = Codec()
    codec.register_module(splits_messages)
    for body in (
        GetBalances(group_id=G, user_id="amy", converted=True, known_version="p-1"),
        BalancesUnchanged(balances=[], converted=True, version="p-1"),
    ):
        envelope = Envelope(id="1", target="splits", shard=0, kind="reply", body=body)
        back = codec.decode(codec.encode(envelope)).body
        assert type(back) is type(body)
        assert back == body
