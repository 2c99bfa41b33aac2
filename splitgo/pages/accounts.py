"""Accounts: sign up, confirm the email address, forget and reset a password.

Each form builds the JSON route's message from the route's body struct (`Register`,
`VerifyEmail`, `ForgotPassword`, `ResetPassword`) and counts against the route's rate
limit. The links of auth's mails open here: `/verify-email?token=` shows a button (opening
the link changes nothing, so a mail scanner cannot use it up) whose POST verifies, and
`/reset-password?token=` a form for the new password.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from actors.auth.messages import (
    ForgotPassword,
    InvalidField,
    InvalidToken,
    Register,
    ResetPassword,
    UserView,
    VerifyEmail,
)
from splitgo.pages import cookies, sessions
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import HOME, SIGN_IN, spend
from splitgo.pages.keys import CONFIG
from splitgo.pages.render import redirect, render, render_with_form
from splitgo.web.actors import ask
from splitgo.web.auth import ForgotBody, RegisterBody, ResetBody, TokenBody, client_of
from splitgo.web.problems import ProblemError

routes = web.RouteTableDef()

BAD_LINK = "This link is not valid"
BAD_LINK_TEXT = "It may have expired or been used already."


@routes.get("/sign-up")
async def sign_up_page(request: web.Request) -> web.StreamResponse:
    if await sessions.viewer_of(request) is not None:
        return redirect(HOME)
    return await _sign_up_form(request, Form.blank())


@routes.post("/sign-up")
async def sign_up(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    try:
        spend(request, "register")
        body = form.parse(RegisterBody)
        ip, _ = client_of(request)
        message = Register(
            email=body.email,
            password=body.password,
            name=body.name,
            ip=ip,
            idempotency=form.idempotency(request, body),
        )
        user: UserView = await ask(request, "auth", message)
    except REFUSALS as error:
        form.refuse(error)
        return await _sign_up_form(request, form)
    return await render(
        request,
        "notice.html",
        {
            "title": "Check your email",
            "text": f"We sent a link to {user.email}. Open it to confirm your address, "
            "then sign in.",
            "action": (f"{SIGN_IN}?{urlencode({'email': user.email})}", "Sign in"),
        },
        status=201,
    )


@routes.get("/verify-email")
async def verify_email_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    if not token:
        return await _bad_link(request)
    context = {"title": "Confirm your email", "form": Form.blank(token=token)}
    return await render(request, "verify_email.html", context)


@routes.post("/verify-email")
async def verify_email(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = form.parse(TokenBody)
        await ask(request, "auth", VerifyEmail(token=body.token))
    except (InvalidToken, InvalidField):
        return await _bad_link(request)
    except ProblemError as error:
        if error.status != 422:
            raise
        return await _bad_link(request)
    signed_in = await sessions.viewer_of(request) is not None
    return await render(
        request,
        "notice.html",
        {
            "title": "Email verified",
            "text": "Thank you — your address is confirmed.",
            "action": (HOME, "Go to your home page") if signed_in else (SIGN_IN, "Sign in"),
        },
    )


@routes.get("/forgot-password")
async def forgot_page(request: web.Request) -> web.StreamResponse:
    form = Form.blank(email=request.query.get("email", "")[:254])
    return await _forgot_form(request, form)


@routes.post("/forgot-password")
async def forgot(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    try:
        spend(request, "password")
        body = form.parse(ForgotBody)
        await ask(request, "auth", ForgotPassword(email=body.email))
    except REFUSALS as error:
        form.refuse(error)
        return await _forgot_form(request, form)
    return await render(
        request,
        "notice.html",
        {
            "title": "Check your email",
            "text": f"If an account uses {body.email}, we sent it a link to choose a new "
            "password. It also goes to Telegram when your account is linked there.",
            "action": (SIGN_IN, "Back to sign in"),
        },
        status=202,
    )


@routes.get("/reset-password")
async def reset_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    if not token:
        return await _bad_link(request)
    return await _reset_form(request, Form.blank(token=token))


@routes.post("/reset-password")
async def reset(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    try:
        spend(request, "password")
        body = form.parse(ResetBody)
        await ask(request, "auth", ResetPassword(token=body.token, password=body.password))
    except REFUSALS as error:
        form.refuse(error, inputs={"$.token": None})
        return await _reset_form(request, form)
    # auth ended every session of the user: this browser's too
    if sessions.held_tokens(request) is not None:
        await sessions.sign_out(request)
    cookies.flash(request, "password_reset")
    return redirect(SIGN_IN)


async def _sign_up_form(request: web.Request, form: Form) -> web.Response:
    return await render_with_form(
        request,
        "sign_up.html",
        {"title": "Create your account", "form": form, "offered": request.app[CONFIG].offered()},
        form,
    )


async def _forgot_form(request: web.Request, form: Form) -> web.Response:
    return await render_with_form(
        request,
        "forgot_password.html",
        {"title": "Forgot your password?", "form": form},
        form,
    )


async def _reset_form(request: web.Request, form: Form) -> web.Response:
    return await render_with_form(
        request,
        "reset_password.html",
        {"title": "Choose a new password", "form": form},
        form,
    )


async def _bad_link(request: web.Request) -> web.Response:
    return await render(
        request,
        "notice.html",
        {"title": BAD_LINK, "text": BAD_LINK_TEXT, "action": ("/", "Go to the start page")},
        status=400,
    )
