"""Split arithmetic and settle-up plans: worked examples, refusals and hypothesis properties."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from itertools import pairwise
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.runtime import DomainError
from actors.runtime.errors import Failure
from actors.splits.shares import (
    InvalidSplit,
    PlannedTransfer,
    ShareSpec,
    SplitMode,
    compute_shares,
    expense_deltas,
    largest_remainder,
    plan_after_payment,
    settle_plan,
    split_payers,
)

# as many examples as the suite's Hypothesis profile asks (tests/conftest.py)
PROPERTY = settings(deadline=None)
MAX_MONEY = 10**12

money = st.integers(min_value=1, max_value=MAX_MONEY)
participant_counts = st.integers(min_value=1, max_value=60)
user_ids = st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=8)


def users(count: int) -> list[str]:
    return [f"u{index}" for index in range(count)]


def parts_of(shares: Sequence[tuple[str, int]]) -> list[int]:
    return [share for _, share in shares]


def within_one_unit(shares: Sequence[int], ideals: Sequence[Fraction]) -> bool:
    return all(abs(share - ideal) < 1 for share, ideal in zip(shares, ideals, strict=True))


def field_of(caught: pytest.ExceptionInfo[InvalidSplit]) -> str:
    return caught.value.field


def apply_transfers(
    balances: Mapping[str, int], transfers: Sequence[PlannedTransfer]
) -> dict[str, int]:
    """The balances after the transfers are paid: the payer's debt and the payee's credit
    both shrink by the amount."""
    after = dict(balances)
    for transfer in transfers:
        after[transfer.from_user_id] += transfer.amount
        after[transfer.to_user_id] -= transfer.amount
    return after


@st.composite
def zero_sum_balances(draw: st.DrawFn, max_users: int = 30) -> dict[str, int]:
    """Balances that sum to zero; small magnitudes often, so ties and cancelling groups occur."""
    names = draw(st.lists(user_ids, min_size=1, max_size=max_users, unique=True))
    magnitude = draw(st.sampled_from([3, 10, 1000, 10**9]))
    values = draw(
        st.lists(
            st.integers(min_value=-magnitude, max_value=magnitude),
            min_size=len(names) - 1,
            max_size=len(names) - 1,
        )
    )
    values.append(-sum(values))
    return dict(zip(names, values, strict=True))


@st.composite
def percent_weights(draw: st.DrawFn, count: int) -> list[int]:
    """`count` basis-point weights that sum to exactly 10000."""
    cuts = sorted(
        draw(
            st.lists(
                st.integers(min_value=0, max_value=10_000), min_size=count - 1, max_size=count - 1
            )
        )
    )
    bounds = [0, *cuts, 10_000]
    return [high - low for low, high in pairwise(bounds)]


# ── worked examples ────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("amount", "mode", "specs", "expected"),
    [
        pytest.param(10000, "equal", [ShareSpec("a"), ShareSpec("b"), ShareSpec("c")],
                     [3334, 3333, 3333], id="equal-100.00-among-3"),
        pytest.param(100, "equal", [ShareSpec("a"), ShareSpec("b"), ShareSpec("c")],
                     [34, 33, 33], id="equal-1.00-among-3"),
        pytest.param(1, "equal", [ShareSpec("a"), ShareSpec("b"), ShareSpec("c")],
                     [1, 0, 0], id="equal-one-cent-among-3"),
        pytest.param(2, "equal", [ShareSpec("a"), ShareSpec("b"), ShareSpec("c")],
                     [1, 1, 0], id="equal-two-cents-among-3"),
        pytest.param(4242, "equal", [ShareSpec("a")], [4242], id="equal-single"),
        pytest.param(10000, "exact", [ShareSpec("a", amount=2500), ShareSpec("b", amount=7500)],
                     [2500, 7500], id="exact"),
        pytest.param(10000, "exact", [ShareSpec("a", amount=0), ShareSpec("b", amount=10000)],
                     [0, 10000], id="exact-with-a-zero-share"),
        pytest.param(999, "exact", [ShareSpec("a", amount=999)], [999], id="exact-single"),
        pytest.param(10001, "percent", [ShareSpec("a", percent_bp=5000),
                     ShareSpec("b", percent_bp=2500), ShareSpec("c", percent_bp=2500)],
                     [5001, 2500, 2500], id="percent-50-25-25-of-100.01"),
        pytest.param(10000, "percent", [ShareSpec("a", percent_bp=3333),
                     ShareSpec("b", percent_bp=3333), ShareSpec("c", percent_bp=3334)],
                     [3333, 3333, 3334], id="percent-33.33-33.33-33.34"),
        pytest.param(100, "percent", [ShareSpec("a", percent_bp=3333),
                     ShareSpec("b", percent_bp=3333), ShareSpec("c", percent_bp=3334)],
                     [33, 33, 34], id="percent-thirds-of-1.00"),
        pytest.param(5000, "percent", [ShareSpec("a", percent_bp=10000),
                     ShareSpec("b", percent_bp=0)], [5000, 0], id="percent-all-on-one"),
        pytest.param(10000, "shares", [ShareSpec("a", shares=2), ShareSpec("b", shares=1),
                     ShareSpec("c", shares=1)], [5000, 2500, 2500], id="shares-2-1-1"),
        pytest.param(1001, "shares", [ShareSpec("a", shares=2), ShareSpec("b", shares=1),
                     ShareSpec("c", shares=1)], [501, 250, 250], id="shares-2-1-1-odd"),
        pytest.param(101, "shares", [ShareSpec("a", shares=1), ShareSpec("b", shares=0),
                     ShareSpec("c", shares=1)], [51, 0, 50], id="shares-with-a-zero-weight"),
        pytest.param(9000, "adjustment", [ShareSpec("a"), ShareSpec("b"),
                     ShareSpec("c", amount=1500)], [2500, 2500, 4000], id="adjustment-plus"),
        pytest.param(9000, "adjustment", [ShareSpec("a", amount=-1500), ShareSpec("b"),
                     ShareSpec("c")], [2000, 3500, 3500], id="adjustment-minus"),
        pytest.param(10000, "adjustment", [ShareSpec("a", amount=0), ShareSpec("b"),
                     ShareSpec("c")], [3334, 3333, 3333], id="adjustment-none-is-equal"),
        pytest.param(6000, "adjustment", [ShareSpec("a", amount=6000), ShareSpec("b"),
                     ShareSpec("c")], [6000, 0, 0], id="adjustment-takes-everything"),
        pytest.param(1000, "adjustment", [ShareSpec("a", amount=-500), ShareSpec("b"),
                     ShareSpec("c")], [0, 500, 500], id="adjustment-down-to-zero"),
    ],
)  # fmt: skip
def test_worked_examples(
    amount: int, mode: SplitMode, specs: list[ShareSpec], expected: list[int]
) -> None:
    """Each mode gives the shares a person would work out, in the order the users were given."""
    shares = compute_shares(amount, mode, specs)
    assert shares == list(zip([spec.user_id for spec in specs], expected, strict=True))
    assert sum(expected) == amount


@pytest.mark.parametrize("mode", ["equal", "exact", "percent", "shares", "adjustment"])
def test_users_come_back_in_the_order_given(mode: SplitMode) -> None:
    """The result lists the users in the order of the specs, not sorted by id or share."""
    specs = [
        ShareSpec(user_id, amount=share, percent_bp=percent, shares=weight)
        for user_id, share, percent, weight in [
            ("zed", 100, 5000, 5),
            ("amy", 0, 2000, 1),
            ("mo", 200, 3000, 2),
        ]
    ]
    assert [user_id for user_id, _ in compute_shares(300, mode, specs)] == ["zed", "amy", "mo"]


def test_values_a_mode_does_not_use_are_ignored() -> None:
    """An equal split ignores amounts, percents and weights the client happened to send."""
    specs = [
        ShareSpec("a", amount=-5, percent_bp=99_999, shares=-1),
        ShareSpec("b", amount=None, percent_bp=None, shares=None),
    ]
    assert compute_shares(101, "equal", specs) == [("a", 51), ("b", 50)]
    percent_only = [ShareSpec("a", percent_bp=2500, shares=-3), ShareSpec("b", percent_bp=7500)]
    assert compute_shares(400, "percent", percent_only) == [("a", 100), ("b", 300)]


# ── largest remainder ──────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [
        (10, [1, 1, 1], [4, 3, 3]),
        (2, [1, 1, 1], [1, 1, 0]),
        (1, [1, 1], [1, 0]),
        (1, [1, 2], [0, 1]),
        (0, [1, 2], [0, 0]),
        (5, [0, 1], [0, 5]),
        (7, [3], [7]),
        (3, [2, 0, 1, 0], [2, 0, 1, 0]),
        (100, [1, 1, 1, 1, 1, 1, 1], [15, 15, 14, 14, 14, 14, 14]),
    ],
)
def test_largest_remainder_examples(amount: int, weights: list[int], expected: list[int]) -> None:
    """Left-over units go to the largest remainders, earlier positions first on a tie."""
    assert largest_remainder(amount, weights) == expected


@pytest.mark.parametrize(
    ("amount", "weights"),
    [(-1, [1, 1]), (10, [1, -1, 1]), (10, []), (10, [0, 0])],
    ids=["negative-amount", "negative-weight", "no-weights", "zero-total"],
)
def test_largest_remainder_refuses_what_it_cannot_split(amount: int, weights: list[int]) -> None:
    """A negative amount, a negative weight or a zero total weight is a programming error."""
    with pytest.raises(ValueError, match=r"\S"):
        largest_remainder(amount, weights)


@PROPERTY
@given(
    amount=st.integers(min_value=0, max_value=MAX_MONEY),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=60).filter(
        any
    ),
)
def test_largest_remainder_is_exact_and_fair(amount: int, weights: list[int]) -> None:
    """Parts sum to the amount, each is its ideal rounded down or up, only the largest
    remainders (earliest first on ties) are rounded up, and zero weights get nothing."""
    parts = largest_remainder(amount, weights)
    total = sum(weights)
    assert sum(parts) == amount
    ideals = [Fraction(amount * weight, total) for weight in weights]
    assert within_one_unit(parts, ideals)
    floors = [amount * weight // total for weight in weights]
    assert all(part - floor in (0, 1) for part, floor in zip(parts, floors, strict=True))
    assert all(part == 0 for part, weight in zip(parts, weights, strict=True) if weight == 0)
    rank = [(-(amount * weight % total), index) for index, weight in enumerate(weights)]
    rounded_up = [rank[i] for i in range(len(parts)) if parts[i] > floors[i]]
    rounded_down = [rank[i] for i in range(len(parts)) if parts[i] == floors[i]]
    if rounded_up and rounded_down:
        assert max(rounded_up) < min(rounded_down)
    assert largest_remainder(amount, list(weights)) == parts


# ── every mode: sums and fairness ──────────────────────────────────────────────────────


@PROPERTY
@given(amount=money, count=participant_counts)
def test_equal_shares_sum_and_differ_by_at_most_one(amount: int, count: int) -> None:
    """An equal split sums to the amount, each share is within a unit of amount/n, and the
    extra units go to the first participants."""
    specs = [ShareSpec(user_id) for user_id in users(count)]
    parts = parts_of(compute_shares(amount, "equal", specs))
    assert sum(parts) == amount
    assert within_one_unit(parts, [Fraction(amount, count)] * count)
    assert parts == sorted(parts, reverse=True)
    assert max(parts) - min(parts) <= 1
    assert compute_shares(amount, "equal", specs) == compute_shares(amount, "equal", specs)


@PROPERTY
@given(data=st.data(), count=participant_counts)
def test_exact_shares_are_taken_as_given(data: st.DataObject, count: int) -> None:
    """An exact split that adds up returns the given amounts unchanged."""
    given_parts = data.draw(
        st.lists(st.integers(min_value=0, max_value=10**10), min_size=count, max_size=count).filter(
            any
        )
    )
    specs = [
        ShareSpec(user_id, amount=part)
        for user_id, part in zip(users(count), given_parts, strict=True)
    ]
    shares = compute_shares(sum(given_parts), "exact", specs)
    assert shares == list(zip(users(count), given_parts, strict=True))


@PROPERTY
@given(data=st.data(), amount=money, count=participant_counts)
def test_percent_shares_sum_and_stay_within_a_unit(
    data: st.DataObject, amount: int, count: int
) -> None:
    """A percent split sums to the amount and each share is within a unit of amount*bp/10000."""
    weights = data.draw(percent_weights(count))
    specs = [
        ShareSpec(user_id, percent_bp=weight)
        for user_id, weight in zip(users(count), weights, strict=True)
    ]
    parts = parts_of(compute_shares(amount, "percent", specs))
    assert sum(parts) == amount
    assert within_one_unit(parts, [Fraction(amount * weight, 10_000) for weight in weights])
    assert parts_of(compute_shares(amount, "percent", specs)) == parts


@PROPERTY
@given(data=st.data(), amount=money, count=participant_counts)
def test_weighted_shares_sum_and_stay_within_a_unit(
    data: st.DataObject, amount: int, count: int
) -> None:
    """A shares split sums to the amount and each share is within a unit of amount*w/W."""
    weights = data.draw(
        st.lists(st.integers(min_value=0, max_value=1000), min_size=count, max_size=count).filter(
            any
        )
    )
    specs = [
        ShareSpec(user_id, shares=weight)
        for user_id, weight in zip(users(count), weights, strict=True)
    ]
    parts = parts_of(compute_shares(amount, "shares", specs))
    assert sum(parts) == amount
    assert within_one_unit(parts, [Fraction(amount * weight, sum(weights)) for weight in weights])
    assert parts_of(compute_shares(amount, "shares", specs)) == parts


@PROPERTY
@given(data=st.data(), rest=st.integers(min_value=0, max_value=MAX_MONEY), count=participant_counts)
def test_adjusted_shares_sum_and_stay_within_a_unit(
    data: st.DataObject, rest: int, count: int
) -> None:
    """An adjustment split sums to the amount and each share is within a unit of an equal
    part of what the adjustments leave, plus the person's own adjustment."""
    adjustments = data.draw(
        st.lists(
            st.none() | st.integers(min_value=-(rest // count), max_value=10**9),
            min_size=count,
            max_size=count,
        )
    )
    amount = rest + sum(adjustment or 0 for adjustment in adjustments)
    if amount <= 0:
        adjustments[0] = (adjustments[0] or 0) + 1 - amount
        amount = 1
    specs = [
        ShareSpec(user_id, amount=adjustment)
        for user_id, adjustment in zip(users(count), adjustments, strict=True)
    ]
    parts = parts_of(compute_shares(amount, "adjustment", specs))
    assert sum(parts) == amount
    assert all(part >= 0 for part in parts)
    left = amount - sum(adjustment or 0 for adjustment in adjustments)
    ideals = [Fraction(left, count) + (adjustment or 0) for adjustment in adjustments]
    assert within_one_unit(parts, ideals)
    assert parts_of(compute_shares(amount, "adjustment", specs)) == parts


# ── refusals ───────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("amount", "mode", "specs", "field"),
    [
        pytest.param(0, "equal", [ShareSpec("a")], "amount", id="zero-amount"),
        pytest.param(-100, "equal", [ShareSpec("a")], "amount", id="negative-amount"),
        pytest.param(True, "equal", [ShareSpec("a")], "amount", id="boolean-amount"),
        pytest.param(100, "thirds", [ShareSpec("a")], "split.mode", id="unknown-mode"),
        pytest.param(100, "equal", [], "split.shares", id="no-participants"),
        pytest.param(100, "equal", [ShareSpec("a"), ShareSpec("b"), ShareSpec("a")],
                     "split.shares[2].user_id", id="duplicate-user"),
        pytest.param(100, "equal", [ShareSpec("a"), ShareSpec("")],
                     "split.shares[1].user_id", id="empty-user-id"),
        pytest.param(100, "exact", [ShareSpec("a", amount=100), ShareSpec("b")],
                     "split.shares[1].amount", id="exact-missing-amount"),
        pytest.param(100, "exact", [ShareSpec("a", amount=-1), ShareSpec("b", amount=101)],
                     "split.shares[0].amount", id="exact-negative-amount"),
        pytest.param(100, "exact", [ShareSpec("a", amount=True), ShareSpec("b", amount=99)],
                     "split.shares[0].amount", id="exact-boolean-amount"),
        pytest.param(100, "exact", [ShareSpec("a", amount=50), ShareSpec("b", amount=49)],
                     "split.shares", id="exact-short"),
        pytest.param(100, "exact", [ShareSpec("a", amount=50), ShareSpec("b", amount=51)],
                     "split.shares", id="exact-over"),
        pytest.param(100, "percent", [ShareSpec("a", percent_bp=10000), ShareSpec("b")],
                     "split.shares[1].percent_bp", id="percent-missing"),
        pytest.param(100, "percent", [ShareSpec("a", percent_bp=10001),
                     ShareSpec("b", percent_bp=-1)], "split.shares[0].percent_bp",
                     id="percent-over-100"),
        pytest.param(100, "percent", [ShareSpec("a", percent_bp=0),
                     ShareSpec("b", percent_bp=-1)], "split.shares[1].percent_bp",
                     id="percent-negative"),
        pytest.param(100, "percent", [ShareSpec("a", percent_bp=5000),
                     ShareSpec("b", percent_bp=4999)], "split.shares", id="percent-99.99"),
        pytest.param(100, "percent", [ShareSpec("a", percent_bp=5000),
                     ShareSpec("b", percent_bp=5001)], "split.shares", id="percent-100.01"),
        pytest.param(100, "shares", [ShareSpec("a"), ShareSpec("b", shares=1)],
                     "split.shares[0].shares", id="shares-missing"),
        pytest.param(100, "shares", [ShareSpec("a", shares=2), ShareSpec("b", shares=-1)],
                     "split.shares[1].shares", id="shares-negative"),
        pytest.param(100, "shares", [ShareSpec("a", shares=0), ShareSpec("b", shares=0)],
                     "split.shares", id="shares-all-zero"),
        pytest.param(3000, "adjustment", [ShareSpec("a", amount=2000),
                     ShareSpec("b", amount=1001)], "split.shares", id="adjustments-over-amount"),
        pytest.param(600, "adjustment", [ShareSpec("a", amount=-1000), ShareSpec("b"),
                     ShareSpec("c")], "split.shares[0].amount", id="adjustment-negative-share"),
        pytest.param(3000, "adjustment", [ShareSpec("a"), ShareSpec("b", amount=3000),
                     ShareSpec("c", amount=-100)], "split.shares[2].amount",
                     id="adjustment-negative-share-later"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(
    amount: int, mode: str, specs: list[ShareSpec], field: str
) -> None:
    """A split that is malformed or does not add up is refused with the offending field's path."""
    with pytest.raises(InvalidSplit) as caught:
        compute_shares(amount, cast(SplitMode, mode), specs)
    assert field_of(caught) == field
    assert caught.value.details == {"field": field}
    assert caught.value.message


def test_invalid_split_is_an_invalid_domain_error_that_keeps_its_field_across_an_ask() -> None:
    """InvalidSplit has a stable code and category, and a copy rebuilt from a Failure reply
    (as an ask's caller gets it) still names the field."""
    error = InvalidSplit("does not add up", field="split.shares[3].amount")
    assert (error.code, error.category) == ("invalid_split", "invalid")
    assert DomainError.for_code("invalid_split") is InvalidSplit
    again = Failure.of(error).to_error()
    assert isinstance(again, InvalidSplit)
    assert again.field == "split.shares[3].amount"
    assert again.message == "does not add up"


# ── payers ─────────────────────────────────────────────────────────────────────────────


def test_one_or_several_payers_are_returned_in_order() -> None:
    """Payers whose amounts add up to the expense come back as given."""
    assert split_payers(9000, [("amy", 9000)]) == [("amy", 9000)]
    assert split_payers(9000, [("zed", 2000), ("amy", 7000)]) == [("zed", 2000), ("amy", 7000)]


@pytest.mark.parametrize(
    "payers",
    [
        [],
        [("amy", 5000), ("bob", 3999)],
        [("amy", 5000), ("bob", 4001)],
        [("amy", 5000), ("amy", 4000)],
        [("amy", 9000), ("bob", 0)],
        [("amy", 10000), ("bob", -1000)],
        [("", 9000)],
        [("amy", True), ("bob", 8999)],
    ],
    ids=["none", "short", "over", "duplicate", "zero", "negative", "no-user", "boolean"],
)
def test_bad_payers_are_refused_on_paid_by(payers: list[tuple[str, int]]) -> None:
    """Payers that do not add up, repeat, pay nothing or lack an id are refused on paid_by."""
    with pytest.raises(InvalidSplit) as caught:
        split_payers(9000, payers)
    assert field_of(caught) == "paid_by"


# ── expense deltas ─────────────────────────────────────────────────────────────────────


def test_deltas_credit_the_payer_and_debit_the_participants() -> None:
    """A payer in the split is owed what the others owe; a payer outside it is owed it all."""
    shares = compute_shares(9000, "equal", [ShareSpec("amy"), ShareSpec("bob"), ShareSpec("cy")])
    assert expense_deltas([("amy", 9000)], shares) == {"amy": 6000, "bob": -3000, "cy": -3000}
    assert expense_deltas([("dee", 9000)], shares) == {
        "dee": 9000,
        "amy": -3000,
        "bob": -3000,
        "cy": -3000,
    }


def test_deltas_leave_out_users_who_break_even() -> None:
    """Someone who paid exactly their own share has no balance change and is left out."""
    shares = [("amy", 3000), ("bob", 3000), ("cy", 3000)]
    assert expense_deltas([("amy", 3000), ("bob", 6000)], shares) == {"bob": 3000, "cy": -3000}


def test_deltas_refuse_payments_and_shares_that_differ() -> None:
    """Payments and shares of different totals are a programming error, not a balance change."""
    with pytest.raises(ValueError, match="differ"):
        expense_deltas([("amy", 100)], [("amy", 50), ("bob", 49)])


@PROPERTY
@given(data=st.data(), amount=money)
def test_deltas_sum_to_zero(data: st.DataObject, amount: int) -> None:
    """For any payers and any split of the same amount, the deltas sum to zero, none is
    zero, and each is what that user paid minus their share."""
    people = data.draw(st.lists(user_ids, min_size=1, max_size=20, unique=True))
    payer_names = data.draw(
        st.lists(st.sampled_from(people), min_size=1, max_size=len(people), unique=True)
    )
    paid_parts = largest_remainder(amount, [1] * len(payer_names))
    payers = [(name, part) for name, part in zip(payer_names, paid_parts, strict=True) if part]
    participants = data.draw(st.lists(st.sampled_from(people), min_size=1, unique=True))
    weights = data.draw(
        st.lists(
            st.integers(min_value=1, max_value=100),
            min_size=len(participants),
            max_size=len(participants),
        )
    )
    specs = [
        ShareSpec(name, shares=weight) for name, weight in zip(participants, weights, strict=True)
    ]
    shares = compute_shares(amount, "shares", specs)
    deltas = expense_deltas(split_payers(amount, payers), shares)
    assert sum(deltas.values()) == 0
    assert all(delta != 0 for delta in deltas.values())
    paid, owed = dict(payers), dict(shares)
    for name in people:
        assert deltas.get(name, 0) == paid.get(name, 0) - owed.get(name, 0)


# ── settle-up plans ────────────────────────────────────────────────────────────────────


def plan_tuples(balances: Mapping[str, int]) -> list[tuple[str, str, int]]:
    return [(t.from_user_id, t.to_user_id, t.amount) for t in settle_plan(balances)]


@pytest.mark.parametrize(
    ("balances", "expected"),
    [
        pytest.param({}, [], id="nobody"),
        pytest.param({"amy": 0, "bob": 0}, [], id="all-settled"),
        pytest.param({"amy": 500, "bob": -500}, [("bob", "amy", 500)], id="one-debt"),
        pytest.param({"amy": 6000, "bob": -3000, "cy": -3000, "dee": 0},
                     [("bob", "amy", 3000), ("cy", "amy", 3000)], id="one-payer-dinner"),
        pytest.param({"amy": 3000, "bob": 3000, "cy": -6000},
                     [("cy", "amy", 3000), ("cy", "bob", 3000)], id="one-debtor-two-creditors"),
        pytest.param({"amy": 5, "bob": -5, "cy": 3, "dee": -3},
                     [("bob", "amy", 5), ("dee", "cy", 3)], id="two-pairs"),
        pytest.param({"A": 10, "B": 9, "X": -8, "Y": -7, "Z": -4},
                     [("X", "A", 8), ("Y", "B", 7), ("Z", "A", 2), ("Z", "B", 2)],
                     id="largest-first"),
        pytest.param({"A": 3, "C": 5, "B": -5, "D": -3},
                     [("B", "C", 5), ("D", "A", 3)], id="largest-first-finds-the-pairs"),
    ],
)  # fmt: skip
def test_settle_plan_examples(
    balances: dict[str, int], expected: list[tuple[str, str, int]]
) -> None:
    """The largest debtor pays the largest creditor first (ties by user id), and settled
    users take no part."""
    assert plan_tuples(balances) == expected


def test_paying_a_suggested_transfer_leaves_the_rest_of_the_plan() -> None:
    """Where a fresh largest-first plan would reshuffle everyone after Z pays A, the kept
    plan shows the rest unchanged."""
    balances = {"A": 10, "B": 9, "X": -8, "Y": -7, "Z": -4}
    plan = settle_plan(balances)
    after = apply_transfers(balances, [PlannedTransfer(from_user_id="Z", to_user_id="A", amount=2)])
    assert settle_plan(after) != plan[:2] + plan[3:]
    kept = plan_after_payment(plan, "Z", "A", 2)
    assert settle_plan(after, kept) == plan[:2] + plan[3:]


def test_a_partial_payment_shrinks_its_suggestion() -> None:
    """Paying part of a suggested transfer leaves it in the plan with the rest to pay."""
    balances = {"amy": 500, "bob": -500}
    plan = settle_plan(balances)
    kept = plan_after_payment(plan, "bob", "amy", 200)
    after = apply_transfers(
        balances, [PlannedTransfer(from_user_id="bob", to_user_id="amy", amount=200)]
    )
    assert settle_plan(after, kept) == [
        PlannedTransfer(from_user_id="bob", to_user_id="amy", amount=300)
    ]


def test_a_new_expense_makes_a_fresh_plan() -> None:
    """A kept plan that no longer settles the balances is replaced by a fresh one."""
    plan = settle_plan({"amy": 500, "bob": -500})
    assert settle_plan({"amy": 500, "bob": -300, "cy": -200}, plan) == [
        PlannedTransfer(from_user_id="bob", to_user_id="amy", amount=300),
        PlannedTransfer(from_user_id="cy", to_user_id="amy", amount=200),
    ]


def test_settle_plan_refuses_balances_that_do_not_sum_to_zero() -> None:
    """Balances that do not cancel out cannot be settled and are a programming error."""
    with pytest.raises(ValueError, match="sum to zero"):
        settle_plan({"amy": 500, "bob": -499})


@PROPERTY
@given(balances=zero_sum_balances())
def test_settle_plan_zeroes_every_balance_with_few_positive_transfers(
    balances: dict[str, int],
) -> None:
    """Paying the whole plan zeroes every balance, with at most n-1 positive transfers that
    only ever go from a debtor to a creditor."""
    plan = settle_plan(balances)
    assert all(value == 0 for value in apply_transfers(balances, plan).values())
    non_zero = sum(1 for value in balances.values() if value)
    assert len(plan) <= max(non_zero - 1, 0)
    for transfer in plan:
        assert transfer.amount > 0
        assert balances[transfer.from_user_id] < 0 < balances[transfer.to_user_id]
    pairs = [(t.from_user_id, t.to_user_id) for t in plan]
    assert len(pairs) == len(set(pairs))


@PROPERTY
@given(balances=zero_sum_balances(), data=st.data())
def test_settle_plan_is_deterministic(balances: dict[str, int], data: st.DataObject) -> None:
    """The same balances give the same plan, whatever order the mapping lists them in."""
    shuffled = data.draw(st.permutations(list(balances.items())))
    assert settle_plan(dict(shuffled)) == settle_plan(balances)


@PROPERTY
@given(balances=zero_sum_balances())
def test_paying_any_suggested_transfer_leaves_the_rest_of_the_plan(
    balances: dict[str, int],
) -> None:
    """After any one suggested transfer is paid, the new plan is the old one without it."""
    plan = settle_plan(balances)
    for index, transfer in enumerate(plan):
        after = apply_transfers(balances, [transfer])
        kept = plan_after_payment(plan, transfer.from_user_id, transfer.to_user_id, transfer.amount)
        assert settle_plan(after, kept) == plan[:index] + plan[index + 1 :]


@PROPERTY
@given(balances=zero_sum_balances(), data=st.data())
def test_paying_suggested_transfers_in_any_order_keeps_the_plan(
    balances: dict[str, int], data: st.DataObject
) -> None:
    """Paying suggested transfers one by one in any order leaves, each time, exactly the
    ones not yet paid."""
    plan = settle_plan(balances)
    order = data.draw(st.permutations(range(len(plan))))
    paid: set[int] = set()
    current = dict(balances)
    kept = plan
    for index in order:
        transfer = plan[index]
        current = apply_transfers(current, [transfer])
        kept = plan_after_payment(kept, transfer.from_user_id, transfer.to_user_id, transfer.amount)
        paid.add(index)
        kept = settle_plan(current, kept)
        assert kept == [t for i, t in enumerate(plan) if i not in paid]
