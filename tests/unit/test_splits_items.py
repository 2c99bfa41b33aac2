"""Itemized bills: a restaurant bill worked by hand, the refusals, and hypothesis properties
(exact sums, no negative share, tax and tip within a unit of their proportion, item order)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.payments.messages import MAX_AMOUNT
from actors.runtime import DomainError
from actors.splits.errors import InvalidExpense
from actors.splits.items import (
    ItemizedSplit,
    ItemSpec,
    split_items,
    spread_extra,
)
from actors.splits.messages import MAX_ITEMS
from actors.splits.shares import InvalidSplit, ShareSpec, SplitMode, compute_shares

# as many examples as the suite's Hypothesis profile asks (tests/conftest.py)
PROPERTY = settings(deadline=None)
PEOPLE = ("ann", "ben", "cat", "dan", "eve")
MODES: tuple[SplitMode, ...] = ("equal", "exact", "percent", "shares", "adjustment")


S = ShareSpec  # short, so a bill reads like a receipt


def restaurant() -> list[ItemSpec]:
    """Alice and Bob share a pizza, Alice has the salad, the wine is a third hers."""
    return [
        ItemSpec("Pizza", 1990, "equal", (S("alice"), S("bob"))),
        ItemSpec("Salad", 890, "exact", (S("alice", amount=890), S("bob", amount=0))),
        ItemSpec("Wine", 3090, "shares", (S("alice", shares=1), S("bob", shares=2))),
    ]


def per_person(result: ItemizedSplit) -> dict[str, int]:
    return dict(result.shares)


# ── strategies ─────────────────────────────────────────────────────────────────────────


def cut(draw: st.DrawFn, whole: int, count: int) -> list[int]:
    """`count` parts >= 0 that sum to `whole`, drawn as cut points."""
    points = sorted(draw(st.lists(st.integers(0, whole), min_size=count - 1, max_size=count - 1)))
    return [b - a for a, b in zip([0, *points], [*points, whole], strict=True)]


@st.composite
def items(draw: st.DrawFn) -> ItemSpec:
    """A valid item of any mode among some of PEOPLE."""
    amount = draw(st.one_of(st.integers(1, 100), st.integers(1, 10**7)))
    mode = draw(st.sampled_from(MODES))
    group = draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=len(PEOPLE), unique=True))
    count = len(group)
    if mode == "equal":
        specs = [S(user) for user in group]
    elif mode == "exact":
        specs = [S(u, amount=a) for u, a in zip(group, cut(draw, amount, count), strict=True)]
    elif mode == "percent":
        specs = [S(u, percent_bp=p) for u, p in zip(group, cut(draw, 10_000, count), strict=True)]
    elif mode == "shares":
        weights = draw(st.lists(st.integers(0, 5), min_size=count, max_size=count))
        weights[0] = weights[0] or 1
        specs = [S(u, shares=w) for u, w in zip(group, weights, strict=True)]
    else:
        # non-negative adjustments within the amount always leave every share >= 0
        given_out = cut(draw, draw(st.integers(0, amount)), count)
        specs = [S(u) if a == 0 else S(u, amount=a) for u, a in zip(group, given_out, strict=True)]
    description = draw(st.sampled_from(["Pizza", "Salad", "Wine", "Bread"]))
    return ItemSpec(description, amount, mode, tuple(specs))


bills = st.lists(items(), min_size=1, max_size=12)
extras = st.one_of(st.integers(0, 50), st.integers(0, 10**6))
spreads = st.sampled_from(["proportional", "equal"])


def ideal_extras(amounts: Sequence[int], extra: int, spread: str) -> list[Fraction]:
    if spread == "equal":
        return [Fraction(extra, len(amounts))] * len(amounts)
    return [Fraction(extra * amount, sum(amounts)) for amount in amounts]


# ── properties ─────────────────────────────────────────────────────────────────────────


@PROPERTY
@given(bill=bills, tax=extras, tip=extras, spread=spreads)
def test_every_sum_is_exact_and_no_share_is_negative(
    bill: list[ItemSpec], tax: int, tip: int, spread: str
) -> None:
    """The extras sum to tax + tip, each item's shares to its adjusted amount, and the
    expense's shares to items + tax + tip; no share is negative."""
    total = sum(item.amount for item in bill) + tax + tip
    result = split_items(bill, tax=tax, tip=tip, spread=spread, amount=total)
    assert result.total == total
    assert sum(share for _, share in result.shares) == total
    assert sum(priced.extra for priced in result.items) == tax + tip
    for item, priced in zip(bill, result.items, strict=True):
        assert (priced.description, priced.amount) == (item.description, item.amount)
        assert priced.adjusted == item.amount + priced.extra
        assert sum(share for _, share in priced.shares) == priced.adjusted
        assert [user for user, _ in priced.shares] == [spec.user_id for spec in item.shares]
    assert all(share >= 0 for _, share in result.shares)
    assert all(share >= 0 for priced in result.items for _, share in priced.shares)
    assert len({user for user, _ in result.shares}) == len(result.shares)


