"""Social login's pure rules: the discovery document check, Facebook's appsecret_proof, the
provider settings and how they make provider configs — no server."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.discovery import DiscoveryRefused, Endpoints, discovery_url, read_document
from actors.auth.facebook import appsecret_proof
from actors.auth.messages import OAuthFailed
from actors.auth.oauth import ProviderConfig, authorization_request
from splitgo.composition import oauth_providers
from splitgo.config import ConfigError, load

ISSUER = "https://login.example.com"


def document(**changes: Any) -> dict[str, Any]:
    """A good discovery document for ISSUER, with `changes` (None drops a field)."""
    base: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "userinfo_endpoint": f"{ISSUER}/userinfo",
        "jwks_uri": f"{ISSUER}/jwks",
        "response_types_supported": ["code", "id_token"],
        "code_challenge_methods_supported": ["plain", "S256"],
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def refusal(doc: Any, issuer: str = ISSUER) -> str:
    with pytest.raises(DiscoveryRefused) as failure:
        read_document(doc, issuer=issuer, provider="acme", label="Acme SSO")
    assert failure.value.code == "oauth_failed"
    assert failure.value.details["provider"] == "acme"
    assert "Acme SSO" in str(failure.value)
    return str(failure.value.details["reason"])


# ── the discovery document ─────────────────────────────────────────────────────────────


def test_a_good_document_gives_its_endpoints() -> None:
    """A document for the configured issuer yields its four endpoints."""
    assert read_document(document(), issuer=ISSUER, provider="acme") == Endpoints(
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        userinfo_endpoint=f"{ISSUER}/userinfo",
        jwks_uri=f"{ISSUER}/jwks",
    )


@pytest.mark.parametrize(
    "named",
    [
        "https://evil.example",
        f"{ISSUER}/",  # not even a trailing slash of difference
        ISSUER.upper(),
        "http://login.example.com",
        None,
        42,
    ],
)
def test_another_issuer_is_refused(named: object) -> None:
    """A document naming any other issuer than the configured one, exactly, is refused."""
    assert refusal(document(issuer=named)) == "issuer_mismatch"


@given(st.text(max_size=60).filter(lambda text: text != ISSUER))
def test_any_other_issuer_is_refused(named: str) -> None:
    """Whatever issuer string a document names, anything but the configured one is refused."""
    with pytest.raises(DiscoveryRefused, match="another issuer"):
        read_document(document(issuer=named), issuer=ISSUER, provider="acme")


@pytest.mark.parametrize("field", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
@pytest.mark.parametrize(
    "value", [None, "", "/relative/path", "ftp://login.example.com/x", "http://login.example.com/x"]
)
def test_a_missing_or_unusable_endpoint_is_refused(field: str, value: str | None) -> None:
    """The authorization, token and JWKS endpoints must be named as absolute https URLs."""
    assert refusal(document(**{field: value})) == f"no_{field}"


def test_endpoints_with_credentials_or_fragments_are_refused() -> None:
    """An endpoint carrying a user name or a fragment is not an endpoint we call."""
    assert refusal(document(token_endpoint="https://user@login.example.com/token")) == (
        "no_token_endpoint"
    )
    assert refusal(document(jwks_uri=f"{ISSUER}/jwks#keys")) == "no_jwks_uri"


def test_userinfo_is_optional_but_must_be_usable() -> None:
    """Without a userinfo endpoint the document still serves; with a bad one it is refused."""
    endpoints = read_document(document(userinfo_endpoint=None), issuer=ISSUER, provider="acme")
    assert endpoints.userinfo_endpoint == ""
    assert refusal(document(userinfo_endpoint="javascript:alert(1)")) == "bad_userinfo_endpoint"


def test_a_provider_without_the_code_flow_is_refused() -> None:
    """A document that does not list response type `code` (or lists none) is refused."""
    assert refusal(document(response_types_supported=["id_token", "token"])) == "no_code_flow"
    assert refusal(document(response_types_supported=None)) == "no_code_flow"


def test_a_provider_listing_pkce_methods_without_s256_is_refused() -> None:
    """Listed PKCE methods must include S256; a document that lists none is accepted."""
    assert refusal(document(code_challenge_methods_supported=["plain"])) == "no_s256"
    assert refusal(document(code_challenge_methods_supported="S256")) == "no_s256"
    read_document(document(code_challenge_methods_supported=None), issuer=ISSUER, provider="a")


@pytest.mark.parametrize("doc", [None, [], "issuer", 3])
def test_something_else_than_a_document_is_refused(doc: object) -> None:
    """An answer that is not a JSON object is refused."""
    assert refusal(doc) == "not_a_document"


def test_a_plain_http_issuer_may_name_plain_http_endpoints() -> None:
    """An http issuer (a provider on this machine) may name http endpoints."""
    local = "http://127.0.0.1:8000"
    doc = document(
        issuer=local,
        authorization_endpoint=f"{local}/a",
        token_endpoint=f"{local}/t",
        jwks_uri=f"{local}/k",
        userinfo_endpoint=None,
    )
    assert read_document(doc, issuer=local, provider="local").token_endpoint == f"{local}/t"


def test_the_discovery_url_keeps_the_issuer_path() -> None:
    """The well-known path is appended to the issuer, its path kept, one slash between."""
    assert discovery_url("https://sso.example/realms/main") == (
        "https://sso.example/realms/main/.well-known/openid-configuration"
    )
    assert discovery_url("https://tenant.auth0.com/") == (
        "https://tenant.auth0.com/.well-known/openid-configuration"
    )


def test_discovery_refusals_are_oauth_failures() -> None:
    """A refused document fails the sign-in like any provider failure (oauth_failed)."""
    assert issubclass(DiscoveryRefused, OAuthFailed)


def test_an_undiscovered_provider_cannot_build_a_request() -> None:
    """Building the authorize URL before discovery is a programming error, not a bad URL."""
    with pytest.raises(ValueError, match="not discovered"):
        authorization_request(ProviderConfig.google("cid", "s"), "https://app.example/cb")


# ── Facebook ───────────────────────────────────────────────────────────────────────────


def test_appsecret_proof_is_the_hmac_sha256_of_the_token() -> None:
    """appsecret_proof is HMAC-SHA256(key=app secret, message=access token) in hex (the value
    `openssl dgst -sha256 -hmac app-secret` gives)."""
    assert appsecret_proof("EAABtoken", "app-secret") == (
        "f8d8543ed9d717f8ce37042df51ba33498ffe41e44658fdadb5f5c959b38d6b8"
    )
    assert appsecret_proof("EAABtoken", "other-secret") != appsecret_proof(
        "EAABtoken", "app-secret"
    )


def test_facebook_config_names_the_versioned_endpoints() -> None:
    """Facebook's dialog is on www.facebook.com, its token and identity on graph.facebook.com,
    each under the same Graph API version; a base URL moves all of them."""
    real = ProviderConfig.facebook("app", "secret")
    assert real.authorize_url.startswith("https://www.facebook.com/v")
    assert real.authorize_url.endswith("/dialog/oauth")
    assert real.token_url.startswith("https://graph.facebook.com/v")
    assert real.userinfo_url.startswith("https://graph.facebook.com/v")
    assert real.userinfo_url.endswith("/me")
    assert real.label == "Facebook"
    assert real.resolved
    fake = ProviderConfig.facebook("app", "secret", base_url="http://127.0.0.1:9/")
    assert fake.token_url.startswith("http://127.0.0.1:9/v")
    assert "secret" not in repr(fake)


# ── settings ───────────────────────────────────────────────────────────────────────────

OIDC = {
    "SPLITGO_OIDC_PROVIDERS": "acme=https://sso.acme.example/realms/main, okta=https://x.okta.com/",
    "SPLITGO_OIDC_CLIENTS": "acme=acme-client:s3cr:et,okta=okta-client:okta-secret",
    "SPLITGO_OIDC_DISPLAY_NAMES": "acme=Acme SSO",
}


def test_discovered_providers_come_from_the_settings() -> None:
    """Each SPLITGO_OIDC_PROVIDERS entry becomes a provider found by discovery, with its client,
    its secret (colons kept) and its display name (the name capitalised by default)."""
    providers = oauth_providers(load(OIDC))
    assert set(providers) == {"acme", "okta"}
    acme, okta = providers["acme"], providers["okta"]
    assert acme.discovery
    assert acme.issuer == "https://sso.acme.example/realms/main"
    assert (acme.client_id, acme.client_secret) == ("acme-client", "s3cr:et")
    assert acme.label == "Acme SSO"
    assert okta.issuer == "https://x.okta.com/"  # kept exactly, trailing slash and all
    assert okta.label == "Okta"


def test_the_built_in_providers_keep_their_settings() -> None:
    """Google (now by discovery), GitHub and Facebook are configured by their own settings,
    Google's base URL becoming the issuer discovered."""
    providers = oauth_providers(
        load(
            {
                "SPLITGO_OAUTH_GOOGLE_CLIENT_ID": "g",
                "SPLITGO_OAUTH_GOOGLE_CLIENT_SECRET": "gs",
                "SPLITGO_OAUTH_GOOGLE_BASE_URL": "http://127.0.0.1:4000/",
                "SPLITGO_OAUTH_GITHUB_CLIENT_ID": "h",
                "SPLITGO_OAUTH_GITHUB_CLIENT_SECRET": "hs",
                "SPLITGO_OAUTH_FACEBOOK_CLIENT_ID": "f",
                "SPLITGO_OAUTH_FACEBOOK_CLIENT_SECRET": "fs",
            }
        )
    )
    assert list(providers) == ["google", "github", "facebook"]
    assert providers["google"].issuer == "http://127.0.0.1:4000"
    assert providers["google"].discovery
    assert providers["facebook"].kind == "facebook"
    assert oauth_providers(load({"SPLITGO_OAUTH_FACEBOOK_CLIENT_ID": "f"})) == {}


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"SPLITGO_OIDC_PROVIDERS": "acme"}, "each item is name=https://issuer"),
        ({"SPLITGO_OIDC_PROVIDERS": "Acme=https://a.example"}, "is not a provider name"),
        ({"SPLITGO_OIDC_PROVIDERS": "google=https://a.example"}, "SPLITGO_OAUTH_GOOGLE_"),
        ({"SPLITGO_OIDC_PROVIDERS": "a=https://a.example,a=https://b.example"}, "named twice"),
        ({"SPLITGO_OIDC_PROVIDERS": "a=http://a.example"}, "plain http only for localhost"),
        ({"SPLITGO_OIDC_PROVIDERS": "a=https://a.example/?x=1"}, "without query"),
        ({"SPLITGO_OIDC_CLIENTS": "a=only-an-id"}, "client_id:client_secret"),
        ({"SPLITGO_OIDC_DISPLAY_NAMES": "a=" + "x" * 41}, "longer than 40"),
    ],
)
def test_bad_provider_settings_are_config_errors(environ: dict[str, str], words: str) -> None:
    """A malformed OIDC setting is a ConfigError naming the variable and what is wrong."""
    with pytest.raises(ConfigError, match=words) as failure:
        load(environ)
    assert next(iter(environ)) in str(failure.value)


