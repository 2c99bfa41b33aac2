"""Social login (actors/auth/oauth.py, id_tokens.py) against fake providers served over real HTTP.

The browser's part is played by following the authorize redirect by hand
(`allow_redirects=False`); no database is needed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from structlog.testing import capture_logs

from actors.auth import discovery, id_tokens, oauth, provider_http
from actors.auth.messages import OAuthFailed
from actors.auth.oauth import (
    AuthorizationRequest,
    ProviderConfig,
    ProviderIdentity,
    authorization_request,
    complete_authorization,
)
from tests.support.node import free_port
from tests.support.oidc import FakeGitHubProvider, FakeIdentity, FakeOidcProvider, GitHubEmail

REDIRECT_URI = "http://127.0.0.1:8080/auth/oauth/callback"
UNRESERVED = re.compile(r"^[A-Za-z0-9\-._~]+$")


@pytest.fixture(autouse=True)
def _fresh_jwks_cache() -> Iterator[None]:
    # Fakes get new keys and may reuse a port: no test may see another's cached keys (nor
    # discovery documents).
    id_tokens.clear_jwks_cache()
    discovery.clear_discovery_cache()
    yield
    id_tokens.clear_jwks_cache()
    discovery.clear_discovery_cache()


def static_oidc(
    client_id: str, client_secret: str, base: str = "https://idp.example"
) -> ProviderConfig:
    """An OpenID Connect provider configured with fixed endpoints (no discovery)."""
    return ProviderConfig(
        name="google",
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/token",
        userinfo_url=f"{base}/userinfo",
        jwks_url=f"{base}/jwks",
        issuer=base,
        scopes=("openid", "email", "profile"),
        kind="oidc",
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def idp() -> AsyncIterator[FakeOidcProvider]:
    async with FakeOidcProvider() as provider:
        yield provider


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHubProvider]:
    async with FakeGitHubProvider() as provider:
        yield provider


@pytest.fixture
async def google_config(idp: FakeOidcProvider, http: aiohttp.ClientSession) -> ProviderConfig:
    """Google pointed at the fake, its endpoints discovered."""
    config = ProviderConfig.google(idp.client_id, idp.client_secret, base_url=idp.url)
    return await oauth.resolve_provider(config, http=http)


@pytest.fixture
def github_config(github: FakeGitHubProvider) -> ProviderConfig:
    return ProviderConfig.github(github.client_id, github.client_secret, base_url=github.url)


async def authorize(http: aiohttp.ClientSession, request: AuthorizationRequest) -> dict[str, str]:
    """Play the browser: open the authorize URL, return the callback's query parameters."""
    async with http.get(request.url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in(
    http: aiohttp.ClientSession, provider: ProviderConfig
) -> tuple[AuthorizationRequest, str]:
    """Start a sign-in and let the fake approve it: the request and the returned code."""
    provider = await oauth.resolve_provider(provider, http=http)
    request = authorization_request(provider, REDIRECT_URI)
    callback = await authorize(http, request)
    assert callback["state"] == request.state
    return request, callback["code"]


async def finish(
    http: aiohttp.ClientSession,
    provider: ProviderConfig,
    request: AuthorizationRequest,
    code: str,
    *,
    code_verifier: str | None = None,
    nonce: str | None = None,
) -> ProviderIdentity:
    return await complete_authorization(
        provider,
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=code_verifier or request.code_verifier,
        nonce=nonce or request.nonce,
        http=http,
    )


def assert_nothing_secret(text: str, *secrets: str | None) -> None:
    for secret in secrets:
        if secret:
            assert secret not in text


# ── the authorization request ──────────────────────────────────────────────────────────


def test_authorization_url_carries_pkce_state_and_nonce() -> None:
    """The OIDC authorize URL asks for a code with the client id, redirect URI, OpenID scopes,
    state, nonce and S256 challenge, but never the secret or the verifier."""
    provider = static_oidc("cid", "csecret")
    request = authorization_request(provider, REDIRECT_URI)
    url = urlsplit(request.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == provider.authorize_url
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == "cid"
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["scope"] == "openid email profile"
    assert query["state"] == request.state
    assert query["nonce"] == request.nonce
    assert query["code_challenge_method"] == "S256"
    assert "csecret" not in request.url
    assert request.code_verifier not in request.url


def test_pkce_challenge_matches_the_rfc_7636_example() -> None:
    """The S256 challenge of RFC 7636 appendix B's verifier is the one given there."""
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert oauth.s256_code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    """The code challenge is the unpadded base64url SHA-256 of the code verifier."""
    request = authorization_request(static_oidc("cid", "s"), REDIRECT_URI)
    challenge = parse_qs(urlsplit(request.url).query)["code_challenge"][0]
    digest = hashlib.sha256(request.code_verifier.encode("ascii")).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_state_verifier_and_nonce_are_random_and_long() -> None:
    """Each request's verifier is 43 to 128 unreserved characters, its state and nonce are at least
    32 long, and all of them are unique across requests."""
    provider = static_oidc("cid", "s")
    requests = [authorization_request(provider, REDIRECT_URI) for _ in range(50)]
    for request in requests:
        # RFC 7636 4.1: 43..128 unreserved characters
        assert 43 <= len(request.code_verifier) <= 128
        assert UNRESERVED.match(request.code_verifier)
        assert len(request.state) >= 32
        assert request.nonce is not None
        assert len(request.nonce) >= 32
    assert len({r.state for r in requests}) == 50
    assert len({r.code_verifier for r in requests}) == 50
    assert len({r.nonce for r in requests}) == 50
    assert len({r.state for r in requests} & {r.code_verifier for r in requests}) == 0


def test_github_request_has_no_nonce() -> None:
    """A GitHub request goes to GitHub's authorize URL with its own scopes and has no nonce."""
    request = authorization_request(ProviderConfig.github("cid", "s"), REDIRECT_URI)
    query = parse_qs(urlsplit(request.url).query)
    assert request.nonce is None
    assert "nonce" not in query
    assert query["scope"] == ["read:user user:email"]
    assert request.url.startswith("https://github.com/login/oauth/authorize?")


def test_default_endpoints_are_the_real_ones() -> None:
    """Google is discovered from its real issuer, GitHub defaults to its real endpoints; both
    have their scopes, and the client secret stays out of the repr."""
    google = ProviderConfig.google("cid", "s")
    assert google.kind == "oidc"
    assert google.discovery
    assert not google.resolved
    assert google.issuer == "https://accounts.google.com"
    assert google.scopes == ("openid", "email", "profile")
    assert google.label == "Google"
    hub = ProviderConfig.github("cid", "s")
    assert hub.kind == "github"
    assert hub.authorize_url == "https://github.com/login/oauth/authorize"
    assert hub.token_url == "https://github.com/login/oauth/access_token"
    assert hub.userinfo_url == "https://api.github.com/user"
    assert hub.scopes == ("read:user", "user:email")
    # the secret stays out of reprs (logs, tracebacks)
    assert "topsecret" not in repr(ProviderConfig.google("cid", "topsecret"))


# ── the OpenID Connect flow ────────────────────────────────────────────────────────────


async def test_full_oidc_flow(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """A full OIDC sign-in passes S256, state and nonce to the provider and yields the verified
    identity, with no code, verifier, secret or state in the logs."""
    idp.identity = FakeIdentity(sub="1234567890", email="grace@example.com", name="Grace Hopper")
    request, code = await sign_in(http, google_config)

    recorded = idp.last_authorization
    assert recorded.code_challenge_method == "S256"
    assert recorded.nonce == request.nonce
    assert recorded.state == request.state

    with capture_logs() as logs:
        identity = await finish(http, google_config, request, code)
    assert identity == ProviderIdentity(
        provider="google",
        subject="1234567890",
        email="grace@example.com",
        email_verified=True,
        name="Grace Hopper",
    )
    assert_nothing_secret(repr(logs), code, request.code_verifier, idp.client_secret, request.state)


async def test_unverified_email_is_reported_as_such(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """An email the provider marks unverified comes back with email_verified false."""
    idp.identity.email_verified = False
    request, code = await sign_in(http, google_config)
    identity = await finish(http, google_config, request, code)
    assert identity.email == "ada@example.com"
    assert identity.email_verified is False


async def test_missing_claims_come_from_userinfo(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """Email, verification and name missing from the ID token are taken from the userinfo
    endpoint."""
    idp.id_token_omit = {"email", "email_verified", "name"}
    request, code = await sign_in(http, google_config)
    identity = await finish(http, google_config, request, code)
    assert identity.email == "ada@example.com"
    assert identity.email_verified is True
    assert identity.name == "Ada Lovelace"


async def test_signing_keys_are_cached_per_provider(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """Three sign-ins against one provider fetch its signing keys only once."""
    for _ in range(3):
        request, code = await sign_in(http, google_config)
        await finish(http, google_config, request, code)
    assert idp.jwks_requests == 1


async def test_denied_consent_redirects_with_error(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """When the user denies consent the callback gets access_denied along with the state."""
    idp.deny = True
    request = authorization_request(google_config, REDIRECT_URI)
    callback = await authorize(http, request)
    assert callback == {"error": "access_denied", "state": request.state}


async def test_fake_refuses_unknown_client_and_redirect_uri(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """The fake provider answers 400 to an unknown client id and to a javascript: redirect URI."""
    stranger = await oauth.resolve_provider(
        ProviderConfig.google("someone-else", "x", base_url=idp.url), http=http
    )
    async with http.get(
        authorization_request(stranger, REDIRECT_URI).url, allow_redirects=False
    ) as response:
        assert response.status == 400
    config = await oauth.resolve_provider(
        ProviderConfig.google(idp.client_id, idp.client_secret, base_url=idp.url), http=http
    )
    async with http.get(
        authorization_request(config, "javascript:alert(1)").url, allow_redirects=False
    ) as response:
        assert response.status == 400


async def test_discovery_document_names_the_endpoints(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """The fake provider's discovery document names the same endpoints as the provider config."""
    async with http.get(f"{idp.url}/.well-known/openid-configuration") as response:
        document = await response.json()
    assert document["issuer"] == google_config.issuer
    assert document["authorization_endpoint"] == google_config.authorize_url
    assert document["token_endpoint"] == google_config.token_url
    assert document["userinfo_endpoint"] == google_config.userinfo_url
    assert document["jwks_uri"] == google_config.jwks_url


# ── the OpenID Connect flow, refused ───────────────────────────────────────────────────


async def test_wrong_code_verifier_fails(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """Redeeming a code with another verifier fails with invalid_grant, leaking no secret in the
    error."""
    request, code = await sign_in(http, google_config)
    other = authorization_request(google_config, REDIRECT_URI).code_verifier
    with pytest.raises(OAuthFailed, match="invalid_grant") as failure:
        await finish(http, google_config, request, code, code_verifier=other)
    assert_nothing_secret(str(failure.value), code, other, idp.client_secret)


async def test_code_is_single_use(
    http: aiohttp.ClientSession, google_config: ProviderConfig
) -> None:
    """Redeeming the same code a second time fails with invalid_grant."""
    request, code = await sign_in(http, google_config)
    await finish(http, google_config, request, code)
    with pytest.raises(OAuthFailed, match="invalid_grant"):
        await finish(http, google_config, request, code)


async def test_token_endpoint_error_fails(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """An error from the token endpoint fails as oauth_failed with invalid_grant, keeping secrets
    out of the error and the logs."""
    request, code = await sign_in(http, google_config)
    idp.fail_token = True
    with capture_logs() as logs, pytest.raises(OAuthFailed, match="invalid_grant") as failure:
        await finish(http, google_config, request, code)
    assert failure.value.code == "oauth_failed"
    assert_nothing_secret(str(failure.value), code, request.code_verifier, idp.client_secret)
    assert_nothing_secret(repr(logs), code, request.code_verifier, idp.client_secret)


async def test_wrong_client_secret_fails(
    http: aiohttp.ClientSession, idp: FakeOidcProvider
) -> None:
    """A wrong client secret fails with invalid_client, without the secret or code in the error."""
    config = await oauth.resolve_provider(
        ProviderConfig.google(idp.client_id, "not-the-secret", base_url=idp.url), http=http
    )
    request, code = await sign_in(http, config)
    with pytest.raises(OAuthFailed, match="invalid_client") as failure:
        await finish(http, config, request, code)
    assert_nothing_secret(str(failure.value), "not-the-secret", code)


async def test_unreachable_provider_fails(http: aiohttp.ClientSession) -> None:
    """A provider that cannot be reached fails with a could-not-reach error naming it."""
    dead = f"http://127.0.0.1:{free_port()}"
    config = static_oidc("cid", "secret", base=dead)
    request = authorization_request(config, REDIRECT_URI)
    with pytest.raises(OAuthFailed, match="could not reach google"):
        await finish(http, config, request, "some-code")


async def test_slow_provider_times_out(
    http: aiohttp.ClientSession,
    idp: FakeOidcProvider,
    google_config: ProviderConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A token endpoint slower than the HTTP timeout fails within the timeout instead of waiting."""
    monkeypatch.setattr(provider_http, "HTTP_TIMEOUT_SECONDS", 0.3)
    request, code = await sign_in(http, google_config)
    idp.token_delay = 2.0
    started = time.monotonic()
    with pytest.raises(OAuthFailed, match="in time"):
        await finish(http, google_config, request, code)
    assert time.monotonic() - started < 1.5


def test_default_timeout_is_about_ten_seconds() -> None:
    """The default provider HTTP timeout is between 5 and 15 seconds."""
    assert 5 <= provider_http.HTTP_TIMEOUT_SECONDS <= 15


async def test_wrong_nonce_fails(
    http: aiohttp.ClientSession, google_config: ProviderConfig
) -> None:
    """An ID token whose nonce differs from the one kept fails on the nonce."""
    request, code = await sign_in(http, google_config)
    other_nonce = authorization_request(google_config, REDIRECT_URI).nonce
    with pytest.raises(OAuthFailed, match="nonce"):
        await finish(http, google_config, request, code, nonce=other_nonce)


async def test_missing_nonce_in_id_token_fails(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """An ID token without a nonce claim fails on the nonce."""
    idp.id_token_omit = {"nonce"}
    request, code = await sign_in(http, google_config)
    with pytest.raises(OAuthFailed, match="nonce"):
        await finish(http, google_config, request, code)


async def test_oidc_without_a_kept_nonce_fails(
    http: aiohttp.ClientSession, google_config: ProviderConfig
) -> None:
    """Completing an OIDC sign-in with no nonce kept fails on the nonce."""
    request, code = await sign_in(http, google_config)
    with pytest.raises(OAuthFailed, match="nonce"):
        await complete_authorization(
            google_config,
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=request.code_verifier,
            nonce=None,
            http=http,
        )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "another-client"}, "aud"),
        ({"aud": ["another-client"]}, "aud"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, "not valid"),
        ({"aud": ["another-client", "test-client-id"]}, "another party"),  # no azp
    ],
)
async def test_id_token_with_bad_claims_fails(
    http: aiohttp.ClientSession,
    idp: FakeOidcProvider,
    google_config: ProviderConfig,
    overrides: dict[str, object],
    reason: str,
) -> None:
    """An ID token for another audience or issuer, expired, issued in the future, or shared with
    another party without azp fails naming the problem."""
    idp.id_token_overrides = overrides
    request, code = await sign_in(http, google_config)
    with pytest.raises(OAuthFailed, match=reason):
        await finish(http, google_config, request, code)


@pytest.mark.parametrize("omitted", ["exp", "sub", "aud", "iss", "iat"])
async def test_id_token_missing_required_claims_fails(
    http: aiohttp.ClientSession,
    idp: FakeOidcProvider,
    google_config: ProviderConfig,
    omitted: str,
) -> None:
    """An ID token missing exp, sub, aud, iss or iat fails naming the missing claim."""
    idp.id_token_omit = {omitted}
    request, code = await sign_in(http, google_config)
    with pytest.raises(OAuthFailed, match=omitted):
        await finish(http, google_config, request, code)


async def test_id_token_signed_by_unknown_key_fails(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """An ID token signed with a key the provider does not publish fails."""
    idp.sign_with_unknown_key = True
    request, code = await sign_in(http, google_config)
    with pytest.raises(OAuthFailed, match="does not publish"):
        await finish(http, google_config, request, code)


async def test_id_token_signed_by_unknown_key_under_a_known_kid_fails(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """An ID token signed with an unpublished key under a published kid fails with bad_signature."""
    idp.sign_with_unknown_key = True
    idp.unknown_key_kid = idp.kid
    request, code = await sign_in(http, google_config)
    with pytest.raises(OAuthFailed, match="bad_signature"):
        await finish(http, google_config, request, code)


async def test_id_token_with_symmetric_algorithm_is_refused(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """An ID token using the symmetric HS256 algorithm is refused for its algorithm."""
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"x"}').rstrip(b"=").decode()
    forged = f"{header}.e30.c2ln"
    with pytest.raises(OAuthFailed, match="algorithm"):
        await id_tokens.verify_id_token(google_config, forged, nonce="n", http=http)


async def test_id_token_with_an_algorithm_its_key_cannot_verify_is_refused(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """An ES256 ID token naming the provider's RSA key fails as signed with an unpublished key."""
    header = base64.urlsafe_b64encode(f'{{"alg":"ES256","kid":"{idp.kid}"}}'.encode())
    signature = base64.urlsafe_b64encode(bytes(64)).rstrip(b"=").decode()
    forged = f"{header.rstrip(b'=').decode()}.e30.{signature}"
    with pytest.raises(OAuthFailed, match="does not publish") as failure:
        await id_tokens.verify_id_token(google_config, forged, nonce="n", http=http)
    assert failure.value.details["reason"] == "unknown_key"


@pytest.mark.parametrize(
    ("overrides", "omitted", "reason"),
    [
        ({"aud": "another-client"}, set(), "Invalid claim 'aud'"),
        ({"iss": "https://evil.example"}, set(), "Invalid claim 'iss'"),
        ({"sub": ""}, set(), "Invalid claim 'sub'"),
        ({"exp": "soon"}, set(), "Invalid claim 'exp'"),
        ({"iat": int(time.time()) + 3600}, set(), "The token is not valid as it was issued in "
         "the future"),
        ({"nbf": int(time.time()) + 3600}, set(), "The token is not valid yet"),
        ({}, {"exp", "iat"}, "Missing 'exp' claim"),
        ({}, {"iss", "aud"}, "Missing 'iss' claim"),
    ],
)  # fmt: skip
async def test_id_token_rejections_name_the_failed_check(
    http: aiohttp.ClientSession,
    idp: FakeOidcProvider,
    google_config: ProviderConfig,
    overrides: dict[str, object],
    omitted: set[str],
    reason: str,
) -> None:
    """A rejected ID token's reason names the failed check in stable words (the first missing
    claim in iss, aud, sub, exp, iat order)."""
    idp.id_token_overrides, idp.id_token_omit = overrides, omitted
    with pytest.raises(OAuthFailed) as failure:
        await id_tokens.verify_id_token(
            google_config, idp.id_token(nonce="n"), nonce="n", http=http
        )
    assert failure.value.details == {"provider": "google", "reason": reason}


async def test_clock_skew_within_the_leeway_is_tolerated(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """An ID token that expired, or was issued, less than the leeway away from now verifies."""
    now = int(time.time())
    leeway = id_tokens.CLOCK_LEEWAY_SECONDS
    for overrides in ({"exp": now - leeway + 10}, {"iat": now + leeway - 10}):
        idp.id_token_overrides = overrides
        token = idp.id_token(nonce="n")
        claims = await id_tokens.verify_id_token(google_config, token, nonce="n", http=http)
        assert claims["sub"] == idp.identity.sub
    idp.id_token_overrides = {"exp": now - leeway - 10}
    with pytest.raises(OAuthFailed, match="expired"):
        await id_tokens.verify_id_token(
            google_config, idp.id_token(nonce="n"), nonce="n", http=http
        )


async def test_rotated_keys_are_fetched_again(
    http: aiohttp.ClientSession,
    idp: FakeOidcProvider,
    google_config: ProviderConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the provider rotates its key, the new key set is fetched again and sign-in succeeds."""
    request, code = await sign_in(http, google_config)
    await finish(http, google_config, request, code)
    # The provider rotates: it now signs, and publishes, a key we have not cached.
    rotated = FakeOidcProvider()
    idp._key, idp.kid = rotated._key, rotated.kid
    monkeypatch.setattr(id_tokens, "JWKS_REFRESH_MIN_SECONDS", 0.0)
    request, code = await sign_in(http, google_config)
    identity = await finish(http, google_config, request, code)
    assert identity.subject == idp.identity.sub
    assert idp.jwks_requests == 2


# ── GitHub ─────────────────────────────────────────────────────────────────────────────


async def test_full_github_flow(
    http: aiohttp.ClientSession, github: FakeGitHubProvider, github_config: ProviderConfig
) -> None:
    """A full GitHub sign-in uses S256 and yields the user's id, verified primary email and name."""
    request, code = await sign_in(http, github_config)
    assert github.last_authorization.code_challenge_method == "S256"
    identity = await finish(http, github_config, request, code)
    assert identity == ProviderIdentity(
        provider="github",
        subject="4242",
        email="ada@example.com",
        email_verified=True,
        name="Ada Lovelace",
    )


async def test_github_without_verified_primary_email(
    http: aiohttp.ClientSession, github: FakeGitHubProvider, github_config: ProviderConfig
) -> None:
    """Without a verified primary email a GitHub identity has no email, and the login stands in for
    a missing name."""
    github.user.name = None
    github.user.emails = [
        GitHubEmail("primary@example.com", primary=True, verified=False),
        GitHubEmail("other@example.com", primary=False, verified=True),
    ]
    request, code = await sign_in(http, github_config)
    identity = await finish(http, github_config, request, code)
    assert identity.email is None
    assert identity.email_verified is False
    assert identity.name == "ada"  # the login stands in for a missing name


async def test_github_emails_refused_falls_back_to_public_email_unverified(
    http: aiohttp.ClientSession, github: FakeGitHubProvider, github_config: ProviderConfig
) -> None:
    """When the emails API is refused, the public profile email is used and marked unverified."""
    github.emails_status = 403
    github.user.email = "public@example.com"
    request, code = await sign_in(http, github_config)
    identity = await finish(http, github_config, request, code)
    assert identity.email == "public@example.com"
    assert identity.email_verified is False


async def test_github_bad_code_fails(
    http: aiohttp.ClientSession, github: FakeGitHubProvider, github_config: ProviderConfig
) -> None:
    """A wrong GitHub code fails with bad_verification_code, leaking no code or secret."""
    request, code = await sign_in(http, github_config)
    with pytest.raises(OAuthFailed, match="bad_verification_code") as failure:
        await finish(http, github_config, request, code + "x")
    assert_nothing_secret(str(failure.value), code, github.client_secret)


async def test_github_token_error_and_denial(
    http: aiohttp.ClientSession, github: FakeGitHubProvider, github_config: ProviderConfig
) -> None:
    """A GitHub token error fails with bad_verification_code, and denied consent redirects with
    access_denied and the state."""
    request, code = await sign_in(http, github_config)
    github.fail_token = True
    with pytest.raises(OAuthFailed, match="bad_verification_code"):
        await finish(http, github_config, request, code)
    github.deny = True
    request = authorization_request(github_config, REDIRECT_URI)
    assert await authorize(http, request) == {"error": "access_denied", "state": request.state}


async def test_github_api_url_override(github: FakeGitHubProvider) -> None:
    """An explicit API URL sets the GitHub userinfo endpoint, otherwise it follows the base URL's
    /api/v3, while the token URL stays on the base URL."""
    config = ProviderConfig.github("c", "s", base_url=github.url, api_url="http://api.local/")
    assert config.userinfo_url == "http://api.local/user"
    assert config.token_url == f"{github.url}/login/oauth/access_token"
    assert ProviderConfig.github("c", "s", base_url=github.url).userinfo_url == (
        f"{github.url}/api/v3/user"
    )


async def test_concurrent_sign_ins_stay_apart(
    http: aiohttp.ClientSession, idp: FakeOidcProvider, google_config: ProviderConfig
) -> None:
    """Five sign-ins completed concurrently each succeed with the provider's identity."""
    started = [await sign_in(http, google_config) for _ in range(5)]
    identities = await asyncio.gather(
        *(finish(http, google_config, request, code) for request, code in started)
    )
    assert {i.subject for i in identities} == {idp.identity.sub}
