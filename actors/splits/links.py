"""Join links: a member makes a link (`<group id>.<secret>`) that lets whoever holds it
join, until it expires, is used up, or is revoked; a feature part of the Splits actor.

Only the secret's SHA-256 is stored, so the table cannot be turned back into links. The
edge lets only a caller with a verified address use a link (the same rule as invitations).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from actors.runtime import Context, rfc3339
from actors.splits import store
from actors.splits.membership import full_view, member_group, welcome
from actors.splits.messages import (
    MAX_MEMBERS,
    AlreadyMember,
    CreateClaimLink,
    CreateJoinLink,
    Done,
    GroupFull,
    GroupView,
    JoinByLink,
    JoinLinkExpired,
    JoinLinkList,
    JoinLinkNotFound,
    JoinLinkUsedUp,
    JoinLinkView,
    ListJoinLinks,
    MemberAdded,
    NotAPlaceholder,
    PlaceholderClaimed,
    RevokeJoinLink,
)
from actors.splits.store.groups import GroupRow
from actors.splits.store.links import LinkRow


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def link_view(link: LinkRow, token: str | None = None) -> JoinLinkView:
    return JoinLinkView(
        id=link.id,
        group_id=link.group_id,
        created_by=link.created_by,
        created_at=rfc3339(link.created_at),
        expires_at=rfc3339(link.expires_at),
        max_uses=link.max_uses,
        uses=link.uses,
        token=token,
        placeholder_id=link.placeholder_id,
    )


class Links:
    """Makes, lists, revokes and honours a group's join links."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def create(self, message: CreateJoinLink) -> JoinLinkView:
        replayed = await self._context.replayed(message, JoinLinkView)
        if replayed is not None:
            return replayed
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        return await self._make(
            group.id, message.user_id, message.expires_in, message.max_uses, message
        )

    async def create_claim(self, message: CreateClaimLink) -> JoinLinkView:
        """A one-use link to take the placeholder's place; a new one revokes none before."""
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        if (
            await store.placeholders.placeholder(self._pool, group.id, message.placeholder_id)
            is None
        ):
            raise NotAPlaceholder(
                "No member of this group waits to be claimed by that id.",
                details={"field": "placeholder_id"},
            )
        return await self._make(
            group.id, message.user_id, message.expires_in, 1, None, message.placeholder_id
        )

    async def _make(
        self,
        group_id: str,
        by: str,
        expires_in: int,
        max_uses: int,
        keyed: CreateJoinLink | None,
        placeholder_id: str | None = None,
    ) -> JoinLinkView:
        now = self._context.now()
        secret = secrets.token_urlsafe(24)
        link = LinkRow(
            id=str(uuid.uuid4()),
            group_id=group_id,
            created_by=by,
            created_at=now,
            expires_at=now + timedelta(seconds=expires_in),
            max_uses=max_uses,
            uses=0,
            revoked_at=None,
            placeholder_id=placeholder_id,
        )
        view = link_view(link, token=f"{group_id}.{secret}")
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.links.insert_link(tx, link, secret_hash(secret))
                if keyed is not None:
                    await self._context.remember(tx, keyed, view)
        return view

    async def list(self, message: ListJoinLinks) -> JoinLinkList:
        group = await member_group(self._pool, message.group_id, message.user_id)
        rows = await store.links.links_of(self._pool, group.id)
        return JoinLinkList(items=[link_view(row) for row in rows])

    async def revoke(self, message: RevokeJoinLink) -> Done:
        group = await member_group(self._pool, message.group_id, message.user_id)
        async with self._context.transaction() as tx:
            if not tx.duplicate and not await store.links.revoke_link(
                tx, group.id, message.link_id, self._context.now()
            ):
                raise JoinLinkNotFound("No such link in this group.")
        return Done()

    async def join(self, message: JoinByLink) -> GroupView:
        group = await store.groups.group(self._pool, message.group_id)
        link = None
        if group is not None:
            link = await store.links.link_by_secret(
                self._pool, group.id, secret_hash(message.secret)
            )
        if group is None or link is None or link.revoked_at is not None:
            raise JoinLinkNotFound("This join link does not exist or was revoked.")
        now = self._context.now()
        if link.expires_at <= now:
            raise JoinLinkExpired("This join link has expired; ask for a new one.")
        if await store.groups.is_member(self._pool, group.id, message.user_id):
            raise AlreadyMember("You are a member of this group already.")
        if link.uses >= link.max_uses:
            raise JoinLinkUsedUp("This join link has been used as often as it may.")
        if link.placeholder_id is not None:
            await self._claim(group, link, message.user_id)
            return await full_view(self._pool, group)
        if await store.groups.member_count(self._pool, group.id) >= MAX_MEMBERS:
            raise GroupFull(f"A group has at most {MAX_MEMBERS} members.")
        async with self._context.transaction() as tx:
            if not tx.duplicate and await store.groups.add_member(
                tx, group.id, message.user_id, now
            ):
                await store.links.use_link(tx, link.id)
                await welcome(tx, group, message.user_id, link.created_by, now)
        return await full_view(self._pool, group)

    async def _claim(self, group: GroupRow, link: LinkRow, user_id: str) -> None:
        """`user_id` takes the placeholder's place: every row of theirs in the group."""
        placeholder_id = link.placeholder_id
        assert placeholder_id is not None
        if await store.placeholders.placeholder(self._pool, group.id, placeholder_id) is None:
            raise JoinLinkUsedUp("This place was claimed already.")
        if await store.placeholders.has_history(self._pool, group.id, user_id):
            raise AlreadyMember(
                "You have expenses or settlements in this group from before; ask a member"
                " to settle the placeholder's balance with you instead."
            )
        now = self._context.now()
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.placeholders.claim(tx, group.id, placeholder_id, user_id, now)
                await store.links.use_link(tx, link.id)
                await store.activity.add_activity(
                    tx,
                    group.id,
                    "placeholder_claimed",
                    user_id,
                    f"{user_id} took the place of {placeholder_id}",
                    now,
                    data={"user_id": user_id, "placeholder_id": placeholder_id},
                )
                await tx.publish(
                    PlaceholderClaimed(
                        group_id=group.id, placeholder_id=placeholder_id, user_id=user_id
                    )
                )
                await tx.publish(
                    MemberAdded(
                        group_id=group.id,
                        group_name=group.name,
                        member_user_id=user_id,
                        added_by=link.created_by,
                    )
                )
