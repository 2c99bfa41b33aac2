"""Browser sessions: the auth actor's token pair in an HttpOnly cookie, used as the JSON
API's clients use it.

Sign-in asks auth the same `Login` the API's login route sends and keeps the pair it
answers in the `splitgo_session` cookie (HttpOnly, SameSite=Lax, Secure over https; see
cookies.py). Each request's access token is checked by the node's verifier, as a bearer
token is (signature, expiry, revoked sessions), and its claims are set where
`splitgo.web.security.authenticate` finds them, so JSON-edge helpers work unchanged. An
access token that has expired (or will within `EARLY` seconds) is exchanged with the
same `Refresh` the API's refresh route sends, once per token on this node (refreshing.py),
and the new pair goes back in the cookie. Sign-out sends the API's `Logout`: the session
ends on every node. A revoked session, or a refresh auth refuses, signs the browser out.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass

from aiohttp import web

from actors.auth.messages import (
    REFRESH_TOKEN_SECONDS,
    AccessClaims,
    AccessTokenVerifier,
    GetUser,
    InvalidToken,
    Logout,
    Refresh,
    SessionRevoked,
    TokenPair,
    TokenReused,
    UserNotFound,
    UserView,
)
from splitgo.pages import cookies, csrf
from splitgo.pages.keys import REFRESHES
from splitgo.web.actors import ask
from splitgo.web.auth import client_of
from splitgo.web.keys import SERVICES
from splitgo.web.names import NAMES
from splitgo.web.security import CLAIMS

COOKIE = "splitgo_session"
EARLY = 30  # seconds before its expiry an access token is already exchanged
_HELD = re.compile(r"^(?P<access>[A-Za-z0-9_\-.]{1,2048})~(?P<refresh>[A-Za-z0-9_\-]{1,512})$")


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person signed in on this request: who, by what name, with which roles."""

    user_id: str
    name: str
    roles: tuple[str, ...]
    session_id: str

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True, slots=True)
class _Seen:
    viewer: Viewer | None


SEEN = web.RequestKey("pages_viewer", _Seen)


def held_tokens(request: web.Request) -> tuple[str, str] | None:
    """(access token, refresh token) from this browser's session cookie, if it has one."""
    found = _HELD.match(cookies.read(request, COOKIE) or "")
    return (found["access"], found["refresh"]) if found else None


async def viewer_of(request: web.Request) -> Viewer | None:
    """Who is signed in on this request (looked up once per request), or None."""
    seen = request.get(SEEN)
    if seen is None:
        seen = request[SEEN] = _Seen(await _look_up(request))
    return seen.viewer


async def sign_in(request: web.Request, pair: TokenPair) -> None:
    """Start this browser's session with the pair auth answered a sign-in with (ending
    the session it held before, if any)."""
    held = held_tokens(request)
    if held is not None and held[1] != pair.refresh_token:
        with contextlib.suppress(InvalidToken):
            await ask(request, "auth", Logout(refresh_token=held[1]))
    cookies.queue(
        request, COOKIE, f"{pair.access_token}~{pair.refresh_token}", REFRESH_TOKEN_SECONDS
    )
    csrf.rotate(request)
    request.pop(SEEN, None)


async def sign_out(request: web.Request) -> None:
    """End this browser's session at auth (the API's Logout) and forget its cookie."""
    held = held_tokens(request)
    if held is not None:
        with contextlib.suppress(InvalidToken):  # ended already (elsewhere, by a reset)
            await ask(request, "auth", Logout(refresh_token=held[1]))
    _forget(request)


def _forget(request: web.Request) -> None:
    cookies.queue(request, COOKIE, None, None)
    csrf.rotate(request)
    request[SEEN] = _Seen(None)


async def _look_up(request: web.Request) -> Viewer | None:
    held = held_tokens(request)
    verifier = request.app[SERVICES].verifier
    if held is None or verifier is None:
        return None
    access, refresh = held
    try:
        claims = verifier.verify(access)
    except SessionRevoked:
        _ended(request)
        return None
    except InvalidToken:  # expired, or too old to check here: a refresh tells
        claims = None
    if claims is None or claims.exp - time.time() < EARLY:
        claims = await _refreshed(request, verifier, refresh)
        if claims is None:
            _ended(request)
            return None
    request[CLAIMS] = claims  # splitgo.web.security.authenticate(request) finds it
    name = await _name_of(request, claims.sub)
    if name is None:
        _ended(request)
        return None
    return Viewer(claims.sub, name, tuple(claims.roles), claims.sid)


async def _refreshed(
    request: web.Request, verifier: AccessTokenVerifier, refresh: str
) -> AccessClaims | None:
    ip, agent = client_of(request)

    async def fetch() -> TokenPair:
        pair: TokenPair = await ask(
            request, "auth", Refresh(refresh_token=refresh, ip=ip, user_agent=agent)
        )
        return pair

    try:
        pair = await request.app[REFRESHES].exchange(refresh, fetch)
        claims = verifier.verify(pair.access_token)
    except (InvalidToken, TokenReused):
        return None
    cookies.queue(
        request, COOKIE, f"{pair.access_token}~{pair.refresh_token}", REFRESH_TOKEN_SECONDS
    )
    return claims


def _ended(request: web.Request) -> None:
    _forget(request)
    cookies.flash(request, "session_ended")


async def _name_of(request: web.Request, user_id: str) -> str | None:
    book = request.app.get(NAMES)
    if book is not None:
        return (await book.names([user_id])).get(user_id)
    try:
        user: UserView = await ask(request, "auth", GetUser(user_id=user_id))
    except UserNotFound:
        return None
    return user.name
