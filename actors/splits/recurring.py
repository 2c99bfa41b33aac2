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
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from actors.runtime import Context
from actors.splits import rules, store
from actors.splits.expenses import record_expense
from actors.splits.messages import CreateRecurringCopy
from actors.splits.store.expenses import ExpenseRecord

log = structlog.get_logger("splits")

RECURRING_CATCH_UP = 24  # copies one CreateRecurringCopy makes at most (a long outage)


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
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            while due is not None and due <= today and made < RECURRING_CATCH_UP:
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
                )
                await record_expense(tx, group, copy, original.created_by, now)
                due = rules.next_occurrence(due, original.recurrence)
                made += 1
            await store.expenses.set_next_due(tx, original.id, due)
        original.next_due = due
        self.arm(original)
        if made:
            log.info("recurring_copies_made", expense_id=original.id, copies=made)
