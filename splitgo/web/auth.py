"""The Auth routes of API.md: accounts, tokens, sessions, social login, /me."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from actors.auth.messages import (
    EMAIL_MAX,
    ChangePassword,
    CreateTelegramLink,
    FinishOAuth,
    ForgotPassword,
    GetUser,
    ListSessions,
    Login,
    Logout,
    MfaChallenge,
    OAuthFailed,
    OAuthRedirect,
    Refresh,
    Register,
    ResetPassword,
    RevokeSession,
    SessionList,
    SessionView,
    StartOAuth,
    TelegramLink,
    TokenPair,
    UpdateUser,
    UserView,
    VerifyEmail,
)
from splitgo.web.actors import ask
from splitgo.web.declare import Content, Derived, documented, idempotency, page
from splitgo.web.idempotency import key_for
from splitgo.web.keys import SERVICES
from splitgo.web.names import renamed
from splitgo.web.problems import json_response, matching, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

# no spaces and no control characters (a NUL cannot even be stored)
Email = Annotated[
    str,
    matching(
        r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$",
        "an email address such as ada@example.com",
        max_length=EMAIL_MAX,
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
NewPassword = Annotated[str, msgspec.Meta(min_length=10, max_length=1024)]
AnyPassword = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Phone = Annotated[
    str,
    matching(
        r"^\+[1-9][0-9]{6,14}$", "a phone number with its country code, such as +4915112345678"
    ),
]


class RegisterBody(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: NewPassword
    name: Name


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: AnyPassword


class RefreshBody(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Token


class TokenBody(msgspec.Struct, forbid_unknown_fields=True):
    token: Token


class ForgotBody(msgspec.Struct, forbid_unknown_fields=True):
    email: Email


class ResetBody(msgspec.Struct, forbid_unknown_fields=True):
    token: Token
    password: NewPassword


class PasswordChangeBody(msgspec.Struct, forbid_unknown_fields=True):
    """The current password, and the new one (the same rules as at sign-up)."""

    current_password: AnyPassword
    password: NewPassword


class UpdateMeBody(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    phone: Phone | None = None


class OAuthCallbackQuery(msgspec.Struct):
    """What the provider appends to the callback: a code and our state, or an error."""

    code: str = ""
    state: str = ""
    error: str = ""
    error_description: str = ""


# what the routes answer, for the OpenAPI document
UserReply = Derived(
    "UserReply",
    UserView,
    add={"user": UserView},
    description="The user, both flat (as GET /me) and under `user`.",
)
SessionItem = Derived(
    "SessionItem",
    SessionView,
    add={"current": bool},
    description="A signed-in session; `current` is the one making the request.",
)


def client_of(request: web.Request) -> tuple[str | None, str | None]:
    """The caller's address and user agent, for login limits and the sessions list."""
    agent = request.headers.get("User-Agent")
    return request.remote, agent[:300] if agent else None


def user_body(user: UserView) -> dict[str, Any]:
    """A user, both flat (as GET /me) and under "user" (as `{user}` in API.md)."""
    fields = to_json(user)
    return {**fields, "user": fields}


def tokens_body(pair: TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
    }


def sign_in_reply(reply: TokenPair | MfaChallenge) -> web.Response:
    """200 with the tokens; 202 with the challenge when the account has a second factor
    (issue 19: finished at POST /api/v1/auth/login/mfa, splitgo/web/mfa.py)."""
    if isinstance(reply, MfaChallenge):
        body = {"mfa_token": reply.mfa_token, "expires_in": reply.expires_in}
        return json_response({**body, "methods": list(reply.methods)}, status=202)
    return json_response(tokens_body(reply))


@routes.post("/api/v1/auth/register")
@documented(
    summary="Create an account",
    description="201 with the user; a verification email is sent. Duplicate email: 409 "
    "`email_taken`; a weak password: 422.",
    tags=["auth"],
    auth="none",
    body=RegisterBody,
    headers=[idempotency(required=False)],
    responses={201: UserReply},
    errors=[409],
)
async def register(request: web.Request, body: RegisterBody) -> web.Response:
    ip, _ = client_of(request)
    message = Register(
        email=body.email,
        password=body.password,
        name=body.name,
        ip=ip,
        # nobody is signed in: the key is scoped to the route (the password is left out)
        idempotency=key_for(request, body, caller=None),
    )
    user: UserView = await ask(request, "auth", message)
    return json_response(user_body(user), status=201)


