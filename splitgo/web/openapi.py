"""OpenAPI 3.1 for every route, generated from the route table and the msgspec types.

Each handler says what it takes and answers with `@documented(...)` (`declare.py`): a
summary, the body Struct it is handed decoded, its query parameters (a Struct), its
headers, and a type per success status. `build_spec(app)` walks the application's router
for methods, paths and path parameters, reads what each handler carries, makes each route
an operation (`openapi_operations.py`) and every named type JSON Schema
(`openapi_schema.py`), and assembles the document from them.

Routes whose handlers live elsewhere (/metrics, the bot's webhook) are described in
`EXTERNAL`; `undocumented(app)` lists any route that is in neither.

`GET /api/openapi.json` serves the document; `GET /api/docs` renders it for people, on the
server, with `GET /api/docs.css` (`docs_page.py`).
"""

from __future__ import annotations

import importlib.metadata
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from splitgo.pages.keys import is_page
from splitgo.web.declare import JSON, SPEC_ATTR, Content, Header, Operation, describe, documented
from splitgo.web.docs_page import STYLESHEET_PATH, docs_page, docs_stylesheet
from splitgo.web.hardening import RATE_LIMITED
from splitgo.web.openapi_operations import operation_object, path_parameters, problem_responses
from splitgo.web.openapi_schema import SchemaBook, shape_types
from splitgo.web.problems import Problem

routes = web.RouteTableDef()

OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"


# Routes whose handlers live outside the edge's route modules (other edges, the metrics
# exporter): described here by method and path.
EXTERNAL: dict[tuple[str, str], Operation] = {
    ("GET", "/metrics"): describe(
        summary="Prometheus metrics",
        description="Per-actor messages, failures, restarts, mailbox depth and handling "
        "latency; HTTP request and database query histograms, in the Prometheus text format.",
        tags=["ops"],
        auth="none",
        actor=False,
        responses={200: Content(media_type="text/plain", description="Prometheus text format")},
    ),
    ("POST", "/telegram/webhook"): describe(
        summary="Telegram's updates (webhook mode)",
        description="Only served with SPLITGO_TELEGRAM_MODE=webhook; Telegram sends the "
        "configured secret in X-Telegram-Bot-Api-Secret-Token.",
        tags=["telegram"],
        auth="none",
        body=dict[str, Any],
        headers=[Header("X-Telegram-Bot-Api-Secret-Token", "the webhook secret", required=True)],
        responses={200: dict[str, bool]},
        errors=[401],
    ),
}


def operation_of(method: str, path: str, handler: Any) -> Operation | None:
    found = getattr(handler, SPEC_ATTR, None)
    if isinstance(found, Operation):
        return found
    return EXTERNAL.get((method, path))


# ── the document ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class RouteEntry:
    method: str
    path: str
    handler: Any
    resource: web.AbstractResource
    operation: Operation | None


def route_entries(app: web.Application) -> list[RouteEntry]:
    """Every (method, path) the app serves (HEAD, which aiohttp adds to GETs, left out; and
    the web app's pages, HTML for people: `splitgo.pages`)."""
    entries = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None or is_page(route.handler):
            continue
        path = route.resource.canonical
        operation = operation_of(route.method, path, route.handler)
        entries.append(RouteEntry(route.method, path, route.handler, route.resource, operation))
    return entries


def undocumented(app: web.Application) -> list[str]:
    """`METHOD /path` of every route that carries no description."""
    return [f"{e.method} {e.path}" for e in route_entries(app) if e.operation is None]


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[-1]
        for inner in value.values():
            yield from _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _refs(inner)


def used_schemas(components: Mapping[str, Any], roots: Iterable[Any]) -> dict[str, Any]:
    """The components some operation reaches (a Derived view's base only when used)."""
    pending = [name for root in roots for name in _refs(root)]
    used: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending.extend(_refs(components[name]))
    return {name: components[name] for name in sorted(used)}


def _version() -> str:
    try:
        return importlib.metadata.version("splitgo")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a tree
        return "0.0.0"


DESCRIPTION = """\
splitgo: friends sharing money — expense groups, a wallet on a double-entry ledger,
settlements, rides, notifications.

* JSON in and out; times are RFC 3339 UTC strings; ids are opaque strings.
* Money is `{"amount": 1250, "currency": "EUR"}`: integer minor units, ISO 4217 code.
* `Authorization: Bearer <access_token>` (from `POST /api/v1/auth/login`); `/ops/*` takes the
  node's ops token or an admin's access token.
* Errors are RFC 9457 `application/problem+json` with a stable `code` and per-field `errors`.
* Lists page with `?limit=` (1..200, default 50) and `?cursor=`.
* POSTs that move money take an `Idempotency-Key` header.
* Every response carries `X-Request-Id` (echoed from the request when given).
"""

