"""splitgo as an OpenID Connect provider, through the real auth actor on PostgreSQL: apps,
the authorization request and consent, codes, refresh tokens, userinfo, revocation.

The harness is the auth actor's own (test_auth_actor.running: two shards, codec on, a
fake clock)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from actors.auth.messages import (
    REFRESH_TOKEN_SECONDS,
    TOKEN_TYPE_OIDC_ACCESS,
    AuthorizeOidcRequest,
    ConnectedApps,
    DeleteOidcClient,
    EmailVerificationRequested,
    ExchangeOidcCode,
    GetOidcUserInfo,
    InvalidField,
    InvalidToken,
    ListConnectedApps,
    ListOidcClients,
    NewOidcClient,
    OidcAuthorization,
    OidcClientList,
    OidcClientNotFound,
    OidcInvalidClient,
    OidcInvalidGrant,
    OidcRequestRefused,
    OidcTokens,
    OidcUserInfo,
    RefreshOidcTokens,
    RegisterOidcClient,
    RevokeConnectedApp,
    VerifyEmail,
)
from actors.auth.store.grants import prune_oidc
from tests.integration.test_auth_actor import (
    KEYS,
    PUBLIC_URL,
    Harness,
    claims_of,
    running,
)

pytestmark = pytest.mark.integration

APP_REDIRECT = "https://app.example/callback"


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    async with running(pool) as made:
        yield made


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Person:
    """A signed-in user and the session their browser holds."""

    def __init__(self, user_id: str, session_id: str) -> None:
        self.user_id = user_id
        self.session_id = session_id


async def signed_in(harness: Harness, email: str = "alice@example.com") -> Person:
    user = await harness.register(email=email)
    claims = claims_of(harness, await harness.login(email=email))
    return Person(user.id, claims.sid)


async def new_app(harness: Harness, admin: Person, *, public: bool = False) -> NewOidcClient:
    created: NewOidcClient = await harness.ask(
        RegisterOidcClient(
            user_id=admin.user_id,
            name="Ride Share",
            redirect_uris=[APP_REDIRECT, "http://localhost:8000/cb"],
            public=public,
        )
    )
    return created


async def authorize(
    harness: Harness,
    client_id: str,
    person: Person | None,
    challenge: str,
    **overrides: Any,
) -> OidcAuthorization:
    fields: dict[str, Any] = {
        "client_id": client_id,
        "redirect_uri": APP_REDIRECT,
        "response_type": "code",
        "scope": "openid profile email offline_access",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "user_id": person.user_id if person else None,
        "session_id": person.session_id if person else None,
    }
    fields.update(overrides)
    outcome: OidcAuthorization = await harness.ask(AuthorizeOidcRequest(**fields))
    return outcome


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


async def code_for(
    harness: Harness, client_id: str, person: Person, **overrides: Any
) -> tuple[str, str]:
    """(code, verifier) after the person allowed the app."""
    verifier, challenge = pkce()
    outcome = await authorize(harness, client_id, person, challenge, decision="allow", **overrides)
    assert outcome.action == "redirect"
    return query_of(outcome.url)["code"], verifier


async def exchange(
    harness: Harness, app: NewOidcClient, code: str, verifier: str, **overrides: Any
) -> OidcTokens:
    fields: dict[str, Any] = {
        "client_id": app.client.client_id,
        "client_secret": app.client_secret,
        "code": code,
        "redirect_uri": APP_REDIRECT,
        "code_verifier": verifier,
    }
    fields.update(overrides)
    tokens: OidcTokens = await harness.ask(ExchangeOidcCode(**fields))
    return tokens


def id_claims(token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(KEYS.public_jwks())  # type: ignore[arg-type]
    return dict(jwt.decode(token, keys, algorithms=["ES256"]).claims)


async def userinfo(harness: Harness, tokens: OidcTokens, client_id: str) -> OidcUserInfo:
    claims = KEYS.verifier().verify_jwt(
        tokens.access_token, typ=TOKEN_TYPE_OIDC_ACCESS, audience=client_id, now=harness.clock.now
    )
    info: OidcUserInfo = await harness.ask(
        GetOidcUserInfo(
            user_id=claims["sub"],
            client_id=claims["aud"],
            grant_id=claims["gid"],
            scopes=claims["scope"].split(),
        )
    )
    return info


# ── registered apps ──────────────────────────────────────────────────────────────────


async def test_a_confidential_app_gets_a_secret_kept_only_as_a_digest(harness: Harness) -> None:
    """Registering an app answers its client id and secret once; the database holds only
    the secret's digest, and the list shows the app without it."""
    admin = await signed_in(harness)
    app = await new_app(harness, admin)
    assert app.client_secret
    assert not app.client.public
    stored = await harness.pool.fetchval("SELECT secret_hash FROM oidc_clients")
    assert bytes(stored) == hashlib.sha256(app.client_secret.encode()).digest()
    listed: OidcClientList = await harness.ask(ListOidcClients())
    assert [c.client_id for c in listed.items] == [app.client.client_id]
    public = await new_app(harness, admin, public=True)
    assert public.client_secret is None
    assert public.client.public


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/cb",
        "https://app.example/cb#frag",
        "app.example/cb",
        "https://u:p@a.example/",
    ],
)
async def test_a_redirect_uri_that_is_not_https_or_exact_is_refused(
    harness: Harness, uri: str
) -> None:
    """Plain http off localhost, a fragment, a relative URI or user info is refused,
    naming the URI's field, and registers nothing."""
    admin = await signed_in(harness)
    with pytest.raises(InvalidField) as refused:
        await harness.ask(RegisterOidcClient(user_id=admin.user_id, name="X", redirect_uris=[uri]))
    assert refused.value.details["field"] == "$.redirect_uris[0]"
    assert await harness.pool.fetchval("SELECT count(*) FROM oidc_clients") == 0


