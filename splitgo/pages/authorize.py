"""The OpenID Connect authorization endpoint, a page: "Sign in with splitgo".

`GET /oauth2/authorize` hands the request (as the app sent it) and who is signed in to
auth (`AuthorizeOidcRequest`), and does what it answers:

- an unknown client or a redirect URI the app did not register: our own error page (the
  refusal is never sent to that URI);
- nobody signed in: the sign-in page, coming back here after; the same when the app asks
  for a new sign-in (prompt=login, or max_age seconds passed since the last one): the
  sign-in page then shows its form to a signed-in person too (`prompt=login`), and the
  request comes back with auth's `reauth` marker;
- a first sign-in to this app (or more scopes, or prompt=consent): the consent page — the
  app's name, what it will see, Allow and Deny in one CSRF-protected form posted back here
  with the request's parameters;
- otherwise: back to the app's redirect URI with a code, or with an error (RFC 6749
  4.1.2.1).

Pages allow forms to lead only to this site (`form-action 'self'`), and browsers hold the
redirects after a form to that too. So the consent page widens its own policy to the
app's redirect URI, and a redirect reached straight from one of our forms (the sign-in
page's, `Sec-Fetch-Site: same-origin`) is a small page that goes on by itself instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

import structlog
from aiohttp import web

from actors.auth.messages import (
    AuthorizeOidcRequest,
    OidcAuthorization,
    OidcDecision,
    OidcRequestRefused,
)
from splitgo.pages.forms import read_form
from splitgo.pages.guards import sign_in_url
from splitgo.pages.render import redirect, render
from splitgo.pages.sessions import Viewer, viewer_of
from splitgo.web.actors import ask
from splitgo.web.hardening import PAGES_CSP
from splitgo.web.problems import ProblemError

log = structlog.get_logger("splitgo.pages.authorize")
routes = web.RouteTableDef()

AUTHORIZE = "/oauth2/authorize"
PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "reauth",  # ours: the marker of a sign-in auth demanded (see actors/auth/provider.py)
)
# what each scope lets the app see, in the consent page's words (in OIDC_SCOPES order)
SCOPE_WORDS = {
    "openid": "Who you are on splitgo: an id that stays the same for this app",
    "profile": "Your name",
    "email": "Your email address, and whether you confirmed it",
    "offline_access": "Stay connected while you are away, until you revoke it",
}
REPEATED = "The app sent a parameter twice. Go back to the app and try again."


def _params(values: Mapping[str, str], getall: Mapping[str, int]) -> dict[str, str]:
    repeated = [name for name in PARAMS if getall.get(name, 0) > 1]
    if repeated:
        raise ProblemError(400, "invalid_request", REPEATED)
    return {name: values.get(name, "") for name in PARAMS}


def _message(
    params: Mapping[str, str], viewer: Viewer | None, decision: OidcDecision
) -> AuthorizeOidcRequest:
    return AuthorizeOidcRequest(
        **params,
        user_id=viewer.user_id if viewer is not None else None,
        session_id=viewer.session_id if viewer is not None else None,
        decision=decision,
    )


def consent_csp(redirect_uri: str) -> str:
    """The pages' policy, with the app's redirect URI (its origin) as a place the consent
    form may lead to."""
    parts = urlsplit(redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    return PAGES_CSP.replace("form-action 'self'", f"form-action 'self' {origin}", 1)


@routes.get(AUTHORIZE)
async def authorize(request: web.Request) -> web.StreamResponse:
    query = request.query
    params = _params(query, {name: len(query.getall(name, [])) for name in PARAMS})
    viewer = await viewer_of(request)
    outcome = await _ask(request, _message(params, viewer, "ask"))
    return await _follow(request, params, outcome)


@routes.post(AUTHORIZE)
async def decide(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    params = _params(
        {name: form.value(name) for name in PARAMS},
        {name: len(form.all(name)) for name in PARAMS},
    )
    viewer = await viewer_of(request)
    decision: OidcDecision = "allow" if form.value("decision") == "allow" else "deny"
    outcome = await _ask(request, _message(params, viewer, decision))
    return await _follow(request, params, outcome)


async def _ask(request: web.Request, message: AuthorizeOidcRequest) -> OidcAuthorization:
    """Auth's answer; a request it refuses to answer to the app is a 400 page of ours."""
    try:
        outcome: OidcAuthorization = await ask(request, "auth", message)
    except OidcRequestRefused as refused:
        raise ProblemError(400, refused.code, refused.message) from None
    return outcome


async def _follow(
    request: web.Request, params: Mapping[str, str], outcome: OidcAuthorization
) -> web.StreamResponse:
    if outcome.action == "sign_in":
        # back here with the same request once signed in (a consent posted by a browser
        # whose session ended meanwhile too)
        asked = {name: value for name, value in params.items() if value}
        if outcome.reauth is None:
            return redirect(sign_in_url(f"{AUTHORIZE}?{urlencode(asked)}"), status=302)
        asked["reauth"] = outcome.reauth
        wanted = sign_in_url(f"{AUTHORIZE}?{urlencode(asked)}")
        return redirect(f"{wanted}&prompt=login", status=302)
    if outcome.action == "consent":
        return await _consent(request, params, outcome)
    if request.method == "GET" and request.headers.get("Sec-Fetch-Site") == "same-origin":
        # straight from one of our forms (sign-in): a redirect elsewhere would be held
        return await render(
            request,
            "authorize_continue.html",
            {
                "title": f"Back to {outcome.client_name}",
                "url": outcome.url,
                "client_name": outcome.client_name,
            },
        )
    return redirect(outcome.url, status=303 if request.method == "POST" else 302)


async def _consent(
    request: web.Request, params: Mapping[str, str], outcome: OidcAuthorization
) -> web.Response:
    scopes = [(scope, SCOPE_WORDS.get(scope, scope)) for scope in outcome.scopes]
    return await render(
        request,
        "authorize_consent.html",
        {
            "title": f"Sign in to {outcome.client_name}",
            "client_name": outcome.client_name,
            "scopes": scopes,
            "params": params,
            "host": urlsplit(params["redirect_uri"]).netloc,
        },
        headers={"Content-Security-Policy": consent_csp(params["redirect_uri"])},
    )
