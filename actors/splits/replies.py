"""What the splits actor answers: the views of groups, expenses, balances, plans,
settlements, activity, comments, links and reminders (re-exported by `messages`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from actors.payments.messages import MAX_AMOUNT
from actors.runtime import Message
from actors.runtime.bounds import Id
from actors.splits.insight import InsightSeries, InsightSlice, InsightView

SignedAmount = Annotated[int, Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]


class Member(Message, frozen=True):
    user_id: str
    joined_at: str  # RFC 3339, UTC
    placeholder: bool = False  # a name with no account (yet): claimed through a claim link
    name: str | None = None  # a placeholder's name (the edge names everyone else)


class Invite(Message, frozen=True):
    email: str
    invited_by: str
    invited_at: str
    id: str | None = None


class InviteView(Message, frozen=True):
    """A pending invitation: to the group's members, or to the invitee (who sees the
    group's name and who invited them)."""

    id: str
    group_id: str
    group_name: str
    email: str
    invited_by: str
    invited_at: str


class InviteList(Message, frozen=True):
    items: list[InviteView]
    next_cursor: str | None = None


class GroupView(Message, frozen=True):
    id: str
    name: str
    currency: str
    created_by: str
    created_at: str
    members: list[Member]
    invited: list[Invite]
    archived: bool = False


class GroupHeader(Message, frozen=True):
    """A group without its member list: what a page of the group shows above its tab.
    `nets` are the asker's own non-zero balances in it, one per currency."""

    id: str
    name: str
    currency: str
    created_by: str
    created_at: str
    member_count: int
    nets: list[BalanceLine]
    archived: bool = False


class GroupList(Message, frozen=True):
    groups: list[GroupView]


class Payer(Message, frozen=True):
    user_id: Id
    amount: SignedAmount


class ShareLine(Message, frozen=True):
    """One participant as the client gave them: the field the split mode needs is set."""

    user_id: Id
    amount: SignedAmount | None = None  # exact: the share; adjustment: the +/- adjustment
    percent_bp: SignedAmount | None = None  # percent: hundredths of a percent (10000 is 100 %)
    shares: SignedAmount | None = None  # shares: an integer weight


class Share(Message, frozen=True):
    user_id: str
    amount: int


class ExpenseView(Message, frozen=True):
    id: str
    group_id: str
    description: str
    amount: int
    currency: str
    date: str  # YYYY-MM-DD
    category: str
    paid_by: list[Payer]
    split_mode: str
    shares: list[Share]
    created_by: str
    created_at: str
    updated_at: str
    version: int
    recurrence: str | None = None
    recurring_from: str | None = None  # the expense this copy was made from
    # ── issue 17: currencies and items ──
    rate: str | None = None  # group currency per 1 unit, for an expense in another currency
    rate_source: str | None = None  # given, derived, ecb; cache and fixed are approximate
    rate_day: str | None = None  # the rate's own day (a looked-up rate)
    group_amount: int | None = None  # the amount in the group's currency
    group_paid_by: list[Payer] | None = None  # each sums to group_amount
    group_shares: list[Share] | None = None
    items: list[ItemView] | None = None  # an itemized bill (split_mode "items")
    tax: int | None = None
    tip: int | None = None
    spread: str | None = None


class ExpensePage(Message, frozen=True):
    items: list[ExpenseView]
    next_cursor: str | None


# ── issue 17: currencies and items ─────────────────────────────────────────────────────


class ItemView(Message, frozen=True):
    """One item of an itemized bill, priced: its own `amount`, its part `extra` of tax and
    tip, the two together (`adjusted`), and who owes what of it (summing to `adjusted`)."""

    description: str
    amount: int
    split_mode: str
    extra: int
    adjusted: int
    shares: list[Share]


class BalanceLine(Message, frozen=True):
    user_id: str
    currency: str
    net: int  # > 0: owed to them; < 0: they owe


class BalancesView(Message, frozen=True):
    balances: list[BalanceLine]
    # ── issue 17: currencies and items ──
    converted: bool = False  # in the group's currency at the stored rates (what has none: apart)
    # ── issue 20: the edge's reply cache ──
    # changes whenever the group's balances or members change (opaque; None: not kept)
    version: str | None = None


class BalancesUnchanged(BalancesView, frozen=True):
    """`GetBalances(known_version=...)` when that is still the version: no lines carried
    (the member check was done all the same)."""


class PlanTransfer(Message, frozen=True):
    """One suggested payment, with the balances that make it: the payer's net in the
    group (`from_net` < 0: what they owe in all) and the payee's (`to_net` > 0)."""

    from_user_id: str
    to_user_id: str
    amount: int
    currency: str
    from_net: int = 0
    to_net: int = 0


class SettlePlanView(Message, frozen=True):
    transfers: list[PlanTransfer]
    # ── issue 17: currencies and items ──
    converted: bool = False  # in the group's currency at the stored rates (what has none: apart)


