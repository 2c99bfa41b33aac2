"""Balances and settling up in a group: each member's net in words, the expenses and
settlements behind it, and the settle plan with its "why" and a form to settle by cash or
from the wallet.

The settle form builds the message the JSON route builds (splitgo/web/splits/bodies.py
`SettlementBody` and `settlement_message`, with the form's idempotency key). A cash
settlement is recorded at once and confirmed with a flash; a wallet one waits briefly for
payments, then shows "pending" on the settle page, whose status region (a fragment the
server renders, `settle_status.html`) the browser follows with static/poll.js.

Issue 17: both pages take `?convert=true` (a link, no script needed) to show the
balances and the plan converted into the group's currency at the stored rates; the
settle form's currency may be the plan's or the group's (or another the viewer has a
balance in), and a settlement in another currency than the group's is recorded through
`rates.ask_priced`, which looks the day's rate up so it carries one.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from actors.payments.messages import GetWallet, WalletView
from actors.runtime import DomainError
from actors.splits.messages import (
    BalancesView,
    GetBalances,
    GetNetBreakdown,
    GetSettlement,
    GetSettlePlan,
    NetBreakdown,
    SettlementView,
    SettlePlanView,
)
from splitgo.pages import cookies
from splitgo.pages.forms import REFUSALS, Form, as_problem, read_form
from splitgo.pages.group_page import group_context
from splitgo.pages.guards import signed_in, spend
from splitgo.pages.money import format_number, locale_of, parse_money
from splitgo.pages.render import named, redirect, render
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask
from splitgo.web.problems import FieldError, ProblemError
from splitgo.web.splits.asking import ask_splits
from splitgo.web.splits.bodies import SettlementBody, settlement_message
from splitgo.web.splits.rates import ask_priced
from splitgo.web.splits.settlements import (
    SETTLEMENT_ASK_TIMEOUT,
    failed_settlement_problem,
    settlement_outcome,
)

routes = web.RouteTableDef()

cookies.FLASHES.update(
    {
        "settled": "Settled. The balances are up to date.",
        "settled_cash": "Recorded. The balances are up to date.",
    }
)

# how long the form waits for payments before it shows the settlement as pending (shorter
# than the API's: the page follows a pending one itself)
SETTLE_WAIT_SECONDS = 2.0
# refusals that belong to the amount the person typed (payments names no field for them)
AMOUNT_CODES = frozenset({"insufficient_funds", "currency_mismatch"})


def at_amount(error: ProblemError | DomainError) -> ProblemError:
    """A refusal about the money moved, said at the amount input when it names no field."""
    problem = as_problem(error)
    if problem.code in AMOUNT_CODES and not problem.errors:
        return ProblemError(
            problem.status,
            problem.code,
            problem.detail,
            errors=[FieldError(field="$.amount", message=problem.detail)],
        )
    return problem


def wants_converted(request: web.Request) -> bool:
    """Whether the page is asked for in the group's currency (`?convert=true`)."""
    return request.query.get("convert", "").lower() in ("true", "1", "yes")


def switch_context(
    request: web.Request, group: dict[str, Any], balances: dict[str, Any], converted: bool
) -> dict[str, Any]:
    """The "Show in <group currency>" switch: whether it is offered (a balance in
    another currency, or the converted view shown), and the two views' links."""
    foreign = any(
        line["currency"] != group["currency"] and line["net"] != 0 for line in balances["balances"]
    )
    return {
        "converted": converted,
        "switch": converted or foreign,
        "converted_link": f"{request.path}?convert=true",
        "plain_link": request.path,
        "convert_query": "?convert=true" if converted else "",
    }


def member_balances(
    group: dict[str, Any], balances: dict[str, Any], viewer: Viewer
) -> list[dict[str, Any]]:
    """Every member with their nets per currency (non-zero only), the viewer first."""
    nets: dict[str, list[dict[str, Any]]] = {}
    for line in balances["balances"]:
        if line["net"] != 0:
            nets.setdefault(line["user_id"], []).append(line)
    people = [
        {
            "user_id": member["user_id"],
            "name": member.get("name") or "Someone",
            "is_you": member["user_id"] == viewer.user_id,
            "nets": sorted(nets.get(member["user_id"], []), key=lambda n: n["currency"]),
        }
        for member in group["members"]
    ]
    people.sort(key=lambda p: (not p["is_you"], p["name"].casefold()))
    return people


