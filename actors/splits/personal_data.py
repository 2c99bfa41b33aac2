"""A user's own data across all their groups: a feature part of the Splits actor.

Answers DescribeMySplits for the data export (their groups, the expenses they made or
share in, their settlements and comments, each bounded) and for an account deletion's
check (where their balance is not zero and whom settling up would pay or be paid by,
read from each group's kept settle plan exactly as the summary is). Reads only: each
group's own shard keeps writing its rows.

When an account is deleted (AccountDeleted, from auth) the person leaves every group they
are in: a RemoveMember per group, told through the outbox to that group's own shard (its
one writer), where it is refused as any leaving is if a balance appeared meanwhile. So no
one can split a new expense with an account nobody can sign in to.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import structlog

from actors.auth.messages import AccountDeleted
from actors.runtime import Context, rfc3339
from actors.splits import store
from actors.splits.messages import (
    PERSONAL_ROWS_MAX,
    DescribeMySplits,
    MyComment,
    MyDebt,
    MyExpense,
    MyGroup,
    MyGroupBalance,
    MySettlement,
    MySplits,
    RemoveMember,
)
from actors.splits.shares import PlannedTransfer, settle_plan
from actors.splits.store import personal

log = structlog.get_logger("actors.splits")


class PersonalData:
    """What splits keeps about one user, as DescribeMySplits answers it; a deleted
    account leaves its groups."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def account_deleted(self, event: AccountDeleted) -> None:
        """The deleted account leaves each of its groups (each group's shard decides)."""
        me = event.user_id
        groups = await personal.groups(self._pool, me, PERSONAL_ROWS_MAX)
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            for row in groups:
                leave = RemoveMember(group_id=row["id"], user_id=me, member_user_id=me)
                await tx.tell(self._context.name, leave)
        log.info("deleted_account_leaves_groups", user_id=me, groups=len(groups))

    async def describe(self, message: DescribeMySplits) -> MySplits:
        me = message.user_id
        balances, debts = await self._standing(me)
        if not message.records:
            return MySplits(
                groups=[], expenses=[], settlements=[], comments=[], balances=balances, debts=debts
            )
        cap = PERSONAL_ROWS_MAX + 1  # one more than kept says whether any was left out
        groups = await personal.groups(self._pool, me, cap)
        expenses = await personal.expenses(self._pool, me, cap)
        settlements = await personal.settlements(self._pool, me, cap)
        comments = await personal.comments(self._pool, me, cap)
        truncated = any(len(rows) == cap for rows in (groups, expenses, settlements, comments))
        keep = PERSONAL_ROWS_MAX
        return MySplits(
            groups=[_group(row) for row in groups[:keep]],
            expenses=[_expense(row) for row in expenses[:keep]],
            settlements=[_settlement(row) for row in settlements[:keep]],
            comments=[_comment(row) for row in comments[:keep]],
            balances=balances,
            debts=debts,
            truncated=truncated,
        )

    async def _standing(self, me: str) -> tuple[list[MyGroupBalance], list[MyDebt]]:
        """The user's non-zero nets per group, and the settle plans' payments to or from
        them (the kept plan, as the group's settle-up page shows it)."""
        names = {row["id"]: row["name"] for row in await personal.unsettled_groups(self._pool, me)}
        ids = list(names)
        nets: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for group_id, user, currency, net in await store.balances.balances_of_groups(
            self._pool, ids
        ):
            nets[(group_id, currency)][user] = net
        plans = await store.balances.saved_plans_of_groups(self._pool, ids)
        balances: list[MyGroupBalance] = []
        debts: list[MyDebt] = []
        for (group_id, currency), group_nets in sorted(nets.items()):
            name = names[group_id]
            if group_nets.get(me, 0):
                balances.append(
                    MyGroupBalance(
                        group_id=group_id, group_name=name, currency=currency, net=group_nets[me]
                    )
                )
            previous = [PlannedTransfer(a, b, n) for a, b, n in plans.get((group_id, currency), [])]
            for transfer in settle_plan(group_nets, previous):
                if me not in (transfer.from_user_id, transfer.to_user_id):
                    continue
                owing = transfer.from_user_id == me
                debts.append(
                    MyDebt(
                        group_id=group_id,
                        group_name=name,
                        other_user_id=transfer.to_user_id if owing else transfer.from_user_id,
                        currency=currency,
                        amount=transfer.amount if owing else -transfer.amount,
                    )
                )
        return balances, debts


def _group(row: Any) -> MyGroup:
    return MyGroup(
        group_id=row["id"],
        name=row["name"],
        currency=row["currency"],
        joined_at=rfc3339(row["joined_at"]),
        archived=row["archived_at"] is not None,
    )


def _expense(row: Any) -> MyExpense:
    return MyExpense(
        expense_id=row["id"],
        group_id=row["group_id"],
        description=row["description"],
        amount=row["amount"],
        currency=row["currency"],
        spent_on=row["spent_on"].isoformat(),
        category=row["category"],
        created_by=row["created_by"],
        created_at=rfc3339(row["created_at"]),
        deleted=row["deleted"],
        paid=row["paid"],
        owed=row["owed"],
    )


def _settlement(row: Any) -> MySettlement:
    return MySettlement(
        settlement_id=row["id"],
        group_id=row["group_id"],
        from_user_id=row["from_user_id"],
        to_user_id=row["to_user_id"],
        amount=row["amount"],
        currency=row["currency"],
        method=row["method"],
        status=row["status"],
        created_at=rfc3339(row["created_at"]),
    )


def _comment(row: Any) -> MyComment:
    return MyComment(
        comment_id=row["id"],
        group_id=row["group_id"],
        expense_id=row["expense_id"],
        body=row["body"],
        created_at=rfc3339(row["created_at"]),
    )
