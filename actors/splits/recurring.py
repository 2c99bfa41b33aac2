"""Recurring expenses: a feature part of the Splits actor.

Each due copy is an independent expense, id `<original>@<date>`, so a second timer (or a
sweep and a timer together) makes nothing twice. A copy due within the sweep's interval
gets a timer; later ones, and those whose timer died with a node, are found by the sweep
that shard 0 runs.

The work is bounded: one catch-up (one CreateRecurringCopy) makes at most
RECURRING_CATCH_UP copies in one transaction and the rest follow in later messages, so
other groups' messages on the shard go between them; no copy is dated after today, after
2099-12-31, or more than `rules.CATCH_UP_DAYS` (366) days before today (a series further
behind resumes within that year). One expense thus makes at most a year of copies at once.

A series may end (issue 17): on a day (`until`: no copy dated after it) or after a number
of dates (`times`: the original counts as the first), kept in splits_recurring_ends and
checked before every copy, so an edit that restarts a series never copies past its end.
Each copy is added like any expense, so it shows in the activity ("added “Rent”"). Stopping
a series makes the expense recur no longer; the copies made stay.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import structlog

from actors.payments.messages import format_money
from actors.runtime import Context, Transaction
from actors.splits import rules, store
from actors.splits.expenses import live_expense, record_expense
from actors.splits.membership import member_group
from actors.splits.messages import (
    RECURRENCE_TIMES_MAX,
    AddExpense,
    CreateRecurringCopy,
    EditExpense,
    ListRecurring,
    RecurringList,
    RecurringView,
    SetRecurrenceEnd,
    StopRecurring,
)
from actors.splits.store.expenses import ExpenseRecord

log = structlog.get_logger("splits")

RECURRING_CATCH_UP = 24  # copies one CreateRecurringCopy makes at most (a long outage)
COUNT_MAX = 10_000  # dates counted at most for `remaining` (weekly to 2099 is fewer)


def occurrence(start: date, day: date, recurrence: str, limit: int = COUNT_MAX) -> int:
    """Which date of the series begun on `start` `day` is (1: `start` itself), counting
    no further than `limit` + 1 (a day beyond that, or off the series, is counted where
    the series passes it)."""
    index, current = 1, start
    while current < day and index <= limit:
        following = rules.next_occurrence(current, recurrence)
        if following is None:
            return limit + 1
        current, index = following, index + 1
    return index


def within_end(
    start: date, day: date, recurrence: str, until: date | None, times: int | None
) -> bool:
    """Whether a series begun on `start` that ends on `until` or after `times` dates has
    a copy on `day`."""
    if until is not None and day > until:
        return False
    return times is None or occurrence(start, day, recurrence, times) <= times


def remaining(
    start: date, next_due: date | None, recurrence: str, until: date | None, times: int | None
) -> int | None:
    """How many copies are still to come from `next_due` on (None: no end is set)."""
    if until is None and times is None:
        return None
    if next_due is None:
        return 0
    if times is not None:
        return max(times - occurrence(start, next_due, recurrence, times) + 1, 0)
    count, current = 0, next_due  # type: int, date | None
    while current is not None and until is not None and current <= until and count < COUNT_MAX:
        count += 1
        current = rules.next_occurrence(current, recurrence)
    return count


def _until(value: str | None, field: str = "until") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise rules.invalid(field, f"{field} must be YYYY-MM-DD") from None


def check_end(
    until: str | None, times: int | None, recurrence: str | None, first: date
) -> tuple[date | None, int | None]:
    """The end as given, checked against the series it ends (recurrence, first date)."""
    day = _until(until)
    if day is not None and times is not None:
        raise rules.invalid("until", "give until or times, not both")
    if (day is not None or times is not None) and recurrence is None:
        raise rules.invalid("recurrence", "an end (until or times) needs a recurrence")
    if day is not None and day < first:
        raise rules.invalid("until", f"until is before the expense's date {first.isoformat()}")
    if times is not None and not 1 <= times <= RECURRENCE_TIMES_MAX:
        raise rules.invalid("times", f"times is 1 to {RECURRENCE_TIMES_MAX}")
    return day, times


class Recurring:
    """Makes the due copies of recurring expenses, by timer and by sweep.

    `context` is the Splits shard's: the splits tables, its clock, transactions, timers
    and name; `interval` is the seconds between sweeps (0: no sweep).
    """

    def __init__(self, context: Context, *, interval: float) -> None:
        self._context = context
        self._pool = context.pool
        self._interval = interval

    def start(self) -> None:
        """Start the sweep on shard 0 (timers of far-off copies do not survive a restart)."""
        if self._context.shard == 0 and self._interval > 0:
            self._context.every(self._interval, self.sweep, "recurring")

    async def sweep(self) -> None:
        """Tell each due recurring expense's own shard to make its copies."""
        today = self._context.now().date()
        for group_id, expense_id in await store.expenses.due_recurring(self._pool, today):
            await self._context.tell_self(
                CreateRecurringCopy(group_id=group_id, expense_id=expense_id)
            )

    def arm(self, expense: ExpenseRecord) -> None:
        """A timer for the next copy when it is due within the sweep's interval (later
        ones are found by the sweep)."""
        if expense.next_due is None:
            return
        due = datetime(
            expense.next_due.year, expense.next_due.month, expense.next_due.day, tzinfo=UTC
        )
        delay = max(due.timestamp() - self._context.clock(), 0.0)
        if delay <= self._interval:
            self._context.schedule(
                delay, CreateRecurringCopy(group_id=expense.group_id, expense_id=expense.id)
            )

    async def copy(self, message: CreateRecurringCopy) -> None:
        """Make the copies of a recurring expense that are due, at most RECURRING_CATCH_UP
        (then a timer for the rest), none older than `rules.CATCH_UP_DAYS`."""
        group = await store.groups.group(self._pool, message.group_id)
        original = await store.expenses.expense(self._pool, message.expense_id)
        if group is None or original is None or original.deleted or original.recurrence is None:
            return
        today = self._context.now().date()
        due = rules.catch_up_from(original.next_due, original.recurrence, today)
        if due != original.next_due:
            log.info(
                "recurring_copies_skipped",
                expense_id=original.id,
                due=str(original.next_due),
                resumed=str(due),
            )
        made = 0
        until, times = await store.recurring.end_of(self._pool, original.id) or (None, None)
        start, every = original.spent_on, original.recurrence
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            while due is not None and due <= today and made < RECURRING_CATCH_UP:
                if not within_end(start, due, every, until, times):
                    break
                now = self._context.now()
                copy = ExpenseRecord(
                    id=f"{original.id}@{due.isoformat()}",
                    group_id=group.id,
                    description=original.description,
                    amount=original.amount,
                    currency=original.currency,
                    spent_on=due,
                    category=original.category,
                    split_mode=original.split_mode,
                    split_input=original.split_input,
                    created_by=original.created_by,
                    created_at=now,
                    updated_at=now,
                    recurring_from=original.id,
                    payers=original.payers,
                    shares=original.shares,
                    # a copy keeps the original's rate (record_expense converts its lines)
                    # and its items
                    rate=original.rate,
                    rate_source=original.rate_source,
                    rate_day=original.rate_day,
                    group_amount=original.group_amount,
                    items=original.items,
                    tax=original.tax,
                    tip=original.tip,
                    spread=original.spread,
                )
                await record_expense(tx, group, copy, original.created_by, now)
                due = rules.next_occurrence(due, original.recurrence)
                made += 1
            if due is not None and not within_end(start, due, every, until, times):
                due = None  # the series ended: no next copy, off the active list
            await store.expenses.set_next_due(tx, original.id, due)
        original.next_due = due
        self.arm(original)
        if made:
            log.info("recurring_copies_made", expense_id=original.id, copies=made)

    # ── issue 17: ends, the active list, stopping ──────────────────────────────────────

    async def check(self, message: AddExpense | EditExpense) -> None:
        """Refuse an end that does not fit its series, before the expense changes."""
        if message.until is None and message.times is None:
            return
        if isinstance(message, AddExpense):
            day = rules.spent_on(message.date, self._context.now().date())
            check_end(message.until, message.times, message.recurrence, day)
            return
        old = await store.expenses.expense(self._pool, message.expense_id)
        if old is None or old.group_id != message.group_id or old.deleted:
            return  # the edit itself says the expense is not there
        recurrence = old.recurrence
        if message.recurrence is not None:
            recurrence = None if message.recurrence == "none" else message.recurrence
        first = None if message.date is None else _until(message.date, "date")
        check_end(message.until, message.times, recurrence, first or old.spent_on)

    async def written(self, tx: Transaction, message: AddExpense | EditExpense) -> None:
        """Keep the end an added or edited expense was given, in the transaction that
        writes the expense, and close its series when that end is already reached."""
        if message.until is None and message.times is None:
            return
        await store.recurring.set_end(
            tx,
            message.expense_id,
            _until(message.until),
            message.times,
            replace=not isinstance(message, AddExpense),
        )
        await self._close_if_ended(tx, message.expense_id)

    async def _close_if_ended(self, db: Any, expense_id: str) -> None:
        expense = await store.expenses.expense(db, expense_id)
        if expense is None or expense.recurrence is None or expense.next_due is None:
            return
        until, times = await store.recurring.end_of(db, expense_id) or (None, None)
        if not within_end(expense.spent_on, expense.next_due, expense.recurrence, until, times):
            await store.expenses.set_next_due(db, expense_id, None)

    async def list(self, message: ListRecurring) -> RecurringList:
        """The group's recurring expenses with a copy still to come, soonest first."""
        group = await member_group(self._pool, message.group_id, message.user_id)
        return RecurringList(
            items=[_row_view(row) for row in await store.recurring.active(self._pool, group.id)]
        )

    async def _view(self, expense_id: str) -> RecurringView:
        expense = await store.expenses.expense(self._pool, expense_id)
        assert expense is not None, "read after it was found"
        until, times = await store.recurring.end_of(self._pool, expense_id) or (None, None)
        copies = await store.recurring.copies_of(self._pool, expense_id)
        return RecurringView(
            expense_id=expense.id,
            description=expense.description,
            amount=expense.amount,
            currency=expense.currency,
            recurrence=expense.recurrence,
            started_on=expense.spent_on.isoformat(),
            next_date=None if expense.next_due is None else expense.next_due.isoformat(),
            until=None if until is None else until.isoformat(),
            times=times,
            copies=copies,
            remaining=None
            if expense.recurrence is None
            else remaining(expense.spent_on, expense.next_due, expense.recurrence, until, times),
            created_by=expense.created_by,
        )

    async def stop(self, message: StopRecurring) -> RecurringView:
        """No more copies; the ones made stay. Stopping a stopped series changes nothing."""
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        expense = await live_expense(self._pool, group, message.expense_id)
        if expense.recurrence is None:
            return await self._view(expense.id)
        now = self._context.now()
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.expenses.record_history(tx, expense, "edited", message.user_id, now)
                await store.recurring.stop(tx, expense.id, now)
                await store.activity.add_activity(
                    tx,
                    group.id,
                    "recurring_stopped",
                    message.user_id,
                    f"{message.user_id} stopped repeating “{expense.description}”"
                    f" ({format_money(expense.amount, expense.currency)}, {expense.recurrence})",
                    now,
                    expense_id=expense.id,
                )
        log.info("recurring_stopped", expense_id=expense.id)
        return await self._view(expense.id)

    async def set_end(self, message: SetRecurrenceEnd) -> RecurringView:
        """Give a recurring expense a new end (or none); copies past it are not made."""
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        expense = await live_expense(self._pool, group, message.expense_id)
        until, times = check_end(message.until, message.times, expense.recurrence, expense.spent_on)
        if expense.recurrence is None:
            raise rules.invalid("recurrence", "this expense does not repeat")
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.recurring.set_end(tx, expense.id, until, times, replace=True)
                if expense.next_due is None:
                    # an end moved later reopens a series that had reached the old one
                    following = rules.next_occurrence(expense.spent_on, expense.recurrence)
                    await store.expenses.set_next_due(tx, expense.id, following)
                await self._close_if_ended(tx, expense.id)
        view = await self._view(expense.id)
        reopened = await store.expenses.expense(self._pool, expense.id)
        if reopened is not None:
            self.arm(reopened)
        return view


def _row_view(row: Any) -> RecurringView:
    until, times = row["until"], row["times"]
    return RecurringView(
        expense_id=row["id"],
        description=row["description"],
        amount=row["amount"],
        currency=row["currency"],
        recurrence=row["recurrence"],
        started_on=row["spent_on"].isoformat(),
        next_date=None if row["next_due"] is None else row["next_due"].isoformat(),
        until=None if until is None else until.isoformat(),
        times=times,
        copies=row["copies"],
        remaining=remaining(row["spent_on"], row["next_due"], row["recurrence"], until, times),
        created_by=row["created_by"],
    )
