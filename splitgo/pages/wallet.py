"""The wallet: what is available and held per currency (the answer first), the statement
in words, topping up through the provider's checkout and back, and sending money to a
person one shares a group with.

The forms build the messages the JSON routes build (splitgo/web/payments.py: `TopUpBody`
and `TransferBody`, the same checks, the form's idempotency key as the route's header).
A top-up sends the browser to the provider's checkout; the sandbox's page links back to
`/wallet?top_up=<id>` (its `return_to`), which shows the top-up's result — while it is
pending, a fragment (`wallet_top_up.html`) that static/poll.js follows until it settles.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from actors.payments.messages import (
    CURRENCIES,
    CreateTopUp,
    GetStatement,
    GetTopUp,
    GetWallet,
    StatementPage,
    TopUpView,
    TransferView,
    WalletView,
)
from actors.runtime import DomainError
from actors.splits.messages import GroupList, ListGroups
from splitgo.pages import cookies
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import signed_in, spend
from splitgo.pages.money import locale_of, parse_money
from splitgo.pages.render import named, redirect, render
from splitgo.pages.sessions import Viewer
from splitgo.pages.settle import at_amount
from splitgo.web.actors import ask
from splitgo.web.keys import SERVICES
from splitgo.web.payments import (
    RETURN_TO_MAX,
    TopUpBody,
    TransferBody,
    known_currency,
    transfer_message,
)
from splitgo.web.problems import ProblemError
from splitgo.web.splits.asking import ask_splits

routes = web.RouteTableDef()

cookies.FLASHES.update({"money_sent": "Sent. It is in their wallet now."})

STATEMENT_PAGE = 20
TOP_UP_ASK_TIMEOUT = 20.0  # as the JSON route: the provider is asked for a checkout
DEFAULT_CURRENCY = "EUR"
DAMAGED = "This form is damaged. Reload the page and try again."


def form_key(form: Form) -> str:
    """The form's idempotency key, as the JSON route's required header (payments keeps it)."""
    if not form.key:
        raise ProblemError(400, "idempotency_key_required", DAMAGED)
    return form.key


async def people_of(request: web.Request, viewer: Viewer) -> list[dict[str, str]]:
    """The people the viewer shares a group with (placeholders aside), by name."""
    groups: GroupList = await ask_splits(request, ListGroups(user_id=viewer.user_id))
    data = await named(request, groups)
    found: dict[str, str] = {}
    for group in data["groups"]:
        for member in group["members"]:
            if member["user_id"] != viewer.user_id and not member.get("placeholder"):
                found[member["user_id"]] = member.get("name") or "Someone"
    people = [{"user_id": user_id, "name": name} for user_id, name in found.items()]
    return sorted(people, key=lambda person: person["name"].casefold())


async def group_names(request: web.Request, viewer: Viewer) -> dict[str, str]:
    """The names of the viewer's groups, archived ones too, by id."""
    names: dict[str, str] = {}
    for archived in (False, True):
        groups: GroupList = await ask_splits(
            request, ListGroups(user_id=viewer.user_id, archived=archived)
        )
        names.update({group.id: group.name for group in groups.groups})
    return names


async def top_up_of(request: web.Request, viewer: Viewer, top_up_id: str) -> TopUpView | None:
    """The viewer's top-up, or None when they have none by that id."""
    try:
        view: TopUpView = await ask(
            request, "payments", GetTopUp(user_id=viewer.user_id, top_up_id=top_up_id)
        )
    except DomainError as error:
        if error.category in ("not_found", "invalid"):
            return None
        raise
    return view


def currencies_of(wallet: WalletView) -> list[str]:
    """The currencies to offer: the wallet's own first, then the others we keep."""
    own = [line.currency for line in wallet.balances]
    return own + sorted(code for code in CURRENCIES if code not in own)


async def statement_of(request: web.Request, viewer: Viewer, cursor: str | None) -> dict[str, Any]:
    """A page of the viewer's statement (after `cursor`), named, each entry in words."""
    page: StatementPage = await ask(
        request,
        "payments",
        GetStatement(user_id=viewer.user_id, limit=STATEMENT_PAGE, cursor=cursor),
    )
    statement: dict[str, Any] = await named(request, page)
    for entry in statement["items"]:
        entry["words"] = statement_words(entry)
    return statement


