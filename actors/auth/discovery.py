"""OpenID Connect discovery: an issuer's endpoints from its `/.well-known/openid-configuration`.

`resolve(provider, http=...)` gives a provider configured by its issuer alone
(`ProviderConfig.discovered`, Google among them) the endpoints its discovery document names.
`read_document` is the pure rule for that document (OpenID Connect Discovery 1.0, section 4.3):

- its `issuer` must equal the configured issuer exactly — otherwise another party could
  name endpoints of its own (the mix-up attack), and ID tokens would be checked against an
  issuer we never chose;
- it must name the authorization, token and JWKS endpoints (userinfo is optional: the ID
  token may carry every claim), as absolute URLs — https, unless the issuer itself is plain
  http (a provider on this machine, in tests);
- it must support `response_type=code`, and S256 if it lists its PKCE methods.

Documents are cached per issuer for DISCOVERY_CACHE_SECONDS. A failed fetch is never cached:
the next sign-in fetches again; meanwhile a stale document still serves for up to
DISCOVERY_STALE_SECONDS, so a provider's brief outage of its discovery endpoint does not stop
sign-ins. Every failure is `OAuthFailed`, in words fit for the person signing in.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import aiohttp
import structlog

from actors.auth import provider_http
from actors.auth.messages import OAuthFailed
from actors.auth.provider_config import ProviderConfig

# Social login logs under one name, whichever of its modules speaks.
log = structlog.get_logger("actors.auth.oauth")

WELL_KNOWN = "/.well-known/openid-configuration"
# A fetched document is used this long before it is fetched again.
DISCOVERY_CACHE_SECONDS = 3600.0
# When fetching again fails, the last good document still serves for this long.
DISCOVERY_STALE_SECONDS = 24 * 3600.0
# Discovery documents are a few kilobytes (Google's: about 1.5); more is not one.
MAX_DOCUMENT_BYTES = 64 * 1024
# The endpoints we need, with the words naming them in a refusal.
REQUIRED_ENDPOINTS = {
    "authorization_endpoint": "sign-in page",
    "token_endpoint": "token endpoint",
    "jwks_uri": "signing keys",
}


class DiscoveryRefused(OAuthFailed):
    """A discovery document we will not use; `details["reason"]` says which rule it broke.

    A kind of `OAuthFailed` (same code): to the person signing in, it is the provider
    that failed."""


@dataclass(frozen=True)
class Endpoints:
    """What a provider's discovery document told us."""

    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str  # "" when the provider names none
    jwks_uri: str


def discovery_url(issuer: str) -> str:
    """Where an issuer publishes its document (Discovery 4: the issuer plus the well-known
    path, the issuer's own path kept)."""
    return issuer.rstrip("/") + WELL_KNOWN


def read_document(
    document: Any, *, issuer: str, provider: str, label: str | None = None
) -> Endpoints:
    """The endpoints of a discovery document, once it checks out for `issuer` (see the module
    docstring); else `DiscoveryRefused` naming the broken rule. `provider` is the name logs
    and details carry, `label` the one people read (the name by default)."""
    who = (provider, label or provider)
    if not isinstance(document, dict):
        _refuse(who, "not_a_document", "did not answer with a discovery document")
    if document.get("issuer") != issuer:
        # Exact comparison, no normalising: Discovery 4.3 says they must be identical.
        _refuse(who, "issuer_mismatch", "published a discovery document for another issuer")
    plain_http = urlsplit(issuer).scheme == "http"
    found: dict[str, str] = {}
    for field, words in REQUIRED_ENDPOINTS.items():
        url = document.get(field)
        if not isinstance(url, str) or not _is_endpoint(url, plain_http=plain_http):
            _refuse(who, f"no_{field}", f"does not name a usable {words}")
        found[field] = url
    userinfo = document.get("userinfo_endpoint")
    if userinfo is not None and not _is_endpoint(userinfo, plain_http=plain_http):
        _refuse(who, "bad_userinfo_endpoint", "names an unusable userinfo endpoint")
    response_types = document.get("response_types_supported")
    if not isinstance(response_types, list) or "code" not in response_types:
        _refuse(who, "no_code_flow", "does not offer the authorization code flow")
    methods = document.get("code_challenge_methods_supported")
    if methods is not None and (not isinstance(methods, list) or "S256" not in methods):
        # We always send an S256 challenge; a provider that cannot check it would ignore it.
        _refuse(who, "no_s256", "does not support PKCE with S256")
    return Endpoints(
        authorization_endpoint=found["authorization_endpoint"],
        token_endpoint=found["token_endpoint"],
        userinfo_endpoint=userinfo or "",
        jwks_uri=found["jwks_uri"],
    )


