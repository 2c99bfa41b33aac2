"""Commands about groups, members, join links and invitations."""

from __future__ import annotations

from typing import Annotated, ClassVar

from msgspec import Meta

from actors.runtime import IdempotencyKey
from actors.runtime.bounds import Id
from actors.splits.messages.fields import (
    LINK_SECONDS_MAX,
    LINK_SECONDS_MIN,
    MAX_MEMBERS,
    Currency,
    Email,
    GroupName,
    PlaceholderName,
    SplitsInput,
)

# ── commands ───────────────────────────────────────────────────────────────────────────


class CreateGroup(SplitsInput, frozen=True):
    group_id: Id  # chosen by the caller (the shard key must be known before it exists)
    user_id: Id  # the creator, its first member
    name: GroupName
    currency: Currency
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class ListGroups(SplitsInput, frozen=True):
    user_id: Id
    archived: bool = False  # the archived groups instead of the active ones


class GetNetBreakdown(SplitsInput, frozen=True):
    """What makes `member_user_id`'s net in the group: every expense and settlement."""

    group_id: Id
    user_id: Id
    member_user_id: Id


class CreateJoinLink(SplitsInput, frozen=True):
    """A link that lets whoever holds it join the group, until it expires or is used up."""

    group_id: Id
    user_id: Id
    expires_in: Annotated[int, Meta(ge=LINK_SECONDS_MIN, le=LINK_SECONDS_MAX)] = 7 * 86_400
    max_uses: Annotated[int, Meta(ge=1, le=MAX_MEMBERS)] = 10
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class ListJoinLinks(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id


class RevokeJoinLink(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    link_id: Id


class JoinByLink(SplitsInput, frozen=True):
    """The caller (whose address is verified: the edge checks) joins through a link."""

    secret_fields: ClassVar[tuple[str, ...]] = ("secret",)

    group_id: Id
    user_id: Id
    secret: Annotated[str, Meta(min_length=1, max_length=100)]


class RemindMember(SplitsInput, frozen=True):
    """Remind `member_user_id` what they owe in the group, on their channels; at most once
    a day from one member to another."""

    group_id: Id
    user_id: Id
    member_user_id: Id
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class GetSummary(SplitsInput, frozen=True):
    """Where the user stands across all their active groups."""

    user_id: Id


class UpdateGroup(SplitsInput, frozen=True):
    """Rename a group and/or archive it (read-only, hidden from the default list) or bring
    it back; any member may."""

    group_id: Id
    user_id: Id
    name: GroupName | None = None
    archived: bool | None = None


class DeleteGroup(SplitsInput, frozen=True):
    """Delete a group for everyone: only when every balance in it is zero."""

    group_id: Id
    user_id: Id


class GetGroup(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id


class GetGroupHeader(SplitsInput, frozen=True):
    """The group without its members, with the caller's own balance, as `GroupHeader`:
    a page of a 1,000-member group needs neither the list nor everyone's nets."""

    group_id: Id
    user_id: Id


class AddMember(SplitsInput, frozen=True):
    """Add a known user by id, invite an email that has no account yet, or add a
    placeholder: a `name` with no account (`placeholder_id` is the member id it gets)."""

    group_id: Id
    user_id: Id
    member_user_id: Id | None = None
    email: Email | None = None
    name: PlaceholderName | None = None
    placeholder_id: Id | None = None
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class InviteMember(SplitsInput, frozen=True):
    """Invite an address to the group: it joins when its owner accepts (or, with no
    verified account yet, verifies it). `invitee_user_id`: the account that has the address
    (the edge looked it up), told in the app too."""

    group_id: Id
    user_id: Id
    email: Email
    invitee_user_id: Id | None = None
    idempotency: IdempotencyKey | None = None


class ListInvites(SplitsInput, frozen=True):
    """A group's pending invitations (to its members), as `InviteList`."""

    group_id: Id
    user_id: Id


class ListMyInvites(SplitsInput, frozen=True):
    """The pending invitations to `email`, the caller's verified address, as `InviteList`."""

    user_id: Id
    email: Email


class AnswerInvite(SplitsInput, frozen=True):
    """The owner of the invited (verified) address accepts it (joining: `GroupView`) or
    declines it (`Done`)."""

    group_id: Id
    user_id: Id
    invite_id: Id
    email: Email
    accept: bool


class CancelInvite(SplitsInput, frozen=True):
    """The member who invited an address withdraws the invitation (by its id or address)."""

    group_id: Id
    user_id: Id
    email: Email | None = None
    invite_id: Id | None = None


class CreateClaimLink(SplitsInput, frozen=True):
    """A one-use join link through which its holder takes the placeholder's place (and
    history), as `JoinLinkView`."""

    group_id: Id
    user_id: Id
    placeholder_id: Id
    expires_in: int = 7 * 86_400


class RemoveMember(SplitsInput, frozen=True):
    """Only while the member's balance is zero in every currency (they may remove
    themselves: leaving)."""

    group_id: Id
    user_id: Id
    member_user_id: Id


class JoinInvited(SplitsInput, frozen=True):
    """An invited email has been verified: make that user a member (sent by splits itself)."""

    group_id: Id
    user_id: Id
    email: Email
