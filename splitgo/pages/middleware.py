"""The pages' middleware: what every page response gets, and errors as pages.

For a page route (a handler marked with PAGE_ATTR) — and for a browser's request to a
path no route serves, outside the API's paths — the response carries the pages' strict
CSP, `Cache-Control: no-store` (pages hold private data) and the cookies the handler
queued. An error is a page in words, never problem+json or a traceback: a refusal
(ProblemError, DomainError) with its own sentence and status, an HTTP error with its
status, anything unexpected as a 500 that is logged.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from splitgo.pages import cookies
from splitgo.pages.forms import REFUSALS, as_problem
from splitgo.pages.keys import PAGE_ATTR
from splitgo.pages.render import render
from splitgo.web.hardening import PAGES_CSP
from splitgo.web.middlewares import loggable_path

log = structlog.get_logger("splitgo.pages")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# what is not ours to answer with a page, even for a browser
NOT_PAGES = ("/api/", "/ops/", "/.well-known/", "/sandbox/", "/telegram/")
NOT_PAGES_EXACT = frozenset({"/ops", "/healthz", "/readyz", "/metrics"})
TITLES = {
    400: "This request is not valid",
    401: "Please sign in again",
    403: "Not allowed",
    404: "Page not found",
    405: "Not possible here",
    409: "That did not work",
    413: "Too large",
    422: "That did not work",
    429: "Too many attempts",
    503: "Unavailable for a moment",
}
TEXTS = {
    404: "There is no page at this address. Check the link, or go back home.",
    405: "This page cannot be used that way. Go back and try again.",
    413: "What you sent is too large.",
}
SORRY = "Something went wrong on our side. Please try again in a moment."


def is_page_request(request: web.Request) -> bool:
    """A page route, or a browser asking for a path nothing serves outside the API's."""
    if getattr(request.match_info.handler, PAGE_ATTR, False):
        return True
    path = request.path
    return (
        request.match_info.http_exception is not None
        and "text/html" in request.headers.get("Accept", "")
        and not path.startswith(NOT_PAGES)
        and path not in NOT_PAGES_EXACT
    )


@web.middleware
async def pages_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """See the module's docstring."""
    if not is_page_request(request):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            finish(request, error)
            raise
        text = TEXTS.get(error.status) or SORRY
        response = await error_page(request, error.status, text)
    except REFUSALS as error:
        problem = as_problem(error)
        retry = {k: v for k, v in problem.headers.items() if k == "Retry-After"}
        response = await error_page(request, problem.status, problem.detail, retry)
    except Exception:
        log.exception("page_failed", method=request.method, path=loggable_path(request.path))
        response = await error_page(request, 500, SORRY)
    finish(request, response)
    return response


def finish(request: web.Request, response: web.StreamResponse) -> None:
    """The queued cookies, and for HTML the pages' CSP and no caching."""
    cookies.apply(request, response)
    if response.content_type == "text/html":
        # a page may widen its own policy (the consent page lets its form lead to the app)
        response.headers.setdefault("Content-Security-Policy", PAGES_CSP)
        response.headers.setdefault("Cache-Control", "no-store")


async def error_page(
    request: web.Request, status: int, text: str, headers: dict[str, str] | None = None
) -> web.Response:
    """The error as a page of the layout; bare HTML if even that cannot be rendered."""
    title = TITLES.get(status, "Something went wrong")
    try:
        return await render(
            request,
            "error.html",
            {"title": title, "text": text, "status": status},
            status=status,
            headers=headers,
        )
    except Exception:
        log.exception("error_page_failed", status=status)
        body = (
            f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></html>"
        )
        return web.Response(status=status, text=body, content_type="text/html", headers=headers)
