"""Connected apps: the apps a person allowed to sign them in with splitgo, and Revoke.

`/account/apps` lists them (`ListConnectedApps`, as GET /api/v1/me/connected-apps): the
app's name, what it may see, since when. Revoke sends `RevokeConnectedApp` (as DELETE
/api/v1/me/connected-apps/{client_id}): the consent is forgotten and every grant the app
holds for this person ends, its refresh tokens with it; the next sign-in asks again.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from actors.auth.messages import (
    ConnectedAppNotFound,
    ConnectedApps,
    ListConnectedApps,
    RevokeConnectedApp,
)
from splitgo.pages import cookies
from splitgo.pages.authorize import SCOPE_WORDS
from splitgo.pages.forms import read_form
from splitgo.pages.guards import signed_in
from splitgo.pages.render import redirect, render
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask

log = structlog.get_logger("splitgo.pages.connected_apps")
routes = web.RouteTableDef()

APPS = "/account/apps"

cookies.FLASHES.update(
    {
        "app_revoked": "The app is disconnected. It has to ask you again to sign you in.",
        "app_gone": "That app was not connected any more.",
    }
)


@routes.get(APPS)
@signed_in
async def connected_apps(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    found: ConnectedApps = await ask(request, "auth", ListConnectedApps(user_id=viewer.user_id))
    apps = [
        {
            "client_id": app.client_id,
            "name": app.name,
            "sees": [SCOPE_WORDS.get(scope, scope) for scope in app.scopes],
            "since": app.since,
        }
        for app in found.items
    ]
    return await render(
        request,
        "connected_apps.html",
        {"title": "Connected apps", "section": "account", "apps": apps},
    )


@routes.post(f"{APPS}/{{client_id}}/revoke")
@signed_in
async def revoke(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    message = RevokeConnectedApp(user_id=viewer.user_id, client_id=request.match_info["client_id"])
    try:
        await ask(request, "auth", message)
    except ConnectedAppNotFound:
        cookies.flash(request, "app_gone")
    else:
        cookies.flash(request, "app_revoked")
    return redirect(APPS)
