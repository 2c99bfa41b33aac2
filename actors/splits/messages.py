"""The splits actor's whole public interface: commands, replies, events and errors.

Every command names the group it is about (the shard key) and the acting user
(`user_id`), who must be a member of that group: to anyone else the group does not exist
(`GroupNotFound`). Amounts are integer minor units with an ISO 4217 currency.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta

from actors.auth.messages import EMAIL_MAX
from actors.runtime import IdempotencyKey, Message
from actors.runtime.bounds import Day, Id, Limit, check_bounds
from actors.splits.errors import *  # noqa: F403 (re-exported: the public interface)
from actors.splits.errors import InvalidExpense
from actors.splits.import_reading import read_report as read_report  # the public interface
from actors.splits.importing import *  # noqa: F403 (re-exported: the public interface)
from actors.splits.importing import MAX_FILE_BYTES, MAX_PEOPLE, MAX_ROWS, ImportMatch
from actors.splits.insight import CURSOR_MAX as _SEARCH_CURSOR_MAX
from actors.splits.insight import TEXT_MAX as _SEARCH_TEXT_MAX
from actors.splits.replies import *  # noqa: F403 (re-exported: the public interface)
from actors.splits.replies import Owed, Payer, Share, ShareLine, SignedAmount

SplitModeName = Literal["equal", "exact", "percent", "shares", "adjustment"]
Recurrence = Literal["weekly", "monthly", "yearly"]
SettlementMethod = Literal["wallet", "cash"]
SETTLEMENT_REFERENCE = (
    "splits:"  # payments' `reference` of a wallet settlement: splits:<group>:<id>
)
LINK_SECONDS_MIN, LINK_SECONDS_MAX = 3_600, 30 * 86_400  # a join link lives 1 h to 30 days
MAX_MEMBERS = 1_000
DESCRIPTION_MAX = 200
COMMENT_MAX = 2_000
CATEGORY_MAX = 40
GROUP_NAME_MAX = 100
EMAIL_TEXT_MAX = 2 * EMAIL_MAX  # before the address is trimmed and checked

# Bounds of the fields below (actors/runtime/bounds.py checks them wherever a message is
# made or decoded). Amounts are bounded in size here, and by the rules in meaning (an
# expense is 1 to MAX_AMOUNT; an adjustment may be negative).
Currency = Annotated[str, Meta(min_length=3, max_length=3)]
GroupName = Annotated[str, Meta(max_length=GROUP_NAME_MAX)]
Description = Annotated[str, Meta(max_length=DESCRIPTION_MAX)]
Category = Annotated[str, Meta(max_length=CATEGORY_MAX)]
CommentText = Annotated[str, Meta(max_length=COMMENT_MAX)]
Email = Annotated[str, Meta(max_length=EMAIL_TEXT_MAX)]
PlaceholderName = Annotated[str, Meta(max_length=2 * GROUP_NAME_MAX)]  # before trimming


def splits_key(message: Any) -> str | None:
    """Shard key: the group; payments' events by the group in their reference; else the
    user (reads across groups, sign-ups)."""
    group_id = getattr(message, "group_id", None)
    if group_id:
        return str(group_id)
    reference = getattr(message, "reference", None) or ""
    if reference.startswith(SETTLEMENT_REFERENCE):
        return reference.split(":")[1]
    user_id = getattr(message, "user_id", None) or getattr(message, "from_user_id", None)
    return str(user_id) if user_id else None


def settlement_reference(group_id: str, settlement_id: str) -> str:
    return f"{SETTLEMENT_REFERENCE}{group_id}:{settlement_id}"


class SplitsInput(Message, frozen=True):
    """What the splits actor handles (commands, its timers, the events it publishes): the
    fields' bounds hold wherever one is made or decoded, or it is InvalidExpense naming the
    field (`$.date`)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidExpense)


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


# ── issue 17: currencies and items ─────────────────────────────────────────────────────
# An expense (or settlement) in another currency than its group's carries its `rate` (units
# of the group's currency per 1 unit of its own, decimal text: actors.rates.messages reads
# it) or its `group_amount` (the rate derived from the two amounts). The edge that could not
# be given either looks the day's rate up first (splitgo/web/splits/rates.py) and passes it
# with its `rate_source` and `rate_day`: the shard never waits on the network (a caller
# that cannot look one up leaves `rate_lookup` off: the amount is then kept unconverted,
# apart in its own currency in the converted balances). An itemized
# expense (`split_mode` "items") carries its `items`, each split its own way, plus `tax`
# and `tip` spread over them (actors/splits/items.py); its shares are derived.

