"""The OpenID Connect provider's HTTP edge in process (splitgo/web/oidc.py), with a stand-in
auth actor: how the token endpoint reads its form and the client's credentials, its RFC
6749 error answers, userinfo's bearer check, discovery and the JWKS."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actors.auth import messages
from actors.auth.messages import (
    TOKEN_TYPE_OIDC_ACCESS,
    ExchangeOidcCode,
    GetOidcUserInfo,
    OidcError,
    OidcInvalidGrant,
    OidcTokens,
    OidcUserInfo,
    RefreshOidcTokens,
)
from actors.auth.tokens import SigningKeys
from actors.runtime import Actor, ActorSystem, MemoryDeadLetterStore, Message, handles
from splitgo.web import Services, create_app
from splitgo.web.hardening import Hardening
from transport import Codec, MemoryTransport

Client = TestClient[web.Request, web.Application]
KEYS = SigningKeys.first_signs({"edge-k1": b"e" * 32})
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CODE_FORM = {
    "grant_type": "authorization_code",
    "code": "the-code",
    "redirect_uri": "https://app.example/cb",
    "code_verifier": "v" * 43,
}


class FakeAuth(Actor):
    """Answers the provider's messages as the auth actor would, recording them."""

    seen: list[Message] = []

    @handles(ExchangeOidcCode, RefreshOidcTokens)
    async def tokens(self, message: ExchangeOidcCode | RefreshOidcTokens) -> OidcTokens:
        FakeAuth.seen.append(message)
        if isinstance(message, ExchangeOidcCode) and message.code == "spent":
            raise OidcInvalidGrant("This was already used.")
        if isinstance(message, RefreshOidcTokens) and message.scope == "openid phone":
            raise OidcError("Not granted.", details={"error": "invalid_scope"})
        return OidcTokens(access_token="a", id_token="i", expires_in=900, scope="openid")

    @handles(GetOidcUserInfo)
    async def userinfo(self, message: GetOidcUserInfo) -> OidcUserInfo:
        FakeAuth.seen.append(message)
        return OidcUserInfo(sub=message.user_id, email="ada@example.com", email_verified=True)


@contextlib.asynccontextmanager
async def edge_client(node_id: str, hardening: Hardening | None = None) -> AsyncIterator[Client]:
    """A test client of the edge in front of `FakeAuth` (its log of asks emptied)."""
    FakeAuth.seen = []
    codec = Codec()
    codec.register_module(messages)
    system = ActorSystem(
        MemoryTransport(node_id=node_id, codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
    )
    await system.start()
    system.spawn(FakeAuth, "auth")
    services = Services(
        system=system,
        node_id=node_id,
        ops_token="ops",
        verifier=KEYS.verifier(),
        public_url="https://id.example",
    )
    try:
        async with TestClient(TestServer(create_app(services, hardening=hardening))) as made:
            yield made
    finally:
        await system.stop(1.0)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with edge_client("oidc-edge") as made:
        yield made


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def token(client: Client, form: dict[str, str], **headers: str) -> tuple[int, Any, Any]:
    response = await client.post("/oauth2/token", data=form, headers=headers)
    return response.status, await response.json(), response.headers


# ── the token endpoint ───────────────────────────────────────────────────────────────


async def test_basic_credentials_are_form_decoded(client: Client) -> None:
    """client_secret_basic: the id and secret are form-urlencoded inside the base64
    (RFC 6749 2.3.1); the answer is never cached."""
    status, body, headers = await token(client, CODE_FORM, **basic("sg_app", "a%2Bb%3Ac"))
    assert status == 200
    assert body == {
        "access_token": "a",
        "token_type": "Bearer",
        "expires_in": 900,
        "id_token": "i",
        "scope": "openid",
    }
    assert headers["Cache-Control"] == "no-store"
    sent = FakeAuth.seen[-1]
    assert isinstance(sent, ExchangeOidcCode)
    assert (sent.client_id, sent.client_secret, sent.code) == ("sg_app", "a+b:c", "the-code")


async def test_post_credentials_and_public_clients(client: Client) -> None:
    """client_secret_post sends both in the form; a public client only its client_id."""
    await token(client, {**CODE_FORM, "client_id": "sg_app", "client_secret": "s3"})
    await token(client, {**CODE_FORM, "client_id": "sg_pub"})
    secrets = [
        (m.client_id, m.client_secret) for m in FakeAuth.seen if isinstance(m, ExchangeOidcCode)
    ]
    assert secrets == [("sg_app", "s3"), ("sg_pub", None)]


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({**CODE_FORM}, {}, 401, "invalid_client"),
        ({**CODE_FORM, "client_secret": "x"}, basic("sg_app", "s"), 400, "invalid_request"),
        ({**CODE_FORM, "client_id": "other"}, basic("sg_app", "s"), 401, "invalid_client"),
        ({**CODE_FORM, "grant_type": "password"}, basic("a", "s"), 400, "unsupported_grant_type"),
        ({**CODE_FORM, "grant_type": ""}, basic("a", "s"), 400, "invalid_request"),
        ({**CODE_FORM, "code_verifier": ""}, basic("a", "s"), 400, "invalid_request"),
        ({**CODE_FORM, "code": "spent"}, basic("a", "s"), 400, "invalid_grant"),
        ({**CODE_FORM, "code": "c" * 600}, basic("a", "s"), 400, "invalid_request"),
        ({"grant_type": "refresh_token"}, basic("a", "s"), 400, "invalid_request"),
        (
            {"grant_type": "refresh_token", "refresh_token": "r", "scope": "openid phone"},
            basic("a", "s"),
            400,
            "invalid_scope",
        ),
        ({**CODE_FORM}, {"Authorization": "Basic !!!"}, 401, "invalid_client"),
    ],
)
async def test_refusals_are_rfc_6749_json(
    client: Client, form: dict[str, str], headers: dict[str, str], status: int, error: str
) -> None:
    """Missing or doubled client credentials, another grant type, a missing parameter, a
    refused code or scope: RFC 6749 5.2's JSON with its status (401 for the client)."""
    found_status, body, found = await token(client, form, **headers)
    assert (found_status, body["error"]) == (status, error)
    assert body["error_description"]
    assert found["Cache-Control"] == "no-store"
    if status == 401:
        assert found["WWW-Authenticate"].startswith("Basic")


