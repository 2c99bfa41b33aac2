"""The apps that sign people in with splitgo, over JSON: admins register them, people see
and revoke the ones they allowed.

- `POST /api/v1/admin/oidc-clients` (admin): `{name, redirect_uris, public?}` → 201 with
  the `client_id` and, for a confidential client, the `client_secret` (shown this once;
  only its digest is kept). Redirect URIs are exact, https (http only on localhost);
- `GET /api/v1/admin/oidc-clients` (admin): every app; `DELETE …/{client_id}` removes one
  with everything it was granted;
- `GET /api/v1/me/connected-apps`: the apps the caller allowed (name, scopes, since);
  `DELETE /api/v1/me/connected-apps/{client_id}` forgets the consent and ends every
  grant (and refresh token) the app holds for the caller.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from actors.auth.messages import (
    AccessClaims,
    ConnectedApp,
    ConnectedApps,
    DeleteOidcClient,
    ListConnectedApps,
    ListOidcClients,
    NewOidcClient,
    OidcClientList,
    OidcClientView,
    RegisterOidcClient,
    RevokeConnectedApp,
)
from splitgo.web.actors import ask
from splitgo.web.declare import Derived, documented, idempotency, page
from splitgo.web.problems import ProblemError, json_response, to_json
from splitgo.web.security import authenticate, require_second_factor

routes = web.RouteTableDef()

CLIENTS = "/api/v1/admin/oidc-clients"
CONNECTED = "/api/v1/me/connected-apps"

RedirectUri = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class OidcClientBody(msgspec.Struct, forbid_unknown_fields=True):
    """An app to register: its name (shown on the consent page), its exact redirect URIs,
    and whether it is public (a phone or browser app: no secret, PKCE alone)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    redirect_uris: Annotated[list[RedirectUri], msgspec.Meta(min_length=1, max_length=10)]
    public: bool = False


NewClientReply = Derived(
    "NewOidcClientReply",
    OidcClientView,
    add={"client_secret": str | None},
    description="The app registered; `client_secret` is shown this once (null: public).",
)


def admin(request: web.Request) -> AccessClaims:
    """The caller's claims when an admin; 401 without a token, 403 for anyone else."""
    claims = authenticate(request)
    if not claims.has_role("admin"):
        raise ProblemError(403, "not_an_admin", "Registering apps is for admins.")
    require_second_factor(request, claims)  # issue 19: when admins need two factors
    return claims


def register_client_message(body: OidcClientBody, user_id: str) -> RegisterOidcClient:
    """The message that registers the app `body` describes, for the admin `user_id` (the
    JSON route's and the console page's)."""
    return RegisterOidcClient(
        user_id=user_id, name=body.name, redirect_uris=body.redirect_uris, public=body.public
    )


def new_client_body(created: NewOidcClient) -> dict[str, Any]:
    return {**to_json(created.client), "client_secret": created.client_secret}


@routes.post(CLIENTS)
@documented(
    summary="Register an app that signs people in with splitgo",
    description="Admins only. Redirect URIs must be absolute https URLs (http only for "
    "localhost or 127.0.0.1) with no fragment; requests must name one exactly.",
    tags=["openid"],
    body=OidcClientBody,
    headers=[idempotency(required=False)],
    responses={201: NewClientReply},
    errors=[403],
)
async def register_client(request: web.Request, body: OidcClientBody) -> web.Response:
    claims = admin(request)
    created: NewOidcClient = await ask(request, "auth", register_client_message(body, claims.sub))
    return json_response(new_client_body(created), status=201)


@routes.get(CLIENTS)
@documented(
    summary="The registered apps",
    tags=["openid"],
    responses={200: page(OidcClientView)},
    errors=[403],
)
async def list_clients(request: web.Request) -> web.Response:
    admin(request)
    found: OidcClientList = await ask(request, "auth", ListOidcClients())
    return json_response({"items": [to_json(c) for c in found.items], "next_cursor": None})


@routes.delete(f"{CLIENTS}/{{client_id}}")
@documented(
    summary="Remove an app",
    description="Its consents, codes, grants and refresh tokens go with it; its access "
    "tokens are refused at userinfo.",
    tags=["openid"],
    responses={204: None},
    errors=[403, 404],
)
async def delete_client(request: web.Request) -> web.Response:
    admin(request)
    await ask(request, "auth", DeleteOidcClient(client_id=request.match_info["client_id"]))
    return web.Response(status=204)


@routes.get(CONNECTED)
@documented(
    summary="The apps you allowed to sign you in",
    tags=["openid"],
    responses={200: page(ConnectedApp)},
)
async def connected_apps(request: web.Request) -> web.Response:
    claims = authenticate(request)
    found: ConnectedApps = await ask(request, "auth", ListConnectedApps(user_id=claims.sub))
    return json_response({"items": [to_json(app) for app in found.items], "next_cursor": None})


@routes.delete(f"{CONNECTED}/{{client_id}}")
@documented(
    summary="Revoke an app",
    description="Forgets your consent and ends every grant and refresh token it holds.",
    tags=["openid"],
    responses={204: None},
    errors=[404],
)
async def revoke_app(request: web.Request) -> web.Response:
    claims = authenticate(request)
    message = RevokeConnectedApp(user_id=claims.sub, client_id=request.match_info["client_id"])
    await ask(request, "auth", message)
    return web.Response(status=204)
