"""OpenAPI 3.1 for every route, generated from the route table and the msgspec types.

Each handler says what it takes and answers with `@documented(...)` (`declare.py`): a
summary, the body Struct it is handed decoded, its query parameters (a Struct), its
headers, and a type per success status. `build_spec(app)` walks the application's router
for methods, paths and path parameters, reads what each handler carries, and turns every
named type into JSON Schema with `msgspec.json.schema_components`: the document is derived
from the same types the handlers decode and send, not written a second time.

Replies are views of the actors' messages sent without their `msgspec` tag (`to_json()`
drops `msg_type`), with every field present: their schemas are made to match,
tag removed and every field required. `Derived` names a reply that is a view with fields
added or dropped (a user with `user` nested in it, a dead letter without its envelope),
`page(...)` the `{"items": [...], "next_cursor": ...}` wrapper, and `Raw` a schema that no
Struct can say (preferences keyed by category).

Errors are RFC 9457 `application/problem+json` (`problems.Problem`); each operation lists
the ones it can answer with: 400/413/415/422 where a body is read, 401 where a token is
needed, 403 for operators, 404 where a path names something, 429 on the routes the edge
rate-limits (`hardening.RATE_LIMITED`), 503 where an actor answers, plus what the handler
adds. Routes whose handlers live elsewhere (/metrics, the bot's webhook) are described in
`EXTERNAL`; `undocumented(app)` lists any route that is in neither.

`GET /api/openapi.json` serves the document; `GET /api/docs` renders it for people.
"""

from __future__ import annotations

import copy
import html
import http
import importlib.metadata
import inspect
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi
from aiohttp import web

from splitgo.web.declare import (
    JSON,
    SPEC_ATTR,
    Content,
    Derived,
    Header,
    Operation,
    Page,
    PageQuery,
    Raw,
    describe,
    documented,
)
from splitgo.web.hardening import RATE_LIMITED
from splitgo.web.problems import PROBLEM_TYPE, TITLES, Problem

routes = web.RouteTableDef()

REF = "#/components/schemas/{name}"
OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
REQUEST_ID = "X-Request-Id"
# aiohttp's default for a `{name}` segment: anything but a slash (and braces)
DEFAULT_SEGMENT = "[^{}/]+"


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


# ── from types to JSON Schema ─────────────────────────────────────────────────────────


def _walk_structs(info: mi.Type, found: dict[type, None]) -> None:
    if isinstance(info, mi.StructType):
        if info.cls in found:
            return
        found[info.cls] = None
        for struct_field in info.fields:
            _walk_structs(struct_field.type, found)
        return
    if isinstance(info, mi.Metadata):
        _walk_structs(info.type, found)
        return
    for name in ("item_type", "key_type", "value_type"):
        inner = getattr(info, name, None)
        if isinstance(inner, mi.Type):
            _walk_structs(inner, found)
    for name in ("types", "item_types"):
        for inner in getattr(info, name, ()) or ():
            if isinstance(inner, mi.Type):
                _walk_structs(inner, found)


def struct_classes(types: Iterable[Any]) -> list[type]:
    """Every Struct class reachable from `types`, in the order first met."""
    found: dict[type, None] = {}
    listed = list(types)
    if listed:
        for info in mi.multi_type_info(listed):
            _walk_structs(info, found)
    return list(found)


def _shape_types(shape: Any) -> Iterator[Any]:
    """The msgspec types a reply or body shape names."""
    if shape is None:
        return
    if isinstance(shape, Content):
        yield from _shape_types(shape.type)
    elif isinstance(shape, Derived):
        yield shape.base
        for added in shape.add.values():
            yield from _shape_types(added)
    elif isinstance(shape, Raw):
        for referenced in shape.refs.values():
            yield from _shape_types(referenced)
    elif isinstance(shape, Page):
        yield from _shape_types(shape.item)
    else:
        yield shape


def _derived_in(shape: Any) -> Iterator[Derived]:
    if isinstance(shape, Content):
        yield from _derived_in(shape.type)
    elif isinstance(shape, Derived):
        yield shape
        for added in shape.add.values():
            yield from _derived_in(added)
    elif isinstance(shape, Raw):
        for referenced in shape.refs.values():
            yield from _derived_in(referenced)
    elif isinstance(shape, Page):
        yield from _derived_in(shape.item)


