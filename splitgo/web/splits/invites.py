"""The Splits routes of invitations: a member invites an address, lists and withdraws the
group's invitations; the owner of a verified address lists the invitations sent to it and
accepts (joining) or declines each.

An invitation's id is `<group id>.<hex>`: the group's part routes an answer to its shard.
Only a verified address may see or answer what was sent to it (403 `email_not_verified`):
whoever registered an address has not shown it is theirs.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from actors.auth.messages import FindUserByEmail, GetUser, UserView
from actors.runtime import IdempotencyKey
from actors.splits.messages import (
    EMAIL_TEXT_MAX,
    AnswerInvite,
    CancelInvite,
    Done,
    GroupView,
    InviteList,
    InviteMember,
    InviteNotFound,
    InviteView,
    ListInvites,
    ListMyInvites,
)
from splitgo.web.actors import find_user
from splitgo.web.declare import documented, idempotency
from splitgo.web.idempotency import key_for
from splitgo.web.keys import SERVICES
from splitgo.web.payments import field_problem
from splitgo.web.problems import ProblemError, json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id
from splitgo.web.splits.bodies import normalised_email

routes = web.RouteTableDef()
INVITE_ID_MAX = 200


class InviteBody(msgspec.Struct, forbid_unknown_fields=True):
    """The address to invite."""

    email: Annotated[str, msgspec.Meta(max_length=EMAIL_TEXT_MAX)]


async def caller(request: web.Request, user_id: str) -> UserView:
    user = await find_user(request.app[SERVICES].system, GetUser(user_id=user_id))
    if user is None:
        raise ProblemError(401, "invalid_token", "this account no longer exists")
    return user


async def verified_caller(request: web.Request, user_id: str) -> UserView:
    """The caller, whose address must be verified to see or answer invitations to it."""
    user = await caller(request, user_id)
    if not user.email_verified:
        raise ProblemError(
            403,
            "email_not_verified",
            "verify your email address first: invitations to it are shown once it is verified",
        )
    return user


async def invite_message(
    request: web.Request,
    body: InviteBody,
    *,
    group_id: str,
    user_id: str,
    idempotency: IdempotencyKey | None,
) -> InviteMember:
    """The invitation the body asks for (the JSON route's and the page's): never of your own
    address; the account that has the address, if any, is named to be told in the app."""
    email = normalised_email(body.email)
    me = await caller(request, user_id)
    if me.email == email:
        raise field_problem("$.email", "this is your own address: you are in the group already")
    invitee = await find_user(request.app[SERVICES].system, FindUserByEmail(email=email))
    return InviteMember(
        group_id=group_id,
        user_id=user_id,
        email=email,
        invitee_user_id=invitee.id if invitee is not None else None,
        idempotency=idempotency,
    )


def invite_group(invite_id: str) -> str:
    """The group an invitation id names (404 `invite_not_found` for one that cannot be)."""
    group, dot, rest = invite_id.partition(".")
    if not group or not dot or not rest or len(invite_id) > INVITE_ID_MAX:
        raise InviteNotFound("This invitation does not exist, or was answered or withdrawn.")
    return group


@routes.post("/api/v1/groups/{id}/invites")
@documented(
    summary="Invite an address to a group",
    description="An invitation mail with a link goes to the address (and a notice in the app "
    "of the account that has it). Its owner accepts or declines it; an address with no "
    "verified account yet joins once it is verified. Yourself: 422; a member: 409 "
    "`already_member`; invited already: 409 `already_invited`.",
    tags=["splits"],
    body=InviteBody,
    headers=[idempotency(required=False)],
    responses={201: InviteView},
    errors=[409, 422],
)
async def invite(request: web.Request, body: InviteBody) -> web.Response:
    claims = authenticate(request)
    message = await invite_message(
        request,
        body,
        group_id=group_id(request),
        user_id=claims.sub,
        idempotency=key_for(request, body, caller=claims.sub),
    )
    view: InviteView = await ask_splits(request, message)
    return json_response(to_json(view), status=201)


@routes.get("/api/v1/groups/{id}/invites")
@documented(
    summary="A group's pending invitations",
    description="To its members, oldest first, in one page (`next_cursor` is null).",
    tags=["splits"],
    responses={200: InviteList},
)
async def list_invites(request: web.Request) -> web.Response:
    claims = authenticate(request)
    found = await ask_splits(request, ListInvites(group_id=group_id(request), user_id=claims.sub))
    return json_response(to_json(found))


@routes.delete("/api/v1/groups/{id}/invites/{iid}")
@documented(
    summary="Withdraw an invitation",
    description="Only the member who sent it (403 `not_the_inviter`); none pending by that "
    "id: 404 `invite_not_found`.",
    tags=["splits"],
    responses={204: None},
    errors=[403],
)
async def cancel_invite(request: web.Request) -> web.Response:
    claims = authenticate(request)
    invite_id = request.match_info["iid"]
    invite_group(invite_id)
    await ask_splits(
        request, CancelInvite(group_id=group_id(request), user_id=claims.sub, invite_id=invite_id)
    )
    return web.Response(status=204)


@routes.get("/api/v1/invites")
@documented(
    summary="The invitations sent to your address",
    description="Pending, newest first, each with the group's name and who invited you. "
    "Only for a verified address (403 `email_not_verified`).",
    tags=["splits"],
    responses={200: InviteList},
    errors=[403],
)
async def my_invites(request: web.Request) -> web.Response:
    claims = authenticate(request)
    me = await verified_caller(request, claims.sub)
    found = await ask_splits(request, ListMyInvites(user_id=claims.sub, email=me.email))
    return json_response(to_json(found))


async def answer(request: web.Request, *, accept: bool) -> GroupView | Done:
    claims = authenticate(request)
    invite_id = request.match_info["iid"]
    group = invite_group(invite_id)
    me = await verified_caller(request, claims.sub)
    message = AnswerInvite(
        group_id=group, user_id=claims.sub, invite_id=invite_id, email=me.email, accept=accept
    )
    reply: GroupView | Done = await ask_splits(request, message)
    return reply


@routes.post("/api/v1/invites/{iid}/accept")
@documented(
    summary="Accept an invitation: join the group",
    description="Only the owner of the invited address, verified (403 `email_not_verified`; "
    "someone else's: 403 `not_your_invitation`); answered, withdrawn or unknown: 404 "
    "`invite_not_found`.",
    tags=["splits"],
    responses={200: GroupView},
    errors=[403],
)
async def accept(request: web.Request) -> web.Response:
    return json_response(to_json(await answer(request, accept=True)))


@routes.post("/api/v1/invites/{iid}/decline")
@documented(
    summary="Decline an invitation",
    description="As accepting, but nobody joins: the invitation is gone.",
    tags=["splits"],
    responses={204: None},
    errors=[403],
)
async def decline(request: web.Request) -> web.Response:
    await answer(request, accept=False)
    return web.Response(status=204)