TAGS = [
    {"name": "auth", "description": "Accounts, tokens, sessions, social sign-in, the caller"},
    {"name": "payments", "description": "Wallet, top-ups, provider webhooks, transfers"},
    {"name": "splits", "description": "Groups, expenses, balances, settling up"},
    {"name": "rides", "description": "Drivers, estimates, rides and their steps"},
    {"name": "chat", "description": "Conversations about money, their messages, read markers"},
    {"name": "notifications", "description": "The in-app feed, preferences, live updates"},
    {"name": "ops", "description": "Health, readiness, actors, dead letters, metrics"},
    {"name": "docs", "description": "This document"},
    {"name": "telegram", "description": "The Telegram bot's webhook"},
]


def build_spec(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of `app`."""
    entries = [entry for entry in route_entries(app) if entry.operation is not None]
    request_types: list[Any] = []
    reply_shapes: list[Any] = [Problem]
    for entry in entries:
        assert entry.operation is not None
        if entry.operation.body is not None:
            request_types.extend(shape_types(entry.operation.body))
        reply_shapes.extend(entry.operation.responses.values())
    book = SchemaBook(request_types, reply_shapes)

    names = [getattr(e.handler, "__name__", "handler") for e in entries]
    paths: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    for entry, name in zip(entries, names, strict=True):
        assert entry.operation is not None
        operation_id = entry.operation.operation_id or name
        if names.count(name) > 1 and entry.operation.operation_id is None:
            module = getattr(entry.handler, "__module__", "") or ""
            operation_id = f"{module.rsplit('.', 1)[-1]}_{name}"
        # one handler on two paths (an old path kept beside the contract's): each its own id
        base, copy = operation_id, 1
        while operation_id in taken:
            copy += 1
            operation_id = f"{base}_{copy}"
        taken.add(operation_id)
        paths.setdefault(entry.path, {})[entry.method.lower()] = operation_object(
            book,
            entry.operation,
            operation_id=operation_id,
            path_params=path_parameters(entry.resource),
            handler=entry.handler,
            rate_limited=(entry.method, entry.path) in RATE_LIMITED,
        )
    used_tags = {tag for entry in entries if entry.operation for tag in entry.operation.tags}
    responses = problem_responses(book, paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "splitgo", "version": _version(), "description": DESCRIPTION},
        "tags": [tag for tag in TAGS if tag["name"] in used_tags],
        "paths": paths,
        "components": {
            "schemas": used_schemas(book.components, [paths, responses]),
            "responses": responses,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from POST /api/v1/auth/login (15 minutes).",
                },
                "opsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The node's ops token (SPLITGO_OPS_TOKEN, or DATA_DIR/ops-"
                    "token), or the access token of a user with the admin role.",
                },
            },
            "headers": {
                "RequestId": {
                    "description": "The request's id: echoed from the request when given, "
                    "else made up; the trace id of everything the request causes.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
    }


# ── serving it ────────────────────────────────────────────────────────────────────────

_documents: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()
_pages: weakref.WeakKeyDictionary[web.Application, str] = weakref.WeakKeyDictionary()


def spec_bytes(app: web.Application) -> bytes:
    """The document as JSON, built once per application (routes are frozen by then)."""
    cached = _documents.get(app)
    if cached is None:
        cached = msgspec.json.encode(build_spec(app))
        _documents[app] = cached
    return cached


@routes.get(OPENAPI_PATH)
@documented(
    summary="This API as OpenAPI 3.1",
    tags=["docs"],
    auth="none",
    actor=False,
    responses={200: Content(dict[str, Any], description="the OpenAPI 3.1 document")},
)
async def openapi_document(request: web.Request) -> web.Response:
    """Generated from the route table and the request and reply types of every handler."""
    return web.Response(
        body=spec_bytes(request.app),
        content_type=JSON,
        headers={"Cache-Control": "no-cache"},
    )


@routes.get(DOCS_PATH)
@documented(
    summary="This API, for people",
    tags=["docs"],
    auth="none",
    actor=False,
    responses={200: Content(media_type="text/html", description="the rendered document")},
)
async def openapi_docs(request: web.Request) -> web.Response:
    """The document rendered on the server: every operation by tag, then every schema; no
    script and nothing from another host."""
    page = _pages.get(request.app)
    if page is None:
        page = docs_page(msgspec.json.decode(spec_bytes(request.app)), OPENAPI_PATH)
        _pages[request.app] = page
    response = web.Response(text=page, content_type="text/html")
    response.enable_compression()  # a few hundred KB of tables, a tenth of it compressed
    return response


routes.get(STYLESHEET_PATH)(docs_stylesheet)
