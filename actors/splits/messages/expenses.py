"""Commands about expenses (currencies and items), balances, settlements and comments."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from actors.runtime import IdempotencyKey, Message
from actors.runtime.bounds import Day, Id, Limit
from actors.splits.messages.fields import (
    MAX_MEMBERS,
    VERSION_MAX,
    Category,
    CommentText,
    Currency,
    Description,
    Recurrence,
    SettlementMethod,
    SplitModeName,
    SplitsInput,
)
from actors.splits.replies import Payer, ShareLine, SignedAmount

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
    # ── issue 20: the version the asker holds; still it: BalancesUnchanged ──
    known_version: Annotated[str, Meta(max_length=VERSION_MAX)] | None = None


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
