"""Our own static files (CSS, JavaScript modules, images), served from memory under names
that carry a hash of their content (`app.3f2a1b9c0d4e.css`), so a browser may keep each
for a year: a changed file is a new name. The plain name answers too, revalidated each
time, and `/favicon.ico` answers with the SVG icon (a missing one is a console error)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

FOLDER = Path(__file__).parent / "static"
PREFIX = "/static/"
FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"
FAVICON_CACHE = "public, max-age=86400"
FAVICON = "favicon.svg"

TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".woff2": "font/woff2",
}
TEXT = ("text/", "image/svg+xml", "application/manifest+json", "application/json")


@dataclass(frozen=True, slots=True)
class Asset:
    """One file: its bytes, media type, strong ETag and the name with its hash."""

    body: bytes
    content_type: str
    etag: str
    hashed_name: str


class Assets:
    """The files of one folder (not its subfolders), read once, by plain and hashed name."""

    def __init__(self, folder: Path = FOLDER) -> None:
        self._plain: dict[str, Asset] = {}
        self._hashed: dict[str, Asset] = {}
        paths = sorted(folder.iterdir()) if folder.is_dir() else []
        for path in paths:
            content_type = TYPES.get(path.suffix)
            if not path.is_file() or content_type is None:
                continue
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            hashed = f"{path.stem}.{digest}{path.suffix}"
            asset = Asset(body, content_type, f'"{digest}"', hashed)
            self._plain[path.name] = asset
            self._hashed[hashed] = asset

    def url(self, name: str) -> str:
        """The long-lived URL of the file called `name` (a template's `static('app.css')`)."""
        asset = self._plain.get(name)
        if asset is None:
            raise LookupError(f"no static file {name!r} in splitgo/pages/static")
        return PREFIX + asset.hashed_name

    def find(self, name: str) -> tuple[Asset, bool] | None:
        """The file a request names, and whether it was named by its hash."""
        if (asset := self._hashed.get(name)) is not None:
            return asset, True
        if (asset := self._plain.get(name)) is not None:
            return asset, False
        return None

    def __len__(self) -> int:
        return len(self._plain)


def respond(request: web.Request, asset: Asset, cache: str) -> web.Response:
    """The file, or 304 when the browser's copy (If-None-Match) is the same."""
    headers = {"Cache-Control": cache, "ETag": asset.etag}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    text = asset.content_type.startswith(TEXT)
    return web.Response(
        body=asset.body,
        content_type=asset.content_type,
        charset="utf-8" if text else None,
        headers=headers,
    )


def served(assets: Assets) -> web.RouteTableDef:
    """The routes of `/static/{name}` and `/favicon.ico` over these files."""
    routes = web.RouteTableDef()

    @routes.get(PREFIX + "{name}")
    async def static_file(request: web.Request) -> web.Response:
        found = assets.find(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        asset, hashed = found
        return respond(request, asset, FOREVER if hashed else REVALIDATE)

    @routes.get("/favicon.ico")
    async def favicon(request: web.Request) -> web.Response:
        found = assets.find(FAVICON)
        if found is None:
            raise web.HTTPNotFound()
        return respond(request, found[0], FAVICON_CACHE)

    return routes
