"""Who is calling: bearer access tokens checked at the edge, with no database round trip."""

from __future__ import annotations

from aiohttp import web

from actors.auth.messages import AccessClaims, InvalidToken
from splitgo.web.keys import SERVICES
from splitgo.web.problems import ProblemError

CLAIMS = "splitgo.claims"


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(request: web.Request) -> AccessClaims:
    """The caller's verified claims, or a 401 problem (`invalid_token`) naming no detail."""
    cached = request.get(CLAIMS)
    if isinstance(cached, AccessClaims):
        return cached
    token = bearer_token(request)
    verifier = request.app[SERVICES].verifier
    if token is None or verifier is None:
        raise ProblemError(
            401,
            "invalid_token",
            "send Authorization: Bearer <access token>",
            headers={"WWW-Authenticate": 'Bearer realm="splitgo"'},
        )
    try:
        claims = verifier.verify(token)
    except InvalidToken as error:
        raise ProblemError(
            401,
            "invalid_token",
            error.message,
            headers={"WWW-Authenticate": 'Bearer realm="splitgo", error="invalid_token"'},
        ) from None
    request[CLAIMS] = claims
    return claims
