"""Two-factor sign-in in the web app (issue 19): the account's page, and the sign-in's code step.

`/account/mfa` sets TOTP up: "Set up" asks auth for a pending secret (`StartTotpSetup`, as
POST /api/v1/me/mfa/totp) and shows it as a QR code drawn here by `segno` (inline SVG, no
style attributes: the strict CSP) with the secret in text, to type into an app; a current
code confirms it (`ConfirmTotp`), and the ten recovery codes are shown on that answer only.
The session that confirmed counts as having passed the second factor: its tokens are
refreshed at once, so an admin reaches the console without signing in again. With TOTP on,
the page makes new recovery codes or turns it off, with the password or a code. Every form
works without JavaScript.

Signing in: when auth answers a password (or social) sign-in with an MfaChallenge, entry.py
hands it to `code_step`, which asks for the code; the challenge travels in a hidden input of
that POST form (never in a URL), and `POST /sign-in/code` sends `CompleteMfaLogin`.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import quote

from aiohttp import web

from actors.auth.messages import (
    REFRESH_TOKEN_SECONDS,
    CompleteMfaLogin,
    ConfirmTotp,
    DisableTotp,
    GetMfaStatus,
    GetUser,
    InvalidMfaToken,
    InvalidToken,
    MfaChallenge,
    MfaStatus,
    RecoveryCodes,
    Refresh,
    RegenerateRecoveryCodes,
    StartTotpSetup,
    TokenPair,
    TokenReused,
    TooManyAttempts,
    TotpSetup,
    UserView,
    provisioning_uri,
    spaced_secret,
)
from splitgo.pages import cookies, sessions
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import SIGN_IN, local_target, signed_in, spend
from splitgo.pages.keys import REFRESHES
from splitgo.pages.qr import qr_svg
from splitgo.pages.render import redirect, render, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask
from splitgo.web.auth import client_of
from splitgo.web.mfa import CodeBody, MfaLoginBody, ProofBody

routes = web.RouteTableDef()

MFA_PAGE = "/account/mfa"
SIGN_IN_CODE = "/sign-in/code"
_SECRET = re.compile(r"^[A-Z2-7]{32}$")

cookies.FLASHES.update(
    {
        "totp_disabled": "Two-factor sign-in is off. Your password alone signs you in again.",
        "mfa_expired": "That sign-in took too long or was already used. Sign in again.",
        "mfa_locked": "Too many wrong codes. Wait a few minutes, then sign in again.",
    }
)


@routes.get(MFA_PAGE)
@signed_in
async def mfa_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _page(request, viewer)


@routes.post(f"{MFA_PAGE}/setup")
@signed_in
async def start_setup(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    try:
        setup: TotpSetup = await ask(request, "auth", StartTotpSetup(user_id=viewer.user_id))
    except REFUSALS as error:
        form = Form()
        form.refuse(error)
        return await _page(request, viewer, form=form)
    return await _page(request, viewer, secret=setup.secret)


@routes.post(f"{MFA_PAGE}/confirm")
@signed_in
async def confirm(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    # the secret this page showed, to show it again after a refusal (auth checks the code
    # against the one it keeps; this one is only drawn)
    shown = form.value("secret") if _SECRET.match(form.value("secret")) else None
    try:
        body = form.parse(CodeBody)
        message = ConfirmTotp(user_id=viewer.user_id, code=body.code, session_id=viewer.session_id)
        codes: RecoveryCodes = await ask(request, "auth", message)
    except REFUSALS as error:
        form.refuse(error)
        form.values.pop("code", None)  # a code is never typed back into a page
        return await _page(request, viewer, form=form, secret=shown)
    await _refresh_now(request)  # this session passed the second factor: its tokens say so
    return await _page(request, viewer, codes=codes.codes, just_enabled=True)


@routes.post(f"{MFA_PAGE}/recovery-codes")
@signed_in
async def regenerate(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        spend(request, "password")
        body = form.parse(ProofBody)
        message = RegenerateRecoveryCodes(
            user_id=viewer.user_id, password=body.password, code=body.code
        )
        codes: RecoveryCodes = await ask(request, "auth", message)
    except REFUSALS as error:
        form.refuse(error)
        form.values.pop("code", None)
        return await _page(request, viewer, regenerate_form=form)
    return await _page(request, viewer, codes=codes.codes)


@routes.post(f"{MFA_PAGE}/disable")
@signed_in
async def disable(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        spend(request, "password")
        body = form.parse(ProofBody)
        message = DisableTotp(user_id=viewer.user_id, password=body.password, code=body.code)
        await ask(request, "auth", message)
    except REFUSALS as error:
        form.refuse(error)
        form.values.pop("code", None)
        return await _page(request, viewer, disable_form=form)
    cookies.flash(request, "totp_disabled")
    return redirect(MFA_PAGE)


async def _page(
    request: web.Request,
    viewer: Viewer,
    *,
    form: Form | None = None,
    secret: str | None = None,
    codes: list[str] | None = None,
    just_enabled: bool = False,
    regenerate_form: Form | None = None,
    disable_form: Form | None = None,
) -> web.Response:
    status: MfaStatus = await ask(request, "auth", GetMfaStatus(user_id=viewer.user_id))
    setup = None
    if secret is not None and not status.totp_enabled:
        user: UserView = await ask(request, "auth", GetUser(user_id=viewer.user_id))
        setup = {
            "secret": secret,
            "spaced": spaced_secret(secret),
            "qr": qr_svg(
                provisioning_uri(secret, user.email), title="QR code for your authenticator app"
            ),
        }
    refused = next((f for f in (form, regenerate_form, disable_form) if f and f.refused), None)
    return await render(
        request,
        "mfa.html",
        {
            "title": "Two-factor sign-in",
            "section": "account",
            "status": status,
            "setup": setup,
            "codes": codes,
            "just_enabled": just_enabled,
            "form": form or Form(),
            "regenerate_form": regenerate_form or Form(),
            "disable_form": disable_form or Form(),
        },
        status=refused.status if refused else 200,
        headers=refused.headers if refused else None,
    )


async def _refresh_now(request: web.Request) -> None:
    """Exchange this browser's tokens now (once per token on this node, as the pages'
    refresh does), so the new access token carries what the session just gained."""
    held = sessions.held_tokens(request)
    if held is None:
        return
    ip, agent = client_of(request)

    async def fetch() -> TokenPair:
        pair: TokenPair = await ask(
            request, "auth", Refresh(refresh_token=held[1], ip=ip, user_agent=agent)
        )
        return pair

    with contextlib.suppress(InvalidToken, TokenReused):  # the next page signs them out
        pair = await request.app[REFRESHES].exchange(held[1], fetch)
        cookies.queue(
            request,
            sessions.COOKIE,
            f"{pair.access_token}~{pair.refresh_token}",
            REFRESH_TOKEN_SECONDS,
        )


# ── the sign-in's second step ──────────────────────────────────────────────────────────


async def code_step(
    request: web.Request, challenge: MfaChallenge | None, target: str, form: Form | None = None
) -> web.Response:
    """The page asking for the code after a right password (or social sign-in)."""
    if form is None:
        form = Form.blank(next=target)
    if challenge is not None:
        form.values["mfa_token"] = [challenge.mfa_token]
    return await render_with_form(
        request,
        "sign_in_code.html",
        {"title": "Enter your code", "form": form},
        form,
    )


@routes.post(SIGN_IN_CODE)
async def sign_in_code(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    target = local_target(form.value("next"))
    try:
        spend(request, "login")
        body = form.parse(MfaLoginBody)
        ip, agent = client_of(request)
        message = CompleteMfaLogin(
            mfa_token=body.mfa_token, code=body.code, ip=ip, user_agent=agent
        )
        pair: TokenPair = await ask(request, "auth", message)
    except InvalidMfaToken:
        # the challenge is over (expired or used): back to the password
        cookies.flash(request, "mfa_expired")
        return redirect(f"{SIGN_IN}?next={quote(target)}")
    except TooManyAttempts:
        cookies.flash(request, "mfa_locked")
        return redirect(f"{SIGN_IN}?next={quote(target)}")
    except REFUSALS as error:
        form.refuse(error, inputs={"$.mfa_token": None})
        form.values.pop("code", None)
        return await code_step(request, None, target, form)
    await sessions.sign_in(request, pair)
    cookies.flash(request, "signed_in")
    return redirect(target)
