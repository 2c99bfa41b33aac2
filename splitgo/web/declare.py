"""What a route says about itself, once: `@documented(...)` under `@routes.<method>(...)`.

A summary, who may call it (`auth`), the body it takes, its query parameters (a Struct),
the headers it reads, and a type per success status. The OpenAPI document
(`openapi.build_spec`) is made from these declarations, and the body is read from the
same one: a route declared with `body=GroupBody` is handed the decoded, validated body,

    @routes.post("/api/v1/groups")
    @documented(summary="Create a group", body=GroupBody, responses={201: GroupView})
    async def create_group(request: web.Request, body: GroupBody) -> web.Response: ...

A route declaring a required `Idempotency-Key` (`headers=[idempotency(required=True)]`)
refuses a request without one first of all (splitgo/web/idempotency.py). The caller is
admitted next (a bearer token, or the ops token), so a request without a
token is a 401 whatever its body; then the body is read by `problems.read_json`: 415 for
another media type, 400 when it is not JSON, 413 past the size limit, 422 naming the field
that does not fit. `Verbatim(shape)` hands over the bytes as they came (a signed webhook
is verified over exactly those), documented as `shape`. A route that streams its own body
(an upload) is declared with `@streamed(...)` instead.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict, TypeVar, Unpack, overload

import msgspec
from aiohttp import web

from splitgo.web.idempotency import HEADER, required_key
from splitgo.web.problems import read_json
from splitgo.web.security import admit

Handler = TypeVar("Handler", bound=Callable[..., Any])
Reply = TypeVar("Reply", bound=web.StreamResponse)
Body = TypeVar("Body")
Auth = Literal["bearer", "ops", "none"]

SPEC_ATTR = "__openapi__"
JSON = "application/json"
IDEMPOTENCY_KEY = HEADER
# what the edge reads from an Idempotency-Key: 1..200 printable characters, no edge spaces
IDEMPOTENCY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^\S(.*\S)?$"}


@dataclass(frozen=True, slots=True)
class Content:
    """A reply (or body) other than one JSON type: another media type, or headers.

    `type` is a msgspec type (None: no schema, e.g. an HTML page); `headers` maps a header
    to (description, required)."""

    type: Any = None
    media_type: str = JSON
    description: str | None = None
    headers: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Derived:
    """A named view of a Struct as a handler sends it: some fields dropped, some added."""

    name: str
    base: Any
    add: Mapping[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Raw:
    """A schema no Struct can say; `refs` are the types its `{"$ref": name}` leaves name."""

    schema: Mapping[str, Any]
    refs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page:
    """`{"items": [item...], "next_cursor": str | null}`, as the list routes answer."""

    item: Any


def page(item: Any) -> Page:
    return Page(item)


@dataclass(frozen=True, slots=True)
class Verbatim:
    """A body handed to the handler as the bytes that came, documented as `shape`."""

    shape: Any


@dataclass(frozen=True, slots=True)
class Header:
    """A request header a handler reads."""

    name: str
    description: str
    required: bool = False
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


Limit = Annotated[int, msgspec.Meta(ge=1, le=200, description="page size (1..200)")]


class PageQuery(msgspec.Struct):
    """`?limit=&cursor=` of every list that pages (`ops.page_params`)."""

    limit: Limit = 50
    cursor: Annotated[str, msgspec.Meta(description="next_cursor of the page before")] = ""


@dataclass(frozen=True, slots=True)
class Operation:
    """Everything the document says about one handler."""

    summary: str
    responses: Mapping[int, Any]
    tags: tuple[str, ...] = ()
    auth: Auth = "bearer"
    body: Any = None
    body_required: bool = True
    body_media_type: str = JSON
    query: Any = None
    headers: tuple[Header, ...] = ()
    errors: tuple[int, ...] = ()
    actor: bool = True
    description: str | None = None
    operation_id: str | None = None


class Options(TypedDict, total=False):
    """What a route may say besides its summary, replies and body."""

    tags: Iterable[str]
    auth: Auth
    body_required: bool
    body_media_type: str
    query: Any
    headers: Iterable[Header]
    errors: Iterable[int]
    actor: bool
    description: str | None
    operation_id: str | None


def describe(
    *,
    summary: str,
    responses: Mapping[int, Any],
    tags: Iterable[str] = (),
    auth: Auth = "bearer",
    body: Any = None,
    body_required: bool = True,
    body_media_type: str = JSON,
    query: Any = None,
    headers: Iterable[Header] = (),
    errors: Iterable[int] = (),
    actor: bool = True,
    description: str | None = None,
    operation_id: str | None = None,
) -> Operation:
    """An Operation; `actor=False` for routes that ask no actor (no 503)."""
    return Operation(
        summary=summary,
        responses=dict(responses),
        tags=tuple(tags),
        auth=auth,
        body=body,
        body_required=body_required,
        body_media_type=body_media_type,
        query=query,
        headers=tuple(headers),
        errors=tuple(errors),
        actor=actor,
        description=description,
        operation_id=operation_id,
    )


Route = Callable[[web.Request], Awaitable[Reply]]
TakesBody = Callable[[web.Request, Body], Awaitable[Reply]]


@overload
def documented(
    *,
    summary: str,
    responses: Mapping[int, Any],
    body: None = None,
    **options: Unpack[Options],
) -> Callable[[Handler], Handler]: ...


@overload
def documented(
    *,
    summary: str,
    responses: Mapping[int, Any],
    body: Verbatim,
    **options: Unpack[Options],
) -> Callable[[TakesBody[bytes, Reply]], Route[Reply]]: ...


@overload
def documented(
    *,
    summary: str,
    responses: Mapping[int, Any],
    body: type[Body],
    **options: Unpack[Options],
) -> Callable[[TakesBody[Body, Reply]], Route[Reply]]: ...


def documented(
    *, summary: str, responses: Mapping[int, Any], body: Any = None, **options: Unpack[Options]
) -> Callable[[Any], Any]:
    """Declare the route; with a `body`, the handler takes it decoded as its second
    argument (see the module's docstring)."""
    shape = body.shape if isinstance(body, Verbatim) else body
    operation = describe(summary=summary, responses=responses, body=shape, **options)

    def attach(handler: Any) -> Any:
        route = handler if body is None else _taking_body(handler, operation, body)
        return _declared(route, operation)

    return attach


def streamed(
    *, summary: str, responses: Mapping[int, Any], body: Any, **options: Unpack[Options]
) -> Callable[[Handler], Handler]:
    """Declare a route that reads its own body as a stream (an upload may be larger than
    the app's body limit): documented with `body` as `documented` would, and handed
    nothing but the request."""
    operation = describe(summary=summary, responses=responses, body=body, **options)

    def attach(handler: Handler) -> Handler:
        route: Handler = _declared(handler, operation)
        return route

    return attach


def _declared(route: Any, operation: Operation) -> Any:
    """The route carrying its declaration, behind the required-key check when it has one."""
    if any(h.name == IDEMPOTENCY_KEY and h.required for h in operation.headers):
        route = _keyed(route)
    setattr(route, SPEC_ATTR, operation)
    return route


def _taking_body(handler: TakesBody[Any, Reply], operation: Operation, body: Any) -> Route[Reply]:
    @functools.wraps(handler)
    async def route(request: web.Request) -> Reply:
        admit(request, operation.auth)
        if isinstance(body, Verbatim):
            return await handler(request, await request.read())
        return await handler(
            request, await read_json(request, body, required=operation.body_required)
        )

    return route


def _keyed(route: Route[Reply]) -> Route[Reply]:
    """Refuse a request without its required Idempotency-Key before anything else."""

    @functools.wraps(route)
    async def keyed(request: web.Request) -> Reply:
        required_key(request)
        return await route(request)

    return keyed


def idempotency(required: bool) -> Header:
    if required:
        text = "required: the same key with the same body returns the first result"
    else:
        text = "optional: the same key with the same body returns the first result"
    return Header(
        IDEMPOTENCY_KEY,
        f"{text}; with another body it is a 409 `idempotency_conflict`",
        required=required,
        schema=IDEMPOTENCY_SCHEMA,
    )