async def wallet_page(
    request: web.Request,
    viewer: Viewer,
    *,
    top_up_form: Form | None = None,
    send_form: Form | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """The wallet page, with the forms as typed (and refused) when they are given."""
    wallet: WalletView = await ask(request, "payments", GetWallet(user_id=viewer.user_id))
    cursor = request.query.get("cursor") if request.method == "GET" else None
    statement = await statement_of(request, viewer, cursor or None)
    top_up = None
    wanted = request.query.get("top_up") if request.method == "GET" else None
    if wanted:
        found = await top_up_of(request, viewer, wanted)
        top_up = None if found is None else await named(request, found)
    currencies = currencies_of(wallet)
    people = await people_of(request, viewer)
    first = currencies[0] if wallet.balances else DEFAULT_CURRENCY
    return await render(
        request,
        "wallet.html",
        {
            "title": "Wallet",
            "section": "wallet",
            "balances": await named(request, wallet.balances),
            "statement": statement,
            "cursor": cursor,
            "groups": await group_names(request, viewer),
            "people": people,
            "person_options": [(person["user_id"], person["name"]) for person in people],
            "currency_options": [(code, code) for code in currencies],
            "top_up": top_up,
            "top_up_form": top_up_form or Form.blank(currency=first),
            "send_form": send_form or Form.blank(currency=first),
        },
        status=status,
        headers=headers,
    )


@routes.get("/wallet")
@signed_in
async def wallet(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await wallet_page(request, viewer)


@routes.get("/wallet/live/balances")
@signed_in
async def live_balances(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The live region "wallet-balances": what is available and held."""
    wallet: WalletView = await ask(request, "payments", GetWallet(user_id=viewer.user_id))
    context = {"balances": await named(request, wallet.balances)}
    return await render(request, "wallet_balances.html", context)


@routes.get("/wallet/live/statement")
@signed_in
async def live_statement(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The live region "wallet-statement": the statement's newest page."""
    context = {
        "statement": await statement_of(request, viewer, None),
        "cursor": None,
        "groups": await group_names(request, viewer),
    }
    return await render(request, "wallet_statement.html", context)


def checkout_target(request: web.Request, top_up: TopUpView) -> str:
    """Where the browser pays: our own sandbox's checkout as a path on this site, told to
    come back to this top-up's result; another provider's checkout as it is."""
    url = top_up.checkout_url or f"/wallet?top_up={top_up.id}"
    public_url = request.app[SERVICES].public_url.rstrip("/")
    if url.startswith(public_url + "/sandbox/"):
        url = url.removeprefix(public_url)
    if url.startswith("/sandbox/"):
        back = f"/wallet?{urlencode({'top_up': top_up.id})}"
        if len(back) <= RETURN_TO_MAX:
            joiner = "&" if "?" in url else "?"
            url += joiner + urlencode({"return_to": back})
    return url


@routes.post("/wallet/top-ups")
@signed_in
async def top_up(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    locale = locale_of(request.headers.get("Accept-Language"))
    currency = form.value("currency").strip().upper()
    try:
        spend(request, "top_ups")
        body = form.parse(
            TopUpBody, converters={"amount": lambda text: parse_money(text, currency, locale)}
        )
        created: TopUpView = await ask(
            request,
            "payments",
            CreateTopUp(
                idempotency_key=form_key(form),
                user_id=viewer.user_id,
                amount=body.amount,
                currency=known_currency(body.currency),
            ),
            timeout=TOP_UP_ASK_TIMEOUT,
        )
    except REFUSALS as error:
        form.refuse(error)
        return await wallet_page(
            request, viewer, top_up_form=form, status=form.status, headers=form.headers
        )
    return redirect(checkout_target(request, created))


@routes.get("/wallet/top-ups/{id}/status")
@signed_in
async def top_up_status(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """A top-up's result alone (what static/poll.js follows while it is pending)."""
    found = await top_up_of(request, viewer, request.match_info["id"])
    if found is None:
        raise web.HTTPNotFound()
    return await render(request, "wallet_top_up.html", {"top_up": await named(request, found)})


@routes.post("/wallet/send")
@signed_in
async def send(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    locale = locale_of(request.headers.get("Accept-Language"))
    currency = form.value("currency").strip().upper()
    try:
        body = form.parse(
            TransferBody, converters={"amount": lambda text: parse_money(text, currency, locale)}
        )
        message = await transfer_message(
            request, body, from_user_id=viewer.user_id, key=form_key(form)
        )
        done: TransferView = await ask(request, "payments", message)
    except REFUSALS as error:
        form.refuse(at_amount(error))
        return await wallet_page(
            request, viewer, send_form=form, status=form.status, headers=form.headers
        )
    cookies.flash(request, "money_sent")
    return redirect(f"/wallet#transfer-{done.id}")


def statement_words(entry: dict[str, Any]) -> str:
    """What a statement line was, in words, with the other person's name."""
    other = entry.get("counterparty_name") or "someone"
    incoming = entry["amount"] > 0
    kind = entry["kind"]
    if kind == "top_up":
        return "Wallet top-up"
    if kind == "settlement":
        return f"Settle-up from {other}" if incoming else f"Settle-up paid to {other}"
    if kind == "hold":
        return "Ride: held for the fare"
    if kind == "hold_release":
        return "Ride: hold released"
    if kind in ("capture", "fare"):
        return f"Ride fare from {other}" if incoming else "Ride fare"
    if kind == "fee":
        return "Fee"
    return f"Received from {other}" if incoming else f"Sent to {other}"
