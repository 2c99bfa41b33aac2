"""The Notifications routes of API.md: the in-app feed, preferences, the live WebSocket,
and the admin's view of delivery records."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import WSMsgType, web

from actors.auth.messages import AccessClaims, InvalidToken
from actors.notifications.messages import (
    DeliveryList,
    GetPreferences,
    ListDeliveries,
    ListNotifications,
    MarkAllRead,
    MarkRead,
    NotificationPage,
    Preferences,
    SetPreferences,
)
from splitgo.web.actors import ask
from splitgo.web.declare import Content, PageQuery, Raw, documented
from splitgo.web.keys import LIVE, SERVICES
from splitgo.web.ops import page_params, require_ops
from splitgo.web.problems import FieldError, ProblemError, json_response, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

HEARTBEAT_SECONDS = 25.0


class FeedQuery(PageQuery):
    unread: Annotated[
        Literal["true", "false", "1", "0"], msgspec.Meta(description="only unread ones")
    ] = "false"


class SocketQuery(msgspec.Struct):
    access_token: Annotated[
        str, msgspec.Meta(description="the access token (browsers cannot set headers here)")
    ] = ""


class DeliveryQuery(PageQuery):
    status: Literal["pending", "sent", "failed"] | None = None
    user_id: str = ""


SWITCHES = {"type": "object", "additionalProperties": {"type": "boolean"}}
# any JSON object, checked by `preference_changes` (its errors name `$.<category>.<channel>`)
PreferenceChanges = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="`{<category>: {<channel>: true|false}}`; channels are email, telegram, "
        "inapp, sms and webpush. Switches not named stay as they are.",
        extra_json_schema={"additionalProperties": SWITCHES},
    ),
]
PREFERENCES = Raw(
    {
        "type": "object",
        "description": "`{<category>: {<channel>: true|false}}`, and `always_sent`: what "
        "cannot be switched off.",
        "properties": {"always_sent": {"type": "array", "items": {"type": "string"}}},
        "required": ["always_sent"],
        "additionalProperties": SWITCHES,
    }
)


@routes.get("/api/v1/notifications")
@documented(
    summary="The in-app feed",
    tags=["notifications"],
    query=FeedQuery,
    responses={200: NotificationPage},
)
async def feed(request: web.Request) -> web.Response:
    claims = authenticate(request)
    limit, cursor = page_params(request)
    unread = request.query.get("unread", "false").lower()
    if unread not in ("true", "false", "1", "0"):
        raise ProblemError(
            422,
            "validation_error",
            "unread: true or false",
            errors=[FieldError("unread", "true or false")],
        )
    page: NotificationPage = await ask(
        request,
        "notifications",
        ListNotifications(
            user_id=claims.sub, unread_only=unread in ("true", "1"), limit=limit, cursor=cursor
        ),
    )
    return json_response(to_json(page))


@routes.post("/api/v1/notifications/read-all")
@documented(summary="Mark every notification read", tags=["notifications"], responses={204: None})
async def read_all(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask(request, "notifications", MarkAllRead(user_id=claims.sub))
    return web.Response(status=204)


@routes.post("/api/v1/notifications/{id}/read")
@documented(summary="Mark a notification read", tags=["notifications"], responses={204: None})
async def read_one(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask(
        request,
        "notifications",
        MarkRead(user_id=claims.sub, notification_id=request.match_info["id"]),
    )
    return web.Response(status=204)


@routes.get("/api/v1/notifications/preferences")
@documented(
    summary="Which channels each category goes out by",
    tags=["notifications"],
    responses={200: PREFERENCES},
)
async def get_preferences(request: web.Request) -> web.Response:
    claims = authenticate(request)
    chosen: Preferences = await ask(request, "notifications", GetPreferences(user_id=claims.sub))
    return json_response(_preferences_json(chosen))


@routes.put("/api/v1/notifications/preferences")
@documented(
    summary="Switch channels on or off",
    tags=["notifications"],
    body=PreferenceChanges,
    responses={200: PREFERENCES},
)
async def put_preferences(request: web.Request, body: dict[str, Any]) -> web.Response:
    claims = authenticate(request)
    changes = preference_changes(body)
    chosen: Preferences = await ask(
        request, "notifications", SetPreferences(user_id=claims.sub, changes=changes)
    )
    return json_response(_preferences_json(chosen))


def preference_changes(body: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """`{category: {channel: bool}}`, or a 422 naming the first value that is not."""
    changes: dict[str, dict[str, bool]] = {}
    for category, channels in body.items():
        if not isinstance(channels, dict):
            raise _not_switches(f"$.{category}", "an object of channel: true|false")
        for channel, enabled in channels.items():
            if not isinstance(enabled, bool):
                raise _not_switches(f"$.{category}.{channel}", "true or false")
        changes[category] = dict(channels)
    return changes


def _not_switches(field: str, expected: str) -> ProblemError:
    return ProblemError(
        422,
        "validation_error",
        f"{field}: expected {expected}",
        errors=[FieldError(field, f"expected {expected}")],
    )


def _preferences_json(chosen: Preferences) -> dict[str, Any]:
    return {**chosen.categories, "always_sent": chosen.locked}


@routes.get("/api/v1/ws")
@documented(
    summary="Live updates (WebSocket)",
    description="Upgrade to a WebSocket: every new notification, ride update and chat "
    "event for the caller arrives as a JSON frame, the first one `{type: hello, user_id}`. "
    "Chat frames: `chat_message`, `chat_message_edited`, `chat_message_deleted`, `chat_read` "
    "and `chat_typing`. The token comes as `?access_token=` or in the Authorization header. "
    "Without an upgrade: 400.",
    tags=["notifications"],
    query=SocketQuery,
    actor=False,
    responses={101: Content(description="Switching Protocols")},
    errors=[400],
)
async def live(request: web.Request) -> web.WebSocketResponse:
    """Every new notification, ride update and chat event for the caller, as JSON frames.

    Browsers cannot set headers on a WebSocket, so the token comes as `?access_token=`
    (an Authorization header works too)."""
    claims = _socket_claims(request)
    hub = request.app[LIVE]
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=4096)
    await socket.prepare(request)
    hub.add(claims.sub, socket)
    try:
        await socket.send_json({"type": "hello", "user_id": claims.sub})
        async for message in socket:
            # clients only listen; anything they send is answered with nothing
            if message.type == WSMsgType.ERROR:
                break
    finally:
        hub.remove(claims.sub, socket)
        await asyncio.shield(socket.close())
    return socket


def _socket_claims(request: web.Request) -> AccessClaims:
    token = request.query.get("access_token")
    if token is None:
        return authenticate(request)
    verifier = request.app[SERVICES].verifier
    if verifier is None:
        raise ProblemError(401, "invalid_token", "this node serves no users")
    try:
        return verifier.verify(token)
    except InvalidToken as error:
        # invalid_token, or session_revoked (the node's verifier refuses revoked sessions)
        raise ProblemError(401, error.code, error.message) from None


@routes.get("/ops/notifications/deliveries")
@documented(
    summary="Delivery records (admin)",
    description="Every try of every channel with the provider's answers, newest first.",
    tags=["ops", "notifications"],
    auth="ops",
    query=DeliveryQuery,
    responses={200: DeliveryList},
)
@require_ops
async def deliveries(request: web.Request) -> web.StreamResponse:
    """Admin: delivery records with every try and the provider's answers."""
    status = request.query.get("status")
    if status not in (None, "pending", "sent", "failed"):
        raise ProblemError(
            422,
            "validation_error",
            "status: pending, sent or failed",
            errors=[FieldError("status", "pending, sent or failed")],
        )
    limit, _cursor = page_params(request)
    found: DeliveryList = await ask(
        request,
        "notifications",
        ListDeliveries(status=status, user_id=request.query.get("user_id"), limit=limit),
    )
    return json_response(to_json(found))
