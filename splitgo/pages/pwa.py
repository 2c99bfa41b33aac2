"""Installable, with push: the web app manifest, the service worker, the offline page, and
the page where a person turns Web Push on for a browser and sees their devices.

- `/manifest.webmanifest`: name, colours, icons (by their hashed names), start URL.
- `/sw.js` (static/sw.js with the shell's URLs put in front, so a changed file is a new
  worker that drops the old cache): caches the shell only — our CSS, JavaScript, icons and
  the offline page, none of which holds anything of a person; a page is always asked of the
  network, and the offline page stands in when there is none. Served at the root with
  `Service-Worker-Allowed: /`, revalidated on every check, under a CSP of its own that
  lets it fetch from this origin only.
- `/offline`: the page the worker shows with no network: rendered for nobody (no name, no
  navigation), so caching it keeps nothing private.
- `/account/push`: this user's push devices with Remove (a form: works without
  JavaScript) and "Turn on in this browser": static/push.js subscribes with the node's
  VAPID key, fills the form's hidden inputs and submits it, so it sends the notifications
  actor the JSON route's `AddPushSubscription` (splitgo/web/push.subscription_message).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp_jinja2
import msgspec
from aiohttp import web

from actors.notifications.messages import (
    ListPushSubscriptions,
    PushSubscriptionList,
    RemovePushSubscription,
)
from splitgo.pages import cookies
from splitgo.pages.account import device_of
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import signed_in
from splitgo.pages.keys import ASSETS, JINJA
from splitgo.pages.render import named, redirect, render, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.pages.static import FOLDER, TYPES, Asset, respond
from splitgo.web.actors import ask
from splitgo.web.hardening import PAGES_CSP
from splitgo.web.push import PushSubscriptionBody, subscription_message

routes = web.RouteTableDef()

OFFLINE = "/offline"
PUSH_PAGE = "/account/push"
MANIFEST_TYPE = "application/manifest+json"
# every check for a new worker, and the manifest, asks again (a browser keeps a worker at
# most a day whatever this says)
SHORT_CACHE = "public, max-age=0, must-revalidate"
# the worker's own policy: it fetches from this origin and shows our icons, nothing more
WORKER_CSP = "default-src 'none'; connect-src 'self'; img-src 'self'"
SHELL_EXTRA = (OFFLINE,)
WORKER = "sw.js"  # in static/, served at the root
THEME = "#0f766e"
BACKGROUND = "#ffffff"

cookies.FLASHES.update(
    {
        "push_on": "Notifications are on in this browser.",
        "push_removed": "That device no longer gets notifications.",
    }
)


def manifest(request: web.Request) -> dict[str, Any]:
    """The web app manifest, with the icons' long-lived URLs."""
    assets = request.app[ASSETS]
    return {
        "id": "/home",
        "name": "splitgo",
        "short_name": "splitgo",
        "description": "Share costs, settle up and ride together.",
        "start_url": "/home",
        "scope": "/",
        "display": "standalone",
        "background_color": BACKGROUND,
        "theme_color": THEME,
        "icons": [
            {"src": assets.url("favicon.svg"), "sizes": "any", "type": "image/svg+xml"},
            {"src": assets.url("icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": assets.url("icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                "src": assets.url("icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
        "shortcuts": [
            {"name": "Groups", "url": "/groups"},
            {"name": "Notifications", "url": "/notifications"},
        ],
    }


def _asset(body: bytes, content_type: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:12]
    return Asset(body, content_type, f'"{digest}"', "")


@routes.get("/manifest.webmanifest")
async def web_manifest(request: web.Request) -> web.Response:
    body = json.dumps(manifest(request), separators=(",", ":")).encode()
    return respond(request, _asset(body, MANIFEST_TYPE), SHORT_CACHE)


def worker_source(request: web.Request) -> bytes:
    """static/sw.js after the list of what it caches (every static file by its hashed
    name, and the offline page)."""
    assets = request.app[ASSETS]
    files = sorted(path.name for path in FOLDER.iterdir() if path.suffix in TYPES)
    shell = [assets.url(name) for name in files if name != WORKER] + list(SHELL_EXTRA)
    head = f"const SHELL = {json.dumps(shell)};\nconst OFFLINE = {json.dumps(OFFLINE)};\n"
    return head.encode() + (FOLDER / WORKER).read_bytes()


@routes.get("/sw.js")
async def service_worker(request: web.Request) -> web.Response:
    response = respond(request, _asset(worker_source(request), "text/javascript"), SHORT_CACHE)
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Content-Security-Policy"] = WORKER_CSP
    return response


@routes.get(OFFLINE)
async def offline(request: web.Request) -> web.Response:
    """The same for everyone (rendered without the viewer), so the worker may keep it."""
    text = aiohttp_jinja2.render_string(
        "offline.html", request, {"title": "You are offline"}, app_key=JINJA
    )
    return web.Response(
        text=text,
        content_type="text/html",
        headers={"Cache-Control": SHORT_CACHE, "Content-Security-Policy": PAGES_CSP},
    )


@routes.get(PUSH_PAGE)
@signed_in
async def push_devices(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    found: PushSubscriptionList = await ask(
        request, "notifications", ListPushSubscriptions(user_id=viewer.user_id)
    )
    devices = await named(request, found.items)
    return await render(
        request,
        "push_devices.html",
        {
            "title": "Push notifications",
            "section": "account",
            "devices": devices,
            "form": Form.blank(),
        },
    )


@routes.post(PUSH_PAGE)
@signed_in
async def turn_on(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The subscription push.js made in this browser, sent as the JSON route sends it."""
    form = await read_form(request)
    try:
        body = form.parse(PushSubscriptionBody)
        if not body.label:
            body = msgspec.structs.replace(body, label=device_of(request.headers.get("User-Agent")))
        await ask(request, "notifications", subscription_message(viewer.user_id, body, None))
    except REFUSALS as error:
        form.refuse(error)
        found: PushSubscriptionList = await ask(
            request, "notifications", ListPushSubscriptions(user_id=viewer.user_id)
        )
        return await render_with_form(
            request,
            "push_devices.html",
            {
                "title": "Push notifications",
                "section": "account",
                "devices": await named(request, found.items),
                "form": form,
            },
            form,
        )
    cookies.flash(request, "push_on")
    return redirect(PUSH_PAGE)


@routes.post(PUSH_PAGE + "/{id}/remove")
@signed_in
async def remove(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    await ask(
        request,
        "notifications",
        RemovePushSubscription(user_id=viewer.user_id, subscription_id=request.match_info["id"]),
    )
    cookies.flash(request, "push_removed")
    return redirect(PUSH_PAGE)
