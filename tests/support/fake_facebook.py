"""A fake Facebook Login the tests run themselves: a real HTTP server on 127.0.0.1.

It plays the manual login flow the way `ProviderConfig.facebook(..., base_url=fake.url)`
reaches it: the dialog `/{version}/dialog/oauth` signs the configured person in at once and
redirects back with a code; `/{version}/oauth/access_token` checks the app secret, the code
(single use, bound to its redirect URI) and, when a challenge was sent, the PKCE verifier,
answering errors in the Graph API's shape (`{"error": {"message", "type", "code"}}`);
`/{version}/me` answers the asked `fields` of the person behind a bearer token — only with a
matching `appsecret_proof` (as an app with "Require App Secret" on).

Switches for the unhappy paths come from the shared base (`deny`, `fail_token`,
`token_delay`); `person` is who signs in (`email=None`: no confirmed address).

    async with FakeFacebook() as facebook:
        config = ProviderConfig.facebook(facebook.client_id, facebook.client_secret,
                                         base_url=facebook.url)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from actors.auth.provider_config import FACEBOOK_API_VERSION
from tests.support.oidc import FakeProvider


@dataclass
class FakeFacebookPerson:
    """Who the fake signs in: the app-scoped id, the name, the confirmed email if any."""

    id: str = "10220000000000001"
    name: str | None = "Ada Lovelace"
    email: str | None = "ada@example.com"


@dataclass(frozen=True)
class MeRequest:
    """What one `/me` request asked for, and whether its proof matched."""

    fields: str
    proof_matched: bool


class FakeFacebook(FakeProvider):
    """A fake Facebook Login dialog, token endpoint and Graph `/me`; see the module
    docstring."""

    require_pkce = False  # Facebook accepts PKCE but does not insist on it

    def __init__(
        self,
        *,
        client_id: str = "test-facebook-app",
        client_secret: str = "test-facebook-secret",
        redirect_uris: tuple[str, ...] | None = None,
        version: str = FACEBOOK_API_VERSION,
    ) -> None:
        super().__init__(
            client_id=client_id, client_secret=client_secret, redirect_uris=redirect_uris
        )
        self.version = version
        self.person = FakeFacebookPerson()
        self.me_requests: list[MeRequest] = []

    async def __aenter__(self) -> FakeFacebook:
        await self.start()
        return self

    def _routes(self, app: web.Application) -> None:
        app.router.add_get(f"/{self.version}/dialog/oauth", self._authorize)
        app.router.add_post(f"/{self.version}/oauth/access_token", self._token)
        app.router.add_get(f"/{self.version}/me", self._me)

    def _identity_snapshot(self) -> FakeFacebookPerson:
        return replace(self.person)

    async def _token(self, request: web.Request) -> web.Response:
        grant, error, status = await self._redeem(request)
        if grant is None:
            return _graph_error(
                f"Error validating the request ({error})", kind="OAuthException", status=status
            )
        return web.json_response(
            {
                "access_token": self._issue_access_token(grant.subject, prefix="EAAB"),
                "token_type": "bearer",
                "expires_in": 5_183_944,  # about 60 days, as Facebook's long-lived tokens
            }
        )

    async def _me(self, request: web.Request) -> web.Response:
        person = self._bearer_subject(request)
        if not isinstance(person, FakeFacebookPerson):
            return _graph_error("Invalid OAuth access token.", kind="OAuthException", code=190)
        token = request.headers["Authorization"].partition(" ")[2].strip()
        expected = hmac.new(self.client_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        proof = request.query.get("appsecret_proof", "")
        matched = secrets.compare_digest(proof.encode(), expected.encode())
        fields = request.query.get("fields", "id,name")
        self.me_requests.append(MeRequest(fields=fields, proof_matched=matched))
        if not matched:
            return _graph_error(
                "Invalid appsecret_proof provided in the API argument",
                kind="GraphMethodException",
            )
        known: dict[str, Any] = {"id": person.id, "name": person.name, "email": person.email}
        body = {
            name: known[name]
            for name in fields.split(",")
            if known.get(name) is not None  # like Facebook: no confirmed email, no field
        }
        body["id"] = person.id
        return web.json_response(body)


def _graph_error(message: str, *, kind: str, code: int = 100, status: int = 400) -> web.Response:
    """An error in the Graph API's shape."""
    return web.json_response(
        {
            "error": {
                "message": message,
                "type": kind,
                "code": code,
                "fbtrace_id": secrets.token_hex(8),
            }
        },
        status=status,
    )
