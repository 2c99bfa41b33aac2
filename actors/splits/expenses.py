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

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from actors.payments.messages import format_money
from actors.runtime import Context, Executor, Transaction, row_cursor
from actors.splits import rules, store
from actors.splits.expense_money import (
    Priced,
    all_members,
    bill_total,
    conversion_for,
    edited_bill,
    edited_conversion,
    itemized,
    money_fields,
    no_bill,
    old_bill,
    saved_lines,
    share_lines,
    share_specs,
)
from actors.splits.membership import member_group, member_ids
from actors.splits.messages import (
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
    compute_shares,
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
            split_input=saved_lines(priced.lines),
            created_by=message.user_id,
            created_at=now,
            updated_at=now,
            recurrence=message.recurrence,
            next_due=None
            if message.recurrence is None
            else rules.next_occurrence(spent_on, message.recurrence),
            payers=priced.payers,
            shares=priced.shares,
            **money_fields(converted, priced),
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
            priced = itemized(members, amount, lines, items, tax, tip, spread)
        else:
            no_bill(items, tax, tip, spread)
            all_members(lines, known, "split.shares")
            if mode == "equal" and not lines:
                lines = [ShareLine(user_id=user) for user in members]
            shares = compute_shares(rules.amount(amount), mode, share_specs(lines))  # type: ignore[arg-type]
            priced = Priced(payers=[], shares=shares, lines=list(lines))
        priced.payers = split_payers(amount, [(payer.user_id, payer.amount) for payer in payers])
        rules.currency(currency)
        return priced

    async def _edited(
        self, group: GroupRow, old: ExpenseRecord, message: EditExpense
    ) -> ExpenseRecord:
        """The expense as the edit makes it (checked, priced, converted; not stored)."""
        mode = message.split_mode or ("items" if message.items is not None else old.split_mode)
        bill = edited_bill(old, message, mode)
        amount = old.amount if message.amount is None else message.amount
        if message.amount is None and bill is not None and bill != old_bill(old):
            amount = bill_total(*bill)  # the items, tax or tip changed: so does the amount
        payers = message.paid_by
        if payers is None:
            if amount != old.amount and len(old.payers) > 1:
                raise rules.invalid("paid_by", "give paid_by again when the amount changes")
            payers = [Payer(user_id=user, amount=amount) for user, _ in old.payers]
        lines = (
            message.shares
            if message.shares is not None
            else (share_lines(old.split_input) if mode == old.split_mode else [])
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
        converted = edited_conversion(group, old, message, amount, currency, spent_on)
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
            split_input=saved_lines(priced.lines),
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
            **money_fields(converted, priced),
        )