# ── the authorization request ───────────────────────────────────────────────────────


async def test_an_unknown_client_or_unregistered_redirect_uri_is_refused_here(
    harness: Harness,
) -> None:
    """An unknown client id, or a redirect URI differing from the registered ones by even a
    trailing slash, raises OidcRequestRefused (our page) instead of redirecting there."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    _, challenge = pkce()
    with pytest.raises(OidcRequestRefused):
        await authorize(harness, "sg_nobody", person, challenge)
    for uri in (APP_REDIRECT + "/", "https://evil.example/callback", APP_REDIRECT + "?x=1"):
        with pytest.raises(OidcRequestRefused):
            await authorize(harness, app.client.client_id, person, challenge, redirect_uri=uri)
    assert await harness.pool.fetchval("SELECT count(*) FROM oidc_codes") == 0


async def test_signed_out_goes_to_sign_in_then_consent_then_a_code(harness: Harness) -> None:
    """Nobody signed in: sign_in; signed in: the consent page with the app's name and
    scopes; allowed: a redirect with the code, the state and the issuer."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    _, challenge = pkce()
    first = await authorize(harness, app.client.client_id, None, challenge)
    assert first.action == "sign_in"
    second = await authorize(harness, app.client.client_id, person, challenge)
    assert (second.action, second.client_name) == ("consent", "Ride Share")
    assert second.scopes == ["openid", "profile", "email", "offline_access"]
    third = await authorize(harness, app.client.client_id, person, challenge, decision="allow")
    assert third.action == "redirect"
    assert third.url.startswith(APP_REDIRECT + "?")
    query = query_of(third.url)
    assert query["state"] == "state-1"
    assert query["iss"] == PUBLIC_URL
    assert len(query["code"]) > 40


async def test_consent_is_remembered_unless_prompt_consent(harness: Harness) -> None:
    """A second request for the same (or fewer) scopes skips the consent page; more
    scopes or prompt=consent ask again; prompt=none answers consent_required instead."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    _, challenge = pkce()
    client_id = app.client.client_id
    await authorize(harness, client_id, person, challenge, scope="openid email", decision="allow")
    again = await authorize(harness, client_id, person, challenge, scope="openid")
    assert again.action == "redirect"
    assert "code" in query_of(again.url)
    assert (
        await authorize(harness, client_id, person, challenge, scope="openid profile")
    ).action == "consent"
    forced = await authorize(
        harness, client_id, person, challenge, scope="openid", prompt="consent"
    )
    assert forced.action == "consent"
    silent = await authorize(
        harness, client_id, person, challenge, scope="openid profile", prompt="none"
    )
    assert query_of(silent.url)["error"] == "consent_required"


async def test_errors_go_back_to_the_registered_redirect_uri(harness: Harness) -> None:
    """A missing PKCE challenge, plain PKCE, no openid scope, another response type, or a
    denial redirect to the app with the RFC 6749 error and the state."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    _, challenge = pkce()
    client_id = app.client.client_id
    cases = [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"scope": "profile email"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"decision": "deny"}, "access_denied"),
    ]
    for overrides, error in cases:
        outcome = await authorize(harness, client_id, person, challenge, **overrides)
        assert outcome.action == "redirect"
        assert outcome.url.startswith(APP_REDIRECT)
        query = query_of(outcome.url)
        assert (query["error"], query["state"]) == (error, "state-1"), overrides
    assert await harness.pool.fetchval("SELECT count(*) FROM oidc_codes") == 0


