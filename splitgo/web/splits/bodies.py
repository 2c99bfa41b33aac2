"""The Splits request bodies and their conversion into the splits actor's commands.

Bodies are decoded into these Structs by the edge; plain functions (`group_message`,
`member_target`, `add_expense_message`, ...) check what msgspec cannot and build the
command, so the conversion is testable without a server. Nothing here does IO.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec

from actors.auth.messages import has_control_characters, valid_email
from actors.payments.messages import MAX_AMOUNT
from actors.rates.messages import InvalidRate, parse_rate
from actors.splits.messages import (
    CATEGORY_MAX,
    COMMENT_MAX,
    DESCRIPTION_MAX,
    EMAIL_TEXT_MAX,
    GROUP_NAME_MAX,
    MAX_ITEMS,
    RATE_TEXT_MAX,
    RECURRENCE_TIMES_MAX,
    AddExpense,
    CreateGroup,
    EditExpense,
    ExpenseView,
    Item,
    Payer,
    RecordSettlement,
    Recurrence,
    SettlementMethod,
    ShareLine,
    SplitModeName,
    SpreadName,
    UpdateGroup,
)
from splitgo.web.payments import Amount, Currency, UserId, field_problem, known_currency
from splitgo.web.problems import matching

NAME_MAX = 100
PERCENT_DECIMALS = 2

SignedAmount = Annotated[int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
Weight = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
Description = Annotated[str, msgspec.Meta(min_length=1, max_length=DESCRIPTION_MAX)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=CATEGORY_MAX)]
CommentText = Annotated[str, msgspec.Meta(min_length=1, max_length=COMMENT_MAX)]
Day = Annotated[
    str, matching(r"^\d{4}-\d{2}-\d{2}$", "a date written YYYY-MM-DD, such as 2026-03-14")
]
# issue 17: currencies and items
Rate = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=RATE_TEXT_MAX,
        description="units of the group's currency per 1 unit of the expense's, as a decimal"
        ' string such as "1.0772"',
    ),
]
Extra = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
RecurrenceTimes = Annotated[int, msgspec.Meta(ge=1, le=RECURRENCE_TIMES_MAX)]


class GroupBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    currency: Currency


class GroupPatch(msgspec.Struct, forbid_unknown_fields=True):
    """What PATCH changes of a group: its name, whether it is archived, and whether its
    settle plan is simplified (fewest transfers) or says who owes whom directly."""

    name: str | None = None
    archived: bool | None = None
    simplify: bool | None = None


class MemberBody(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly one of: a user's id, an address to invite, or the name of a placeholder (a
    member with no account, claimed later through a claim link)."""

    user_id: UserId | None = None
    email: Annotated[str, msgspec.Meta(max_length=EMAIL_TEXT_MAX)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=2 * GROUP_NAME_MAX)] | None = None


class PayerBody(msgspec.Struct, forbid_unknown_fields=True):
    user_id: UserId
    amount: Amount
    currency: str | None = None


class ShareBody(msgspec.Struct, forbid_unknown_fields=True):
    user_id: UserId
    amount: SignedAmount | None = None
    percent: int | float | None = None
    shares: Weight | None = None
    currency: str | None = None


class SplitBody(msgspec.Struct, forbid_unknown_fields=True):
    mode: SplitModeName
    shares: list[ShareBody] = []


class ItemBody(msgspec.Struct, forbid_unknown_fields=True):
    """One item of an itemized bill: its amount before tax and tip, and its own split
    (everyone equally when none is given)."""

    description: Description
    amount: Amount
    split: SplitBody | None = None


class ExpenseBody(msgspec.Struct, forbid_unknown_fields=True):
    """An expense; `amount` and `split` are needed unless it is itemized (`items`, with
    optional `tax`, `tip` and `spread`: then the amount is theirs and the shares derived).
    In another currency than the group's: `rate` or `group_amount`, or neither (the day's
    rate is looked up)."""

    description: Description
    currency: Currency
    paid_by: UserId | list[PayerBody]
    amount: Amount | None = None
    split: SplitBody | None = None
    date: Day | None = None
    category: Category | None = None
    recurrence: Recurrence | None = None
    until: Day | None = None  # a recurring expense's last day for a copy; or times
    times: RecurrenceTimes | None = None  # the original and its copies, in all
    rate: Rate | None = None
    group_amount: Amount | None = None
    items: Annotated[list[ItemBody], msgspec.Meta(max_length=MAX_ITEMS)] | None = None
    tax: Extra | None = None
    tip: Extra | None = None
    spread: SpreadName | None = None


