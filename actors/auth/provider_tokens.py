"""The OpenID Connect provider's token endpoint and userinfo, a piece of the provider part
(provider.py): codes and refresh tokens exchanged for tokens, and the claims an app's
access token may read.

A code is spent under a row lock: the second exchange of one finds it used, revokes the
grant the first made (RFC 6749 4.1.2: its refresh tokens stop, userinfo refuses its access
tokens) and is refused. Refresh tokens rotate the same way, and a rotated one that comes
back ends its grant. Such refusals are raised after the commit, so the revocation sticks.
Nothing secret is logged: no code, verifier, secret or token.

Tokens are signed with the auth actor's ES256 keys. An app's access token says
`typ: oidc_access` and `aud: <client_id>`, so our own API (which reads `typ: access` only)
never accepts it.
"""

from __future__ import annotations

import hmac
from typing import Any

import structlog

from actors.auth.context import AuthContext, new_id
from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    REFRESH_TOKEN_SECONDS,
    TOKEN_TYPE_OIDC_ACCESS,
    ExchangeOidcCode,
    GetOidcUserInfo,
    InvalidToken,
    OidcInvalidClient,
    OidcInvalidGrant,
    OidcTokens,
    OidcUserInfo,
    RefreshOidcTokens,
)
from actors.auth.provider_rules import (
    narrowed_scopes,
    pkce_matches,
    scope_text,
    token_hash_claim,
    user_claims,
)
from actors.auth.store import grants as store
from actors.auth.store import user_by_id
from actors.auth.store.clients import ClientRow, client_by_id
from actors.auth.store.grants import GrantRow
from actors.auth.tokens import new_token, token_digest
from actors.runtime import Transaction

log = structlog.get_logger("actors.auth")

ID_TOKEN_SECONDS = ACCESS_TOKEN_SECONDS
# what each refusal of a code or refresh token says (never which secret was presented)
_REFUSALS = {
    "unknown": "The code or token is not valid for this client.",
    "expired": "The code or token has expired.",
    "reused": "This was already used; everything it gave was revoked.",
    "redirect_mismatch": "The redirect_uri is not the one the code was issued for.",
    "pkce_mismatch": "The code_verifier does not match the code_challenge.",
}