@PROPERTY
@given(bill=bills, tax=extras, tip=extras, spread=spreads)
def test_tax_and_tip_parts_are_within_one_unit_of_their_exact_proportion(
    bill: list[ItemSpec], tax: int, tip: int, spread: str
) -> None:
    """Each item's part of tax and tip differs from its exact proportional (or equal) part
    by less than one minor unit."""
    result = split_items(bill, tax=tax, tip=tip, spread=spread)
    ideals = ideal_extras([item.amount for item in bill], tax + tip, spread)
    for priced, ideal in zip(result.items, ideals, strict=True):
        assert abs(priced.extra - ideal) < 1


@PROPERTY
@given(bill=bills, tax=extras, tip=extras, spread=spreads, data=st.data())
def test_the_order_of_the_items_changes_nobodys_share(
    bill: list[ItemSpec], tax: int, tip: int, spread: str, data: st.DataObject
) -> None:
    """Listing the same items in another order gives every person the same total, and every
    item the same pricing."""
    shuffled = data.draw(st.permutations(bill))
    first = split_items(bill, tax=tax, tip=tip, spread=spread)
    again = split_items(shuffled, tax=tax, tip=tip, spread=spread)
    assert per_person(again) == per_person(first)
    assert sorted(again.items, key=repr) == sorted(first.items, key=repr)


@PROPERTY
@given(bill=bills, tax=extras, tip=extras)
def test_money_modes_keep_the_typed_amounts_and_share_the_extra_in_proportion(
    bill: list[ItemSpec], tax: int, tip: int
) -> None:
    """In exact and adjustment items each person keeps their split of the item's own amount
    and gets within a unit of the item's extra in proportion to it."""
    result = split_items(bill, tax=tax, tip=tip)
    for item, priced in zip(bill, result.items, strict=True):
        if item.mode not in ("exact", "adjustment"):
            continue
        base = compute_shares(item.amount, item.mode, item.shares)
        for (user, share), (same_user, own) in zip(priced.shares, base, strict=True):
            assert user == same_user
            assert abs(share - own - Fraction(priced.extra * own, item.amount)) < 1


@PROPERTY
@given(
    amounts=st.lists(st.integers(1, 10**9), min_size=1, max_size=50),
    extra=st.integers(0, 10**9),
    spread=spreads,
)
def test_spread_extra_sums_exactly_within_a_unit_of_the_ideal(
    amounts: list[int], extra: int, spread: str
) -> None:
    """Spreading an extra over amounts sums to it exactly, each part within a unit of its
    exact share and never negative."""
    parts = spread_extra(amounts, extra, spread)
    assert sum(parts) == extra
    assert all(part >= 0 for part in parts)
    for part, ideal in zip(parts, ideal_extras(amounts, extra, spread), strict=True):
        assert abs(part - ideal) < 1


# ── examples ───────────────────────────────────────────────────────────────────────────


def test_a_restaurant_bill_with_tax_and_tip_spread_in_proportion() -> None:
    """A 59.70 bill for two with 10 % tax (5.97) and a 9.00 tip: the 14.97 surcharge goes
    to the items by their amounts and the people owe 36.46 and 38.21, 74.67 in all."""
    result = split_items(restaurant(), tax=597, tip=900, amount=7467)
    # 1497 * 1990/5970 = 499 exactly; * 890/5970 = 223.17; * 3090/5970 = 774.82 (gets the unit)
    assert [(p.extra, p.adjusted) for p in result.items] == [(499, 2489), (223, 1113), (775, 3865)]
    # the pizza's odd unit goes to the first of an equal split; the wine's 3865 in thirds
    # is 1288.33 and 2576.67, so Bob's larger remainder takes the unit
    assert [p.shares for p in result.items] == [
        (("alice", 1245), ("bob", 1244)),
        (("alice", 1113), ("bob", 0)),
        (("alice", 1288), ("bob", 2577)),
    ]
    assert result.shares == (("alice", 3646), ("bob", 3821))
    assert (result.tax, result.tip, result.total) == (597, 900, 7467)