class ExpensePatch(msgspec.Struct, forbid_unknown_fields=True):
    description: Description | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    paid_by: UserId | list[PayerBody] | None = None
    split: SplitBody | None = None
    date: Day | None = None
    category: Category | None = None
    recurrence: Recurrence | Literal["none"] | None = None
    until: Day | None = None  # a recurring expense's last day for a copy; or times
    times: RecurrenceTimes | None = None  # the original and its copies, in all
    rate: Rate | None = None
    group_amount: Amount | None = None
    items: Annotated[list[ItemBody], msgspec.Meta(max_length=MAX_ITEMS)] | None = None
    tax: Extra | None = None
    tip: Extra | None = None
    spread: SpreadName | None = None


class SettlementBody(msgspec.Struct, forbid_unknown_fields=True):
    """A settlement; in another currency than the group's, with `rate` or `group_amount`
    or neither (the day's rate is looked up)."""

    to_user_id: UserId
    amount: Amount
    currency: Currency
    method: SettlementMethod
    rate: Rate | None = None
    group_amount: Amount | None = None


class CommentBody(msgspec.Struct, forbid_unknown_fields=True):
    text: CommentText


# ── groups and members ────────────────────────────────────────────────────────────────


def group_message(body: GroupBody, *, group_id: str, user_id: str) -> CreateGroup:
    name = body.name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise field_problem("$.name", f"a name of 1 to {NAME_MAX} characters is needed")
    return CreateGroup(
        group_id=group_id, user_id=user_id, name=name, currency=known_currency(body.currency)
    )


def group_patch_message(body: GroupPatch, *, group_id: str, user_id: str) -> UpdateGroup:
    """The rename or archiving; `simplify` alone asks for no UpdateGroup (the route sends
    SetSimplify), so call this only when a name or archived is given."""
    if body.name is None and body.archived is None:
        raise field_problem("$", "give a new name, archived, or both")
    name = None
    if body.name is not None:
        name = body.name.strip()
        if not 1 <= len(name) <= NAME_MAX or not name.isprintable():
            raise field_problem("$.name", f"a name of 1 to {NAME_MAX} printable characters")
    return UpdateGroup(group_id=group_id, user_id=user_id, name=name, archived=body.archived)


def normalised_email(email: str) -> str:
    """The address stripped and lower-cased, by the one email rule (`valid_email`)."""
    cleaned = email.strip().lower()
    if not valid_email(cleaned):
        raise field_problem("$.email", "this is not an email address")
    return cleaned


def member_target(body: MemberBody) -> tuple[Literal["user_id", "email", "name"], str]:
    """Which one of `user_id`, `email` or `name` names the new member (exactly one must)."""
    given = [(key, getattr(body, key)) for key in ("user_id", "email", "name")]
    named = [(key, value) for key, value in given if value is not None]
    if len(named) != 1:
        field = "$." + (named[1][0] if len(named) > 1 else "user_id")
        raise field_problem(field, "give exactly one of user_id, email or name")
    key, value = named[0]
    if key == "email":
        return "email", normalised_email(value)
    if key == "name":
        return "name", placeholder_name(value)
    return "user_id", value


def placeholder_name(raw: str) -> str:
    """A placeholder's name: whitespace collapsed, 1 to 100 characters, no control ones."""
    name = " ".join(raw.split())
    if not name or has_control_characters(name):
        raise field_problem("$.name", "a name of letters, not only spaces or control characters")
    if len(name) > GROUP_NAME_MAX:
        raise field_problem("$.name", f"at most {GROUP_NAME_MAX} characters")
    return name


# ── expenses ──────────────────────────────────────────────────────────────────────────


def same_currency(given: str | None, expected: str, field: str) -> None:
    if given is not None and given != expected:
        raise field_problem(
            field,
            f"{given} differs from the expense's currency {expected}",
            code="mixed_currencies",
        )


