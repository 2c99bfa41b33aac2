"""The OpenID Connect provider's rules, with no IO: registered redirect URIs and how a
request's must match them, scopes, PKCE (S256 only), prompts, the URLs an authorization
answers with (RFC 6749 4.1.2 and 4.1.2.1), and which claims each scope reveals.

The actor's part (provider.py) applies them; a refusal is an InvalidField naming the field,
or an OidcError carrying the RFC 6749 error word.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from actors.auth.messages import OIDC_SCOPES, InvalidField, OidcError, has_control_characters

SCOPES = OIDC_SCOPES
REDIRECT_URI_MAX = 2000
REDIRECT_URIS_MAX = 10
CLIENT_NAME_MAX = 100
# hosts a development redirect URI may use over plain http
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
# RFC 7636 4.1: 43..128 characters of the unreserved set
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# an S256 challenge is a SHA-256 digest in base64url without padding: 43 characters
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# ── registering a client ─────────────────────────────────────────────────────────────


def check_client_name(raw: str) -> str:
    """The app's name, trimmed: 1..100 characters without control characters."""
    name = " ".join(raw.split())
    if not name or len(name) > CLIENT_NAME_MAX or has_control_characters(name):
        raise InvalidField(
            f"An app's name has 1 to {CLIENT_NAME_MAX} characters, none of them control "
            "characters.",
            details={"field": "$.name"},
        )
    return name


def check_registered_uri(uri: str, index: int) -> str:
    """A redirect URI as it may be registered: absolute, https (plain http only on
    localhost or a loopback address, for development), no fragment, no user info."""
    field = f"$.redirect_uris[{index}]"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError:
        raise InvalidField("This is not a valid URL.", details={"field": field}) from None
    if len(uri) > REDIRECT_URI_MAX or not uri.isprintable() or " " in uri:
        raise InvalidField(
            f"A redirect URI is a URL of at most {REDIRECT_URI_MAX} characters, no spaces.",
            details={"field": field},
        )
    if not parts.netloc or parts.scheme not in ("https", "http"):
        raise InvalidField("A redirect URI is an absolute https URL.", details={"field": field})
    if parts.scheme == "http" and (parts.hostname or "") not in _loopback_names():
        raise InvalidField(
            "A redirect URI uses https; plain http only for localhost or 127.0.0.1.",
            details={"field": field},
        )
    if parts.fragment or "#" in uri:
        raise InvalidField("A redirect URI has no fragment (#...).", details={"field": field})
    if "@" in parts.netloc:
        raise InvalidField(
            "A redirect URI has no user name or password in it.", details={"field": field}
        )
    return uri


def _loopback_names() -> frozenset[str]:
    # urlsplit gives an IPv6 host without its brackets
    return frozenset(host.strip("[]") for host in LOOPBACK_HOSTS)


def check_registered_uris(uris: Sequence[str]) -> list[str]:
    """The client's redirect URIs, each checked, duplicates dropped (order kept)."""
    if not uris or len(uris) > REDIRECT_URIS_MAX:
        raise InvalidField(
            f"Register 1 to {REDIRECT_URIS_MAX} redirect URIs.",
            details={"field": "$.redirect_uris"},
        )
    kept: list[str] = []
    for index, uri in enumerate(uris):
        checked = check_registered_uri(uri, index)
        if checked not in kept:
            kept.append(checked)
    return kept


def redirect_uri_registered(registered: Iterable[str], given: str) -> bool:
    """True when `given` is one of the registered URIs, character for character (no
    prefix or pattern matching: an open redirector is how codes get stolen)."""
    return any(hmac.compare_digest(uri.encode(), given.encode()) for uri in registered)


# ── scopes and prompts ────────────────────────────────────────────────────────────────


def parse_scopes(raw: str) -> tuple[str, ...]:
    """The known scopes of a space-separated `scope`, in SCOPES order; unknown ones are
    left out (OpenID Connect Core 3.1.2.1). Without `openid` this is no OpenID request."""
    asked = set(raw.split(" ")) if raw else set()
    if "openid" not in asked:
        raise OidcError("The scope must include openid.", details={"error": "invalid_scope"})
    return tuple(scope for scope in SCOPES if scope in asked)


def scope_text(scopes: Iterable[str]) -> str:
    """Scopes as the `scope` parameter says them: space-separated, in SCOPES order."""
    chosen = set(scopes)
    return " ".join(scope for scope in SCOPES if scope in chosen)


def narrowed_scopes(granted: Sequence[str], raw: str | None) -> tuple[str, ...]:
    """The scopes a refresh asks for: at most what was granted (RFC 6749 6)."""
    if not raw:
        return tuple(granted)
    asked = set(raw.split(" "))
    if not asked <= set(granted):
        raise OidcError(
            "A refresh cannot ask for more than was granted.",
            details={"error": "invalid_scope"},
        )
    return tuple(scope for scope in SCOPES if scope in asked)


def consent_covers(consented: Iterable[str], asked: Iterable[str]) -> bool:
    """True when what was consented to already includes every scope asked for."""
    return set(asked) <= set(consented)


