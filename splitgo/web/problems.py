"""RFC 9457 problem responses, and reading JSON bodies with errors that name the field."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from actors.runtime import DomainError

T = TypeVar("T")

PROBLEM_TYPE = "application/problem+json"

# What each category of domain error means over HTTP.
STATUS_BY_CATEGORY = {
    "invalid": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FieldError(msgspec.Struct):
    """One thing wrong with one field: `$.amount` is a JSON path into the request body."""

    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document, with our stable `code` and per-field errors."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] = []
    instance: str | None = None


class ProblemError(Exception):
    """Raised at the edge to answer with a problem response."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


_encoder = msgspec.json.Encoder()


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> web.Response:
    problem = Problem(
        type=f"https://splitgo.dev/problems/{code.replace('_', '-')}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code,
        errors=errors or [],
        instance=instance,
    )
    return web.Response(
        status=status, body=_encoder.encode(problem), content_type=PROBLEM_TYPE, headers=headers
    )


# Where a code means something more precise than its category's status.
STATUS_BY_CODE = {
    "oauth_failed": 400,  # a bad state or a provider's refusal: the request itself is bad
    "invalid_signature": 400,  # a webhook that does not verify (API.md: 400, nothing credited)
}


def from_domain_error(error: DomainError) -> ProblemError:
    status = STATUS_BY_CODE.get(error.code) or STATUS_BY_CATEGORY.get(error.category, 500)
    field = error.details.get("field")
    errors = [FieldError(field=str(field), message=error.message)] if field else None
    headers: dict[str, str] = {}
    retry_after = error.details.get("retry_after")
    if status in (429, 503) and isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="splitgo"'
    return ProblemError(status, error.code, error.message, errors=errors, headers=headers)


_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)


def validation_problem(error: msgspec.ValidationError) -> ProblemError:
    """A 422 naming the field msgspec complained about (its `$.a.b` path)."""
    match = _PATH.match(str(error))
    message = match.group("message") if match else str(error)
    path = (match.group("path") if match else None) or "$"
    return ProblemError(
        422,
        "validation_error",
        f"{path}: {message}",
        errors=[FieldError(field=path, message=message)],
    )


async def read_json(request: web.Request, body_type: type[T]) -> T:
    """The request body decoded into `body_type`: 400 if it is not JSON, 422 if it does not fit."""
    if request.content_type not in ("application/json", "") and not request.content_type.endswith(
        "+json"
    ):
        raise ProblemError(
            415, "unsupported_media_type", f"send application/json, not {request.content_type}"
        )
    raw = await request.read()
    if not raw.strip():
        raise ProblemError(400, "malformed_json", "the request body is empty; JSON was expected")
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as error:
        raise validation_problem(error) from None
    except msgspec.DecodeError as error:
        raise ProblemError(400, "malformed_json", f"the body is not valid JSON: {error}") from None


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_encoder.encode(data), content_type="application/json")
