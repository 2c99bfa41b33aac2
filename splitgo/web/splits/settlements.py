"""The Splits routes for settling up: balances, the settle-up plan (per currency, or
converted into the group's currency with `?convert=true`), and settlements in cash or
through the wallet (waited on briefly, replayed by Idempotency-Key), in the group's
currency or another one (its rate given or looked up: `rates.ask_priced`).

Balances are answered from the edge's reply cache when they can be (issue 20): the named,
encoded reply is kept by the node's name book (`NameBook.replies`, splitgo/web/
reply_cache.py) with the version of the Splits shard's copy it shows. Every request still
asks the shard, naming the version held: the shard checks the caller is a member and
answers `BalancesUnchanged` (no lines) while it is still the version, and the kept bytes
go, unless the names changed since (the book's epoch) or grew old (its ttl). Every balances
reply has a strong `ETag`; `If-None-Match` with it is answered 304."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import msgspec
from aiohttp import web

from actors.splits.messages import (
    BalancesUnchanged,
    BalancesView,
    GetBalances,
    GetNetBreakdown,
    GetSettlement,
    GetSettlePlan,
    NetBreakdown,
    ReminderView,
    RemindMember,
    SettlementView,
    SettlePlanView,
)
from splitgo.web.declare import Content, Header, documented, idempotency
from splitgo.web.idempotency import key_for, with_key
from splitgo.web.names import NAMES, NameBook, name_people_since
from splitgo.web.problems import FieldError, ProblemError, encode_json, json_response, to_json
from splitgo.web.reply_cache import KeptReply, etag_of, not_modified
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id
from splitgo.web.splits.bodies import SettlementBody, settlement_message
from splitgo.web.splits.rates import ask_priced

routes = web.RouteTableDef()

SETTLE_WAIT_SECONDS = 10.0
SETTLE_POLL_SECONDS = 0.05
SETTLEMENT_ASK_TIMEOUT = 20.0


def failed_settlement_problem(view: SettlementView) -> ProblemError:
    return ProblemError(
        422,
        view.failure_code or "settlement_failed",
        view.failure_message or "the wallet transfer did not go through",
    )


def settlement_path(view: SettlementView) -> str:
    return f"/api/v1/groups/{view.group_id}/settlements/{view.id}"


async def settlement_outcome(
    request: web.Request, view: SettlementView, user_id: str, *, wait: float = SETTLE_WAIT_SECONDS
) -> SettlementView:
    """Wait (at most `wait` seconds) for a pending wallet settlement to complete or fail;
    the settlement as it is then (still pending when payments has not answered)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while view.status == "pending" and loop.time() < deadline:
        await asyncio.sleep(SETTLE_POLL_SECONDS)
        view = await ask_splits(
            request,
            GetSettlement(group_id=view.group_id, user_id=user_id, settlement_id=view.id),
        )
    return view


class ConvertQuery(msgspec.Struct):
    """`?convert=true`: in the group's currency at the stored rates."""

    convert: Annotated[
        bool,
        msgspec.Meta(
            description="true: converted into the group's currency at the expenses' and "
            "settlements' stored rates (what has none stays apart in its own currency)"
        ),
    ] = False


def convert_param(request: web.Request) -> bool:
    """`?convert=` as a boolean (true/false, 1/0), or a 422 naming the parameter."""
    raw = request.query.get("convert", "false").strip().lower()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0", ""):
        return False
    raise ProblemError(
        422,
        "validation_error",
        "convert must be true or false",
        errors=[FieldError(field="convert", message="true or false")],
    )


BALANCES_CACHE_CONTROL = "private, no-cache"  # the caller's own; asked again each time


@routes.get("/api/v1/groups/{id}/balances")
@documented(
    summary="Who owes what",
    description="`net` > 0 is owed to them; the nets of each currency sum to zero. With "
    "`?convert=true`, in the group's currency at the stored rates (what has no rate, an "
    "expense in another currency from before rates were kept, stays apart in its own). "
    "`version` changes whenever the group's balances or members change. `If-None-Match` "
    "with the reply's ETag: 304 while it is still the reply.",
    tags=["splits"],
    query=ConvertQuery,
    headers=[Header("If-None-Match", "the ETag of the reply the caller holds")],
    responses={
        200: Content(
            BalancesView,
            headers={
                "ETag": ("names these very bytes", True),
                "Cache-Control": ("private, no-cache: ask again, with If-None-Match", True),
            },
        ),
        304: Content(description="Not Modified: the reply held is still it"),
    },
    errors=[422],
)
async def balances(request: web.Request) -> web.Response:
    claims = authenticate(request)
    converted = convert_param(request)
    book = request.app.get(NAMES)
    if book is None:  # an edge that names nobody keeps nothing either
        message = GetBalances(group_id=group_id(request), user_id=claims.sub, converted=converted)
        view = await ask_splits(request, message)
        return balances_reply(request, encode_json(to_json(view)))
    return await kept_balances(request, group_id(request), claims.sub, converted, book)


