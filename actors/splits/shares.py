"""Split arithmetic and debt simplifying: pure functions on integer minor units, no IO.

Every split hands out its remainder deterministically, so the parts add up to the whole
exactly and the same input always gives the same parts. Percents are basis points
(10000 == 100 %), never floats. An amount in another currency than its group's is
converted at a decimal rate (`conversion`), and its lines in proportion so they sum to the
converted amount exactly (`converted_lines`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Literal

from actors.payments.messages import MAX_AMOUNT, exponent_of
from actors.rates.messages import MAX_RATE, MIN_RATE, convert, format_rate, parse_rate
from actors.runtime import DomainError
from actors.splits.errors import InvalidExpense

SplitMode = Literal["equal", "exact", "percent", "shares", "adjustment"]

FULL_PERCENT_BP = 10_000


class InvalidSplit(DomainError):
    """The split does not add up or names bad values; `field` is the offending input's path."""

    code = "invalid_split"
    category = "invalid"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, details={"field": field})

    @property
    def field(self) -> str:
        """The path of the offending input, such as `split.shares[2].amount`."""
        # Read from details, not an attribute set in __init__: an error re-raised at an
        # ask's caller is rebuilt from its code and details without calling __init__.
        return str(self.details.get("field", ""))


@dataclass(frozen=True, slots=True)
class ShareSpec:
    """One participant line of a split as the client sent it.

    Only the value the mode uses matters: `amount` for `exact` (the share) and for
    `adjustment` (a signed adjustment, None meaning 0), `percent_bp` for `percent`,
    `shares` for `shares`; `equal` uses none.
    """

    user_id: str
    amount: int | None = None
    percent_bp: int | None = None
    shares: int | None = None


@dataclass(frozen=True, slots=True)
class PlannedTransfer:
    """One suggested payment of a settle-up plan: `from_user_id` pays `to_user_id`."""

    from_user_id: str
    to_user_id: str
    amount: int


def largest_remainder(amount: int, weights: Sequence[int]) -> list[int]:
    """Distribute `amount` (>= 0) over integer `weights` (each >= 0, sum > 0) exactly.

    Each part is floor(amount * w / W); the units left over go one each to the parts with
    the largest remainders, earlier positions first on equal remainders. Raises ValueError
    on a negative amount, a negative weight or weights that sum to zero.
    """
    if amount < 0:
        raise ValueError(f"amount must be >= 0, got {amount}")
    if any(weight < 0 for weight in weights):
        raise ValueError("weights must be >= 0")
    total = sum(weights)
    if total <= 0:
        raise ValueError("weights must sum to more than zero")
    parts: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        part, remainder = divmod(amount * weight, total)
        parts.append(part)
        remainders.append(remainder)
    left_over = amount - sum(parts)
    # left_over < the number of non-zero remainders, so a zero weight never gets a unit.
    for index in sorted(range(len(parts)), key=lambda i: (-remainders[i], i))[:left_over]:
        parts[index] += 1
    return parts


def compute_shares(
    amount: int, mode: SplitMode, specs: Sequence[ShareSpec]
) -> list[tuple[str, int]]:
    """Return `[(user_id, share)]` in the order given; the shares sum exactly to `amount`.

    - equal: the same share each; the first participants get the left-over units.
    - exact: every `amount` is given (>= 0) and they sum to the expense amount.
    - percent: every `percent_bp` is given (0..10000) and they sum to 10000.
    - shares: every `shares` weight is given (>= 0) and at least one is positive.
    - adjustment: each `amount` is an optional signed adjustment; what is left after the
      adjustments is split equally and each adjustment added back; no share may go negative.

    Raises InvalidSplit naming the field (`amount`, `split.mode`, `split.shares`,
    `split.shares[i].<name>`) when anything is missing, out of range or does not add up.
    """
    splitter = _SPLITTERS.get(mode)
    if splitter is None:
        raise InvalidSplit(
            f"unknown split mode {mode!r}; use one of {', '.join(_SPLITTERS)}",
            field="split.mode",
        )
    if not _is_int(amount) or amount <= 0:
        raise InvalidSplit("the amount must be a positive number of minor units", field="amount")
    if not specs:
        raise InvalidSplit("a split needs at least one participant", field="split.shares")
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        field = f"split.shares[{index}].user_id"
        if not isinstance(spec.user_id, str) or not spec.user_id:
            raise InvalidSplit("every participant needs a user id", field=field)
        if spec.user_id in seen:
            raise InvalidSplit(f"{spec.user_id} appears more than once in the split", field=field)
        seen.add(spec.user_id)
    parts = splitter(amount, specs)
    return [(spec.user_id, part) for spec, part in zip(specs, parts, strict=True)]


