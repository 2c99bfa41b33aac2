"""The API document rendered for people: Redoc over the local OpenAPI document, with a
plain list of operations when the renderer cannot load."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

REDOC = "https://cdn.redoc.ly/redoc/v2.1.5/bundles/redoc.standalone.js"


def docs_page(spec: Mapping[str, Any], document_path: str) -> str:
    """Redoc (from its CDN) over the document served at `document_path`; a plain list of
    operations when the renderer cannot load, and a link to the JSON."""
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
<p>The machine-readable document: <a href="{document_path}">{document_path}</a>.</p>
<noscript><p>JavaScript is off: this is the list of operations; the document above has
every body, reply and error.</p></noscript>
<table><thead><tr><th>method</th><th>path</th><th>what</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>
</section>
<script>
function showRedoc() {{
  Redoc.init("{document_path}", {{hideDownloadButton: false}}, document.getElementById("redoc"),
    function () {{ document.getElementById("plain").style.display = "none"; }});
}}
</script>
<script src="{REDOC}" onload="showRedoc()" async></script>
</body></html>
"""