def untagged(schema: dict[str, Any], tag_field: str) -> dict[str, Any]:
    """A tagged Struct's schema as the edge sends it: without the tag."""
    schema = copy.deepcopy(schema)
    schema.get("properties", {}).pop(tag_field, None)
    if "required" in schema:
        schema["required"] = [name for name in schema["required"] if name != tag_field]
    return schema


def _strip_discriminators(value: Any, tag_fields: set[str]) -> None:
    """Tagged unions name their tag as discriminator; the edge sends none."""
    if isinstance(value, dict):
        discriminator = value.get("discriminator")
        if isinstance(discriminator, dict) and discriminator.get("propertyName") in tag_fields:
            del value["discriminator"]
        for inner in value.values():
            _strip_discriminators(inner, tag_fields)
    elif isinstance(value, list):
        for inner in value:
            _strip_discriminators(inner, tag_fields)


class SchemaBook:
    """The components, and each declared type's schema (a `$ref` for Structs)."""

    def __init__(self, request_types: Iterable[Any], reply_shapes: Iterable[Any]) -> None:
        shapes = list(reply_shapes)
        requests = list(dict.fromkeys(_hashable(request_types)))
        replies = list(dict.fromkeys(_hashable(t for s in shapes for t in _shape_types(s))))
        request_structs = struct_classes(requests)
        reply_structs = struct_classes(replies)
        ordered = list(dict.fromkeys([*requests, *replies, *request_structs, *reply_structs]))
        schemas, components = msgspec.json.schema_components(ordered, ref_template=REF)
        self._schemas: dict[Any, dict[str, Any]] = dict(zip(ordered, schemas, strict=True))
        self.components: dict[str, dict[str, Any]] = components
        tag_fields: set[str] = set()
        for cls in [*request_structs, *reply_structs]:
            name = self.component_name(cls)
            config = cls.__struct_config__  # type: ignore[attr-defined]
            if config.tag_field is not None:
                tag_fields.add(config.tag_field)
                self.components[name] = untagged(self.components[name], config.tag_field)
            if cls in reply_structs and cls not in request_structs and not config.omit_defaults:
                # plain()/to_json()/asdict() send every field, defaults too
                properties = self.components[name].get("properties", {})
                self.components[name]["required"] = list(properties)
        _strip_discriminators(self.components, tag_fields)
        for shape in shapes:
            for derived in _derived_in(shape):
                self._derive(derived)

    def component_name(self, cls: Any) -> str:
        ref = self._schemas[cls]["$ref"]
        assert isinstance(ref, str)
        return ref.rsplit("/", 1)[-1]

    def _derive(self, derived: Derived) -> None:
        base = copy.deepcopy(self.components[self.component_name(derived.base)])
        properties: dict[str, Any] = base.setdefault("properties", {})
        required: list[str] = base.setdefault("required", [])
        for name in derived.drop:
            properties.pop(name, None)
            if name in required:
                required.remove(name)
        for name, shape in derived.add.items():
            properties[name] = self.schema(shape)
            if name not in required:
                required.append(name)
        base["title"] = derived.name
        if derived.description:
            base["description"] = derived.description
        self.components[derived.name] = base

    def schema(self, shape: Any) -> dict[str, Any]:
        """The schema of a declared type or shape (Derived ones by `$ref`)."""
        if isinstance(shape, Content):
            return self.schema(shape.type) if shape.type is not None else {}
        if isinstance(shape, Derived):
            return {"$ref": REF.format(name=shape.name)}
        if isinstance(shape, Page):
            return {
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": self.schema(shape.item)},
                    "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["items", "next_cursor"],
            }
        if isinstance(shape, Raw):
            refs = {name: self.schema(t) for name, t in shape.refs.items()}
            filled: dict[str, Any] = _fill_refs(copy.deepcopy(dict(shape.schema)), refs)
            return filled
        return copy.deepcopy(self._schemas[shape])


def _hashable(types: Iterable[Any]) -> Iterator[Any]:
    for t in types:
        hash(t)  # every declared type is a key of the book
        yield t