def percent_bp(value: float, field: str) -> int:
    """A percent (0..100, at most two decimals) as exact basis points (100 % is 10000)."""
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        raise field_problem(field, "a percent is a number from 0 to 100") from None
    if not exact.is_finite() or not 0 <= exact <= 100:
        raise field_problem(field, "a percent is a number from 0 to 100")
    basis_points = exact * 100
    if basis_points != basis_points.to_integral_value():
        raise field_problem(field, f"a percent has at most {PERCENT_DECIMALS} decimals")
    return int(basis_points)


def payers(paid_by: str | list[PayerBody], amount: int, currency: str) -> list[Payer]:
    """`paid_by` as the actor takes it: one user paying all of `amount`, or the given lines."""
    if isinstance(paid_by, str):
        return [Payer(user_id=paid_by, amount=amount)]
    if not paid_by:
        raise field_problem("$.paid_by", "name at least one payer")
    for index, line in enumerate(paid_by):
        same_currency(line.currency, currency, f"$.paid_by[{index}].currency")
    paid = sum(line.amount for line in paid_by)
    if paid != amount:
        raise field_problem("$.paid_by", f"the payers paid {paid}, the expense is {amount}")
    return [Payer(user_id=line.user_id, amount=line.amount) for line in paid_by]


# which optional field of a share line each mode reads, and whether it must be there
MODE_FIELD: dict[str, tuple[str | None, bool]] = {
    "equal": (None, False),
    "exact": ("amount", True),
    "adjustment": ("amount", False),
    "percent": ("percent", True),
    "shares": ("shares", True),
}


def share_line(
    line: ShareBody, index: int, mode: str, currency: str, where: str = "$.split"
) -> ShareLine:
    """One participant line, checked against what its split mode reads."""
    path = f"{where}.shares[{index}]"
    same_currency(line.currency, currency, f"{path}.currency")
    wanted, required = MODE_FIELD[mode]
    for name in ("amount", "percent", "shares"):
        if name != wanted and getattr(line, name) is not None:
            raise field_problem(f"{path}.{name}", f"not used by the {mode} split")
    if wanted is not None and required and getattr(line, wanted) is None:
        raise field_problem(f"{path}.{wanted}", f"the {mode} split needs it on every line")
    if mode == "exact" and line.amount is not None and line.amount < 0:
        raise field_problem(f"{path}.amount", "a share cannot be negative")
    return ShareLine(
        user_id=line.user_id,
        amount=line.amount,
        percent_bp=None if line.percent is None else percent_bp(line.percent, f"{path}.percent"),
        shares=line.shares,
    )


def share_lines(split: SplitBody, currency: str, where: str = "$.split") -> list[ShareLine]:
    if not split.shares and split.mode != "equal":
        raise field_problem(f"{where}.shares", f"the {split.mode} split needs participants")
    return [
        share_line(line, index, split.mode, currency, where)
        for index, line in enumerate(split.shares)
    ]


# ── issue 17: currencies and items ────────────────────────────────────────────────────


def checked_rate(rate: str | None, group_amount: int | None) -> str | None:
    """The rate as given (checked: a positive decimal of sane size), given alone."""
    if rate is not None and group_amount is not None:
        raise field_problem("$.group_amount", "give rate or group_amount, not both")
    if rate is None:
        return None
    try:
        parse_rate(rate)
    except InvalidRate as error:
        raise field_problem("$.rate", error.message, code=InvalidRate.code) from None
    return rate.strip()


def items_of(items: list[ItemBody], currency: str) -> list[Item]:
    """The items of an itemized bill as the actor takes them (errors at `$.items[i]...`)."""
    if not items:
        raise field_problem("$.items", "an itemized expense needs at least one item")
    made = []
    for index, item in enumerate(items):
        split = item.split or SplitBody(mode="equal")
        made.append(
            Item(
                description=_checked_text(item.description, f"$.items[{index}].description"),
                amount=item.amount,
                split_mode=split.mode,
                shares=share_lines(split, currency, f"$.items[{index}].split"),
            )
        )
    return made


def no_bill(body: ExpenseBody | ExpensePatch) -> None:
    """Tax, tip and spread go with items."""
    for name in ("tax", "tip", "spread"):
        if getattr(body, name) is not None:
            raise field_problem(f"$.{name}", f"{name} goes with items (an itemized expense)")


def bill_total(items: list[Item], tax: int | None, tip: int | None) -> int:
    return sum(item.amount for item in items) + (tax or 0) + (tip or 0)


