"""The account: profile, email, phone, sessions, password and the Telegram link.

Every form sends auth the message its JSON route sends: the profile form `UpdateUser`
built from PATCH /api/v1/me's `UpdateMeBody`, Revoke `RevokeSession` (DELETE
/api/v1/auth/sessions/{id}), the Telegram button `CreateTelegramLink` (POST
/api/v1/me/telegram-link), whose deep link is shown with a QR code drawn here by `segno`
as inline SVG (no style attributes: the strict CSP). "Sign out everywhere" revokes every
other session, then signs this browser out with the API's `Logout`.

The password card changes the password with the current one (`ChangePassword`, as POST
/api/v1/me/password: every other session ends, this one stays), or, for whoever forgot it,
mails a reset link (`ForgotPassword` for the account's own address).
"""

from __future__ import annotations

import contextlib

import structlog
from aiohttp import web

from actors.auth.messages import (
    ChangePassword,
    CreateTelegramLink,
    ForgotPassword,
    GetUser,
    ListSessions,
    RevokeSession,
    SessionList,
    SessionNotFound,
    TelegramLink,
    TelegramNotConfigured,
    UpdateUser,
    UserView,
)
from splitgo.pages import cookies, sessions
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import SIGN_IN, signed_in, spend
from splitgo.pages.qr import qr_svg
from splitgo.pages.render import redirect, render
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask
from splitgo.web.auth import PasswordChangeBody, UpdateMeBody
from splitgo.web.names import renamed

log = structlog.get_logger("splitgo.pages.account")

routes = web.RouteTableDef()

ACCOUNT = "/account"

cookies.FLASHES.update(
    {
        "profile_saved": "Your profile is saved.",
        "session_revoked": "That session is signed out.",
        "signed_out_everywhere": "You are signed out everywhere. Sign in again to go on.",
        "password_changed": "Your password is changed; your other sessions are signed out.",
        "reset_link_sent": "We sent you a link to choose a new password. "
        "It also goes to Telegram when your account is linked there.",
    }
)

# (pattern in a user agent, words), the first that matches names it
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("Python/", "An app"),
    ("aiohttp/", "An app"),
    ("okhttp/", "An app"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_of(user_agent: str | None) -> str:
    """A session's browser and system in words ("Firefox on Linux"), from its user agent."""
    agent = user_agent or ""
    browser = next((words for mark, words in _BROWSERS if mark in agent), None)
    system = next((words for mark, words in _SYSTEMS if mark in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "An unknown device"


@routes.get(ACCOUNT)
@signed_in
async def account(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _account_page(request, viewer, Form.blank())


@routes.post(f"{ACCOUNT}/profile")
@signed_in
async def save_profile(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = form.parse(UpdateMeBody)
        user: UserView = await ask(
            request, "auth", UpdateUser(user_id=viewer.user_id, name=body.name, phone=body.phone)
        )
    except REFUSALS as error:
        form.refuse(error)
        return await _account_page(request, viewer, form)
    renamed(request.app, user.id, user.name)
    cookies.flash(request, "profile_saved")
    return redirect(ACCOUNT)


@routes.post(f"{ACCOUNT}/sessions/{{id}}/revoke")
@signed_in
async def revoke(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    session_id = request.match_info["id"]
    if session_id == viewer.session_id:
        await sessions.sign_out(request)
        cookies.flash(request, "signed_out")
        return redirect(SIGN_IN)
    await ask(request, "auth", RevokeSession(user_id=viewer.user_id, session_id=session_id))
    cookies.flash(request, "session_revoked")
    return redirect(f"{ACCOUNT}#sessions")


@routes.post(f"{ACCOUNT}/sign-out-everywhere")
@signed_in
async def sign_out_everywhere(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    found: SessionList = await ask(request, "auth", ListSessions(user_id=viewer.user_id))
    for session in found.items:
        if session.id == viewer.session_id:
            continue
        with contextlib.suppress(SessionNotFound):  # ended meanwhile
            await ask(request, "auth", RevokeSession(user_id=viewer.user_id, session_id=session.id))
    await sessions.sign_out(request)
    log.info("signed_out_everywhere", user_id=viewer.user_id, sessions=len(found.items))
    cookies.flash(request, "signed_out_everywhere")
    return redirect(SIGN_IN)


@routes.post(f"{ACCOUNT}/password")
@signed_in
async def password_link(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    spend(request, "password")
    user: UserView = await ask(request, "auth", GetUser(user_id=viewer.user_id))
    await ask(request, "auth", ForgotPassword(email=user.email))
    cookies.flash(request, "reset_link_sent")
    return redirect(f"{ACCOUNT}#password")


@routes.post(f"{ACCOUNT}/password/change")
@signed_in
async def change_password(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        spend(request, "password")
        body = form.parse(PasswordChangeBody)
        message = ChangePassword(
            user_id=viewer.user_id,
            session_id=viewer.session_id,
            current_password=body.current_password,
            password=body.password,
        )
        await ask(request, "auth", message)
    except REFUSALS as error:
        form.refuse(error)
        return await _account_page(request, viewer, Form.blank(), password_form=form)
    cookies.flash(request, "password_changed")
    return redirect(f"{ACCOUNT}#password")


@routes.post(f"{ACCOUNT}/telegram")
@signed_in
async def telegram(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    try:
        link: TelegramLink = await ask(request, "auth", CreateTelegramLink(user_id=viewer.user_id))
    except TelegramNotConfigured:
        return await _account_page(request, viewer, Form.blank(), telegram_off=True, status=409)
    return await _account_page(request, viewer, Form.blank(), link=link)


async def _account_page(
    request: web.Request,
    viewer: Viewer,
    form: Form,
    *,
    link: TelegramLink | None = None,
    telegram_off: bool = False,
    status: int | None = None,
    password_form: Form | None = None,
) -> web.Response:
    user: UserView = await ask(request, "auth", GetUser(user_id=viewer.user_id))
    found: SessionList = await ask(request, "auth", ListSessions(user_id=viewer.user_id))
    listed = [
        {
            "id": session.id,
            "device": device_of(session.user_agent),
            "created_at": session.created_at,
            "last_used_at": session.last_used_at,
            "current": session.id == viewer.session_id,
        }
        for session in sorted(found.items, key=lambda s: s.last_used_at, reverse=True)
    ]
    listed.sort(key=lambda item: not item["current"])  # this browser first
    shown = password_form if password_form is not None and password_form.refused else form
    if not form.refused:
        form = Form.blank(name=user.name, phone=user.phone or "")
    return await render(
        request,
        "account.html",
        {
            "title": "Your account",
            "section": "account",
            "user": user,
            "form": form,
            "sessions": listed,
            "link": link,
            "qr": qr_svg(link.url, title="QR code of the Telegram link")
            if link is not None
            else None,
            "telegram_off": telegram_off,
            "password_form": password_form or Form.blank(),
        },
        status=status or shown.status,
        headers=shown.headers,
    )