@routes.post("/api/v1/auth/login")
@documented(
    summary="Sign in",
    description="Wrong credentials (or an unknown email): 401 `invalid_credentials`; too "
    "many failures: 429 with Retry-After. An account with two-factor sign-in on: 202 with "
    "an `mfa_token` for POST /api/v1/auth/login/mfa instead of tokens.",
    tags=["auth"],
    auth="none",
    body=LoginBody,
    responses={200: TokenPair, 202: MfaChallenge},
    errors=[401, 429],
)
async def login(request: web.Request, body: LoginBody) -> web.Response:
    ip, agent = client_of(request)
    reply: TokenPair | MfaChallenge = await ask(
        request, "auth", Login(email=body.email, password=body.password, ip=ip, user_agent=agent)
    )
    return sign_in_reply(reply)


@routes.post("/api/v1/auth/refresh")
@documented(
    summary="Exchange a refresh token for a new pair",
    description="The old refresh token stops working; presenting an already-rotated one is "
    "401 `token_reused` and revokes the whole session.",
    tags=["auth"],
    auth="none",
    body=RefreshBody,
    responses={200: TokenPair},
    errors=[401],
)
async def refresh(request: web.Request, body: RefreshBody) -> web.Response:
    ip, agent = client_of(request)
    pair: TokenPair = await ask(
        request, "auth", Refresh(refresh_token=body.refresh_token, ip=ip, user_agent=agent)
    )
    return json_response(tokens_body(pair))


@routes.post("/api/v1/auth/logout")
@documented(
    summary="Sign out",
    description="The session's tokens stop working.",
    tags=["auth"],
    auth="none",
    body=RefreshBody,
    responses={204: None},
    errors=[401],
)
async def logout(request: web.Request, body: RefreshBody) -> web.Response:
    await ask(request, "auth", Logout(refresh_token=body.refresh_token))
    return web.Response(status=204)


@routes.get("/api/v1/auth/sessions")
@documented(
    summary="The caller's sessions",
    tags=["auth"],
    responses={200: page(SessionItem)},
)
async def list_sessions(request: web.Request) -> web.Response:
    claims = authenticate(request)
    sessions: SessionList = await ask(request, "auth", ListSessions(user_id=claims.sub))
    items = [to_json(s) for s in sessions.items]
    for item in items:
        item["current"] = item["id"] == claims.sid
    return json_response({"items": items, "next_cursor": None})


@routes.delete("/api/v1/auth/sessions/{id}")
@documented(summary="Revoke a session", tags=["auth"], responses={204: None})
async def revoke_session(request: web.Request) -> web.Response:
    claims = authenticate(request)
    await ask(
        request, "auth", RevokeSession(user_id=claims.sub, session_id=request.match_info["id"])
    )
    return web.Response(status=204)


@routes.post("/api/v1/auth/verify-email")
@documented(
    summary="Confirm an email address",
    description="With the token from the verification mail; a bad or used one: 401.",
    tags=["auth"],
    auth="none",
    body=TokenBody,
    responses={204: None},
    errors=[401],
)
async def verify_email(request: web.Request, body: TokenBody) -> web.Response:
    await ask(request, "auth", VerifyEmail(token=body.token))
    return web.Response(status=204)


@routes.post("/api/v1/auth/password/forgot")
@documented(
    summary="Ask for a password reset",
    description="202 always (no account enumeration); a reset link goes out by email and "
    "Telegram when linked.",
    tags=["auth"],
    auth="none",
    body=ForgotBody,
    responses={202: None},
)
async def forgot_password(request: web.Request, body: ForgotBody) -> web.Response:
    await ask(request, "auth", ForgotPassword(email=body.email))
    return web.Response(status=202)


@routes.post("/api/v1/auth/password/reset")
@documented(
    summary="Set a new password",
    description="With the token from the reset mail; every session of the user is revoked.",
    tags=["auth"],
    auth="none",
    body=ResetBody,
    responses={204: None},
    errors=[401],
)
async def reset_password(request: web.Request, body: ResetBody) -> web.Response:
    await ask(request, "auth", ResetPassword(token=body.token, password=body.password))
    return web.Response(status=204)


