"""The API document rendered for people, on the server, from the OpenAPI document itself.

Every operation, grouped by tag, with its method and path, summary and description, who
may call it, its parameters, its request body (the schema's fields in a table) and its
responses; then the authentication schemes and every named schema. Plain HTML and one
small stylesheet of our own (`GET /api/docs.css`, named by its content's hash so it is
cached for good): no script, nothing from another host, so `/api/docs` lives under a
strict Content-Security-Policy (`hardening.DOCS_CSP`, no `'unsafe-inline'`).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from aiohttp import web

from splitgo.web.declare import Content, documented

STYLESHEET_PATH = "/api/docs.css"
SCHEMA_REF = "#/components/schemas/"
RESPONSE_REF = "#/components/responses/"
HEADER_REF = "#/components/headers/"
UNTAGGED = "other"
# long-lived: the page names the stylesheet by its content's hash (`?v=`)
IMMUTABLE = "public, max-age=31536000, immutable"

STYLESHEET = """\
:root {
  color-scheme: light dark;
  --text: #1f2933; --muted: #52606d; --background: #ffffff; --surface: #f5f7fa;
  --border: #d9e2ec; --accent: #0f766e; --get: #0f766e; --post: #1d4ed8;
  --put: #92400e; --patch: #6d28d9; --delete: #b91c1c;
}
@media (prefers-color-scheme: dark) {
  :root {
    --text: #e4e7eb; --muted: #b6c2cf; --background: #12181f; --surface: #1c2530;
    --border: #334155; --accent: #5eead4; --get: #5eead4; --post: #93c5fd;
    --put: #fcd34d; --patch: #c4b5fd; --delete: #fca5a5;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; color: var(--text); background: var(--background);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
header, main { max-width: 960px; margin: 0 auto; padding: 16px; }
header { border-bottom: 1px solid var(--border); }
h1 { font-size: 32px; margin: 8px 0; }
h2 { font-size: 24px; margin: 32px 0 8px; padding-top: 16px; border-top: 1px solid var(--border); }
h3 { font-size: 20px; margin: 24px 0 8px; overflow-wrap: anywhere; }
h4 { font-size: 16px; margin: 16px 0 4px; }
p, ul { margin: 8px 0; }
p, li { overflow-wrap: anywhere; }
a { color: var(--accent); }
a:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 14px;
  overflow-wrap: anywhere; }
.muted, .about { color: var(--muted); }
.operation, .schema { border: 1px solid var(--border); border-radius: 8px; padding: 0 16px 8px;
  margin: 16px 0; background: var(--surface); }
.method { display: inline-block; min-width: 4.5em; padding: 0 8px; margin-right: 8px;
  border: 1px solid currentColor; border-radius: 8px; font-size: 14px; text-align: center; }
.method-get { color: var(--get); } .method-post { color: var(--post); }
.method-put { color: var(--put); } .method-patch { color: var(--patch); }
.method-delete { color: var(--delete); }
.table { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px;
  border-bottom: 1px solid var(--border); }
td table { margin: 4px 0; }
td:first-child code { white-space: nowrap; overflow-wrap: normal; }
nav ul { padding-left: 16px; }
nav li { margin: 2px 0; }
"""
STYLESHEET_VERSION = hashlib.sha256(STYLESHEET.encode()).hexdigest()[:16]

_CODE_SPAN = re.compile(r"`([^`]+)`")


class StylesheetQuery(msgspec.Struct):
    """`?v=`: the stylesheet's version as the page names it."""

    v: Annotated[str, msgspec.Meta(description="the content hash the page links")] = ""


@documented(
    summary="The API page's stylesheet",
    tags=["docs"],
    auth="none",
    actor=False,
    query=StylesheetQuery,
    responses={200: Content(media_type="text/css", description="the stylesheet of /api/docs")},
)
async def docs_stylesheet(request: web.Request) -> web.Response:
    """Our own CSS for /api/docs; cached for good under the version the page links."""
    current = request.query.get("v") == STYLESHEET_VERSION
    return web.Response(
        text=STYLESHEET,
        content_type="text/css",
        headers={"Cache-Control": IMMUTABLE if current else "no-cache"},
    )


# ── text ──────────────────────────────────────────────────────────────────────────────


def inline(text: str) -> str:
    """Escaped text with its `code` spans as <code>."""
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(text))


