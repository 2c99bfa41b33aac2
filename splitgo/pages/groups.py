"""Pages: the caller's groups, a new group, a group's Members and Activity tabs, the
fragments its live regions are refreshed with, and the browser's live WebSocket.

Every form builds the JSON route's message through the route's own body struct and
conversion (splitgo/web/splits/bodies.py, groups.py, invites.py, links.py), so a form is
refused exactly as the route is, the refusal shown at its input.

Live updates: `GET /live` is the browser's twin of GET /api/v1/ws, authenticated by the
session cookie instead of a token (a browser cannot put a header on a WebSocket, and the
access token stays HttpOnly): the same frames of the same hub (splitgo.web.live). Only a
page of this site may open it (its Origin must be this host). static/group_live.js
listens on it and refreshes a group page's live regions, each from the URL it names (see
group_layout.html); this module renders the regions of the shell and of its two tabs:
`/groups/{id}/live/balance`, `/groups/{id}/live/members`, `/groups/{id}/live/activity`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from aiohttp import WSMsgType, web

from actors.auth.messages import GetUser
from actors.payments.messages import CURRENCIES
from actors.runtime import DomainError, IdempotencyKey
from actors.splits.messages import (
    ActivityPage,
    BalancesView,
    CancelInvite,
    CreateClaimLink,
    CreateJoinLink,
    DeleteGroup,
    GetActivity,
    GetBalances,
    GetGroup,
    GetGroupSettings,
    GroupList,
    GroupView,
    InviteList,
    JoinLinkList,
    JoinLinkView,
    ListGroups,
    ListJoinLinks,
    ListMyInvites,
    RemoveMember,
    RevokeJoinLink,
    UnsettledBalance,
)
from splitgo.pages import cookies
from splitgo.pages.forms import REFUSALS, Form, as_problem, read_form
from splitgo.pages.group_page import group_context, nets_of
from splitgo.pages.guards import signed_in
from splitgo.pages.money import format_money, locale_of
from splitgo.pages.render import named, redirect, render, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask, find_user
from splitgo.web.keys import LIVE, SERVICES
from splitgo.web.notifications import HEARTBEAT_SECONDS
from splitgo.web.payments import field_problem
from splitgo.web.problems import ProblemError
from splitgo.web.splits.asking import ask_splits
from splitgo.web.splits.bodies import (
    GroupBody,
    GroupPatch,
    MemberBody,
    group_message,
    group_patch_message,
)
from splitgo.web.splits.groups import add_member_message
from splitgo.web.splits.invites import InviteBody, invite_message
from splitgo.web.splits.links import LinkBody

M = TypeVar("M", bound=msgspec.Struct)
routes = web.RouteTableDef()

cookies.FLASHES.update(
    {
        "group_created": "Your group is ready. Add an expense, or invite people from Members.",
        "group_renamed": "The group is renamed.",
        "group_archived": "The group is archived. Bring it back from Members to change it.",
        "group_unarchived": "The group is back among your active groups.",
        "group_deleted": "The group is deleted.",
        "group_left": "You left the group.",
        "invite_sent": "The invitation is sent.",
        "invite_withdrawn": "The invitation is withdrawn.",
        "placeholder_added": "Added. Make a claim link so they can take their place later.",
        "link_revoked": "The link is revoked: nobody can join with it any more.",
    }
)

# how long a new join link lives: (seconds, words); 7 days is chosen at first
LINK_LIFETIMES = ((86_400, "1 day"), (7 * 86_400, "7 days"), (30 * 86_400, "30 days"))
ACTIVITY_PAGE = 20


def gid(request: web.Request) -> str:
    """The group id of the path."""
    return request.match_info["id"]


def join_url(request: web.Request, token: str) -> str:
    """The link to share: the node's public address and /join/{token}."""
    return f"{request.app[SERVICES].public_url.rstrip('/')}/join/{token}"


# ── the list of groups and a new one ──────────────────────────────────────────────────


async def waiting_invites(request: web.Request, viewer: Viewer) -> int:
    """How many invitations wait for the viewer (none while their address is unverified)."""
    me = await find_user(request.app[SERVICES].system, GetUser(user_id=viewer.user_id))
    if me is None or not me.email_verified:
        return 0
    found: InviteList = await ask_splits(
        request, ListMyInvites(user_id=viewer.user_id, email=me.email)
    )
    return len(found.items)


