"""Pages: invitations and join links — the invitations waiting for the signed-in person
(`/invites`), the page an invitation mail links to (`/invites/{iid}`), and joining a group
through a join or claim link (`/join/{token}`).

Each answer asks the splits actor exactly what its JSON route asks (splitgo/web/splits/
invites.py and links.py): the same checks of a verified address, the same messages, the
same refusals in words. Signed out, these pages say to sign in (or sign up) first and come
back; with an address not verified yet, to verify it first.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.auth.messages import GetUser, UserView
from actors.splits.messages import (
    AnswerInvite,
    GroupView,
    InviteList,
    JoinByLink,
    JoinLinkNotFound,
    ListMyInvites,
)
from splitgo.pages import cookies
from splitgo.pages.forms import REFUSALS, as_problem, read_form
from splitgo.pages.guards import sign_in_url, signed_in
from splitgo.pages.render import named, redirect, render
from splitgo.pages.sessions import Viewer, viewer_of
from splitgo.web.actors import find_user
from splitgo.web.keys import SERVICES
from splitgo.web.splits.asking import ask_splits
from splitgo.web.splits.invites import invite_group

routes = web.RouteTableDef()

cookies.FLASHES.update(
    {
        "invite_accepted": "Welcome to the group.",
        "invite_declined": "The invitation is declined.",
        "joined": "You joined the group.",
    }
)


async def account_of(request: web.Request, viewer: Viewer) -> UserView | None:
    """The viewer's account (their address and whether it is verified)."""
    return await find_user(request.app[SERVICES].system, GetUser(user_id=viewer.user_id))


async def pending_for(request: web.Request, viewer: Viewer, me: UserView) -> list[dict[str, Any]]:
    """The invitations waiting for the viewer's verified address, newest first, named."""
    found: InviteList = await ask_splits(
        request, ListMyInvites(user_id=viewer.user_id, email=me.email)
    )
    items: list[dict[str, Any]] = (await named(request, found))["items"]
    return items


@routes.get("/invites")
@signed_in
async def invites(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    me = await account_of(request, viewer)
    verified = me is not None and me.email_verified
    items = await pending_for(request, viewer, me) if me is not None and verified else []
    return await render(
        request,
        "invites.html",
        {"title": "Invitations", "section": "groups", "invites": items, "verified": verified},
    )


@routes.get("/invites/{iid}")
async def invitation(request: web.Request) -> web.StreamResponse:
    """The mail's link: who invited you to which group, and Accept or Decline."""
    invite_id = request.match_info["iid"]
    here = f"/invites/{invite_id}"
    viewer = await viewer_of(request)
    context: dict[str, Any] = {
        "title": "Invitation",
        "section": "groups",
        "invite_id": invite_id,
        "next": here,
        "sign_in": sign_in_url(here),
        "invite": None,
        "verified": False,
        "problem": None,
    }
    if viewer is None:
        return await render(request, "invite.html", context)
    me = await account_of(request, viewer)
    if me is None or not me.email_verified:
        return await render(request, "invite.html", context)
    context["verified"] = True
    found = [item for item in await pending_for(request, viewer, me) if item["id"] == invite_id]
    if not found:
        context["problem"] = (
            "This invitation is not waiting for your address: it was answered or withdrawn, "
            "or it was sent to another address. Sign in with the invited address to answer it."
        )
        return await render(request, "invite.html", context, status=404)
    context["invite"] = found[0]
    return await render(request, "invite.html", context)


async def answer(request: web.Request, viewer: Viewer, *, accept: bool) -> web.StreamResponse:
    """POST /api/v1/invites/{iid}/accept (or decline) as a form."""
    await read_form(request)
    invite_id = request.match_info["iid"]
    me = await account_of(request, viewer)
    if me is None or not me.email_verified:
        return redirect(f"/invites/{invite_id}")
    try:
        message = AnswerInvite(
            group_id=invite_group(invite_id),
            user_id=viewer.user_id,
            invite_id=invite_id,
            email=me.email,
            accept=accept,
        )
        reply = await ask_splits(request, message)
    except REFUSALS as error:
        problem = as_problem(error)
        return await render(
            request,
            "invite.html",
            {
                "title": "Invitation",
                "section": "groups",
                "invite_id": invite_id,
                "next": f"/invites/{invite_id}",
                "sign_in": sign_in_url(f"/invites/{invite_id}"),
                "invite": None,
                "verified": True,
                "problem": problem.detail,
            },
            status=problem.status,
        )
    if accept and isinstance(reply, GroupView):
        cookies.flash(request, "invite_accepted")
        return redirect(f"/groups/{reply.id}")
    cookies.flash(request, "invite_declined")
    return redirect("/invites")


@routes.post("/invites/{iid}/accept")
@signed_in
async def accept(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await answer(request, viewer, accept=True)


@routes.post("/invites/{iid}/decline")
@signed_in
async def decline(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await answer(request, viewer, accept=False)


def join_context(token: str) -> dict[str, Any]:
    """What join.html shows for `token` before knowing who asks."""
    here = f"/join/{token}"
    return {
        "title": "Join a group",
        "section": "groups",
        "token": token,
        "next": here,
        "sign_in": sign_in_url(here),
        "verified": False,
        "problem": None,
    }


@routes.get("/join/{token}")
async def join_page(request: web.Request) -> web.StreamResponse:
    """A join or claim link: a Join button (signed out: sign in first; unverified: verify)."""
    token = request.match_info["token"]
    context = join_context(token)
    viewer = await viewer_of(request)
    if viewer is not None:
        me = await account_of(request, viewer)
        context["verified"] = me is not None and me.email_verified
    return await render(request, "join.html", context)


@routes.post("/join/{token}")
@signed_in
async def join(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """POST /api/v1/join/{token} as a form: the same checks, the same refusals."""
    await read_form(request)
    token = request.match_info["token"]
    context = join_context(token)
    me = await account_of(request, viewer)
    if me is None or not me.email_verified:
        return await render(request, "join.html", context, status=403)
    context["verified"] = True
    group, _, secret = token.partition(".")
    try:
        if not group or not secret or len(group) > 200 or len(secret) > 100:
            raise JoinLinkNotFound("This join link does not exist or was revoked.")
        view: GroupView = await ask_splits(
            request, JoinByLink(group_id=group, user_id=viewer.user_id, secret=secret)
        )
    except REFUSALS as error:
        problem = as_problem(error)
        context["problem"] = problem.detail
        return await render(request, "join.html", context, status=problem.status)
    cookies.flash(request, "joined")
    return redirect(f"/groups/{view.id}")
