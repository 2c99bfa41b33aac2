"""Splitwise CSV import, step 2: a confirmed mapping of each Splitwise name to a member
(or a new placeholder) applied to a plan, giving the placeholders to add and the expenses
and settlements to record (`ImportBatch`), written in chunks. Pure, no IO."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actors.splits.importing import (
    ImportDryRun,
    ImportMatch,
    ImportPlan,
    InvalidImport,
)
from actors.splits.replies import Payer, ShareLine


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def propose_mapping(
    people: Sequence[str], members: Sequence[tuple[str, str | None]]
) -> dict[str, str | None]:
    """Each Splitwise name and the member `(user_id, name)` of the same name (ignoring case
    and spaces), or None (a new placeholder) when no member, or more than one, has it."""
    by_name: dict[str, list[str]] = {}
    for user_id, name in members:
        if name:
            by_name.setdefault(_folded(name), []).append(user_id)
    proposal: dict[str, str | None] = {}
    for person in people:
        found = by_name.get(_folded(person), [])
        proposal[person] = found[0] if len(found) == 1 else None
    return proposal


def dry_run(plan: ImportPlan, members: Sequence[tuple[str, str | None]]) -> ImportDryRun:
    """The answer to a dry run: the plan's report and the proposed mapping."""
    proposal = propose_mapping(plan.people, members)
    return ImportDryRun(
        report=plan.report,
        mapping=[ImportMatch(name=name, user_id=user) for name, user in proposal.items()],
    )


@dataclass(frozen=True, slots=True)
class ImportedPlaceholder:
    """A new member with no account for a Splitwise name (AddMember's fields)."""

    placeholder_id: str
    name: str

    def fields(self) -> dict[str, Any]:
        """AddMember's fields but group_id and user_id (the importing member)."""
        return {"name": self.name, "placeholder_id": self.placeholder_id}


@dataclass(frozen=True, slots=True)
class ImportedExpense:
    """An expense between members: `paid_by` and `shares` are (user id, minor units)."""

    row: int
    expense_id: str
    date: str
    description: str
    category: str
    currency: str
    amount: int
    paid_by: tuple[tuple[str, int], ...]
    shares: tuple[tuple[str, int], ...]

    def fields(self) -> dict[str, Any]:
        """AddExpense's fields but group_id and user_id (the importing member)."""
        return {
            "expense_id": self.expense_id,
            "description": self.description,
            "amount": self.amount,
            "currency": self.currency,
            "paid_by": [Payer(user_id=user, amount=paid) for user, paid in self.paid_by],
            "split_mode": "exact",
            "shares": [ShareLine(user_id=user, amount=share) for user, share in self.shares],
            "date": self.date,
            "category": self.category,
        }


@dataclass(frozen=True, slots=True)
class ImportedSettlement:
    """A cash settlement between members, made on `date` (RecordSettlement has no date:
    the importing handler stores it as the settlement's day)."""

    row: int
    settlement_id: str
    date: str
    from_user_id: str
    to_user_id: str
    amount: int
    currency: str

    def fields(self) -> dict[str, Any]:
        """RecordSettlement's fields but group_id: `user_id` is the member who paid."""
        return {
            "user_id": self.from_user_id,
            "settlement_id": self.settlement_id,
            "to_user_id": self.to_user_id,
            "amount": self.amount,
            "currency": self.currency,
            "method": "cash",
        }


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """What a confirmed import records, in order: placeholders, then expenses and
    settlements (file order). `dropped_settlements`: payments between two names mapped to
    one member, which change nothing."""

    group_id: str
    placeholders: tuple[ImportedPlaceholder, ...]
    expenses: tuple[ImportedExpense, ...]
    settlements: tuple[ImportedSettlement, ...]
    dropped_settlements: int