async def test_a_repeated_parameter_or_a_json_body_is_invalid_request(client: Client) -> None:
    """Each parameter comes once (RFC 6749 3.2), in a form, not JSON."""
    doubled = "grant_type=authorization_code&code=a&code=b&redirect_uri=x&code_verifier=y"
    response = await client.post("/oauth2/token", data=doubled, headers={**FORM, **basic("a", "s")})
    assert (await response.json())["error"] == "invalid_request"
    response = await client.post("/oauth2/token", json=CODE_FORM, headers=basic("a", "s"))
    assert (await response.json())["error"] == "invalid_request"
    assert FakeAuth.seen == []


# ── userinfo, discovery, keys ────────────────────────────────────────────────────────


def app_token(**claims: Any) -> str:
    now = int(time.time())
    payload = {
        "sub": "u1",
        "aud": "sg_app",
        "gid": "g1",
        "scope": "openid email",
        "iat": now,
        "exp": now + 900,
        "typ": TOKEN_TYPE_OIDC_ACCESS,
        **claims,
    }
    return KEYS.sign_jwt(payload, typ="at+jwt")


async def test_userinfo_takes_an_apps_access_token_only(client: Client) -> None:
    """An app's token gets its claims (GET or POST); our API's own access token, an
    expired one or none is 401 invalid_token with a Bearer challenge."""
    for method in ("GET", "POST"):
        headers = {"Authorization": f"Bearer {app_token()}"}
        response = await client.request(method, "/oauth2/userinfo", headers=headers)
        assert response.status == 200
        assert await response.json() == {
            "sub": "u1",
            "email": "ada@example.com",
            "email_verified": True,
        }
    asked = FakeAuth.seen[-1]
    assert isinstance(asked, GetOidcUserInfo)
    assert (asked.client_id, asked.grant_id, asked.scopes) == ("sg_app", "g1", ["openid", "email"])
    ours = KEYS.issue_access_token(user_id="u1", roles=["user"], session_id="s1", now=time.time())
    expired = app_token(exp=int(time.time()) - 1)
    for bad in (ours, expired, None):
        headers = {"Authorization": f"Bearer {bad}"} if bad else {}
        response = await client.get("/oauth2/userinfo", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_token"
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_our_api_refuses_an_apps_access_token(client: Client) -> None:
    """/api/v1/me answers 401 to an app's access token: its typ is not ours."""
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {app_token()}"})
    assert response.status == 401


async def test_discovery_and_keys(client: Client) -> None:
    """The discovery document names this issuer's endpoints; the JWKS is the public key
    (no private part), and both may be cached a while."""
    response = await client.get("/.well-known/openid-configuration")
    found = await response.json()
    assert found["issuer"] == "https://id.example"
    assert found["authorization_endpoint"] == "https://id.example/oauth2/authorize"
    assert found["jwks_uri"] == "https://id.example/.well-known/jwks.json"
    assert found["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert "max-age" in response.headers["Cache-Control"]
    keys = await (await client.get("/.well-known/jwks.json")).json()
    assert keys == KEYS.public_jwks()
    assert all("d" not in key for key in keys["keys"])
