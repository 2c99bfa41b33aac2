"""Search a group's expenses and the insight of its spending (issue 17, item 4):
GET /api/v1/groups/{id}/search and GET /api/v1/groups/{id}/insight.

Both take the same filter as query parameters (`filter_fields` reads it; the web app's
search and insight pages read their forms with it too). Every refusal of a filter is a 422
naming the query parameter as it is spelled (`amount_min`), not as a body path: the splits
actor's `invalid_search` for what its rules refuse, `validation_error` for an amount that
is not a whole number. The routes are not under /expenses/: /expenses/{eid} would take
`search` for an expense's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web

from actors.payments.messages import MAX_AMOUNT
from actors.runtime import DomainError, Message
from actors.splits.messages import (
    SEARCH_TEXT_MAX,
    ExpensePage,
    GetInsight,
    InsightView,
    SearchExpenses,
)
from splitgo.web.actors import ask
from splitgo.web.declare import PageQuery, documented
from splitgo.web.ops import page_params
from splitgo.web.payments import field_problem
from splitgo.web.problems import FieldError, ProblemError, from_domain_error, json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import group_id

routes = web.RouteTableDef()

M = TypeVar("M", bound=Message)

FILTER_FIELDS = ("text", "person", "category", "currency", "date_from", "date_to")
AMOUNT_FIELDS = ("amount_min", "amount_max")
_AMOUNT_DIGITS = len(str(MAX_AMOUNT)) + 1  # more digits than this is out of range anyway

Text = Annotated[
    str,
    msgspec.Meta(
        max_length=SEARCH_TEXT_MAX, description="words anywhere in the description, ignoring case"
    ),
]
Person = Annotated[str, msgspec.Meta(description="a member's id: they paid or share the expense")]
CategoryName = Annotated[str, msgspec.Meta(description="one of the group's categories")]
CurrencyCode = Annotated[str, msgspec.Meta(description="the expenses' currency (ISO 4217)")]
Day = Annotated[str, msgspec.Meta(description="a day, YYYY-MM-DD (inclusive)")]
Amount = Annotated[
    int, msgspec.Meta(ge=0, le=MAX_AMOUNT, description="an expense's whole amount, minor units")
]


class SearchQuery(PageQuery):
    """The search's query: the filter and a page of it (`limit`, `cursor`). Documentation
    only: `filter_fields` and `page_params` read it."""

    text: Text = ""
    person: Person = ""
    category: CategoryName = ""
    currency: CurrencyCode = ""
    date_from: Day = ""
    date_to: Day = ""
    amount_min: Amount | None = None
    amount_max: Amount | None = None


class InsightQuery(msgspec.Struct):
    """The insight's query: the search's filter, and whose own shares to sum instead of
    whole expenses (documentation only, as SearchQuery)."""

    text: Text = ""
    person: Person = ""
    category: CategoryName = ""
    currency: CurrencyCode = ""
    date_from: Day = ""
    date_to: Day = ""
    amount_min: Amount | None = None
    amount_max: Amount | None = None
    shares_of: Annotated[
        str, msgspec.Meta(description="a member's id: sum their own shares, not the expenses")
    ] = ""


def filter_fields(query: Mapping[str, str]) -> dict[str, Any]:
    """The filter's fields as the splits commands take them, from a query string (or a
    GET form): blank is not given; an amount is a whole number of minor units, or a 422
    naming it."""
    fields: dict[str, Any] = {}
    for name in FILTER_FIELDS:
        value = query.get(name, "")
        if value.strip():
            fields[name] = value
    for name in AMOUNT_FIELDS:
        raw = query.get(name, "").strip()
        if not raw:
            continue
        # isascii: "¹" is a digit to str.isdigit() but not to int()
        if not (raw.isascii() and raw.isdigit()) or len(raw) > _AMOUNT_DIGITS:
            raise field_problem(name, f"a whole number of minor units from 0 to {MAX_AMOUNT}")
        fields[name] = int(raw)
    return fields


def query_problem(error: DomainError) -> ProblemError | None:
    """A refusal naming a field as the query parameter it is (`$.text` is `text`)."""
    field = error.details.get("field")
    if not isinstance(field, str) or not field:
        return None
    problem = from_domain_error(error)
    problem.errors = [FieldError(field=field.removeprefix("$."), message=error.message)]
    return problem


def command(kind: type[M], **fields: Any) -> M:
    """The command made of the filter; a field outside its bounds (checked as a message is
    made) is the 422 naming its query parameter."""
    try:
        return kind(**fields)
    except DomainError as error:
        raise query_problem(error) or from_domain_error(error) from None


async def ask_filtered(request: web.Request, message: Message) -> Any:
    """Ask the splits actor; a refusal names its query parameter."""
    return await ask(request, "splits", message, refusal=query_problem)


@routes.get("/api/v1/groups/{id}/search")
@documented(
    summary="Search a group's expenses",
    description="The group's live expenses matching every filter given, newest date first, "
    "paged by `next_cursor`. `text` is found anywhere in the description (ignoring case); "
    "`person` paid or shares the expense; the dates are inclusive; the amounts bound the "
    "expense's whole amount in minor units. A wrong filter is a 422 `invalid_search` naming "
    "its parameter.",
    tags=["splits"],
    query=SearchQuery,
    responses={200: ExpensePage},
)
async def search(request: web.Request) -> web.Response:
    claims = authenticate(request)
    limit, cursor = page_params(request)
    message = command(
        SearchExpenses,
        group_id=group_id(request),
        user_id=claims.sub,
        limit=limit,
        cursor=cursor,
        **filter_fields(request.query),
    )
    page: ExpensePage = await ask_filtered(request, message)
    return json_response(to_json(page))


@routes.get("/api/v1/groups/{id}/insight")
@documented(
    summary="A group's spending by category and by month",
    description="Totals of the expenses matching the filter (as in search), one series per "
    "currency (the group's first; amounts in different currencies are never added): by "
    "category, largest first, and by month (`YYYY-MM`), oldest first with every month of "
    "the range present. With `shares_of`, that member's own shares of those expenses "
    "instead of their whole amounts. Each series' percents add up to 100.",
    tags=["splits"],
    query=InsightQuery,
    responses={200: InsightView},
    errors=[422],  # invalid_search, an amount that is not a whole number
)
async def insight(request: web.Request) -> web.Response:
    claims = authenticate(request)
    shares_of = request.query.get("shares_of", "").strip() or None
    message = command(
        GetInsight,
        group_id=group_id(request),
        user_id=claims.sub,
        shares_of=shares_of,
        **filter_fields(request.query),
    )
    view: InsightView = await ask_filtered(request, message)
    return json_response(to_json(view))
