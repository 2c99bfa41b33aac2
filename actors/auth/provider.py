"""splitgo as an OpenID Connect provider ("Sign in with splitgo"), a feature part of the
auth actor: registered apps, the authorization request and consent, connected apps; the
token endpoint and userinfo are its piece `tokens` (provider_tokens.py).

An authorization request names a registered client and one of its redirect URIs, exactly;
otherwise it is refused on our own page (OidcRequestRefused), never sent anywhere. Every
other problem goes back to that redirect URI as RFC 6749 4.1.2.1 says. PKCE with S256 is
required of every client. A person who allowed an app these scopes once is not asked
again (unless the app says prompt=consent); the code that comes back lives 60 seconds.
The rules are pure, in provider_rules.py.

prompt=login, or a sign-in older than `max_age` seconds, sends the person through the
sign-in page again before anything else (prompt=none: `login_required` instead). The answer
carries a marker (`reauth`, MACed with a key derived from the signing seeds) that the
request brings back from the sign-in: a session opened at or after the marker's time is
fresh enough, and its opening time is the ID token's `auth_time`.
"""

from __future__ import annotations

import secrets

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from actors.auth.context import AuthContext
from actors.auth.messages import (
    OIDC_CODE_SECONDS,
    AuthorizeOidcRequest,
    ConnectedApp,
    ConnectedAppNotFound,
    ConnectedApps,
    DeleteOidcClient,
    ListConnectedApps,
    ListOidcClients,
    NewOidcClient,
    OidcAuthorization,
    OidcClientList,
    OidcClientNotFound,
    OidcClientView,
    OidcError,
    OidcRequestRefused,
    RegisterOidcClient,
    RevokeConnectedApp,
)
from actors.auth.provider_rules import (
    check_challenge,
    check_client_name,
    check_registered_uris,
    code_redirect,
    consent_covers,
    error_redirect,
    parse_max_age,
    parse_prompt,
    parse_scopes,
    reauth_marker,
    reauth_since,
    redirect_uri_registered,
    sign_in_too_old,
)
from actors.auth.provider_tokens import OidcTokenIssuer
from actors.auth.store import clients as client_store
from actors.auth.store import grants as grant_store
from actors.auth.store.clients import ClientRow
from actors.auth.tokens import new_token, token_digest
from actors.runtime import rfc3339

log = structlog.get_logger("actors.auth")

UNKNOWN_CLIENT = (
    "No app is registered with splitgo under this client id, so we stopped here. "
    "Go back to the app and tell its makers."
)
UNREGISTERED_REDIRECT = (
    "The app asked to send you back to an address it has not registered with splitgo, so "
    "we stopped here. Go back to the app and tell its makers."
)


