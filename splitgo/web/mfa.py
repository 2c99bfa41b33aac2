"""Two-factor sign-in over JSON: TOTP with recovery codes (issue 19).

- `GET /api/v1/me/mfa`: whether TOTP is on, and how many recovery codes are left;
- `POST /api/v1/me/mfa/totp`: a fresh secret, pending: its `otpauth://` URI (for a QR code)
  and the secret itself (to type in), 201;
- `POST /api/v1/me/mfa/totp/confirm` `{code}`: a current code turns TOTP on; 200 with ten
  recovery codes, shown this once. The caller's session counts as having passed the second
  factor from its next refresh on;
- `POST /api/v1/me/mfa/totp/disable` `{password}` or `{code}`: off, 204;
- `POST /api/v1/me/mfa/recovery-codes` `{password}` or `{code}`: new codes, 201;
- `POST /api/v1/auth/login/mfa` `{mfa_token, code}`: the second step of a sign-in. When the
  account has TOTP on, `POST /api/v1/auth/login` (and the social callback) answer 202 with
  `{mfa_token, expires_in, methods}` instead of tokens; this route answers the TokenPair.

A wrong code is 422 `wrong_mfa_code` at `$.code`, a used one 422 `mfa_code_reused`; five
wrong ones in a row are 429 `too_many_attempts` with Retry-After.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from actors.auth.messages import (
    CompleteMfaLogin,
    ConfirmTotp,
    DisableTotp,
    GetMfaStatus,
    MfaStatus,
    RecoveryCodes,
    RegenerateRecoveryCodes,
    StartTotpSetup,
    TokenPair,
    TotpSetup,
)
from splitgo.web.actors import ask
from splitgo.web.auth import AnyPassword, Token, client_of, tokens_body
from splitgo.web.declare import documented
from splitgo.web.problems import json_response, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class CodeBody(msgspec.Struct, forbid_unknown_fields=True):
    """A code from the authenticator app (six digits)."""

    code: Code


class ProofBody(msgspec.Struct, forbid_unknown_fields=True):
    """The password, or a current code (from the app, or a recovery code)."""

    password: AnyPassword | None = None
    code: Code | None = None


class MfaLoginBody(msgspec.Struct, forbid_unknown_fields=True):
    """The challenge the login answered, and a code from the app or a recovery code."""

    mfa_token: Token
    code: Code


class RecoveryCodesReply(msgspec.Struct):
    """One-time recovery codes, shown this once: each signs in once instead of a code."""

    recovery_codes: list[str]


@routes.get("/api/v1/me/mfa")
@documented(summary="Your two-factor sign-in", tags=["auth"], responses={200: MfaStatus})
async def mfa_status(request: web.Request) -> web.Response:
    claims = authenticate(request)
    status: MfaStatus = await ask(request, "auth", GetMfaStatus(user_id=claims.sub))
    return json_response(to_json(status))


@routes.post("/api/v1/me/mfa/totp")
@documented(
    summary="Start setting up an authenticator app",
    description="A fresh secret, pending until confirmed with a code: `uri` for a QR code, "
    "`secret` to type in. Already on: 409 `mfa_already_enabled`.",
    tags=["auth"],
    responses={201: TotpSetup},
    errors=[409],
)
async def start_totp(request: web.Request) -> web.Response:
    claims = authenticate(request)
    setup: TotpSetup = await ask(request, "auth", StartTotpSetup(user_id=claims.sub))
    return json_response(to_json(setup), status=201)


@routes.post("/api/v1/me/mfa/totp/confirm")
@documented(
    summary="Turn two-factor sign-in on",
    description="With a current code of the pending secret; answers ten recovery codes, "
    "shown this once. Refresh your tokens: they then say `otp` in `amr`. A wrong code: 422 "
    "`wrong_mfa_code`; no setup waiting: 409 `mfa_not_enabled`.",
    tags=["auth"],
    body=CodeBody,
    responses={200: RecoveryCodesReply},
    errors=[409, 429],
)
async def confirm_totp(request: web.Request, body: CodeBody) -> web.Response:
    claims = authenticate(request)
    codes: RecoveryCodes = await ask(
        request, "auth", ConfirmTotp(user_id=claims.sub, code=body.code, session_id=claims.sid)
    )
    return json_response({"recovery_codes": codes.codes})


@routes.post("/api/v1/me/mfa/totp/disable")
@documented(
    summary="Turn two-factor sign-in off",
    description="With the password or a current code; the recovery codes go too. A wrong "
    "one: 422 at its field; not on: 409 `mfa_not_enabled`.",
    tags=["auth"],
    body=ProofBody,
    responses={204: None},
    errors=[409, 429],
)
async def disable_totp(request: web.Request, body: ProofBody) -> web.Response:
    claims = authenticate(request)
    await ask(
        request,
        "auth",
        DisableTotp(user_id=claims.sub, password=body.password, code=body.code),
    )
    return web.Response(status=204)


@routes.post("/api/v1/me/mfa/recovery-codes")
@documented(
    summary="New recovery codes",
    description="With the password or a current code; the old codes stop working.",
    tags=["auth"],
    body=ProofBody,
    responses={201: RecoveryCodesReply},
    errors=[409, 429],
)
async def regenerate_codes(request: web.Request, body: ProofBody) -> web.Response:
    claims = authenticate(request)
    codes: RecoveryCodes = await ask(
        request,
        "auth",
        RegenerateRecoveryCodes(user_id=claims.sub, password=body.password, code=body.code),
    )
    return json_response({"recovery_codes": codes.codes}, status=201)


@routes.post("/api/v1/auth/login/mfa")
@documented(
    summary="Finish a sign-in with a code",
    description="The `mfa_token` the login answered (202) and a code from the app or a "
    "recovery code. Expired or used token: 401 `invalid_mfa_token`; a wrong code: 422 "
    "`wrong_mfa_code`; a used one: 422 `mfa_code_reused`; five wrong in a row: 429.",
    tags=["auth"],
    auth="none",
    body=MfaLoginBody,
    responses={200: TokenPair},
    errors=[401, 429],
)
async def login_mfa(request: web.Request, body: MfaLoginBody) -> web.Response:
    ip, agent = client_of(request)
    message = CompleteMfaLogin(mfa_token=body.mfa_token, code=body.code, ip=ip, user_agent=agent)
    pair: TokenPair = await ask(request, "auth", message)
    return json_response(tokens_body(pair))
