"""Expenses with several payers and every split mode: a feature part of the Splits actor.

Balances are kept incrementally: adding an expense applies its deltas, an edit takes the
old version's back and applies the new one's, a deletion takes them back; each in the one
transaction that also keeps the history, the activity line and the event. Ids are chosen
by the caller, so a retried AddExpense finds its first result.

An expense in another currency than its group's is converted at the rate it carries (or
derived from its `group_amount`); its lines are converted in proportion so they sum to the
group amount exactly, and move the converted balances (store/balances.py). With neither,
it is refused with `rate_unavailable` marked `lookup`: the edge looks the day's rate up and
asks again (splitgo/web/splits/rates.py), so this shard never waits on the network; a
caller that cannot look up (`rate_lookup` off: another actor, a recurring copy) has it kept
with no rate, apart in its own currency in the converted balances. An
itemized bill (split mode "items") is priced by items.py and its shares derived from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from actors.payments.messages import format_money
from actors.rates.messages import RateUnavailable, format_rate
from actors.runtime import Context, Executor, Transaction, row_cursor
from actors.splits import rules, store
from actors.splits.items import ItemSpec, split_items
from actors.splits.membership import member_group, member_ids
from actors.splits.messages import (
    RATE_LOOKUP,
    AddExpense,
    DeleteExpense,
    Done,
    EditExpense,
    ExpenseAdded,
    ExpenseDeleted,
    ExpenseNotFound,
    ExpensePage,
    ExpenseUpdated,
    ExpenseView,
    GetExpense,
    Item,
    ListExpenses,
    NotAMember,
    Payer,
    Share,
    ShareLine,
)
from actors.splits.shares import (
    Conversion,
    ShareSpec,
    compute_shares,
    conversion,
    converted_lines,
    expense_deltas,
    split_payers,
)
from actors.splits.store.expenses import ExpenseRecord
from actors.splits.store.groups import GroupRow
from actors.splits.views import expense_view

# what a part calls with every expense it saves (Recurring.arm: the timer of its next copy)
OnSaved = Callable[[ExpenseRecord], None]
# what else an added or edited expense keeps, in its own transaction (a series' end)
OnWritten = Callable[[Transaction, AddExpense | EditExpense], Awaitable[None]]


async def live_expense(db: Executor, group: GroupRow, expense_id: str) -> ExpenseRecord:
    """The expense, if it is in the group and not deleted."""
    expense = await store.expenses.expense(db, expense_id)
    if expense is None or expense.group_id != group.id or expense.deleted:
        raise ExpenseNotFound("No such expense in this group.", details={"field": "expense_id"})
    return expense


async def record_expense(
    tx: Transaction, group: GroupRow, expense: ExpenseRecord, by: str, now: datetime
) -> bool:
    """Store a new expense, apply its deltas, log it and tell its event; False when its id
    exists already (nothing changes). An expense with a rate (and its group amount) gets
    its converted lines here, when it has none yet (a recurring copy)."""
    with_group_lines(expense)
    if not await store.expenses.insert_expense(tx, expense):
        return False
    await move_balances(tx, group, expense, undo=False)
    await store.activity.add_activity(
        tx,
        group.id,
        "expense_added",
        by,
        f"{by} added “{expense.description}” ({format_money(expense.amount, expense.currency)})",
        now,
        expense_id=expense.id,
        data={"amount": expense.amount, "currency": expense.currency},
    )
    await tx.publish(
        ExpenseAdded(
            group_id=group.id,
            group_name=group.name,
            expense_id=expense.id,
            description=expense.description,
            amount=expense.amount,
            currency=expense.currency,
            created_by=by,
            shares=[Share(user_id=user, amount=owed) for user, owed in expense.shares],
        )
    )
    return True


def with_group_lines(expense: ExpenseRecord) -> ExpenseRecord:
    """The expense with its lines in the group's currency, when it has a rate: payers and
    shares each converted in proportion to sum exactly to its group amount."""
    if expense.group_amount is None or expense.rate is None:
        expense.group_payers = expense.group_shares = None
    elif expense.group_payers is None or expense.group_shares is None:
        expense.group_payers = converted_lines(expense.payers, expense.group_amount)
        expense.group_shares = converted_lines(expense.shares, expense.group_amount)
    return expense


async def move_balances(
    tx: Transaction, group: GroupRow, expense: ExpenseRecord, *, undo: bool
) -> None:
    """Apply what the expense does to the balances (`undo`: take it back): per currency,
    and converted into the group's at its rate; with no rate, the same in both."""
    sign = -1 if undo else 1
    deltas = {u: sign * d for u, d in expense_deltas(expense.payers, expense.shares).items()}
    if expense.rate is None or expense.group_payers is None or expense.group_shares is None:
        await store.balances.apply_deltas(tx, group.id, expense.currency, deltas)
        return
    await store.balances.apply_deltas(tx, group.id, expense.currency, deltas, converted=False)
    converted = expense_deltas(expense.group_payers, expense.group_shares)
    await store.balances.apply_converted(
        tx, group.id, group.currency, {u: sign * d for u, d in converted.items()}
    )


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


