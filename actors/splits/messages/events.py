"""The events the splits actor publishes."""

from __future__ import annotations

from actors.runtime.bounds import Id
from actors.splits.messages.fields import Currency, Description, Email, PlaceholderName, SplitsInput
from actors.splits.replies import Owed, Share, SignedAmount

# ── events ─────────────────────────────────────────────────────────────────────────────


class MemberInvited(SplitsInput, frozen=True):
    """An address was invited to the group: notifications mails it (and tells the account
    that has it, `invitee_user_id`, in the app)."""

    group_id: Id
    group_name: str
    email: Email
    invited_by: Id
    invite_id: Id | None = None
    invitee_user_id: Id | None = None


class PlaceholderAdded(SplitsInput, frozen=True):
    """A member with no account was added: auth keeps their name, so they are named
    wherever a user is."""

    group_id: Id
    placeholder_id: Id
    name: PlaceholderName
    added_by: Id


class PlaceholderClaimed(SplitsInput, frozen=True):
    """`user_id` took the placeholder's place in the group (their history with it)."""

    group_id: Id
    placeholder_id: Id
    user_id: Id


class MemberReminded(SplitsInput, frozen=True):
    """`from_user_id` reminded `to_user_id` of what they owe in the group."""

    group_id: Id
    group_name: str
    from_user_id: Id
    to_user_id: Id
    owed: list[Owed]


class MemberAdded(SplitsInput, frozen=True):
    group_id: Id
    group_name: str
    member_user_id: Id
    added_by: str


class MemberRemoved(SplitsInput, frozen=True):
    """A member left the group (`removed_by` is themselves) or was removed."""

    group_id: Id
    member_user_id: Id
    removed_by: Id


class GroupDeleted(SplitsInput, frozen=True):
    """The group is gone for every member."""

    group_id: Id
    group_name: str
    deleted_by: Id


class ExpenseAdded(SplitsInput, frozen=True):
    group_id: Id
    group_name: str
    expense_id: Id
    description: Description
    amount: SignedAmount
    currency: Currency
    created_by: str
    shares: list[Share]


class ExpenseUpdated(SplitsInput, frozen=True):
    group_id: Id
    group_name: str
    expense_id: Id
    description: Description
    amount: SignedAmount
    currency: Currency
    changed_by: str
    shares: list[Share]


class ExpenseDeleted(SplitsInput, frozen=True):
    group_id: Id
    group_name: str
    expense_id: Id
    description: Description
    deleted_by: str
    participants: list[str]


class SettlementRecorded(SplitsInput, frozen=True):
    group_id: Id
    group_name: str
    settlement_id: Id
    from_user_id: str
    to_user_id: Id
    amount: SignedAmount
    currency: Currency
    method: str


class SettlementFailed(SplitsInput, frozen=True):
    group_id: Id
    group_name: str
    settlement_id: Id
    from_user_id: str
    to_user_id: Id
    amount: SignedAmount
    currency: Currency
    code: str
    message: str
