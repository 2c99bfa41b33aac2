"""ID tokens: verifying an OpenID Connect ID token against its provider's published keys.

`verify_id_token` checks the signature (against the provider's JWKS, asymmetric algorithms
only), `iss`, `aud`, `sub`, `exp`, `iat` (with CLOCK_LEEWAY_SECONDS of skew), `azp` when there
are several audiences, and the sign-in's `nonce`. The keys are cached per JWKS URL and fetched
again when stale, or when a token names a key we do not have (the provider may have rotated).

Every failure is `OAuthFailed`, with a reason in our own words that never echoes the token.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import aiohttp
import structlog
from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyCurveError,
    JoseError,
    KeyParameterError,
    MissingClaimError,
)
from joserfc.jwk import Key, import_key
from joserfc.jws import JWSRegistry

from actors.auth import provider_http
from actors.auth.messages import OAuthFailed

# Social login logs under one name, whichever of its modules speaks.
log = structlog.get_logger("actors.auth.oauth")

# Published signing keys are kept this long before they are fetched again.
JWKS_CACHE_SECONDS = 3600.0
# A token signed with a key we do not know may mean the provider rotated its keys: fetch them
# again, but not more often than this, so forged tokens cannot make us hammer the provider.
JWKS_REFRESH_MIN_SECONDS = 30.0
# Clock skew tolerated between us and the provider when checking `exp` and `iat`.
CLOCK_LEEWAY_SECONDS = 60
# Only asymmetric signatures: an HMAC "signature" keyed with a public key proves nothing.
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
# Claims an ID token must carry (OIDC Core 2), in the order a missing one is reported.
ID_TOKEN_REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat")
# Header parameters are the provider's business (x5t, typ, ...): only `crit` ones must be known.
_ID_TOKEN_JWS = JWSRegistry(algorithms=ID_TOKEN_ALGORITHMS, strict_check_header=False)


class Issuer(Protocol):
    """What verifying a provider's ID tokens needs to know of it (`oauth.ProviderConfig`)."""

    @property
    def name(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def issuer(self) -> str | None: ...

    @property
    def jwks_url(self) -> str | None: ...


async def verify_id_token(
    provider: Issuer, id_token: str, *, nonce: str, http: aiohttp.ClientSession
) -> dict[str, Any]:
    """The ID token's claims once its signature (against the provider's JWKS), issuer,
    audience, expiry, issue time and nonce all check out; else `OAuthFailed`."""
    if provider.issuer is None:
        # Without an expected issuer any provider's token for our client id would pass.
        raise OAuthFailed(f"{provider.name} has no issuer configured")
    header = _jws_header(provider, id_token)
    alg = header.get("alg")
    if alg not in ID_TOKEN_ALGORITHMS:
        log.warning("oauth id token algorithm refused", provider=provider.name, alg=str(alg))
        raise OAuthFailed(f"{provider.name}'s ID token is signed with an algorithm we refuse")
    kid = header.get("kid")
    keys = await _signing_keys(provider, kid if isinstance(kid, str) else None, http=http)
    key = keys.find(kid)
    if key is None:
        _refuse_key(provider, "Key not found")
    claims = _decode_id_token(provider, id_token, key, issuer=provider.issuer)

    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != provider.client_id:
        # OIDC Core 3.1.3.7: with several audiences, we must be the authorized party.
        raise OAuthFailed(f"{provider.name}'s ID token was issued to another party")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not hmac.compare_digest(
        token_nonce.encode(), nonce.encode()
    ):
        log.warning("oauth id token nonce mismatch", provider=provider.name)
        raise OAuthFailed(f"{provider.name}'s ID token belongs to another sign-in (nonce)")
    return claims


def _decode_id_token(provider: Issuer, id_token: str, key: Key, *, issuer: str) -> dict[str, Any]:
    """The claims once the signature, `iss`, `aud`, `sub`, `exp`, `iat` (and `nbf`, if any)
    check out, with CLOCK_LEEWAY_SECONDS of skew; else `OAuthFailed`."""
    expected = jwt.JWTClaimsRegistry(
        leeway=CLOCK_LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": provider.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )
    claims: dict[str, Any] = {}
    try:
        claims = jwt.decode(id_token, key, registry=_ID_TOKEN_JWS).claims
        expected.validate(claims)
    except ExpiredTokenError:
        log.warning("oauth id token expired", provider=provider.name)
        raise OAuthFailed(f"{provider.name}'s ID token has expired") from None
    except (KeyParameterError, InvalidKeyCurveError) as exc:
        # The published key is of another type, curve or `alg` than the token's algorithm.
        _refuse_key(provider, str(exc))
    except JoseError as exc:
        reason = _rejection_reason(exc, claims)
        log.warning("oauth id token rejected", provider=provider.name, reason=reason)
        raise OAuthFailed(
            f"{provider.name}'s ID token is not valid: {reason}",
            details={"provider": provider.name, "reason": reason},
        ) from None
    except (ValueError, TypeError) as exc:
        _refuse_key(provider, str(exc))
    return claims


# The reasons for claims out of their time window, by claim.
_TIME_REASONS = {
    "iat": "The token is not valid as it was issued in the future",
    "nbf": "The token is not valid yet",
}


def _rejection_reason(exc: JoseError, claims: Mapping[str, Any]) -> str:
    """Which check failed, in wording of our own that clients may see ("Missing 'exp' claim",
    "Invalid claim 'aud'", "bad_signature"); it never echoes the token."""
    if isinstance(exc, MissingClaimError):
        missing = exc.claim.split(",")  # joserfc names all of them; we report the first
        first = next((name for name in ID_TOKEN_REQUIRED_CLAIMS if name in missing), exc.claim)
        return f"Missing '{first}' claim"
    if isinstance(exc, InvalidClaimError):
        value = claims.get(exc.claim)
        is_time = isinstance(value, int | float) and not isinstance(value, bool)
        if exc.claim in _TIME_REASONS and is_time:
            return _TIME_REASONS[exc.claim]
        return f"Invalid claim '{exc.claim}'"
    return exc.description or exc.error


def _refuse_key(provider: Issuer, error: str) -> NoReturn:
    """The token names a key the provider does not publish, or one that cannot verify it."""
    log.warning("oauth id token key unusable", provider=provider.name, error=error[:100])
    raise OAuthFailed(
        f"{provider.name}'s ID token is signed with a key it does not publish",
        details={"provider": provider.name, "reason": "unknown_key"},
    ) from None


def _jws_header(provider: Issuer, token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, read before verification to pick the key."""
    try:
        segment = token.split(".", 1)[0]
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or token.count(".") != 2:
        raise OAuthFailed(f"{provider.name}'s ID token is malformed")
    return header


# ── the signing-key cache ──────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class _CachedKeys:
    """A provider's usable signing keys, each under the `kid` it was published with."""

    keys: tuple[Key, ...]
    kids: frozenset[str | None]
    fetched_at: float

    def find(self, kid: object) -> Key | None:
        """The key published under `kid`; with no `kid`, the only key if there is just one."""
        if kid is None and len(self.keys) == 1:
            return self.keys[0]
        return next((key for key in self.keys if key.kid == kid), None)


# Per JWKS URL (so per provider). Plain dict: every access is synchronous within one event
# loop; two concurrent cold fetches are harmless, merely duplicate.
_jwks_cache: dict[str, _CachedKeys] = {}


def clear_jwks_cache() -> None:
    """Forget every provider's cached signing keys (tests; or after a config change)."""
    _jwks_cache.clear()


async def _signing_keys(
    provider: Issuer, kid: str | None, *, http: aiohttp.ClientSession
) -> _CachedKeys:
    """The provider's keys, from cache while fresh; fetched again when stale, or when the
    token names a key we do not have (the provider may have rotated)."""
    if provider.jwks_url is None:
        raise OAuthFailed(f"{provider.name} has no signing keys configured")
    now = time.monotonic()
    cached = _jwks_cache.get(provider.jwks_url)
    if cached is not None:
        fresh = now - cached.fetched_at < JWKS_CACHE_SECONDS
        knows_kid = kid in cached.kids or (kid is None and len(cached.kids) == 1)
        may_refresh = now - cached.fetched_at >= JWKS_REFRESH_MIN_SECONDS
        if fresh and (knows_kid or not may_refresh):
            return cached
    cached = await _fetch_keys(provider, provider.jwks_url, http=http)
    _jwks_cache[provider.jwks_url] = cached
    return cached


async def _fetch_keys(provider: Issuer, url: str, *, http: aiohttp.ClientSession) -> _CachedKeys:
    """The provider's JWKS, keeping the keys we can verify signatures with."""
    status, body = await provider_http.call(
        provider.name,
        "signing keys",
        http.get(url, headers={"Accept": "application/json"}, timeout=provider_http.timeout()),
    )
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    raw_keys = document.get("keys") if isinstance(document, dict) else None
    if status >= 300 or not isinstance(raw_keys, list):
        log.warning("oauth jwks unusable", provider=provider.name, status=status)
        raise OAuthFailed(f"{provider.name}'s signing keys could not be read")
    keys: list[Key] = []
    for raw in raw_keys:
        # One key we cannot use (an unknown type, an encryption key) must not spoil the rest.
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig" or raw.get("kty") == "oct":
            continue
        try:
            keys.append(import_key(raw))
        except (JoseError, ValueError, TypeError, KeyError):
            log.warning("oauth jwks key skipped", provider=provider.name, kid=raw.get("kid"))
    if not keys:
        raise OAuthFailed(f"{provider.name} publishes no usable signing keys")
    log.info("oauth jwks fetched", provider=provider.name, keys=len(keys))
    return _CachedKeys(
        keys=tuple(keys),
        kids=frozenset(key.kid for key in keys),
        fetched_at=time.monotonic(),
    )
