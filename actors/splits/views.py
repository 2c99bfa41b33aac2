"""Stored rows as the replies show them: pure conversions, no IO."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from actors.rates.messages import format_rate
from actors.runtime import rfc3339
from actors.splits.messages import (
    ActivityItem,
    CommentView,
    ExpenseView,
    GroupView,
    Invite,
    InviteView,
    ItemView,
    Member,
    Payer,
    SettlementView,
    Share,
)
from actors.splits.store.expenses import ExpenseRecord
from actors.splits.store.groups import GroupRow
from actors.splits.store.invites import InviteRow
from actors.splits.store.settlements import SettlementRow


def group_view(
    group: GroupRow,
    members: Sequence[tuple[str, datetime]],
    invited: Sequence[InviteRow],
    placeholders: Mapping[str, str] | None = None,
) -> GroupView:
    """`placeholders`: the names of the members with no account (named here, at once: auth
    hears of them through an event)."""
    placeholders = placeholders or {}
    return GroupView(
        id=group.id,
        name=group.name,
        currency=group.currency,
        created_by=group.created_by,
        created_at=rfc3339(group.created_at),
        members=[
            Member(
                user_id=user,
                joined_at=rfc3339(at),
                placeholder=user in placeholders,
                name=placeholders.get(user),
            )
            for user, at in members
        ],
        invited=[
            Invite(
                email=row.email,
                invited_by=row.invited_by,
                invited_at=rfc3339(row.invited_at),
                id=row.id,
            )
            for row in invited
        ],
        archived=group.archived_at is not None,
    )


def invite_view(row: InviteRow, group_name: str | None = None) -> InviteView:
    return InviteView(
        id=row.id,
        group_id=row.group_id,
        group_name=group_name if group_name is not None else row.group_name,
        email=row.email,
        invited_by=row.invited_by,
        invited_at=rfc3339(row.invited_at),
    )


def expense_view(expense: ExpenseRecord) -> ExpenseView:
    return ExpenseView(
        id=expense.id,
        group_id=expense.group_id,
        description=expense.description,
        amount=expense.amount,
        currency=expense.currency,
        date=expense.spent_on.isoformat(),
        category=expense.category,
        paid_by=[Payer(user_id=user, amount=paid) for user, paid in expense.payers],
        split_mode=expense.split_mode,
        shares=[Share(user_id=user, amount=owed) for user, owed in expense.shares],
        created_by=expense.created_by,
        created_at=rfc3339(expense.created_at),
        updated_at=rfc3339(expense.updated_at),
        version=expense.version,
        recurrence=expense.recurrence,
        recurring_from=expense.recurring_from,
        rate=_rate(expense.rate),
        rate_source=expense.rate_source,
        rate_day=None if expense.rate_day is None else expense.rate_day.isoformat(),
        group_amount=expense.group_amount,
        group_paid_by=None
        if expense.group_payers is None
        else [Payer(user_id=user, amount=paid) for user, paid in expense.group_payers],
        group_shares=None
        if expense.group_shares is None
        else [Share(user_id=user, amount=owed) for user, owed in expense.group_shares],
        items=None if expense.items is None else [item_view(item) for item in expense.items],
        tax=expense.tax,
        tip=expense.tip,
        spread=expense.spread,
    )


def item_view(item: Mapping[str, Any]) -> ItemView:
    """An itemized bill's item as stored (given and priced: see `expenses.stored_items`)."""
    return ItemView(
        description=item["description"],
        amount=item["amount"],
        split_mode=item["split_mode"],
        extra=item["extra"],
        adjusted=item["adjusted"],
        shares=[Share(user_id=user, amount=owed) for user, owed in item["parts"]],
    )


def _rate(rate: Decimal | None) -> str | None:
    return None if rate is None else format_rate(rate)


def settlement_view(row: SettlementRow) -> SettlementView:
    return SettlementView(
        id=row.id,
        group_id=row.group_id,
        from_user_id=row.from_user_id,
        to_user_id=row.to_user_id,
        amount=row.amount,
        currency=row.currency,
        method=row.method,
        status=row.status,  # type: ignore[arg-type]  # the table's CHECK keeps it one of three
        created_at=rfc3339(row.created_at),
        transfer_id=row.transfer_id,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        rate=_rate(row.rate),
        rate_source=row.rate_source,
        rate_day=None if row.rate_day is None else row.rate_day.isoformat(),
        group_amount=row.group_amount,
    )


def comment_view(row: Any) -> CommentView:
    return CommentView(
        id=row["id"],
        expense_id=row["expense_id"],
        user_id=row["user_id"],
        text=row["body"],
        created_at=rfc3339(row["created_at"]),
    )


def activity_item(row: Any) -> ActivityItem:
    return ActivityItem(
        id=row["id"],
        kind=row["kind"],
        actor_user_id=row["actor_user_id"],
        summary=row["summary"],
        created_at=rfc3339(row["created_at"]),
        expense_id=row["expense_id"],
        data=None if row["data"] is None else json.loads(row["data"]),
    )
