"""Social login: the authorization-code flow with PKCE against Google (OpenID Connect) and GitHub.

The auth actor calls two functions and keeps what the first returns until the browser comes
back:

1. `authorization_request(provider, redirect_uri)` builds the URL to send the browser to, with a
   random `state`, a PKCE S256 challenge (RFC 7636) and, for OpenID Connect, a `nonce`.
2. `complete_authorization(provider, code=..., ...)` trades the code for tokens and returns who
   signed in (`ProviderIdentity`). For OpenID Connect the ID token is verified against the
   provider's published keys (signature, `iss`, `aud`, `exp`, `nonce`; see `id_tokens`); for
   GitHub the user and their verified primary email come from its API.

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
from typing import Any, Literal, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import structlog

from actors.auth import provider_http
from actors.auth.id_tokens import verify_id_token
from actors.auth.messages import OAuthFailed

log = structlog.get_logger("actors.auth.oauth")

# Random bytes behind each value; URL-safe base64 makes 4 characters of every 3 bytes.
STATE_BYTES = 32  # 43 characters
CODE_VERIFIER_BYTES = 48  # 64 characters; RFC 7636 allows 43..128 unreserved characters
NONCE_BYTES = 32  # 43 characters

USER_AGENT = "splitgo-oauth"

GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUER = "https://accounts.google.com"
GITHUB_BASE_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"


# ── configuration ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ProviderConfig:
    """Where a provider lives and who we are to it.

    `kind` says how identities are read: `oidc` from a verified ID token (plus userinfo for
    missing claims), `github` from GitHub's REST API.
    """

    name: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    userinfo_url: str
    jwks_url: str | None
    issuer: str | None
    scopes: tuple[str, ...]
    kind: Literal["oidc", "github"]

    def __repr__(self) -> str:
        # The secret must not reach logs or tracebacks through a repr.
        return (
            f"ProviderConfig(name={self.name!r}, kind={self.kind!r}, "
            f"client_id={self.client_id!r}, authorize_url={self.authorize_url!r})"
        )

    @classmethod
    def google(
        cls, client_id: str, client_secret: str, *, base_url: str | None = None
    ) -> ProviderConfig:
        """Google's OpenID Connect endpoints, or — with `base_url` — a provider serving
        `/authorize`, `/token`, `/userinfo` and `/jwks` there, with `base_url` as its issuer
        (the layout of `tests.support.oidc.FakeOidcProvider`)."""
        if base_url is None:
            return cls(
                name="google",
                client_id=client_id,
                client_secret=client_secret,
                authorize_url=GOOGLE_AUTHORIZE_URL,
                token_url=GOOGLE_TOKEN_URL,
                userinfo_url=GOOGLE_USERINFO_URL,
                jwks_url=GOOGLE_JWKS_URL,
                issuer=GOOGLE_ISSUER,
                scopes=("openid", "email", "profile"),
                kind="oidc",
            )
        base = base_url.rstrip("/")
        return cls(
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

    @classmethod
    def github(
        cls,
        client_id: str,
        client_secret: str,
        *,
        base_url: str | None = None,
        api_url: str | None = None,
    ) -> ProviderConfig:
        """GitHub's OAuth app endpoints. `base_url` moves the login endpoints
        (`/login/oauth/...`); `api_url` moves the REST API, which defaults to `{base_url}/api/v3`
        when only `base_url` is given (GitHub Enterprise Server's layout, and the fake's)."""
        base = (base_url or GITHUB_BASE_URL).rstrip("/")
        if api_url is not None:
            api = api_url.rstrip("/")
        elif base_url is not None:
            api = f"{base}/api/v3"
        else:
            api = GITHUB_API_URL
        return cls(
            name="github",
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=f"{base}/login/oauth/authorize",
            token_url=f"{base}/login/oauth/access_token",
            userinfo_url=f"{api}/user",
            jwks_url=None,
            issuer=None,
            scopes=("read:user", "user:email"),
            kind="github",
        )


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
    """Build the authorization URL with a fresh state, PKCE S256 challenge and (OIDC) nonce."""
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


@dataclass(frozen=True)
class ProviderIdentity:
    """A person as the provider vouches for them. `subject` is stable per provider (the
    account key); `email` is only to be trusted for account linking when `email_verified`."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


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
    tokens = await _exchange_code(
        provider, code=code, redirect_uri=redirect_uri, code_verifier=code_verifier, http=http
    )
    access_token = tokens.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        log.warning("oauth token answer without access token", provider=provider.name)
        raise OAuthFailed(f"{provider.name} gave no access token")
    if provider.kind == "oidc":
        identity = await _oidc_identity(provider, tokens, access_token, nonce=nonce, http=http)
    else:
        identity = await _github_identity(provider, access_token, http=http)
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
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
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
        _raise_provider_error(provider, "token", status, answer)
    return answer


