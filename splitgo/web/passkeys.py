"""The passkey routes (issue 19): sign in with a passkey, and the signed-in user's passkeys.

Each ceremony is two calls: the options (for navigator.credentials.create() or .get()),
then the browser's credential as its JSON form (`PublicKeyCredential.toJSON()`: binary
fields base64url). The challenge lives server-side, single-use, for 5 minutes, and is found
again from the credential itself, so no state travels between the calls.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from actors.auth.messages import (
    PASSKEY_NAME_MAX,
    DeletePasskey,
    FinishPasskeyRegistration,
    FinishPasskeySignIn,
    ListPasskeys,
    PasskeyList,
    PasskeyOptions,
    PasskeyView,
    RenamePasskey,
    StartPasskeyRegistration,
    StartPasskeySignIn,
    TokenPair,
)
from splitgo.web.actors import ask
from splitgo.web.auth import client_of, tokens_body
from splitgo.web.declare import Raw, documented, page
from splitgo.web.problems import json_response, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

Credential = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="The browser's PublicKeyCredential as JSON (`toJSON()`): id, rawId, "
        "type, response (binary fields base64url), clientExtensionResults."
    ),
]
PasskeyNameText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=PASSKEY_NAME_MAX,
        description="what the user calls this passkey, such as Phone",
    ),
]


class PasskeyRegistrationBody(msgspec.Struct, forbid_unknown_fields=True):
    """The browser's answer to create(), and the name the user gives the passkey."""

    credential: Credential
    name: PasskeyNameText


class PasskeySignInBody(msgspec.Struct, forbid_unknown_fields=True):
    """The browser's assertion from get()."""

    credential: Credential


class PasskeyRenameBody(msgspec.Struct, forbid_unknown_fields=True):
    name: PasskeyNameText


CREATION_OPTIONS = Raw(
    {
        "type": "object",
        "description": "PublicKeyCredentialCreationOptions as JSON (binary fields base64url): "
        "rp, user, challenge, pubKeyCredParams, timeout, excludeCredentials, "
        "authenticatorSelection, attestation.",
    }
)
REQUEST_OPTIONS = Raw(
    {
        "type": "object",
        "description": "PublicKeyCredentialRequestOptions as JSON (binary fields base64url): "
        "challenge, timeout, rpId, allowCredentials (empty: discoverable), userVerification.",
    }
)


def credential_text(credential: dict[str, Any]) -> str:
    """The credential as the JSON text the auth actor verifies."""
    return msgspec.json.encode(credential).decode()


def options_reply(options: PasskeyOptions) -> web.Response:
    return json_response(msgspec.json.decode(options.options))


@routes.post("/api/v1/auth/passkeys/sign-in/options")
@documented(
    summary="Options to sign in with a passkey",
    description="For navigator.credentials.get(): a single-use challenge good for 5 minutes, "
    "naming no credential (the authenticator offers the passkeys it holds for this site). "
    "No public URL is configured: 409 `passkeys_unavailable`.",
    tags=["auth"],
    auth="none",
    responses={200: REQUEST_OPTIONS},
    errors=[409],
)
async def sign_in_options(request: web.Request) -> web.Response:
    options: PasskeyOptions = await ask(request, "auth", StartPasskeySignIn())
    return options_reply(options)


@routes.post("/api/v1/auth/passkeys/sign-in")
@documented(
    summary="Sign in with a passkey",
    description="The assertion from navigator.credentials.get(): a new session. Another "
    "site's response, a bad signature or an expired challenge: 422 `passkey_rejected`; "
    "a challenge used before or a signature counter that did not advance: 401 "
    "`passkey_replayed`; a passkey not registered here: 401 `unknown_passkey`.",
    tags=["auth"],
    auth="none",
    body=PasskeySignInBody,
    responses={200: TokenPair},
    errors=[401, 409],
)
async def sign_in(request: web.Request, body: PasskeySignInBody) -> web.Response:
    ip, agent = client_of(request)
    message = FinishPasskeySignIn(
        credential=credential_text(body.credential), ip=ip, user_agent=agent
    )
    pair: TokenPair = await ask(request, "auth", message)
    return json_response(tokens_body(pair))


@routes.post("/api/v1/me/passkeys/options")
@documented(
    summary="Options to add a passkey",
    description="For navigator.credentials.create(): your stable user handle, your passkeys "
    "excluded, a resident key and user verification preferred; the challenge is single-use "
    "for 5 minutes.",
    tags=["auth"],
    responses={200: CREATION_OPTIONS},
    errors=[404, 409],
)
async def registration_options(request: web.Request) -> web.Response:
    claims = authenticate(request)
    options: PasskeyOptions = await ask(
        request, "auth", StartPasskeyRegistration(user_id=claims.sub)
    )
    return options_reply(options)


@routes.post("/api/v1/me/passkeys")
@documented(
    summary="Add a passkey",
    description="The answer of navigator.credentials.create() and a name: 201 with the "
    "passkey. A response that does not verify (another origin, a stale challenge): 422 "
    "`passkey_rejected`; a challenge used before: 401 `passkey_replayed`; a credential "
    "already registered: 409 `passkey_exists`.",
    tags=["auth"],
    body=PasskeyRegistrationBody,
    responses={201: PasskeyView},
    errors=[409],
)
async def register(request: web.Request, body: PasskeyRegistrationBody) -> web.Response:
    claims = authenticate(request)
    message = FinishPasskeyRegistration(
        user_id=claims.sub, credential=credential_text(body.credential), name=body.name
    )
    view: PasskeyView = await ask(request, "auth", message)
    return json_response(to_json(view), status=201)


@routes.get("/api/v1/me/passkeys")
@documented(summary="Your passkeys", tags=["auth"], responses={200: page(PasskeyView)})
async def list_passkeys(request: web.Request) -> web.Response:
    claims = authenticate(request)
    listed: PasskeyList = await ask(request, "auth", ListPasskeys(user_id=claims.sub))
    return json_response({"items": to_json(listed.items), "next_cursor": None})


@routes.patch("/api/v1/me/passkeys/{id}")
@documented(
    summary="Rename a passkey",
    tags=["auth"],
    body=PasskeyRenameBody,
    responses={200: PasskeyView},
    errors=[404, 422],
)
async def rename(request: web.Request, body: PasskeyRenameBody) -> web.Response:
    claims = authenticate(request)
    message = RenamePasskey(user_id=claims.sub, passkey_id=request.match_info["id"], name=body.name)
    view: PasskeyView = await ask(request, "auth", message)
    return json_response(to_json(view))


@routes.delete("/api/v1/me/passkeys/{id}")
@documented(
    summary="Delete a passkey",
    description="It signs nobody in any more (remove it from the device too).",
    tags=["auth"],
    responses={204: None},
    errors=[404, 422],
)
async def delete(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask(
        request, "auth", DeletePasskey(user_id=claims.sub, passkey_id=request.match_info["id"])
    )
    return web.Response(status=204)