def test_client_secrets_stay_out_of_the_settings_repr() -> None:
    """SPLITGO_OIDC_CLIENTS is a secret: printing the settings does not show it."""
    settings = load({**OIDC, "SPLITGO_OIDC_CLIENTS": "acme=id:TOPSECRET,okta=id:TOPSECRET"})
    assert "TOPSECRET" not in repr(settings)
    assert "TOPSECRET" not in repr(oauth_providers(settings))


def test_client_errors_never_echo_the_secret() -> None:
    """A malformed client names the provider, not the value (it holds the secret)."""
    with pytest.raises(ConfigError) as failure:
        load({"SPLITGO_OIDC_CLIENTS": "acme=id-without-secret-TOPSECRET"})
    assert "TOPSECRET" not in str(failure.value)
    with pytest.raises(ConfigError) as failure:
        load({"SPLITGO_OIDC_CLIENTS": "TOPSECRET"})
    assert "TOPSECRET" not in str(failure.value)


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        (
            {"SPLITGO_OIDC_PROVIDERS": "acme=https://a.example"},
            "SPLITGO_OIDC_PROVIDERS: 'acme' has no client",
        ),
        (
            {"SPLITGO_OIDC_CLIENTS": "acme=id:secret"},
            "SPLITGO_OIDC_CLIENTS: 'acme' is not one of",
        ),
        (
            {
                "SPLITGO_OIDC_PROVIDERS": "acme=https://a.example",
                "SPLITGO_OIDC_CLIENTS": "acme=id:secret",
                "SPLITGO_OIDC_DISPLAY_NAMES": "other=Other",
            },
            "SPLITGO_OIDC_DISPLAY_NAMES: 'other' is not one of",
        ),
    ],
)
def test_unmatched_provider_settings_are_config_errors(environ: dict[str, str], words: str) -> None:
    """A provider without a client, or a client or display name without a provider, is a
    ConfigError when the providers are made."""
    with pytest.raises(ConfigError, match=words):
        oauth_providers(load(environ))
