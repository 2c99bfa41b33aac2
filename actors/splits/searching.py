"""Search and insight over a group's expenses: a feature part of the Splits actor that only
reads. The rules are actors/splits/insight.py's, the statements store/insight.py's."""

from __future__ import annotations

from actors.runtime import Context
from actors.runtime.bounds import PAGE_MAX
from actors.splits import insight
from actors.splits.insight import InsightView, SearchCursor, SearchFilter
from actors.splits.membership import member_group, member_ids
from actors.splits.messages import ExpensePage, ExpenseQuery, GetInsight, SearchExpenses
from actors.splits.store import insight as queries
from actors.splits.store.groups import GroupRow
from actors.splits.views import expense_view


class Searching:
    """Finds a group's expenses by a filter and sums them by category and by month."""

    def __init__(self, context: Context) -> None:
        self._pool = context.pool

    async def _criteria(self, message: ExpenseQuery) -> tuple[GroupRow, list[str], SearchFilter]:
        group = await member_group(self._pool, message.group_id, message.user_id)
        members = await member_ids(self._pool, group.id)
        # the group's categories are read only when one is asked for
        used = await queries.categories(self._pool, group.id) if message.category else []
        criteria = insight.search_filter(
            members=members,
            categories=insight.known_categories(used),
            text=message.text,
            person=message.person,
            category=message.category,
            currency=message.currency,
            date_from=message.date_from,
            date_to=message.date_to,
            amount_min=message.amount_min,
            amount_max=message.amount_max,
        )
        return group, members, criteria

    async def search(self, message: SearchExpenses) -> ExpensePage:
        """One page of the matching expenses, newest date first, and the next page's
        cursor (None on the last page)."""
        group, _, criteria = await self._criteria(message)
        cursor = SearchCursor.decode(message.cursor)
        limit = max(1, min(message.limit, PAGE_MAX))
        # one more than a page: whether it exists says whether there is a next page
        found = await queries.search_expenses(self._pool, group.id, criteria, limit + 1, cursor)
        more = len(found) > limit
        found = found[:limit]
        return ExpensePage(
            items=[expense_view(expense) for expense in found],
            next_cursor=queries.cursor_after(found[-1]).encode() if more else None,
        )

    async def insight(self, message: GetInsight) -> InsightView:
        """Totals by category and by month of the matching expenses, or of one member's
        own shares of them (`shares_of`)."""
        group, members, criteria = await self._criteria(message)
        person = insight.member(message.shares_of, members, "shares_of")
        by_category = await queries.totals_by_category(
            self._pool, group.id, criteria, share_of=person
        )
        by_month = await queries.totals_by_month(self._pool, group.id, criteria, share_of=person)
        return insight.insight(
            by_category, by_month, criteria, person=person, primary=group.currency
        )