def prose(text: str) -> str:
    """A description as paragraphs and bullet lists (lines starting "* " or "- "; an
    indented line goes on with the item above it), in the order they come."""
    blocks: list[str] = []
    words: list[str] = []
    items: list[str] = []

    def close_paragraph() -> None:
        if words:
            blocks.append(f"<p>{inline(' '.join(words))}</p>")
            words.clear()

    def close_list() -> None:
        if items:
            blocks.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>")
            items.clear()

    for line in text.strip().splitlines():
        stripped = line.strip()
        if not stripped:
            close_paragraph()
            close_list()
        elif stripped[:2] in ("* ", "- "):
            close_paragraph()
            items.append(stripped[2:])
        elif items and line.startswith(" "):
            items[-1] += " " + stripped
        else:
            close_list()
            words.append(stripped)
    close_paragraph()
    close_list()
    return "\n".join(blocks)


def anchor(kind: str, name: str) -> str:
    return html.escape(f"{kind}-{name}", quote=True)


def table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A table whose cells are HTML already; it scrolls by itself on a narrow screen."""
    header = "".join(f'<th scope="col">{cell}</th>' for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        f'<div class="table"><table><thead><tr>{header}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


# ── schemas ───────────────────────────────────────────────────────────────────────────


def literal(value: Any) -> str:
    """A JSON value as code (a string without its quotes)."""
    shown = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return f"<code>{html.escape(shown, quote=False)}</code>"


def limits(schema: Mapping[str, Any]) -> list[str]:
    """What a schema's keywords bound, in words."""
    found = []
    empty = [key for key in ("minLength", "minItems") if schema.get(key) == 1]
    if empty:
        found.append("not empty")
        schema = {key: value for key, value in schema.items() if key not in empty}
    bounds = (
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minimum", "≥ {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "≤ {}"),
        ("exclusiveMaximum", "< {}"),
        ("minItems", "at least {} items"),
        ("maxItems", "at most {} items"),
    )
    for keyword, words in bounds:
        if keyword in schema:
            found.append(html.escape(words.format(schema[keyword])))
    if "format" in schema:
        found.append(f"format {html.escape(str(schema['format']))}")
    if "pattern" in schema:
        found.append(f"pattern <code>{html.escape(str(schema['pattern']))}</code>")
    return found


def type_html(schema: Any) -> str:
    """A schema as a short phrase: a link for a named schema, a nested table for an
    object with fields, the alternatives of an anyOf, the values of an enum."""
    if not isinstance(schema, Mapping):
        return "any"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
        name = ref[len(SCHEMA_REF) :]
        return f'<a href="#{anchor("schema", name)}"><code>{html.escape(name)}</code></a>'
    for combinator, joiner in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        if combinator in schema:
            return joiner.join(type_html(part) for part in schema[combinator])
    if "const" in schema:
        return literal(schema["const"])
    if "enum" in schema:
        shown = "one of " + ", ".join(literal(value) for value in schema["enum"])
    else:
        kind = schema.get("type")
        if isinstance(kind, list):
            shown = " or ".join(html.escape(str(part)) for part in kind)
        elif kind == "array":
            shown = f"array of {type_html(schema.get('items', {}))}"
        elif kind == "object" or "properties" in schema:
            extra = schema.get("additionalProperties")
            if schema.get("properties"):
                return "object" + fields_table(schema)
            shown = f"object of {type_html(extra)}" if isinstance(extra, Mapping) else "object"
        elif kind is None:
            shown = "any"
        else:
            shown = html.escape(str(kind))
    bounds = limits(schema)
    return shown + (f' <span class="muted">({", ".join(bounds)})</span>' if bounds else "")


def fields_table(schema: Mapping[str, Any]) -> str:
    """An object's fields: name, type, whether required, and what the document says."""
    required = set(schema.get("required", []))
    rows = []
    for name, field in schema.get("properties", {}).items():
        about = []
        if isinstance(field, Mapping):
            if field.get("description"):
                about.append(inline(str(field["description"])))
            if "default" in field:
                about.append(f"default {literal(field['default'])}")
        rows.append(
            (
                f"<code>{html.escape(name)}</code>",
                type_html(field),
                "required" if name in required else "optional",
                "; ".join(about),
            )
        )
    if schema.get("additionalProperties") is False:
        note = '<p class="muted">No other fields are accepted.</p>'
    else:
        note = ""
    return table(("field", "type", "needed", "about"), rows) + note


