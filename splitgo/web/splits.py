"""The Splits routes of API.md: groups, members and invites, expenses in every split mode,
balances, the settle-up plan, settlements (cash or through the wallet), the activity feed,
comments and the CSV export.

Request bodies are decoded into Structs here and turned into the splits actor's commands by
plain functions (`group_message`, `member_target`, `add_expense_message`, ...), so the
conversion is testable without a server.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from actors.auth.messages import FindUserByEmail, GetUser, valid_email
from actors.payments.messages import MAX_AMOUNT
from actors.runtime import DomainError, Message
from actors.splits.messages import (
    CATEGORY_MAX,
    COMMENT_MAX,
    DESCRIPTION_MAX,
    ActivityPage,
    AddComment,
    AddExpense,
    AddMember,
    BalancesView,
    CommentList,
    CommentView,
    CreateGroup,
    CsvExport,
    DeleteExpense,
    EditExpense,
    ExpensePage,
    ExpenseView,
    ExportGroup,
    GetActivity,
    GetBalances,
    GetExpense,
    GetGroup,
    GetSettlement,
    GetSettlePlan,
    GroupList,
    GroupView,
    ListComments,
    ListExpenses,
    ListGroups,
    Payer,
    RecordSettlement,
    Recurrence,
    RemoveMember,
    SettlementMethod,
    SettlementView,
    SettlePlanView,
    ShareLine,
    SplitModeName,
)
from splitgo.web.actors import ask, find_user
from splitgo.web.declare import IDEMPOTENCY_KEY, Content, PageQuery, documented, idempotency
from splitgo.web.keys import SERVICES
from splitgo.web.ops import page_params
from splitgo.web.payments import Amount, Currency, UserId, field_problem, known_currency
from splitgo.web.problems import FieldError, ProblemError, from_domain_error, json_response, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

NAME_MAX = 100
PERCENT_DECIMALS = 2
SETTLE_WAIT_SECONDS = 10.0
SETTLE_POLL_SECONDS = 0.05
SETTLEMENT_ASK_TIMEOUT = 20.0
BARE_FIELDS = frozenset({"group_id", "expense_id", "settlement_id", "cursor", "limit"})
IDEMPOTENCY_NAMESPACE = uuid.UUID("5f0c3a52-9a4e-4d8e-9d53-6b1f2b7a0c11")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

SignedAmount = Annotated[int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
Weight = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
Description = Annotated[str, msgspec.Meta(min_length=1, max_length=DESCRIPTION_MAX)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=CATEGORY_MAX)]
CommentText = Annotated[str, msgspec.Meta(min_length=1, max_length=COMMENT_MAX)]
Day = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class GroupBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    currency: Currency


class MemberBody(msgspec.Struct, forbid_unknown_fields=True):
    user_id: UserId | None = None
    email: str | None = None


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


class ExpenseBody(msgspec.Struct, forbid_unknown_fields=True):
    description: Description
    amount: Amount
    currency: Currency
    paid_by: UserId | list[PayerBody]
    split: SplitBody
    date: Day | None = None
    category: Category | None = None
    recurrence: Recurrence | None = None


class ExpensePatch(msgspec.Struct, forbid_unknown_fields=True):
    description: Description | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    paid_by: UserId | list[PayerBody] | None = None
    split: SplitBody | None = None
    date: Day | None = None
    category: Category | None = None
    recurrence: Recurrence | Literal["none"] | None = None


class SettlementBody(msgspec.Struct, forbid_unknown_fields=True):
    to_user_id: UserId
    amount: Amount
    currency: Currency
    method: SettlementMethod


class CommentBody(msgspec.Struct, forbid_unknown_fields=True):
    text: CommentText


# ── turning bodies into commands (no IO) ──────────────────────────────────────────────


def group_message(body: GroupBody, *, group_id: str, user_id: str) -> CreateGroup:
    name = body.name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise field_problem("$.name", f"a name of 1 to {NAME_MAX} characters is needed")
    return CreateGroup(
        group_id=group_id, user_id=user_id, name=name, currency=known_currency(body.currency)
    )


def normalised_email(email: str) -> str:
    """The address stripped and lower-cased, by the one email rule (`valid_email`)."""
    cleaned = email.strip().lower()
    if not valid_email(cleaned):
        raise field_problem("$.email", "this is not an email address")
    return cleaned


def member_target(body: MemberBody) -> tuple[Literal["user_id", "email"], str]:
    """Which one of `user_id` or `email` names the new member (exactly one must)."""
    if (body.user_id is None) == (body.email is None):
        field = "$.email" if body.user_id is not None else "$.user_id"
        raise field_problem(field, "give exactly one of user_id or email")
    if body.user_id is not None:
        return "user_id", body.user_id
    assert body.email is not None
    return "email", normalised_email(body.email)


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


def share_line(line: ShareBody, index: int, mode: str, currency: str) -> ShareLine:
    """One participant line, checked against what its split mode reads."""
    path = f"$.split.shares[{index}]"
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


def share_lines(split: SplitBody, currency: str) -> list[ShareLine]:
    if not split.shares and split.mode != "equal":
        raise field_problem("$.split.shares", f"the {split.mode} split needs participants")
    return [
        share_line(line, index, split.mode, currency) for index, line in enumerate(split.shares)
    ]


def add_expense_message(
    body: ExpenseBody, *, group_id: str, user_id: str, expense_id: str
) -> AddExpense:
    currency = known_currency(body.currency)
    return AddExpense(
        group_id=group_id,
        user_id=user_id,
        expense_id=expense_id,
        description=checked_description(body.description),
        amount=body.amount,
        currency=currency,
        paid_by=payers(body.paid_by, body.amount, currency),
        split_mode=body.split.mode,
        shares=share_lines(body.split, currency),
        date=checked_date(body.date),
        category=body.category or "general",
        recurrence=body.recurrence,
    )


def edit_expense_message(body: ExpensePatch, current: ExpenseView, *, user_id: str) -> EditExpense:
    """The change to `current`: a payer given by id pays the whole (new) amount, and a sole
    payer follows a new amount."""
    currency = known_currency(body.currency) if body.currency is not None else current.currency
    amount = body.amount if body.amount is not None else current.amount
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
    )


def checked_description(description: str) -> str:
    cleaned = description.strip()
    if not cleaned:
        raise field_problem("$.description", "a description cannot be blank")
    return cleaned


def checked_date(day: str | None) -> str | None:
    if day is None:
        return None
    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        raise field_problem("$.date", "not a calendar date (YYYY-MM-DD)") from None
    return day


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
    )


def settlement_id_for(group_id: str, user_id: str, idempotency_key: str | None) -> str:
    """A fresh id, or one derived from the Idempotency-Key so a retry names the same one."""
    if not idempotency_key:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{group_id}\n{user_id}\n{idempotency_key}"))


def json_path_problem(error: DomainError) -> ProblemError | None:
    """The actor's error with its `details["field"]` made a JSON path into the body (path
    and query parameters keep their bare names)."""
    field = error.details.get("field")
    if not isinstance(field, str) or not field or field.startswith("$") or field in BARE_FIELDS:
        return None
    problem = from_domain_error(error)
    path = "$." + field.replace(".percent_bp", ".percent")
    problem.errors = [FieldError(field=path, message=error.message)]
    return problem


def replay_conflict(message: RecordSettlement, view: SettlementView) -> ProblemError | None:
    """A settlement already recorded under this Idempotency-Key, but for another body."""
    first = (view.to_user_id, view.amount, view.currency, view.method)
    if first == (message.to_user_id, message.amount, message.currency, message.method):
        return None
    return ProblemError(
        409,
        "idempotency_conflict",
        "this Idempotency-Key was used for another settlement; use a new key",
    )


def failed_settlement_problem(view: SettlementView) -> ProblemError:
    return ProblemError(
        422,
        view.failure_code or "settlement_failed",
        view.failure_message or "the wallet transfer did not go through",
    )


def attachment(filename: str) -> str:
    safe = _FILENAME_UNSAFE.sub("_", filename).strip("._") or "export.csv"
    return f'attachment; filename="{safe}"'


# ── talking to the actors ─────────────────────────────────────────────────────────────


async def ask_splits(
    request: web.Request, message: Message, *, timeout: float | None = None
) -> Any:
    """Ask the splits actor; a refusal naming a body field names it as a JSON path."""
    return await ask(request, "splits", message, timeout=timeout, refusal=json_path_problem)


async def add_member_message(
    request: web.Request, body: MemberBody, *, group_id: str, user_id: str
) -> AddMember:
    """A known user by id or email, or an invite for an email with no account yet."""
    kind, value = member_target(body)
    system = request.app[SERVICES].system
    if kind == "user_id":
        if await find_user(system, GetUser(user_id=value)) is None:
            raise field_problem("$.user_id", "no user has this id")
        return AddMember(group_id=group_id, user_id=user_id, member_user_id=value)
    found = await find_user(system, FindUserByEmail(email=value))
    if found is None:
        return AddMember(group_id=group_id, user_id=user_id, email=value)
    return AddMember(group_id=group_id, user_id=user_id, member_user_id=found.id)


async def settlement_outcome(
    request: web.Request, view: SettlementView, user_id: str
) -> SettlementView:
    """Wait (briefly) for a pending wallet settlement to complete or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_WAIT_SECONDS
    while view.status == "pending" and loop.time() < deadline:
        await asyncio.sleep(SETTLE_POLL_SECONDS)
        view = await ask_splits(
            request,
            GetSettlement(group_id=view.group_id, user_id=user_id, settlement_id=view.id),
        )
    return view