class Expenses:
    """Adds, shows, edits, deletes and pages through a group's expenses.

    `context` is the Splits shard's: the splits tables, its clock and transactions;
    `on_saved` is called with every expense added or edited here (after its commit);
    `on_written` inside the transaction that adds or edits it, so what it keeps lands with
    the expense or not at all.
    """

    def __init__(
        self, context: Context, *, on_saved: OnSaved, on_written: OnWritten | None = None
    ) -> None:
        self._context = context
        self._pool = context.pool
        self._on_saved = on_saved
        self._on_written = on_written

    async def add(self, message: AddExpense) -> ExpenseView:
        replayed = await self._context.replayed(message, ExpenseView)
        if replayed is not None:
            return replayed
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        known = await store.expenses.expense(self._pool, message.expense_id)
        if known is not None:  # a retried command: its first result
            if known.group_id != group.id:
                raise ExpenseNotFound("No such expense in this group.")
            return expense_view(known)
        description = rules.description(message.description)
        category = rules.category(message.category)
        now = self._context.now()
        spent_on = rules.spent_on(message.date, now.date())
        priced = await self._priced(
            group,
            amount=message.amount,
            currency=message.currency,
            payers=message.paid_by,
            mode=message.split_mode,
            lines=message.shares,
            items=message.items,
            tax=message.tax,
            tip=message.tip,
            spread=message.spread,
        )
        converted = conversion_for(
            group,
            amount=message.amount,
            currency=message.currency,
            spent_on=spent_on,
            rate=message.rate,
            group_amount=message.group_amount,
            source=message.rate_source,
            day=message.rate_day,
            lookup=message.rate_lookup,
        )
        expense = ExpenseRecord(
            id=message.expense_id,
            group_id=group.id,
            description=description,
            amount=message.amount,
            currency=message.currency,
            spent_on=spent_on,
            category=category,
            split_mode=message.split_mode,
            split_input=_saved(priced.lines),
            created_by=message.user_id,
            created_at=now,
            updated_at=now,
            recurrence=message.recurrence,
            next_due=None
            if message.recurrence is None
            else rules.next_occurrence(spent_on, message.recurrence),
            payers=priced.payers,
            shares=priced.shares,
            **_money_fields(converted, priced),
        )
        view = expense_view(with_group_lines(expense))
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await record_expense(tx, group, expense, message.user_id, now)
                if self._on_written is not None:
                    await self._on_written(tx, message)
                await self._context.remember(tx, message, view)
        self._on_saved(expense)
        return view

    async def get(self, message: GetExpense) -> ExpenseView:
        group = await member_group(self._pool, message.group_id, message.user_id)
        return expense_view(await live_expense(self._pool, group, message.expense_id))

    async def edit(self, message: EditExpense) -> ExpenseView:
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        old = await live_expense(self._pool, group, message.expense_id)
        new = with_group_lines(await self._edited(group, old, message))
        now = self._context.now()
        new.updated_at, new.version = now, old.version + 1
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return expense_view(await live_expense(self._pool, group, old.id))
            await store.expenses.record_history(tx, old, "edited", message.user_id, now)
            await store.expenses.update_expense(tx, new)
            await move_balances(tx, group, old, undo=True)
            await move_balances(tx, group, new, undo=False)
            await store.activity.add_activity(
                tx,
                group.id,
                "expense_updated",
                message.user_id,
                f"{message.user_id} changed “{new.description}”",
                now,
                expense_id=new.id,
                data={"version": new.version},
            )
            await tx.publish(
                ExpenseUpdated(
                    group_id=group.id,
                    group_name=group.name,
                    expense_id=new.id,
                    description=new.description,
                    amount=new.amount,
                    currency=new.currency,
                    changed_by=message.user_id,
                    shares=[Share(user_id=user, amount=owed) for user, owed in new.shares],
                )
            )
            if self._on_written is not None:
                await self._on_written(tx, message)
        self._on_saved(new)
        return expense_view(new)

    async def delete(self, message: DeleteExpense) -> Done:
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        old = await live_expense(self._pool, group, message.expense_id)
        now = self._context.now()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return Done()
            await store.expenses.record_history(tx, old, "deleted", message.user_id, now)
            await store.expenses.mark_deleted(tx, old.id, now)
            await move_balances(tx, group, old, undo=True)
            await store.activity.add_activity(
                tx,
                group.id,
                "expense_deleted",
                message.user_id,
                f"{message.user_id} deleted “{old.description}”",
                now,
                expense_id=old.id,
            )
            await tx.publish(
                ExpenseDeleted(
                    group_id=group.id,
                    group_name=group.name,
                    expense_id=old.id,
                    description=old.description,
                    deleted_by=message.user_id,
                    participants=sorted({user for user, _ in (*old.payers, *old.shares)}),
                )
            )
        return Done()

    async def page(self, message: ListExpenses) -> ExpensePage:
        group = await member_group(self._pool, message.group_id, message.user_id)
        limit = max(1, min(message.limit, 200))
        before = row_cursor(message.cursor)
        expenses = await store.expenses.expense_page(self._pool, group.id, limit + 1, before)
        more = len(expenses) > limit
        expenses = expenses[:limit]
        return ExpensePage(
            items=[expense_view(expense) for expense in expenses],
            next_cursor=str(expenses[-1].seq) if more else None,
        )

    async def _priced(
        self,
        group: GroupRow,
        *,
        amount: int,
        currency: str,
        payers: Sequence[Payer],
        mode: str,
        lines: Sequence[ShareLine],
        items: Sequence[Item] | None = None,
        tax: int | None = None,
        tip: int | None = None,
        spread: str | None = None,
    ) -> Priced:
        """Check who paid and who shares against the members, and price the split (or the
        itemized bill)."""
        members = await member_ids(self._pool, group.id)
        known = set(members)
        for index, payer in enumerate(payers):
            if payer.user_id not in known:
                raise NotAMember(
                    f"{payer.user_id} is not a member of this group.",
                    details={"field": f"paid_by[{index}].user_id"},
                )
        if mode == "items":
            priced = _itemized(members, amount, lines, items, tax, tip, spread)
        else:
            _no_bill(items, tax, tip, spread)
            _all_members(lines, known, "split.shares")
            if mode == "equal" and not lines:
                lines = [ShareLine(user_id=user) for user in members]
            shares = compute_shares(rules.amount(amount), mode, _specs(lines))  # type: ignore[arg-type]
            priced = Priced(payers=[], shares=shares, lines=list(lines))
        priced.payers = split_payers(amount, [(payer.user_id, payer.amount) for payer in payers])
        rules.currency(currency)
        return priced

    async def _edited(
        self, group: GroupRow, old: ExpenseRecord, message: EditExpense
    ) -> ExpenseRecord:
        """The expense as the edit makes it (checked, priced, converted; not stored)."""
        mode = message.split_mode or ("items" if message.items is not None else old.split_mode)
        bill = _edited_bill(old, message, mode)
        amount = old.amount if message.amount is None else message.amount
        if message.amount is None and bill is not None and bill != _old_bill(old):
            amount = _bill_total(*bill)  # the items, tax or tip changed: so does the amount
        payers = message.paid_by
        if payers is None:
            if amount != old.amount and len(old.payers) > 1:
                raise rules.invalid("paid_by", "give paid_by again when the amount changes")
            payers = [Payer(user_id=user, amount=amount) for user, _ in old.payers]
        lines = (
            message.shares
            if message.shares is not None
            else (_lines(old.split_input) if mode == old.split_mode else [])
        )
        currency = message.currency or old.currency
        items, tax, tip, spread = bill if bill is not None else (None, None, None, None)
        priced = await self._priced(
            group,
            amount=amount,
            currency=currency,
            payers=payers,
            mode=mode,
            lines=lines,
            items=items,
            tax=tax,
            tip=tip,
            spread=spread,
        )
        spent_on = (
            old.spent_on
            if message.date is None
            else rules.spent_on(message.date, self._context.now().date())
        )
        converted = _edited_conversion(group, old, message, amount, currency, spent_on)
        recurrence = old.recurrence
        if message.recurrence is not None:
            recurrence = None if message.recurrence == "none" else message.recurrence
        return ExpenseRecord(
            id=old.id,
            group_id=old.group_id,
            description=old.description
            if message.description is None
            else rules.description(message.description),
            amount=amount,
            currency=currency,
            spent_on=spent_on,
            category=old.category if message.category is None else rules.category(message.category),
            split_mode=mode,
            split_input=_saved(priced.lines),
            created_by=old.created_by,
            created_at=old.created_at,
            updated_at=old.updated_at,
            version=old.version,
            recurrence=recurrence,
            next_due=None
            if recurrence is None
            else old.next_due
            if recurrence == old.recurrence and old.next_due
            else rules.next_occurrence(spent_on, recurrence),
            recurring_from=old.recurring_from,
            seq=old.seq,
            payers=priced.payers,
            shares=priced.shares,
            **_money_fields(converted, priced),
        )


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


