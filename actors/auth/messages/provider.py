"""Sign in with splitgo: the OpenID Connect provider's commands, replies and errors
(registered apps, authorization requests, the token endpoint, userinfo, connected apps)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from actors.auth.messages.fields import AuthInput, TokenText, UrlText
from actors.runtime import DomainError, Message
from actors.runtime.bounds import Id

OIDC_CODE_SECONDS = 60  # an authorization code lives at most this long (RFC 6749 4.1.2)
TOKEN_TYPE_OIDC_ACCESS = "oidc_access"  # an app's access token: never one of our API's
# the scopes an app may ask for, in the order they are shown and stored
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
CLIENTS_MAX = 10  # redirect URIs one client registers (provider_rules.REDIRECT_URIS_MAX)
ClientIdText = Annotated[str, msgspec.Meta(max_length=100)]
ClientNameText = Annotated[str, msgspec.Meta(max_length=200)]
OAuthParam = Annotated[str, msgspec.Meta(max_length=1000)]  # scope, state, nonce, prompt…
OidcDecision = Literal["ask", "allow", "deny"]
OidcAction = Literal["redirect", "sign_in", "consent"]


class OidcClientView(Message, frozen=True):
    """A registered app: `public` ones have no secret and prove themselves by PKCE."""

    client_id: str
    name: str
    redirect_uris: list[str]
    public: bool
    created_at: str  # RFC 3339, UTC


class OidcClientList(Message, frozen=True):
    items: list[OidcClientView]


class NewOidcClient(Message, frozen=True):
    """A client just registered, with its secret: shown this once, stored as a digest."""

    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret",)

    client: OidcClientView
    client_secret: str | None = None  # None: a public client


class RegisterOidcClient(AuthInput, frozen=True):
    """An admin (`user_id`) registers an app that signs people in with splitgo."""

    user_id: Id
    name: ClientNameText
    redirect_uris: Annotated[list[UrlText], msgspec.Meta(max_length=CLIENTS_MAX)]
    public: bool = False


class ListOidcClients(AuthInput, frozen=True):
    """Every registered app, newest first."""


class DeleteOidcClient(AuthInput, frozen=True):
    """Remove an app: its consents, codes, grants and refresh tokens go with it."""

    client_id: ClientIdText


class AuthorizeOidcRequest(AuthInput, frozen=True):
    """An authorization request (GET /oauth2/authorize) as the browser brought it, with
    who is signed in (None: nobody) and what they decided on the consent page.

    Replies OidcAuthorization; an unknown client or an unregistered redirect URI raises
    OidcRequestRefused (shown on our own page: never sent to that URI)."""

    client_id: ClientIdText
    redirect_uri: UrlText
    response_type: OAuthParam = ""
    scope: OAuthParam = ""
    state: OAuthParam = ""
    nonce: OAuthParam = ""
    code_challenge: OAuthParam = ""
    code_challenge_method: OAuthParam = ""
    prompt: OAuthParam = ""
    max_age: OAuthParam = ""
    # the marker of a sign-in auth demanded (prompt=login, max_age), brought back from it
    reauth: OAuthParam = ""
    user_id: Id | None = None
    session_id: Id | None = None
    decision: OidcDecision = "ask"


class OidcAuthorization(Message, frozen=True):
    """What to do with the browser: `redirect` to `url` (the app's, with a code or an
    error), `sign_in` first, or show the `consent` page for `client_name` and `scopes`."""

    secret_fields: ClassVar[tuple[str, ...]] = ("url",)

    action: OidcAction
    url: str = ""
    client_name: str = ""
    scopes: list[str] = []
    # with `sign_in`: the request must come back with this as its `reauth`, and the sign-in
    # page show its form even to a signed-in person (prompt=login, max_age)
    reauth: str | None = None


class ExchangeOidcCode(AuthInput, frozen=True):
    """grant_type=authorization_code; `client_secret` None for a public client."""

    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret", "code", "code_verifier")

    client_id: ClientIdText
    code: TokenText
    redirect_uri: UrlText
    code_verifier: OAuthParam
    client_secret: TokenText | None = None


class RefreshOidcTokens(AuthInput, frozen=True):
    """grant_type=refresh_token: the token is spent, a new one comes back."""

    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret", "refresh_token")

    client_id: ClientIdText
    refresh_token: TokenText
    scope: OAuthParam | None = None
    client_secret: TokenText | None = None


class OidcTokens(Message, frozen=True):
    """The token endpoint's answer."""

    secret_fields: ClassVar[tuple[str, ...]] = ("access_token", "id_token", "refresh_token")

    access_token: str
    id_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    token_type: str = "Bearer"


class GetOidcUserInfo(AuthInput, frozen=True):
    """The userinfo claims an app's access token (already verified at the edge) may see:
    refused (InvalidToken) once its grant was revoked."""

    user_id: Id
    client_id: ClientIdText
    grant_id: Id
    scopes: Annotated[list[OAuthParam], msgspec.Meta(max_length=10)]


class OidcUserInfo(Message, frozen=True):
    """Claims by scope: `name` with profile, `email` and `email_verified` with email."""

    sub: str
    name: str | None = None
    email: str | None = None
    email_verified: bool | None = None


class ListConnectedApps(AuthInput, frozen=True):
    """The apps this user allowed to sign them in."""

    user_id: Id


class ConnectedApp(Message, frozen=True):
    client_id: str
    name: str
    scopes: list[str]
    since: str  # RFC 3339, UTC: when they first allowed it


class ConnectedApps(Message, frozen=True):
    items: list[ConnectedApp]


class RevokeConnectedApp(AuthInput, frozen=True):
    """Forget the user's consent to this app and end every grant it holds for them."""

    user_id: Id
    client_id: ClientIdText


class OidcError(DomainError):
    """An OAuth 2.0 refusal; `details["error"]` is RFC 6749's word for it
    (invalid_request, invalid_scope, unsupported_grant_type, ...)."""

    code = "oidc_error"
    category = "invalid"

    @property
    def error(self) -> str:
        return str(self.details.get("error", "invalid_request"))


class OidcInvalidGrant(OidcError):
    """The code or refresh token is unknown, spent, expired, another client's, or its
    PKCE verifier or redirect URI does not match."""

    code = "oidc_invalid_grant"

    @property
    def error(self) -> str:
        return "invalid_grant"


class OidcInvalidClient(OidcError):
    """The client is unknown, or its secret is missing or wrong."""

    code = "oidc_invalid_client"
    category = "unauthenticated"

    @property
    def error(self) -> str:
        return "invalid_client"


class OidcRequestRefused(DomainError):
    """An authorization request we cannot answer to the app: its client is unknown or its
    redirect URI is not registered, so the refusal is shown on our own page."""

    code = "oidc_request_refused"
    category = "invalid"


class OidcClientNotFound(DomainError):
    code = "oidc_client_not_found"
    category = "not_found"


class ConnectedAppNotFound(DomainError):
    code = "connected_app_not_found"
    category = "not_found"
