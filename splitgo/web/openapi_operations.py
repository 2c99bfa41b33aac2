"""One route's OpenAPI operation: its parameters, request body, replies and problems.

Errors are RFC 9457 `application/problem+json` (`problems.Problem`); each operation lists
the ones it can answer with: 400/413/415/422 where a body is read, 400/409 where an
Idempotency-Key is read, 401 where a token is needed, 403 for operators, 404 where a path
names something, 429 on the routes the edge rate-limits (`hardening.RATE_LIMITED`), 503
where an actor answers, plus what the handler adds. Those shared problem replies are
`#/components/responses/Problem<status>`.
"""

from __future__ import annotations

import http
import inspect
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from actors.runtime.bounds import ID_MAX
from splitgo.web.declare import IDEMPOTENCY_KEY, JSON, Content, Operation, PageQuery
from splitgo.web.openapi_schema import SchemaBook, query_parameters
from splitgo.web.problems import PROBLEM_TYPE, TITLES, Problem

REQUEST_ID = "X-Request-Id"
# aiohttp's default for a `{name}` segment: anything but a slash (and braces)
DEFAULT_SEGMENT = "[^{}/]+"


def path_patterns(pattern: str) -> dict[str, str]:
    """Each `(?P<name>...)` group of an aiohttp route regex, with its inner pattern."""
    found: dict[str, str] = {}
    index = 0
    while (start := pattern.find("(?P<", index)) != -1:
        name_end = pattern.index(">", start)
        name = pattern[start + 4 : name_end]
        depth, cursor = 1, name_end + 1
        while depth:
            char = pattern[cursor]
            if char == "\\":
                cursor += 2
                continue
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            cursor += 1
        found[name] = pattern[name_end + 1 : cursor - 1]
        index = cursor
    return found


def path_parameters(resource: web.AbstractResource) -> list[dict[str, Any]]:
    info = resource.get_info()
    compiled = info.get("pattern")
    if compiled is None:
        return []
    parameters = []
    for name, inner in path_patterns(compiled.pattern).items():
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if info.get("formatter", "").startswith("/api/"):
            schema["maxLength"] = ID_MAX  # longer names nothing: 404 (refuse_overlong_ids)
        if inner != DEFAULT_SEGMENT:
            schema["pattern"] = f"^(?:{inner})$"
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def error_statuses(operation: Operation, has_path_params: bool, rate_limited: bool) -> list[int]:
    statuses = set(operation.errors)
    if rate_limited:
        statuses.add(429)  # the edge's per-client limit (hardening.RATE_LIMITED)
    if operation.body is not None:
        statuses |= {400, 413, 415, 422}
    if any(header.name == IDEMPOTENCY_KEY for header in operation.headers):
        statuses |= {400, 409}  # a malformed or missing key; a conflict or one in flight
    if isinstance(operation.query, type) and issubclass(operation.query, PageQuery):
        statuses.add(422)  # a limit out of range
    if operation.auth == "bearer":
        statuses.add(401)
    if operation.auth == "ops":
        statuses |= {401, 403}
    if has_path_params:
        statuses.add(404)
    if operation.actor:
        statuses.add(503)
    return sorted(status for status in statuses if status not in operation.responses)


def _status_text(status: int) -> str:
    return TITLES.get(status) or http.HTTPStatus(status).phrase


def _request_id_header() -> dict[str, Any]:
    return {REQUEST_ID: {"$ref": "#/components/headers/RequestId"}}


NO_BODY = (204, 304)  # HTTP sends these statuses without content (RFC 9110, 15.3.5, 15.4.5)


def response_object(book: SchemaBook, status: int, shape: Any) -> dict[str, Any]:
    headers: dict[str, Any] = _request_id_header()
    description = _status_text(status)
    media_type = JSON
    if shape is Problem or (shape is None and status >= 400):
        shape, media_type = Problem, PROBLEM_TYPE
    if isinstance(shape, Content):
        media_type = shape.media_type
        description = shape.description or description
        for name, (text, required) in shape.headers.items():
            headers[name] = {
                "description": text,
                "required": required,
                "schema": {"type": "string"},
            }
    if status == 429:
        headers["Retry-After"] = {
            "description": "seconds to wait before trying again",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    if status == 401:
        headers["WWW-Authenticate"] = {
            "description": "the scheme to authenticate with",
            "schema": {"type": "string"},
        }
    reply: dict[str, Any] = {"description": description, "headers": headers}
    if shape is not None and status not in NO_BODY:
        reply["content"] = {media_type: {"schema": book.schema(shape)}}
    return reply


def operation_object(
    book: SchemaBook,
    operation: Operation,
    *,
    operation_id: str,
    path_params: list[dict[str, Any]],
    handler: Any,
    rate_limited: bool = False,
) -> dict[str, Any]:
    doc = operation.description or inspect.getdoc(handler) or None
    result: dict[str, Any] = {"operationId": operation_id, "summary": operation.summary}
    if doc:
        result["description"] = doc
    if operation.tags:
        result["tags"] = list(operation.tags)
    parameters = [*path_params, *query_parameters(operation.query)]
    for header in operation.headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": header.required,
                "description": header.description,
                "schema": dict(header.schema),
            }
        )
    if parameters:
        result["parameters"] = parameters
    if operation.body is not None:
        result["requestBody"] = {
            "required": operation.body_required,
            "content": {operation.body_media_type: {"schema": book.schema(operation.body)}},
        }
    if operation.auth == "bearer":
        result["security"] = [{"bearerAuth": []}]
    elif operation.auth == "ops":
        result["security"] = [{"opsToken": []}]
    else:
        result["security"] = []
    replies: dict[str, Any] = {
        str(status): response_object(book, status, operation.responses[status])
        for status in operation.responses
    }
    for status in error_statuses(operation, bool(path_params), rate_limited):
        replies[str(status)] = {"$ref": f"#/components/responses/{problem_name(status)}"}
    result["responses"] = dict(sorted(replies.items()))
    return result


def problem_name(status: int) -> str:
    return f"Problem{status}"


def problem_responses(book: SchemaBook, paths: Mapping[str, Any]) -> dict[str, Any]:
    """The shared problem replies the operations refer to."""
    used = {
        int(status)
        for methods in paths.values()
        for operation in methods.values()
        for status, reply in operation["responses"].items()
        if "$ref" in reply
    }
    return {problem_name(status): response_object(book, status, Problem) for status in sorted(used)}
