"""Middlewares: trace ids (W3C traceparent, X-Request-Id), problem+json for every error,
access logs, and a server span per request when spans are exported."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from actors.runtime import DomainError, bind_trace_id
from actors.runtime.bounds import ID_MAX
from splitgo.tracing import (
    NOT_SAMPLED,
    SAMPLED,
    TRACEPARENT,
    Span,
    TraceParent,
    Tracing,
    format_traceparent,
    new_span_id,
    parse_traceparent,
)
from splitgo.web.hardening import RESPONSE_HEADERS
from splitgo.web.keys import SERVICES
from splitgo.web.problems import ProblemError, from_domain_error, problem_response

log = structlog.get_logger("splitgo.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = "X-Request-Id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# set by the node when spans are exported (SPLITGO_OTEL_ENDPOINT)
TRACING = web.AppKey("tracing", Tracing)
# a path part that is a credential: a sandbox checkout id opens a page that pays. Logs and
# spans keep its first characters (its kind and a few more), as payments' own logs do.
_CREDENTIAL_IN_PATH = re.compile(r"^(?P<head>/sandbox/checkout/)(?P<secret>[^/]+)")
_CREDENTIAL_KEPT = 15


def loggable_path(path: str) -> str:
    """`path` as logs and spans show it: a credential in it cut to its first characters."""
    found = _CREDENTIAL_IN_PATH.match(path)
    if found is None:
        return path
    kept = f"{found['head']}{found['secret'][:_CREDENTIAL_KEPT]}…"
    return kept + path[found.end() :]


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pick the trace id, bind it for everything the request causes, and log the request.

    The trace id is the one of a valid W3C `traceparent` header, else the caller's
    `X-Request-Id`, else a new one. The response echoes the request id (or the trace id)
    in `X-Request-Id` and carries a `traceparent` with the trace id and this server's span.
    """
    parent = parse_traceparent(request.headers.get(TRACEPARENT))
    given = request.headers.get(REQUEST_ID, "")
    safe = bool(_SAFE_ID.match(given))
    if parent is not None:
        trace_id = parent.trace_id
    elif safe:
        trace_id = given
    else:
        trace_id = request.app[SERVICES].system.ids.trace_id()
    bind_trace_id(trace_id)
    tracing = request.app.get(TRACING)
    span = _server_span(tracing, request, parent) if tracing is not None else None
    # the caller's sampling decision stands; else: sampled when spans are exported
    default_flags = SAMPLED if span is not None else NOT_SAMPLED
    flags = parent.flags if parent is not None else default_flags
    span_id = span.span_id if span is not None else new_span_id()
    request_id = given if safe else trace_id
    request[RESPONSE_HEADERS] = {
        REQUEST_ID: request_id,
        TRACEPARENT: format_traceparent(trace_id, span_id, flags),
    }
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        log.info(
            "http_request",
            method=request.method,
            path=loggable_path(request.path),
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        if span is not None:
            _end_span(span, status)


def _server_span(tracing: Tracing, request: web.Request, parent: TraceParent | None) -> Span:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    template = resource.canonical if resource is not None else None
    attributes: dict[str, str | int | float | bool] = {
        "http.request.method": request.method,
        "url.path": loggable_path(request.path),
        "splitgo.node": request.app[SERVICES].node_id,
    }
    if template is not None:
        attributes["http.route"] = template
    name = f"{request.method} {template}" if template is not None else request.method
    return tracing.start(name, kind="server", parent=parent, attributes=attributes)


def _end_span(span: Span, status: int) -> None:
    span.set("http.response.status_code", status)
    if status >= 500:
        span.fail(f"HTTP {status}")
    span.end()


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as RFC 9457 problem+json, never as a traceback."""
    try:
        refuse_overlong_ids(request)
        return await handler(request)
    except ProblemError as error:
        return problem_response(
            error.status, error.code, error.detail, errors=error.errors, headers=error.headers
        )
    except DomainError as error:
        problem = from_domain_error(error)
        return problem_response(
            problem.status,
            problem.code,
            problem.detail,
            errors=problem.errors,
            headers=problem.headers,
        )
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _http_problem(request, error)
    except Exception:
        log.exception(
            "http_unhandled_error", method=request.method, path=loggable_path(request.path)
        )
        return problem_response(500, "internal_error", "something went wrong on our side")


def refuse_overlong_ids(request: web.Request) -> None:
    """An API path naming something by an id longer than any id can be (ID_MAX) names
    nothing: 404, before a handler turns it into a message whose bounds refuse it (422, a
    status the operation does not document)."""
    if not request.path.startswith("/api/"):
        return
    for name, value in request.match_info.items():
        if len(value) > ID_MAX:
            raise ProblemError(
                404,
                "not_found",
                f"nothing here has a {name} of {len(value)} characters: ids are at most {ID_MAX}",
            )


def _http_problem(request: web.Request, error: web.HTTPException) -> web.Response:
    headers = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
    if error.status == 404:
        detail = f"no route for {request.method} {request.path}"
        code = "not_found"
    elif error.status == 405:
        detail = f"{request.method} is not allowed on {request.path}"
        code = "method_not_allowed"
    elif error.status == 413:
        limit = getattr(request, "_client_max_size", 0)
        detail = f"the request body is larger than the limit of {limit} bytes"
        code = "payload_too_large"
    else:
        detail = error.text or error.reason
        code = error.reason.lower().replace(" ", "_")
    return problem_response(error.status, code, detail, headers=headers)
