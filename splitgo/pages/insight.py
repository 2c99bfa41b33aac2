"""Pages of issue 17 (item 4): a group's advanced search and its insight.

`/groups/{id}/search` is a GET form (words, person, category, from and to dates, least
and most amount) whose results are listed as the Expenses tab lists them, a page at a
time by the search's cursor. It asks the splits actor what GET /api/v1/groups/{id}/search
asks, with the filter read by that route's own `filter_fields`; amounts are typed as money
in the group's currency ("12,50") and become minor units here. The Person filter is a list
of the members in a group of up to PERSON_LIST_MAX, else a name field (as on the Expenses
tab), which must name exactly one member. A refusal is shown at its field, what was typed
kept.

`/groups/{id}/insight` (the Insight tab) shows the group's spending by category and by
month — or, with `?view=mine`, just the viewer's own share — each as an inline SVG chart
drawn by `splitgo.pages.charts` with a table of the same numbers below it, one chart per
currency (amounts in different currencies are never added), for an optional date range.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from actors.splits.messages import (
    ExpensePage,
    GetGroup,
    GetInsight,
    GroupView,
    InsightSeries,
    InsightView,
    SearchExpenses,
)
from splitgo.pages.charts import bar_chart, month_chart
from splitgo.pages.expenses import (
    CATEGORIES,
    PAGE_SIZE,
    PERSON_LIST_MAX,
    day_words,
    person_choices,
    your_part,
)
from splitgo.pages.forms import REFUSALS, Form
from splitgo.pages.group_page import header_context
from splitgo.pages.guards import signed_in
from splitgo.pages.money import format_money, locale_of, parse_money
from splitgo.pages.render import named, render
from splitgo.pages.sessions import Viewer
from splitgo.web.payments import field_problem
from splitgo.web.splits.asking import ask_splits
from splitgo.web.splits.search import ask_filtered, command, filter_fields

routes = web.RouteTableDef()

# the search form's inputs, as GET /api/v1/groups/{id}/search names its filter (`who` is
# the name field of a large group's Person filter)
SEARCH_INPUTS = (
    "text",
    "person",
    "who",
    "category",
    "date_from",
    "date_to",
    "amount_min",
    "amount_max",
)
INSIGHT_INPUTS = ("view", "date_from", "date_to")
TEXT_INPUT_MAX = 200  # characters kept of a typed input (the actor says what is too long)


# how a refusal's words name a filter field on these pages (the rules name it as the
# query does: "date_to must not be before date_from")
FIELD_WORDS = {
    "date_from": "the From date",
    "date_to": "the To date",
    "amount_min": "the least amount",
    "amount_max": "the most amount",
    "shares_of": "the person",
}


def page_words(message: str) -> str:
    """A refusal of the filter rules in the page's words: the field it starts with left
    out (it is said at that field), the others named by their labels."""
    if "YYYY-MM-DD" in message:
        return "Enter a date as YYYY-MM-DD, such as 2026-03-31."
    first, _, rest = message.partition(" ")
    # forms.humane made its first letter a capital
    if rest and first.lower() in (*SEARCH_INPUTS, *FIELD_WORDS):
        message = rest
    for name, words in FIELD_WORDS.items():
        message = message.replace(name, words)
    return message[:1].upper() + message[1:]


def say_at_fields(form: Form) -> None:
    """The form's refusals in the page's words (`page_words`)."""
    form.errors = {name: page_words(message) for name, message in form.errors.items()}


def typed_form(query: Mapping[str, str], names: tuple[str, ...]) -> Form:
    """What was typed into a GET form: its inputs from the query string, cut short."""
    return Form(values={name: [query.get(name, "")[:TEXT_INPUT_MAX]] for name in names})


def amounts_in_minor(form: Form, currency: str, locale: str) -> dict[str, str]:
    """The form's amounts as typed money turned into minor units (the query's form of
    them); a ValueError saying what to type is the 422 naming its input."""
    minor: dict[str, str] = {}
    for name in ("amount_min", "amount_max"):
        typed = form.value(name).strip()
        if not typed:
            continue
        try:
            minor[name] = str(parse_money(typed, currency, locale))
        except ValueError as error:
            raise field_problem(name, str(error)) from None
    return minor


async def person_named(request: web.Request, viewer: Viewer, group_id: str, who: str) -> str:
    """The one member whose name holds `who` ("you" and "me" are the viewer); a 422 at the
    name field when nobody or several are so named."""
    words = " ".join(who.split()).casefold()
    if words in ("you", "me"):
        return viewer.user_id
    view: GroupView = await ask_splits(request, GetGroup(group_id=group_id, user_id=viewer.user_id))
    members = (await named(request, view))["members"]
    found = [
        member["user_id"]
        for member in members
        if words in " ".join((member.get("name") or "").split()).casefold()
    ]
    if not found:
        raise field_problem("who", f"Nobody here is called “{who}”; type part of a name.")
    if len(found) > 1:
        raise field_problem("who", f"{len(found)} members are called “{who}”; type more of it.")
    return str(found[0])


def searched(form: Form) -> bool:
    """Whether the form was sent with any filter (else the page only shows the form)."""
    return any(form.value(name).strip() for name in SEARCH_INPUTS)


def search_query(form: Form, cursor: str | None = None) -> str:
    """The query string of the search as typed (on the page after `cursor`)."""
    items = {name: form.value(name).strip() for name in SEARCH_INPUTS}
    items["cursor"] = cursor or ""
    text = urlencode({name: value for name, value in items.items() if value})
    return f"?{text}" if text else ""


@routes.get("/groups/{id}/search")
@signed_in
async def search_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The advanced search: the form, and a page of what it found."""
    group_id = request.match_info["id"]
    layout = await header_context(request, viewer, group_id)
    group = layout["group"]
    locale = locale_of(request.headers.get("Accept-Language"))
    form = typed_form(request.query, SEARCH_INPUTS)
    cursor = request.query.get("cursor") or None
    people = await person_choices(request, viewer, group)
    expenses: list[dict[str, Any]] = []
    next_cursor: str | None = None
    if searched(form):
        try:
            query = {
                name: form.value(name) for name in ("text", "category", "date_from", "date_to")
            }
            query.update(amounts_in_minor(form, group["currency"], locale))
            if people is not None:
                query["person"] = form.value("person")
            elif form.value("who").strip():
                query["person"] = await person_named(request, viewer, group_id, form.value("who"))
            message = command(
                SearchExpenses,
                group_id=group_id,
                user_id=viewer.user_id,
                limit=PAGE_SIZE,
                cursor=cursor,
                **filter_fields(query),
            )
            page: ExpensePage = await ask_filtered(request, message)
        except REFUSALS as error:
            # a large group's person is its name field
            form.refuse(error, inputs={"person": "who" if people is None else "person"})
            say_at_fields(form)
        else:
            expenses = await named(request, page.items) if page.items else []
            next_cursor = page.next_cursor
    for expense in expenses:
        expense["yours"] = your_part(expense, viewer.user_id)
        expense["day"] = day_words(expense["date"])
    base = f"/groups/{group_id}/search"
    context = {
        **layout,
        "tab": "expenses",
        "title": f"Search · {group['name']}",
        "form": form,
        "people": people,
        "person_list_max": PERSON_LIST_MAX,
        "categories": CATEGORIES,
        "searched": searched(form) and not form.refused,
        "expenses": expenses,
        "older": f"{base}{search_query(form, next_cursor)}" if next_cursor else None,
        "first": f"{base}{search_query(form)}" if cursor else None,
        "cursor": cursor,
    }
    return await render(request, "search.html", context, status=form.status)


