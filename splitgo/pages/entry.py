"""The way in and out: welcome, sign in (password, or a social provider), sign out.

Each form sends auth the message the JSON route sends (`Login`, `Logout`, `StartOAuth`,
`FinishOAuth`) built from the route's own body struct. A social sign-in's state is bound
to the browser that started it: a cookie holds a digest of it, so a callback link made in
another browser signs nobody in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from actors.auth.messages import (
    FinishOAuth,
    Login,
    MfaChallenge,
    OAuthRedirect,
    StartOAuth,
    TokenPair,
)
from splitgo.pages import cookies, mfa, sessions
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import HOME, local_target, spend
from splitgo.pages.keys import CONFIG
from splitgo.pages.render import redirect, render, render_with_form
from splitgo.web.actors import ask
from splitgo.web.auth import LoginBody, client_of
from splitgo.web.keys import SERVICES

routes = web.RouteTableDef()

OAUTH_COOKIE = "splitgo_oauth"
OAUTH_SECONDS = 600  # as long as auth keeps the state


@routes.get("/")
async def welcome(request: web.Request) -> web.StreamResponse:
    if await sessions.viewer_of(request) is not None:
        return redirect(HOME)
    return await render(request, "welcome.html", {"title": "Share costs with friends"})


@routes.get("/sign-in")
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    target = local_target(request.query.get("next"))
    # prompt=login: an app asked for a new sign-in (pages/authorize.py), so the form shows
    again = request.query.get("prompt") == "login"
    if not again and await sessions.viewer_of(request) is not None:
        return redirect(target)
    form = Form.blank(next=target, email=request.query.get("email", "")[:254])
    return await _sign_in_form(request, form)


@routes.post("/sign-in")
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    try:
        spend(request, "login")
        body = form.parse(LoginBody)
        ip, agent = client_of(request)
        pair: TokenPair | MfaChallenge = await ask(
            request,
            "auth",
            Login(email=body.email, password=body.password, ip=ip, user_agent=agent),
        )
    except REFUSALS as error:
        form.refuse(error)
        return await _sign_in_form(request, form)
    if isinstance(pair, MfaChallenge):  # issue 19: the account has a second factor
        return await mfa.code_step(request, pair, local_target(form.value("next")))
    await sessions.sign_in(request, pair)
    cookies.flash(request, "signed_in")
    return redirect(local_target(form.value("next")))


@routes.post("/sign-out")
async def sign_out(request: web.Request) -> web.StreamResponse:
    await read_form(request)
    await sessions.sign_out(request)
    cookies.flash(request, "signed_out")
    return redirect("/")


@routes.get("/sign-in/{provider}")
async def social_start(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    answer: OAuthRedirect = await ask(
        request, "auth", StartOAuth(provider=provider, redirect_uri=_callback(request, provider))
    )
    state = parse_qs(urlsplit(answer.url).query).get("state", [""])[0]
    target = local_target(request.query.get("next"))
    held = f"{_digest(state)}.{base64.urlsafe_b64encode(target.encode()).decode()}"
    cookies.queue(request, OAUTH_COOKIE, held, OAUTH_SECONDS)
    return redirect(answer.url, status=302)


@routes.get("/sign-in/{provider}/callback")
async def social_callback(request: web.Request) -> web.StreamResponse:
    provider = _provider(request)
    query = request.query
    digest, _, encoded = (cookies.read(request, OAUTH_COOKIE) or "").partition(".")
    cookies.queue(request, OAUTH_COOKIE, None, None)
    form = Form.blank(next=HOME)
    if "error" in query:
        label = request.app[CONFIG].label(provider)
        form.summary.append(f"{label} did not sign you in. Try again.")
        return await _sign_in_form(request, form, status=400)
    state, code = query.get("state", ""), query.get("code", "")
    if not state or not code or not hmac.compare_digest(digest, _digest(state)):
        form.summary.append("This sign-in was not started in this browser. Try again.")
        return await _sign_in_form(request, form, status=400)
    ip, agent = client_of(request)
    message = FinishOAuth(
        provider=provider,
        code=code,
        state=state,
        redirect_uri=_callback(request, provider),
        ip=ip,
        user_agent=agent,
    )
    try:
        pair: TokenPair | MfaChallenge = await ask(request, "auth", message, timeout=20)
    except REFUSALS as error:
        form.refuse(error)
        return await _sign_in_form(request, form)
    if isinstance(pair, MfaChallenge):  # issue 19: the account has a second factor
        return await mfa.code_step(request, pair, local_target(_decoded(encoded)))
    await sessions.sign_in(request, pair)
    cookies.flash(request, "signed_in")
    return redirect(local_target(_decoded(encoded)))


async def _sign_in_form(
    request: web.Request, form: Form, *, status: int | None = None
) -> web.Response:
    offered = request.app[CONFIG].offered()
    return await render_with_form(
        request,
        "sign_in.html",
        {"title": "Sign in", "form": form, "offered": offered},
        form,
        status=status,
    )


def _provider(request: web.Request) -> str:
    provider = request.match_info["provider"]
    if provider not in request.app[CONFIG].providers:
        raise web.HTTPNotFound()
    return provider


def _callback(request: web.Request, provider: str) -> str:
    return f"{request.app[SERVICES].public_url}/sign-in/{provider}/callback"


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _decoded(encoded: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(encoded.encode()).decode()
    except (binascii.Error, ValueError):
        return None