async def kept_balances(
    request: web.Request, group: str, user_id: str, converted: bool, book: NameBook
) -> web.Response:
    """The reply kept for this group when the shard says it is still its version (the
    member check done there, every time), else made, named and kept (see the module)."""
    key = (group, converted)
    held = book.replies.held_version(key, book.epoch)
    message = GetBalances(group_id=group, user_id=user_id, converted=converted, known_version=held)
    view: BalancesView = await ask_splits(request, message)
    if isinstance(view, BalancesUnchanged):
        kept = book.replies.get(key, view.version or "", book.epoch)
        if kept is not None:
            return balances_reply(request, kept.body, kept.etag)
        # retired meanwhile (a rename, or room for another): the whole view
        message = msgspec.structs.replace(message, known_version=None)
        view = await ask_splits(request, message)
    epoch = book.epoch  # before naming: a rename heard meanwhile retires what is made here
    data = to_json(view)
    since = await name_people_since(data, book)
    body = encode_json(data)
    etag = etag_of(body)
    if view.version is not None and since is not None and epoch == book.epoch:
        book.replies.put(
            key,
            KeptReply(
                version=view.version,
                names_epoch=epoch,
                expires=since + book.ttl,
                body=body,
                etag=etag,
            ),
        )
    return balances_reply(request, body, etag)


def balances_reply(request: web.Request, body: bytes, etag: str | None = None) -> web.Response:
    """The reply with its ETag, or 304 when the caller holds these very bytes."""
    etag = etag or etag_of(body)
    headers = {"ETag": etag, "Cache-Control": BALANCES_CACHE_CONTROL}
    if not_modified(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


@routes.get("/api/v1/groups/{id}/balances/{user_id}")
@documented(
    summary="Why a member's balance is what it is",
    description="Every expense and completed settlement behind the member's net, oldest "
    "first; each line's `effect` (paid minus owed) adds up to `nets` per currency.",
    tags=["splits"],
    responses={200: NetBreakdown},
    errors=[422],
)
async def net_breakdown(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view = await ask_splits(
        request,
        GetNetBreakdown(
            group_id=group_id(request),
            user_id=claims.sub,
            member_user_id=request.match_info["user_id"],
        ),
    )
    return json_response(to_json(view))


class ReminderBody(msgspec.Struct, forbid_unknown_fields=True):
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


@routes.post("/api/v1/groups/{id}/reminders")
@documented(
    summary="Remind a member what they owe",
    description="They hear it on their own channels. At most once a day from you to them "
    "in a group (409 `already_reminded`); someone who owes nothing there: 422 "
    "`nothing_owed`.",
    tags=["splits"],
    body=ReminderBody,
    headers=[idempotency(required=False)],
    responses={201: ReminderView},
    errors=[409],
)
async def remind(request: web.Request, body: ReminderBody) -> web.Response:
    claims = authenticate(request)
    message = RemindMember(
        group_id=group_id(request),
        user_id=claims.sub,
        member_user_id=body.user_id,
        idempotency=key_for(request, body, caller=claims.sub),
    )
    view = await ask_splits(request, message)
    return json_response(to_json(view), status=201)


@routes.get("/api/v1/groups/{id}/settle-plan")
@documented(
    summary="The fewest transfers that settle the group",
    description="Per currency; with `?convert=true`, in the group's currency at the stored rates.",
    tags=["splits"],
    query=ConvertQuery,
    responses={200: SettlePlanView},
    errors=[422],
)
async def settle_plan(request: web.Request) -> web.Response:
    claims = authenticate(request)
    converted = convert_param(request)
    plan = await ask_splits(
        request,
        GetSettlePlan(group_id=group_id(request), user_id=claims.sub, converted=converted),
    )
    return json_response(to_json(plan))


@routes.post("/api/v1/groups/{id}/settlements")
@documented(
    summary="Record a settlement",
    description="`cash` is recorded at once; `wallet` moves the money through payments "
    "first: 201 once it went through, 202 with Location while it is still pending, 422 "
    "(`insufficient_funds`, ...) when it failed. An `Idempotency-Key` is required; its retry "
    "answers the first outcome, or 409 `idempotency_in_flight` while the money still moves. "
    "In another currency than the group's: `rate` or `group_amount`, or neither (the day's "
    "rate is looked up); it settles the per-currency balance by its amount and the converted "
    "one by its amount in the group's currency.",
    tags=["splits"],
    body=SettlementBody,
    headers=[idempotency(required=True)],
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
    message = settlement_message(
        body, group_id=group_id(request), user_id=claims.sub, settlement_id=str(uuid.uuid4())
    )
    message = with_key(message, request, body, caller=claims.sub)
    recorded: SettlementView = await ask_priced(request, message, timeout=SETTLEMENT_ASK_TIMEOUT)
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
