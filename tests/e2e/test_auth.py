"""The Auth table of API.md over HTTP against a real node, with real mail and a real OIDC
provider: every row, success and failure."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, OctKey

from actors.auth.tokens import derive_signing_key
from tests.support.node import PROJECT_ROOT, RunningNode, start_node, stop_node
from tests.support.oidc import FakeIdentity, FakeOidcProvider
from tests.support.smtp import SmtpServer, link_in

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

KID = "test-k1"
SECRET = "e2e-signing-secret-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery staple 42"
OTHER_PASSWORD = "violet elephants juggle 17 lanterns"


@dataclass
class World:
    node: RunningNode
    smtp: SmtpServer
    oidc: FakeOidcProvider
    env: dict[str, str]
    folder: Path
    seen_secrets: list[str]

    @property
    def api(self) -> str:
        return f"{self.node.url}/api/v1"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    smtp = SmtpServer()
    smtp.start()
    oidc = FakeOidcProvider(client_id="splitgo-test", client_secret="oidc-secret")
    await oidc.start()
    folder = tmp_path_factory.mktemp("auth-node")
    env = {
        "SPLITGO_JWT_KEYS": f"{KID}:{SECRET}",
        "SPLITGO_SMTP_HOST": "127.0.0.1",
        "SPLITGO_SMTP_PORT": str(smtp.port),
        "SPLITGO_SMTP_TLS": "none",
        "SPLITGO_OAUTH_GOOGLE_CLIENT_ID": "splitgo-test",
        "SPLITGO_OAUTH_GOOGLE_CLIENT_SECRET": "oidc-secret",
        "SPLITGO_OAUTH_GOOGLE_BASE_URL": oidc.url,
        "SPLITGO_OPS_TOKEN": "auth-e2e-ops-token",
        "SPLITGO_LOG_LEVEL": "debug",
    }
    node = await start_node(folder, env=env)
    try:
        yield World(node, smtp, oidc, env, folder, [])
    finally:
        if node.process.poll() is None:
            await stop_node(node)
        await oidc.stop()
        smtp.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def wait_for_mail(world: World, address: str, count: int = 1) -> Any:
    for _ in range(200):
        mails = world.smtp.inbox.to(address)
        if len(mails) >= count:
            return mails[count - 1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail #{count} for {address}")


async def register(world: World, http: aiohttp.ClientSession, email: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD, "name": "Ada"}
    async with http.post(f"{world.api}/auth/register", json=body) as response:
        assert response.status == 201, await response.text()
        return dict(await response.json())


async def login(
    world: World, http: aiohttp.ClientSession, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    async with http.post(
        f"{world.api}/auth/login", json={"email": email, "password": password}
    ) as response:
        assert response.status == 200, await response.text()
        pair = dict(await response.json())
    world.seen_secrets += [pair["access_token"], pair["refresh_token"]]
    return pair


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def problem(response: aiohttp.ClientResponse) -> dict[str, Any]:
    assert response.content_type == "application/problem+json"
    return dict(await response.json())


async def test_register_verify_by_mail_and_read_me(
    world: World, http: aiohttp.ClientSession
) -> None:
    """Register (201), the mail arrives over SMTP, its link opens a page whose button
    verifies, /me says so."""
    user = await register(world, http, "ada@example.com")
    assert user["email"] == "ada@example.com"
    assert user["user"]["email_verified"] is False
    mail = await wait_for_mail(world, "ada@example.com")
    assert mail.get_body(preferencelist=("html",)) is not None
    link = link_in(mail, "/verify-email")
    token = parse_qs(urlsplit(link).query)["token"][0]
    world.seen_secrets.append(token)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(link) as response:
            assert response.status == 200  # a page with a button: opening it changes nothing
            page = await response.text()
        hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
        assert hidden["token"] == token
        async with browser.post(f"{world.node.url}/verify-email", data=hidden) as response:
            assert response.status == 200
    pair = await login(world, http, "ada@example.com")
    async with http.get(f"{world.api}/me", headers=bearer(pair)) as response:
        me = await response.json()
    assert me["email_verified"] is True
    assert set(me) >= {"id", "email", "name", "email_verified", "roles", "telegram_linked"}
    assert me["roles"] == ["user"]
    async with http.post(f"{world.api}/auth/verify-email", json={"token": token}) as response:
        assert response.status == 401  # single use
        assert (await problem(response))["code"] == "invalid_token"


async def test_register_refuses_duplicates_and_weak_passwords(
    world: World, http: aiohttp.ClientSession
) -> None:
    """A taken email is 409 email_taken; a short or guessable password 422 naming it."""
    await register(world, http, "dup@example.com")
    body = {"email": "DUP@example.com", "password": PASSWORD, "name": "Dup"}
    async with http.post(f"{world.api}/auth/register", json=body) as response:
        assert response.status == 409
        assert (await problem(response))["code"] == "email_taken"
    for weak in ("short", "password123"):
        body = {"email": "weak@example.com", "password": weak, "name": "Weak"}
        async with http.post(f"{world.api}/auth/register", json=body) as response:
            assert response.status == 422
            assert (await problem(response))["errors"][0]["field"] == "$.password"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD, "name": "No Email"}, "$.email"),
        ({"email": "x@example.com", "password": PASSWORD, "name": 7}, "$.name"),
        ({"email": "not-an-email", "password": PASSWORD, "name": "Bad"}, "$.email"),
        ({"email": "long@example.com", "password": PASSWORD, "name": "n" * 101}, "$.name"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_creates_nothing(
    world: World, http: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    """Missing fields, wrong types, an invalid email, an overlong name: 422, nothing made."""
    async with http.post(f"{world.api}/auth/register", json=body) as response:
        assert response.status == 422
        errors = (await problem(response))["errors"]
    assert errors[0]["field"] == field
    if isinstance(body.get("email"), str) and "@" in body["email"]:
        async with http.post(
            f"{world.api}/auth/login", json={"email": body["email"], "password": PASSWORD}
        ) as response:
            assert response.status == 401


async def test_login_failures_and_limits(world: World, http: aiohttp.ClientSession) -> None:
    """Wrong password and unknown email answer alike; the 6th failure is a 429 Retry-After."""
    await register(world, http, "limit@example.com")
    answers = []
    for email in ("limit@example.com", "nobody@example.com"):
        async with http.post(
            f"{world.api}/auth/login", json={"email": email, "password": "wrong password!"}
        ) as response:
            answers.append((response.status, (await problem(response))["code"]))
    assert answers == [(401, "invalid_credentials")] * 2
    for _ in range(4):
        async with http.post(
            f"{world.api}/auth/login",
            json={"email": "limit@example.com", "password": "wrong password!"},
        ) as response:
            assert response.status in (401, 429)
    async with http.post(
        f"{world.api}/auth/login", json={"email": "limit@example.com", "password": PASSWORD}
    ) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) > 0


async def test_refresh_rotation_and_reuse_detection(
    world: World, http: aiohttp.ClientSession
) -> None:
    """Refresh gives a new pair; replaying the old token is token_reused and kills the new one."""
    await register(world, http, "rot@example.com")
    first = await login(world, http, "rot@example.com")
    async with http.post(
        f"{world.api}/auth/refresh", json={"refresh_token": first["refresh_token"]}
    ) as response:
        assert response.status == 200
        second = await response.json()
    world.seen_secrets += [second["access_token"], second["refresh_token"]]
    assert second["refresh_token"] != first["refresh_token"]
    async with http.post(
        f"{world.api}/auth/refresh", json={"refresh_token": first["refresh_token"]}
    ) as response:
        assert response.status == 401
        assert (await problem(response))["code"] == "token_reused"
    async with http.post(
        f"{world.api}/auth/refresh", json={"refresh_token": second["refresh_token"]}
    ) as response:
        assert response.status == 401


async def test_logout_sessions_and_revoke(world: World, http: aiohttp.ClientSession) -> None:
    """Sessions are listed; revoking one kills its refresh token; logout kills its own."""
    await register(world, http, "sess@example.com")
    phone = await login(world, http, "sess@example.com")
    laptop = await login(world, http, "sess@example.com")
    async with http.get(f"{world.api}/auth/sessions", headers=bearer(laptop)) as response:
        assert response.status == 200
        sessions = (await response.json())["items"]
    assert len(sessions) == 2
    assert {"id", "created_at", "last_used_at", "user_agent"} <= set(sessions[0])
    other = next(s for s in sessions if not s["current"])
    async with http.delete(
        f"{world.api}/auth/sessions/{other['id']}", headers=bearer(laptop)
    ) as response:
        assert response.status == 204
    async with http.post(
        f"{world.api}/auth/refresh", json={"refresh_token": phone["refresh_token"]}
    ) as response:
        assert response.status == 401
    async with http.delete(
        f"{world.api}/auth/sessions/no-such-session", headers=bearer(laptop)
    ) as response:
        assert response.status == 404
    async with http.post(
        f"{world.api}/auth/logout", json={"refresh_token": laptop["refresh_token"]}
    ) as response:
        assert response.status == 204
    async with http.post(
        f"{world.api}/auth/refresh", json={"refresh_token": laptop["refresh_token"]}
    ) as response:
        assert response.status == 401


async def test_password_reset_by_mail_revokes_every_session(
    world: World, http: aiohttp.ClientSession
) -> None:
    """Forgot is 202 for anyone; the mailed token resets once and ends every session."""
    async with http.post(
        f"{world.api}/auth/password/forgot", json={"email": "ghost@example.com"}
    ) as response:
        assert response.status == 202
    await register(world, http, "reset@example.com")
    session = await login(world, http, "reset@example.com")
    async with http.post(
        f"{world.api}/auth/password/forgot", json={"email": "reset@example.com"}
    ) as response:
        assert response.status == 202
    mail = await wait_for_mail(world, "reset@example.com", count=2)
    token = parse_qs(urlsplit(link_in(mail, "/reset-password")).query)["token"][0]
    world.seen_secrets.append(token)
    body = {"token": token, "password": OTHER_PASSWORD}
    async with http.post(f"{world.api}/auth/password/reset", json=body) as response:
        assert response.status == 204
    async with http.post(f"{world.api}/auth/password/reset", json=body) as response:
        assert response.status == 401
    async with http.post(
        f"{world.api}/auth/refresh", json={"refresh_token": session["refresh_token"]}
    ) as response:
        assert response.status == 401
    await login(world, http, "reset@example.com", OTHER_PASSWORD)


async def test_me_update_and_telegram_link(world: World, http: aiohttp.ClientSession) -> None:
    """PATCH /me changes name and phone (a bad phone is 422); telegram-link is a 409
    `telegram_not_configured` on a node where no bot runs (a bot username alone is not one;
    tests/e2e/test_notifications.py links through a running bot)."""
    await register(world, http, "me@example.com")
    pair = await login(world, http, "me@example.com")
    async with http.patch(
        f"{world.api}/me", json={"name": "Grace", "phone": "+4915112345678"}, headers=bearer(pair)
    ) as response:
        assert response.status == 200
        assert (await response.json())["user"]["name"] == "Grace"
    async with http.patch(
        f"{world.api}/me", json={"phone": "12"}, headers=bearer(pair)
    ) as response:
        assert response.status == 422
        assert (await problem(response))["errors"][0]["field"] == "$.phone"
    async with http.post(f"{world.api}/me/telegram-link", headers=bearer(pair)) as response:
        assert response.status == 409
        assert (await problem(response))["code"] == "telegram_not_configured"


def forged(claims: dict[str, Any], *, kid: str = KID, key: str = SECRET) -> str:
    """A token signed with the ES256 key the seed `key` makes, under `kid`."""
    return jwt.encode({"alg": "ES256", "kid": kid}, claims, derive_signing_key(KID, key.encode()))


def hs256(claims: dict[str, Any]) -> str:
    """A token in the form splitgo issued before ES256: HMAC keyed with the seed itself."""
    return jwt.encode({"alg": "HS256", "kid": KID}, claims, OctKey.import_key(SECRET.encode()))


def unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'kid': KID})}.{part(claims)}."


async def test_bad_tokens_are_401_invalid_token(world: World, http: aiohttp.ClientSession) -> None:
    """Expired, wrongly signed, alg none, unknown kid, a refresh token, or an HS256 token
    keyed with the shared seed: 401 invalid_token."""
    await register(world, http, "tok@example.com")
    pair = await login(world, http, "tok@example.com")
    async with http.get(f"{world.api}/me", headers=bearer(pair)) as response:
        me = await response.json()
    now = int(time.time())
    good = {"sub": me["id"], "roles": ["user"], "sid": "s", "iat": now, "exp": now + 600}
    tokens = [
        forged({**good, "exp": now - 5}),
        forged(good, key="another-secret-that-is-long-enough-0123456789"),
        unsigned(good),
        forged(good, kid="not-a-key"),
        pair["refresh_token"],
        forged({**good, "typ": "refresh"}),
        hs256(good),
    ]
    for token in tokens:
        async with http.get(
            f"{world.api}/me", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 401, token
            assert (await problem(response))["code"] == "invalid_token"
    async with http.get(f"{world.api}/me") as response:
        assert response.status == 401


async def test_social_login_creates_then_links(world: World, http: aiohttp.ClientSession) -> None:
    """Google sign-in: the first login creates the user, a later one signs into it."""
    world.oidc.identity = FakeIdentity(sub="google-1", email="social@example.com", name="Soc")
    tokens = []
    for _ in range(2):
        async with http.get(
            f"{world.api}/auth/oauth/google/start", allow_redirects=False
        ) as response:
            assert response.status == 302
            to_provider = response.headers["Location"]
        assert "code_challenge=" in to_provider
        async with http.get(to_provider, allow_redirects=False) as response:
            back = response.headers["Location"]
        async with http.get(back) as response:
            assert response.status == 200, await response.text()
            tokens.append(await response.json())
    ids = []
    for pair in tokens:
        world.seen_secrets += [pair["access_token"], pair["refresh_token"]]
        async with http.get(f"{world.api}/me", headers=bearer(pair)) as response:
            ids.append((await response.json())["id"])
    assert ids[0] == ids[1]


async def test_an_invitation_joins_at_a_social_sign_up_with_a_verified_email(
    world: World, http: aiohttp.ClientSession
) -> None:
    """An address invited to a group joins it when a Google sign-in, whose provider verified
    that address, creates its account."""
    await register(world, http, "host@example.com")
    host = await login(world, http, "host@example.com")
    async with http.post(
        f"{world.api}/groups", json={"name": "Hike", "currency": "EUR"}, headers=bearer(host)
    ) as response:
        assert response.status == 201, await response.text()
        group = (await response.json())["id"]
    async with http.post(
        f"{world.api}/groups/{group}/members",
        json={"email": "guest@example.com"},
        headers=bearer(host),
    ) as response:
        assert response.status == 201, await response.text()
    world.oidc.identity = FakeIdentity(sub="google-guest", email="guest@example.com", name="G")
    async with http.get(f"{world.api}/auth/oauth/google/start", allow_redirects=False) as response:
        to_provider = response.headers["Location"]
    async with http.get(to_provider, allow_redirects=False) as response:
        back = response.headers["Location"]
    async with http.get(back) as response:
        assert response.status == 200, await response.text()
        guest = await response.json()
    world.seen_secrets += [guest["access_token"], guest["refresh_token"]]
    groups: list[str] = []
    for _ in range(200):
        async with http.get(f"{world.api}/groups", headers=bearer(guest)) as response:
            groups = [g["id"] for g in (await response.json())["items"]]
        if groups:
            break
        await asyncio.sleep(0.05)
    assert groups == [group]


async def test_social_login_bad_state_and_provider_error(
    world: World, http: aiohttp.ClientSession
) -> None:
    """A forged state is 400; a provider that says no is 400 too; neither signs anyone in."""
    async with http.get(f"{world.api}/auth/oauth/google/callback?code=x&state=forged") as response:
        assert response.status == 400
        assert (await problem(response))["code"] == "oauth_failed"
    async with http.get(
        f"{world.api}/auth/oauth/google/callback?error=access_denied&state=s"
    ) as response:
        assert response.status == 400
    async with http.get(f"{world.api}/auth/oauth/nowhere/start", allow_redirects=False) as response:
        assert response.status == 404


async def test_admin_cli_and_ops_with_an_access_token(
    world: World, http: aiohttp.ClientSession
) -> None:
    """`run.py admin create` makes an admin (its password from SPLITGO_ADMIN_PASSWORD, never a
    flag) whose access token opens /ops; a user's does not."""
    env = {**os.environ, **world.env, "SPLITGO_ADMIN_PASSWORD": OTHER_PASSWORD}
    result = subprocess.run(
        [
            sys.executable, "run.py", "admin", "create", "--email", "root@example.com",
            "--data-dir", str(world.folder / "data"),
        ],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    admin = await login(world, http, "root@example.com", OTHER_PASSWORD)
    async with http.get(f"{world.node.url}/ops/actors", headers=bearer(admin)) as response:
        assert response.status == 200
    await register(world, http, "plain@example.com")
    plain = await login(world, http, "plain@example.com")
    async with http.get(f"{world.node.url}/ops/actors", headers=bearer(plain)) as response:
        assert response.status == 403


async def test_logs_hold_no_password_or_token(world: World) -> None:
    """Nothing the tests sent or received as a secret shows up in the node's logs."""
    output = world.node.output()
    assert output
    for secret in [PASSWORD, OTHER_PASSWORD, *world.seen_secrets]:
        assert secret not in output


async def test_a_password_change_needs_the_current_one_and_ends_other_sessions(
    world: World, http: aiohttp.ClientSession
) -> None:
    """A wrong current password is 422 at `$.current_password` and changes nothing; the right
    one sets the new password, revokes the other session, keeps this one and mails the user."""
    email = "change-password@example.com"
    await register(world, http, email)
    here = await login(world, http, email)
    elsewhere = await login(world, http, email)
    new_password = "a whole new sentence of words 7"
    change = f"{world.api}/me/password"
    wrong = {"current_password": "not it at all", "password": new_password}
    async with http.post(change, json=wrong, headers=bearer(here)) as response:
        assert response.status == 422
        body = await problem(response)
        assert body["code"] == "wrong_password"
        assert body["errors"][0]["field"] == "$.current_password"
    await login(world, http, email)  # the old password still works
    right = {"current_password": PASSWORD, "password": new_password}
    async with http.post(change, json=right, headers=bearer(here)) as response:
        assert response.status == 204, await response.text()
    async with http.get(f"{world.api}/me", headers=bearer(here)) as response:
        assert response.status == 200
    for _ in range(100):  # revocations reach the edge through an event
        async with http.get(f"{world.api}/me", headers=bearer(elsewhere)) as response:
            if response.status == 401:
                break
        await asyncio.sleep(0.05)
    assert response.status == 401
    old = {"email": email, "password": PASSWORD}
    async with http.post(f"{world.api}/auth/login", json=old) as response:
        assert response.status == 401
    await login(world, http, email, new_password)
    mails = await wait_for_mail(world, email, count=2)
    assert "password" in str(mails["Subject"]).lower()


async def test_a_service_with_only_the_published_keys_verifies_access_tokens(
    world: World, http: aiohttp.ClientSession
) -> None:
    """Another service that finds /.well-known/jwks.json through the discovery document
    verifies a signed-in user's access token with a JWT library and those public keys alone,
    and refuses the token once its payload is changed."""
    user = await register(world, http, "jwks@example.com")
    pair = await login(world, http, "jwks@example.com")
    async with http.get(f"{world.node.url}/.well-known/openid-configuration") as response:
        assert response.status == 200
        discovery = await response.json()
    assert discovery["issuer"] == world.node.url.rstrip("/")
    async with http.get(discovery["jwks_uri"]) as response:
        assert response.status == 200
        published = await response.json()
    assert published["keys"]
    assert all("d" not in key for key in published["keys"])
    keys = KeySet.import_key_set(published)
    claims = jwt.decode(pair["access_token"], keys, algorithms=["ES256"]).claims
    assert (claims["sub"], claims["typ"]) == (user["user"]["id"], "access")
    head, _payload, signature = pair["access_token"].split(".")
    elevated = base64.urlsafe_b64encode(json.dumps({**claims, "roles": ["admin"]}).encode())
    with pytest.raises(BadSignatureError):
        jwt.decode(f"{head}.{elevated.decode().rstrip('=')}.{signature}", keys)
