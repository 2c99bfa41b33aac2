"""The Web Push routes: the node's VAPID public key, and the caller's push subscriptions
(one per browser, what `PushManager.subscribe` gave it), kept by the notifications actor,
which sends every notification the user left Web Push on for to each of them."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from actors.notifications.messages import (
    AddPushSubscription,
    GetPushKey,
    ListPushSubscriptions,
    PushKey,
    PushSubscriptionList,
    PushSubscriptionView,
    RemovePushSubscription,
)
from splitgo.web.actors import ask
from splitgo.web.declare import documented, page
from splitgo.web.problems import json_response, matching, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

LABEL_MAX = 100
Key = Annotated[
    str,
    matching(
        r"^[A-Za-z0-9_\-+/]+=*$",
        "a key in base64url, as the browser gives it",
        min_length=1,
        max_length=200,
        description="base64url",
    ),
]


class PushKeys(msgspec.Struct, forbid_unknown_fields=False):
    """The keys of a subscription, as `PushSubscription.toJSON()` gives them."""

    p256dh: Annotated[Key, msgspec.Meta(description="the browser's P-256 public key")]
    auth: Annotated[Key, msgspec.Meta(description="its 16-octet auth secret")]


class PushSubscriptionBody(msgspec.Struct, forbid_unknown_fields=False):
    """A browser's push subscription (`PushSubscription.toJSON()`), and a name for it."""

    endpoint: Annotated[
        str,
        msgspec.Meta(min_length=1, max_length=1000, description="the push service's URL"),
    ]
    keys: PushKeys
    label: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=LABEL_MAX,
                description="which device, in words; unset: from the User-Agent",
            ),
        ]
        | None
    ) = None


def subscription_message(
    user_id: str, body: PushSubscriptionBody, user_agent: str | None
) -> AddPushSubscription:
    """The message both the JSON route and the page's button send."""
    label = body.label if body.label is not None else " ".join((user_agent or "").split())
    return AddPushSubscription(
        user_id=user_id,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        label=label[:LABEL_MAX],
    )


@routes.get("/api/v1/push/vapid-public-key")
@documented(
    summary="The key browsers subscribe to Web Push with",
    description="The node's VAPID public key (RFC 8292), base64url: pass it to "
    "`PushManager.subscribe` as `applicationServerKey`. 409 `webpush_not_configured` when "
    "this node sends no Web Push.",
    tags=["notifications"],
    auth="none",
    responses={200: PushKey},
    errors=[409],
)
async def vapid_public_key(request: web.Request) -> web.Response:
    key: PushKey = await ask(request, "notifications", GetPushKey())
    response = json_response(to_json(key))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@routes.post("/api/v1/me/push-subscriptions")
@documented(
    summary="Get notifications in this browser by Web Push",
    description="201 with the subscription. The same endpoint again takes the new keys "
    "(and moves to the caller, if another user had it). An endpoint that is no push "
    "service's https URL, or keys that are not a P-256 key and a 16-octet secret: 422 "
    "`invalid_push_subscription`.",
    tags=["notifications"],
    body=PushSubscriptionBody,
    responses={201: PushSubscriptionView},
    errors=[409],
)
async def add_subscription(request: web.Request, body: PushSubscriptionBody) -> web.Response:
    claims = authenticate(request)
    message = subscription_message(claims.sub, body, request.headers.get("User-Agent"))
    view: PushSubscriptionView = await ask(request, "notifications", message)
    return json_response(to_json(view), status=201)


@routes.get("/api/v1/me/push-subscriptions")
@documented(
    summary="The browsers that get the caller's notifications by Web Push",
    tags=["notifications"],
    responses={200: page(PushSubscriptionView)},
)
async def list_subscriptions(request: web.Request) -> web.Response:
    claims = authenticate(request)
    found: PushSubscriptionList = await ask(
        request, "notifications", ListPushSubscriptions(user_id=claims.sub)
    )
    return json_response({"items": to_json(found.items), "next_cursor": None})


@routes.delete("/api/v1/me/push-subscriptions/{id}")
@documented(
    summary="Stop Web Push to a browser",
    description="204; someone else's or an unknown subscription: 404.",
    tags=["notifications"],
    responses={204: None},
)
async def remove_subscription(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask(
        request,
        "notifications",
        RemovePushSubscription(user_id=claims.sub, subscription_id=request.match_info["id"]),
    )
    return web.Response(status=204)