class SettlementView(Message, frozen=True):
    id: str
    group_id: str
    from_user_id: str
    to_user_id: str
    amount: int
    currency: str
    method: str
    status: Literal["pending", "completed", "failed"]
    created_at: str
    transfer_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # ── issue 17: currencies and items ──
    rate: str | None = None  # group currency per 1 unit, for a settlement in another currency
    rate_source: str | None = None
    rate_day: str | None = None
    group_amount: int | None = None  # the amount in the group's currency


class NetLine(Message, frozen=True):
    """One expense or settlement and what it did to a member's net: `effect` is paid minus
    owed for an expense; plus for a settlement they paid, minus for one they received."""

    kind: Literal["expense", "settlement"]
    id: str
    day: str | None
    description: str | None
    currency: str
    paid: int
    owed: int
    effect: int
    counterpart_id: str | None = None  # a settlement's other party


class NetBreakdown(Message, frozen=True):
    """A member's net per currency and the lines that add up to it."""

    user_id: str
    nets: dict[str, int]
    lines: list[NetLine]


class CurrencyTotal(Message, frozen=True):
    """In one currency, across groups: what others owe you, what you owe, and the net."""

    currency: str
    owed_to_you: int
    you_owe: int
    net: int


class PersonNet(Message, frozen=True):
    """What one person and you owe each other across groups, by the groups' settle plans:
    `net` > 0 they owe you, < 0 you owe them."""

    user_id: str
    currency: str
    net: int


class GroupNet(Message, frozen=True):
    group_id: str
    group_name: str
    currency: str
    net: int  # > 0: owed to you in this group


class RecentActivity(Message, frozen=True):
    group_id: str
    group_name: str
    item: ActivityItem


class SummaryView(Message, frozen=True):
    totals: list[CurrencyTotal]
    people: list[PersonNet]
    groups: list[GroupNet]
    recent: list[RecentActivity]


class ActivityItem(Message, frozen=True):
    id: int
    kind: str  # group_created, member_added, expense_added, settlement_recorded, ...
    actor_user_id: str | None
    summary: str
    created_at: str
    expense_id: str | None = None
    data: dict[str, Any] | None = None


class ActivityPage(Message, frozen=True):
    items: list[ActivityItem]
    next_cursor: str | None


class CommentView(Message, frozen=True):
    id: str
    expense_id: str
    user_id: str
    text: str
    created_at: str


class CommentList(Message, frozen=True):
    items: list[CommentView]


class CsvExport(Message, frozen=True):
    filename: str
    text: str


class ChatSubject(Message, frozen=True):
    """What a conversation is about: its group (None for a direct one), a title, and the
    group's members (for a direct one, the two people)."""

    group_id: str | None
    title: str
    members: list[str]


class Done(Message, frozen=True):
    """A command that has nothing to return did what it was asked."""


class JoinLinkView(Message, frozen=True):
    """A join link; `token` (what to share) only in the reply that made it."""

    id: str
    group_id: str
    created_by: str
    created_at: str
    expires_at: str
    max_uses: int
    uses: int
    token: str | None = None
    placeholder_id: str | None = None  # a claim link: its holder takes this member's place


class JoinLinkList(Message, frozen=True):
    items: list[JoinLinkView]
    next_cursor: str | None = None


class Owed(Message, frozen=True):
    currency: str
    amount: int


class ReminderView(Message, frozen=True):
    group_id: str
    from_user_id: str
    to_user_id: str
    owed: list[Owed]
    sent_at: str


# ── issue 17: recurring and settling ───────────────────────────────────────────────────


class RecurringView(Message, frozen=True):
    """A recurring expense: when its next copy comes (None: none will), how it ends, how
    many copies it made and how many dates are left (None: no end but 2099-12-31)."""

    expense_id: str
    description: str
    amount: int
    currency: str
    recurrence: str | None
    started_on: str  # the original's date
    next_date: str | None
    until: str | None = None
    times: int | None = None
    copies: int = 0
    remaining: int | None = None
    created_by: str = ""


class RecurringList(Message, frozen=True):
    items: list[RecurringView]


class GroupSettings(Message, frozen=True):
    """A group's settings: `simplify` (the fewest transfers) or who owes whom directly."""

    group_id: str
    simplify: bool = True


__all__ = [
    "ActivityItem",
    "ActivityPage",
    "BalanceLine",
    "BalancesUnchanged",
    "BalancesView",
    "ChatSubject",
    "CommentList",
    "CommentView",
    "CsvExport",
    "CurrencyTotal",
    "Done",
    "ExpensePage",
    "ExpenseView",
    "GroupHeader",
    "GroupList",
    "GroupNet",
    "GroupSettings",
    "GroupView",
    "InsightSeries",
    "InsightSlice",
    "InsightView",
    "Invite",
    "InviteList",
    "InviteView",
    "ItemView",
    "JoinLinkList",
    "JoinLinkView",
    "Member",
    "NetBreakdown",
    "NetLine",
    "Owed",
    "Payer",
    "PersonNet",
    "PlanTransfer",
    "RecentActivity",
    "RecurringList",
    "RecurringView",
    "ReminderView",
    "SettlePlanView",
    "SettlementView",
    "Share",
    "ShareLine",
    "SignedAmount",
    "SummaryView",
]