def group_id(request: web.Request) -> str:
    return request.match_info["id"]


def settlement_path(view: SettlementView) -> str:
    return f"/api/v1/groups/{view.group_id}/settlements/{view.id}"


# ── groups and members ────────────────────────────────────────────────────────────────


@routes.post("/api/v1/groups")
@documented(
    summary="Create a group",
    description="The creator is its first member.",
    tags=["splits"],
    body=GroupBody,
    responses={201: GroupView},
)
async def create_group(request: web.Request, body: GroupBody) -> web.Response:
    claims = authenticate(request)
    message = group_message(body, group_id=str(uuid.uuid4()), user_id=claims.sub)
    group: GroupView = await ask_splits(request, message)
    return json_response(to_json(group), status=201)


@routes.get("/api/v1/groups")
@documented(summary="The caller's groups", tags=["splits"], responses={200: GroupList})
async def list_groups(request: web.Request) -> web.Response:
    claims = authenticate(request)
    found: GroupList = await ask_splits(request, ListGroups(user_id=claims.sub))
    return json_response(to_json(found))


@routes.get("/api/v1/groups/{id}")
@documented(summary="A group with its members", tags=["splits"], responses={200: GroupView})
async def get_group(request: web.Request) -> web.Response:
    claims = authenticate(request)
    group: GroupView = await ask_splits(
        request, GetGroup(group_id=group_id(request), user_id=claims.sub)
    )
    return json_response(to_json(group))


