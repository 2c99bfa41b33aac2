"""Social login by OpenID Connect discovery and with Facebook, over HTTP against a real node:
the JSON routes and the web app's buttons, with fake providers found by their settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support.fake_facebook import FakeFacebook, FakeFacebookPerson
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.oidc import FakeIdentity, FakeOidcProvider

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "correct horse battery staple 42"


@dataclass
class World:
    node: RunningNode
    acme: FakeOidcProvider  # found by discovery, shown as "Acme SSO"
    rogue: FakeOidcProvider  # its discovery document names another issuer
    flaky: FakeOidcProvider  # its discovery endpoint fails until told otherwise
    facebook: FakeFacebook

    @property
    def api(self) -> str:
        return f"{self.node.url}/api/v1"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    acme, rogue, flaky = (FakeOidcProvider(client_id=f"{n}-client") for n in "arf")
    facebook = FakeFacebook()
    for fake in (acme, rogue, flaky, facebook):
        await fake.start()
    rogue.discovery_overrides = {"issuer": acme.issuer}
    flaky.discovery_status = 503
    env = {
        "SPLITGO_JWT_KEYS": "social-k1:social-e2e-signing-secret-long-enough-0123456789",
        "SPLITGO_OIDC_PROVIDERS": f"acme={acme.issuer},rogue={rogue.issuer},flaky={flaky.issuer}",
        "SPLITGO_OIDC_CLIENTS": ",".join(
            f"{name}={fake.client_id}:{fake.client_secret}"
            for name, fake in (("acme", acme), ("rogue", rogue), ("flaky", flaky))
        ),
        "SPLITGO_OIDC_DISPLAY_NAMES": "acme=Acme SSO",
        "SPLITGO_OAUTH_FACEBOOK_CLIENT_ID": facebook.client_id,
        "SPLITGO_OAUTH_FACEBOOK_CLIENT_SECRET": facebook.client_secret,
        "SPLITGO_OAUTH_FACEBOOK_BASE_URL": facebook.url,
    }
    node = await start_node(tmp_path_factory.mktemp("social-node"), env=env)
    try:
        yield World(node, acme, rogue, flaky, facebook)
    finally:
        await stop_node(node)
        for fake in (acme, rogue, flaky, facebook):
            await fake.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def social_sign_in(
    world: World, http: aiohttp.ClientSession, provider: str
) -> tuple[int, dict[str, Any]]:
    """The JSON routes' flow, the provider approving at once: the final status and body."""
    async with http.get(
        f"{world.api}/auth/oauth/{provider}/start", allow_redirects=False
    ) as response:
        if response.status != 302:
            return response.status, dict(await response.json())
        to_provider = response.headers["Location"]
    async with http.get(to_provider, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        back = response.headers["Location"]
    async with http.get(back) as response:
        return response.status, dict(await response.json())


async def me(world: World, http: aiohttp.ClientSession, pair: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    async with http.get(f"{world.api}/me", headers=headers) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


async def test_a_discovered_provider_signs_in(world: World, http: aiohttp.ClientSession) -> None:
    """An OpenID Connect provider configured by its issuer alone signs a new person in, and
    again into the same account."""
    world.acme.identity = FakeIdentity(sub="acme-1", email="kai@example.com", name="Kai")
    ids = []
    for _ in range(2):
        status, pair = await social_sign_in(world, http, "acme")
        assert status == 200, pair
        ids.append((await me(world, http, pair))["id"])
    assert ids[0] == ids[1]
    assert world.acme.discovery_requests == 1  # the node keeps the document


async def test_an_issuer_mismatch_is_refused(world: World, http: aiohttp.ClientSession) -> None:
    """A provider whose discovery document names another issuer is refused at the start, as a
    problem saying so; the browser is never sent to it."""
    status, problem = await social_sign_in(world, http, "rogue")
    assert status == 400
    assert problem["code"] == "oauth_failed"
    assert "another issuer" in problem["detail"]
    assert not world.rogue.authorize_requests


async def test_discovery_down_fails_clearly_then_recovers(
    world: World, http: aiohttp.ClientSession
) -> None:
    """A provider whose discovery endpoint is down fails the start with words for people; once
    it is back, the next sign-in works (a failure is not remembered)."""
    status, problem = await social_sign_in(world, http, "flaky")
    assert status == 400
    assert problem["code"] == "oauth_failed"
    assert "could not tell us where to sign in" in problem["detail"]
    world.flaky.discovery_status = 200
    world.flaky.identity = FakeIdentity(sub="flaky-1", email="fay@example.com")
    status, pair = await social_sign_in(world, http, "flaky")
    assert status == 200, pair


async def test_an_unverified_address_does_not_link(
    world: World, http: aiohttp.ClientSession
) -> None:
    """A provider that has not verified the address of an account registered here cannot sign
    into it."""
    body = {"email": "lin@example.com", "password": PASSWORD, "name": "Lin"}
    async with http.post(f"{world.api}/auth/register", json=body) as response:
        assert response.status == 201, await response.text()
    world.acme.identity = FakeIdentity(
        sub="acme-lin", email="lin@example.com", email_verified=False
    )
    status, problem = await social_sign_in(world, http, "acme")
    assert status == 400
    assert "has not verified the address" in problem["detail"]


async def test_facebook_signs_in_and_links_by_its_confirmed_email(
    world: World, http: aiohttp.ClientSession
) -> None:
    """Facebook signs a new person in by its app-scoped id (again into the same account), and
    a Facebook person with the address of an account registered here signs into that account
    (Facebook only returns confirmed addresses)."""
    world.facebook.person = FakeFacebookPerson(id="9001", name="Noor", email="noor@example.com")
    first_status, first = await social_sign_in(world, http, "facebook")
    again_status, again = await social_sign_in(world, http, "facebook")
    assert (first_status, again_status) == (200, 200)
    assert (await me(world, http, first))["id"] == (await me(world, http, again))["id"]
    assert all(request.proof_matched for request in world.facebook.me_requests)

    body = {"email": "omar@example.com", "password": PASSWORD, "name": "Omar"}
    async with http.post(f"{world.api}/auth/register", json=body) as response:
        registered = await response.json()
    world.facebook.person = FakeFacebookPerson(id="9002", name="Omar", email="omar@example.com")
    status, pair = await social_sign_in(world, http, "facebook")
    assert status == 200, pair
    assert (await me(world, http, pair))["id"] == registered["id"]


async def test_facebook_without_an_email_is_refused_plainly(
    world: World, http: aiohttp.ClientSession
) -> None:
    """A Facebook person without a confirmed address cannot make an account: the problem says
    to share the address."""
    world.facebook.person = FakeFacebookPerson(id="9003", name="Pat", email=None)
    status, problem = await social_sign_in(world, http, "facebook")
    assert status == 400
    assert "did not share an email" in problem["detail"]


async def test_the_pages_offer_a_button_per_provider(world: World) -> None:
    """The sign-in and sign-up pages show a button for each configured provider, by the name
    people know it by; the web app's Facebook button signs in and lands on home."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as browser:
        for path in ("/sign-in", "/sign-up"):
            async with browser.get(f"{world.node.url}{path}") as response:
                html = await response.text()
            assert response.status == 200
            for name, label in (("acme", "Acme SSO"), ("rogue", "Rogue"), ("facebook", "Facebook")):
                assert f'href="/sign-in/{name}' in html
                assert f"Continue with {label}" in html
            assert "/sign-in/google" not in html  # not configured: no button
        world.facebook.person = FakeFacebookPerson(id="9004", name="Quinn", email="q@example.com")
        async with browser.get(
            f"{world.node.url}/sign-in/facebook", allow_redirects=False
        ) as response:
            assert response.status == 302
            to_provider = response.headers["Location"]
        async with browser.get(to_provider, allow_redirects=False) as response:
            back = response.headers["Location"]
        async with browser.get(back) as response:
            assert response.status == 200
            assert str(response.url).endswith("/home")
            assert "Quinn" in await response.text()
        async with browser.get(f"{world.node.url}/sign-in/rogue") as response:
            assert response.status == 400
            assert "another issuer" in await response.text()