MAX_ITEMS = 200  # items of one bill (actors/splits/items.py checks it in meaning)
# the details key of the `rate_unavailable` refusal that asks the edge to look a rate up
RATE_LOOKUP = "lookup"
RATE_TEXT_MAX = 48  # as actors.rates.messages.RATE_TEXT_MAX
RateText = Annotated[str, Meta(min_length=1, max_length=RATE_TEXT_MAX)]
RateSourceName = Literal["given", "derived", "ecb", "cache", "fixed"]
SpreadName = Literal["proportional", "equal"]
ExpenseSplitModeName = Literal["equal", "exact", "percent", "shares", "adjustment", "items"]


class Item(Message, frozen=True):
    """One line of an itemized bill: its own amount (before tax and tip) and split."""

    description: Description
    amount: SignedAmount
    split_mode: SplitModeName
    shares: Annotated[list[ShareLine], Meta(max_length=MAX_MEMBERS)] = []


class AddExpense(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    expense_id: Id
    description: Description
    amount: SignedAmount
    currency: Currency
    paid_by: list[Payer]
    split_mode: ExpenseSplitModeName
    shares: list[ShareLine]
    date: Day | None = None  # YYYY-MM-DD; today when None
    category: Category = "general"
    recurrence: Recurrence | None = None
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays
    # ── issue 17: currencies and items ──
    rate: RateText | None = None  # group currency per 1 unit; or group_amount; not both
    group_amount: SignedAmount | None = None
    rate_source: RateSourceName | None = None  # where `rate` came from ("given" when None)
    rate_day: Day | None = None  # the looked-up rate's own day
    rate_lookup: bool = False  # with neither: refuse (`lookup`) so the caller looks it up
    items: Annotated[list[Item], Meta(max_length=MAX_ITEMS)] | None = None
    tax: SignedAmount | None = None
    tip: SignedAmount | None = None
    spread: SpreadName | None = None
    # ── issue 17: recurring and settling ──
    until: Day | None = None  # a recurring expense's last day for a copy; or times, not both
    times: Annotated[int, Meta(ge=1, le=1000)] | None = None  # the original and copies in all


class EditExpense(SplitsInput, frozen=True):
    """Change what is given; the rest stays. Shares are computed again when the amount,
    the payers or the split change."""

    group_id: Id
    user_id: Id
    expense_id: Id
    description: Description | None = None
    amount: SignedAmount | None = None
    currency: Currency | None = None
    paid_by: list[Payer] | None = None
    split_mode: ExpenseSplitModeName | None = None
    shares: list[ShareLine] | None = None
    date: Day | None = None
    category: Category | None = None
    recurrence: Recurrence | Literal["none"] | None = None
    # ── issue 17: currencies and items ──
    rate: RateText | None = None  # group currency per 1 unit; or group_amount; not both
    group_amount: SignedAmount | None = None
    rate_source: RateSourceName | None = None  # where `rate` came from ("given" when None)
    rate_day: Day | None = None  # the looked-up rate's own day
    rate_lookup: bool = False  # with neither: refuse (`lookup`) so the caller looks it up
    items: Annotated[list[Item], Meta(max_length=MAX_ITEMS)] | None = None
    tax: SignedAmount | None = None
    tip: SignedAmount | None = None
    spread: SpreadName | None = None
    # ── issue 17: recurring and settling ──
    until: Day | None = None  # a new end (the last day for a copy); or times, not both
    times: Annotated[int, Meta(ge=1, le=1000)] | None = None  # a new end: original + copies


class DeleteExpense(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    expense_id: Id


class GetExpense(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    expense_id: Id


class ListExpenses(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    limit: Limit = 50
    cursor: str | None = None


class CreateRecurringCopy(SplitsInput, frozen=True):
    """The runtime timer a recurring expense sets for its next copy."""

    group_id: Id
    expense_id: Id


class GetBalances(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    # ── issue 17: currencies and items ──
    converted: bool = False  # in the group's currency at the stored rates


class GetSettlePlan(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    # ── issue 17: currencies and items ──
    converted: bool = False  # in the group's currency at the stored rates


class RecordSettlement(SplitsInput, frozen=True):
    """`user_id` pays `to_user_id`: `cash` is recorded at once; `wallet` asks payments to
    move the money and is recorded when the transfer completes."""

    group_id: Id
    user_id: Id
    settlement_id: Id
    to_user_id: Id
    amount: SignedAmount
    currency: Currency
    method: SettlementMethod
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays
    # ── issue 17: currencies and items ──
    rate: RateText | None = None  # group currency per 1 unit; or group_amount; not both
    group_amount: SignedAmount | None = None
    rate_source: RateSourceName | None = None  # where `rate` came from ("given" when None)
    rate_day: Day | None = None  # the looked-up rate's own day
    rate_lookup: bool = False  # with neither: refuse (`lookup`) so the caller looks it up


class GetSettlement(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    settlement_id: Id


class GetActivity(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    limit: Limit = 50
    cursor: str | None = None


class AddComment(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    expense_id: Id
    comment_id: Id
    text: CommentText
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class ListComments(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id
    expense_id: Id


class ExportGroup(SplitsInput, frozen=True):
    group_id: Id
    user_id: Id


# ── issue 17: search and insight (commands) ────────────────────────────────────────────

# Loose bounds here (what a message may carry at all); the exact rules are
# insight.search_filter's, so every wrong filter field is one code (invalid_search) naming
# it: text is checked after its spaces collapse, a day's format and a currency there too.
SEARCH_TEXT_MAX = _SEARCH_TEXT_MAX  # characters of a search's text, once its spaces collapse
SEARCH_CURSOR_MAX = _SEARCH_CURSOR_MAX
SearchText = Annotated[str, Meta(max_length=4 * SEARCH_TEXT_MAX)]
SearchWord = Annotated[str, Meta(max_length=4 * CATEGORY_MAX)]  # a category, a currency
SearchDay = Annotated[str, Meta(max_length=32)]
SearchCursorText = Annotated[str, Meta(max_length=SEARCH_CURSOR_MAX)]


class ExpenseQuery(SplitsInput, frozen=True):
    """The filter of SearchExpenses and GetInsight: every field given must hold (blank is
    not given). `person` paid or shares; dates inclusive (YYYY-MM-DD); amounts bound the
    whole expense in minor units."""

    group_id: Id
    user_id: Id
    text: SearchText | None = None
    person: Id | None = None
    category: SearchWord | None = None
    currency: SearchWord | None = None
    date_from: SearchDay | None = None
    date_to: SearchDay | None = None
    amount_min: SignedAmount | None = None
    amount_max: SignedAmount | None = None


class SearchExpenses(ExpenseQuery, frozen=True):
    """The group's live expenses that match, newest date first, as `ExpensePage`."""

    limit: Limit = 50
    cursor: SearchCursorText | None = None


class GetInsight(ExpenseQuery, frozen=True):
    """Totals by category and by month of the matching expenses (`InsightView`), or of
    `shares_of`'s own shares of them."""

    shares_of: Id | None = None


# ── issue 17: recurring and settling (commands) ────────────────────────────────────────

RECURRENCE_TIMES_MAX = 1_000  # a series of at most this many dates (the original included)


class ListRecurring(SplitsInput, frozen=True):
    """The group's active recurring expenses (those with a copy still to come), as
    `RecurringList`."""

    group_id: Id
    user_id: Id


class StopRecurring(SplitsInput, frozen=True):
    """No more copies of a recurring expense (the copies made stay), as `RecurringView`."""

    group_id: Id
    user_id: Id
    expense_id: Id


class SetRecurrenceEnd(SplitsInput, frozen=True):
    """End a recurring expense on a day (`until`, no copy dated after it) or after a number
    of dates (`times`, the original included); neither: it recurs until stopped."""

    group_id: Id
    user_id: Id
    expense_id: Id
    until: Day | None = None
    times: Annotated[int, Meta(ge=1, le=RECURRENCE_TIMES_MAX)] | None = None


class GetGroupSettings(SplitsInput, frozen=True):
    """The group's settings, as `GroupSettings`."""

    group_id: Id
    user_id: Id


class SetSimplify(SplitsInput, frozen=True):
    """The group's settle plan: simplified (the fewest transfers) or who owes whom
    directly; any member may switch it. Answers `GroupSettings`."""

    group_id: Id
    user_id: Id
    simplify: bool


class PrepareSettlement(SplitsInput, frozen=True):
    """A wallet settlement paid by a transfer the edge makes itself (settling with one
    person across groups in one payment): kept pending, balances untouched, until
    `FinishSettlement`. A retry (the same id) finds the first, with its amount."""

    group_id: Id
    user_id: Id
    settlement_id: Id
    to_user_id: Id
    amount: SignedAmount
    currency: Currency


class FinishSettlement(SplitsInput, frozen=True):
    """The transfer behind a prepared settlement completed (`transfer_id`) or failed
    (`failure_code`, `failure_message`); answers the settlement as it now is."""

    group_id: Id
    user_id: Id
    settlement_id: Id
    transfer_id: Id | None = None
    failure_code: Annotated[str, Meta(max_length=100)] | None = None
    failure_message: Annotated[str, Meta(max_length=500)] | None = None


# ── issue 17: import and export (commands) ─────────────────────────────────────────────


ImportFile = Annotated[bytes, Meta(max_length=MAX_FILE_BYTES)]
Sha256 = Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]
IMPORT_CHUNK_MAX = 5_000  # rows written by one ImportSplitwise ask (one transaction)


class ImportSplitwise(SplitsInput, frozen=True):
    """A Splitwise group export into the group. Without `mapping`, a dry run: the report
    and the proposed mapping (`ImportDryRun`), nothing stored. With the confirmed `mapping`
    (every name of the file to a member's id, or None for a new placeholder) and the dry
    run's `file_sha256`, the rows `start` to `start + chunk` are written in one transaction
    (the placeholders with the first chunk) and `ImportProgress` says how far it is; the
    caller asks again from `done` until `finished`, carrying the counts of the reply before
    (the last chunk writes one activity line with them). Every id is derived from the
    file, so a second run adds nothing."""

    group_id: Id
    user_id: Id
    data: ImportFile
    mapping: Annotated[list[ImportMatch], Meta(max_length=MAX_PEOPLE)] | None = None
    file_sha256: Sha256 | None = None
    start: Annotated[int, Meta(ge=0, le=4 * MAX_ROWS)] = 0
    chunk: Annotated[int, Meta(ge=1, le=IMPORT_CHUNK_MAX)] = 1_000
    expenses_added: Annotated[int, Meta(ge=0, le=4 * MAX_ROWS)] = 0
    settlements_added: Annotated[int, Meta(ge=0, le=4 * MAX_ROWS)] = 0
    placeholders_added: Annotated[int, Meta(ge=0, le=MAX_PEOPLE)] = 0


class ExportGroupJson(SplitsInput, frozen=True):
    """The whole group (members, expenses with their shares and comments, settlements) as
    `GroupExport`."""

    group_id: Id
    user_id: Id


class DescribeChatSubject(SplitsInput, frozen=True):
    """What a conversation of `kind` about `subject_id` is about, for the chat actor: the
    group with its members, the expense's or settlement's group and title, or (`direct`,
    `subject_id` the other person) a group the two share. To a caller who cannot see it:
    GroupNotFound, ExpenseNotFound, SettlementNotFound, or NotAMember for a person the
    caller shares no group with. `group_id` is the group when known (the shard key)."""

    user_id: Id
    kind: Literal["group", "expense", "settlement", "direct"]
    subject_id: Id
    group_id: Id | None = None


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


# ── personal data: a user's export, and whether they may leave (issue 19) ─────────────

PERSONAL_ROWS_MAX = 2_000  # rows of each kind one DescribeMySplits answers at most


class DescribeMySplits(SplitsInput, frozen=True):
    """What splits keeps about the user across every group: their groups, the expenses
    they made or share in, their settlements and comments (each at most
    PERSONAL_ROWS_MAX, oldest first; `truncated` says more were left out), and who owes
    whom with them in each group. `records` False: the balances and debts only (what an
    account deletion checks). Replies MySplits."""

    user_id: Id
    records: bool = True


class MyGroup(Message, frozen=True):
    group_id: str
    name: str
    currency: str
    joined_at: str
    archived: bool


class MyExpense(Message, frozen=True):
    """An expense the user made or shares in, with what they paid and owe of it."""

    expense_id: str
    group_id: str
    description: str
    amount: int
    currency: str
    spent_on: str
    category: str
    created_by: str
    created_at: str
    deleted: bool
    paid: int
    owed: int


class MySettlement(Message, frozen=True):
    settlement_id: str
    group_id: str
    from_user_id: str
    to_user_id: str
    amount: int
    currency: str
    method: str
    status: str
    created_at: str


class MyComment(Message, frozen=True):
    comment_id: str
    group_id: str
    expense_id: str
    body: str
    created_at: str


class MyDebt(Message, frozen=True):
    """What settling up in the group would move between the user and `other_user_id`:
    `amount` > 0 the user owes them, < 0 they owe the user."""

    group_id: str
    group_name: str
    other_user_id: str
    currency: str
    amount: int


class MyGroupBalance(Message, frozen=True):
    group_id: str
    group_name: str
    currency: str
    net: int  # > 0: owed to the user


class MySplits(Message, frozen=True):
    groups: list[MyGroup]
    expenses: list[MyExpense]
    settlements: list[MySettlement]
    comments: list[MyComment]
    balances: list[MyGroupBalance]
    debts: list[MyDebt]
    truncated: bool = False