@routes.post("/api/v1/groups/{id}/members")
@documented(
    summary="Add a member",
    description="By `user_id`, or by `email`: an email with no account yet is invited and "
    "joins on sign-up.",
    tags=["splits"],
    body=MemberBody,
    responses={201: GroupView},
    errors=[409],
)
async def add_member(request: web.Request, body: MemberBody) -> web.Response:
    claims = authenticate(request)
    message = await add_member_message(
        request, body, group_id=group_id(request), user_id=claims.sub
    )
    group: GroupView = await ask_splits(request, message)
    return json_response(to_json(group), status=201)


@routes.delete("/api/v1/groups/{id}/members/{user_id}")
@documented(
    summary="Remove a member",
    description="409 `unsettled_balance` while their balance is not zero.",
    tags=["splits"],
    responses={204: None},
    errors=[409, 422],
)
async def remove_member(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask_splits(
        request,
        RemoveMember(
            group_id=group_id(request),
            user_id=claims.sub,
            member_user_id=request.match_info["user_id"],
        ),
    )
    return web.Response(status=204)


# ── expenses and comments ─────────────────────────────────────────────────────────────


@routes.post("/api/v1/groups/{id}/expenses")
@documented(
    summary="Add an expense",
    description="`split.mode` is `equal` (shares: `[{user_id}]`), `exact` (`[{user_id, "
    "amount}]`, summing to the amount), `percent` (`[{user_id, percent}]`, summing to 100), "
    "`shares` (`[{user_id, shares}]`, integer weights) or `adjustment`. `paid_by` is a "
    "member's id, or `[{user_id, amount}]` lines summing to the amount. Every participant "
    "must be a member.",
    tags=["splits"],
    body=ExpenseBody,
    responses={201: ExpenseView},
)
async def add_expense(request: web.Request, body: ExpenseBody) -> web.Response:
    claims = authenticate(request)
    message = add_expense_message(
        body, group_id=group_id(request), user_id=claims.sub, expense_id=str(uuid.uuid4())
    )
    expense: ExpenseView = await ask_splits(request, message)
    return json_response(to_json(expense), status=201)


@routes.get("/api/v1/groups/{id}/expenses")
@documented(
    summary="A group's expenses",
    tags=["splits"],
    query=PageQuery,
    responses={200: ExpensePage},
)
async def list_expenses(request: web.Request) -> web.Response:
    claims = authenticate(request)
    limit, cursor = page_params(request)
    page: ExpensePage = await ask_splits(
        request,
        ListExpenses(group_id=group_id(request), user_id=claims.sub, limit=limit, cursor=cursor),
    )
    return json_response(to_json(page))


def expense_query(request: web.Request, user_id: str) -> GetExpense:
    return GetExpense(
        group_id=group_id(request), user_id=user_id, expense_id=request.match_info["eid"]
    )


@routes.get("/api/v1/groups/{id}/expenses/{eid}")
@documented(summary="An expense", tags=["splits"], responses={200: ExpenseView})
async def get_expense(request: web.Request) -> web.Response:
    claims = authenticate(request)
    expense: ExpenseView = await ask_splits(request, expense_query(request, claims.sub))
    return json_response(to_json(expense))


@routes.patch("/api/v1/groups/{id}/expenses/{eid}")
@documented(
    summary="Change an expense",
    description="Only the given fields change; balances follow.",
    tags=["splits"],
    body=ExpensePatch,
    responses={200: ExpenseView},
)
async def edit_expense(request: web.Request, body: ExpensePatch) -> web.Response:
    claims = authenticate(request)
    current: ExpenseView = await ask_splits(request, expense_query(request, claims.sub))
    if body == ExpensePatch():
        return json_response(to_json(current))
    edited: ExpenseView = await ask_splits(
        request, edit_expense_message(body, current, user_id=claims.sub)
    )
    return json_response(to_json(edited))


@routes.delete("/api/v1/groups/{id}/expenses/{eid}")
@documented(
    summary="Delete an expense",
    description="Balances follow.",
    tags=["splits"],
    responses={204: None},
)
async def delete_expense(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask_splits(
        request,
        DeleteExpense(
            group_id=group_id(request), user_id=claims.sub, expense_id=request.match_info["eid"]
        ),
    )
    return web.Response(status=204)


@routes.post("/api/v1/groups/{id}/expenses/{eid}/comments")
@documented(
    summary="Comment on an expense",
    tags=["splits"],
    body=CommentBody,
    responses={201: CommentView},
)
async def add_comment(request: web.Request, body: CommentBody) -> web.Response:
    claims = authenticate(request)
    if not body.text.strip():
        raise field_problem("$.text", "a comment cannot be blank")
    comment: CommentView = await ask_splits(
        request,
        AddComment(
            group_id=group_id(request),
            user_id=claims.sub,
            expense_id=request.match_info["eid"],
            comment_id=str(uuid.uuid4()),
            text=body.text,
        ),
    )
    return json_response(to_json(comment), status=201)


@routes.get("/api/v1/groups/{id}/expenses/{eid}/comments")
@documented(
    summary="An expense's comments",
    tags=["splits"],
    responses={200: CommentList},
)
async def list_comments(request: web.Request) -> web.Response:
    claims = authenticate(request)
    comments: CommentList = await ask_splits(
        request,
        ListComments(
            group_id=group_id(request), user_id=claims.sub, expense_id=request.match_info["eid"]
        ),
    )
    return json_response(to_json(comments))


# ── balances, settling up, activity, export ───────────────────────────────────────────


@routes.get("/api/v1/groups/{id}/balances")
@documented(
    summary="Who owes what",
    description="`net` > 0 is owed to them; the nets of each currency sum to zero.",
    tags=["splits"],
    responses={200: BalancesView},
)
async def balances(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view = await ask_splits(request, GetBalances(group_id=group_id(request), user_id=claims.sub))
    return json_response(to_json(view))


@routes.get("/api/v1/groups/{id}/settle-plan")
@documented(
    summary="The fewest transfers that settle the group",
    tags=["splits"],
    responses={200: SettlePlanView},
)
async def settle_plan(request: web.Request) -> web.Response:
    claims = authenticate(request)
    plan = await ask_splits(request, GetSettlePlan(group_id=group_id(request), user_id=claims.sub))
    return json_response(to_json(plan))


@routes.post("/api/v1/groups/{id}/settlements")
@documented(
    summary="Record a settlement",
    description="`cash` is recorded at once; `wallet` moves the money through payments "
    "first: 201 once it went through, 202 with Location while it is still pending, 422 "
    "(`insufficient_funds`, ...) when it failed.",
    tags=["splits"],
    body=SettlementBody,
    headers=[idempotency(required=False)],
    responses={
        201: SettlementView,
        202: Content(
            SettlementView,
            description="still pending",
            headers={"Location": ("where to follow it", True)},
        ),
    },
    errors=[409],
)
async def record_settlement(request: web.Request, body: SettlementBody) -> web.Response:
    claims = authenticate(request)
    settlement_id = settlement_id_for(
        group_id(request), claims.sub, request.headers.get(IDEMPOTENCY_KEY, "").strip() or None
    )
    message = settlement_message(
        body, group_id=group_id(request), user_id=claims.sub, settlement_id=settlement_id
    )
    recorded: SettlementView = await ask_splits(request, message, timeout=SETTLEMENT_ASK_TIMEOUT)
    conflict = replay_conflict(message, recorded)
    if conflict is not None:
        raise conflict
    view = await settlement_outcome(request, recorded, claims.sub)
    if view.status == "failed":
        raise failed_settlement_problem(view)
    if view.status == "pending":
        response = json_response(to_json(view), status=202)
        response.headers["Location"] = settlement_path(view)
        return response
    return json_response(to_json(view), status=201)


@routes.get("/api/v1/groups/{id}/settlements/{sid}")
@documented(summary="A settlement", tags=["splits"], responses={200: SettlementView})
async def get_settlement(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view: SettlementView = await ask_splits(
        request,
        GetSettlement(
            group_id=group_id(request), user_id=claims.sub, settlement_id=request.match_info["sid"]
        ),
    )
    return json_response(to_json(view))


@routes.get("/api/v1/groups/{id}/activity")
@documented(
    summary="What happened in the group, newest first",
    tags=["splits"],
    query=PageQuery,
    responses={200: ActivityPage},
)
async def activity(request: web.Request) -> web.Response:
    claims = authenticate(request)
    limit, cursor = page_params(request)
    page: ActivityPage = await ask_splits(
        request,
        GetActivity(group_id=group_id(request), user_id=claims.sub, limit=limit, cursor=cursor),
    )
    return json_response(to_json(page))


@routes.get("/api/v1/groups/{id}/export.csv")
@documented(
    summary="The group's expenses and settlements as CSV",
    tags=["splits"],
    responses={
        200: Content(
            media_type="text/csv",
            description="a CSV file",
            headers={"Content-Disposition": ("attachment; filename=...", True)},
        )
    },
)
async def export_csv(request: web.Request) -> web.Response:
    claims = authenticate(request)
    export: CsvExport = await ask_splits(
        request, ExportGroup(group_id=group_id(request), user_id=claims.sub)
    )
    return web.Response(
        text=export.text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": attachment(export.filename)},
    )
