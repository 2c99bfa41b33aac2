"""Facebook sign-in: who signed in, read from the Graph API with the access token.

Facebook Login's web flow is plain OAuth 2 (no ID token; its OpenID Connect "Limited Login"
is for its mobile SDKs): the browser goes to the dialog with our state and an S256 PKCE
challenge (the manual flow accepts `code_challenge`), the code buys an access token, and
`/me?fields=id,name,email` says who it is. Every Graph call carries `appsecret_proof`, the
HMAC-SHA256 of the access token keyed with the app secret, as Facebook recommends: with
"Require App Secret" on, a token stolen from elsewhere is useless without our secret.

The subject is Facebook's app-scoped user id (stable for this app, different in others).
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

from actors.auth import provider_http
from actors.auth.messages import OAuthFailed
from actors.auth.provider_config import ProviderConfig, ProviderIdentity

IDENTITY_FIELDS = "id,name,email"


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the access token keyed with the app secret, in lowercase hex (Graph API,
    "Securing Requests")."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


async def facebook_identity(
    provider: ProviderConfig, access_token: str, *, http: aiohttp.ClientSession
) -> ProviderIdentity:
    """The person behind the access token, by their app-scoped id."""
    person = await provider_http.get_json(
        provider.name,
        "profile",
        provider.userinfo_url,
        http=http,
        token=access_token,
        params={
            "fields": IDENTITY_FIELDS,
            "appsecret_proof": appsecret_proof(access_token, provider.client_secret),
        },
    )
    subject = person.get("id") if isinstance(person, dict) else None
    if not isinstance(subject, str) or not subject:
        raise OAuthFailed(f"{provider.name} did not say who signed in")
    email = person.get("email")
    name = person.get("name")
    has_email = isinstance(email, str) and bool(email)
    return ProviderIdentity(
        provider=provider.name,
        subject=subject,
        email=email if has_email else None,
        # Facebook returns `email` only when the person has confirmed that address (the
        # Graph API leaves the field out when no valid address is available); Supabase Auth
        # treats it as verified too. An unconfirmed address never reaches us.
        email_verified=has_email,
        name=name if isinstance(name, str) and name else None,
    )