# ── the token endpoint ──────────────────────────────────────────────────────────────


async def test_a_code_buys_tokens_with_the_right_claims(harness: Harness) -> None:
    """The exchange answers an ES256 ID token for this client (iss, sub, aud, nonce,
    auth_time, name and email by scope), an app access token our API refuses, and a
    refresh token (offline_access); userinfo gives the same claims."""
    person = await signed_in(harness)
    await harness.ask(VerifyEmail(token=(await harness.mail(EmailVerificationRequested)).token))
    app = await new_app(harness, person)
    code, verifier = await code_for(harness, app.client.client_id, person)
    tokens = await exchange(harness, app, code, verifier)
    assert tokens.refresh_token
    assert tokens.scope == "openid profile email offline_access"
    claims = id_claims(tokens.id_token)
    assert claims["iss"] == PUBLIC_URL
    assert claims["sub"] == person.user_id
    assert claims["aud"] == app.client.client_id
    assert claims["nonce"] == "nonce-1"
    assert (claims["name"], claims["email"], claims["email_verified"]) == (
        "Alice",
        "alice@example.com",
        True,
    )
    assert claims["exp"] > claims["iat"]
    assert claims["auth_time"] <= claims["iat"]
    with pytest.raises(InvalidToken):  # never accepted by our own API
        KEYS.verifier().verify(tokens.access_token, now=harness.clock.now)
    info = await userinfo(harness, tokens, app.client.client_id)
    assert (info.sub, info.name, info.email, info.email_verified) == (
        person.user_id,
        "Alice",
        "alice@example.com",
        True,
    )


async def test_claims_follow_the_granted_scopes(harness: Harness) -> None:
    """With scope openid alone: no name, no email, no refresh token."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    code, verifier = await code_for(harness, app.client.client_id, person, scope="openid")
    tokens = await exchange(harness, app, code, verifier)
    assert tokens.refresh_token is None
    claims = id_claims(tokens.id_token)
    assert "name" not in claims
    assert "email" not in claims
    info = await userinfo(harness, tokens, app.client.client_id)
    assert (info.name, info.email) == (None, None)


async def test_a_reused_code_is_refused_and_revokes_what_it_gave(harness: Harness) -> None:
    """The second exchange of a code is invalid_grant, and the first exchange's refresh
    token and access token stop working."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    code, verifier = await code_for(harness, app.client.client_id, person)
    tokens = await exchange(harness, app, code, verifier)
    with pytest.raises(OidcInvalidGrant):
        await exchange(harness, app, code, verifier)
    assert tokens.refresh_token is not None
    with pytest.raises(OidcInvalidGrant):
        await harness.ask(
            RefreshOidcTokens(
                client_id=app.client.client_id,
                client_secret=app.client_secret,
                refresh_token=tokens.refresh_token,
            )
        )
    with pytest.raises(InvalidToken):
        await userinfo(harness, tokens, app.client.client_id)


async def test_a_wrong_verifier_redirect_uri_or_late_code_is_invalid_grant(
    harness: Harness,
) -> None:
    """A PKCE verifier that is not the challenge's (which also spends the code), another
    redirect URI, or a code older than 60 seconds is invalid_grant."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    client_id = app.client.client_id
    code, verifier = await code_for(harness, client_id, person)
    with pytest.raises(OidcInvalidGrant, match="code_verifier"):
        await exchange(harness, app, code, pkce()[0])
    with pytest.raises(OidcInvalidGrant):  # spent by the wrong guess
        await exchange(harness, app, code, verifier)
    code, verifier = await code_for(harness, client_id, person)
    with pytest.raises(OidcInvalidGrant, match="redirect_uri"):
        await exchange(harness, app, code, verifier, redirect_uri="http://localhost:8000/cb")
    code, verifier = await code_for(harness, client_id, person)
    harness.clock.advance(61)
    with pytest.raises(OidcInvalidGrant, match="expired"):
        await exchange(harness, app, code, verifier)


async def test_client_authentication(harness: Harness) -> None:
    """A wrong or missing secret, or an unknown client, is invalid_client (the code stays
    usable); a public client exchanges with PKCE alone and may not send a secret."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    code, verifier = await code_for(harness, app.client.client_id, person)
    for secret in ("wrong-secret", None):
        with pytest.raises(OidcInvalidClient):
            await exchange(harness, app, code, verifier, client_secret=secret)
    with pytest.raises(OidcInvalidClient):
        await exchange(harness, app, code, verifier, client_id="sg_nobody")
    assert (await exchange(harness, app, code, verifier)).access_token
    public = await new_app(harness, person, public=True)
    code, verifier = await code_for(harness, public.client.client_id, person)
    with pytest.raises(OidcInvalidClient):
        await exchange(harness, public, code, verifier, client_secret="anything")
    assert (await exchange(harness, public, code, verifier)).id_token


