"""Fake OAuth providers the tests run themselves: a real HTTP server on 127.0.0.1.

`FakeOidcProvider` is a small OpenID Connect provider (the layout `ProviderConfig.google(...,
base_url=provider.url)` expects): `/authorize` signs the configured test identity in at once
(no login page) and redirects back with a code; `/token` checks the client secret, the code
(single use, bound to its redirect URI) and the PKCE verifier, and returns an access token and
an RS256 ID token; `/userinfo`, `/jwks` and `/.well-known/openid-configuration` complete it.

`FakeGitHubProvider` plays GitHub's OAuth app flow (`ProviderConfig.github(..., base_url=
provider.url)`): `/login/oauth/authorize`, `/login/oauth/access_token` (which, like GitHub,
reports errors with HTTP 200 and an `error` field), `/api/v3/user` and `/api/v3/user/emails`.

Both take switches for the unhappy paths: `deny` (the user says no), `fail_token` (the token
endpoint refuses), `token_delay` (the token endpoint is slow); the OIDC fake can also tamper
with its ID tokens (`id_token_overrides`, `id_token_omit`, `sign_with_unknown_key`) and with
its discovery document (`discovery_overrides`, `discovery_omit`, `discovery_status`).

    async with FakeOidcProvider() as idp:
        config = ProviderConfig.google(idp.client_id, idp.client_secret, base_url=idp.url)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_LIFETIME_SECONDS = 60
ID_TOKEN_LIFETIME_SECONDS = 600


@dataclass
class FakeIdentity:
    """Who the OIDC fake signs in (settable between requests)."""

    sub: str = "fake-subject-1"
    email: str | None = "ada@example.com"
    email_verified: bool = True
    name: str | None = "Ada Lovelace"


@dataclass
class GitHubEmail:
    email: str
    primary: bool = False
    verified: bool = False
    visibility: str | None = None


@dataclass
class FakeGitHubUser:
    """Who the GitHub fake signs in: its `/user` and `/user/emails` answers."""

    id: int = 4242
    login: str = "ada"
    name: str | None = "Ada Lovelace"
    email: str | None = None  # the public profile email
    emails: list[GitHubEmail] = field(
        default_factory=lambda: [
            GitHubEmail("old@example.com", primary=False, verified=True),
            GitHubEmail("ada@example.com", primary=True, verified=True, visibility="private"),
        ]
    )


@dataclass
class AuthorizeRecord:
    """What the last `/authorize` request asked for."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None


@dataclass
class _Grant:
    """An issued authorization code and what it was bound to."""

    redirect_uri: str
    code_challenge: str | None
    nonce: str | None
    subject: Any  # a FakeIdentity / FakeGitHubUser snapshot
    expires_at: float