def _fill_refs(value: Any, refs: Mapping[str, dict[str, Any]]) -> Any:
    """Replace `{"$ref": name}` leaves of a Raw schema with the named type's schema."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref in refs and len(value) == 1:
            return refs[ref]
        return {key: _fill_refs(inner, refs) for key, inner in value.items()}
    if isinstance(value, list):
        return [_fill_refs(inner, refs) for inner in value]
    return value


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if option != {"type": "null"}]
        rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
        if len(kept) == 1:
            return {**kept[0], **rest}
        return {**rest, "anyOf": kept}
    return schema


def query_parameters(query: Any) -> list[dict[str, Any]]:
    """A query Struct's fields as `in: query` parameters."""
    if query is None:
        return []
    (ref,), components = msgspec.json.schema_components([query], ref_template=REF)
    struct = components[ref["$ref"].rsplit("/", 1)[-1]]
    required = set(struct.get("required", []))
    parameters = []
    for name, schema in struct.get("properties", {}).items():
        schema = _without_null(dict(schema))
        if schema.get("default") == "":
            del schema["default"]
        description = schema.pop("description", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": schema,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


# ── paths ─────────────────────────────────────────────────────────────────────────────


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
    if shape is not None:
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


@dataclass(frozen=True, slots=True)
class RouteEntry:
    method: str
    path: str
    handler: Any
    resource: web.AbstractResource
    operation: Operation | None


def route_entries(app: web.Application) -> list[RouteEntry]:
    """Every (method, path) the app serves (HEAD, which aiohttp adds to GETs, left out)."""
    entries = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
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
            request_types.extend(_shape_types(entry.operation.body))
        reply_shapes.extend(entry.operation.responses.values())
    book = SchemaBook(request_types, reply_shapes)

    names = [getattr(e.handler, "__name__", "handler") for e in entries]
    paths: dict[str, dict[str, Any]] = {}
    for entry, name in zip(entries, names, strict=True):
        assert entry.operation is not None
        operation_id = entry.operation.operation_id or name
        if names.count(name) > 1 and entry.operation.operation_id is None:
            module = getattr(entry.handler, "__module__", "") or ""
            operation_id = f"{module.rsplit('.', 1)[-1]}_{name}"
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


REDOC = "https://cdn.redoc.ly/redoc/v2.1.5/bundles/redoc.standalone.js"


def docs_page(spec: Mapping[str, Any]) -> str:
    """Redoc (from its CDN) over the local document; a plain list of operations when the
    renderer cannot load, and a link to the JSON."""
    rows = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(str(operation.get('summary', '')))}</td></tr>"
            )
    title = html.escape(f"{spec['info']['title']} API {spec['info']['version']}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{margin:0;font-family:system-ui,sans-serif}}#plain{{padding:1rem 2rem}}
td{{padding:.15rem .6rem;vertical-align:top}}</style>
</head><body>
<div id="redoc"></div>
<section id="plain">
<h1>{title}</h1>
<p>The machine-readable document: <a href="{OPENAPI_PATH}">{OPENAPI_PATH}</a>.</p>
<noscript><p>JavaScript is off: this is the list of operations; the document above has
every body, reply and error.</p></noscript>
<table><thead><tr><th>method</th><th>path</th><th>what</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
</section>
<script>
function showRedoc() {{
  Redoc.init("{OPENAPI_PATH}", {{hideDownloadButton: false}}, document.getElementById("redoc"),
    function () {{ document.getElementById("plain").style.display = "none"; }});
}}
</script>
<script src="{REDOC}" onload="showRedoc()" async></script>
</body></html>
"""


@routes.get(DOCS_PATH)
@documented(
    summary="This API, for people",
    tags=["docs"],
    auth="none",
    actor=False,
    responses={200: Content(media_type="text/html", description="the rendered document")},
)
async def openapi_docs(request: web.Request) -> web.Response:
    """The document rendered by Redoc, with a plain list of operations as a fallback."""
    spec = msgspec.json.decode(spec_bytes(request.app))
    return web.Response(text=docs_page(spec), content_type="text/html")
