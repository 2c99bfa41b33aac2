"""The Splits routes of join links: make one to share, list and revoke a group's links,
and join a group through one (only with a verified address)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from actors.auth.messages import GetUser
from actors.splits.messages import (
    LINK_SECONDS_MAX,
    LINK_SECONDS_MIN,
    MAX_MEMBERS,
    CreateClaimLink,
    CreateJoinLink,
    GroupView,
    JoinByLink,
    JoinLinkList,
    JoinLinkNotFound,
    JoinLinkView,
    ListJoinLinks,
    RevokeJoinLink,
)
from splitgo.web.actors import find_user
from splitgo.web.declare import documented, idempotency
from splitgo.web.idempotency import key_for
from splitgo.web.keys import SERVICES
from splitgo.web.problems import ProblemError, json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id

routes = web.RouteTableDef()


class LinkBody(msgspec.Struct, forbid_unknown_fields=True):
    """How long the link lives (seconds, 1 hour to 30 days) and how many may use it."""

    expires_in: Annotated[int, msgspec.Meta(ge=LINK_SECONDS_MIN, le=LINK_SECONDS_MAX)] = 7 * 86_400
    max_uses: Annotated[int, msgspec.Meta(ge=1, le=MAX_MEMBERS)] = 10


@routes.post("/api/v1/groups/{id}/join-links")
@routes.post("/api/v1/groups/{id}/links")
@documented(
    summary="Make a join link",
    description="Whoever holds `token` may join with POST /api/v1/join/{token} (with a "
    "verified address) until it expires (`expires_in` seconds, default 7 days) or has been "
    "used `max_uses` times (default 10). The token is shown only in this reply.",
    tags=["splits"],
    body=LinkBody,
    body_required=False,
    headers=[idempotency(required=False)],
    responses={201: JoinLinkView},
    errors=[409],
)
async def create_link(request: web.Request, body: LinkBody) -> web.Response:
    claims = authenticate(request)
    message = CreateJoinLink(
        group_id=group_id(request),
        user_id=claims.sub,
        expires_in=body.expires_in,
        max_uses=body.max_uses,
        idempotency=key_for(request, body, caller=claims.sub),
    )
    link: JoinLinkView = await ask_splits(request, message)
    return json_response(to_json(link), status=201)


@routes.get("/api/v1/groups/{id}/join-links")
@routes.get("/api/v1/groups/{id}/links")
@documented(summary="A group's live join links", tags=["splits"], responses={200: JoinLinkList})
async def list_links(request: web.Request) -> web.Response:
    claims = authenticate(request)
    found = await ask_splits(request, ListJoinLinks(group_id=group_id(request), user_id=claims.sub))
    return json_response(to_json(found))


@routes.delete("/api/v1/groups/{id}/join-links/{link_id}")
@routes.delete("/api/v1/groups/{id}/links/{link_id}")
@documented(summary="Revoke a join link", tags=["splits"], responses={204: None})
async def revoke_link(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask_splits(
        request,
        RevokeJoinLink(
            group_id=group_id(request), user_id=claims.sub, link_id=request.match_info["link_id"]
        ),
    )
    return web.Response(status=204)


class ClaimLinkBody(msgspec.Struct, forbid_unknown_fields=True):
    """How long the claim link lives (seconds, 1 hour to 30 days); it is used once."""

    expires_in: Annotated[int, msgspec.Meta(ge=LINK_SECONDS_MIN, le=LINK_SECONDS_MAX)] = 7 * 86_400


@routes.post("/api/v1/groups/{id}/placeholders/{user_id}/claim-link")
@documented(
    summary="Make a claim link for a placeholder",
    description="Whoever joins with its `token` (POST /api/v1/join/{token}, with a verified "
    "address) takes the placeholder's place in the group, with every expense, share, "
    "balance and settlement of theirs. Used once; not a placeholder (or claimed already): "
    "404 `not_a_placeholder`.",
    tags=["splits"],
    body=ClaimLinkBody,
    body_required=False,
    responses={201: JoinLinkView},
    errors=[409],
)
async def create_claim_link(request: web.Request, body: ClaimLinkBody) -> web.Response:
    claims = authenticate(request)
    message = CreateClaimLink(
        group_id=group_id(request),
        user_id=claims.sub,
        placeholder_id=request.match_info["user_id"],
        expires_in=body.expires_in,
    )
    link: JoinLinkView = await ask_splits(request, message)
    return json_response(to_json(link), status=201)


@routes.post("/api/v1/join/{token}")
@documented(
    summary="Join a group through a link",
    description="Needs a verified address (403 `email_not_verified`). An unknown or revoked "
    "link: 404 `join_link_not_found`; expired: 409 `join_link_expired`; used up: 409 "
    "`join_link_used_up`; a member already: 409 `already_member`. A claim link makes you "
    "the placeholder it names.",
    tags=["splits"],
    responses={201: GroupView},
    errors=[403, 409],
)
async def join(request: web.Request) -> web.Response:
    claims = authenticate(request)
    group, _, secret = request.match_info["token"].partition(".")
    if not group or not secret or len(group) > 200 or len(secret) > 100:
        raise JoinLinkNotFound("This join link does not exist or was revoked.")
    me = await find_user(request.app[SERVICES].system, GetUser(user_id=claims.sub))
    if me is None or not me.email_verified:
        raise ProblemError(
            403,
            "email_not_verified",
            "verify your email address first: joining a group needs a verified address",
        )
    view: GroupView = await ask_splits(
        request, JoinByLink(group_id=group, user_id=claims.sub, secret=secret)
    )
    return json_response(to_json(view), status=201)