def apply_mapping(
    plan: ImportPlan,
    mapping: Mapping[str, str | None],
    *,
    members: Collection[str] | None = None,
) -> ImportBatch:
    """The placeholders, expenses and settlements of a confirmed mapping: every name of the
    file mapped to a member's user id (one of `members`, when given) or to None for a new
    placeholder. Two names mapped to one member are merged into them. Raises InvalidImport
    naming the person when a name is missing, unknown or mapped to a non-member."""
    for name in plan.people:
        if name not in mapping:
            raise InvalidImport(
                f"{name!r} is not mapped: map every name to a member or to a new placeholder.",
                column=name,
            )
    known = set(plan.people)
    for name, user in mapping.items():
        if name not in known:
            raise InvalidImport(f"{name!r} is not a name in the file.", column=name)
        if user is not None and (not user or (members is not None and user not in members)):
            raise InvalidImport(
                f"{name!r} is mapped to {user!r}, who is not a member of the group.", column=name
            )
    users = {name: mapping[name] or plan.placeholder_ids[name] for name in plan.people}
    placeholders = tuple(
        ImportedPlaceholder(placeholder_id=plan.placeholder_ids[name], name=name)
        for name in plan.people
        if mapping[name] is None
    )
    expenses = tuple(
        ImportedExpense(
            row=planned.row,
            expense_id=planned.expense_id,
            date=planned.date,
            description=planned.description,
            category=planned.category,
            currency=planned.currency,
            amount=planned.amount,
            paid_by=_merged(planned.paid_by, users),
            shares=_merged(planned.shares, users),
        )
        for planned in plan.expenses
    )
    settlements = tuple(
        ImportedSettlement(
            row=planned.row,
            settlement_id=planned.settlement_id,
            date=planned.date,
            from_user_id=users[planned.from_name],
            to_user_id=users[planned.to_name],
            amount=planned.amount,
            currency=planned.currency,
        )
        for planned in plan.settlements
        if users[planned.from_name] != users[planned.to_name]
    )
    return ImportBatch(
        group_id=plan.group_id,
        placeholders=placeholders,
        expenses=expenses,
        settlements=settlements,
        dropped_settlements=len(plan.settlements) - len(settlements),
    )


def _merged(
    lines: Sequence[tuple[str, int]], users: Mapping[str, str]
) -> tuple[tuple[str, int], ...]:
    """Lines by name as lines by user, those of two names of one user added together."""
    merged: dict[str, int] = {}
    for name, amount in lines:
        user = users[name]
        merged[user] = merged.get(user, 0) + amount
    return tuple(merged.items())


# ── writing a confirmed import in chunks ──────────────────────────────────────────────


def batch_total(batch: ImportBatch) -> int:
    """How many rows a confirmed import writes: its expenses, then its settlements."""
    return len(batch.expenses) + len(batch.settlements)


def batch_chunk(
    batch: ImportBatch, start: int, size: int
) -> tuple[tuple[ImportedExpense, ...], tuple[ImportedSettlement, ...]]:
    """The rows `start` to `start + size` of the batch (expenses first, then settlements):
    consecutive chunks cover every row once."""
    start, end = max(0, start), max(0, start + size)
    count = len(batch.expenses)
    expenses = batch.expenses[min(start, count) : min(end, count)]
    settlements = batch.settlements[max(0, start - count) : max(0, end - count)]
    return expenses, settlements


def batch_deltas(
    expenses: Sequence[ImportedExpense], settlements: Sequence[ImportedSettlement]
) -> dict[str, dict[str, int]]:
    """What these rows do to the kept balances, per currency and user (> 0: owed to them);
    each currency's changes sum to zero."""
    deltas: dict[str, dict[str, int]] = {}
    for expense in expenses:
        nets = deltas.setdefault(expense.currency, {})
        for user, paid in expense.paid_by:
            nets[user] = nets.get(user, 0) + paid
        for user, owed in expense.shares:
            nets[user] = nets.get(user, 0) - owed
    for settlement in settlements:
        # the payer's debt shrinks, the payee is owed less (as a cash settlement does)
        nets = deltas.setdefault(settlement.currency, {})
        nets[settlement.from_user_id] = nets.get(settlement.from_user_id, 0) + settlement.amount
        nets[settlement.to_user_id] = nets.get(settlement.to_user_id, 0) - settlement.amount
    return {
        currency: {user: delta for user, delta in nets.items() if delta}
        for currency, nets in deltas.items()
    }