class _FakeProvider:
    """The shared part: the server's life, the authorize endpoint, codes and tokens."""

    # Whether /authorize insists on PKCE S256 (OIDC: yes, as we require; GitHub: optional).
    require_pkce = True

    def __init__(
        self,
        *,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        redirect_uris: tuple[str, ...] | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        # None: any absolute http(s) URI is accepted; else exactly one of these.
        self.redirect_uris = redirect_uris
        self.deny = False
        self.fail_token = False
        self.token_delay = 0.0
        self.authorize_requests: list[AuthorizeRecord] = []
        self.token_requests = 0
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, Any] = {}
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        # set when the fake stops: a delayed reply gives up then, so the stop (which waits
        # for the requests in hand) does not wait out the delay
        self._stopping = asyncio.Event()

    # ── lifecycle ──────────────────────────────────────────────────────────────────────

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:54321 (after `start()`)."""
        if self._url is None:
            raise RuntimeError("the fake provider is not started")
        return self._url

    @property
    def last_authorization(self) -> AuthorizeRecord:
        if not self.authorize_requests:
            raise LookupError("no authorize request yet")
        return self.authorize_requests[-1]

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            self._stopping.set()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> _FakeProvider:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _identity_snapshot(self) -> Any:
        raise NotImplementedError

    # ── /authorize ─────────────────────────────────────────────────────────────────────

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        # RFC 6749 4.1.2.1: with an unknown client or redirect URI, never redirect.
        if client_id != self.client_id:
            return web.Response(status=400, text="unknown client_id")
        if not self._redirect_allowed(redirect_uri):
            return web.Response(status=400, text="redirect_uri not registered")
        state = query.get("state")
        self.authorize_requests.append(
            AuthorizeRecord(
                client_id=client_id,
                redirect_uri=redirect_uri,
                scope=query.get("scope", ""),
                state=state,
                code_challenge=query.get("code_challenge"),
                code_challenge_method=query.get("code_challenge_method"),
                nonce=query.get("nonce"),
            )
        )
        if query.get("response_type") != "code":
            return _redirect(redirect_uri, error="unsupported_response_type", state=state)
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method")
        if challenge is not None and method != "S256":
            return _redirect(redirect_uri, error="invalid_request", state=state)
        if challenge is None and self.require_pkce:
            return _redirect(redirect_uri, error="invalid_request", state=state)
        if self.deny:
            return _redirect(redirect_uri, error="access_denied", state=state)
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Grant(
            redirect_uri=redirect_uri,
            code_challenge=challenge,
            nonce=query.get("nonce"),
            subject=self._identity_snapshot(),
            expires_at=time.time() + CODE_LIFETIME_SECONDS,
        )
        return _redirect(redirect_uri, code=code, state=state)

    def _redirect_allowed(self, redirect_uri: str) -> bool:
        if self.redirect_uris is not None:
            return redirect_uri in self.redirect_uris
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment

    # ── /token ─────────────────────────────────────────────────────────────────────────

    async def _redeem(self, request: web.Request) -> tuple[_Grant | None, str | None, int]:
        """Check a token request: the grant, or (None, error code, HTTP status)."""
        self.token_requests += 1
        if self.token_delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.token_delay)
        form = await request.post()
        client_id, client_secret = _client_credentials(request, form)
        if client_id != self.client_id or not secrets.compare_digest(
            client_secret.encode(), self.client_secret.encode()
        ):
            return None, "invalid_client", 401
        if form.get("grant_type") != "authorization_code":
            return None, "unsupported_grant_type", 400
        if self.fail_token:
            return None, "invalid_grant", 400
        # Single use: the code is gone whatever happens next.
        grant = self._codes.pop(str(form.get("code", "")), None)
        if grant is None or grant.expires_at < time.time():
            return None, "invalid_grant", 400
        if form.get("redirect_uri") != grant.redirect_uri:
            return None, "invalid_grant", 400
        verifier = form.get("code_verifier")
        if grant.code_challenge is not None:
            if not isinstance(verifier, str) or not secrets.compare_digest(
                _s256(verifier).encode(), grant.code_challenge.encode()
            ):
                return None, "invalid_grant", 400
        elif verifier is not None:
            return None, "invalid_grant", 400
        return grant, None, 200

    def _issue_access_token(self, subject: Any, *, prefix: str = "") -> str:
        token = prefix + secrets.token_urlsafe(32)
        self._access_tokens[token] = subject
        return token

    def _bearer_subject(self, request: web.Request) -> Any | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._access_tokens.get(token.strip())


class FakeOidcProvider(_FakeProvider):
    """A fake OpenID Connect provider; see the module docstring."""

    def __init__(
        self,
        *,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        redirect_uris: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(
            client_id=client_id, client_secret=client_secret, redirect_uris=redirect_uris
        )
        self.identity = FakeIdentity()
        # Claims merged into (or, for id_token_omit, dropped from) the next ID tokens.
        self.id_token_overrides: dict[str, Any] = {}
        self.id_token_omit: set[str] = set()
        # Sign ID tokens with a key the JWKS does not publish (under a kid of its own unless
        # `unknown_key_kid` borrows the real one).
        self.sign_with_unknown_key = False
        self.unknown_key_kid: str | None = None
        self.jwks_requests = 0
        # The discovery document: fields replaced or dropped, or an HTTP error instead.
        self.discovery_overrides: dict[str, Any] = {}
        self.discovery_omit: set[str] = set()
        self.discovery_status = 200
        self.discovery_requests = 0
        self.kid = f"fake-{secrets.token_hex(4)}"
        self._key = RSAKey.generate_key(
            2048, parameters={"kid": self.kid, "use": "sig", "alg": "RS256"}, private=True
        )
        self._unknown_key: RSAKey | None = None

    async def __aenter__(self) -> FakeOidcProvider:
        await self.start()
        return self

    @property
    def issuer(self) -> str:
        return self.url

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/userinfo", self._userinfo)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/.well-known/openid-configuration", self._discovery)

    def _identity_snapshot(self) -> FakeIdentity:
        identity = self.identity
        return FakeIdentity(identity.sub, identity.email, identity.email_verified, identity.name)

    async def _token(self, request: web.Request) -> web.Response:
        grant, error, status = await self._redeem(request)
        if grant is None:
            return web.json_response({"error": error}, status=status)
        identity: FakeIdentity = grant.subject
        return web.json_response(
            {
                "access_token": self._issue_access_token(identity),
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "openid email profile",
                "id_token": self.id_token(identity, nonce=grant.nonce),
            },
            headers={"Cache-Control": "no-store"},
        )

    def id_token(self, identity: FakeIdentity | None = None, *, nonce: str | None) -> str:
        """An ID token for `identity` (default: the configured one), tampered as switched."""
        who = identity or self.identity
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": who.sub,
            "aud": self.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME_SECONDS,
            "auth_time": now,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if who.email is not None:
            claims["email"] = who.email
            claims["email_verified"] = who.email_verified
        if who.name is not None:
            claims["name"] = who.name
        claims.update(self.id_token_overrides)
        for name in self.id_token_omit:
            claims.pop(name, None)
        key = self._key
        if self.sign_with_unknown_key:
            if self._unknown_key is None:
                self._unknown_key = RSAKey.generate_key(2048, private=True)
            key = self._unknown_key
        kid = self.kid if key is self._key else (self.unknown_key_kid or "unknown-key")
        return jwt.encode({"alg": "RS256", "kid": kid}, claims, key, algorithms=["RS256"])

    async def _userinfo(self, request: web.Request) -> web.Response:
        identity = self._bearer_subject(request)
        if not isinstance(identity, FakeIdentity):
            return web.json_response(
                {"error": "invalid_token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        body: dict[str, Any] = {"sub": identity.sub}
        if identity.email is not None:
            body["email"] = identity.email
            body["email_verified"] = identity.email_verified
        if identity.name is not None:
            body["name"] = identity.name
        return web.json_response(body)

    async def _jwks(self, _request: web.Request) -> web.Response:
        self.jwks_requests += 1
        public = self._key.as_dict(private=False)
        return web.json_response({"keys": [public]})

    async def _discovery(self, _request: web.Request) -> web.Response:
        self.discovery_requests += 1
        if self.discovery_status != 200:
            return web.json_response({"error": "unavailable"}, status=self.discovery_status)
        document = self.discovery_document()
        document.update(self.discovery_overrides)
        for name in self.discovery_omit:
            document.pop(name, None)
        return web.json_response(document)

    def discovery_document(self) -> dict[str, Any]:
        """The untampered OpenID Connect discovery document of this provider."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "client_secret_basic",
            ],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "nonce"],
        }


