"""What a conversation is about, for the chat actor: a feature part of the Splits actor.

The chat actor keeps no copy of expenses or settlements; when a conversation about one is
opened, it asks here for the group, a title and the members, and whether the caller may
see it. For a direct conversation, whether the two share a group.
"""

from __future__ import annotations

from actors.runtime import Context
from actors.splits import store
from actors.splits.membership import member_group, member_ids
from actors.splits.messages import (
    ChatSubject,
    DescribeChatSubject,
    ExpenseNotFound,
    GroupNotFound,
    NotAMember,
    SettlementNotFound,
)


class Subjects:
    """Answers `DescribeChatSubject`."""

    def __init__(self, context: Context) -> None:
        self._pool = context.pool

    async def describe(self, message: DescribeChatSubject) -> ChatSubject:
        if message.kind == "direct":
            return await self._direct(message.user_id, message.subject_id)
        if message.kind == "group":
            group = await member_group(self._pool, message.subject_id, message.user_id)
            return ChatSubject(
                group_id=group.id,
                title=group.name,
                members=await member_ids(self._pool, group.id),
            )
        if message.kind == "expense":
            expense = await store.expenses.expense(self._pool, message.subject_id)
            if (
                expense is None
                or expense.deleted
                or (message.group_id is not None and expense.group_id != message.group_id)
            ):
                raise ExpenseNotFound("No such expense.", details={"field": "expense_id"})
            group_id, title = expense.group_id, expense.description
        else:
            settlement = await store.settlements.settlement(self._pool, message.subject_id)
            if settlement is None or (
                message.group_id is not None and settlement.group_id != message.group_id
            ):
                raise SettlementNotFound("No such settlement.", details={"field": "settlement_id"})
            group_id, title = settlement.group_id, "Settlement"
        try:
            group = await member_group(self._pool, group_id, message.user_id)
        except GroupNotFound:
            # not a member: the expense does not exist for them either
            if message.kind == "expense":
                raise ExpenseNotFound("No such expense.", details={"field": "expense_id"}) from None
            raise SettlementNotFound(
                "No such settlement.", details={"field": "settlement_id"}
            ) from None
        return ChatSubject(
            group_id=group.id, title=title, members=await member_ids(self._pool, group.id)
        )

    async def _direct(self, user_id: str, other_id: str) -> ChatSubject:
        if user_id == other_id or not await store.groups.share_a_group(
            self._pool, user_id, other_id
        ):
            raise NotAMember("You share no group with this person.", details={"field": "user_id"})
        return ChatSubject(group_id=None, title="", members=sorted((user_id, other_id)))
