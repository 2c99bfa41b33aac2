"""The pages' cookies: every one HttpOnly, SameSite=Lax and path `/`, Secure when the
browser reached us over https (directly, through a proxy saying `X-Forwarded-Proto:
https`, or when the public URL is https). Handlers queue cookies on the request; the pages'
middleware writes them on whatever response goes out, a redirect or an error page too.

A flash is a one-time notice for the next page after a redirect ("You are signed out."):
the cookie holds a code of `FLASHES`, never text, so nobody can plant words on a page.
"""

from __future__ import annotations

from aiohttp import web

from splitgo.web.keys import SERVICES

FLASH_COOKIE = "splitgo_flash"
FLASH_SECONDS = 60
# code -> what the next page says; later pages add their own codes
FLASHES: dict[str, str] = {
    "signed_in": "You are signed in.",
    "signed_out": "You are signed out.",
    "password_reset": "Your password is changed. Sign in with the new one.",
    "session_ended": "Your session ended. Sign in again to go on.",
}

# name -> (value, max age in seconds); a None value deletes the cookie
PENDING = web.RequestKey("pages_cookies", dict[str, tuple[str | None, int | None]])


def is_https(request: web.Request) -> bool:
    """Whether the browser speaks https to us (so cookies must be Secure)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    public_url = request.app[SERVICES].public_url
    return request.secure or forwarded == "https" or public_url.startswith("https://")


def _pending(request: web.Request) -> dict[str, tuple[str | None, int | None]]:
    pending = request.get(PENDING)
    if pending is None:
        pending = request[PENDING] = {}
    return pending


def queue(request: web.Request, name: str, value: str | None, max_age: int | None) -> None:
    """Set (or with None, delete) cookie `name` on this request's response."""
    _pending(request)[name] = (value, max_age)


def read(request: web.Request, name: str) -> str | None:
    """The cookie's value as this request now sees it: what was queued, else what came."""
    pending = request.get(PENDING)
    if pending is not None and name in pending:
        queued: str | None = pending[name][0]
        return queued
    sent = request.cookies.get(name)
    return sent if isinstance(sent, str) else None


def apply(request: web.Request, response: web.StreamResponse) -> None:
    """Write the queued cookies on `response`."""
    pending = request.get(PENDING)
    if not pending:
        return
    secure = is_https(request)
    for name, (value, max_age) in pending.items():
        if value is None:
            response.del_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
        else:
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path="/",
                secure=secure,
                httponly=True,
                samesite="Lax",
            )


def flash(request: web.Request, code: str) -> None:
    """Show the notice `FLASHES[code]` on the next page this browser renders."""
    if code not in FLASHES:
        raise KeyError(f"unknown flash {code!r}: add it to FLASHES")
    queue(request, FLASH_COOKIE, code, FLASH_SECONDS)


def is_navigation(request: web.Request) -> bool:
    """Whether the browser asked for a page to show, not a script for a fragment: a
    browser that says how it fetches (`Sec-Fetch-Mode`) must say `navigate`."""
    return request.headers.get("Sec-Fetch-Mode", "navigate") == "navigate"


def take_flash(request: web.Request) -> str | None:
    """The notice waiting for this page, if any (shown once: its cookie is deleted).

    Only a page the browser navigates to takes it: a live region's script asking for a
    fragment just as a form's redirect lands would otherwise eat the notice unseen."""
    if not is_navigation(request):
        return None
    code = read(request, FLASH_COOKIE)
    if code is None:
        return None
    queue(request, FLASH_COOKIE, None, None)
    return FLASHES.get(code)