# ── insight ───────────────────────────────────────────────────────────────────────────


def month_words(key: str) -> str:
    """A month `YYYY-MM` as "Mar 2026" (as it came when it is not one)."""
    try:
        moment = datetime.date.fromisoformat(f"{key}-01")
    except ValueError:
        return key
    return f"{moment:%b %Y}"


def chart_of(series: InsightSeries, *, by: str, mine: bool, locale: str) -> dict[str, Any]:
    """One currency's series as the page shows it: its chart (inline SVG) and the rows of
    the table of the same numbers."""
    currency = series.currency

    def money(amount: int) -> str:
        return format_money(amount, currency, locale)

    whose = "Your share" if mine else "Spending"
    ident = f"{by}-{'mine' if mine else 'group'}-{currency}"
    if by == "category":
        points = [(piece.key.capitalize(), piece.amount) for piece in series.slices]
        title = f"{whose} by category, {currency}"
        svg = bar_chart(points, title=title, value_text=money, chart_id=ident)
    else:
        points = [(month_words(piece.key), piece.amount) for piece in series.slices]
        title = f"{whose} by month, {currency}"
        svg = month_chart(points, title=title, value_text=money, chart_id=ident)
    rows = [
        {"label": label, "amount": piece.amount, "count": piece.count, "percent": piece.percent}
        for (label, _), piece in zip(points, series.slices, strict=True)
    ]
    return {
        "id": ident,
        "title": title,
        "svg": svg,
        "rows": rows,
        "currency": currency,
        "total": series.total,
        "count": series.count,
    }


@routes.get("/groups/{id}/insight")
@signed_in
async def insight_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The Insight tab: spending by category and by month, for the group or the viewer's
    own share, over an optional date range."""
    group_id = request.match_info["id"]
    layout = await header_context(request, viewer, group_id)
    locale = locale_of(request.headers.get("Accept-Language"))
    form = typed_form(request.query, INSIGHT_INPUTS)
    mine = form.value("view") == "mine"
    view: InsightView | None = None
    try:
        dates = {name: form.value(name) for name in ("date_from", "date_to")}
        message = command(
            GetInsight,
            group_id=group_id,
            user_id=viewer.user_id,
            shares_of=viewer.user_id if mine else None,
            **filter_fields(dates),
        )
        view = await ask_filtered(request, message)
    except REFUSALS as error:
        form.refuse(error)
        say_at_fields(form)
    charts: dict[str, list[dict[str, Any]]] = {"category": [], "month": []}
    if view is not None:
        charts["category"] = [
            chart_of(series, by="category", mine=mine, locale=locale) for series in view.by_category
        ]
        charts["month"] = [
            chart_of(series, by="month", mine=mine, locale=locale) for series in view.by_month
        ]
    dates_query = {name: form.value(name) for name in ("date_from", "date_to") if form.value(name)}
    base = f"/groups/{group_id}/insight"
    context = {
        **layout,
        "tab": "insight",
        "title": f"Insight · {layout['group']['name']}",
        "form": form,
        "mine": mine,
        "charts": charts,
        "group_link": f"{base}?{urlencode(dates_query)}" if dates_query else base,
        "mine_link": f"{base}?{urlencode({'view': 'mine', **dates_query})}",
        "filtered": bool(dates_query),
    }
    return await render(request, "insight.html", context, status=form.status)
