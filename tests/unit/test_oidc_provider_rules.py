"""The OpenID Connect provider's pure rules: redirect URIs, scopes, prompts, PKCE, the
answer URLs and the claims each scope reveals."""

from __future__ import annotations

import base64
import hashlib
import string
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.messages import InvalidField, OidcError
from actors.auth.provider_rules import (
    check_challenge,
    check_client_name,
    check_registered_uris,
    code_redirect,
    consent_covers,
    error_redirect,
    narrowed_scopes,
    parse_prompt,
    parse_scopes,
    pkce_challenge,
    pkce_matches,
    redirect_uri_registered,
    scope_text,
    token_hash_claim,
    user_claims,
)

UNRESERVED = string.ascii_letters + string.digits + "-._~"
verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


# ── PKCE ─────────────────────────────────────────────────────────────────────────────


def test_the_challenge_is_rfc_7636s_example() -> None:
    """The S256 challenge of RFC 7636 appendix B's verifier is the one it gives."""
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@given(verifiers)
def test_a_verifier_matches_its_own_challenge(verifier: str) -> None:
    """Every well-formed verifier matches the challenge made from it, and the challenge
    is one check_challenge accepts."""
    challenge = pkce_challenge(verifier)
    assert pkce_matches(verifier, challenge)
    assert check_challenge(challenge, "S256") == challenge


@given(verifiers, verifiers)
def test_a_verifier_matches_no_other_challenge(verifier: str, other: str) -> None:
    """A verifier matches another verifier's challenge only if they are the same."""
    assert pkce_matches(verifier, pkce_challenge(other)) == (verifier == other)


@given(st.text(max_size=200))
def test_a_malformed_verifier_never_matches(verifier: str) -> None:
    """A verifier outside 43..128 unreserved characters matches nothing, not even the
    challenge computed from it."""
    well_formed = 43 <= len(verifier) <= 128 and all(c in UNRESERVED for c in verifier)
    if not well_formed:
        digest = hashlib.sha256(verifier.encode("utf-8", "surrogatepass")).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        assert not pkce_matches(verifier, challenge)


@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        ("", "S256"),
        ("a" * 43, "plain"),
        ("a" * 43, ""),
        ("a" * 42, "S256"),
        ("a" * 42 + "=", "S256"),
    ],
)
def test_only_a_well_formed_s256_challenge_is_taken(challenge: str, method: str) -> None:
    """A missing challenge, another method, or a challenge that is not 43 base64url
    characters is invalid_request."""
    with pytest.raises(OidcError) as refused:
        check_challenge(challenge, method)
    assert refused.value.error == "invalid_request"


# ── redirect URIs ────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb",
        "https://app.example:8443/cb?x=1",
        "http://localhost:3000/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:8080/cb",
    ],
)
def test_https_and_loopback_http_uris_can_be_registered(uri: str) -> None:
    """https anywhere, and http on localhost and loopback addresses (development)."""
    assert check_registered_uris([uri, uri]) == [uri]  # duplicates dropped


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/cb",
        "http://localhost.evil.example/cb",
        "https://app.example/cb#x",
        "/cb",
        "app.example/cb",
        "javascript:alert(1)",
        "https://user@app.example/cb",
        "https://app.example/c b",
        "https://app.example:99999/cb",
    ],
)
def test_other_uris_are_refused_naming_their_field(uri: str) -> None:
    """Plain http off loopback, a fragment, relative, another scheme, user info, spaces
    or a bad port: InvalidField at the URI's position."""
    with pytest.raises(InvalidField) as refused:
        check_registered_uris(["https://ok.example/cb", uri])
    assert refused.value.details["field"] == "$.redirect_uris[1]"


def test_between_one_and_ten_uris() -> None:
    """No URI, or more than ten, is refused at $.redirect_uris."""
    for uris in ([], [f"https://a.example/{n}" for n in range(11)]):
        with pytest.raises(InvalidField) as refused:
            check_registered_uris(uris)
        assert refused.value.details["field"] == "$.redirect_uris"


