"""Who is in a group, as every feature part of the Splits actor asks it: the group if the
caller is a member, its full view, the welcome of someone who joined, and whether a new
settlement pays another member."""

from __future__ import annotations

from datetime import datetime

from actors.runtime import Executor, Transaction
from actors.splits import rules, store
from actors.splits.messages import (
    GroupArchived,
    GroupNotFound,
    GroupView,
    MemberAdded,
    NotAMember,
)
from actors.splits.store.groups import GroupRow
from actors.splits.views import group_view


async def member_group(
    db: Executor, group_id: str, user_id: str, *, writing: bool = False
) -> GroupRow:
    """The group, if `user_id` is in it; to anyone else it does not exist. `writing`: it
    must not be archived (GroupArchived)."""
    group = await store.groups.group(db, group_id)
    if group is None or not await store.groups.is_member(db, group_id, user_id):
        raise GroupNotFound("No such group among yours.", details={"field": "group_id"})
    if writing and group.archived_at is not None:
        raise GroupArchived(
            f"{group.name} is archived, so it is read-only; bring it back to change it."
        )
    return group


async def check_new_settlement(
    db: Executor, group: GroupRow, payer: str, payee: str, amount: int, currency: str
) -> None:
    """A new settlement, recorded at once or prepared for a transfer the edge makes, pays
    another member of the group a valid amount (the same refusals either way)."""
    if payee == payer:
        raise rules.invalid("to_user_id", "a settlement pays someone else")
    if not await store.groups.is_member(db, group.id, payee):
        raise NotAMember(f"{payee} is not a member of this group.", details={"field": "to_user_id"})
    rules.amount(amount)
    rules.currency(currency)


async def full_view(db: Executor, group: GroupRow) -> GroupView:
    """The group with its members (placeholders marked) and pending invitations."""
    members = (await store.groups.members(db, [group.id]))[group.id]
    invited = (await store.invites.invites(db, [group.id]))[group.id]
    placeholders = await store.placeholders.unclaimed(db, [group.id])
    return group_view(group, members, invited, placeholders)


async def member_ids(db: Executor, group_id: str) -> list[str]:
    """The group's members in joining order."""
    return [user for user, _ in (await store.groups.members(db, [group_id]))[group_id]]


async def welcome(tx: Transaction, group: GroupRow, user_id: str, by: str, now: datetime) -> None:
    """A member joined (added, invited, by a link): the activity line and MemberAdded."""
    await store.activity.add_activity(
        tx,
        group.id,
        "member_added",
        by,
        f"{by} added {user_id}",
        now,
        data={"user_id": user_id},
    )
    await tx.publish(
        MemberAdded(group_id=group.id, group_name=group.name, member_user_id=user_id, added_by=by)
    )
