"""The Payments routes of API.md: wallet, top-ups, provider webhooks, transfers, statement,
and the sandbox provider's checkout page."""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import aiohttp
import msgspec
from aiohttp import web

from actors.auth.messages import GetUser
from actors.payments.messages import (
    CURRENCIES,
    MAX_AMOUNT,
    NOTE_MAX,
    CreateTopUp,
    GetCheckout,
    GetStatement,
    GetTopUp,
    GetWallet,
    HandleWebhook,
    SandboxDecision,
    SandboxWebhook,
    StatementPage,
    TopUpNotFound,
    TopUpView,
    Transfer,
    TransferView,
    WalletView,
    format_money,
)
from actors.runtime.bounds import ID_MAX
from splitgo.web.actors import ask, find_user
from splitgo.web.declare import (
    Content,
    Header,
    PageQuery,
    Verbatim,
    documented,
    idempotency,
)
from splitgo.web.idempotency import required_key
from splitgo.web.keys import SERVICES
from splitgo.web.ops import page_params
from splitgo.web.problems import FieldError, ProblemError, json_response, matching, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

Amount = Annotated[int, msgspec.Meta(gt=0, le=MAX_AMOUNT)]
# the document lists the codes we keep wallets in; another one is a 422 from known_currency
Currency = Annotated[
    str,
    matching(
        r"^[A-Z]{3}$",
        "a three-letter currency code such as EUR",
        extra_json_schema={"enum": sorted(CURRENCIES)},
    ),
]
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Note = Annotated[str, msgspec.Meta(max_length=NOTE_MAX)]


