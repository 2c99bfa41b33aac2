"""The direct ("who owes whom") settle plan: worked examples and hypothesis properties."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.splits.direct import (
    Lines,
    direct_plan,
    direct_plans,
    expense_pairs,
    pairwise_debts,
    plan_nets,
    settlement_lines,
)
from actors.splits.shares import PlannedTransfer, expense_deltas, largest_remainder

# as many examples as the suite's Hypothesis profile asks (tests/conftest.py)
PROPERTY = settings(deadline=None)
people = st.sampled_from(["ana", "bo", "cy", "dee", "eli", "fay"])


@st.composite
def movements(draw: st.DrawFn) -> Lines:
    """An expense with one to three payers and one to five sharers, adding up exactly."""
    amount = draw(st.integers(min_value=1, max_value=10**9))
    payers = draw(st.lists(people, min_size=1, max_size=3, unique=True))
    sharers = draw(st.lists(people, min_size=1, max_size=5, unique=True))
    paid = largest_remainder(amount, [draw(st.integers(1, 9)) for _ in payers])
    owed = largest_remainder(amount, [draw(st.integers(1, 9)) for _ in sharers])
    return list(zip(payers, paid, strict=True)), list(zip(sharers, owed, strict=True))


def balances(moves: list[Lines]) -> dict[str, int]:
    """The nets the kept balances hold for these movements (the actor's arithmetic)."""
    nets: dict[str, int] = defaultdict(int)
    for payers, shares in moves:
        for user, delta in expense_deltas(payers, shares).items():
            nets[user] += delta
    return {user: n for user, n in nets.items() if n}


def test_one_payer_makes_every_sharer_owe_them_their_share() -> None:
    """A dinner Ana paid for three makes Bo and Cy each owe Ana their share, Ana nothing."""
    pairs = expense_pairs([("ana", 90)], [("ana", 30), ("bo", 30), ("cy", 30)])
    assert pairs == [("bo", "ana", 30), ("cy", "ana", 30)]


def test_direct_plan_pays_back_the_payer_where_simplified_would_not() -> None:
    """Ana paid for Bo and Bo paid for Cy: directly Bo pays Ana and Cy pays Bo (two
    transfers), where the simplified plan would have Cy pay Ana."""
    moves: list[Lines] = [
        ([("ana", 10)], [("bo", 10)]),
        ([("bo", 10)], [("cy", 10)]),
    ]
    plan = direct_plan(pairwise_debts(moves))
    assert plan == [PlannedTransfer("bo", "ana", 10), PlannedTransfer("cy", "bo", 10)]
    assert plan_nets(plan) == balances(moves) == {"ana": 10, "cy": -10}


def test_pairs_are_netted_and_a_settlement_pays_back() -> None:
    """Debts both ways between two people net into one transfer; a settlement reduces it,
    and paying it all leaves no transfer."""
    moves: list[Lines] = [([("ana", 50)], [("bo", 50)]), ([("bo", 20)], [("ana", 20)])]
    assert direct_plan(pairwise_debts(moves)) == [PlannedTransfer("bo", "ana", 30)]
    moves.append(settlement_lines("bo", "ana", 30))
    assert direct_plan(pairwise_debts(moves)) == []


def test_several_payers_are_matched_in_user_order() -> None:
    """Two payers of 60 and 40 for three equal sharers: the debts go to payers in id order,
    and add up to the amount each sharer owes."""
    pairs = expense_pairs([("bo", 40), ("ana", 60)], [("ana", 34), ("bo", 33), ("cy", 33)])
    assert pairs == [("cy", "ana", 26), ("cy", "bo", 7)]


def test_an_expense_that_does_not_add_up_is_refused() -> None:
    """Payments and shares that differ are a ValueError, not a silent plan."""
    with pytest.raises(ValueError, match="differ"):
        expense_pairs([("ana", 10)], [("bo", 9)])


def test_plans_are_kept_per_currency() -> None:
    """Movements in two currencies make one plan each; a currency that nets out has none."""
    plans = direct_plans(
        [
            ("EUR", ([("ana", 10)], [("bo", 10)])),
            ("USD", ([("bo", 5)], [("ana", 5)])),
            ("USD", settlement_lines("ana", "bo", 5)),
        ]
    )
    assert plans == {"EUR": [PlannedTransfer("bo", "ana", 10)]}


@PROPERTY
@given(st.lists(movements(), max_size=12))
def test_the_direct_plan_zeroes_exactly_the_kept_balances(moves: list[Lines]) -> None:
    """Whatever the expenses, the direct plan moves every person by exactly their net."""
    plan = direct_plan(pairwise_debts(moves))
    assert plan_nets(plan) == balances(moves)


@PROPERTY
@given(st.lists(movements(), max_size=12))
def test_one_positive_transfer_per_pair_at_most(moves: list[Lines]) -> None:
    """No transfer is zero or to oneself, and no pair appears twice (either way round)."""
    plan = direct_plan(pairwise_debts(moves))
    pairs = [frozenset((t.from_user_id, t.to_user_id)) for t in plan]
    assert all(t.amount > 0 and t.from_user_id != t.to_user_id for t in plan)
    assert len(pairs) == len(set(pairs))


@PROPERTY
@given(
    st.lists(movements(), max_size=8).flatmap(lambda m: st.tuples(st.just(m), st.permutations(m)))
)
def test_the_plan_does_not_depend_on_the_order_of_expenses(
    both: tuple[list[Lines], list[Lines]],
) -> None:
    """The same expenses in another order make the same plan."""
    moves, shuffled = both
    assert direct_plan(pairwise_debts(shuffled)) == direct_plan(pairwise_debts(moves))


@PROPERTY
@given(movements())
def test_an_expense_owes_each_creditor_what_they_are_owed(move: Lines) -> None:
    """Within one expense the pairs give each creditor their change and take each debtor's."""
    pairs = expense_pairs(*move)
    nets: dict[str, int] = defaultdict(int)
    for debtor, creditor, amount in pairs:
        assert amount > 0
        nets[creditor] += amount
        nets[debtor] -= amount
    assert {u: n for u, n in nets.items() if n} == expense_deltas(*move)
