"""Cross-site request forgery: every form carries a token that only our own pages know.

A double-submit token, needing no secret shared between nodes: the browser holds a random
secret in the `splitgo_csrf` cookie (HttpOnly, SameSite=Lax), and every form rendered for
it carries that secret masked with fresh random bytes (so the token differs on every page,
and compression cannot leak it). A POST is admitted only when the form's token unmasks to
the cookie's secret; another site can neither read the cookie nor the page, and SameSite
keeps the cookie off its cross-site posts anyway. The secret changes at sign-in and
sign-out, so a token from before never works after.

A refusal is a 403 `csrf_failed`, which the pages show as a page saying what to do.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

from aiohttp import web

from actors.auth.messages import REFRESH_TOKEN_SECONDS
from splitgo.pages import cookies
from splitgo.web.problems import ProblemError

COOKIE = "splitgo_csrf"
FIELD = "csrf_token"  # the hidden input of every form
SECRET_BYTES = 32
MAX_AGE = REFRESH_TOKEN_SECONDS


class CsrfRefused(ProblemError):
    """A POST without the token of this browser's pages."""

    def __init__(self) -> None:
        super().__init__(
            403,
            "csrf_failed",
            "This form is out of date or did not come from this site. Go back, reload the "
            "page and try again.",
        )


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(text: str, size: int) -> bytes | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def _secret(request: web.Request) -> bytes:
    """This browser's secret; a new one (set on the response) when it has none."""
    held = cookies.read(request, COOKIE)
    secret = _decode(held, SECRET_BYTES) if held else None
    if secret is None:
        secret = secrets.token_bytes(SECRET_BYTES)
        cookies.queue(request, COOKIE, _encode(secret), MAX_AGE)
    return secret


def form_token(request: web.Request) -> str:
    """A token for one form: the browser's secret under a fresh random mask."""
    secret = _secret(request)
    mask = secrets.token_bytes(SECRET_BYTES)
    return _encode(mask + bytes(a ^ b for a, b in zip(mask, secret, strict=True)))


def rotate(request: web.Request) -> None:
    """A new secret for this browser (at sign-in and sign-out)."""
    cookies.queue(request, COOKIE, _encode(secrets.token_bytes(SECRET_BYTES)), MAX_AGE)


def check(request: web.Request, submitted: str | None) -> None:
    """Raise CsrfRefused unless `submitted` is a token of the secret this browser sent."""
    held = request.cookies.get(COOKIE)
    secret = _decode(held, SECRET_BYTES) if held else None
    token = _decode(submitted, 2 * SECRET_BYTES) if submitted else None
    if secret is None or token is None:
        raise CsrfRefused()
    mask, masked = token[:SECRET_BYTES], token[SECRET_BYTES:]
    unmasked = bytes(a ^ b for a, b in zip(mask, masked, strict=True))
    if not hmac.compare_digest(unmasked, secret):
        raise CsrfRefused()
