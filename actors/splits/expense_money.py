"""The money of an expense, pure: its conversion into the group's currency (the rate it
carries, or derived from its group amount, or the refusal that asks the edge to look one
up) and its itemized bill priced (items.py) into shares. expenses.py stores what these
make."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from actors.rates.messages import RateUnavailable, format_rate
from actors.splits import rules
from actors.splits.items import ItemSpec, split_items
from actors.splits.messages import (
    RATE_LOOKUP,
    EditExpense,
    Item,
    NotAMember,
    ShareLine,
)
from actors.splits.shares import (
    Conversion,
    ShareSpec,
    conversion,
)
from actors.splits.store.expenses import ExpenseRecord
from actors.splits.store.groups import GroupRow


def rate_lookup_needed(currency: str, group_currency: str, day: date) -> RateUnavailable:
    """The refusal that asks the edge to look the day's rate up (details `lookup`), and a
    caller that cannot to give one."""
    return RateUnavailable(
        f"No exchange rate from {currency} to {group_currency} was given for {day}: give"
        f" the rate (how many {group_currency} for 1 {currency}) or the amount in"
        f" {group_currency}.",
        details={
            "base": currency,
            "quote": group_currency,
            "day": day.isoformat(),
            "field": "rate",
            RATE_LOOKUP: True,
        },
    )


@dataclass(slots=True)
class Priced:
    """An expense's money once checked: who paid, who owes what, the split lines kept (to
    price it again on an edit) and, for an itemized bill, its items (given and priced),
    tax, tip and spread."""

    payers: list[tuple[str, int]]
    shares: list[tuple[str, int]]
    lines: list[ShareLine]
    items: list[dict[str, Any]] | None = None
    tax: int | None = None
    tip: int | None = None
    spread: str | None = None


# ── currencies ─────────────────────────────────────────────────────────────────────────


def conversion_for(
    group: GroupRow,
    *,
    amount: int,
    currency: str,
    spent_on: date,
    rate: str | None,
    group_amount: int | None,
    source: str | None,
    day: str | None,
    lookup: bool = False,
) -> Conversion | None:
    """How the amount converts into the group's currency (None: it is in it, or has no
    rate); with neither a rate nor a group amount for a foreign currency, the refusal that
    asks the caller to look the day's rate up (`lookup`: it can), else None (kept apart)."""
    if currency == group.currency and rate is None and group_amount is None:
        return None
    if rate is None and group_amount is None:
        if not lookup:
            return None
        raise rate_lookup_needed(currency, group.currency, spent_on)
    return conversion(
        amount,
        currency,
        group.currency,
        rate=rate,
        group_amount=group_amount,
        source=source,
        day=None if day is None else date.fromisoformat(day),
    )


def edited_conversion(
    group: GroupRow,
    old: ExpenseRecord,
    message: EditExpense,
    amount: int,
    currency: str,
    spent_on: date,
) -> Conversion | None:
    """The edited expense's conversion: a rate or group amount given now; else the one it
    had, while the currency stays (a looked-up rate only while the day stays too: another
    day has another rate); else, in a foreign currency, a new one to look up. A foreign
    expense stored with no rate (before rates) stays apart while currency and day stay."""
    given = message.rate is not None or message.group_amount is not None
    if given or currency == group.currency:
        return conversion_for(
            group,
            amount=amount,
            currency=currency,
            spent_on=spent_on,
            rate=message.rate,
            group_amount=message.group_amount,
            source=message.rate_source,
            day=message.rate_day,
            lookup=message.rate_lookup,
        )
    same_day = spent_on == old.spent_on
    kept = old.rate_source in ("given", "derived") or same_day  # a looked-up one: same day
    if currency == old.currency and old.rate is not None and old.rate_source and kept:
        if amount == old.amount and old.group_amount is not None:
            return Conversion(old.rate, old.rate_source, old.rate_day, old.group_amount)
        return conversion(
            amount,
            currency,
            group.currency,
            rate=format_rate(old.rate),
            source=old.rate_source,
            day=old.rate_day,
        )
    if (currency == old.currency and old.rate is None and same_day) or not message.rate_lookup:
        return None
    raise rate_lookup_needed(currency, group.currency, spent_on)


def money_fields(converted: Conversion | None, priced: Priced) -> dict[str, Any]:
    """The ExpenseRecord fields of its conversion and itemized bill."""
    return {
        "rate": None if converted is None else converted.rate,
        "rate_source": None if converted is None else converted.source,
        "rate_day": None if converted is None else converted.day,
        "group_amount": None if converted is None else converted.group_amount,
        "items": priced.items,
        "tax": priced.tax,
        "tip": priced.tip,
        "spread": priced.spread,
    }


# ── itemized bills ─────────────────────────────────────────────────────────────────────