async def balances_of(
    request: web.Request, viewer: Viewer, group_id: str, *, converted: bool = False
) -> dict[str, Any]:
    view: BalancesView = await ask_splits(
        request, GetBalances(group_id=group_id, user_id=viewer.user_id, converted=converted)
    )
    named_view: dict[str, Any] = await named(request, view)
    return named_view


@routes.get("/groups/{id}/balances")
@signed_in
async def balances(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    converted = wants_converted(request)
    context = await group_context(request, viewer, group_id)
    found = await balances_of(request, viewer, group_id, converted=converted)
    # the switch is offered when the plain view has a balance in another currency
    plain = found if not converted else {"balances": []}
    return await render(
        request,
        "balances.html",
        {
            **context,
            "tab": "balances",
            "title": f"Balances · {context['title']}",
            "people": member_balances(context["group"], found, viewer),
            **switch_context(request, context["group"], plain, converted),
        },
    )


@routes.get("/groups/{id}/live/balances")
@signed_in
async def balances_region(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The balances list alone (the live region of the Balances tab)."""
    group_id = request.match_info["id"]
    converted = wants_converted(request)
    context = await group_context(request, viewer, group_id)
    found = await balances_of(request, viewer, group_id, converted=converted)
    people = member_balances(context["group"], found, viewer)
    return await render(
        request, "balances_list.html", {**context, "people": people, "converted": converted}
    )


@routes.get("/groups/{id}/balances/{user_id}")
@signed_in
async def breakdown(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    member = request.match_info["user_id"]
    context = await group_context(request, viewer, group_id)
    view: NetBreakdown = await ask_splits(
        request,
        GetNetBreakdown(group_id=group_id, user_id=viewer.user_id, member_user_id=member),
    )
    data = await named(request, view)
    lines = list(reversed(data["lines"]))  # newest first, as people read a history
    return await render(
        request,
        "balances_breakdown.html",
        {
            **context,
            "tab": "balances",
            "title": f"{data.get('name') or 'Someone'} · {context['title']}",
            "breakdown": data,
            "lines": lines,
            "is_you": member == viewer.user_id,
        },
    )


async def available_of(request: web.Request, viewer: Viewer) -> dict[str, int]:
    """The viewer's available wallet money per currency."""
    wallet: WalletView = await ask(request, "payments", GetWallet(user_id=viewer.user_id))
    return {line.currency: line.available for line in wallet.balances}


async def settlement_of(
    request: web.Request, viewer: Viewer, group_id: str, settlement_id: str
) -> dict[str, Any]:
    view: SettlementView = await ask_splits(
        request,
        GetSettlement(group_id=group_id, user_id=viewer.user_id, settlement_id=settlement_id),
    )
    data: dict[str, Any] = await named(request, view)
    return data


async def plan_of(
    request: web.Request, viewer: Viewer, group_id: str, *, converted: bool = False
) -> list[dict[str, Any]]:
    """The group's settle plan (in the group's currency when `converted`), its
    transfers with names."""
    view: SettlePlanView = await ask_splits(
        request, GetSettlePlan(group_id=group_id, user_id=viewer.user_id, converted=converted)
    )
    transfers: list[dict[str, Any]] = (await named(request, view))["transfers"]
    return transfers


def chosen_transfer(
    mine: list[dict[str, Any]], to: str | None, currency: str | None
) -> dict[str, Any] | None:
    """Which of the viewer's own transfers the form is for: the one asked for, else the first."""
    for transfer in mine:
        if transfer["to_user_id"] == to and (currency is None or transfer["currency"] == currency):
            return transfer
    return mine[0] if mine else None


async def settle_page(
    request: web.Request,
    viewer: Viewer,
    group_id: str,
    *,
    form: Form | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """The settle page: the plan with its why, the viewer's form, a settlement's status."""
    converted = wants_converted(request) or (form is not None and bool(form.value("convert")))
    context = await group_context(request, viewer, group_id)
    plan = await plan_of(request, viewer, group_id, converted=converted)
    mine = [t for t in plan if t["from_user_id"] == viewer.user_id]
    available = await available_of(request, viewer)
    if form is not None:
        planned = form.value("plan_currency") or form.value("currency")
        chosen = chosen_transfer(mine, form.value("to_user_id"), planned)
    else:
        chosen = chosen_transfer(mine, request.query.get("to"), request.query.get("currency"))
    if form is None and chosen is not None:
        locale = locale_of(request.headers.get("Accept-Language"))
        enough = available.get(chosen["currency"], 0) >= chosen["amount"]
        form = Form.blank(
            to_user_id=chosen["to_user_id"],
            currency=chosen["currency"],
            plan_currency=chosen["currency"],
            amount=format_number(chosen["amount"], chosen["currency"], locale),
            method="wallet" if enough else "cash",
        )
    settlement = None
    wanted = request.query.get("settlement")
    if wanted and request.method == "GET":
        settlement = await settlement_of(request, viewer, group_id, wanted)
    return await render(
        request,
        "settle.html",
        {
            **context,
            "tab": "settle",
            "title": f"Settle up · {context['title']}",
            "plan": plan,
            "mine": mine,
            "chosen": chosen,
            "form": form,
            "available": available,
            "settlement": settlement,
            "pay_currencies": pay_currencies(context, chosen),
            **switch_context(request, context["group"], plan_lines(plan, converted), converted),
        },
        status=status,
        headers=headers,
    )


def pay_currencies(context: dict[str, Any], chosen: dict[str, Any] | None) -> list[str]:
    """The currencies the settle form offers: the plan's, the group's, and those the
    viewer has a balance in (a foreign one is converted at the day's rate)."""
    if chosen is None:
        return []
    found = {chosen["currency"], context["group"]["currency"]}
    found.update(line["currency"] for line in context["my_net"])
    return [chosen["currency"], *sorted(found - {chosen["currency"]})]


def plan_lines(plan: list[dict[str, Any]], converted: bool) -> dict[str, Any]:
    """The plain plan's transfers as balance lines, as far as the switch needs them (a
    transfer in another currency than the group's offers "Show in <currency>")."""
    if converted:
        return {"balances": []}
    return {"balances": [{"currency": t["currency"], "net": t["amount"]} for t in plan]}


@routes.get("/groups/{id}/settle")
@signed_in
async def settle(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await settle_page(request, viewer, request.match_info["id"])


@routes.get("/groups/{id}/live/settle-plan")
@signed_in
async def plan_region(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The settle plan alone (the settle page's live region)."""
    group_id = request.match_info["id"]
    converted = wants_converted(request)
    context = await group_context(request, viewer, group_id)
    plan = await plan_of(request, viewer, group_id, converted=converted)
    page = {**context, "plan": plan, "chosen": None, "converted": converted}
    page["convert_query"] = "?convert=true" if converted else ""
    return await render(request, "settle_plan.html", page)


@routes.post("/groups/{id}/settle")
@signed_in
async def settle_up(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    form = await read_form(request)
    locale = locale_of(request.headers.get("Accept-Language"))
    # no currency chosen (the select left out): the plan's
    currency = (form.value("currency") or form.value("plan_currency")).strip().upper()
    form.values["currency"] = [currency]
    try:
        spend(request, "settlements")
        body = form.parse(
            SettlementBody, converters={"amount": lambda text: parse_money(text, currency, locale)}
        )
        message = settlement_message(
            body, group_id=group_id, user_id=viewer.user_id, settlement_id=str(uuid.uuid4())
        )
        message = msgspec.structs.replace(
            message, idempotency=form.idempotency(request, body, caller=viewer.user_id)
        )
        # in another currency than the group's, the day's rate is looked up first
        recorded: SettlementView = await ask_priced(
            request, message, timeout=SETTLEMENT_ASK_TIMEOUT
        )
        view = await settlement_outcome(request, recorded, viewer.user_id, wait=SETTLE_WAIT_SECONDS)
        if view.status == "failed":
            raise failed_settlement_problem(view)
    except REFUSALS as error:
        # a rate the day has none of is said at the currency chosen (no rate input here)
        inputs = {"$.to_user_id": None, "$.rate": "currency", "$.group_amount": "currency"}
        form.refuse(at_amount(error), inputs=inputs)
        return await settle_page(
            request, viewer, group_id, form=form, status=form.status, headers=form.headers
        )
    converted = bool(form.value("convert"))
    if view.status == "pending":
        also = "&convert=true" if converted else ""
        return redirect(f"/groups/{group_id}/settle?settlement={view.id}{also}")
    cookies.flash(request, "settled" if view.method == "wallet" else "settled_cash")
    return redirect(f"/groups/{group_id}/settle{'?convert=true' if converted else ''}")


@routes.get("/groups/{id}/settlements/{sid}/status")
@signed_in
async def settlement_status(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """A settlement's status alone (what static/poll.js follows while it is pending)."""
    group_id = request.match_info["id"]
    settlement = await settlement_of(request, viewer, group_id, request.match_info["sid"])
    return await render(
        request,
        "settle_status.html",
        {"settlement": settlement, "group_id": group_id},
    )
