"""Who may see a page, where a page may send the browser next, and the API's rate limits.

- `@signed_in` hands a page handler the signed-in `Viewer`; a signed-out visit goes to
  the sign-in page with `?next=` the page it wanted.
- `local_target(next)` is `next` when it is a path on this site, so `?next=` can never
  send anyone elsewhere.
- `spend(request, group)` takes one request from the same per-address bucket the JSON
  route of that group uses (splitgo/web/hardening.py), so a form is limited exactly as
  its route is: past it, a 429 problem with Retry-After.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from splitgo.pages.render import redirect
from splitgo.pages.sessions import Viewer, viewer_of
from splitgo.web.hardening import HARDENING, LIMITER
from splitgo.web.problems import ProblemError

Page = Callable[[web.Request], Awaitable[web.StreamResponse]]
ViewerPage = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]
HOME = "/home"
SIGN_IN = "/sign-in"


def local_target(value: str | None, default: str = HOME) -> str:
    """`value` when it is a path of this site (no scheme, host or backslash), else `default`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if not value.isprintable() or len(value) > 2000:
        return default
    parts = urlsplit(value)
    return default if parts.scheme or parts.netloc else value


def sign_in_url(wanted: str) -> str:
    """The sign-in page, sending the browser on to `wanted` once signed in."""
    if wanted in ("/", HOME):
        return SIGN_IN
    return f"{SIGN_IN}?{urlencode({'next': wanted})}"


def signed_in(handler: ViewerPage) -> Page:
    """A page for signed-in people: the handler gets the Viewer; others are sent to sign in."""

    @functools.wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        viewer = await viewer_of(request)
        if viewer is None:
            return redirect(sign_in_url(request.path_qs if request.method == "GET" else "/"))
        return await handler(request, viewer)

    return page


def spend(request: web.Request, group: str) -> None:
    """Count this request against the rate limit of `group` (as its JSON route is)."""
    limit = request.app[HARDENING].rate_limit
    if limit <= 0:
        return
    wait = request.app[LIMITER].take(group, request.remote or "unknown")
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ProblemError(
            429,
            "rate_limited",
            f"Too many attempts from your address. Try again in {seconds} seconds.",
            headers={"Retry-After": str(seconds)},
        )
