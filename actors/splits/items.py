"""Itemized bills: each item split its own way, tax and tip spread over the items, and the
expense's shares derived from them, exact to the minor unit. Pure functions, no IO.

An itemized expense's amount is the sum of its items plus tax plus tip. The tax and tip
(one surcharge) are spread over the items in proportion to their amounts, or equally,
by the largest remainder; each item is then split among its people; each person's share
of the expense is the sum of their shares of the items. Every step hands out its
remainder deterministically, so each set of parts adds up to its whole exactly, and the
same bill always gives the same shares whatever order its items are listed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from actors.payments.messages import MAX_AMOUNT
from actors.splits import rules
from actors.splits.errors import InvalidExpense
from actors.splits.messages import MAX_ITEMS
from actors.splits.shares import (
    InvalidSplit,
    ShareSpec,
    SplitMode,
    compute_shares,
    largest_remainder,
)

Spread = Literal["proportional", "equal"]
SPREADS: tuple[Spread, ...] = ("proportional", "equal")

# Modes whose values are sums of money in the item's own amount, before tax and tip: the
# person who typed "my part of the 12.00 wine is 8.00" cannot know what tax adds to it.
# Those are split on the item's own amount, and its part of tax and tip follows the
# shares; the other modes are ratios, split on the item's amount with tax and tip.
_MONEY_MODES = frozenset({"exact", "adjustment"})


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One line of an itemized bill as the client sent it (its `split` object as a mode
    and share lines, as for a whole expense)."""

    description: str
    amount: int
    mode: SplitMode
    shares: tuple[ShareSpec, ...]


@dataclass(frozen=True, slots=True)
class PricedItem:
    """One item once priced: its own `amount`, its part `extra` of tax and tip, the
    `adjusted` amount (the two together) and who owes what of it (summing to `adjusted`)."""

    description: str
    amount: int
    extra: int
    adjusted: int
    shares: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ItemizedSplit:
    """A priced itemized bill: the items in the order given, and the expense's shares
    (each person once, in order of first appearance) summing exactly to `total`."""

    items: tuple[PricedItem, ...]
    tax: int
    tip: int
    total: int
    shares: tuple[tuple[str, int], ...]


def split_items(
    items: Sequence[ItemSpec],
    *,
    tax: int = 0,
    tip: int = 0,
    spread: str = "proportional",
    amount: int | None = None,
) -> ItemizedSplit:
    """Price an itemized bill and derive the expense's shares.

    `tax` and `tip` (minor units, >= 0) are spread over the items `proportional`ly to
    their amounts or `equal`ly, by the largest remainder; ties in the remainders go to the
    larger item first (then by description and split), never by position, so reordering
    the items changes nobody's share. An item in the `equal`, `percent` or `shares` mode is
    split on its adjusted amount; in `exact` or `adjustment` the values are in the item's
    own amount (they add up to it) and its part of tax and tip goes in proportion to the
    shares. `amount`, when given, is the expense amount the client declared: it must equal
    items + tax + tip.

    Raises InvalidExpense (`$.items`, `$.items[i].amount`, `$.items[i].description`,
    `$.tax`, `$.tip`, `$.spread`, `$.amount`) or InvalidSplit (`$.items[i].split.mode`,
    `$.items[i].split.shares[j].<name>`, ...) naming the first offending field.
    """
    _check_bill(items, tax, tip, spread)
    subtotal = sum(item.amount for item in items)
    total = subtotal + tax + tip
    if total > MAX_AMOUNT:
        raise rules.invalid(
            "$.items", f"the items, tax and tip make {total}, more than {MAX_AMOUNT}"
        )
    if amount is not None and amount != total:
        raise rules.invalid(
            "$.amount",
            f"the items don't add up: items {subtotal} + tax {tax} + tip {tip} make {total},"
            f" not the amount {amount}",
        )
    extras = spread_extra(
        [item.amount for item in items], tax + tip, spread, keys=[_tie_key(i) for i in items]
    )
    priced = tuple(
        _price_item(index, item, extra)
        for index, (item, extra) in enumerate(zip(items, extras, strict=True))
    )
    return ItemizedSplit(
        items=priced, tax=tax, tip=tip, total=total, shares=tuple(_summed(priced).items())
    )


