"""'Sign in with splitgo' end to end: a real node as the OpenID Connect provider and
authlib as the relying party (its requests-based OAuth2Session, in a worker thread).

An admin registers the app over the JSON API; authlib finds the endpoints in the discovery
document, builds the authorization URL (state, nonce, PKCE S256); a browser without
JavaScript (aiohttp keeping cookies) signs in, allows the app on the consent page and
brings the code back; authlib exchanges it, and the ID token is verified with the keys of
the discovery document's jwks_uri. Then userinfo, refresh, our API refusing the app's
token, a second sign-in without the consent page, bad requests, and revoking the app."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import (  # type: ignore[import-untyped]
    OAuth2Session,
)
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.e2e.test_pages_auth import PASSWORD, Page, page_of, submit, visit
from tests.e2e.test_pages_console import make_admin
from tests.support.api import Api, User
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ADMIN = "oidc-admin@example.com"
CALLBACK = "http://localhost:8765/callback"  # never visited: the browser stops before it
SCOPE = "openid profile email offline_access"


@dataclass
class World:
    node: RunningNode
    api: Api
    admin: User
    discovery: dict[str, Any]
    keys: KeySet
    database: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    folder = tmp_path_factory.mktemp("oidc-node")
    async with fresh_database(schema=True) as database:
        env = {
            "SPLITGO_DATABASE_URL": database,
            "SPLITGO_JWT_KEYS": "oidc-k1:oidc-provider-e2e-signing-seed-0123456789abcdef",
        }
        node = await start_node(folder, env=env)
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(node.url, http)
                await api.register(ADMIN, "Root Admin")
                await make_admin(env, folder, ADMIN)
                admin = await login(api, ADMIN)
                found = await api.call("GET", "/.well-known/openid-configuration")
                assert found.status == 200, found.body
                jwks = await http.get(found.body["jwks_uri"])
                keys = KeySet.import_key_set(await jwks.json())
                yield World(node, api, admin, found.body, keys, database)
        finally:
            await stop_node(node)


@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without JavaScript: keeps cookies (also of 127.0.0.1), asks for HTML."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as session:
        yield session


# ── helpers ──────────────────────────────────────────────────────────────────────────


async def login(api: Api, email: str) -> User:
    reply = await api.call(
        "POST", "/api/v1/auth/login", body={"email": email, "password": PASSWORD}
    )
    assert reply.status == 200, reply.body
    me = await api.call("GET", "/api/v1/me", User("", email, reply.body["access_token"]))
    return User(me.body["id"], email, reply.body["access_token"])


async def register_app(world: World, *, public: bool = False) -> dict[str, Any]:
    body = {"name": "Ride Share", "redirect_uris": [CALLBACK], "public": public}
    reply = await world.api.call("POST", "/api/v1/admin/oidc-clients", world.admin, body)
    assert reply.status == 201, reply.body
    return dict(reply.body)


async def signed_in_person(world: World, browser: aiohttp.ClientSession) -> User:
    """A new account, signed in on `browser` through the sign-in form."""
    user = await world.api.register(f"p{secrets.token_hex(5)}@example.com", "Ada Lovelace")
    form = await visit(browser, f"{world.node.url}/sign-in")
    home = await submit(browser, form, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert home.status == 200, home.html
    return user


def relying_party(app: dict[str, Any]) -> OAuth2Session:
    """authlib's client for the app (secret by HTTP Basic, or none for a public app)."""
    return OAuth2Session(
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        scope=SCOPE,
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="none" if app["public"] else "client_secret_basic",
    )


@dataclass
class Started:
    url: str
    state: str
    nonce: str
    verifier: str


def start(world: World, client: OAuth2Session, **extra: str) -> Started:
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        world.discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
    )
    return Started(url, state, nonce, verifier)


async def follow(browser: aiohttp.ClientSession, url: str) -> tuple[int, str | None, Page]:
    """GET `url` without following redirects: (status, Location, the page)."""
    async with browser.get(url, allow_redirects=False) as response:
        return response.status, response.headers.get("Location"), await page_of(response)


