"""Who is calling: bearer access tokens checked at the edge, with no database round trip,
and the operators of `/ops` (the node's ops token, or an admin's access token).

The node's verifier also refuses the tokens of revoked sessions, from memory
(splitgo/web/revocation.py): 401 `session_revoked`."""

from __future__ import annotations

import hmac

from aiohttp import web

from actors.auth.messages import SECOND_FACTORS, AccessClaims, InvalidToken
from splitgo.web.keys import SERVICES
from splitgo.web.problems import ProblemError

# what this request was found to be, so a second look costs nothing
CLAIMS = web.RequestKey("claims", AccessClaims)
OPERATOR = web.RequestKey("operator", bool)


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(request: web.Request) -> AccessClaims:
    """The caller's verified claims, or a 401 problem: `invalid_token`, or `session_revoked`
    for a token of a session that was signed out or revoked."""
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
            error.code,  # invalid_token, or session_revoked
            error.message,
            headers={"WWW-Authenticate": 'Bearer realm="splitgo", error="invalid_token"'},
        ) from None
    request[CLAIMS] = claims
    return claims


def authorize_operator(request: web.Request) -> None:
    """Machines pass with the ops token; people with an admin's access token; others are a
    401 (no or a bad token) or a 403 (not an admin)."""
    if request.get(OPERATOR) is True:
        return
    services = request.app[SERVICES]
    token = bearer_token(request)
    if token is None:
        raise ProblemError(
            401,
            "unauthenticated",
            "send Authorization: Bearer <ops token or an admin's access token>",
            headers={"WWW-Authenticate": 'Bearer realm="ops"'},
        )
    if hmac.compare_digest(token.encode(), services.ops_token.encode()):
        request[OPERATOR] = True
        return
    if services.verifier is not None and token.count(".") == 2:
        try:
            claims = services.verifier.verify(token)
        except InvalidToken:
            pass
        else:
            if not claims.has_role("admin"):
                raise ProblemError(403, "not_an_admin", "/ops is for admins")
            require_second_factor(request, claims)
            request[OPERATOR] = True
            return
    raise ProblemError(
        401,
        "invalid_token",
        "the bearer token is not valid for /ops",
        headers={"WWW-Authenticate": 'Bearer realm="ops", error="invalid_token"'},
    )


def require_second_factor(request: web.Request, claims: AccessClaims) -> None:
    """When the node wants admins to use two-factor sign-in (SPLITGO_MFA_REQUIRED_FOR_ADMINS),
    an admin's session must have passed one (a TOTP code, or a passkey): else 403
    `mfa_required`. The token says it (`amr`), so this costs no database trip."""
    if not request.app[SERVICES].mfa_required_for_admins:
        return
    if SECOND_FACTORS.intersection(claims.amr):
        return
    raise ProblemError(
        403,
        "mfa_required",
        "Turn on two-factor sign-in at /account/mfa first (or sign in again with your code "
        "or a passkey): admin access needs a session that passed a second factor.",
    )


def admit(request: web.Request, auth: str) -> None:
    """Let in the caller a route declares (`bearer`, `ops` or `none`), or raise its 401/403."""
    if auth == "bearer":
        authenticate(request)
    elif auth == "ops":
        authorize_operator(request)
