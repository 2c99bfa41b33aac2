"""Social login: the authorization-code flow with PKCE against OpenID Connect providers
(Google among them), GitHub and Facebook.

The auth actor calls these and keeps what `authorization_request` returns until the browser
comes back:

0. `resolve_provider(provider, http=...)` fills in the endpoints of a provider known by its
   issuer alone, from its discovery document (`discovery`); others are returned as they are.
1. `authorization_request(provider, redirect_uri)` builds the URL to send the browser to, with a
   random `state`, a PKCE S256 challenge (RFC 7636) and, for OpenID Connect, a `nonce`.
2. `complete_authorization(provider, code=..., ...)` trades the code for tokens and returns who
   signed in (`ProviderIdentity`). For OpenID Connect the ID token is verified against the
   provider's published keys (signature, `iss`, `aud`, `exp`, `nonce`; see `id_tokens`); for
   GitHub (`github`) and Facebook (`facebook`) the person comes from their APIs.

Who the providers are (`ProviderConfig`, `ProviderIdentity`) is plain data in
`provider_config`, re-exported here.

Everything the provider may do wrong — refuse, answer an error, answer nonsense, be unreachable
or slow — ends as `OAuthFailed` with a message fit for a user. Codes, tokens, verifiers and
secrets never appear in messages or logs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import structlog

from actors.auth import provider_http
from actors.auth.discovery import resolve as resolve_provider
from actors.auth.facebook import facebook_identity
from actors.auth.github import github_identity
from actors.auth.id_tokens import verify_id_token
from actors.auth.messages import OAuthFailed
from actors.auth.provider_config import ProviderConfig, ProviderIdentity

__all__ = [
    "AuthorizationRequest",
    "ProviderConfig",
    "ProviderIdentity",
    "authorization_request",
    "complete_authorization",
    "resolve_provider",
    "s256_code_challenge",
]

log = structlog.get_logger("actors.auth.oauth")

# Random bytes behind each value; URL-safe base64 makes 4 characters of every 3 bytes.
STATE_BYTES = 32  # 43 characters
CODE_VERIFIER_BYTES = 48  # 64 characters; RFC 7636 allows 43..128 unreserved characters
NONCE_BYTES = 32  # 43 characters


# ── step 1: where to send the browser ─────────────────────────────────────────────────


@dataclass(frozen=True)
class AuthorizationRequest:
    """The provider URL for the browser, and what to keep until it comes back.

    `state` must match the callback's; `code_verifier` and `nonce` go to
    `complete_authorization`. None of them may be shown to anyone but this browser.
    """

    url: str
    state: str
    code_verifier: str
    nonce: str | None

    def __repr__(self) -> str:
        return "AuthorizationRequest(url=..., state=..., code_verifier=..., nonce=...)"


def authorization_request(provider: ProviderConfig, redirect_uri: str) -> AuthorizationRequest:
    """Build the authorization URL with a fresh state, PKCE S256 challenge and (OIDC) nonce.
    A provider known by discovery must be resolved first (`resolve_provider`)."""
    if not provider.resolved:
        raise ValueError(f"{provider.name}'s endpoints are not discovered yet")
    state = secrets.token_urlsafe(STATE_BYTES)
    code_verifier = secrets.token_urlsafe(CODE_VERIFIER_BYTES)
    nonce = secrets.token_urlsafe(NONCE_BYTES) if provider.kind == "oidc" else None
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(provider.scopes),
        "state": state,
        "code_challenge": s256_code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    if nonce is not None:
        params["nonce"] = nonce
    return AuthorizationRequest(
        url=_with_query(provider.authorize_url, params),
        state=state,
        code_verifier=code_verifier,
        nonce=nonce,
    )


def s256_code_challenge(code_verifier: str) -> str:
    """The PKCE S256 challenge of a verifier: BASE64URL(SHA256(verifier)), unpadded (RFC 7636
    section 4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` added to whatever query it already has."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


# ── step 2: who signed in ─────────────────────────────────────────────────────────────


async def complete_authorization(
    provider: ProviderConfig,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    nonce: str | None,
    http: aiohttp.ClientSession,
) -> ProviderIdentity:
    """Trade the authorization code for tokens and return the verified identity.

    Raises `OAuthFailed` whenever the provider refuses, errs, is unreachable or slow, or
    vouches with something that does not verify.
    """
    provider = await resolve_provider(provider, http=http)
    tokens = await _exchange_code(
        provider, code=code, redirect_uri=redirect_uri, code_verifier=code_verifier, http=http
    )
    access_token = tokens.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        log.warning("oauth token answer without access token", provider=provider.name)
        raise OAuthFailed(f"{provider.name} gave no access token")
    if provider.kind == "oidc":
        identity = await _oidc_identity(provider, tokens, access_token, nonce=nonce, http=http)
    elif provider.kind == "facebook":
        identity = await facebook_identity(provider, access_token, http=http)
    else:
        identity = await github_identity(provider, access_token, http=http)
    log.info(
        "oauth identity verified",
        provider=provider.name,
        subject=identity.subject,
        email_verified=identity.email_verified,
    )
    return identity


async def _exchange_code(
    provider: ProviderConfig,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    http: aiohttp.ClientSession,
) -> dict[str, Any]:
    """POST the token endpoint; the provider's JSON answer, or `OAuthFailed`."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "code_verifier": code_verifier,
    }
    # GitHub answers form-encoded unless asked for JSON.
    headers = {"Accept": "application/json", "User-Agent": provider_http.USER_AGENT}
    status, body = await provider_http.call(
        provider.name,
        "token",
        http.post(
            provider.token_url,
            data=form,
            headers=headers,
            # A token request carries the code and secret: never re-send it somewhere else.
            allow_redirects=False,
            timeout=provider_http.timeout(),
        ),
    )
    answer = _parse_answer(body)
    error = answer.get("error") if answer is not None else None
    if status >= 300 or error is not None or answer is None:
        provider_http.refuse(provider.name, "token", status, answer)
    return answer


def _parse_answer(body: bytes) -> dict[str, Any] | None:
    """A token endpoint's answer as a dict: JSON, else form-encoded (older providers)."""
    try:
        document = json.loads(body)
    except ValueError:
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return None
        return dict(pairs) or None
    return document if isinstance(document, dict) else None


# ── OpenID Connect ─────────────────────────────────────────────────────────────────────


async def _oidc_identity(
    provider: ProviderConfig,
    tokens: Mapping[str, Any],
    access_token: str,
    *,
    nonce: str | None,
    http: aiohttp.ClientSession,
) -> ProviderIdentity:
    """Verify the ID token and read the identity from it, filling gaps from userinfo."""
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        log.warning("oauth token answer without id token", provider=provider.name)
        raise OAuthFailed(f"{provider.name} gave no ID token")
    if nonce is None:
        # We always send a nonce for OIDC; without it a replayed ID token could not be told apart.
        raise OAuthFailed(f"no nonce was kept for this {provider.name} sign-in")
    claims = await verify_id_token(provider, id_token, nonce=nonce, http=http)

    subject = str(claims["sub"])
    email = claims.get("email")
    email_verified = _truthy(claims.get("email_verified"))
    name = claims.get("name")
    if (email is None or name is None) and provider.userinfo_url:
        # Some providers keep profile claims out of the ID token; userinfo has them.
        info = await provider_http.get_json(
            provider.name, "userinfo", provider.userinfo_url, http=http, token=access_token
        )
        if not isinstance(info, dict) or str(info.get("sub")) != subject:
            # OIDC Core 5.3.2: a userinfo answer for someone else must not be used.
            log.warning("oauth userinfo subject mismatch", provider=provider.name)
            raise OAuthFailed(f"{provider.name}'s userinfo does not match the ID token")
        if email is None and info.get("email") is not None:
            email = info.get("email")
            email_verified = _truthy(info.get("email_verified"))
        if name is None:
            name = info.get("name")
    return ProviderIdentity(
        provider=provider.name,
        subject=subject,
        email=str(email) if email is not None else None,
        email_verified=email_verified and email is not None,
        name=str(name) if name else None,
    )


def _truthy(value: Any) -> bool:
    """`email_verified` as a bool; some providers have sent it as the string "true"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")
