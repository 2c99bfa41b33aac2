"""Middlewares: request ids and trace ids, problem+json for every error, access logs."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from actors.runtime import DomainError, bind_trace_id
from splitgo.web.keys import SERVICES
from splitgo.web.problems import ProblemError, from_domain_error, problem_response

log = structlog.get_logger("splitgo.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = "X-Request-Id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Echo or make the request id, bind it as the trace id, and log the request once."""
    given = request.headers.get(REQUEST_ID, "")
    request_id = given if _SAFE_ID.match(given) else request.app[SERVICES].system.ids.trace_id()
    bind_trace_id(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as error:
        status = error.status
        error.headers[REQUEST_ID] = request_id
        raise
    finally:
        log.info(
            "http_request",
            method=request.method,
            path=request.path,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
    response.headers[REQUEST_ID] = request_id
    return response


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as RFC 9457 problem+json, never as a traceback."""
    try:
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
        log.exception("http_unhandled_error", method=request.method, path=request.path)
        return problem_response(500, "internal_error", "something went wrong on our side")


def _http_problem(request: web.Request, error: web.HTTPException) -> web.Response:
    headers = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
    if error.status == 404:
        detail = f"no route for {request.method} {request.path}"
        code = "not_found"
    elif error.status == 405:
        detail = f"{request.method} is not allowed on {request.path}"
        code = "method_not_allowed"
    elif error.status == 413:
        detail = "the request body is too large"
        code = "payload_too_large"
    else:
        detail = error.text or error.reason
        code = error.reason.lower().replace(" ", "_")
    return problem_response(error.status, code, detail, headers=headers)