def reauth_key(kid: str, seed: bytes) -> bytes:
    """The MAC key of reauth markers a signing seed stands for (not the signing key: its
    own `info`)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=kid.encode(), info=b"splitgo oidc reauth v1"
    ).derive(seed)


def client_view(client: ClientRow) -> OidcClientView:
    return OidcClientView(
        client_id=client.id,
        name=client.name,
        redirect_uris=list(client.redirect_uris),
        public=client.secret_hash is None,
        created_at=rfc3339(client.created_at, timespec="seconds"),
    )


class OidcProvider:
    """Registers apps, answers authorization requests, and keeps people's consents."""

    def __init__(self, context: AuthContext, *, public_url: str) -> None:
        """`public_url` is the issuer: the node's address as apps reach it."""
        self._context = context
        self._issuer = public_url.rstrip("/")
        self.tokens = OidcTokenIssuer(context, issuer=self._issuer)
        keys = context.keys
        # the signing seed's key makes markers; every listed seed's checks them
        self._reauth_keys = [
            reauth_key(kid, keys.keys[kid])
            for kid in (keys.current, *(kid for kid in keys.keys if kid != keys.current))
        ]

    async def prune(self) -> int:
        """Drop expired codes and refresh tokens (called with the actor's pruning)."""
        return await grant_store.prune_oidc(self._context.pool, self._context.clock(), 3600.0)

    # ── registered apps ───────────────────────────────────────────────────────────

    async def register_client(self, message: RegisterOidcClient) -> NewOidcClient:
        """A new app with its client id, and a secret unless it is public."""
        name = check_client_name(message.name)
        uris = check_registered_uris(message.redirect_uris)
        secret = None if message.public else new_token()
        client = await client_store.add_client(
            self._context.pool,
            client_id=f"sg_{secrets.token_urlsafe(16)}",
            name=name,
            secret_hash=token_digest(secret) if secret is not None else None,
            redirect_uris=uris,
            created_by=message.user_id,
            now=self._context.clock(),
        )
        log.info(
            "oidc_client_registered",
            client_id=client.id,
            by=message.user_id,
            public=message.public,
        )
        return NewOidcClient(client=client_view(client), client_secret=secret)

    async def list_clients(self, message: ListOidcClients) -> OidcClientList:
        found = await client_store.clients(self._context.pool)
        return OidcClientList(items=[client_view(client) for client in found])

    async def delete_client(self, message: DeleteOidcClient) -> None:
        if not await client_store.delete_client(self._context.pool, message.client_id):
            raise OidcClientNotFound("No app is registered under this client id.")
        log.info("oidc_client_deleted", client_id=message.client_id)

    # ── the authorization request ─────────────────────────────────────────────────

    async def authorize(self, message: AuthorizeOidcRequest) -> OidcAuthorization:
        """Where the browser goes next; see the module's docstring."""
        client = await client_store.client_by_id(self._context.pool, message.client_id)
        if client is None:
            log.warning("oidc_authorize_unknown_client")
            raise OidcRequestRefused(UNKNOWN_CLIENT)
        if not redirect_uri_registered(client.redirect_uris, message.redirect_uri):
            log.warning("oidc_authorize_redirect_uri_unregistered", client_id=client.id)
            raise OidcRequestRefused(UNREGISTERED_REDIRECT)
        try:
            return await self._answer(client, message)
        except OidcError as error:
            log.info("oidc_authorize_refused", client_id=client.id, error=error.error)
            url = error_redirect(
                message.redirect_uri, error.error, error.message, message.state, self._issuer
            )
            return OidcAuthorization(action="redirect", url=url)

    async def _answer(self, client: ClientRow, message: AuthorizeOidcRequest) -> OidcAuthorization:
        if message.response_type != "code":
            raise OidcError(
                "Only response_type=code is supported.",
                details={"error": "unsupported_response_type"},
            )
        scopes = parse_scopes(message.scope)
        challenge = check_challenge(message.code_challenge, message.code_challenge_method)
        prompt = parse_prompt(message.prompt)
        max_age = parse_max_age(message.max_age)
        auth_time = await self._signed_in_at(message)
        if auth_time is None or not self._fresh(client, message, prompt, max_age, auth_time):
            if "none" in prompt:
                raise OidcError("Nobody is signed in.", details={"error": "login_required"})
            marker = None
            if "login" in prompt or max_age is not None:
                marker = reauth_marker(self._reauth_keys[0], client.id, self._context.clock())
                log.info("oidc_sign_in_demanded", client_id=client.id, user_id=message.user_id)
            return OidcAuthorization(action="sign_in", client_name=client.name, reauth=marker)
        assert message.user_id is not None  # _signed_in_at found their session
        if message.decision == "deny":
            log.info("oidc_consent_denied", client_id=client.id, user_id=message.user_id)
            raise OidcError("The person did not allow it.", details={"error": "access_denied"})
        if message.decision == "ask":
            consented = await client_store.consented_scopes(
                self._context.pool, message.user_id, client.id
            )
            if "consent" in prompt or not consent_covers(consented, scopes):
                if "none" in prompt:
                    raise OidcError(
                        "The person has not allowed this yet.",
                        details={"error": "consent_required"},
                    )
                return OidcAuthorization(
                    action="consent", client_name=client.name, scopes=list(scopes)
                )
        code = await self._issue_code(client, message, scopes, challenge, auth_time)
        url = code_redirect(message.redirect_uri, code, message.state, self._issuer)
        return OidcAuthorization(action="redirect", url=url, client_name=client.name)

    def _fresh(
        self,
        client: ClientRow,
        message: AuthorizeOidcRequest,
        prompt: frozenset[str],
        max_age: int | None,
        auth_time: float,
    ) -> bool:
        """Whether a sign-in at `auth_time` is new enough: always, unless prompt=login or
        max_age ask for a newer one; then when it is no older than the request's marker."""
        now = self._context.clock()
        if not sign_in_too_old(prompt, max_age, auth_time, now):
            return True
        if not message.reauth:
            return False
        since = reauth_since(self._reauth_keys, client.id, message.reauth, now)
        return since is not None and auth_time >= since

    async def _signed_in_at(self, message: AuthorizeOidcRequest) -> float | None:
        """When the person asking signed in to the session they are using; None when
        nobody is signed in (or that session ended)."""
        if message.user_id is None or message.session_id is None:
            return None
        return await grant_store.session_signed_in_at(
            self._context.pool, message.user_id, message.session_id, self._context.clock()
        )

    async def _issue_code(
        self,
        client: ClientRow,
        message: AuthorizeOidcRequest,
        scopes: tuple[str, ...],
        challenge: str,
        auth_time: float,
    ) -> str:
        """A code bound to the client, redirect URI and challenge (and the consent, when
        just given, remembered in the same commit)."""
        assert message.user_id is not None
        code = new_token()
        now = self._context.clock()
        # not deduplicated: a redelivered request gets a code of its own (the first's is
        # unknown to anyone and expires within the minute)
        async with self._context.transaction(dedupe=False) as tx:
            if message.decision == "allow":
                await client_store.remember_consent(tx, message.user_id, client.id, scopes, now)
            await grant_store.add_code(
                tx,
                code_hash=token_digest(code),
                client_id=client.id,
                user_id=message.user_id,
                redirect_uri=message.redirect_uri,
                scopes=scopes,
                code_challenge=challenge,
                nonce=message.nonce or None,
                auth_time=auth_time,
                now=now,
                expires_at=now + OIDC_CODE_SECONDS,
            )
        log.info(
            "oidc_code_issued",
            client_id=client.id,
            user_id=message.user_id,
            scope=" ".join(scopes),
            consented=message.decision == "allow",
        )
        return code

    # ── connected apps ────────────────────────────────────────────────────────────

    async def connected_apps(self, message: ListConnectedApps) -> ConnectedApps:
        found = await client_store.consents(self._context.pool, message.user_id)
        return ConnectedApps(
            items=[
                ConnectedApp(
                    client_id=row.client_id,
                    name=row.name,
                    scopes=list(row.scopes),
                    since=rfc3339(row.created_at, timespec="seconds"),
                )
                for row in found
            ]
        )

    async def revoke_app(self, message: RevokeConnectedApp) -> None:
        """Forget the consent and end every grant (so every refresh token) the app holds
        for this user."""
        now = self._context.clock()
        async with self._context.transaction(dedupe=False) as tx:
            had = await client_store.forget_consent(tx, message.user_id, message.client_id)
            ended = await grant_store.revoke_user_grants(
                tx, message.user_id, message.client_id, now
            )
        if not had and not ended:
            raise ConnectedAppNotFound("You have not connected this app.")
        log.info(
            "oidc_app_revoked", client_id=message.client_id, user_id=message.user_id, grants=ended
        )
