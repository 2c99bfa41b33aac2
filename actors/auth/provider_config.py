"""Who the sign-in providers are: where each lives, who we are to it, and who it vouches for.

Plain data, no IO. `ProviderConfig` is made by its constructors: `discovered` (any OpenID
Connect issuer, its endpoints read later from its discovery document; `google` is one),
`github` and `facebook` (OAuth 2 with fixed endpoints). `ProviderIdentity` is what a
completed sign-in yields. `actors.auth.oauth` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

GOOGLE_ISSUER = "https://accounts.google.com"
GITHUB_BASE_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"
# Graph API versions live two years; the dialog, token and identity calls all name one.
FACEBOOK_API_VERSION = "v22.0"
FACEBOOK_DIALOG_URL = "https://www.facebook.com"
FACEBOOK_GRAPH_URL = "https://graph.facebook.com"

OIDC_SCOPES = ("openid", "email", "profile")
ProviderKind = Literal["oidc", "github", "facebook"]


@dataclass(frozen=True)
class ProviderConfig:
    """Where a provider lives and who we are to it.

    `kind` says how identities are read: `oidc` from a verified ID token (plus userinfo for
    missing claims), `github` from GitHub's REST API, `facebook` from the Graph API. With
    `discovery`, the endpoints and `jwks_url` are empty until `discovery.resolve` reads them
    from `{issuer}/.well-known/openid-configuration`. `display_name` is how people see it.
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
    kind: ProviderKind
    display_name: str = ""
    discovery: bool = False

    def __repr__(self) -> str:
        # The secret must not reach logs or tracebacks through a repr.
        return (
            f"ProviderConfig(name={self.name!r}, kind={self.kind!r}, "
            f"client_id={self.client_id!r}, authorize_url={self.authorize_url!r}, "
            f"issuer={self.issuer!r}, discovery={self.discovery!r})"
        )

    @property
    def label(self) -> str:
        """The name people see on buttons and in messages ("Google", "Acme SSO")."""
        return self.display_name or self.name.capitalize()

    @property
    def resolved(self) -> bool:
        """Whether the endpoints are known (always, unless they await discovery)."""
        return not self.discovery or bool(self.authorize_url)

    def with_endpoints(
        self, *, authorize_url: str, token_url: str, userinfo_url: str, jwks_url: str
    ) -> ProviderConfig:
        """This provider with the endpoints its discovery document names."""
        return replace(
            self,
            authorize_url=authorize_url,
            token_url=token_url,
            userinfo_url=userinfo_url,
            jwks_url=jwks_url,
        )

    @classmethod
    def discovered(
        cls,
        name: str,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        display_name: str = "",
        scopes: tuple[str, ...] = OIDC_SCOPES,
    ) -> ProviderConfig:
        """An OpenID Connect provider known by its issuer alone: the endpoints come from its
        discovery document at sign-in (`discovery.resolve`)."""
        return cls(
            name=name,
            client_id=client_id,
            client_secret=client_secret,
            authorize_url="",
            token_url="",
            userinfo_url="",
            jwks_url=None,
            # exactly as configured: the discovery document must name the same string (some
            # issuers end in '/')
            issuer=issuer,
            scopes=scopes,
            kind="oidc",
            display_name=display_name,
            discovery=True,
        )

    @classmethod
    def google(
        cls, client_id: str, client_secret: str, *, base_url: str | None = None
    ) -> ProviderConfig:
        """Google, by discovery of https://accounts.google.com — or of `base_url`, another
        issuer serving a discovery document there (`tests.support.oidc.FakeOidcProvider`)."""
        issuer = base_url.rstrip("/") if base_url else GOOGLE_ISSUER
        return cls.discovered("google", issuer, client_id, client_secret, display_name="Google")

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
            display_name="GitHub",
        )

    @classmethod
    def facebook(
        cls, client_id: str, client_secret: str, *, base_url: str | None = None
    ) -> ProviderConfig:
        """Facebook Login's manual flow: the dialog on www.facebook.com, the token and the
        person on graph.facebook.com — or both on `base_url` (the tests' fake)."""
        dialog = (base_url or FACEBOOK_DIALOG_URL).rstrip("/")
        graph = (base_url or FACEBOOK_GRAPH_URL).rstrip("/")
        version = FACEBOOK_API_VERSION
        return cls(
            name="facebook",
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=f"{dialog}/{version}/dialog/oauth",
            token_url=f"{graph}/{version}/oauth/access_token",
            userinfo_url=f"{graph}/{version}/me",
            jwks_url=None,
            issuer=None,
            scopes=("email", "public_profile"),
            kind="facebook",
            display_name="Facebook",
        )


@dataclass(frozen=True)
class ProviderIdentity:
    """A person as the provider vouches for them. `subject` is stable per provider (the
    account key); `email` is only to be trusted for account linking when `email_verified`."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
