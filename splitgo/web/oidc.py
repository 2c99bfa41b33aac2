"""splitgo as an OpenID Connect provider, the edge for the apps: discovery, the public
keys, the token endpoint and userinfo. The authorization endpoint, which people see, is a
page (splitgo/pages/authorize.py); the apps are registered through
splitgo/web/oidc_clients.py.

- `GET /.well-known/openid-configuration`: the issuer's metadata (the node's public URL);
- `GET /.well-known/jwks.json`: the public keys every token splitgo signs verifies with;
- `POST /oauth2/token`: a form (RFC 6749 4.1.3, 6); the client proves itself with HTTP
  Basic (client_secret_basic) or in the form (client_secret_post), a public client by
  its client_id and PKCE alone. Errors are RFC 6749 5.2 JSON (`invalid_grant`, ...);
  too many requests from an address, or refusals of a client: 429 `slow_down` with
  Retry-After (splitgo/web/oidc_limits.py);
- `GET|POST /oauth2/userinfo`: the claims an app's access token (bearer) may see.

An app's access token says `typ: oidc_access`; our own API reads `typ: access` only, so
it never accepts one.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import msgspec
import structlog
from aiohttp import web

from actors.auth.messages import (
    JWT_ALGORITHM,
    OIDC_SCOPES,
    TOKEN_TYPE_OIDC_ACCESS,
    ExchangeOidcCode,
    GetOidcUserInfo,
    InvalidField,
    InvalidToken,
    OidcError,
    OidcTokens,
    OidcUserInfo,
    RefreshOidcTokens,
)
from splitgo.web.actors import ask
from splitgo.web.declare import Content, Verbatim, documented
from splitgo.web.keys import SERVICES
from splitgo.web.oidc_limits import TOKEN_LIMITS
from splitgo.web.problems import ProblemError, encode_json
from splitgo.web.security import bearer_token

log = structlog.get_logger("splitgo.web.oidc")
routes = web.RouteTableDef()

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"
USERINFO_PATH = "/oauth2/userinfo"
FORM = "application/x-www-form-urlencoded"
# what apps may keep a copy of: keys rotate slowly, and a new one is listed before use
PUBLIC_CACHE = "public, max-age=300"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CLAIMS = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash")
PROFILE_CLAIMS = ("name", "email", "email_verified")


class TokenForm(msgspec.Struct):
    """The token endpoint's form (application/x-www-form-urlencoded)."""

    grant_type: str
    code: str | None = None
    redirect_uri: str | None = None
    code_verifier: str | None = None
    refresh_token: str | None = None
    scope: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


class TokenReply(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    id_token: str
    scope: str
    refresh_token: str | None = None


class OAuthErrorReply(msgspec.Struct):
    """RFC 6749 5.2."""

    error: str
    error_description: str


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # not problems.JsonReply: these answers are the protocol's, nobody's names go in
    return web.Response(
        body=encode_json(data), status=status, content_type="application/json", headers=headers
    )


def oauth_error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> web.Response:
    """An RFC 6749 5.2 error answer."""
    body = {"error": error, "error_description": description}
    return _json(body, status, {**NO_STORE, **(headers or {})})


def issuer_of(request: web.Request) -> str:
    return request.app[SERVICES].public_url.rstrip("/")


# ── discovery ─────────────────────────────────────────────────────────────────────────


def discovery_document(issuer: str) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0's metadata for this issuer."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}{AUTHORIZE_PATH}",
        "token_endpoint": f"{issuer}{TOKEN_PATH}",
        "userinfo_endpoint": f"{issuer}{USERINFO_PATH}",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [JWT_ALGORITHM],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(OIDC_SCOPES),
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "claims_supported": [*CLAIMS, *PROFILE_CLAIMS],
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": True,
    }


@routes.get(DISCOVERY_PATH)
@documented(
    summary="OpenID Connect discovery",
    description="The issuer's metadata: its endpoints, scopes, and what it signs with.",
    tags=["openid"],
    auth="none",
    actor=False,
    responses={200: dict[str, Any]},
)
async def openid_configuration(request: web.Request) -> web.Response:
    return _json(discovery_document(issuer_of(request)), headers={"Cache-Control": PUBLIC_CACHE})