def spread_extra(
    amounts: Sequence[int],
    extra: int,
    spread: str = "proportional",
    *,
    keys: Sequence[tuple[object, ...]] | None = None,
) -> list[int]:
    """Split `extra` (>= 0) over items of `amounts` (each > 0): in proportion to the amounts
    or equally; the parts sum to `extra` exactly, each within one unit of its exact share.

    Left-over units go to the largest remainders; equal remainders are ordered by `keys`
    (one sortable key per item; by default the amount, larger first), earlier key first,
    so the result does not depend on the items' order. Raises ValueError on an unknown
    spread.
    """
    if spread not in SPREADS:
        raise ValueError(f"unknown spread {spread!r}")
    order_keys = keys if keys is not None else [(-amount,) for amount in amounts]
    # largest_remainder breaks ties by position: hand it the items in key order
    order = sorted(range(len(amounts)), key=lambda index: order_keys[index])
    weights = [amounts[index] if spread == "proportional" else 1 for index in order]
    parts = largest_remainder(extra, weights)
    result = [0] * len(amounts)
    for position, index in enumerate(order):
        result[index] = parts[position]
    return result


# ── the steps ──────────────────────────────────────────────────────────────────────────


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True is not a sum of money.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bill(items: Sequence[ItemSpec], tax: int, tip: int, spread: str) -> None:
    """Refuse a bill with no items, too many, a bad item amount or description, a
    negative tax or tip or an unknown spread."""
    if not items:
        raise rules.invalid("$.items", "an itemized expense needs at least one item")
    if len(items) > MAX_ITEMS:
        raise rules.invalid(
            "$.items", f"an expense has at most {MAX_ITEMS} items, not {len(items)}"
        )
    for index, item in enumerate(items):
        field = f"$.items[{index}].amount"
        if not _is_int(item.amount) or not 0 < item.amount <= MAX_AMOUNT:
            raise rules.invalid(
                field, f"an item's amount must be a whole number of minor units, 1 to {MAX_AMOUNT}"
            )
        try:
            rules.description(item.description)
        except InvalidExpense as error:
            raise rules.invalid(f"$.items[{index}].description", error.message) from None
    for name, value in (("tax", tax), ("tip", tip)):
        if not _is_int(value) or not 0 <= value <= MAX_AMOUNT:
            raise rules.invalid(
                f"$.{name}", f"{name} must be a whole number of minor units, 0 to {MAX_AMOUNT}"
            )
    if spread not in SPREADS:
        raise rules.invalid(
            "$.spread", f"unknown spread {spread!r}; use one of {', '.join(SPREADS)}"
        )


def _tie_key(item: ItemSpec) -> tuple[object, ...]:
    """A key that orders items by what they are, never where they are listed: two items
    with the same key are the same item, so which of them gets a unit changes nothing."""
    lines = tuple(
        (spec.user_id, *(_sortable(value) for value in (spec.amount, spec.percent_bp, spec.shares)))
        for spec in item.shares
    )
    return (-item.amount, item.description, str(item.mode), lines)


def _sortable(value: int | None) -> tuple[int, int]:
    # None sorts before every number, and never meets one in a comparison
    return (0, 0) if value is None else (1, value)


def _price_item(index: int, item: ItemSpec, extra: int) -> PricedItem:
    """The item's shares of its amount plus `extra`; a split refusal names the item."""
    adjusted = item.amount + extra
    try:
        if item.mode in _MONEY_MODES:
            base = compute_shares(item.amount, item.mode, item.shares)
            # a valid split of a positive amount has a positive share, so the weights sum > 0
            parts = largest_remainder(extra, [share for _, share in base])
            shares = tuple(
                (user, share + part) for (user, share), part in zip(base, parts, strict=True)
            )
        else:
            shares = tuple(compute_shares(adjusted, item.mode, item.shares))
    except InvalidSplit as error:
        raise _for_item(index, error) from None
    return PricedItem(
        description=item.description,
        amount=item.amount,
        extra=extra,
        adjusted=adjusted,
        shares=shares,
    )


def _for_item(index: int, error: InvalidSplit) -> InvalidSplit:
    """shares.py's refusal, its field under the item (`$.items[2].split.shares[0].amount`)."""
    field = error.field
    path = f"$.items[{index}].{field}" if field else f"$.items[{index}]"
    # shares.py speaks of the expense; here the amounts add up to an item
    message = error.message.replace("the expense amount", "the item's amount")
    return InvalidSplit(message, field=path)


def _summed(items: Sequence[PricedItem]) -> dict[str, int]:
    """Each person's total over the items, in order of first appearance."""
    totals: dict[str, int] = {}
    for item in items:
        for user, share in item.shares:
            totals[user] = totals.get(user, 0) + share
    return totals
