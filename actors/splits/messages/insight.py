"""Commands to search and see insight, for recurring expenses and settling, to import
and export a group, and to describe a chat's subject."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from actors.runtime.bounds import Day, Id, Limit
from actors.splits.importing import MAX_FILE_BYTES, MAX_PEOPLE, MAX_ROWS, ImportMatch
from actors.splits.insight import CURSOR_MAX as _SEARCH_CURSOR_MAX
from actors.splits.insight import TEXT_MAX as _SEARCH_TEXT_MAX
from actors.splits.messages.fields import CATEGORY_MAX, Currency, SplitsInput
from actors.splits.replies import SignedAmount

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
