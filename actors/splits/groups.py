"""Groups and members: a feature part of the Splits actor.

A member is added by id, invited by address (`invites`), or is a placeholder: a name with
no account, split with as anyone else, whose place (and history) someone claims later
through a claim link (`links`). A member leaves only with every balance settled; a group is
deleted only when nobody in it owes anything.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from actors.payments.messages import format_money
from actors.runtime import Context, Executor, Transaction, rfc3339
from actors.splits import rules, store
from actors.splits.invites import record_invite
from actors.splits.membership import full_view, member_group, welcome
from actors.splits.messages import (
    GROUP_NAME_MAX,
    MAX_MEMBERS,
    AddMember,
    AlreadyMember,
    BalanceLine,
    CreateGroup,
    DeleteGroup,
    Done,
    GetGroup,
    GetGroupHeader,
    GroupArchived,
    GroupDeleted,
    GroupFull,
    GroupHeader,
    GroupList,
    GroupView,
    ListGroups,
    MemberRemoved,
    NotAMember,
    PlaceholderAdded,
    RemoveMember,
    UnsettledBalance,
    UpdateGroup,
)
from actors.splits.store.groups import GroupRow
from actors.splits.store.placeholders import PlaceholderRow
from actors.splits.views import group_view


class Groups:
    """Creates groups, adds (or invites) and removes members, and shows groups.

    `context` is the Splits shard's: the splits tables, its clock, transactions and name.
    """

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def view(self, group: GroupRow, db: Executor | None = None) -> GroupView:
        return await full_view(db or self._pool, group)

    async def create(self, message: CreateGroup) -> GroupView:
        known = await self._context.replayed(message, GroupView)
        if known is not None:
            return known
        name = rules.group_name(message.name)
        currency = rules.currency(message.currency)
        now = self._context.now()
        async with self._context.transaction() as tx:
            if not tx.duplicate and await store.groups.insert_group(
                tx, message.group_id, name, currency, message.user_id, now
            ):
                await store.activity.add_activity(
                    tx,
                    message.group_id,
                    "group_created",
                    message.user_id,
                    f"{message.user_id} created the group {name}",
                    now,
                )
                view = await self.view(
                    await member_group(tx, message.group_id, message.user_id), tx
                )
                await self._context.remember(tx, message, view)
                return view
        return await self.view(await member_group(self._pool, message.group_id, message.user_id))

    async def list_groups(self, message: ListGroups) -> GroupList:
        groups = await store.groups.groups_of(
            self._pool, message.user_id, archived=message.archived
        )
        ids = [group.id for group in groups]
        members = await store.groups.members(self._pool, ids)
        invited = await store.invites.invites(self._pool, ids)
        placeholders = await store.placeholders.unclaimed(self._pool, ids)
        return GroupList(
            groups=[group_view(g, members[g.id], invited[g.id], placeholders) for g in groups]
        )

    async def get(self, message: GetGroup) -> GroupView:
        return await self.view(await member_group(self._pool, message.group_id, message.user_id))

    async def header(self, message: GetGroupHeader) -> GroupHeader:
        group = await member_group(self._pool, message.group_id, message.user_id)
        nets = await store.balances.unsettled(self._pool, group.id, message.user_id)
        return GroupHeader(
            id=group.id,
            name=group.name,
            currency=group.currency,
            created_by=group.created_by,
            created_at=rfc3339(group.created_at),
            member_count=await store.groups.member_count(self._pool, group.id),
            nets=[
                BalanceLine(user_id=message.user_id, currency=currency, net=net)
                for currency, net in sorted(nets.items())
            ],
            archived=group.archived_at is not None,
        )

    async def add_member(self, message: AddMember) -> GroupView:
        """A known user by id, an invitation of an address, or a placeholder by name."""
        known = await self._context.replayed(message, GroupView)
        if known is not None:
            return known
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        given = [message.member_user_id, message.email, message.name]
        if sum(value is not None for value in given) != 1:
            raise rules.invalid("user_id", "give exactly one of user_id, email or name")
        name = rules.text(message.name, "name", GROUP_NAME_MAX) if message.name else None
        if await store.groups.member_count(self._pool, group.id) >= MAX_MEMBERS:
            raise GroupFull(f"A group has at most {MAX_MEMBERS} members.")
        now = self._context.now()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return await self.view(group)
            if message.member_user_id is not None:
                if not await store.groups.add_member(tx, group.id, message.member_user_id, now):
                    raise AlreadyMember(
                        "This user is a member already.", details={"field": "user_id"}
                    )
                await welcome(tx, group, message.member_user_id, message.user_id, now)
            elif message.email is not None:
                await record_invite(tx, group, message.email, message.user_id, now)
            elif name is not None:
                await self._add_placeholder(tx, group, message, name, now)
            view = await self.view(group, tx)
            await self._context.remember(tx, message, view)
            return view

    async def _add_placeholder(
        self, tx: Transaction, group: GroupRow, message: AddMember, name: str, now: datetime
    ) -> None:
        placeholder_id = message.placeholder_id or str(uuid.uuid4())
        row = PlaceholderRow(placeholder_id, group.id, name, message.user_id, now)
        if not await store.placeholders.add_placeholder(tx, row):
            raise AlreadyMember("This member exists already.", details={"field": "name"})
        await store.groups.add_member(tx, group.id, placeholder_id, now)
        await tx.publish(
            PlaceholderAdded(
                group_id=group.id,
                placeholder_id=placeholder_id,
                name=name,
                added_by=message.user_id,
            )
        )
        await welcome(tx, group, placeholder_id, message.user_id, now)

    async def remove_member(self, message: RemoveMember) -> Done:
        group = await member_group(self._pool, message.group_id, message.user_id)
        leaving = message.member_user_id
        if not await store.groups.is_member(self._pool, group.id, leaving):
            raise NotAMember(
                "This user is not a member of the group.", details={"field": "user_id"}
            )
        owing = await store.balances.unsettled(self._pool, group.id, leaving)
        if owing:
            shown = ", ".join(format_money(net, code) for code, net in sorted(owing.items()))
            raise UnsettledBalance(
                f"{leaving} still has a balance of {shown} in this group; settle up first.",
                details={"field": "user_id", "balances": owing},
            )
        now = self._context.now()
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.groups.remove_member(tx, group.id, leaving)
                left = leaving == message.user_id
                await store.activity.add_activity(
                    tx,
                    group.id,
                    "member_left" if left else "member_removed",
                    message.user_id,
                    f"{leaving} left the group" if left else f"{message.user_id} removed {leaving}",
                    now,
                    data={"user_id": leaving},
                )
                await tx.publish(
                    MemberRemoved(
                        group_id=group.id, member_user_id=leaving, removed_by=message.user_id
                    )
                )
        return Done()

    # ── the group's own lifecycle ──────────────────────────────────────────────────────

    async def update(self, message: UpdateGroup) -> GroupView:
        """Rename and/or archive or bring back; an archived group may only be brought back
        (and renamed with it)."""
        group = await member_group(self._pool, message.group_id, message.user_id)
        if group.archived_at is not None and message.archived is not False:
            raise GroupArchived(
                f"{group.name} is archived, so it is read-only; bring it back to change it."
            )
        name = rules.group_name(message.name) if message.name is not None else None
        now = self._context.now()
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                if name is not None and name != group.name:
                    await store.groups.rename_group(tx, group.id, name)
                    await _activity(
                        tx,
                        group.id,
                        "group_renamed",
                        message.user_id,
                        now,
                        f"{message.user_id} renamed the group {name}",
                    )
                if message.archived is not None and message.archived != (
                    group.archived_at is not None
                ):
                    await store.groups.archive_group(
                        tx, group.id, now if message.archived else None
                    )
                    kind = "group_archived" if message.archived else "group_unarchived"
                    verb = "archived" if message.archived else "brought back"
                    await _activity(
                        tx,
                        group.id,
                        kind,
                        message.user_id,
                        now,
                        f"{message.user_id} {verb} the group",
                    )
        return await self.view(await member_group(self._pool, group.id, message.user_id))

    async def delete(self, message: DeleteGroup) -> Done:
        """Gone for every member, once nobody owes anybody anything in it."""
        group = await member_group(self._pool, message.group_id, message.user_id)
        owed = await store.balances.group_unsettled(self._pool, group.id)
        if owed:
            shown = ", ".join(format_money(n, code) for code, n in sorted(owed.items()))
            raise UnsettledBalance(
                f"{group.name} still has {shown} owed between its members; settle up first.",
                details={"balances": owed},
            )
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.groups.delete_group(tx, group.id, self._context.now())
                await tx.publish(
                    GroupDeleted(
                        group_id=group.id, group_name=group.name, deleted_by=message.user_id
                    )
                )
        return Done()


async def _activity(
    tx: Transaction, group_id: str, kind: str, user_id: str, now: datetime, summary: str
) -> None:
    await store.activity.add_activity(tx, group_id, kind, user_id, summary, now)