def test_a_restaurant_bill_with_tax_and_tip_spread_equally() -> None:
    """Spread equally, each of the three items takes a third of the 14.97 surcharge."""
    result = split_items(restaurant(), tax=597, tip=900, spread="equal")
    assert [p.extra for p in result.items] == [499, 499, 499]
    assert result.shares == (("alice", 3830), ("bob", 3637))


def test_equal_spread_gives_the_left_over_units_to_the_larger_items() -> None:
    """Two units left over when spreading equally go to the two largest items, wherever
    they are listed."""
    bill = [
        ItemSpec("Tea", 300, "equal", (S("ann"),)),
        ItemSpec("Cake", 900, "equal", (S("ben"),)),
        ItemSpec("Soup", 600, "equal", (S("cat"),)),
    ]
    result = split_items(bill, tip=5, spread="equal")
    assert [p.extra for p in result.items] == [1, 2, 2]
    assert per_person(result) == {"ann": 301, "ben": 902, "cat": 602}


def test_a_tie_in_the_remainders_does_not_depend_on_the_order() -> None:
    """Two equal items split one unit of tax by what they are, not where they stand."""
    beer = ItemSpec("Beer", 500, "equal", (S("ann"),))
    wine = ItemSpec("Wine", 500, "equal", (S("ben"),))
    first = split_items([beer, wine], tax=1)
    second = split_items([wine, beer], tax=1)
    assert per_person(first) == per_person(second) == {"ann": 501, "ben": 500}


def test_without_tax_or_tip_each_item_splits_as_a_plain_expense() -> None:
    """With no tax or tip an item's shares are exactly those of an expense of its amount."""
    specs = (S("ann", percent_bp=3333), S("ben", percent_bp=3333), S("cat", percent_bp=3334))
    result = split_items([ItemSpec("Taxi", 1000, "percent", specs)])
    assert result.items[0].shares == tuple(compute_shares(1000, "percent", specs))
    assert result.items[0].extra == 0
    assert result.total == 1000


def test_an_adjustment_item_applies_its_adjustments_before_tax() -> None:
    """An adjustment item splits its own amount (with signed adjustments) and spreads its
    tax in proportion to the result."""
    specs = (S("ann", amount=300), S("ben", amount=-300))
    result = split_items([ItemSpec("Room", 1000, "adjustment", specs)], tax=100)
    # own amount: 500 + 300 = 800 and 500 - 300 = 200; tax 100 goes 80 and 20
    assert result.items[0].shares == (("ann", 880), ("ben", 220))


def test_the_most_items_are_accepted() -> None:
    """A bill of exactly MAX_ITEMS one-unit items with a tax is priced."""
    bill = [ItemSpec(f"Item {n}", 1, "equal", (S(PEOPLE[n % 5]),)) for n in range(MAX_ITEMS)]
    result = split_items(bill, tax=7)
    assert result.total == MAX_ITEMS + 7
    assert sum(per_person(result).values()) == MAX_ITEMS + 7


# ── refusals ───────────────────────────────────────────────────────────────────────────


