"""Groups, members and invites: a feature part of the Splits actor.

An invite is by email; once that address is proven to be someone's (auth's `EmailVerified`:
a verification link spent, or an OAuth sign-in whose provider vouched for the address) each
inviting group's own shard makes them a member. Signing up alone admits no one: whoever
registers an address has not shown they own it. A member leaves only with every balance
settled.
"""

from __future__ import annotations

from datetime import datetime

from actors.auth.messages import EmailVerified
from actors.payments.messages import format_money
from actors.runtime import Context, Executor, Transaction
from actors.splits import rules, store
from actors.splits.messages import (
    MAX_MEMBERS,
    AddMember,
    AlreadyMember,
    CancelInvite,
    CreateGroup,
    DeleteGroup,
    Done,
    GetGroup,
    GroupArchived,
    GroupFull,
    GroupList,
    GroupNotFound,
    GroupView,
    InviteNotFound,
    JoinInvited,
    ListGroups,
    MemberAdded,
    MemberInvited,
    NotAMember,
    NotTheInviter,
    RemoveMember,
    UnsettledBalance,
    UpdateGroup,
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


async def full_view(db: Executor, group: GroupRow) -> GroupView:
    """The group with its members and pending invitations, as the API shows it."""
    members = (await store.groups.members(db, [group.id]))[group.id]
    invited = (await store.groups.invites(db, [group.id]))[group.id]
    return group_view(group, members, invited)


async def member_ids(db: Executor, group_id: str) -> list[str]:
    """The group's members in joining order."""
    return [user for user, _ in (await store.groups.members(db, [group_id]))[group_id]]


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
        invited = await store.groups.invites(self._pool, ids)
        return GroupList(groups=[group_view(g, members[g.id], invited[g.id]) for g in groups])

    async def get(self, message: GetGroup) -> GroupView:
        return await self.view(await member_group(self._pool, message.group_id, message.user_id))

    async def add_member(self, message: AddMember) -> GroupView:
        known = await self._context.replayed(message, GroupView)
        if known is not None:
            return known
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        if (message.member_user_id is None) == (message.email is None):
            raise rules.invalid("user_id", "give either user_id or email")
        if await store.groups.member_count(self._pool, group.id) >= MAX_MEMBERS:
            raise GroupFull(f"A group has at most {MAX_MEMBERS} members.")
        now = self._context.now()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                pass
            elif message.member_user_id is not None:
                if not await store.groups.add_member(tx, group.id, message.member_user_id, now):
                    raise AlreadyMember(
                        "This user is a member already.", details={"field": "user_id"}
                    )
                await welcome(tx, group, message.member_user_id, message.user_id, now)
            elif message.email is not None and await store.groups.add_invite(
                tx, group.id, message.email, message.user_id, now
            ):
                await tx.publish(
                    MemberInvited(
                        group_id=group.id,
                        group_name=group.name,
                        email=message.email,
                        invited_by=message.user_id,
                    )
                )
                await store.activity.add_activity(
                    tx,
                    group.id,
                    "member_invited",
                    message.user_id,
                    f"{message.user_id} invited {message.email}",
                    now,
                    data={"email": message.email},
                )
            if not tx.duplicate:
                view = await self.view(group, tx)
                await self._context.remember(tx, message, view)
                return view
        return await self.view(group)

    async def email_verified(self, message: EmailVerified) -> None:
        """Someone proved they own their address: every group that invited it gets them as
        a member (each group's own shard adds them)."""
        email = message.email.lower()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            for group_id in await store.groups.groups_inviting(tx, email):
                await tx.tell(
                    self._context.name,
                    JoinInvited(group_id=group_id, user_id=message.user_id, email=email),
                )

    async def join_invited(self, message: JoinInvited) -> None:
        group = await store.groups.group(self._pool, message.group_id)
        if group is None:
            return
        now = self._context.now()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            invited_by = await store.groups.take_invite(tx, group.id, message.email)
            if invited_by is None:
                return
            if await store.groups.add_member(tx, group.id, message.user_id, now):
                await welcome(tx, group, message.user_id, invited_by, now)

    async def cancel_invite(self, message: CancelInvite) -> Done:
        """The inviter withdraws a pending invitation (no one else may)."""
        group = await member_group(self._pool, message.group_id, message.user_id)
        email = message.email.strip().lower()
        by = await store.groups.inviter(self._pool, group.id, email)
        if by is None:
            raise InviteNotFound("There is no pending invitation of this address.")
        if by != message.user_id:
            raise NotTheInviter("Only the member who sent this invitation can withdraw it.")
        async with self._context.transaction() as tx:
            if not tx.duplicate and await store.groups.cancel_invite(tx, group.id, email):
                await _activity(
                    tx,
                    group.id,
                    "invite_cancelled",
                    message.user_id,
                    self._context.now(),
                    f"{message.user_id} withdrew the invitation of {email}",
                )
        return Done()

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
        return Done()


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


async def _activity(
    tx: Transaction, group_id: str, kind: str, user_id: str, now: datetime, summary: str
) -> None:
    await store.activity.add_activity(tx, group_id, kind, user_id, summary, now)