def parse_prompt(raw: str) -> frozenset[str]:
    """The `prompt` values; `none` with any other is an invalid request."""
    values = frozenset(raw.split()) if raw else frozenset()
    if "none" in values and len(values) > 1:
        raise OidcError(
            "prompt=none cannot be combined with other values.",
            details={"error": "invalid_request"},
        )
    return values & PROMPTS


MAX_AGE_LIMIT = 10**9  # seconds: beyond any session; larger values are refused as noise
# how long a sign-in demanded by prompt=login or max_age may take before it is asked anew
REAUTH_SECONDS = 600
# a marker's time is this much early: the session may be opened on a node whose clock lags
CLOCK_SLACK = 2


def parse_max_age(raw: str) -> int | None:
    """`max_age` (OpenID Connect Core 3.1.2.1): seconds since the person last signed in
    beyond which they must sign in again; None when not given."""
    if not raw:
        return None
    if not raw.isdigit() or not raw.isascii() or int(raw) > MAX_AGE_LIMIT:
        raise OidcError(
            "max_age must be a whole number of seconds.", details={"error": "invalid_request"}
        )
    return int(raw)


def sign_in_too_old(
    prompt: frozenset[str], max_age: int | None, auth_time: float, now: float
) -> bool:
    """Whether the request wants a sign-in newer than the one at `auth_time`."""
    return "login" in prompt or (max_age is not None and now - auth_time > max_age)


def _reauth_mac(key: bytes, client_id: str, since: int) -> str:
    message = f"splitgo oidc reauth v1|{client_id}|{since}".encode()
    return _b64url(hmac.new(key, message, hashlib.sha256).digest()[:16])


def reauth_marker(key: bytes, client_id: str, now: float) -> str:
    """What the request carries through the sign-in it demanded: `<since>.<mac>`, saying
    a sign-in at or after `since` (now, a little early) is fresh enough for this client.
    The MAC keeps a browser from claiming an older `since`."""
    since = int(now) - CLOCK_SLACK
    return f"{since}.{_reauth_mac(key, client_id, since)}"


def reauth_since(keys: Iterable[bytes], client_id: str, marker: str, now: float) -> int | None:
    """The `since` of an authentic marker for this client made in the last REAUTH_SECONDS
    (any of `keys` made it); None otherwise."""
    raw_since, _, mac = marker.partition(".")
    if not raw_since.isdigit() or not raw_since.isascii() or not mac:
        return None
    since = int(raw_since)
    if not now - REAUTH_SECONDS <= since <= now + 60:
        return None
    for key in keys:
        if hmac.compare_digest(_reauth_mac(key, client_id, since).encode(), mac.encode()):
            return since
    return None


# ── PKCE (RFC 7636), S256 only ────────────────────────────────────────────────────────


def pkce_challenge(verifier: str) -> str:
    """The S256 challenge of a verifier: base64url(SHA-256(verifier)), no padding."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def check_challenge(challenge: str, method: str) -> str:
    """The request's challenge, when S256 and well formed (PKCE is required of every
    client: a plain or missing challenge is refused)."""
    if not challenge:
        raise OidcError(
            "code_challenge is required (PKCE with S256).",
            details={"error": "invalid_request"},
        )
    if method != "S256":
        raise OidcError("code_challenge_method must be S256.", details={"error": "invalid_request"})
    if not _CHALLENGE.match(challenge):
        raise OidcError(
            "code_challenge is not an S256 challenge (43 base64url characters).",
            details={"error": "invalid_request"},
        )
    return challenge


def pkce_matches(verifier: str, challenge: str) -> bool:
    """True when `verifier` is well formed and is the one `challenge` was made from."""
    if not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(pkce_challenge(verifier).encode(), challenge.encode())


# ── where the browser goes back to ────────────────────────────────────────────────────


def with_query(uri: str, params: dict[str, str]) -> str:
    """`uri` with `params` added to the query it already has (RFC 6749 3.1.2: kept)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def code_redirect(redirect_uri: str, code: str, state: str, issuer: str) -> str:
    """The success answer (4.1.2), with the issuer (RFC 9207) to stop mix-ups."""
    params = {"code": code}
    if state:
        params["state"] = state
    params["iss"] = issuer
    return with_query(redirect_uri, params)


def error_redirect(redirect_uri: str, error: str, description: str, state: str, issuer: str) -> str:
    """The error answer (4.1.2.1)."""
    params = {"error": error, "error_description": description}
    if state:
        params["state"] = state
    params["iss"] = issuer
    return with_query(redirect_uri, params)


# ── tokens and claims ─────────────────────────────────────────────────────────────────


def token_hash_claim(token: str) -> str:
    """`at_hash` of an access token (OpenID Connect Core 3.1.3.6): the left half of its
    SHA-256, base64url (ES256 hashes with SHA-256)."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return _b64url(digest[: len(digest) // 2])


def user_claims(
    scopes: Iterable[str], *, name: str, email: str, email_verified: bool
) -> dict[str, Any]:
    """What the granted scopes reveal about the user, besides `sub`."""
    granted = set(scopes)
    claims: dict[str, Any] = {}
    if "profile" in granted:
        claims["name"] = name
    if "email" in granted:
        claims["email"] = email
        claims["email_verified"] = email_verified
    return claims