def split_payers(amount: int, payers: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Check the people who paid an expense and return them in order.

    Each needs a user id and a positive amount, none may appear twice and the amounts must
    sum to the expense amount; otherwise InvalidSplit with field `paid_by`.
    """
    if not payers:
        raise InvalidSplit("an expense needs at least one payer", field="paid_by")
    seen: set[str] = set()
    for user_id, paid in payers:
        if not isinstance(user_id, str) or not user_id:
            raise InvalidSplit("every payer needs a user id", field="paid_by")
        if user_id in seen:
            raise InvalidSplit(f"{user_id} appears more than once as a payer", field="paid_by")
        seen.add(user_id)
        if not _is_int(paid) or paid <= 0:
            raise InvalidSplit(f"{user_id} must have paid a positive amount", field="paid_by")
    total = sum(paid for _, paid in payers)
    if total != amount:
        raise InvalidSplit(
            f"the payers paid {total} in all, not the expense amount {amount}", field="paid_by"
        )
    return [(user_id, paid) for user_id, paid in payers]


def expense_deltas(
    payers: Sequence[tuple[str, int]], shares: Sequence[tuple[str, int]]
) -> dict[str, int]:
    """Net balance change per user for one expense: what they paid minus their share.

    The values sum to zero; users whose change is zero are left out. Raises ValueError when
    the payments and the shares do not add up to the same amount.
    """
    paid_total = sum(paid for _, paid in payers)
    share_total = sum(share for _, share in shares)
    if paid_total != share_total:
        raise ValueError(f"payments ({paid_total}) and shares ({share_total}) differ")
    deltas: dict[str, int] = {}
    for user_id, paid in payers:
        deltas[user_id] = deltas.get(user_id, 0) + paid
    for user_id, share in shares:
        deltas[user_id] = deltas.get(user_id, 0) - share
    return {user_id: delta for user_id, delta in deltas.items() if delta != 0}


def settle_plan(
    balances: Mapping[str, int], previous: Sequence[PlannedTransfer] = ()
) -> list[PlannedTransfer]:
    """Suggest transfers that zero every balance: net > 0 is owed to that user, < 0 owes.

    A fresh plan is greedy: the largest debtor pays the largest creditor min(debt, credit),
    ties broken by user id, until everyone is at zero. Every transfer zeroes at least one
    person, so there are at most n - 1 transfers for n non-zero balances, none of them zero.

    Largest-first re-ranks people as balances shrink (for A=+10, B=+9, X=-8, Y=-7, Z=-4,
    once Z pays A a fresh plan would reshuffle X and Y), so a plan is kept once suggested:
    `previous` (the last plan, less what has been paid: see `plan_after_payment`) is
    returned unchanged while it still settles these balances exactly; anything else that
    moved the balances (a new expense) makes a fresh plan.

    Raises ValueError when the balances do not sum to zero.
    """
    if sum(balances.values()) != 0:
        raise ValueError("balances must sum to zero")
    if previous and plan_settles(previous, balances):
        return list(previous)
    # heaps of (-amount, user_id): the largest first, ties by user id (n log n, so a
    # thousand members plan in milliseconds)
    debts = [(net, user_id) for user_id, net in balances.items() if net < 0]
    credits = [(-net, user_id) for user_id, net in balances.items() if net > 0]
    heapq.heapify(debts)
    heapq.heapify(credits)
    plan: list[PlannedTransfer] = []
    while debts and credits:
        debt, debtor = heapq.heappop(debts)
        credit, creditor = heapq.heappop(credits)
        paid = min(-debt, -credit)
        plan.append(PlannedTransfer(from_user_id=debtor, to_user_id=creditor, amount=paid))
        if debt + paid:
            heapq.heappush(debts, (debt + paid, debtor))
        if credit + paid:
            heapq.heappush(credits, (credit + paid, creditor))
    return plan


def plan_settles(plan: Sequence[PlannedTransfer], balances: Mapping[str, int]) -> bool:
    """Whether paying every transfer of `plan` zeroes `balances`, each one going from a
    debtor to a creditor with a positive amount (a plan worth showing again)."""
    left = dict(balances)
    for transfer in plan:
        if transfer.amount <= 0 or transfer.from_user_id == transfer.to_user_id:
            return False
        if left.get(transfer.from_user_id, 0) >= 0 or left.get(transfer.to_user_id, 0) <= 0:
            return False
        left[transfer.from_user_id] += transfer.amount
        left[transfer.to_user_id] -= transfer.amount
    return all(net == 0 for net in left.values())


def plan_after_payment(
    plan: Sequence[PlannedTransfer], from_user_id: str, to_user_id: str, amount: int
) -> list[PlannedTransfer]:
    """The plan once `from_user_id` paid `to_user_id` `amount`: the matching suggestion
    shrinks by it (and goes when paid in full); the others stay as they were. A payment no
    suggestion matches leaves the plan as it was (and `settle_plan` will then replace it)."""
    result = list(plan)
    for index, transfer in enumerate(result):
        if (transfer.from_user_id, transfer.to_user_id) != (from_user_id, to_user_id):
            continue
        if amount >= transfer.amount:
            del result[index]
            amount -= transfer.amount
            return result if amount == 0 else list(plan)
        result[index] = PlannedTransfer(
            from_user_id=from_user_id, to_user_id=to_user_id, amount=transfer.amount - amount
        )
        return result
    return result


# ── currencies: an expense or settlement in another currency than its group's ──────────

RATE_DIGITS = 10  # a rate derived from two amounts is rounded to this many significant digits
_DERIVE = Context(prec=RATE_DIGITS, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Conversion:
    """How an amount in a foreign currency stands in its group's: the `rate` (units of the
    group's currency per 1 unit of its own), where it came from (`source`: given, derived,
    ecb, cache, fixed), the rate's own `day` when it was looked up, and the `group_amount`
    (minor units of the group's currency)."""

    rate: Decimal
    source: str
    day: date | None
    group_amount: int


def conversion(
    amount: int,
    currency: str,
    group_currency: str,
    *,
    rate: str | None = None,
    group_amount: int | None = None,
    source: str | None = None,
    day: date | None = None,
) -> Conversion:
    """The conversion of `amount` (minor units of `currency`, a foreign one) into
    `group_currency`, from exactly one of `rate` (decimal text; `source` says where it came
    from, "given" when None) or `group_amount` (the rate derived from the two amounts,
    card fees and all: source "derived").

    `group_amount` from a rate is rounded half to even to the group currency's minor unit.
    Raises InvalidExpense (field `rate` or `group_amount`) when both or neither are given,
    a group amount is not 1 to MAX_AMOUNT, or a rate makes more than MAX_AMOUNT; InvalidRate
    (field `rate`) for a rate that is not a positive decimal of sane size.
    """
    if currency == group_currency:
        field = "rate" if rate is not None else "group_amount"
        raise InvalidExpense(
            f"the expense is in the group's currency {group_currency}: it needs no {field}",
            details={"field": field},
        )
    if rate is not None and group_amount is not None:
        raise InvalidExpense(
            "give the rate or the amount in the group's currency, not both",
            details={"field": "group_amount"},
        )
    if rate is not None:
        value = parse_rate(rate)
        converted = convert(amount, currency, group_currency, format_rate(value))
        if converted > MAX_AMOUNT:
            raise InvalidExpense(
                f"at this rate the amount makes {converted} in {group_currency}, more than"
                f" {MAX_AMOUNT}",
                details={"field": "rate"},
            )
        return Conversion(rate=value, source=source or "given", day=day, group_amount=converted)
    if group_amount is None:
        raise InvalidExpense(
            "give the rate or the amount in the group's currency", details={"field": "rate"}
        )
    if not _is_int(group_amount) or not 0 < group_amount <= MAX_AMOUNT:
        raise InvalidExpense(
            f"the amount in {group_currency} must be a whole number of minor units, 1 to"
            f" {MAX_AMOUNT}",
            details={"field": "group_amount"},
        )
    return Conversion(
        rate=derived_rate(amount, currency, group_amount, group_currency),
        source="derived",
        day=None,
        group_amount=group_amount,
    )


def derived_rate(amount: int, currency: str, group_amount: int, group_currency: str) -> Decimal:
    """Units of `group_currency` per 1 `currency` that `group_amount` for `amount` (both in
    minor units) makes, rounded half to even to RATE_DIGITS significant digits; InvalidExpense
    (field `group_amount`) when that is outside what a rate may be."""
    shift = exponent_of(currency) - exponent_of(group_currency)
    value = _DERIVE.divide(Decimal(group_amount).scaleb(shift), Decimal(amount))
    if not MIN_RATE <= value < MAX_RATE:
        raise InvalidExpense(
            "the two amounts make no sensible rate", details={"field": "group_amount"}
        )
    return _DERIVE.plus(value)


def converted_lines(lines: Sequence[tuple[str, int]], total: int) -> list[tuple[str, int]]:
    """`lines` (who, minor units; summing to more than zero) in proportion in another
    currency where they sum to `total` exactly: each within one unit of its exact
    conversion, the units left over to the largest remainders (earlier lines first on a
    tie). Raises ValueError when the lines sum to zero or less."""
    parts = largest_remainder(total, [amount for _, amount in lines])
    return [(user, part) for (user, _), part in zip(lines, parts, strict=True)]


# ── the split modes ────────────────────────────────────────────────────────────────────


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True is not a sum of money or a weight.
    return isinstance(value, int) and not isinstance(value, bool)


def _required(
    value: int | None, field: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """The value a mode needs, checked to be an integer in [minimum, maximum]."""
    if value is None:
        raise InvalidSplit("this split mode needs a value here", field=field)
    if not _is_int(value):
        raise InvalidSplit("the value must be an integer", field=field)
    if minimum is not None and value < minimum:
        raise InvalidSplit(f"the value must be at least {minimum}", field=field)
    if maximum is not None and value > maximum:
        raise InvalidSplit(f"the value must be at most {maximum}", field=field)
    return value


def _split_equal(amount: int, specs: Sequence[ShareSpec]) -> list[int]:
    return largest_remainder(amount, [1] * len(specs))


def _split_exact(amount: int, specs: Sequence[ShareSpec]) -> list[int]:
    parts = [
        _required(spec.amount, f"split.shares[{index}].amount", minimum=0)
        for index, spec in enumerate(specs)
    ]
    if sum(parts) != amount:
        raise InvalidSplit(
            f"the exact amounts add up to {sum(parts)}, not the expense amount {amount}",
            field="split.shares",
        )
    return parts


def _split_percent(amount: int, specs: Sequence[ShareSpec]) -> list[int]:
    weights = [
        _required(
            spec.percent_bp, f"split.shares[{index}].percent_bp", minimum=0, maximum=FULL_PERCENT_BP
        )
        for index, spec in enumerate(specs)
    ]
    total = sum(weights)
    if total != FULL_PERCENT_BP:
        raise InvalidSplit(
            f"the percentages add up to {total // 100}.{total % 100:02d} %, not 100 %",
            field="split.shares",
        )
    return largest_remainder(amount, weights)


def _split_shares(amount: int, specs: Sequence[ShareSpec]) -> list[int]:
    weights = [
        _required(spec.shares, f"split.shares[{index}].shares", minimum=0)
        for index, spec in enumerate(specs)
    ]
    if sum(weights) == 0:
        raise InvalidSplit("at least one participant needs a positive share", field="split.shares")
    return largest_remainder(amount, weights)


def _split_adjustment(amount: int, specs: Sequence[ShareSpec]) -> list[int]:
    adjustments = [
        0 if spec.amount is None else _required(spec.amount, f"split.shares[{index}].amount")
        for index, spec in enumerate(specs)
    ]
    rest = amount - sum(adjustments)
    if rest < 0:
        raise InvalidSplit(
            f"the adjustments add up to {sum(adjustments)}, more than the amount {amount}",
            field="split.shares",
        )
    parts = [
        part + adjustment
        for part, adjustment in zip(
            largest_remainder(rest, [1] * len(specs)), adjustments, strict=True
        )
    ]
    for index, part in enumerate(parts):
        if part < 0:
            raise InvalidSplit(
                f"the adjustment leaves {specs[index].user_id} a negative share",
                field=f"split.shares[{index}].amount",
            )
    return parts


_SPLITTERS: dict[str, Callable[[int, Sequence[ShareSpec]], list[int]]] = {
    "equal": _split_equal,
    "exact": _split_exact,
    "percent": _split_percent,
    "shares": _split_shares,
    "adjustment": _split_adjustment,
}