@routes.post("/api/v1/me/password")
@documented(
    summary="Change your password",
    description="With the current one (422 `wrong_password` at `$.current_password`); every "
    "other session of yours is revoked, this one stays.",
    tags=["auth"],
    body=PasswordChangeBody,
    responses={204: None},
    errors=[422],
)
async def change_password(request: web.Request, body: PasswordChangeBody) -> web.Response:
    claims = authenticate(request)
    message = ChangePassword(
        user_id=claims.sub,
        session_id=claims.sid,
        current_password=body.current_password,
        password=body.password,
    )
    await ask(request, "auth", message)
    return web.Response(status=204)


def callback_url(request: web.Request, provider: str) -> str:
    return f"{request.app[SERVICES].public_url}/api/v1/auth/oauth/{provider}/callback"


@routes.get("/api/v1/auth/oauth/{provider}/start")
@documented(
    summary="Sign in with a provider",
    description="A redirect to the provider's sign-in page (state and PKCE); an unknown or "
    "unconfigured provider: 404; a provider whose discovery document cannot be read or used "
    "(down, another issuer, no code flow or S256): 400 `oauth_failed`.",
    tags=["auth"],
    auth="none",
    responses={
        302: Content(
            description="to the provider",
            headers={"Location": ("the provider's sign-in page", True)},
        )
    },
    errors=[400],
)
async def oauth_start(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    redirect: OAuthRedirect = await ask(
        request, "auth", StartOAuth(provider=provider, redirect_uri=callback_url(request, provider))
    )
    raise web.HTTPFound(redirect.url)


@routes.get("/api/v1/auth/oauth/{provider}/callback")
@documented(
    summary="The provider's redirect back",
    description="The provider's refusal, a missing or stale state: 400 `oauth_failed`.",
    tags=["auth"],
    auth="none",
    query=OAuthCallbackQuery,
    responses={200: TokenPair, 202: MfaChallenge},
    errors=[400, 401],
)
async def oauth_callback(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    query = request.query
    if "error" in query:
        reason = query.get("error_description") or query["error"]
        raise OAuthFailed(f"the provider refused the sign-in: {reason[:200]}")
    code, state = query.get("code", ""), query.get("state", "")
    if not code or not state:
        raise OAuthFailed("the callback lacks its code or state")
    ip, agent = client_of(request)
    reply: TokenPair | MfaChallenge = await ask(
        request,
        "auth",
        FinishOAuth(
            provider=provider,
            code=code,
            state=state,
            redirect_uri=callback_url(request, provider),
            ip=ip,
            user_agent=agent,
        ),
        timeout=20,
    )
    return sign_in_reply(reply)


@routes.get("/api/v1/me")
@documented(summary="The caller", tags=["auth"], responses={200: UserView}, errors=[404])
async def me(request: web.Request) -> web.Response:
    claims = authenticate(request)
    user: UserView = await ask(request, "auth", GetUser(user_id=claims.sub))
    return json_response(to_json(user))


@routes.patch("/api/v1/me")
@documented(
    summary="Change the caller's name or phone",
    tags=["auth"],
    body=UpdateMeBody,
    responses={200: UserReply},
    errors=[404],
)
async def update_me(request: web.Request, body: UpdateMeBody) -> web.Response:
    claims = authenticate(request)
    user: UserView = await ask(
        request, "auth", UpdateUser(user_id=claims.sub, name=body.name, phone=body.phone)
    )
    renamed(request.app, user.id, user.name)
    return json_response(user_body(user))


@routes.post("/api/v1/me/telegram-link")
@documented(
    summary="A Telegram deep link",
    description="`https://t.me/<bot>?start=<token>`: opening it links the caller's Telegram "
    "account. No bot runs: 409 `telegram_not_configured`.",
    tags=["auth"],
    responses={201: TelegramLink},
    errors=[404, 409],
)
async def telegram_link(request: web.Request) -> web.Response:
    claims = authenticate(request)
    link: TelegramLink = await ask(request, "auth", CreateTelegramLink(user_id=claims.sub))
    return json_response({"url": link.url, "expires_at": link.expires_at}, status=201)