async def test_refresh_tokens_rotate_and_a_reused_one_ends_the_grant(harness: Harness) -> None:
    """A refresh answers new tokens and a new refresh token; presenting the old one again
    is invalid_grant and ends the grant, so the new one stops working too."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    code, verifier = await code_for(harness, app.client.client_id, person)
    first = await exchange(harness, app, code, verifier)
    assert first.refresh_token is not None

    def refresh(token: str, scope: str | None = None) -> RefreshOidcTokens:
        return RefreshOidcTokens(
            client_id=app.client.client_id,
            client_secret=app.client_secret,
            refresh_token=token,
            scope=scope,
        )

    second: OidcTokens = await harness.ask(refresh(first.refresh_token, "openid email"))
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.scope == "openid email"
    assert id_claims(second.id_token)["sub"] == person.user_id
    with pytest.raises(OidcInvalidGrant, match="already used"):
        await harness.ask(refresh(first.refresh_token))
    assert second.refresh_token is not None
    with pytest.raises(OidcInvalidGrant):
        await harness.ask(refresh(second.refresh_token))


async def test_revoking_an_app_forgets_consent_and_ends_its_tokens(harness: Harness) -> None:
    """Connected apps lists the app with its scopes; revoking it ends its refresh tokens
    and access tokens, empties the list, and the next sign-in asks again."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    client_id = app.client.client_id
    code, verifier = await code_for(harness, client_id, person)
    tokens = await exchange(harness, app, code, verifier)
    listed: ConnectedApps = await harness.ask(ListConnectedApps(user_id=person.user_id))
    assert [(a.client_id, a.name) for a in listed.items] == [(client_id, "Ride Share")]
    assert listed.items[0].scopes == ["openid", "profile", "email", "offline_access"]
    await harness.ask(RevokeConnectedApp(user_id=person.user_id, client_id=client_id))
    assert tokens.refresh_token is not None
    with pytest.raises(OidcInvalidGrant):
        await harness.ask(
            RefreshOidcTokens(
                client_id=client_id,
                client_secret=app.client_secret,
                refresh_token=tokens.refresh_token,
            )
        )
    with pytest.raises(InvalidToken):
        await userinfo(harness, tokens, client_id)
    assert (await harness.ask(ListConnectedApps(user_id=person.user_id))).items == []
    assert (await authorize(harness, client_id, person, pkce()[1])).action == "consent"


async def test_removing_an_app_removes_everything_it_was_granted(harness: Harness) -> None:
    """Deleting a client deletes its consents, codes and grants; deleting it again is
    OidcClientNotFound."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    code, verifier = await code_for(harness, app.client.client_id, person)
    await exchange(harness, app, code, verifier)
    await harness.ask(DeleteOidcClient(client_id=app.client.client_id))
    for table in ("oidc_consents", "oidc_codes", "oidc_grants", "oidc_refresh_tokens"):
        assert await harness.pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    with pytest.raises(OidcClientNotFound):
        await harness.ask(DeleteOidcClient(client_id=app.client.client_id))


async def test_pruning_drops_expired_codes_and_refresh_tokens(harness: Harness) -> None:
    """Codes an hour past their expiry and expired refresh tokens are deleted; live ones
    stay."""
    person = await signed_in(harness)
    app = await new_app(harness, person)
    code, verifier = await code_for(harness, app.client.client_id, person)
    await exchange(harness, app, code, verifier)
    await code_for(harness, app.client.client_id, person)
    assert await prune_oidc(harness.pool, harness.clock.now, 3600.0) == 0
    harness.clock.advance(REFRESH_TOKEN_SECONDS + 1)
    assert await prune_oidc(harness.pool, harness.clock.now, 3600.0) == 3
    for table in ("oidc_codes", "oidc_refresh_tokens"):
        assert await harness.pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table