class TopUpBody(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    currency: Currency


class TransferBody(msgspec.Struct, forbid_unknown_fields=True):
    to_user_id: UserId
    amount: Amount
    currency: Currency
    note: Note | None = None


class WebhookReceipt(msgspec.Struct):
    """What a provider hears back: the event was verified; `applied` once per event."""

    received: bool
    applied: bool


def field_problem(field: str, message: str, code: str = "validation_error") -> ProblemError:
    return ProblemError(422, code, f"{field}: {message}", errors=[FieldError(field, message)])


def known_currency(currency: str) -> str:
    if currency not in CURRENCIES:
        raise field_problem("$.currency", f"{currency} is not a currency we keep wallets in")
    return currency


@routes.get("/api/v1/wallet")
@documented(summary="The caller's balances", tags=["payments"], responses={200: WalletView})
async def wallet(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view: WalletView = await ask(request, "payments", GetWallet(user_id=claims.sub))
    return json_response({"balances": [to_json(b) for b in view.balances]})


@routes.post("/api/v1/wallet/top-ups")
@documented(
    summary="Start a top-up",
    description="A checkout at the payment provider (the sandbox by default): pay at "
    "`checkout_url`; the provider's signed webhook credits the wallet.",
    tags=["payments"],
    body=TopUpBody,
    headers=[idempotency(required=True)],
    responses={201: TopUpView},
    errors=[409],
)
async def create_top_up(request: web.Request, body: TopUpBody) -> web.Response:
    claims = authenticate(request)
    top_up: TopUpView = await ask(
        request,
        "payments",
        CreateTopUp(
            idempotency_key=required_key(request),
            user_id=claims.sub,
            amount=body.amount,
            currency=known_currency(body.currency),
        ),
        timeout=20,
    )
    return json_response(to_json(top_up), status=201)


@routes.get("/api/v1/wallet/top-ups/{id}")
@documented(summary="A top-up", tags=["payments"], responses={200: TopUpView})
async def get_top_up(request: web.Request) -> web.Response:
    claims = authenticate(request)
    top_up: TopUpView = await ask(
        request, "payments", GetTopUp(user_id=claims.sub, top_up_id=request.match_info["id"])
    )
    return json_response(to_json(top_up))


@routes.post("/api/v1/payments/webhooks/{provider}")
@documented(
    summary="A payment provider's signed event",
    description="Verified before anything is credited: a bad signature or a stale timestamp "
    "is 400 and credits nothing; a replayed event credits once.",
    tags=["payments"],
    auth="none",
    body=Verbatim(dict[str, Any]),
    headers=[Header("Stripe-Signature", "`t=<unix time>,v1=<hex HMAC-SHA256>`")],
    responses={200: WebhookReceipt},
)
async def webhook(request: web.Request, body: bytes) -> web.Response:
    """A provider's signed event: verified by payments before anything is credited."""
    signature = request.headers.get("Stripe-Signature", "")
    result = await ask(
        request,
        "payments",
        HandleWebhook(provider=request.match_info["provider"], body=body, signature=signature),
        key=request.match_info["provider"],
    )
    return json_response({"received": True, "applied": result.applied})


@routes.post("/api/v1/transfers")
@documented(
    summary="Send money to another user",
    description="Not enough available: 422 `insufficient_funds`.",
    tags=["payments"],
    body=TransferBody,
    headers=[idempotency(required=True)],
    responses={201: TransferView},
    errors=[409],
)
async def transfer(request: web.Request, body: TransferBody) -> web.Response:
    claims = authenticate(request)
    message = await transfer_message(
        request, body, from_user_id=claims.sub, key=required_key(request)
    )
    done: TransferView = await ask(request, "payments", message)
    return json_response(to_json(done), status=201)


async def transfer_message(
    request: web.Request, body: TransferBody, *, from_user_id: str, key: str
) -> Transfer:
    """The transfer the body asks for (the JSON route's and the wallet page's): in a
    currency we keep, to somebody else who exists."""
    known_currency(body.currency)
    if body.to_user_id == from_user_id:
        raise field_problem("$.to_user_id", "a transfer to yourself moves nothing")
    if await find_user(request.app[SERVICES].system, GetUser(user_id=body.to_user_id)) is None:
        raise field_problem("$.to_user_id", "no user has this id")
    return Transfer(
        idempotency_key=key,
        from_user_id=from_user_id,
        to_user_id=body.to_user_id,
        amount=body.amount,
        currency=body.currency,
        note=body.note,
    )


@routes.get("/api/v1/transfers")
@documented(
    summary="The caller's statement",
    description="Every entry that moved the caller's money, newest first.",
    tags=["payments"],
    query=PageQuery,
    responses={200: StatementPage},
)
async def statement(request: web.Request) -> web.Response:
    claims = authenticate(request)
    limit, cursor = page_params(request)
    page: StatementPage = await ask(
        request, "payments", GetStatement(user_id=claims.sub, limit=limit, cursor=cursor)
    )
    return json_response(
        {"items": [to_json(entry) for entry in page.items], "next_cursor": page.next_cursor}
    )


# Where the checkout's "back" link leads when the caller names no page of ours.
RETURN_TO = "/wallet"
RETURN_TO_MAX = 500
CHECKOUT_PAGE = "/sandbox/checkout/{id}"


class CheckoutQuery(msgspec.Struct):
    """`?return_to=`: where the page's link leads once the checkout is decided."""

    return_to: Annotated[
        str,
        msgspec.Meta(
            description="a path on this site to go back to (default /wallet); anything else "
            "(another host, a scheme) is ignored"
        ),
    ] = RETURN_TO


def return_path(request: web.Request) -> str:
    """The `return_to` of the request when it is a path on this site, else /wallet: the
    link never leads to another host (`//host`, `/\\host` and schemes are refused)."""
    given = request.query.get("return_to", "")
    if (
        not given.startswith("/")
        or given.startswith(("//", "/\\"))
        or len(given) > RETURN_TO_MAX
        or any(ord(char) < 0x20 or char == "\x7f" for char in given)
    ):
        return RETURN_TO
    return given


def checkout_path(checkout_id: str, return_to: str, decision: str = "") -> str:
    """The page's own path (or its decision's), carrying `return_to` when it is not the
    default."""
    path = CHECKOUT_PAGE.format(id=quote(checkout_id, safe=""))
    if decision:
        path += f"/{decision}"
    if return_to != RETURN_TO:
        path += "?" + urlencode({"return_to": return_to})
    return path


def checkout_page(
    checkout_id: str, top_up: TopUpView, return_to: str, *, refused: str | None = None
) -> str:
    """The sandbox checkout for people: Pay and Decline while the top-up is pending; once
    decided, the result, no buttons, and a link back to `return_to`. `refused` names a
    press that came after the decision (a second tab, a page from before): it is said
    that it changed nothing."""
    shown = html.escape(format_money(top_up.amount, top_up.currency))
    back = html.escape(return_to, quote=True)
    where = "Back to your wallet" if return_to == RETURN_TO else "Back to splitgo"
    if top_up.status == "pending":
        heading = f"Top up {shown}"
        pay = html.escape(checkout_path(checkout_id, return_to, "pay"), quote=True)
        decline = html.escape(checkout_path(checkout_id, return_to, "decline"), quote=True)
        body = (
            "<p>This is splitgo's sandbox: no real money moves. Pay puts "
            f"{shown} in your splitgo wallet; Decline leaves it as it is.</p>\n"
            f'<form method="post" action="{pay}"><button type="submit">Pay</button></form>\n'
            f'<form method="post" action="{decline}"><button type="submit">Decline</button>'
            "</form>\n"
            f'<p><a href="{back}">Back to splitgo without paying</a></p>'
        )
    else:
        paid = top_up.status == "succeeded"
        heading = "Paid" if paid else "Declined"
        if paid:
            result = f"{shown} is in your splitgo wallet."
        else:
            result = f"The top-up of {shown} was declined: nothing was charged."
        notice = ""
        if refused is not None:
            done = "paid" if paid else "declined"
            notice = (
                f'<p role="alert">This checkout was already {done}: pressing '
                f"{html.escape(refused)} changed nothing.</p>\n"
            )
        body = f'{notice}<p role="status">{result}</p>\n<p><a href="{back}">{where}</a></p>'
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n<link rel="icon" href="data:,">\n'
        f"<title>{heading} · splitgo sandbox checkout</title>\n</head>\n<body>\n<main>\n"
        f"<h1>{heading}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


def page_response(text: str, status: int = 200) -> web.Response:
    # never from a cache: Back after paying asks again, and shows the result
    return web.Response(
        status=status, text=text, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


async def checkout_of(request: web.Request, checkout_id: str) -> TopUpView:
    """The top-up a sandbox checkout id names; an id no checkout can have (over ID_MAX
    characters) is as unknown as any other: 404, not a refusal of its length."""
    if len(checkout_id) > ID_MAX:
        raise ProblemError(404, TopUpNotFound.code, "No checkout has this id.")
    top_up: TopUpView = await ask(request, "payments", GetCheckout(checkout_id=checkout_id))
    return top_up


@routes.get(CHECKOUT_PAGE)
@documented(
    summary="The sandbox provider's checkout page",
    description="Pay and Decline while the top-up is pending; once decided, the result "
    "(Paid or Declined) with no buttons and a link back to `return_to`.",
    tags=["payments"],
    auth="none",
    query=CheckoutQuery,
    responses={200: Content(media_type="text/html", description="the checkout, or its result")},
)
async def sandbox_page(request: web.Request) -> web.Response:
    """The sandbox provider's checkout: what is being paid, and Pay / Decline buttons."""
    checkout_id = request.match_info["id"]
    top_up = await checkout_of(request, checkout_id)
    return page_response(checkout_page(checkout_id, top_up, return_path(request)))


@routes.post(CHECKOUT_PAGE + "/{decision:pay|decline}")
@documented(
    summary="Pay or decline a sandbox checkout",
    description="The sandbox sends its signed webhook, as a real provider would, then "
    "redirects back to the checkout page. A checkout already paid or declined takes no "
    "second decision: 409 `checkout_decided` (a browser, asking for text/html, gets the "
    "page with the result and a notice that the press changed nothing).",
    tags=["payments"],
    auth="none",
    query=CheckoutQuery,
    responses={
        303: Content(description="back to the page", headers={"Location": ("the page", True)})
    },
    errors=[409, 502],
)
async def sandbox_decision(request: web.Request) -> web.Response:
    """A press: the sandbox sends its signed webhook, as a real provider would."""
    checkout_id = request.match_info["id"]
    decision = request.match_info["decision"]
    return_to = return_path(request)
    top_up = await checkout_of(request, checkout_id)
    if top_up.status != "pending":
        if "text/html" in request.headers.get("Accept", ""):
            refused = "Pay" if decision == "pay" else "Decline"
            page = checkout_page(checkout_id, top_up, return_to, refused=refused)
            return page_response(page, 409)
        done = "paid" if top_up.status == "succeeded" else "declined"
        raise ProblemError(
            409,
            "checkout_decided",
            f"this checkout was already {done}: a second decision changes nothing",
        )
    hook: SandboxWebhook = await ask(
        request,
        "payments",
        SandboxDecision(checkout_id=checkout_id, pay=decision == "pay"),
        key=checkout_id,
    )
    services = request.app[SERVICES]
    url = f"{services.public_url}/api/v1/payments/webhooks/sandbox"
    headers = {"Stripe-Signature": hook.signature, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
        http.post(url, data=hook.body, headers=headers) as response,
    ):
        if response.status >= 300:
            raise ProblemError(502, "webhook_failed", "the sandbox's webhook was refused")
    raise web.HTTPSeeOther(checkout_path(checkout_id, return_to))