@given(st.text(min_size=1, max_size=40))
def test_a_redirect_uri_matches_only_exactly(suffix: str) -> None:
    """Anything added to a registered URI (a slash, a path, a query) no longer matches."""
    registered = ["https://app.example/cb"]
    assert redirect_uri_registered(registered, "https://app.example/cb")
    assert not redirect_uri_registered(registered, "https://app.example/cb" + suffix)


def test_an_app_name_is_trimmed_and_bounded() -> None:
    """Spaces are squeezed; an empty name, one past 100 characters or with control
    characters is refused at $.name."""
    assert check_client_name("  Ride   Share ") == "Ride Share"
    for bad in ("", "   ", "x" * 101, "Ride\x00Share"):
        with pytest.raises(InvalidField):
            check_client_name(bad)


# ── scopes and prompts ───────────────────────────────────────────────────────────────


def test_scopes_are_known_ones_in_order_and_need_openid() -> None:
    """Unknown scopes are left out, duplicates once, in a fixed order; no openid is
    invalid_scope."""
    assert parse_scopes("email openid x offline_access email") == (
        "openid",
        "email",
        "offline_access",
    )
    with pytest.raises(OidcError) as refused:
        parse_scopes("profile email")
    assert refused.value.error == "invalid_scope"
    assert scope_text(["email", "openid"]) == "openid email"


@given(st.sets(st.sampled_from(["openid", "profile", "email", "offline_access"])))
def test_consent_covers_exactly_its_subsets(asked: set[str]) -> None:
    """A consent to some scopes covers a request for any subset of them, nothing more."""
    consented = {"openid", "email"}
    assert consent_covers(consented, asked) == (asked <= consented)


def test_a_refresh_may_narrow_but_never_widen() -> None:
    """No scope keeps what was granted; fewer is fine; more is invalid_scope."""
    granted = ("openid", "email", "offline_access")
    assert narrowed_scopes(granted, None) == granted
    assert narrowed_scopes(granted, "email openid") == ("openid", "email")
    with pytest.raises(OidcError) as refused:
        narrowed_scopes(granted, "openid profile")
    assert refused.value.error == "invalid_scope"


def test_prompt_none_stands_alone() -> None:
    """prompt values are a set; none with another is invalid_request."""
    assert parse_prompt("consent login") == {"consent", "login"}
    assert parse_prompt("") == frozenset()
    with pytest.raises(OidcError):
        parse_prompt("none consent")


# ── answers and claims ───────────────────────────────────────────────────────────────


def test_answers_keep_the_redirect_uris_query() -> None:
    """The code (or error), state and issuer are added to what the URI already has."""
    url = code_redirect("https://app.example/cb?tenant=7", "c0de", "s+t", "https://id.example")
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("app.example", "/cb")
    assert parse_qs(parts.query) == {
        "tenant": ["7"],
        "code": ["c0de"],
        "state": ["s+t"],
        "iss": ["https://id.example"],
    }
    error = error_redirect("https://app.example/cb", "access_denied", "No.", "", "https://i")
    assert "state" not in parse_qs(urlsplit(error).query)
    assert parse_qs(urlsplit(error).query)["error"] == ["access_denied"]


def test_claims_by_scope() -> None:
    """profile gives the name, email the address and whether it is confirmed; openid
    alone gives nothing beyond sub."""

    def claims(*scopes: str) -> dict[str, object]:
        return user_claims(scopes, name="Ada", email="ada@example.com", email_verified=True)

    assert claims("openid") == {}
    assert claims("openid", "profile") == {"name": "Ada"}
    assert claims("openid", "email") == {
        "email": "ada@example.com",
        "email_verified": True,
    }


def test_at_hash_is_the_left_half_of_the_sha256() -> None:
    """at_hash is base64url of the first 16 bytes of the token's SHA-256."""
    digest = hashlib.sha256(b"token").digest()[:16]
    assert token_hash_claim("token") == base64.urlsafe_b64encode(digest).decode().rstrip("=")