@routes.get(JWKS_PATH)
@documented(
    summary="The public signing keys",
    description="The JWK Set (ES256, P-256) that verifies access tokens and ID tokens; a "
    "new key is listed here before it signs anything.",
    tags=["openid"],
    auth="none",
    actor=False,
    responses={200: dict[str, Any]},
    errors=[503],
)
async def jwks(request: web.Request) -> web.Response:
    verifier = request.app[SERVICES].verifier
    if verifier is None:
        raise ProblemError(503, "unavailable", "this node does not serve the signing keys")
    return _json(verifier.jwks(), headers={"Cache-Control": PUBLIC_CACHE})


# ── the token endpoint ────────────────────────────────────────────────────────────────


class _Refused(Exception):
    """An answer of the token endpoint's own, before any actor is asked."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _form(request: web.Request, raw: bytes) -> dict[str, str]:
    """The form's parameters (each at most once, RFC 6749 3.2)."""
    if request.content_type != FORM:
        raise _Refused("invalid_request", f"send the parameters as {FORM}")
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise _Refused("invalid_request", "the form is not valid UTF-8") from None
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise _Refused("invalid_request", f"parameter {repeated[0]} is repeated")
    return {name: values[0] for name, values in parsed.items()}


def _basic(request: web.Request) -> tuple[str, str] | None:
    """(client_id, client_secret) of an `Authorization: Basic` header (RFC 6749 2.3.1:
    each form-urlencoded before base64)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _Refused("invalid_client", "the Basic credentials are malformed") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise _Refused("invalid_client", "the Basic credentials are malformed")
    return unquote_plus(client_id), unquote_plus(secret)


def _client(request: web.Request, form: dict[str, str]) -> tuple[str, str | None]:
    """Who the client says it is, and its secret (None for a public client)."""
    basic = _basic(request)
    if basic is not None:
        if "client_secret" in form:
            raise _Refused("invalid_request", "use one way to authenticate the client")
        if form.get("client_id", basic[0]) != basic[0]:
            raise _Refused("invalid_client", "client_id differs from the Basic credentials")
        return basic
    client_id = form.get("client_id", "")
    if not client_id:
        raise _Refused("invalid_client", "the client is not authenticated")
    return client_id, form.get("client_secret") or None


def _grant_message(
    form: dict[str, str], client_id: str, secret: str | None
) -> ExchangeOidcCode | RefreshOidcTokens:
    grant = form.get("grant_type", "")
    if grant == "authorization_code":
        missing = [p for p in ("code", "redirect_uri", "code_verifier") if not form.get(p)]
        if missing:
            raise _Refused("invalid_request", f"{missing[0]} is required")
        return ExchangeOidcCode(
            client_id=client_id,
            client_secret=secret,
            code=form["code"],
            redirect_uri=form["redirect_uri"],
            code_verifier=form["code_verifier"],
        )
    if grant == "refresh_token":
        if not form.get("refresh_token"):
            raise _Refused("invalid_request", "refresh_token is required")
        return RefreshOidcTokens(
            client_id=client_id,
            client_secret=secret,
            refresh_token=form["refresh_token"],
            scope=form.get("scope") or None,
        )
    if not grant:
        raise _Refused("invalid_request", "grant_type is required")
    raise _Refused("unsupported_grant_type", "grant_type is authorization_code or refresh_token")


@routes.post(TOKEN_PATH)
@documented(
    summary="The OpenID Connect token endpoint",
    description="grant_type=authorization_code (code, redirect_uri, code_verifier) or "
    "refresh_token (refresh_token, scope?). The client authenticates with HTTP Basic or "
    "client_id and client_secret in the form; a public client sends client_id only. Errors "
    "are RFC 6749 JSON: `invalid_grant` (a bad, spent, expired or reused code or refresh "
    "token, a wrong PKCE verifier or redirect URI), `invalid_client` (401), "
    "`invalid_request`, `invalid_scope`, `unsupported_grant_type`; 429 `slow_down` with "
    "Retry-After past 10 x SPLITGO_RATE_LIMIT requests a minute from one address, or "
    "SPLITGO_RATE_LIMIT refused ones a minute of one client_id.",
    tags=["openid"],
    auth="none",
    body=Verbatim(TokenForm),
    body_media_type=FORM,
    responses={200: TokenReply, 400: OAuthErrorReply, 401: OAuthErrorReply, 429: OAuthErrorReply},
)
async def token(request: web.Request, raw: bytes) -> web.Response:
    limits = request.app.get(TOKEN_LIMITS)
    if limits is not None and (wait := limits.address_wait(request.remote or "unknown")):
        return _slow_down(wait, None, "too many token requests from your address")
    try:
        form = _form(request, raw)
        client_id, secret = _client(request, form)
    except _Refused as refused:
        return _refusal(request, refused.error, refused.description)
    if limits is not None and (wait := limits.client_wait(client_id)):
        return _slow_down(wait, client_id, "too many refused token requests of this client")
    try:
        message = _grant_message(form, client_id, secret)
        tokens: OidcTokens = await ask(request, "auth", message)
    except (_Refused, OidcError, InvalidField) as error:
        if limits is not None:
            limits.refused(client_id)
        if isinstance(error, _Refused):
            return _refusal(request, error.error, error.description)
        if isinstance(error, OidcError):
            return _refusal(request, error.error, error.message)
        return oauth_error("invalid_request", error.message)  # a parameter past its bound
    body = {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "expires_in": tokens.expires_in,
        "id_token": tokens.id_token,
        "scope": tokens.scope,
    }
    if tokens.refresh_token is not None:
        body["refresh_token"] = tokens.refresh_token
    return _json(body, headers=NO_STORE)


def _slow_down(seconds: int, client_id: str | None, description: str) -> web.Response:
    log.warning("oauth_token_rate_limited", client_id=client_id, retry_after=seconds)
    return oauth_error(
        "slow_down", f"{description}: try again in {seconds} s", 429, {"Retry-After": str(seconds)}
    )


def _refusal(request: web.Request, error: str, description: str) -> web.Response:
    if error == "invalid_client":
        # RFC 6749 5.2: 401, with the scheme the client may use
        return oauth_error(error, description, 401, {"WWW-Authenticate": 'Basic realm="splitgo"'})
    return oauth_error(error, description)


# ── userinfo ──────────────────────────────────────────────────────────────────────────


def _bearer_refusal(description: str) -> web.Response:
    challenge = f'Bearer realm="splitgo", error="invalid_token", error_description="{description}"'
    return oauth_error("invalid_token", description, 401, {"WWW-Authenticate": challenge})


@routes.get(USERINFO_PATH)
@routes.post(USERINFO_PATH)
@documented(
    summary="OpenID Connect userinfo",
    description="With an app's access token (Authorization: Bearer): `sub`, plus `name` "
    "with the profile scope and `email`, `email_verified` with the email scope. A token "
    "that is not an app's, expired, or of a revoked app: 401 `invalid_token`.",
    tags=["openid"],
    auth="none",
    responses={
        200: OidcUserInfo,
        401: Content(OAuthErrorReply, headers={"WWW-Authenticate": ("Bearer error", True)}),
    },
)
async def userinfo(request: web.Request) -> web.Response:
    token = bearer_token(request)
    verifier = request.app[SERVICES].verifier
    if token is None or verifier is None:
        return _bearer_refusal("send Authorization: Bearer <access token>")
    try:
        claims = verifier.verify_jwt(token, typ=TOKEN_TYPE_OIDC_ACCESS)
        message = GetOidcUserInfo(
            user_id=str(claims.get("sub", "")),
            client_id=str(claims.get("aud", "")),
            grant_id=str(claims.get("gid", "")),
            scopes=str(claims.get("scope", "")).split(),
        )
        info: OidcUserInfo = await ask(request, "auth", message)
    except (InvalidToken, InvalidField):
        return _bearer_refusal("the access token is not valid")
    body: dict[str, Any] = {"sub": info.sub}
    if info.name is not None:
        body["name"] = info.name
    if info.email is not None:
        body["email"] = info.email
        body["email_verified"] = bool(info.email_verified)
    return _json(body, headers=NO_STORE)
