"""Passkeys in the web app (issue 19): the account's passkeys page, and signing in with one.

`/account/passkeys` lists the user's passkeys with Rename and Delete (forms: they work
without JavaScript) and "Add a passkey": static/passkeys.js asks for options
(`POST /account/passkeys/options`), has the browser make the credential, and posts it with
the name given (`POST /account/passkeys`). On the sign-in page, "Sign in with a passkey"
does the same with `POST /sign-in/passkey/options` and `POST /sign-in/passkey`, which
starts this browser's session as the password form does (`sessions.sign_in`). Each sends
auth the JSON route's message (splitgo/web/passkeys.py). WebAuthn has no form of its own,
so those four answer the script in JSON: the options, or `{"redirect": ...}`, or
`{"error": ...}` in words with the refusal's status. Every post carries the form's CSRF
token.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from actors.auth.messages import (
    PASSKEY_JSON_MAX,
    DeletePasskey,
    FinishPasskeyRegistration,
    FinishPasskeySignIn,
    ListPasskeys,
    PasskeyList,
    PasskeyOptions,
    RenamePasskey,
    StartPasskeyRegistration,
    StartPasskeySignIn,
    TokenPair,
)
from actors.runtime import DomainError
from splitgo.pages import cookies, sessions
from splitgo.pages.account import device_of
from splitgo.pages.forms import REFUSALS, Form, as_problem, humane, read_form
from splitgo.pages.guards import local_target, signed_in, spend
from splitgo.pages.render import redirect, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask
from splitgo.web.auth import client_of
from splitgo.web.passkeys import PasskeyNameText, PasskeyRenameBody
from splitgo.web.problems import ProblemError, json_response

routes = web.RouteTableDef()

PASSKEYS_PAGE = "/account/passkeys"
SIGN_IN_PASSKEY = "/sign-in/passkey"

cookies.FLASHES.update(
    {
        "passkey_added": "Your passkey is added: sign in with it next time, no password needed.",
        "passkey_renamed": "Your passkey is renamed.",
        "passkey_deleted": "That passkey no longer signs you in. Remove it from the device too.",
    }
)

CredentialText = Annotated[str, msgspec.Meta(min_length=2, max_length=PASSKEY_JSON_MAX)]


class PasskeyForm(msgspec.Struct, forbid_unknown_fields=True):
    """The add form: the name typed, and the credential the script put in (JSON text)."""

    name: PasskeyNameText
    credential: CredentialText


class PasskeySignInForm(msgspec.Struct, forbid_unknown_fields=True):
    credential: CredentialText
    next: str = ""


def refused(error: ProblemError | DomainError) -> web.Response:
    """A refusal for the script: its words, with the status the JSON route would answer."""
    problem = as_problem(error)
    words = humane(problem.errors[0].message if problem.errors else problem.detail)
    return json_response({"error": words}, status=problem.status)


def options_of(answer: PasskeyOptions) -> web.Response:
    return json_response(msgspec.json.decode(answer.options))


# ── the account's passkeys ─────────────────────────────────────────────────────────────


@routes.get(PASSKEYS_PAGE)
@signed_in
async def passkeys_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _page(request, viewer)


@routes.post(f"{PASSKEYS_PAGE}/options")
@signed_in
async def registration_options(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    try:
        await read_form(request)
        answer: PasskeyOptions = await ask(
            request, "auth", StartPasskeyRegistration(user_id=viewer.user_id)
        )
    except REFUSALS as error:
        return refused(error)
    return options_of(answer)


@routes.post(PASSKEYS_PAGE)
@signed_in
async def add(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    try:
        form = await read_form(request)
        body = form.parse(PasskeyForm)
        message = FinishPasskeyRegistration(
            user_id=viewer.user_id, credential=body.credential, name=body.name
        )
        await ask(request, "auth", message)
    except REFUSALS as error:
        return refused(error)
    cookies.flash(request, "passkey_added")
    return json_response({"redirect": PASSKEYS_PAGE})


@routes.post(f"{PASSKEYS_PAGE}/{{id}}/rename")
@signed_in
async def rename(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    passkey_id = request.match_info["id"]
    try:
        body = form.parse(PasskeyRenameBody)
        await ask(
            request,
            "auth",
            RenamePasskey(user_id=viewer.user_id, passkey_id=passkey_id, name=body.name),
        )
    except REFUSALS as error:
        form.refuse(error)
        return await _page(request, viewer, renaming=passkey_id, rename_form=form)
    cookies.flash(request, "passkey_renamed")
    return redirect(PASSKEYS_PAGE)


@routes.post(f"{PASSKEYS_PAGE}/{{id}}/delete")
@signed_in
async def delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    passkey_id = request.match_info["id"]
    await ask(request, "auth", DeletePasskey(user_id=viewer.user_id, passkey_id=passkey_id))
    cookies.flash(request, "passkey_deleted")
    return redirect(PASSKEYS_PAGE)


async def _page(
    request: web.Request,
    viewer: Viewer,
    *,
    renaming: str | None = None,
    rename_form: Form | None = None,
) -> web.Response:
    found: PasskeyList = await ask(request, "auth", ListPasskeys(user_id=viewer.user_id))
    form = rename_form or Form.blank()
    context: dict[str, Any] = {
        "title": "Passkeys",
        "section": "account",
        "passkeys": found.items,
        # a name to start from: this browser's, which is often the device the passkey is on
        "add_form": Form.blank(name=device_of(request.headers.get("User-Agent"))[:60]),
        "renaming": renaming,
        "rename_form": form,
    }
    return await render_with_form(request, "passkeys.html", context, form)


# ── signing in ─────────────────────────────────────────────────────────────────────────


@routes.post(f"{SIGN_IN_PASSKEY}/options")
async def sign_in_options(request: web.Request) -> web.StreamResponse:
    try:
        await read_form(request)
        spend(request, "login")
        answer: PasskeyOptions = await ask(request, "auth", StartPasskeySignIn())
    except REFUSALS as error:
        return refused(error)
    return options_of(answer)


@routes.post(SIGN_IN_PASSKEY)
async def sign_in(request: web.Request) -> web.StreamResponse:
    """The assertion the script got from the browser: this browser's new session, as the
    password form starts it."""
    try:
        form = await read_form(request)
        spend(request, "login")
        body = form.parse(PasskeySignInForm)
        ip, agent = client_of(request)
        message = FinishPasskeySignIn(credential=body.credential, ip=ip, user_agent=agent)
        pair: TokenPair = await ask(request, "auth", message)
    except REFUSALS as error:
        return refused(error)
    await sessions.sign_in(request, pair)
    cookies.flash(request, "signed_in")
    return json_response({"redirect": local_target(body.next)})