async def _get_json(
    provider: ProviderConfig, what: str, url: str, *, http: aiohttp.ClientSession, token: str
) -> Any:
    """GET a JSON document with the access token as bearer; `OAuthFailed` on any failure."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,  # GitHub's API refuses requests without one
    }
    request = http.get(url, headers=headers, timeout=provider_http.timeout())
    status, body = await provider_http.call(provider.name, what, request)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if status >= 300 or document is None:
        _raise_provider_error(
            provider, what, status, document if isinstance(document, dict) else None
        )
    return document


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


def _raise_provider_error(
    provider: ProviderConfig, what: str, status: int, answer: Mapping[str, Any] | None
) -> NoReturn:
    """Raise `OAuthFailed` naming the provider's error code (never its full body, which could
    echo what we sent)."""
    error = _safe_code(answer.get("error")) if answer is not None else None
    description = answer.get("error_description") if answer is not None else None
    log.warning(
        "oauth provider refused",
        provider=provider.name,
        step=what,
        status=status,
        error=error,
        description=str(description)[:200] if description is not None else None,
    )
    if error:
        raise OAuthFailed(
            f"{provider.name} refused the {what} request ({error})",
            details={"provider": provider.name, "error": error},
        )
    raise OAuthFailed(
        f"{provider.name} answered the {what} request with HTTP {status}",
        details={"provider": provider.name, "status": status},
    )


def _safe_code(value: Any) -> str | None:
    """An OAuth error code fit to show: short, and only the characters codes are made of."""
    if value is None:
        return None
    text = "".join(c for c in str(value) if c.isalnum() or c in "_-.")[:64]
    return text or "error"


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
    if email is None or name is None:
        # Some providers keep profile claims out of the ID token; userinfo has them.
        info = await _get_json(
            provider, "userinfo", provider.userinfo_url, http=http, token=access_token
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


# ── GitHub ─────────────────────────────────────────────────────────────────────────────


async def _github_identity(
    provider: ProviderConfig, access_token: str, *, http: aiohttp.ClientSession
) -> ProviderIdentity:
    """The GitHub user, with their primary email only if GitHub has verified it."""
    user = await _get_json(provider, "user", provider.userinfo_url, http=http, token=access_token)
    user_id = user.get("id") if isinstance(user, dict) else None
    if user_id is None or isinstance(user_id, bool):
        raise OAuthFailed(f"{provider.name} did not say who signed in")
    email: str | None = None
    email_verified = False
    try:
        emails = await _get_json(
            provider, "emails", f"{provider.userinfo_url}/emails", http=http, token=access_token
        )
    except OAuthFailed as exc:
        if exc.details.get("status") not in (403, 404):
            raise
        # Without the user:email grant the list is refused; the public email, unverified, is
        # still better than nothing.
        emails = []
    if isinstance(emails, list):
        for entry in emails:
            if isinstance(entry, dict) and entry.get("primary") and entry.get("verified") is True:
                email, email_verified = str(entry["email"]), True
                break
    if email is None and isinstance(user.get("email"), str) and user["email"]:
        email = user["email"]
    name = user.get("name") or user.get("login")
    return ProviderIdentity(
        provider=provider.name,
        subject=str(user_id),
        email=email,
        email_verified=email_verified,
        name=str(name) if name else None,
    )