def named_schema(components: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    found = components.get(name)
    return found if isinstance(found, Mapping) else {}


# ── operations ────────────────────────────────────────────────────────────────────────

AUTH_WORDS = {
    "bearerAuth": "a user's access token (`Authorization: Bearer …`)",
    "opsToken": "the node's ops token, or an admin's access token",
}


def who_may_call(operation: Mapping[str, Any]) -> str:
    security = operation.get("security")
    if security is None:
        return ""
    if not security:
        return "<p><strong>Who may call it:</strong> anyone, no token needed.</p>"
    names = [name for requirement in security for name in requirement]
    words = " or ".join(inline(AUTH_WORDS.get(name, name)) for name in names)
    return f"<p><strong>Who may call it:</strong> {words}.</p>"


def parameters_html(operation: Mapping[str, Any]) -> str:
    parameters = operation.get("parameters") or []
    if not parameters:
        return ""
    rows = []
    for parameter in parameters:
        rows.append(
            (
                f"<code>{html.escape(str(parameter.get('name', '')))}</code>",
                html.escape(str(parameter.get("in", ""))),
                type_html(parameter.get("schema", {})),
                "required" if parameter.get("required") else "optional",
                inline(str(parameter.get("description", ""))),
            )
        )
    return "<h4>Parameters</h4>" + table(("name", "in", "type", "needed", "about"), rows)


def body_html(operation: Mapping[str, Any], components: Mapping[str, Any]) -> str:
    body = operation.get("requestBody")
    if not isinstance(body, Mapping):
        return ""
    parts = ["<h4>Request body</h4>"]
    needed = "required" if body.get("required") else "optional"
    for media_type, content in body.get("content", {}).items():
        schema = content.get("schema", {}) if isinstance(content, Mapping) else {}
        parts.append(f"<p><code>{html.escape(media_type)}</code>, {needed}</p>")
        parts.append(f"<div>{type_html(schema)}</div>")
        ref = schema.get("$ref") if isinstance(schema, Mapping) else None
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            named = named_schema(components, ref[len(SCHEMA_REF) :])
            if named.get("properties"):
                parts.append(fields_table(named))
    return "".join(parts)


def responses_html(operation: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    """The replies the operation defines, in a table; the problem replies it shares with
    the others (`#/components/responses/…`), in one line."""
    shared = spec.get("components", {}).get("responses", {})
    rows = []
    problems = []
    for status, reply in operation.get("responses", {}).items():
        ref = reply.get("$ref") if isinstance(reply, Mapping) else None
        if isinstance(ref, str) and ref.startswith(RESPONSE_REF):
            known = shared.get(ref[len(RESPONSE_REF) :], {})
            problems.append(
                f"{html.escape(str(status))} {inline(str(known.get('description', '')))}"
            )
            continue
        if not isinstance(reply, Mapping):
            continue
        contents = [
            f"<code>{html.escape(media_type)}</code> "
            + type_html(content.get("schema") if isinstance(content, Mapping) else None)
            for media_type, content in reply.get("content", {}).items()
        ]
        headers = [
            f"<code>{html.escape(name)}</code>"
            for name in reply.get("headers", {})
            if name != "X-Request-Id"  # on every response; said once, in the header
        ]
        rows.append(
            (
                f"<strong>{html.escape(str(status))}</strong>",
                inline(str(reply.get("description", ""))),
                "<br>".join(contents) or '<span class="muted">no body</span>',
                ", ".join(headers),
            )
        )
    parts = ["<h4>Responses</h4>"] if rows or problems else []
    if rows:
        parts.append(table(("status", "meaning", "body", "headers"), rows))
    if problems:
        parts.append(
            f"<p><strong>Problems</strong> (<code>application/problem+json</code>, "
            f"{type_html({'$ref': SCHEMA_REF + 'Problem'})}): {', '.join(problems)}.</p>"
        )
    return "".join(parts)


def operation_html(entry: Entry, spec: Mapping[str, Any]) -> str:
    path, method, operation, ident = entry.path, entry.method, entry.operation, entry.ident
    components = spec.get("components", {}).get("schemas", {})
    verb = html.escape(method.upper())
    parts = [
        f'<section class="operation" id="{ident}" aria-labelledby="{ident}-title">',
        f'<h3 id="{ident}-title"><span class="method method-{html.escape(method)}">{verb}</span> '
        f'<code class="path">{html.escape(path)}</code></h3>',
    ]
    if operation.get("summary"):
        parts.append(f'<p class="summary">{inline(str(operation["summary"]))}</p>')
    if operation.get("description"):
        parts.append(f'<div class="description">{prose(str(operation["description"]))}</div>')
    parts.append(who_may_call(operation))
    parts.append(parameters_html(operation))
    parts.append(body_html(operation, components))
    parts.append(responses_html(operation, spec))
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


@dataclass(frozen=True, slots=True)
class Entry:
    """One operation as the page shows it; `ident` is its anchor, unique on the page."""

    path: str
    method: str
    operation: Mapping[str, Any]
    ident: str


Group = tuple[str, str, list[Entry]]


def by_tag(spec: Mapping[str, Any]) -> list[Group]:
    """(tag, its description, its operations) in the document's tag order; an operation
    under its first tag only, untagged ones last."""
    groups: dict[str, list[Entry]] = {}
    taken: set[str] = set()
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            base = anchor("op", str(operation.get("operationId") or f"{method}-{path}"))
            ident, count = base, 1
            while ident in taken:
                count += 1
                ident = f"{base}-{count}"
            taken.add(ident)
            tags = operation.get("tags") or [UNTAGGED]
            groups.setdefault(str(tags[0]), []).append(Entry(path, method, operation, ident))
    described = {str(tag["name"]): str(tag.get("description", "")) for tag in spec.get("tags", [])}
    order = [name for name in described if name in groups]
    order += [name for name in groups if name not in described]
    return [(name, described.get(name, ""), groups[name]) for name in order]


def security_html(spec: Mapping[str, Any]) -> str:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    if not schemes:
        return ""
    rows = [
        (
            f"<code>{html.escape(name)}</code>",
            html.escape(f"{scheme.get('type', '')} {scheme.get('scheme', '')}".strip()),
            inline(str(scheme.get("description", ""))),
        )
        for name, scheme in schemes.items()
    ]
    return (
        '<section aria-labelledby="authentication"><h2 id="authentication">Authentication</h2>'
        + table(("name", "kind", "about"), rows)
        + "</section>"
    )


def schemas_html(spec: Mapping[str, Any]) -> str:
    schemas = spec.get("components", {}).get("schemas", {})
    if not schemas:
        return ""
    parts = ['<section aria-labelledby="schemas"><h2 id="schemas">Schemas</h2>']
    for name, schema in schemas.items():
        ident = anchor("schema", name)
        parts.append(f'<section class="schema" id="{ident}" aria-labelledby="{ident}-title">')
        parts.append(f'<h3 id="{ident}-title"><code>{html.escape(name)}</code></h3>')
        if isinstance(schema, Mapping) and schema.get("description"):
            parts.append(prose(str(schema["description"])))
        if isinstance(schema, Mapping) and schema.get("properties"):
            parts.append(fields_table(schema))
        else:
            parts.append(f"<div>{type_html(schema)}</div>")
        parts.append("</section>")
    parts.append("</section>")
    return "\n".join(parts)


def contents_html(groups: list[Group]) -> str:
    items = []
    for tag, _, entries in groups:
        links = "".join(
            f'<li><a href="#{entry.ident}">'
            f"<code>{html.escape(entry.method.upper())} {html.escape(entry.path)}</code></a></li>"
            for entry in entries
        )
        items.append(
            f'<li><a href="#{anchor("tag", tag)}">{html.escape(tag)}</a><ul>{links}</ul></li>'
        )
    items.append('<li><a href="#authentication">Authentication</a></li>')
    items.append('<li><a href="#schemas">Schemas</a></li>')
    return (
        '<nav aria-labelledby="contents"><h2 id="contents">Contents</h2><ul>'
        + "".join(items)
        + "</ul></nav>"
    )


def docs_page(spec: Mapping[str, Any], document_path: str) -> str:
    """The whole page for the OpenAPI document `spec`, which is served at `document_path`."""
    info = spec.get("info", {})
    title = html.escape(f"{info.get('title', 'API')} API {info.get('version', '')}".strip())
    groups = by_tag(spec)
    sections = []
    for tag, description, entries in groups:
        ident = anchor("tag", tag)
        sections.append(
            f'<section aria-labelledby="{ident}"><h2 id="{ident}">{html.escape(tag)}</h2>'
        )
        if description:
            sections.append(f'<p class="about">{inline(description)}</p>')
        sections.extend(operation_html(entry, spec) for entry in entries)
        sections.append("</section>")
    link = html.escape(document_path, quote=True)
    stylesheet = html.escape(f"{STYLESHEET_PATH}?v={STYLESHEET_VERSION}", quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{stylesheet}">
</head>
<body>
<header>
<h1>{title}</h1>
<p>The same document for programs: <a href="{link}"><code>{html.escape(document_path)}</code></a>
(OpenAPI {html.escape(str(spec.get("openapi", "")))}).</p>
</header>
<main>
{prose(str(info.get("description", "")))}
{contents_html(groups)}
{"".join(sections)}
{security_html(spec)}
{schemas_html(spec)}
</main>
</body>
</html>
"""