Bill = tuple[list[Item], int | None, int | None, str | None]  # items, tax, tip, spread


def itemized(
    members: Sequence[str],
    amount: int,
    lines: Sequence[ShareLine],
    items: Sequence[Item] | None,
    tax: int | None,
    tip: int | None,
    spread: str | None,
) -> Priced:
    """An itemized bill priced (items.py): each item's people must be members (an `equal`
    item with nobody named is everyone's); its shares are derived."""
    if lines:
        raise rules.invalid("split.shares", "an itemized expense is split by its items")
    if not items:
        raise rules.invalid("items", "an itemized expense needs at least one item")
    known = set(members)
    specs: list[ItemSpec] = []
    kept: list[list[ShareLine]] = []
    for index, item in enumerate(items):
        all_members(item.shares, known, f"items[{index}].split.shares")
        item_lines = list(item.shares)
        if item.split_mode == "equal" and not item_lines:
            item_lines = [ShareLine(user_id=user) for user in members]
        kept.append(item_lines)
        specs.append(
            ItemSpec(item.description, item.amount, item.split_mode, tuple(share_specs(item_lines)))
        )
    bill = split_items(
        specs, tax=tax or 0, tip=tip or 0, spread=spread or "proportional", amount=amount
    )
    stored = [
        {
            "description": priced.description,
            "amount": priced.amount,
            "split_mode": item.split_mode,
            "shares": saved_lines(item_lines),
            "extra": priced.extra,
            "adjusted": priced.adjusted,
            "parts": [[user, owed] for user, owed in priced.shares],
        }
        for item, item_lines, priced in zip(items, kept, bill.items, strict=True)
    ]
    return Priced(
        payers=[],
        shares=list(bill.shares),
        lines=[],
        items=stored,
        tax=bill.tax,
        tip=bill.tip,
        spread=spread or "proportional",
    )


def no_bill(
    items: Sequence[Item] | None, tax: int | None, tip: int | None, spread: str | None
) -> None:
    """Items, tax, tip and spread belong to an itemized expense only."""
    for name, value in (("items", items), ("tax", tax), ("tip", tip), ("spread", spread)):
        if value is not None:
            raise rules.invalid(name, f"{name} goes with an itemized expense (split mode items)")


def all_members(lines: Sequence[ShareLine], known: set[str], where: str) -> None:
    for index, line in enumerate(lines):
        if line.user_id not in known:
            raise NotAMember(
                f"{line.user_id} is not a member of this group.",
                details={"field": f"{where}[{index}].user_id"},
            )


def stored_items(stored: Sequence[Mapping[str, Any]]) -> list[Item]:
    """The items of a stored bill as they were given (to price them again on an edit)."""
    return [
        Item(
            description=item["description"],
            amount=item["amount"],
            split_mode=item["split_mode"],
            shares=share_lines(item["shares"]),
        )
        for item in stored
    ]


def old_bill(old: ExpenseRecord) -> Bill | None:
    if old.split_mode != "items" or old.items is None:
        return None
    return (stored_items(old.items), old.tax, old.tip, old.spread)


def edited_bill(old: ExpenseRecord, message: EditExpense, mode: str) -> Bill | None:
    """The itemized bill the edit makes (None: not itemized): what it gives, the rest as
    it was."""
    if mode != "items":
        no_bill(message.items, message.tax, message.tip, message.spread)
        return None
    before = old_bill(old)
    items = message.items if message.items is not None else (before[0] if before else None)
    if not items:
        raise rules.invalid("items", "an itemized expense needs at least one item")
    tax = message.tax if message.tax is not None else (before[1] if before else None)
    tip = message.tip if message.tip is not None else (before[2] if before else None)
    spread = message.spread if message.spread is not None else (before[3] if before else None)
    return (list(items), tax, tip, spread)


def bill_total(items: Sequence[Item], tax: int | None, tip: int | None, _: str | None) -> int:
    return sum(item.amount for item in items) + (tax or 0) + (tip or 0)


def share_specs(lines: Sequence[ShareLine]) -> list[ShareSpec]:
    return [ShareSpec(line.user_id, line.amount, line.percent_bp, line.shares) for line in lines]


def share_lines(saved: Sequence[Mapping[str, Any]]) -> list[ShareLine]:
    return [ShareLine(**line) for line in saved]


def saved_lines(lines: Sequence[ShareLine]) -> list[dict[str, Any]]:
    """The share lines as stored (split_input): the fields given, no nulls."""
    return [
        {
            k: v
            for k, v in (
                ("user_id", line.user_id),
                ("amount", line.amount),
                ("percent_bp", line.percent_bp),
                ("shares", line.shares),
            )
            if v is not None
        }
        for line in lines
    ]
