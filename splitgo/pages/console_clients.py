"""Pages: the console's apps — the apps that sign people in with splitgo (OpenID Connect
clients), for admins.

`/console/apps` lists them and has the form to register one (name, redirect URIs one per
line, public or not) — `RegisterOidcClient`, as POST /api/v1/admin/oidc-clients, built
from the same body struct. The answer page shows the new client's id and secret, this
once (only a digest is kept). Remove (`DeleteOidcClient`) asks for a confirmation first.
"""

from __future__ import annotations

import msgspec
import structlog
from aiohttp import web

from actors.auth.messages import (
    DeleteOidcClient,
    ListOidcClients,
    NewOidcClient,
    OidcClientList,
    OidcClientNotFound,
)
from splitgo.pages.console import admins_only
from splitgo.pages.cookies import FLASHES, flash
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.render import redirect, render, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask
from splitgo.web.keys import SERVICES
from splitgo.web.oidc_clients import OidcClientBody, register_client_message
from splitgo.web.problems import validation_problem

log = structlog.get_logger("splitgo.pages.console_clients")
routes = web.RouteTableDef()

APPS = "/console/apps"
URIS_MAX = 10
# a refusal of the n-th redirect URI is shown at the one text area that holds them all
_URI_INPUTS: dict[str, str | None] = {
    f"$.redirect_uris[{n}]": "redirect_uris" for n in range(URIS_MAX)
}

FLASHES.update(
    {
        "app_removed": "The app is removed; nobody can sign in to it with splitgo any more.",
        "app_not_found": "That app was removed already.",
    }
)


def body_of(form: Form) -> OidcClientBody:
    """The JSON route's body made of the form: one redirect URI per line of its text area."""
    uris = [line.strip() for line in form.value("redirect_uris").splitlines() if line.strip()]
    data = {
        "name": form.value("name"),
        "redirect_uris": uris,
        "public": form.value("public") == "yes",
    }
    try:
        return msgspec.convert(data, OidcClientBody)
    except msgspec.ValidationError as error:
        raise validation_problem(error) from None


@routes.get(APPS)
@admins_only
async def apps(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _apps_page(request, Form.blank())


@routes.post(APPS)
@admins_only
async def register(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = body_of(form)
        message = register_client_message(body, viewer.user_id)
        created: NewOidcClient = await ask(request, "auth", message)
    except REFUSALS as error:
        form.refuse(error, inputs=_URI_INPUTS)
        return await _apps_page(request, form)
    # shown once, in this answer: never a redirect that would need it kept somewhere
    return await _apps_page(request, Form.blank(), created=created, status=201)


@routes.get(APPS + "/{client_id}/remove")
@admins_only
async def confirm_remove(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    client_id = request.match_info["client_id"]
    return await render(
        request,
        "console_confirm.html",
        {
            "title": "Remove this app?",
            "section": "console",
            "action": f"{APPS}/{client_id}/remove",
            "text": (
                "Nobody can sign in to it with splitgo any more: what people allowed it, "
                "its codes and refresh tokens are deleted. This cannot be undone."
            ),
            "confirm": "Remove the app",
            "working": "Removing…",
            "danger": True,
            "back": APPS,
            "ids": [],
            "letters": [],
        },
    )


@routes.post(APPS + "/{client_id}/remove")
@admins_only
async def remove(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    client_id = request.match_info["client_id"]
    try:
        await ask(request, "auth", DeleteOidcClient(client_id=client_id))
    except OidcClientNotFound:
        flash(request, "app_not_found")
        return redirect(APPS)
    log.info("console_app_removed", client_id=client_id, user_id=viewer.user_id)
    flash(request, "app_removed")
    return redirect(APPS)


async def _apps_page(
    request: web.Request,
    form: Form,
    *,
    created: NewOidcClient | None = None,
    status: int | None = None,
) -> web.Response:
    found: OidcClientList = await ask(request, "auth", ListOidcClients())
    return await render_with_form(
        request,
        "console_apps.html",
        {
            "title": "Apps",
            "section": "console",
            "tab": "apps",
            "apps": found.items,
            "form": form,
            "created": created,
            "issuer": request.app[SERVICES].public_url,
        },
        form,
        status=status,
    )