async def groups_page(
    request: web.Request, viewer: Viewer, form: Form | None = None
) -> web.Response:
    archived = request.query.get("archived", "false").lower() == "true"
    found: GroupList = await ask_splits(
        request, ListGroups(user_id=viewer.user_id, archived=archived)
    )
    balances: list[BalancesView] = await asyncio.gather(
        *(
            ask_splits(request, GetBalances(group_id=group.id, user_id=viewer.user_id))
            for group in found.groups
        )
    )
    rows = [
        {
            "id": group.id,
            "name": group.name,
            "currency": group.currency,
            "members": len(group.members),
            "nets": nets_of(balance, viewer.user_id),
        }
        for group, balance in zip(found.groups, balances, strict=True)
    ]
    form = form or Form.blank(currency="EUR")
    return await render_with_form(
        request,
        "groups.html",
        {
            "title": "Archived groups" if archived else "Groups",
            "section": "groups",
            "groups": rows,
            "archived": archived,
            "invites": await waiting_invites(request, viewer),
            "form": form,
            "currencies": sorted(CURRENCIES),
        },
        form,
    )


@routes.get("/groups")
@signed_in
async def groups(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await groups_page(request, viewer)


@routes.post("/groups")
@signed_in
async def create_group(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = form.parse(GroupBody)
        message = group_message(body, group_id=str(uuid.uuid4()), user_id=viewer.user_id)
        key = form.idempotency(request, body, caller=viewer.user_id)
        group: GroupView = await ask_splits(request, _keyed(message, key))
    except REFUSALS as error:
        form.refuse(error)
        return await groups_page(request, viewer, form)
    cookies.flash(request, "group_created")
    return redirect(f"/groups/{group.id}")


def _keyed(message: M, key: IdempotencyKey | None) -> M:
    """The message with the form's idempotency key (as `with_key` adds the header's)."""
    return msgspec.structs.replace(message, idempotency=key) if key is not None else message


# ── the Members tab ───────────────────────────────────────────────────────────────────


async def members_page(
    request: web.Request,
    viewer: Viewer,
    *,
    forms: dict[str, Form] | None = None,
    new_link: dict[str, Any] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    group_id = gid(request)
    context = await group_context(request, viewer, group_id)
    links: JoinLinkList = await ask_splits(
        request, ListJoinLinks(group_id=group_id, user_id=viewer.user_id)
    )
    blank = {
        "invite": Form.blank(),
        "placeholder": Form.blank(),
        "link": Form.blank(expires_in=str(LINK_LIFETIMES[1][0]), max_uses="10"),
        "rename": Form.blank(name=context["group"]["name"]),
    }
    blank.update(forms or {})
    status = max([status, *(form.status for form in blank.values())])
    return await render(
        request,
        "group_members.html",
        {
            **context,
            "tab": "members",
            "title": f"Members · {context['group']['name']}",
            "links": (await named(request, links))["items"],
            "forms": blank,
            "new_link": new_link,
            "problem": problem,
            "lifetimes": LINK_LIFETIMES,
            # issue 17: the simplify switch (its form posts to pages/recurring.py)
            "plan_settings": await ask_splits(
                request, GetGroupSettings(group_id=group_id, user_id=viewer.user_id)
            ),
        },
        status=status,
    )


async def act(
    request: web.Request, viewer: Viewer, message: Any, flash: str, then: str
) -> web.StreamResponse:
    """Ask splits for a button's change: then flash `flash` and go to `then`, or show the
    refusal, in words, on the Members tab."""
    try:
        await ask_splits(request, message)
    except REFUSALS as error:
        return await refused(request, viewer, error)
    cookies.flash(request, flash)
    return redirect(then)


async def refused(
    request: web.Request, viewer: Viewer, error: ProblemError | DomainError
) -> web.StreamResponse:
    """The Members tab with a refusal that belongs to no field, in words."""
    problem = as_problem(error)
    return await members_page(request, viewer, problem=problem.detail, status=problem.status)


@routes.get("/groups/{id}/members")
@signed_in
async def members(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await members_page(request, viewer)


@routes.post("/groups/{id}/invites")
@signed_in
async def invite(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The form of POST /api/v1/groups/{id}/invites: the same checks, the same message."""
    form = await read_form(request)
    try:
        body = form.parse(InviteBody)
        message = await invite_message(
            request,
            body,
            group_id=gid(request),
            user_id=viewer.user_id,
            idempotency=form.idempotency(request, body, caller=viewer.user_id),
        )
        await ask_splits(request, message)
    except REFUSALS as error:
        form.refuse(error)
        return await members_page(request, viewer, forms={"invite": form})
    cookies.flash(request, "invite_sent")
    return redirect(f"/groups/{gid(request)}/members")


@routes.post("/groups/{id}/invites/{iid}/withdraw")
@signed_in
async def withdraw(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    message = CancelInvite(
        group_id=gid(request), user_id=viewer.user_id, invite_id=request.match_info["iid"]
    )
    return await act(
        request, viewer, message, "invite_withdrawn", f"/groups/{gid(request)}/members"
    )


@routes.post("/groups/{id}/placeholders")
@signed_in
async def add_placeholder(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The form of POST /api/v1/groups/{id}/members with a `name`: a placeholder."""
    form = await read_form(request)
    try:
        body = form.parse(MemberBody)
        if body.name is None:
            raise field_problem("$.name", "a name is needed")
        message = await add_member_message(
            request, body, group_id=gid(request), user_id=viewer.user_id
        )
        key = form.idempotency(request, body, caller=viewer.user_id)
        await ask_splits(request, _keyed(message, key))
    except REFUSALS as error:
        form.refuse(error)
        return await members_page(request, viewer, forms={"placeholder": form})
    cookies.flash(request, "placeholder_added")
    return redirect(f"/groups/{gid(request)}/members")


@routes.post("/groups/{id}/placeholders/{user_id}/claim-link")
@signed_in
async def claim_link(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """A claim link for a placeholder, shown once on the page that answers."""
    await read_form(request)
    placeholder = request.match_info["user_id"]
    try:
        link: JoinLinkView = await ask_splits(
            request,
            CreateClaimLink(
                group_id=gid(request), user_id=viewer.user_id, placeholder_id=placeholder
            ),
        )
    except REFUSALS as error:
        return await refused(request, viewer, error)
    shown = {"url": join_url(request, link.token or ""), "placeholder_id": placeholder}
    return await members_page(request, viewer, new_link=shown, status=201)


@routes.post("/groups/{id}/join-links")
@signed_in
async def create_link(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The form of POST /api/v1/groups/{id}/join-links; the link is shown only now."""
    form = await read_form(request)
    try:
        body = form.parse(LinkBody)
        link: JoinLinkView = await ask_splits(
            request,
            CreateJoinLink(
                group_id=gid(request),
                user_id=viewer.user_id,
                expires_in=body.expires_in,
                max_uses=body.max_uses,
                idempotency=form.idempotency(request, body, caller=viewer.user_id),
            ),
        )
    except REFUSALS as error:
        form.refuse(error)
        return await members_page(request, viewer, forms={"link": form})
    shown = {"url": join_url(request, link.token or ""), "placeholder_id": None}
    return await members_page(request, viewer, new_link=shown, status=201)


@routes.post("/groups/{id}/join-links/{link_id}/revoke")
@signed_in
async def revoke_link(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    message = RevokeJoinLink(
        group_id=gid(request), user_id=viewer.user_id, link_id=request.match_info["link_id"]
    )
    return await act(request, viewer, message, "link_revoked", f"/groups/{gid(request)}/members")


def unsettled_words(error: UnsettledBalance, locale: str) -> str:
    """Why the viewer cannot leave, in words: what they owe or are owed, per currency
    (the actor's own sentence names them by id)."""
    balances = error.details.get("balances")
    parts = []
    if isinstance(balances, dict):
        for currency, net in sorted(balances.items()):
            if isinstance(net, int) and net != 0:
                amount = format_money(abs(net), str(currency), locale)
                parts.append(f"you owe {amount}" if net < 0 else f"you are owed {amount}")
    owing = " and ".join(parts) or "your balance here is not zero"
    return f"You cannot leave yet: {owing} in this group. Settle up first, then leave."


@routes.post("/groups/{id}/leave")
@signed_in
async def leave(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Leaving is removing yourself: refused (in words) while your balance is not zero."""
    await read_form(request)
    message = RemoveMember(
        group_id=gid(request), user_id=viewer.user_id, member_user_id=viewer.user_id
    )
    try:
        # asked as is (not through ask_splits): the refusal's details say the balances
        await ask(request, "splits", message)
    except UnsettledBalance as error:
        words = unsettled_words(error, locale_of(request.headers.get("Accept-Language")))
        return await members_page(request, viewer, problem=words, status=409)
    except REFUSALS as error:
        return await refused(request, viewer, error)
    cookies.flash(request, "group_left")
    return redirect("/groups")


@routes.post("/groups/{id}/settings")
@signed_in
async def settings(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The form of PATCH /api/v1/groups/{id}: rename (`name`) or archive (`archived`)."""
    form = await read_form(request)
    try:
        body = form.parse(GroupPatch)
        await ask_splits(
            request, group_patch_message(body, group_id=gid(request), user_id=viewer.user_id)
        )
    except REFUSALS as error:
        form.refuse(error)
        return await members_page(request, viewer, forms={"rename": form})
    if body.archived is None:
        cookies.flash(request, "group_renamed")
    else:
        cookies.flash(request, "group_archived" if body.archived else "group_unarchived")
    return redirect(f"/groups/{gid(request)}/members")


@routes.get("/groups/{id}/delete")
@signed_in
async def confirm_delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The confirmation a browser without JavaScript is shown (with it: a <dialog>)."""
    context = await group_context(request, viewer, gid(request))
    return await render(
        request,
        "group_delete.html",
        {**context, "tab": "members", "title": f"Delete {context['group']['name']}?"},
    )


@routes.post("/groups/{id}/delete")
@signed_in
async def delete_group(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    message = DeleteGroup(group_id=gid(request), user_id=viewer.user_id)
    return await act(request, viewer, message, "group_deleted", "/groups")


# ── the Activity tab ──────────────────────────────────────────────────────────────────


async def activity_of(request: web.Request, viewer: Viewer, cursor: str | None) -> dict[str, Any]:
    found: ActivityPage = await ask_splits(
        request,
        GetActivity(
            group_id=gid(request), user_id=viewer.user_id, limit=ACTIVITY_PAGE, cursor=cursor
        ),
    )
    page: dict[str, Any] = await named(request, found)
    return page


@routes.get("/groups/{id}/activity")
@signed_in
async def activity(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    context = await group_context(request, viewer, gid(request))
    cursor = request.query.get("cursor") or None
    return await render(
        request,
        "group_activity.html",
        {
            **context,
            "tab": "activity",
            "title": f"Activity · {context['group']['name']}",
            "activity": await activity_of(request, viewer, cursor),
            "cursor": cursor,
        },
    )


# ── live: the regions' fragments and the browser's WebSocket ──────────────────────────


@routes.get("/groups/{id}/live/balance")
@signed_in
async def live_balance(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The shell's live region "balance": the viewer's balance in the group, in words."""
    balances: BalancesView = await ask_splits(
        request, GetBalances(group_id=gid(request), user_id=viewer.user_id)
    )
    context = {"my_net": nets_of(balances, viewer.user_id)}
    return await render(request, "group_balance.html", context)


@routes.get("/groups/{id}/live/members")
@signed_in
async def live_members(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The Members tab's live region "members": the list of members."""
    view: GroupView = await ask_splits(
        request, GetGroup(group_id=gid(request), user_id=viewer.user_id)
    )
    return await render(request, "group_members_list.html", {"group": await named(request, view)})


@routes.get("/groups/{id}/live/activity")
@signed_in
async def live_activity(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The Activity tab's live region "activity": its newest page."""
    view: GroupView = await ask_splits(
        request, GetGroup(group_id=gid(request), user_id=viewer.user_id)
    )
    context = {
        "group": await named(request, view),
        "activity": await activity_of(request, viewer, None),
        "cursor": None,
    }
    return await render(request, "group_activity_list.html", context)


def same_origin(request: web.Request) -> bool:
    """Whether the socket is opened by a page of this site: this host, or the public URL's
    (behind a proxy). No Origin at all: not a browser's, so no cross-site page's."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    public = urlsplit(request.app[SERVICES].public_url).netloc
    return urlsplit(origin).netloc in (request.host, public)


@routes.get("/live")
@signed_in
async def live(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The browser's WebSocket: GET /api/v1/ws's frames, signed in by the session cookie."""
    if not same_origin(request):
        raise web.HTTPForbidden()
    hub = request.app[LIVE]
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=4096)
    if not socket.can_prepare(request).ok:
        raise web.HTTPBadRequest()
    # a session refreshed just now (signed_in) must reach the browser with the handshake:
    # once the socket is open, no header can
    cookies.apply(request, socket)
    await socket.prepare(request)
    hub.add(viewer.user_id, socket)
    try:
        await socket.send_json({"type": "hello", "user_id": viewer.user_id})
        async for message in socket:
            if message.type == WSMsgType.ERROR:
                break
    finally:
        hub.remove(viewer.user_id, socket)
        await asyncio.shield(socket.close())
    return socket
