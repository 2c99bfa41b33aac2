"""Social login by discovery and Facebook (actors/auth/discovery.py, facebook.py) against fake
providers served over real HTTP; the browser is played by following redirects by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from structlog.testing import capture_logs

from actors.auth import discovery, id_tokens
from actors.auth.discovery import DiscoveryRefused
from actors.auth.messages import OAuthFailed
from actors.auth.oauth import (
    ProviderConfig,
    ProviderIdentity,
    authorization_request,
    complete_authorization,
    resolve_provider,
)
from tests.support.fake_facebook import FakeFacebook, FakeFacebookPerson
from tests.support.node import free_port
from tests.support.oidc import FakeIdentity, FakeOidcProvider

REDIRECT_URI = "http://127.0.0.1:8080/sign-in/acme/callback"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    # Fakes may reuse a port: no test may see another's keys or discovery documents.
    id_tokens.clear_jwks_cache()
    discovery.clear_discovery_cache()
    yield
    id_tokens.clear_jwks_cache()
    discovery.clear_discovery_cache()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def idp() -> AsyncIterator[FakeOidcProvider]:
    async with FakeOidcProvider() as provider:
        yield provider


@pytest.fixture
async def facebook() -> AsyncIterator[FakeFacebook]:
    async with FakeFacebook() as fake:
        yield fake


def acme(idp: FakeOidcProvider) -> ProviderConfig:
    return ProviderConfig.discovered(
        "acme", idp.issuer, idp.client_id, idp.client_secret, display_name="Acme SSO"
    )


def facebook_config(facebook: FakeFacebook, secret: str | None = None) -> ProviderConfig:
    return ProviderConfig.facebook(
        facebook.client_id, secret or facebook.client_secret, base_url=facebook.url
    )


async def sign_in(http: aiohttp.ClientSession, provider: ProviderConfig) -> ProviderIdentity:
    """The whole flow: resolve, authorize (the fake approves at once), complete."""
    resolved = await resolve_provider(provider, http=http)
    request = authorization_request(resolved, REDIRECT_URI)
    async with http.get(request.url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        back = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    assert back["state"] == request.state
    return await complete_authorization(
        provider,
        code=back["code"],
        redirect_uri=REDIRECT_URI,
        code_verifier=request.code_verifier,
        nonce=request.nonce,
        http=http,
    )


# ── OpenID Connect by discovery ────────────────────────────────────────────────────────


async def test_a_discovered_provider_signs_in(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """A provider known only by its issuer learns its endpoints from the discovery document and
    yields the verified identity; the authorize request carries S256, state and nonce."""
    idp.identity = FakeIdentity(sub="acme-7", email="kim@example.com", name="Kim")
    provider = acme(idp)
    resolved = await resolve_provider(provider, http=http)
    assert resolved.authorize_url == f"{idp.url}/authorize"
    assert resolved.jwks_url == f"{idp.url}/jwks"
    identity = await sign_in(http, provider)
    assert identity == ProviderIdentity(
        provider="acme", subject="acme-7", email="kim@example.com", email_verified=True, name="Kim"
    )
    assert idp.last_authorization.code_challenge_method == "S256"


async def test_the_discovery_document_is_cached(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """Three sign-ins fetch the discovery document once."""
    for _ in range(3):
        await sign_in(http, acme(idp))
    assert idp.discovery_requests == 1


async def test_an_issuer_mismatch_is_refused_before_any_redirect(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """A discovery document naming another issuer is refused (mix-up defence): no authorize
    URL is ever built from it."""
    idp.discovery_overrides = {"issuer": "https://accounts.google.com"}
    with capture_logs() as logs, pytest.raises(DiscoveryRefused) as failure:
        await resolve_provider(acme(idp), http=http)
    assert failure.value.details["reason"] == "issuer_mismatch"
    assert str(failure.value).startswith("Acme SSO published a discovery document")
    assert not idp.authorize_requests
    assert any(entry["event"] == "oauth discovery refused" for entry in logs)


async def test_completing_a_sign_in_refuses_an_issuer_mismatch_too(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """The callback's code is not redeemed at endpoints from a document for another issuer."""
    idp.discovery_overrides = {"issuer": "https://evil.example"}
    with pytest.raises(OAuthFailed, match="another issuer"):
        await complete_authorization(
            acme(idp), code="c", redirect_uri=REDIRECT_URI, code_verifier="v", nonce="n", http=http
        )
    assert idp.token_requests == 0


