"""Invitations by address: a feature part of the Splits actor.

A member invites an address; notifications mails it (and tells the account that has it, in
the app). The owner of the address — once it is verified — accepts (joining) or declines;
the inviter may withdraw it first. An address with no verified account when it was invited
joins at its verification (auth's `EmailVerified`): signing up alone admits no one, since
whoever registers an address has not shown it is theirs. An invitation's id is
`<group id>.<hex>`, so an answer by id reaches the group's shard.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from actors.auth.messages import EmailVerified, normalise_email
from actors.runtime import Context, Transaction
from actors.splits import store
from actors.splits.membership import full_view, member_group, welcome
from actors.splits.messages import (
    MAX_MEMBERS,
    AlreadyInvited,
    AlreadyMember,
    AnswerInvite,
    CancelInvite,
    Done,
    GroupFull,
    GroupView,
    InviteList,
    InviteMember,
    InviteNotFound,
    InviteView,
    JoinInvited,
    ListInvites,
    ListMyInvites,
    MemberInvited,
    NotTheInviter,
    NotYourInvitation,
)
from actors.splits.store.groups import GroupRow
from actors.splits.store.invites import InviteRow
from actors.splits.views import invite_view


async def record_invite(
    tx: Transaction,
    group: GroupRow,
    email: str,
    by: str,
    now: datetime,
    *,
    invitee_user_id: str | None = None,
) -> InviteRow | None:
    """Invite `email` to the group: the row, the mail (MemberInvited) and the activity line;
    None when the address is invited already."""
    row = InviteRow(f"{group.id}.{uuid.uuid4().hex}", group.id, email, by, now, group.name)
    if not await store.invites.add_invite(tx, row):
        return None
    await tx.publish(
        MemberInvited(
            group_id=group.id,
            group_name=group.name,
            email=email,
            invited_by=by,
            invite_id=row.id,
            invitee_user_id=invitee_user_id,
        )
    )
    await store.activity.add_activity(
        tx, group.id, "member_invited", by, f"{by} invited {email}", now, data={"email": email}
    )
    return row


class Invites:
    """Sends, lists, answers and withdraws a group's invitations."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def invite(self, message: InviteMember) -> InviteView:
        known = await self._context.replayed(message, InviteView)
        if known is not None:
            return known
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        email = normalise_email(message.email, field="email")
        invitee = message.invitee_user_id
        if invitee is not None and await store.groups.is_member(self._pool, group.id, invitee):
            raise AlreadyMember("This address belongs to a member.", details={"field": "email"})
        if await store.groups.member_count(self._pool, group.id) >= MAX_MEMBERS:
            raise GroupFull(f"A group has at most {MAX_MEMBERS} members.")
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                row = await record_invite(
                    tx, group, email, message.user_id, self._context.now(), invitee_user_id=invitee
                )
                if row is None:
                    raise AlreadyInvited(
                        f"{email} is invited to {group.name} already.", details={"field": "email"}
                    )
                view = invite_view(row)
                await self._context.remember(tx, message, view)
                return view
        found = await store.invites.invite_of(self._pool, group.id, email)
        if found is None:
            raise InviteNotFound("The invitation was answered or withdrawn meanwhile.")
        return invite_view(found, group.name)

    async def list(self, message: ListInvites) -> InviteList:
        group = await member_group(self._pool, message.group_id, message.user_id)
        rows = (await store.invites.invites(self._pool, [group.id]))[group.id]
        return InviteList(items=[invite_view(row, group.name) for row in rows])

    async def list_mine(self, message: ListMyInvites) -> InviteList:
        rows = await store.invites.invites_to(self._pool, message.email.strip().lower())
        return InviteList(items=[invite_view(row) for row in rows])

    async def answer(self, message: AnswerInvite) -> GroupView | Done:
        """The invitee accepts (joins) or declines; nobody else may answer for them."""
        group = await store.groups.group(self._pool, message.group_id)
        row = None
        if group is not None:
            row = await store.invites.invite(self._pool, group.id, message.invite_id)
        if group is None or row is None:
            raise InviteNotFound("This invitation does not exist, or was answered or withdrawn.")
        if row.email != message.email.strip().lower():
            raise NotYourInvitation("This invitation was sent to another address.")
        joining = message.accept
        if joining and await store.groups.member_count(self._pool, group.id) >= MAX_MEMBERS:
            raise GroupFull(f"A group has at most {MAX_MEMBERS} members.")
        now = self._context.now()
        async with self._context.transaction() as tx:
            if not tx.duplicate and await store.invites.take_invite(tx, group.id, row.email):
                if joining and await store.groups.add_member(tx, group.id, message.user_id, now):
                    await welcome(tx, group, message.user_id, row.invited_by, now)
                elif not joining:
                    await store.activity.add_activity(
                        tx,
                        group.id,
                        "invite_declined",
                        message.user_id,
                        f"{row.email} declined the invitation",
                        now,
                    )
        return await full_view(self._pool, group) if joining else Done()

    async def cancel(self, message: CancelInvite) -> Done:
        """The inviter withdraws a pending invitation (no one else may)."""
        group = await member_group(self._pool, message.group_id, message.user_id)
        if message.invite_id is not None:
            row = await store.invites.invite(self._pool, group.id, message.invite_id)
        else:
            email = (message.email or "").strip().lower()
            row = await store.invites.invite_of(self._pool, group.id, email)
        if row is None:
            raise InviteNotFound("There is no such pending invitation in this group.")
        if row.invited_by != message.user_id:
            raise NotTheInviter("Only the member who sent this invitation can withdraw it.")
        async with self._context.transaction() as tx:
            if not tx.duplicate and await store.invites.take_invite(tx, group.id, row.email):
                await store.activity.add_activity(
                    tx,
                    group.id,
                    "invite_cancelled",
                    message.user_id,
                    f"{message.user_id} withdrew the invitation of {row.email}",
                    self._context.now(),
                )
        return Done()

    async def email_verified(self, message: EmailVerified) -> None:
        """Someone proved they own their address: every group that invited it gets them as
        a member (each group's own shard adds them)."""
        email = message.email.lower()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            for group_id in await store.invites.groups_inviting(tx, email):
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
            invited_by = await store.invites.take_invite(tx, group.id, message.email)
            if invited_by is not None and await store.groups.add_member(
                tx, group.id, message.user_id, now
            ):
                await welcome(tx, group, message.user_id, invited_by, now)
