"""Comments on expenses, the group's activity log and the CSV export: a feature part of the
Splits actor. The log itself is written by every other part, in its own transactions."""

from __future__ import annotations

import structlog

from actors.auth.messages import NAMES_MAX, GetNames, Names
from actors.runtime import Context, DomainError, rfc3339, row_cursor
from actors.splits import rules, store
from actors.splits.expenses import live_expense
from actors.splits.export import ExportRow, export_csv, people_of
from actors.splits.membership import member_group, member_ids
from actors.splits.messages import (
    ActivityPage,
    AddComment,
    CommentList,
    CommentView,
    CsvExport,
    ExportGroup,
    GetActivity,
    ListComments,
)
from actors.splits.views import activity_item, comment_view

log = structlog.get_logger("splits")


class Activity:
    """Adds and lists comments, pages through the activity log, exports the expenses.

    `context` is the Splits shard's: the splits tables, its clock and transactions.
    """

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def add_comment(self, message: AddComment) -> CommentView:
        replayed = await self._context.replayed(message, CommentView)
        if replayed is not None:
            return replayed
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        expense = await live_expense(self._pool, group, message.expense_id)
        body = rules.comment(message.text)
        now = self._context.now()
        view = CommentView(
            id=message.comment_id,
            expense_id=expense.id,
            user_id=message.user_id,
            text=body,
            created_at=rfc3339(now),
        )
        async with self._context.transaction() as tx:
            if not tx.duplicate and await store.activity.add_comment(
                tx, message.comment_id, expense.id, group.id, message.user_id, body, now
            ):
                await store.activity.add_activity(
                    tx,
                    group.id,
                    "comment_added",
                    message.user_id,
                    f"{message.user_id} commented on “{expense.description}”",
                    now,
                    expense_id=expense.id,
                )
                await self._context.remember(tx, message, view)
        return view

    async def comments(self, message: ListComments) -> CommentList:
        group = await member_group(self._pool, message.group_id, message.user_id)
        expense = await live_expense(self._pool, group, message.expense_id)
        rows = await store.activity.comments(self._pool, expense.id)
        return CommentList(items=[comment_view(row) for row in rows])

    async def page(self, message: GetActivity) -> ActivityPage:
        group = await member_group(self._pool, message.group_id, message.user_id)
        limit = max(1, min(message.limit, 200))
        before = row_cursor(message.cursor)
        rows = await store.activity.activity_page(self._pool, group.id, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return ActivityPage(
            items=[activity_item(row) for row in rows],
            next_cursor=str(rows[-1]["id"]) if more else None,
        )

    async def export(self, message: ExportGroup) -> CsvExport:
        group = await member_group(self._pool, message.group_id, message.user_id)
        members = await member_ids(self._pool, group.id)
        rows = [
            ExportRow(
                id=e.id,
                day=e.spent_on,
                description=e.description,
                category=e.category,
                amount=e.amount,
                currency=e.currency,
                payers=e.payers,
                shares=e.shares,
            )
            for e in await store.expenses.all_expenses(self._pool, group.id)
        ]
        names = await self._names(people_of(rows, members))
        safe = "".join(c if c.isalnum() else "-" for c in group.name).strip("-") or "group"
        return CsvExport(filename=f"{safe}-expenses.csv", text=export_csv(rows, members, names))

    async def _names(self, people: list[str]) -> dict[str, str]:
        """Display names from auth, who owns them (ids stay where auth cannot say)."""
        names: dict[str, str] = {}
        try:
            for start in range(0, len(people), NAMES_MAX):
                reply: Names = await self._context.ask(
                    "auth", GetNames(user_ids=people[start : start + NAMES_MAX])
                )
                names.update((p.user_id, p.name) for p in reply.people)
        except DomainError as error:
            log.warning("export_names_unavailable", code=error.code)
        return names
