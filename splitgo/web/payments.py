"""The Payments routes of API.md: wallet, top-ups, provider webhooks, transfers, statement,
and the sandbox provider's checkout page."""

from __future__ import annotations

import html
from typing import Annotated, Any

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
    TopUpView,
    Transfer,
    TransferView,
    WalletView,
    format_money,
)
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
    known_currency(body.currency)
    if body.to_user_id == claims.sub:
        raise field_problem("$.to_user_id", "a transfer to yourself moves nothing")
    if await find_user(request.app[SERVICES].system, GetUser(user_id=body.to_user_id)) is None:
        raise field_problem("$.to_user_id", "no user has this id")
    done: TransferView = await ask(
        request,
        "payments",
        Transfer(
            idempotency_key=required_key(request),
            from_user_id=claims.sub,
            to_user_id=body.to_user_id,
            amount=body.amount,
            currency=body.currency,
            note=body.note,
        ),
    )
    return json_response(to_json(done), status=201)


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


@routes.get("/sandbox/checkout/{id}")
@documented(
    summary="The sandbox provider's checkout page",
    tags=["payments"],
    auth="none",
    responses={200: Content(media_type="text/html", description="Pay and Decline buttons")},
)
async def sandbox_page(request: web.Request) -> web.Response:
    """The sandbox provider's checkout: what is being paid, and Pay / Decline buttons."""
    checkout_id = request.match_info["id"]
    top_up: TopUpView = await ask(request, "payments", GetCheckout(checkout_id=checkout_id))
    shown = format_money(top_up.amount, top_up.currency)
    safe_id = html.escape(checkout_id, quote=True)
    state = html.escape(top_up.status)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>splitgo sandbox checkout"
        f"</title></head><body><h1>Top up {html.escape(shown)}</h1><p>Status: {state}</p>"
        f"<form method='post' action='/sandbox/checkout/{safe_id}/pay'>"
        "<button type='submit'>Pay</button></form>"
        f"<form method='post' action='/sandbox/checkout/{safe_id}/decline'>"
        "<button type='submit'>Decline</button></form></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


@routes.post("/sandbox/checkout/{id}/{decision:pay|decline}")
@documented(
    summary="Pay or decline a sandbox checkout",
    description="The sandbox sends its signed webhook, as a real provider would, then "
    "redirects back to the checkout page.",
    tags=["payments"],
    auth="none",
    responses={
        303: Content(description="back to the page", headers={"Location": ("the page", True)})
    },
    errors=[409, 502],
)
async def sandbox_decision(request: web.Request) -> web.Response:
    """A press: the sandbox sends its signed webhook, as a real provider would."""
    checkout_id = request.match_info["id"]
    pay = request.match_info["decision"] == "pay"
    hook: SandboxWebhook = await ask(
        request, "payments", SandboxDecision(checkout_id=checkout_id, pay=pay), key=checkout_id
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
    raise web.HTTPSeeOther(f"/sandbox/checkout/{checkout_id}")