class OidcTokenIssuer:
    """Answers the token endpoint and userinfo for registered apps."""

    def __init__(self, context: AuthContext, *, issuer: str) -> None:
        self._context = context
        self._issuer = issuer

    # ── client authentication ─────────────────────────────────────────────────────

    async def authenticate(self, client_id: str, secret: str | None) -> ClientRow:
        """The client, when it proves itself: a confidential one by its secret; a public
        one sends none (PKCE binds its code). OidcInvalidClient otherwise."""
        client = await client_by_id(self._context.pool, client_id)
        if client is None:
            log.warning("oidc_client_unknown", client_id=client_id[:100])
            raise OidcInvalidClient("No client is registered under this client_id.")
        if client.secret_hash is None:
            if secret is not None:
                raise OidcInvalidClient("A public client sends no client secret.")
            return client
        if secret is None or not hmac.compare_digest(token_digest(secret), client.secret_hash):
            log.warning("oidc_client_secret_wrong", client_id=client.id)
            raise OidcInvalidClient("The client secret is missing or wrong.")
        return client

    # ── grant_type=authorization_code ─────────────────────────────────────────────

    async def exchange(self, message: ExchangeOidcCode) -> OidcTokens:
        client = await self.authenticate(message.client_id, message.client_secret)
        digest = token_digest(message.code)
        now = self._context.clock()
        outcome = "unknown"
        tokens: OidcTokens | None = None
        async with self._context.transaction() as tx:
            if tx.duplicate:  # a redelivery of this very exchange: its answer is gone
                raise OidcInvalidGrant(_REFUSALS["reused"])
            code = await store.code_for_update(tx, digest)
            if code is None or code.client_id != client.id:
                outcome = "unknown"
            elif code.used:
                if code.grant_id is not None:
                    await store.revoke_grant(tx, code.grant_id, now, "code_reused")
                outcome = "reused"
            elif code.expires_at <= now:
                outcome = "expired"
            elif code.redirect_uri != message.redirect_uri:
                outcome = "redirect_mismatch"
            elif not pkce_matches(message.code_verifier, code.code_challenge):
                # spent: a stolen code is not left for more guesses at its verifier
                await store.spend_code(tx, digest, None, now)
                outcome = "pkce_mismatch"
            else:
                grant = GrantRow(
                    id=new_id(),
                    client_id=client.id,
                    user_id=code.user_id,
                    scopes=code.scopes,
                    nonce=code.nonce,
                    auth_time=code.auth_time,
                    revoked=False,
                )
                tokens = await self._first_tokens(tx, digest, grant, now)
                outcome = "issued" if tokens is not None else "unknown"
        if tokens is None:
            self._refused("oidc_code_refused", outcome, client.id)
            raise OidcInvalidGrant(_REFUSALS[outcome])
        log.info("oidc_code_exchanged", client_id=client.id, scope=tokens.scope)
        return tokens

    async def _first_tokens(
        self, tx: Transaction, digest: bytes, grant: GrantRow, now: float
    ) -> OidcTokens | None:
        """The grant of a good code, stored, and its tokens; None if the user is gone."""
        user = await user_by_id(tx, grant.user_id)
        if user is None:
            return None
        await store.add_grant(
            tx,
            grant_id=grant.id,
            client_id=grant.client_id,
            user_id=grant.user_id,
            scopes=grant.scopes,
            nonce=grant.nonce,
            auth_time=grant.auth_time,
            now=now,
        )
        await store.spend_code(tx, digest, grant.id, now)
        refresh = await self._new_refresh_token(tx, grant, now)
        claims = user_claims(
            grant.scopes, name=user.name, email=user.email, email_verified=user.email_verified
        )
        return self._tokens(grant, grant.scopes, claims, now, refresh, nonce=grant.nonce)

    async def _new_refresh_token(self, tx: Transaction, grant: GrantRow, now: float) -> str | None:
        """A refresh token for the grant, only with offline_access."""
        if "offline_access" not in grant.scopes:
            return None
        token = new_token()
        await store.add_oidc_refresh_token(
            tx, token_digest(token), grant.id, now, now + REFRESH_TOKEN_SECONDS
        )
        return token

    # ── grant_type=refresh_token ──────────────────────────────────────────────────

    async def refresh(self, message: RefreshOidcTokens) -> OidcTokens:
        client = await self.authenticate(message.client_id, message.client_secret)
        digest = token_digest(message.refresh_token)
        now = self._context.clock()
        outcome = "unknown"
        tokens: OidcTokens | None = None
        async with self._context.transaction() as tx:
            if tx.duplicate:
                raise OidcInvalidGrant(_REFUSALS["reused"])
            found = await store.oidc_refresh_for_update(tx, digest)
            if found is None or found.grant.client_id != client.id or found.grant.revoked:
                outcome = "unknown"
            elif found.used:
                # a rotated token came back: it was copied. End the grant for everyone.
                await store.revoke_grant(tx, found.grant.id, now, "token_reused")
                outcome = "reused"
            elif found.expires_at <= now:
                outcome = "expired"
            else:
                scopes = narrowed_scopes(found.grant.scopes, message.scope)
                tokens = await self._rotated(tx, digest, found.grant, scopes, now)
        if tokens is None:
            self._refused("oidc_refresh_refused", outcome, client.id)
            raise OidcInvalidGrant(_REFUSALS[outcome])
        log.info("oidc_tokens_refreshed", client_id=client.id, scope=tokens.scope)
        return tokens

    async def _rotated(
        self,
        tx: Transaction,
        digest: bytes,
        grant: GrantRow,
        scopes: tuple[str, ...],
        now: float,
    ) -> OidcTokens | None:
        user = await user_by_id(tx, grant.user_id)
        if user is None:
            return None
        token = new_token()
        await store.rotate_oidc_refresh_token(
            tx,
            old_hash=digest,
            new_hash=token_digest(token),
            grant_id=grant.id,
            now=now,
            expires_at=now + REFRESH_TOKEN_SECONDS,
        )
        claims = user_claims(
            scopes, name=user.name, email=user.email, email_verified=user.email_verified
        )
        return self._tokens(grant, scopes, claims, now, token, nonce=None)

    # ── signing ───────────────────────────────────────────────────────────────────

    def _tokens(
        self,
        grant: GrantRow,
        scopes: list[str] | tuple[str, ...],
        claims: dict[str, Any],
        now: float,
        refresh_token: str | None,
        *,
        nonce: str | None,
    ) -> OidcTokens:
        issued = int(now)
        scope = scope_text(scopes)
        access_token = self._context.keys.sign_jwt(
            {
                "iss": self._issuer,
                "sub": grant.user_id,
                "aud": grant.client_id,
                "client_id": grant.client_id,
                "scope": scope,
                "gid": grant.id,
                "iat": issued,
                "exp": issued + ACCESS_TOKEN_SECONDS,
                "jti": new_id(),
                "typ": TOKEN_TYPE_OIDC_ACCESS,
            },
            typ="at+jwt",  # RFC 9068
        )
        id_claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": grant.user_id,
            "aud": grant.client_id,
            "azp": grant.client_id,
            "iat": issued,
            "exp": issued + ID_TOKEN_SECONDS,
            "auth_time": int(grant.auth_time),
            "at_hash": token_hash_claim(access_token),
            **claims,
        }
        if nonce:
            id_claims["nonce"] = nonce
        return OidcTokens(
            access_token=access_token,
            id_token=self._context.keys.sign_jwt(id_claims, typ="JWT"),
            expires_in=ACCESS_TOKEN_SECONDS,
            scope=scope,
            refresh_token=refresh_token,
        )

    @staticmethod
    def _refused(event: str, outcome: str, client_id: str) -> None:
        # a reuse or a wrong verifier is someone holding what they should not: a warning
        if outcome in ("reused", "pkce_mismatch"):
            log.warning(event, reason=outcome, client_id=client_id)
        else:
            log.info(event, reason=outcome, client_id=client_id)

    # ── userinfo ──────────────────────────────────────────────────────────────────

    async def userinfo(self, message: GetOidcUserInfo) -> OidcUserInfo:
        """The claims of the user the token names, by the scopes it carries (at most what
        its grant has); InvalidToken once the grant was revoked or the user is gone."""
        pool = self._context.pool
        grant = await store.grant_by_id(pool, message.grant_id)
        if (
            grant is None
            or grant.revoked
            or grant.user_id != message.user_id
            or grant.client_id != message.client_id
        ):
            raise InvalidToken("The access token was revoked.")
        user = await user_by_id(pool, grant.user_id)
        if user is None:
            raise InvalidToken("The access token's user is gone.")
        scopes = set(message.scopes) & set(grant.scopes)
        claims = user_claims(
            scopes, name=user.name, email=user.email, email_verified=user.email_verified
        )
        return OidcUserInfo(sub=user.id, **claims)