def _edited_conversion(
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


def _money_fields(converted: Conversion | None, priced: Priced) -> dict[str, Any]:
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


def _itemized(
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
        _all_members(item.shares, known, f"items[{index}].split.shares")
        item_lines = list(item.shares)
        if item.split_mode == "equal" and not item_lines:
            item_lines = [ShareLine(user_id=user) for user in members]
        kept.append(item_lines)
        specs.append(
            ItemSpec(item.description, item.amount, item.split_mode, tuple(_specs(item_lines)))
        )
    bill = split_items(
        specs, tax=tax or 0, tip=tip or 0, spread=spread or "proportional", amount=amount
    )
    stored = [
        {
            "description": priced.description,
            "amount": priced.amount,
            "split_mode": item.split_mode,
            "shares": _saved(item_lines),
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


def _no_bill(
    items: Sequence[Item] | None, tax: int | None, tip: int | None, spread: str | None
) -> None:
    """Items, tax, tip and spread belong to an itemized expense only."""
    for name, value in (("items", items), ("tax", tax), ("tip", tip), ("spread", spread)):
        if value is not None:
            raise rules.invalid(name, f"{name} goes with an itemized expense (split mode items)")


def _all_members(lines: Sequence[ShareLine], known: set[str], where: str) -> None:
    for index, line in enumerate(lines):
        if line.user_id not in known:
            raise NotAMember(
                f"{line.user_id} is not a member of this group.",
                details={"field": f"{where}[{index}].user_id"},
            )


def _stored_items(stored: Sequence[Mapping[str, Any]]) -> list[Item]:
    """The items of a stored bill as they were given (to price them again on an edit)."""
    return [
        Item(
            description=item["description"],
            amount=item["amount"],
            split_mode=item["split_mode"],
            shares=_lines(item["shares"]),
        )
        for item in stored
    ]


def _old_bill(old: ExpenseRecord) -> Bill | None:
    if old.split_mode != "items" or old.items is None:
        return None
    return (_stored_items(old.items), old.tax, old.tip, old.spread)


def _edited_bill(old: ExpenseRecord, message: EditExpense, mode: str) -> Bill | None:
    """The itemized bill the edit makes (None: not itemized): what it gives, the rest as
    it was."""
    if mode != "items":
        _no_bill(message.items, message.tax, message.tip, message.spread)
        return None
    before = _old_bill(old)
    items = message.items if message.items is not None else (before[0] if before else None)
    if not items:
        raise rules.invalid("items", "an itemized expense needs at least one item")
    tax = message.tax if message.tax is not None else (before[1] if before else None)
    tip = message.tip if message.tip is not None else (before[2] if before else None)
    spread = message.spread if message.spread is not None else (before[3] if before else None)
    return (list(items), tax, tip, spread)


def _bill_total(items: Sequence[Item], tax: int | None, tip: int | None, _: str | None) -> int:
    return sum(item.amount for item in items) + (tax or 0) + (tip or 0)


def _specs(lines: Sequence[ShareLine]) -> list[ShareSpec]:
    return [ShareSpec(line.user_id, line.amount, line.percent_bp, line.shares) for line in lines]


def _lines(saved: Sequence[Mapping[str, Any]]) -> list[ShareLine]:
    return [ShareLine(**line) for line in saved]


def _saved(lines: Sequence[ShareLine]) -> list[dict[str, Any]]:
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