def add_expense_message(
    body: ExpenseBody, *, group_id: str, user_id: str, expense_id: str
) -> AddExpense:
    currency = known_currency(body.currency)
    items: list[Item] | None = None
    if body.items is not None:
        if body.split is not None:
            raise field_problem("$.split", "an itemized expense is split by its items")
        items = items_of(body.items, currency)
        amount = body.amount if body.amount is not None else bill_total(items, body.tax, body.tip)
        if amount > MAX_AMOUNT:
            raise field_problem("$.items", f"the items, tax and tip make more than {MAX_AMOUNT}")
    else:
        no_bill(body)
        if body.amount is None or body.split is None:
            missing = "$.amount" if body.amount is None else "$.split"
            raise field_problem(missing, "this field is required")
        amount = body.amount
    return AddExpense(
        group_id=group_id,
        user_id=user_id,
        expense_id=expense_id,
        description=checked_description(body.description),
        amount=amount,
        currency=currency,
        paid_by=payers(body.paid_by, amount, currency),
        split_mode="items" if body.split is None else body.split.mode,
        shares=[] if body.split is None else share_lines(body.split, currency),
        date=checked_date(body.date),
        category=body.category or "general",
        recurrence=body.recurrence,
        until=checked_date(body.until, "$.until"),
        times=body.times,
        rate=checked_rate(body.rate, body.group_amount),
        group_amount=body.group_amount,
        items=items,
        tax=body.tax,
        tip=body.tip,
        spread=body.spread,
    )


def edit_expense_message(body: ExpensePatch, current: ExpenseView, *, user_id: str) -> EditExpense:
    """The change to `current`: a payer given by id pays the whole (new) amount, and a sole
    payer follows a new amount."""
    currency = known_currency(body.currency) if body.currency is not None else current.currency
    amount = body.amount if body.amount is not None else current.amount
    items = None if body.items is None else items_of(body.items, currency)
    if items is not None and body.split is not None:
        raise field_problem("$.split", "an itemized expense is split by its items")
    if items is None and current.split_mode != "items":
        no_bill(body)
    if items is not None and body.amount is None:  # the items' total is the new amount
        tax = body.tax if body.tax is not None else current.tax
        amount = bill_total(items, tax, body.tip if body.tip is not None else current.tip)
    paid_by: list[Payer] | None = None
    if body.paid_by is not None:
        paid_by = payers(body.paid_by, amount, currency)
    elif body.amount is not None and len(current.paid_by) == 1:
        paid_by = [Payer(user_id=current.paid_by[0].user_id, amount=amount)]
    return EditExpense(
        group_id=current.group_id,
        user_id=user_id,
        expense_id=current.id,
        description=None if body.description is None else checked_description(body.description),
        amount=body.amount,
        currency=body.currency,
        paid_by=paid_by,
        split_mode=None if body.split is None else body.split.mode,
        shares=None if body.split is None else share_lines(body.split, currency),
        date=checked_date(body.date),
        category=body.category,
        recurrence=body.recurrence,
        until=checked_date(body.until, "$.until"),
        times=body.times,
        rate=checked_rate(body.rate, body.group_amount),
        group_amount=body.group_amount,
        items=items,
        tax=body.tax,
        tip=body.tip,
        spread=body.spread,
    )


def _checked_text(text: str, field: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise field_problem(field, "cannot be blank")
    return cleaned


def checked_description(description: str) -> str:
    cleaned = description.strip()
    if not cleaned:
        raise field_problem("$.description", "a description cannot be blank")
    return cleaned


def checked_date(day: str | None, field: str = "$.date") -> str | None:
    if day is None:
        return None
    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        raise field_problem(field, "not a calendar date (YYYY-MM-DD)") from None
    return day


# ── settlements ───────────────────────────────────────────────────────────────────────


def settlement_message(
    body: SettlementBody, *, group_id: str, user_id: str, settlement_id: str
) -> RecordSettlement:
    if body.to_user_id == user_id:
        raise field_problem("$.to_user_id", "a settlement with yourself moves nothing")
    return RecordSettlement(
        group_id=group_id,
        user_id=user_id,
        settlement_id=settlement_id,
        to_user_id=body.to_user_id,
        amount=body.amount,
        currency=known_currency(body.currency),
        method=body.method,
        rate=checked_rate(body.rate, body.group_amount),
        group_amount=body.group_amount,
    )