async def test_a_document_without_s256_is_refused(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """A provider listing PKCE methods without S256 is refused; one listing none is used."""
    idp.discovery_overrides = {"code_challenge_methods_supported": ["plain"]}
    with pytest.raises(DiscoveryRefused, match="S256"):
        await resolve_provider(acme(idp), http=http)
    idp.discovery_overrides = {}
    idp.discovery_omit = {"code_challenge_methods_supported"}
    assert (await sign_in(http, acme(idp))).subject == idp.identity.sub


async def test_discovery_down_is_a_clear_failure_and_is_fetched_again(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """A discovery endpoint answering 503 fails the sign-in with words for people; the failure
    is not cached, so the next sign-in fetches again and works."""
    idp.discovery_status = 503
    with pytest.raises(DiscoveryRefused) as failure:
        await resolve_provider(acme(idp), http=http)
    assert str(failure.value) == (
        "Acme SSO could not tell us where to sign in (HTTP 503). Try again later."
    )
    idp.discovery_status = 200
    assert (await sign_in(http, acme(idp))).subject == idp.identity.sub
    assert idp.discovery_requests == 2


async def test_an_unreachable_issuer_is_a_clear_failure(http: aiohttp.ClientSession) -> None:
    """An issuer nobody answers at fails with a could-not-be-reached message naming it."""
    dead = ProviderConfig.discovered("acme", f"http://127.0.0.1:{free_port()}", "c", "s")
    with pytest.raises(DiscoveryRefused, match=r"^Acme could not be reached to sign you in"):
        await resolve_provider(dead, http=http)


async def test_a_stale_document_serves_while_fetching_fails(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a cached document is due and fetching it again fails, the stale copy still serves."""
    await resolve_provider(acme(idp), http=http)
    monkeypatch.setattr(discovery, "DISCOVERY_CACHE_SECONDS", 0.0)
    idp.discovery_status = 500
    resolved = await resolve_provider(acme(idp), http=http)
    assert resolved.token_url == f"{idp.url}/token"
    assert idp.discovery_requests == 2
    monkeypatch.setattr(discovery, "DISCOVERY_STALE_SECONDS", 0.0)
    with pytest.raises(DiscoveryRefused):
        await resolve_provider(acme(idp), http=http)


async def test_an_oversized_document_is_refused(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """A discovery answer larger than the document bound is not read."""
    idp.discovery_overrides = {"padding": "x" * (discovery.MAX_DOCUMENT_BYTES + 10)}
    with pytest.raises(DiscoveryRefused, match="could not be reached"):
        await resolve_provider(acme(idp), http=http)


async def test_a_document_without_a_token_endpoint_is_refused(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """A document that leaves out the token endpoint is refused naming what is missing."""
    idp.discovery_omit = {"token_endpoint"}
    with pytest.raises(DiscoveryRefused, match="does not name a usable token endpoint"):
        await resolve_provider(acme(idp), http=http)


# ── Facebook ───────────────────────────────────────────────────────────────────────────


async def test_facebook_signs_in_with_pkce_and_appsecret_proof(
    http: aiohttp.ClientSession, facebook: FakeFacebook
) -> None:
    """A Facebook sign-in sends state and an S256 challenge, asks /me for id, name and email
    with a matching appsecret_proof, and yields the app-scoped id with a verified email;
    nothing secret reaches the logs."""
    facebook.person = FakeFacebookPerson(id="5550001", name="Ada", email="ada@example.com")
    with capture_logs() as logs:
        identity = await sign_in(http, facebook_config(facebook))
    assert identity == ProviderIdentity(
        provider="facebook",
        subject="5550001",
        email="ada@example.com",
        email_verified=True,
        name="Ada",
    )
    asked = facebook.last_authorization
    assert asked.code_challenge_method == "S256"
    assert asked.state
    assert asked.nonce is None
    assert asked.scope == "email public_profile"
    assert [(r.fields, r.proof_matched) for r in facebook.me_requests] == [("id,name,email", True)]
    assert facebook.client_secret not in repr(logs)


async def test_facebook_without_a_confirmed_email(
    http: aiohttp.ClientSession, facebook: FakeFacebook
) -> None:
    """A person Facebook has no confirmed address for comes back without an email."""
    facebook.person = FakeFacebookPerson(id="5550002", name=None, email=None)
    identity = await sign_in(http, facebook_config(facebook))
    assert (identity.subject, identity.email, identity.email_verified) == ("5550002", None, False)
    assert identity.name is None


async def test_facebook_token_refusal_names_the_graph_error(
    http: aiohttp.ClientSession, facebook: FakeFacebook
) -> None:
    """A token endpoint error in the Graph API's shape fails naming its type, not its body."""
    facebook.fail_token = True
    with pytest.raises(OAuthFailed, match=r"facebook refused the token request \(OAuthException\)"):
        await sign_in(http, facebook_config(facebook))


async def test_facebook_wrong_app_secret_fails(
    http: aiohttp.ClientSession, facebook: FakeFacebook
) -> None:
    """A wrong app secret is refused at the token endpoint, the secret kept out of the error."""
    with pytest.raises(OAuthFailed) as failure:
        await sign_in(http, facebook_config(facebook, secret="not-the-secret"))
    assert "not-the-secret" not in str(failure.value)
    assert not facebook.me_requests