def one(amount: int = 1000, mode: str = "equal", *specs: ShareSpec) -> ItemSpec:
    return ItemSpec("Lunch", amount, mode, specs or (S("ann"),))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bill", "kwargs", "field"),
    [
        pytest.param([], {}, "$.items", id="no-items"),
        pytest.param([one()] * (MAX_ITEMS + 1), {}, "$.items", id="too-many-items"),
        pytest.param([one(), one(0)], {}, "$.items[1].amount", id="zero-amount"),
        pytest.param([one(-5)], {}, "$.items[0].amount", id="negative-amount"),
        pytest.param([one(True)], {}, "$.items[0].amount", id="boolean-amount"),
        pytest.param([one(MAX_AMOUNT + 1)], {}, "$.items[0].amount", id="amount-too-large"),
        pytest.param([one(), ItemSpec("  ", 5, "equal", (S("a"),))], {},
                     "$.items[1].description", id="blank-description"),
        pytest.param([one()], {"tax": -1}, "$.tax", id="negative-tax"),
        pytest.param([one()], {"tip": -1}, "$.tip", id="negative-tip"),
        pytest.param([one()], {"spread": "by-weight"}, "$.spread", id="unknown-spread"),
        pytest.param([one(MAX_AMOUNT)], {"tip": 1}, "$.items", id="total-too-large"),
        pytest.param([one(1000)], {"tax": 100, "amount": 1000}, "$.amount", id="doesnt-add-up"),
    ],
)  # fmt: skip
def test_bill_refusals_name_the_field(
    bill: list[ItemSpec], kwargs: dict[str, object], field: str
) -> None:
    """A bill with no, too many or bad items, a negative tax or tip, an unknown spread or a
    declared amount that is not its sum is refused as invalid_expense naming the field."""
    with pytest.raises(InvalidExpense) as caught:
        split_items(bill, **kwargs)  # type: ignore[arg-type]
    assert caught.value.details == {"field": field}
    assert caught.value.code == "invalid_expense"
    assert caught.value.message


def test_items_that_dont_add_up_say_both_numbers() -> None:
    """A declared amount that is not items + tax + tip names both sums."""
    with pytest.raises(InvalidExpense) as caught:
        split_items([one(1000), one(500)], tax=150, tip=200, amount=1800)
    assert "don't add up" in caught.value.message
    assert "1850" in caught.value.message
    assert "1800" in caught.value.message


@pytest.mark.parametrize(
    ("item", "field"),
    [
        pytest.param(one(100, "thirds"), "$.items[1].split.mode", id="unknown-mode"),
        pytest.param(ItemSpec("Lunch", 100, "equal", ()), "$.items[1].split.shares",
                     id="no-participants"),
        pytest.param(one(100, "equal", S("a"), S("a")), "$.items[1].split.shares[1].user_id",
                     id="duplicate-user"),
        pytest.param(one(100, "exact", S("a", amount=60), S("b", amount=30)),
                     "$.items[1].split.shares", id="exact-short"),
        pytest.param(one(100, "percent", S("a", percent_bp=10_000), S("b")),
                     "$.items[1].split.shares[1].percent_bp", id="percent-missing"),
        pytest.param(one(100, "shares", S("a", shares=0)), "$.items[1].split.shares",
                     id="shares-all-zero"),
        pytest.param(one(100, "adjustment", S("a", amount=-200), S("b")),
                     "$.items[1].split.shares[0].amount", id="adjustment-negative-share"),
    ],
)  # fmt: skip
def test_an_items_bad_split_is_refused_under_its_path(item: ItemSpec, field: str) -> None:
    """An item whose split is invalid gets shares.py's refusal, its field under the item."""
    with pytest.raises(InvalidSplit) as caught:
        split_items([one(), item, one()], tax=10)
    assert caught.value.field == field
    assert caught.value.details == {"field": field}
    assert caught.value.code == "invalid_split"


def test_an_exact_item_that_doesnt_add_up_names_the_items_amount() -> None:
    """Exact amounts are checked against the item's own amount, and the refusal says so."""
    with pytest.raises(InvalidSplit) as caught:
        split_items([one(100, "exact", S("a", amount=60), S("b", amount=30))], tip=50)
    assert caught.value.message == "the exact amounts add up to 90, not the item's amount 100"


def test_the_refusals_are_domain_errors_found_by_their_code() -> None:
    """Both refusals are invalid-category domain errors an ask's caller can raise again."""
    assert DomainError.for_code("invalid_expense") is InvalidExpense
    assert DomainError.for_code("invalid_split") is InvalidSplit
    assert InvalidExpense.category == InvalidSplit.category == "invalid"


def test_spread_extra_refuses_an_unknown_spread() -> None:
    """spread_extra is called only with a checked spread; anything else is a ValueError."""
    with pytest.raises(ValueError, match="unknown spread"):
        spread_extra([100], 5, "sideways")
