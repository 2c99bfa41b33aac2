"""The Splits routes for expenses (every split mode, itemized bills, other currencies than
the group's: their rate looked up here when not given, `rates.ask_priced`) and their
comments."""

from __future__ import annotations

import uuid

from aiohttp import web

from actors.splits.messages import (
    AddComment,
    CommentList,
    CommentView,
    DeleteExpense,
    ExpensePage,
    ExpenseView,
    GetExpense,
    ListComments,
    ListExpenses,
)
from splitgo.web.declare import PageQuery, documented, idempotency
from splitgo.web.idempotency import key_for, with_key
from splitgo.web.ops import page_params
from splitgo.web.payments import field_problem
from splitgo.web.problems import json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id
from splitgo.web.splits.bodies import (
    CommentBody,
    ExpenseBody,
    ExpensePatch,
    add_expense_message,
    edit_expense_message,
)
from splitgo.web.splits.rates import ask_priced

routes = web.RouteTableDef()


def expense_query(request: web.Request, user_id: str) -> GetExpense:
    return GetExpense(
        group_id=group_id(request), user_id=user_id, expense_id=request.match_info["eid"]
    )


@routes.post("/api/v1/groups/{id}/expenses")
@documented(
    summary="Add an expense",
    description="`split.mode` is `equal` (shares: `[{user_id}]`), `exact` (`[{user_id, "
    "amount}]`, summing to the amount), `percent` (`[{user_id, percent}]`, summing to 100), "
    "`shares` (`[{user_id, shares}]`, integer weights) or `adjustment`. `paid_by` is a "
    "member's id, or `[{user_id, amount}]` lines summing to the amount. Every participant "
    "must be a member. An itemized bill gives `items: [{description, amount, split?}]` "
    "instead of `split` (and maybe of `amount`), plus optional `tax` and `tip` (minor units) "
    "spread over the items `proportional`ly (default) or `equal`ly (`spread`); its shares "
    "are derived, exact to the minor unit. In another currency than the group's, give "
    "`rate` (the group's currency per 1 unit, a decimal string) or `group_amount` (the "
    "amount in the group's currency: the rate is derived), or neither: the rate of the "
    "expense's date is looked up, and 422 `rate_unavailable` says when none can be had.",
    tags=["splits"],
    body=ExpenseBody,
    headers=[idempotency(required=False)],
    responses={201: ExpenseView},
    errors=[409],  # group_archived
)
async def add_expense(request: web.Request, body: ExpenseBody) -> web.Response:
    claims = authenticate(request)
    message = add_expense_message(
        body, group_id=group_id(request), user_id=claims.sub, expense_id=str(uuid.uuid4())
    )
    message = with_key(message, request, body, caller=claims.sub)
    expense: ExpenseView = await ask_priced(request, message)
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


@routes.get("/api/v1/groups/{id}/expenses/{eid}")
@documented(summary="An expense", tags=["splits"], responses={200: ExpenseView})
async def get_expense(request: web.Request) -> web.Response:
    claims = authenticate(request)
    expense: ExpenseView = await ask_splits(request, expense_query(request, claims.sub))
    return json_response(to_json(expense))


@routes.patch("/api/v1/groups/{id}/expenses/{eid}")
@documented(
    summary="Change an expense",
    description="Only the given fields change; balances follow. A new currency or date "
    "of an expense in another currency than the group's looks its rate up again, unless "
    "`rate` or `group_amount` is given (a rate given before stays).",
    tags=["splits"],
    body=ExpensePatch,
    responses={200: ExpenseView},
    errors=[409],  # group_archived
)
async def edit_expense(request: web.Request, body: ExpensePatch) -> web.Response:
    claims = authenticate(request)
    current: ExpenseView = await ask_splits(request, expense_query(request, claims.sub))
    if body == ExpensePatch():
        return json_response(to_json(current))
    edited: ExpenseView = await ask_priced(
        request, edit_expense_message(body, current, user_id=claims.sub)
    )
    return json_response(to_json(edited))


@routes.delete("/api/v1/groups/{id}/expenses/{eid}")
@documented(
    summary="Delete an expense",
    description="Balances follow.",
    tags=["splits"],
    responses={204: None},
    errors=[409],  # group_archived
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
    headers=[idempotency(required=False)],
    responses={201: CommentView},
    errors=[409],  # group_archived
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
            idempotency=key_for(request, body, caller=claims.sub),
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
