"""GitHub sign-in: who signed in, read from GitHub's REST API with the access token.

GitHub's OAuth apps speak plain OAuth 2 (no ID token): the user comes from `/user`, and
their email from `/user/emails`, trusted only when GitHub marks it primary and verified.
"""

from __future__ import annotations

import aiohttp

from actors.auth import provider_http
from actors.auth.messages import OAuthFailed
from actors.auth.provider_config import ProviderConfig, ProviderIdentity


async def github_identity(
    provider: ProviderConfig, access_token: str, *, http: aiohttp.ClientSession
) -> ProviderIdentity:
    """The GitHub user, with their primary email only if GitHub has verified it."""
    user = await provider_http.get_json(
        provider.name, "user", provider.userinfo_url, http=http, token=access_token
    )
    user_id = user.get("id") if isinstance(user, dict) else None
    if user_id is None or isinstance(user_id, bool):
        raise OAuthFailed(f"{provider.name} did not say who signed in")
    email: str | None = None
    email_verified = False
    try:
        emails = await provider_http.get_json(
            provider.name,
            "emails",
            f"{provider.userinfo_url}/emails",
            http=http,
            token=access_token,
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
