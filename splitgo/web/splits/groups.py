"""The Splits routes for groups and their members (and invites by email)."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from aiohttp import web

from actors.auth.messages import FindUserByEmail, GetUser
from actors.splits.messages import (
    AddMember,
    CancelInvite,
    DeleteGroup,
    GetGroup,
    GroupList,
    GroupView,
    ListGroups,
    RemoveMember,
    SetSimplify,
)
from splitgo.web.actors import find_user
from splitgo.web.declare import documented, idempotency
from splitgo.web.idempotency import with_key
from splitgo.web.keys import SERVICES
from splitgo.web.payments import field_problem
from splitgo.web.problems import json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id
from splitgo.web.splits.bodies import (
    GroupBody,
    GroupPatch,
    MemberBody,
    group_message,
    group_patch_message,
    member_target,
)

routes = web.RouteTableDef()


async def add_member_message(
    request: web.Request, body: MemberBody, *, group_id: str, user_id: str
) -> AddMember:
    """A known user by id or verified email, an invite for an email with no verified
    account yet, or a placeholder by name (its id chosen here)."""
    kind, value = member_target(body)
    system = request.app[SERVICES].system
    if kind == "name":
        return AddMember(
            group_id=group_id, user_id=user_id, name=value, placeholder_id=str(uuid.uuid4())
        )
    if kind == "user_id":
        if await find_user(system, GetUser(user_id=value)) is None:
            raise field_problem("$.user_id", "no user has this id")
        return AddMember(group_id=group_id, user_id=user_id, member_user_id=value)
    found = await find_user(system, FindUserByEmail(email=value))
    if found is None or not found.email_verified:
        # whoever registered an unverified address has not shown it is theirs: it stays an
        # invite, which joins when the address is verified
        return AddMember(group_id=group_id, user_id=user_id, email=value)
    return AddMember(group_id=group_id, user_id=user_id, member_user_id=found.id)


@routes.post("/api/v1/groups")
@documented(
    summary="Create a group",
    description="The creator is its first member.",
    tags=["splits"],
    body=GroupBody,
    headers=[idempotency(required=False)],
    responses={201: GroupView},
)
async def create_group(request: web.Request, body: GroupBody) -> web.Response:
    claims = authenticate(request)
    message = with_key(
        group_message(body, group_id=str(uuid.uuid4()), user_id=claims.sub),
        request,
        body,
        caller=claims.sub,
    )
    group: GroupView = await ask_splits(request, message)
    return json_response(to_json(group), status=201)


class GroupPage(msgspec.Struct, kw_only=True):
    """The caller's groups as every list answers: `items` and `next_cursor` (always null:
    they come in one page). `groups` repeats `items` for clients of before; it goes in a
    later release."""

    items: list[GroupView]
    next_cursor: str | None = None
    groups: Annotated[list[GroupView], msgspec.Meta(description="deprecated: the same as `items`")]


class GroupsQuery(msgspec.Struct):
    """`?archived=true` lists the archived groups instead of the active ones."""

    archived: bool = False


@routes.get("/api/v1/groups")
@documented(
    summary="The caller's groups",
    description="The active ones; `?archived=true`: the archived ones.",
    tags=["splits"],
    query=GroupsQuery,
    responses={200: GroupPage},
    errors=[422],
)
async def list_groups(request: web.Request) -> web.Response:
    claims = authenticate(request)
    archived = request.query.get("archived", "false").lower()
    if archived not in ("true", "false"):
        raise field_problem("archived", "true or false")
    found: GroupList = await ask_splits(
        request, ListGroups(user_id=claims.sub, archived=archived == "true")
    )
    return json_response(to_json(GroupPage(items=found.groups, groups=found.groups)))


@routes.get("/api/v1/groups/{id}")
@documented(summary="A group with its members", tags=["splits"], responses={200: GroupView})
async def get_group(request: web.Request) -> web.Response:
    claims = authenticate(request)
    group: GroupView = await ask_splits(
        request, GetGroup(group_id=group_id(request), user_id=claims.sub)
    )
    return json_response(to_json(group))


@routes.patch("/api/v1/groups/{id}")
@documented(
    summary="Rename, archive or bring back a group; switch its plan's simplifying",
    description="Any member may. An archived group is read-only (409 `group_archived` on "
    "every change) and hidden from the default list until it is brought back "
    "(`archived: false`). `simplify` (default true): the settle plan is the fewest "
    "transfers, or (false) who owes whom directly; the same as PATCH …/settings.",
    tags=["splits"],
    body=GroupPatch,
    responses={200: GroupView},
    errors=[409],
)
async def update_group(request: web.Request, body: GroupPatch) -> web.Response:
    claims = authenticate(request)
    group_of = group_id(request)
    if body.simplify is not None:
        switch = SetSimplify(group_id=group_of, user_id=claims.sub, simplify=body.simplify)
        await ask_splits(request, switch)
        if body.name is None and body.archived is None:
            view = GetGroup(group_id=group_of, user_id=claims.sub)
            return json_response(to_json(await ask_splits(request, view)))
    message = group_patch_message(body, group_id=group_of, user_id=claims.sub)
    group: GroupView = await ask_splits(request, message)
    return json_response(to_json(group))


@routes.delete("/api/v1/groups/{id}")
@documented(
    summary="Delete a group",
    description="For every member, once every balance in it is zero (409 "
    "`unsettled_balance` before).",
    tags=["splits"],
    responses={204: None},
    errors=[409],
)
async def delete_group(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask_splits(request, DeleteGroup(group_id=group_id(request), user_id=claims.sub))
    return web.Response(status=204)


@routes.post("/api/v1/groups/{id}/members")
@documented(
    summary="Add a member",
    description="By `user_id`; by `email`: an email with no verified account yet is "
    "invited and joins once that address is verified; or by `name`: a placeholder, a member "
    "with no account (`placeholder: true`), split with as anyone and claimed later through a "
    "claim link (POST /api/v1/groups/{id}/placeholders/{user_id}/claim-link).",
    tags=["splits"],
    body=MemberBody,
    headers=[idempotency(required=False)],
    responses={201: GroupView},
    errors=[409],
)
async def add_member(request: web.Request, body: MemberBody) -> web.Response:
    claims = authenticate(request)
    message = await add_member_message(
        request, body, group_id=group_id(request), user_id=claims.sub
    )
    message = with_key(message, request, body, caller=claims.sub)
    group: GroupView = await ask_splits(request, message)
    return json_response(to_json(group), status=201)


@routes.delete("/api/v1/groups/{id}/invitations/{email}")
@documented(
    summary="Withdraw an invitation",
    description="Only the member who sent it (403 `not_the_inviter`); no pending invitation "
    "of that address: 404 `invite_not_found`.",
    tags=["splits"],
    responses={204: None},
    errors=[403, 422],
)
async def cancel_invite(request: web.Request) -> web.Response:
    claims = authenticate(request)
    email = request.match_info["email"]
    if len(email) > 254 or not email.isprintable():
        raise field_problem("email", "an email address")
    await ask_splits(
        request, CancelInvite(group_id=group_id(request), user_id=claims.sub, email=email)
    )
    return web.Response(status=204)


@routes.delete("/api/v1/groups/{id}/members/{user_id}")
@documented(
    summary="Remove a member",
    description="409 `unsettled_balance` while their balance is not zero.",
    tags=["splits"],
    responses={204: None},
    errors=[409, 422],
)
async def remove_member(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask_splits(
        request,
        RemoveMember(
            group_id=group_id(request),
            user_id=claims.sub,
            member_user_id=request.match_info["user_id"],
        ),
    )
    return web.Response(status=204)