def _is_endpoint(url: object, *, plain_http: bool) -> bool:
    """An absolute URL without credentials or fragment; https unless the issuer is http."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    schemes = ("https", "http") if plain_http else ("https",)
    return (
        parts.scheme in schemes
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not parts.fragment
    )


def _refuse(who: tuple[str, str], reason: str, words: str) -> NoReturn:
    name, label = who
    log.warning("oauth discovery refused", provider=name, reason=reason)
    raise DiscoveryRefused(
        f"{label} {words}, so signing in with it is not possible right now.",
        details={"provider": name, "reason": reason},
    )


# ── fetching, with a cache ─────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class _Cached:
    endpoints: Endpoints
    fetched_at: float


# Per issuer URL. Plain dict: every access is synchronous within one event loop; two
# concurrent cold fetches are harmless, merely duplicate.
_cache: dict[str, _Cached] = {}


def clear_discovery_cache() -> None:
    """Forget every provider's discovery document (tests; or after a config change)."""
    _cache.clear()


async def resolve(provider: ProviderConfig, *, http: aiohttp.ClientSession) -> ProviderConfig:
    """`provider` with its endpoints: as configured, or read from its discovery document."""
    if provider.resolved:
        return provider
    if provider.issuer is None:
        raise OAuthFailed(f"{provider.name} has no issuer configured")
    endpoints = await discover(provider, provider.issuer, http=http)
    return provider.with_endpoints(
        authorize_url=endpoints.authorization_endpoint,
        token_url=endpoints.token_endpoint,
        userinfo_url=endpoints.userinfo_endpoint,
        jwks_url=endpoints.jwks_uri,
    )


async def discover(
    provider: ProviderConfig, issuer: str, *, http: aiohttp.ClientSession
) -> Endpoints:
    """The issuer's endpoints, from cache while fresh, else fetched (a stale copy serves
    while fetching fails)."""
    now = time.monotonic()
    cached = _cache.get(issuer)
    if cached is not None and now - cached.fetched_at < DISCOVERY_CACHE_SECONDS:
        return cached.endpoints
    try:
        endpoints = await _fetch(provider, issuer, http=http)
    except OAuthFailed:
        if cached is not None and now - cached.fetched_at < DISCOVERY_STALE_SECONDS:
            log.warning("oauth discovery stale copy used", provider=provider.name)
            return cached.endpoints
        raise
    _cache[issuer] = _Cached(endpoints, time.monotonic())
    return endpoints


async def _fetch(
    provider: ProviderConfig, issuer: str, *, http: aiohttp.ClientSession
) -> Endpoints:
    """GET and check the discovery document."""
    request = http.get(
        discovery_url(issuer),
        headers={"Accept": "application/json", "User-Agent": provider_http.USER_AGENT},
        # The issuer check would catch a redirect elsewhere; not following one is simpler.
        allow_redirects=False,
        timeout=provider_http.timeout(),
    )
    try:
        status, body = await provider_http.call(
            provider.name, "discovery", request, limit=MAX_DOCUMENT_BYTES
        )
    except OAuthFailed:  # unreachable, slow or too large: logged there; said plainly here
        raise DiscoveryRefused(
            f"{provider.label} could not be reached to sign you in. Try again later.",
            details={"provider": provider.name, "reason": "unreachable"},
        ) from None
    if status >= 300:
        log.warning("oauth discovery unavailable", provider=provider.name, status=status)
        raise DiscoveryRefused(
            f"{provider.label} could not tell us where to sign in (HTTP {status}). "
            "Try again later.",
            details={"provider": provider.name, "reason": "unavailable", "status": status},
        )
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    endpoints = read_document(document, issuer=issuer, provider=provider.name, label=provider.label)
    log.info("oauth discovery fetched", provider=provider.name)
    return endpoints
