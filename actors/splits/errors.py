"""The splits actor's refusals, each with a stable `code` (re-exported by `messages`)."""

from __future__ import annotations

from actors.runtime import DomainError


class GroupNotFound(DomainError):
    """No such group, or the caller is not in it (the same answer: no probing)."""

    code = "group_not_found"
    category = "not_found"


class NotAMember(DomainError):
    """Someone named in an expense or settlement is not a member of the group."""

    code = "not_a_member"
    category = "invalid"


class AlreadyMember(DomainError):
    code = "already_member"
    category = "conflict"


class UnsettledBalance(DomainError):
    """A member leaves or is removed only with a zero balance in every currency."""

    code = "unsettled_balance"
    category = "conflict"


class ExpenseNotFound(DomainError):
    code = "expense_not_found"
    category = "not_found"


class SettlementNotFound(DomainError):
    code = "settlement_not_found"
    category = "not_found"


class InvalidExpense(DomainError):
    """A field of an expense, group or settlement is wrong; `details["field"]` names it."""

    code = "invalid_expense"
    category = "invalid"


class MixedCurrencies(DomainError):
    code = "mixed_currencies"
    category = "invalid"


class GroupArchived(DomainError):
    """An archived group is read-only: bring it back (PATCH archived=false) to change it."""

    code = "group_archived"
    category = "conflict"


class InviteNotFound(DomainError):
    """The group has no pending invitation of that address."""

    code = "invite_not_found"
    category = "not_found"


class AlreadyInvited(DomainError):
    """The address has a pending invitation to the group already."""

    code = "already_invited"
    category = "conflict"


class NotYourInvitation(DomainError):
    """An invitation is answered only by the owner of the address it was sent to."""

    code = "not_your_invitation"
    category = "forbidden"


class NotAPlaceholder(DomainError):
    """The member named is not a placeholder still waiting to be claimed."""

    code = "not_a_placeholder"
    category = "not_found"


class NoAccount(DomainError):
    """A placeholder has no account: no wallet to pay or be paid from, no channel to remind."""

    code = "no_account"
    category = "invalid"


class NotTheInviter(DomainError):
    """Only the member who sent an invitation withdraws it."""

    code = "not_the_inviter"
    category = "forbidden"


class AlreadyReminded(DomainError):
    """One reminder a day from one member to another."""

    code = "already_reminded"
    category = "conflict"


class NothingOwed(DomainError):
    """The member owes nothing in this group: there is nothing to remind them of."""

    code = "nothing_owed"
    category = "invalid"


class JoinLinkNotFound(DomainError):
    """No such link: never made, mistyped, or revoked."""

    code = "join_link_not_found"
    category = "not_found"


class JoinLinkExpired(DomainError):
    code = "join_link_expired"
    category = "conflict"


class JoinLinkUsedUp(DomainError):
    code = "join_link_used_up"
    category = "conflict"


class GroupFull(DomainError):
    code = "group_full"
    category = "conflict"


class InvalidSearch(DomainError):
    """A field of a search or insight filter is wrong; `details["field"]` names it."""

    code = "invalid_search"
    category = "invalid"


__all__ = [
    "AlreadyInvited",
    "AlreadyMember",
    "AlreadyReminded",
    "ExpenseNotFound",
    "GroupArchived",
    "GroupFull",
    "GroupNotFound",
    "InvalidExpense",
    "InvalidSearch",
    "InviteNotFound",
    "JoinLinkExpired",
    "JoinLinkNotFound",
    "JoinLinkUsedUp",
    "MixedCurrencies",
    "NoAccount",
    "NotAMember",
    "NotAPlaceholder",
    "NotTheInviter",
    "NotYourInvitation",
    "NothingOwed",
    "SettlementNotFound",
    "UnsettledBalance",
]
