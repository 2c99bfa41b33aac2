"""Who owes whom directly: the settle plan of a group whose simplify switch is off. No IO.

With simplify on, the plan is the fewest transfers that zero every balance (`shares.
settle_plan`), so Ana may be told to pay Bo for a dinner Carla paid. With it off, each person
pays back the very people who paid for them: every expense (and every settlement) is read as
debts between pairs, the pairs are netted, and each pair that still owes makes one transfer.

Within one expense each person's change is what they paid minus their share; the debtors'
changes are matched to the creditors' in a fixed order (user ids sorted), so an expense with
one payer makes every sharer owe that payer exactly their share, and one with several payers
is split between them deterministically. A settlement `a` paid `b` is `b` owing `a` back.
The transfers move every member to zero exactly as the balances say (the property the tests
check): what a person receives less what they pay is their net.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from actors.splits.shares import PlannedTransfer

# a movement of money in one currency: (who paid how much, whose share is how much)
Lines = tuple[Sequence[tuple[str, int]], Sequence[tuple[str, int]]]


def expense_pairs(
    payers: Sequence[tuple[str, int]], shares: Sequence[tuple[str, int]]
) -> list[tuple[str, str, int]]:
    """The debts (debtor, creditor, amount > 0) one expense makes, matched in user-id order.

    Raises ValueError when what was paid and the shares differ (as `expense_deltas` does).
    """
    if sum(paid for _, paid in payers) != sum(owed for _, owed in shares):
        raise ValueError("payments and shares differ")
    change: dict[str, int] = defaultdict(int)
    for user, paid in payers:
        change[user] += paid
    for user, owed in shares:
        change[user] -= owed
    debtors = [(user, -delta) for user, delta in sorted(change.items()) if delta < 0]
    creditors = [(user, delta) for user, delta in sorted(change.items()) if delta > 0]
    pairs: list[tuple[str, str, int]] = []
    d = c = 0
    owes, owed = (debtors[0][1] if debtors else 0), (creditors[0][1] if creditors else 0)
    while d < len(debtors) and c < len(creditors):
        amount = min(owes, owed)
        pairs.append((debtors[d][0], creditors[c][0], amount))
        owes, owed = owes - amount, owed - amount
        if not owes:
            d += 1
            owes = debtors[d][1] if d < len(debtors) else 0
        if not owed:
            c += 1
            owed = creditors[c][1] if c < len(creditors) else 0
    return pairs


def pairwise_debts(movements: Iterable[Lines]) -> dict[tuple[str, str], int]:
    """What each debtor owes each creditor over all the movements, before netting pairs."""
    debts: dict[tuple[str, str], int] = defaultdict(int)
    for payers, shares in movements:
        for debtor, creditor, amount in expense_pairs(payers, shares):
            debts[(debtor, creditor)] += amount
    return dict(debts)


def settlement_lines(from_user_id: str, to_user_id: str, amount: int) -> Lines:
    """A settlement as a movement: the payer paid, the payee's "share" is what they got."""
    return ((from_user_id, amount),), ((to_user_id, amount),)


def direct_plan(debts: Mapping[tuple[str, str], int]) -> list[PlannedTransfer]:
    """One transfer per pair that still owes after netting both ways, sorted by (payer,
    payee); none of zero, none to oneself."""
    net: dict[tuple[str, str], int] = defaultdict(int)
    for (debtor, creditor), amount in debts.items():
        if debtor == creditor or not amount:
            continue
        low, high = sorted((debtor, creditor))
        # positive: low owes high; negative: high owes low
        net[(low, high)] += amount if debtor == low else -amount
    plan = [
        PlannedTransfer(low, high, amount) if amount > 0 else PlannedTransfer(high, low, -amount)
        for (low, high), amount in net.items()
        if amount
    ]
    plan.sort(key=lambda t: (t.from_user_id, t.to_user_id))
    return plan


def plan_nets(plan: Iterable[PlannedTransfer]) -> dict[str, int]:
    """What each person's balance is that the plan zeroes: received minus paid, non-zero."""
    nets: dict[str, int] = defaultdict(int)
    for transfer in plan:
        nets[transfer.to_user_id] += transfer.amount
        nets[transfer.from_user_id] -= transfer.amount
    return {user: n for user, n in nets.items() if n}


def direct_plans(
    movements: Iterable[tuple[str, Lines]],
) -> dict[str, list[PlannedTransfer]]:
    """The direct plan of each currency from (currency, movement) pairs."""
    by_currency: dict[str, list[Lines]] = defaultdict(list)
    for currency, lines in movements:
        by_currency[currency].append(lines)
    plans = {c: direct_plan(pairwise_debts(lines)) for c, lines in by_currency.items()}
    return {c: plan for c, plan in plans.items() if plan}