async def allow(world: World, browser: aiohttp.ClientSession, consent: Page) -> str:
    """Press Allow on the consent page; where the browser is sent (the app's callback)."""
    data = {**consent.form("/oauth2/authorize")["fields"], "decision": "allow"}
    async with browser.post(
        f"{world.node.url}/oauth2/authorize", data=data, allow_redirects=False
    ) as response:
        assert response.status == 303, await response.text()
        return response.headers["Location"]


def verified_id_token(world: World, token: str, client_id: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims, once its signature (keys from jwks_uri), issuer, audience,
    expiry and nonce check out."""
    decoded = jwt.decode(
        token, world.keys, algorithms=world.discovery["id_token_signing_alg_values_supported"]
    )
    assert decoded.header["alg"] == "ES256"
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": world.discovery["issuer"]},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    registry.validate(decoded.claims)
    return dict(decoded.claims)


async def signed_in_with_splitgo(
    world: World, browser: aiohttp.ClientSession, app: dict[str, Any]
) -> tuple[OAuth2Session, dict[str, Any], Started]:
    """The whole flow for a person already signed in on `browser`: consent, code, tokens."""
    client = relying_party(app)
    started = start(world, client)
    status, _, consent = await follow(browser, started.url)
    assert status == 200, consent.html
    assert "Sign in to Ride Share" in consent.html
    location = await allow(world, browser, consent)
    assert location.startswith(CALLBACK + "?")
    assert parse_qs(urlsplit(location).query)["state"] == [started.state]
    token = await asyncio.to_thread(
        client.fetch_token,
        world.discovery["token_endpoint"],
        authorization_response=location,
        code_verifier=started.verifier,
    )
    return client, dict(token), started


async def register_on(browser: aiohttp.ClientSession, page: Page, uris: str) -> Page:
    """The console's register form sent with these redirect URIs (public left unticked)."""
    fields = page.form("/console/apps")["fields"]
    data = {**fields, "name": "Console App", "redirect_uris": uris}
    data.pop("public", None)
    async with browser.post(f"{page.url.split('/console')[0]}/console/apps", data=data) as response:
        return await page_of(response)


def shown(page: Page, element_id: str) -> str:
    """The text of the <code> element with this id."""
    found = re.search(rf'<code id="{element_id}">([^<]+)</code>', page.html)
    assert found is not None, element_id
    return found[1]


# ── tests ───────────────────────────────────────────────────────────────────────────


async def test_discovery_names_our_endpoints_and_keys(world: World) -> None:
    """The discovery document's issuer is the node, its endpoints are ours, and its JWKS
    holds the ES256 key the ID tokens are signed with."""
    found = world.discovery
    assert found["issuer"] == world.node.url
    assert found["token_endpoint"] == f"{world.node.url}/oauth2/token"
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert found["id_token_signing_alg_values_supported"] == ["ES256"]
    assert "offline_access" in found["scopes_supported"]
    assert all(key.get("kty") == "EC" and "d" not in key for key in world.keys.as_dict()["keys"])


async def test_authlib_signs_in_with_splitgo(world: World, browser: aiohttp.ClientSession) -> None:
    """Consent, code, token exchange by authlib; the ID token verifies with the published
    keys and says who signed in; userinfo agrees; refresh rotates; our own API refuses
    the app's access token."""
    app = await register_app(world)
    person = await signed_in_person(world, browser)
    client, token, started = await signed_in_with_splitgo(world, browser, app)
    assert token["token_type"] == "Bearer"
    assert token["scope"] == SCOPE
    claims = verified_id_token(world, token["id_token"], app["client_id"], started.nonce)
    assert claims["sub"] == person.id
    assert (claims["email"], claims["name"]) == (person.email, "Ada Lovelace")

    info = await asyncio.to_thread(client.get, world.discovery["userinfo_endpoint"])
    assert info.status_code == 200
    assert info.json()["sub"] == person.id
    assert info.json()["email"] == person.email

    app_token = User(person.id, person.email, token["access_token"])
    refused = await world.api.call("GET", "/api/v1/me", app_token)
    assert refused.status == 401

    renewed = await asyncio.to_thread(
        client.refresh_token,
        world.discovery["token_endpoint"],
        refresh_token=token["refresh_token"],
    )
    assert renewed["refresh_token"] != token["refresh_token"]
    assert renewed["access_token"] != token["access_token"]


async def test_a_second_sign_in_skips_the_consent_page(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Once allowed, the authorization request redirects straight back with a code."""
    app = await register_app(world)
    await signed_in_person(world, browser)
    await signed_in_with_splitgo(world, browser, app)
    started = start(world, relying_party(app))
    status, location, _ = await follow(browser, started.url)
    assert status == 302
    assert location is not None
    assert "code" in parse_qs(urlsplit(location).query)


async def test_a_public_app_uses_pkce_alone(world: World, browser: aiohttp.ClientSession) -> None:
    """A public client has no secret and still gets tokens, with its PKCE verifier."""
    app = await register_app(world, public=True)
    assert app["client_secret"] is None
    await signed_in_person(world, browser)
    _, token, started = await signed_in_with_splitgo(world, browser, app)
    verified_id_token(world, token["id_token"], app["client_id"], started.nonce)


async def test_a_wrong_verifier_and_a_reused_code_are_invalid_grant(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """authlib sees invalid_grant for a verifier that is not the challenge's, and for a
    code exchanged a second time."""
    app = await register_app(world)
    await signed_in_person(world, browser)
    client = relying_party(app)
    started = start(world, client)
    _, _, consent = await follow(browser, started.url)
    location = await allow(world, browser, consent)
    endpoint = world.discovery["token_endpoint"]
    with pytest.raises(OAuthError) as refused:
        await asyncio.to_thread(
            client.fetch_token,
            endpoint,
            authorization_response=location,
            code_verifier=secrets.token_urlsafe(48),
        )
    assert refused.value.error == "invalid_grant"
    started = start(world, client)
    _, again, _ = await follow(browser, started.url)  # consent remembered
    assert again is not None
    location = again
    await asyncio.to_thread(
        client.fetch_token,
        endpoint,
        authorization_response=location,
        code_verifier=started.verifier,
    )
    with pytest.raises(OAuthError) as reused:
        await asyncio.to_thread(
            client.fetch_token,
            endpoint,
            authorization_response=location,
            code_verifier=started.verifier,
        )
    assert reused.value.error == "invalid_grant"


async def test_an_unregistered_redirect_uri_is_refused_on_our_page(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """An authorization request for another redirect URI is a 400 page of ours: the
    browser is sent nowhere."""
    app = await register_app(world)
    await signed_in_person(world, browser)
    client = relying_party(app)
    client.redirect_uri = "https://evil.example/callback"
    started = start(world, client)
    status, location, page = await follow(browser, started.url)
    assert status == 400
    assert location is None
    assert "has not registered" in page.html


async def test_a_wrong_client_secret_is_invalid_client(world: World) -> None:
    """The token endpoint answers 401 invalid_client (RFC 6749 JSON) to a wrong secret."""
    app = await register_app(world)
    form = {
        "grant_type": "authorization_code",
        "code": "whatever",
        "redirect_uri": CALLBACK,
        "code_verifier": secrets.token_urlsafe(48),
    }
    basic = base64.b64encode(f"{app['client_id']}:not-the-secret".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(world.discovery["token_endpoint"], data=form, headers=headers) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"


async def test_revoking_the_app_on_the_connected_apps_page(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Connected apps lists the app; Revoke ends its refresh token and the list empties."""
    app = await register_app(world)
    await signed_in_person(world, browser)
    client, token, _ = await signed_in_with_splitgo(world, browser, app)
    page = await visit(browser, f"{world.node.url}/account/apps")
    assert "Ride Share" in page.html
    action = f"/account/apps/{app['client_id']}/revoke"
    after = await submit(browser, page, action, {})
    assert after.status == 200
    assert "No connected apps" in after.html
    with pytest.raises(OAuthError) as refused:
        await asyncio.to_thread(
            client.refresh_token,
            world.discovery["token_endpoint"],
            refresh_token=token["refresh_token"],
        )
    assert refused.value.error == "invalid_grant"


async def test_only_admins_register_apps(world: World) -> None:
    """A person without the admin role gets 403 from the admin API."""
    person = await world.api.register(None, "Plain")
    body = {"name": "X", "redirect_uris": [CALLBACK]}
    reply = await world.api.call("POST", "/api/v1/admin/oidc-clients", person, body)
    assert reply.status == 403
    assert reply.body["code"] == "not_an_admin"


async def test_deny_goes_back_to_the_app_with_access_denied(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Deny on the consent page sends the browser to the app with error=access_denied and
    its state, and remembers nothing."""
    app = await register_app(world)
    await signed_in_person(world, browser)
    started = start(world, relying_party(app))
    _, _, consent = await follow(browser, started.url)
    data = {**consent.form("/oauth2/authorize")["fields"], "decision": "deny"}
    async with browser.post(
        f"{world.node.url}/oauth2/authorize", data=data, allow_redirects=False
    ) as response:
        assert response.status == 303
        query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == [started.state]
    status, _, _ = await follow(browser, start(world, relying_party(app)).url)
    assert status == 200  # the consent page again


async def test_the_consent_page_lets_its_form_lead_to_the_app_only(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The consent page's CSP adds the app's origin to form-action, nothing else; its form
    carries the CSRF token, and a post without it is refused."""
    app = await register_app(world)
    await signed_in_person(world, browser)
    _, _, consent = await follow(browser, start(world, relying_party(app)).url)
    policy = consent.headers["Content-Security-Policy"]
    assert "form-action 'self' http://localhost:8765" in policy
    assert "frame-ancestors 'none'" in policy
    fields = consent.form("/oauth2/authorize")["fields"]
    assert fields["csrf_token"]
    forged = {name: value for name, value in fields.items() if name != "csrf_token"}
    async with browser.post(
        f"{world.node.url}/oauth2/authorize", data={**forged, "decision": "allow"}
    ) as response:
        assert response.status == 403


async def test_the_console_registers_an_app_and_shows_its_secret_once(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """An admin registers an app on /console/apps: a refused redirect URI is said at its
    field with what was typed kept; a good one shows the client id and secret, and the
    list afterwards shows the app but never the secret."""
    form = await visit(browser, f"{world.node.url}/sign-in")
    await submit(browser, form, "/sign-in", {"email": ADMIN, "password": PASSWORD})
    page = await visit(browser, f"{world.node.url}/console/apps")
    assert page.status == 200
    refused = await register_on(browser, page, "http://app.example/cb")
    assert refused.status == 422
    assert "plain http only for localhost" in refused.html
    assert "http://app.example/cb" in refused.html
    made = await register_on(browser, refused, f"{CALLBACK}\nhttps://app.example/cb")
    assert made.status == 201, made.html
    secret = shown(made, "created-client-secret")
    client_id = shown(made, "created-client-id")
    assert len(secret) > 40
    listed = await visit(browser, f"{world.node.url}/console/apps")
    assert client_id in listed.html
    assert secret not in listed.html


async def test_signed_out_people_sign_in_first_and_come_back(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Signed out, the authorization request sends the browser to the sign-in page; the
    sign-in form brings it back to the same request, now on the consent page."""
    app = await register_app(world)
    person = await world.api.register(None, "Grace Hopper")
    started = start(world, relying_party(app))
    status, location, _ = await follow(browser, started.url)
    assert status == 302
    assert location is not None
    assert location.startswith("/sign-in?next=%2Foauth2%2Fauthorize%3F")
    form = await visit(browser, f"{world.node.url}{location}")
    consent = await submit(browser, form, "/sign-in", {"email": person.email, "password": PASSWORD})
    assert consent.status == 200
    assert "Sign in to Ride Share" in consent.html
    assert consent.form("/oauth2/authorize")["fields"]["state"] == started.state


# ── prompt=login, max_age, prompt=none (issue 19's gaps) ──────────────────────────────


async def age_sessions(world: World, user_id: str, seconds: int) -> None:
    """The person's sessions look signed in `seconds` earlier than they were."""
    connection = await asyncpg.connect(world.database)
    try:
        await connection.execute(
            "UPDATE auth_sessions SET created_at = created_at - make_interval(secs => $2)"
            " WHERE user_id = $1",
            user_id,
            float(seconds),
        )
    finally:
        await connection.close()


async def code_then_claims(
    world: World, client: OAuth2Session, app: dict[str, Any], started: Started, location: str
) -> dict[str, Any]:
    """authlib exchanges the code the app was sent; the verified ID token's claims."""
    assert location.startswith(CALLBACK + "?"), location
    token = await asyncio.to_thread(
        client.fetch_token,
        world.discovery["token_endpoint"],
        authorization_response=location,
        code_verifier=started.verifier,
    )
    return verified_id_token(world, token["id_token"], app["client_id"], started.nonce)


async def sign_in_again(
    world: World, browser: aiohttp.ClientSession, location: str | None, email: str
) -> str:
    """The sign-in page an authorization request sent a signed-in browser to shows its
    form; signing in there comes back to the request: where it then sends the browser."""
    assert location is not None
    assert location.startswith("/sign-in?next=%2Foauth2%2Fauthorize%3F")
    assert location.endswith("&prompt=login")
    form = await visit(browser, f"{world.node.url}{location}")
    assert form.status == 200
    signed = await submit(
        browser, form, "/sign-in", {"email": email, "password": PASSWORD}, allow_redirects=False
    )
    back = signed.headers["Location"]
    assert back.startswith("/oauth2/authorize?")
    assert "reauth=" in back
    status, onward, _ = await follow(browser, f"{world.node.url}{back}")
    assert status == 302
    assert onward is not None
    return onward


async def test_prompt_login_signs_the_person_in_again_and_auth_time_is_the_new_one(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """With prompt=login a signed-in person goes through the sign-in form before the app
    gets a code, and the ID token's auth_time is that new sign-in's."""
    app = await register_app(world)
    person = await signed_in_person(world, browser)
    client, token, started = await signed_in_with_splitgo(world, browser, app)
    first = verified_id_token(world, token["id_token"], app["client_id"], started.nonce)
    await age_sessions(world, person.id, 3600)

    again = start(world, client, prompt="login")
    status, location, _ = await follow(browser, again.url)
    assert status == 302
    onward = await sign_in_again(world, browser, location, person.email)
    claims = await code_then_claims(world, client, app, again, onward)
    assert claims["sub"] == person.id
    assert claims["auth_time"] >= first["auth_time"]


async def test_a_forged_reauth_marker_still_asks_for_a_sign_in(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """A request that claims an old sign-in is fresh (a made-up marker) is sent to sign in."""
    app = await register_app(world)
    await signed_in_person(world, browser)
    await signed_in_with_splitgo(world, browser, app)
    started = start(world, relying_party(app), prompt="login", reauth="0.AAAAAAAAAAAAAAAAAAAAAA")
    status, location, _ = await follow(browser, started.url)
    assert status == 302
    assert location is not None
    assert location.startswith("/sign-in?")


async def test_max_age_asks_for_a_sign_in_only_once_it_passed(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """A sign-in an hour old is good for max_age=86400 (auth_time the old one) and not for
    max_age=60, which goes through the sign-in form first."""
    app = await register_app(world)
    person = await signed_in_person(world, browser)
    client, token, started = await signed_in_with_splitgo(world, browser, app)
    first = verified_id_token(world, token["id_token"], app["client_id"], started.nonce)
    await age_sessions(world, person.id, 3600)

    lenient = start(world, client, max_age="86400")
    status, location, _ = await follow(browser, lenient.url)
    assert status == 302
    assert location is not None
    old = await code_then_claims(world, client, app, lenient, location)
    assert old["auth_time"] <= first["auth_time"] - 3599

    strict = start(world, client, max_age="60")
    status, location, _ = await follow(browser, strict.url)
    assert status == 302
    onward = await sign_in_again(world, browser, location, person.email)
    claims = await code_then_claims(world, client, app, strict, onward)
    assert claims["auth_time"] >= first["auth_time"]


async def test_prompt_none_without_a_fresh_sign_in_is_login_required(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """prompt=none goes back to the app with error=login_required when nobody is signed in,
    and when the sign-in is older than max_age."""
    app = await register_app(world)
    started = start(world, relying_party(app), prompt="none")
    status, location, _ = await follow(browser, started.url)
    assert status == 302
    assert location is not None
    assert location.startswith(CALLBACK + "?")
    assert parse_qs(urlsplit(location).query)["error"] == ["login_required"]

    person = await signed_in_person(world, browser)
    await signed_in_with_splitgo(world, browser, app)
    await age_sessions(world, person.id, 3600)
    stale = start(world, relying_party(app), prompt="none", max_age="60")
    status, location, _ = await follow(browser, stale.url)
    assert status == 302
    assert location is not None
    assert parse_qs(urlsplit(location).query)["error"] == ["login_required"]