FakeProvider = _FakeProvider  # the shared base, for fakes of other providers


class FakeGitHubProvider(_FakeProvider):
    """A fake GitHub OAuth app endpoint plus the two REST calls we make; see the module
    docstring. `emails_status` set to 403 or 404 makes `/user/emails` refuse."""

    require_pkce = False  # GitHub accepts PKCE but does not insist on it

    def __init__(
        self,
        *,
        client_id: str = "test-github-client",
        client_secret: str = "test-github-secret",
        redirect_uris: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(
            client_id=client_id, client_secret=client_secret, redirect_uris=redirect_uris
        )
        self.user = FakeGitHubUser()
        self.emails_status = 200

    async def __aenter__(self) -> FakeGitHubProvider:
        await self.start()
        return self

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/login/oauth/authorize", self._authorize)
        app.router.add_post("/login/oauth/access_token", self._token)
        app.router.add_get("/api/v3/user", self._user)
        app.router.add_get("/api/v3/user/emails", self._emails)

    def _identity_snapshot(self) -> FakeGitHubUser:
        user = self.user
        return FakeGitHubUser(
            id=user.id,
            login=user.login,
            name=user.name,
            email=user.email,
            emails=[GitHubEmail(e.email, e.primary, e.verified, e.visibility) for e in user.emails],
        )

    async def _token(self, request: web.Request) -> web.Response:
        grant, error, _status = await self._redeem(request)
        if grant is None:
            # GitHub reports token errors with HTTP 200 and an error field.
            body: dict[str, Any] = {
                "error": "incorrect_client_credentials"
                if error == "invalid_client"
                else "bad_verification_code",
                "error_description": "The code passed is incorrect or expired.",
            }
        else:
            body = {
                "access_token": self._issue_access_token(grant.subject, prefix="gho_"),
                "token_type": "bearer",
                "scope": "read:user,user:email",
            }
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response(body)
        return web.Response(text=urlencode(body), content_type="application/x-www-form-urlencoded")

    def _authorized_user(self, request: web.Request) -> FakeGitHubUser | None:
        if not request.headers.get("User-Agent"):
            return None  # GitHub's API refuses requests without a User-Agent
        user = self._bearer_subject(request)
        return user if isinstance(user, FakeGitHubUser) else None

    async def _user(self, request: web.Request) -> web.Response:
        user = self._authorized_user(request)
        if user is None:
            return web.json_response({"message": "Bad credentials"}, status=401)
        return web.json_response(
            {
                "login": user.login,
                "id": user.id,
                "name": user.name,
                "email": user.email,
                "type": "User",
            }
        )

    async def _emails(self, request: web.Request) -> web.Response:
        user = self._authorized_user(request)
        if user is None:
            return web.json_response({"message": "Bad credentials"}, status=401)
        if self.emails_status != 200:
            return web.json_response(
                {"message": "Resource not accessible by integration"}, status=self.emails_status
            )
        return web.json_response(
            [
                {
                    "email": e.email,
                    "primary": e.primary,
                    "verified": e.verified,
                    "visibility": e.visibility,
                }
                for e in user.emails
            ]
        )


def _s256(code_verifier: str) -> str:
    """The PKCE S256 challenge (RFC 7636 section 4.2), computed here on its own so the fake
    checks the client's rather than sharing its code."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _redirect(redirect_uri: str, **params: str | None) -> web.Response:
    """A 302 back to the client with `params` (those not None) added to its query."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return web.Response(status=302, headers={"Location": f"{redirect_uri}{separator}{query}"})


def _client_credentials(request: web.Request, form: Any) -> tuple[str, str]:
    """client_secret_basic (Authorization header) or client_secret_post (form fields)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return "", ""
        client_id, _, client_secret = decoded.partition(":")
        return client_id, client_secret
    return str(form.get("client_id", "")), str(form.get("client_secret", ""))
