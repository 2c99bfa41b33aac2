"""Social login, a feature part of the auth actor: OAuth users.

The browser is sent to a provider with a state (a single-use token), comes back with a code,
and the code buys the provider's word on who this is (`actors/auth/oauth.py` speaks to the
provider). That identity signs into the account it is linked to, or is linked to the account
with its (verified) email, or makes a new account.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Protocol, cast

import aiohttp
import structlog

from actors.auth import store
from actors.auth.accounts import Accounts
from actors.auth.context import AuthContext, new_id
from actors.auth.messages import (
    EmailVerified,
    FinishOAuth,
    InvalidField,
    MfaChallenge,
    OAuthFailed,
    OAuthRedirect,
    StartOAuth,
    TokenPair,
    UnknownProvider,
    normalise_email,
)
from actors.auth.mfa import second_step
from actors.auth.oauth import (
    AuthorizationRequest,
    ProviderConfig,
    ProviderIdentity,
    resolve_provider,
)
from actors.auth.rules import check_redirect_uri, name_from_provider
from actors.auth.sessions import Sessions, publish_revoked
from actors.auth.store import UserRow
from actors.auth.store import mfa as mfa_store
from actors.auth.tokens import token_digest
from actors.runtime import DomainError, Transaction

log = structlog.get_logger("actors.auth")

OAUTH_STATE_SECONDS = 10 * 60


class OAuthFlow(Protocol):
    """The two functions of actors/auth/oauth.py (the module itself is the default; tests
    give a fake)."""

    def authorization_request(
        self, provider: ProviderConfig, redirect_uri: str
    ) -> AuthorizationRequest: ...

    async def complete_authorization(
        self,
        provider: ProviderConfig,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        nonce: str | None,
        http: aiohttp.ClientSession,
    ) -> ProviderIdentity: ...


class Social:
    """Signs users in through the configured providers, linking or creating accounts."""

    def __init__(
        self,
        context: AuthContext,
        *,
        accounts: Accounts,
        sessions: Sessions,
        flow: OAuthFlow,
        providers: Mapping[str, ProviderConfig],
        http: aiohttp.ClientSession | None,
        public_url: str,
    ) -> None:
        """`http` is the node's client session; without one, an own one is made on first
        use (and closed by `close`). `public_url` is where redirect URIs must point."""
        self._context = context
        self._accounts = accounts
        self._sessions = sessions
        self._flow = flow
        self._providers = dict(providers)
        self._http = http
        self._own_http: aiohttp.ClientSession | None = None
        self._public_url = public_url.rstrip("/")

    async def close(self) -> None:
        """Close the client session this part made, if any."""
        if self._own_http is not None:
            with contextlib.suppress(Exception):
                await self._own_http.close()
            self._own_http = None

    async def start(self, message: StartOAuth) -> OAuthRedirect:
        """Where to send the browser; its state is kept for ten minutes."""
        provider = self._provider(message.provider)
        check_redirect_uri(message.redirect_uri, self._public_url)
        # a provider known by its issuer learns its endpoints from its discovery document
        provider = await resolve_provider(provider, http=self._http_session())
        request = self._flow.authorization_request(provider, message.redirect_uri)
        now = self._context.clock()
        await store.add_one_time_token(
            self._context.pool,
            token_hash=token_digest(request.state),
            purpose="oauth_state",
            user_id=None,
            data={
                "provider": message.provider,
                "code_verifier": request.code_verifier,
                "nonce": request.nonce,
                "redirect_uri": message.redirect_uri,
            },
            now=now,
            expires_at=now + OAUTH_STATE_SECONDS,
        )
        log.info("oauth_started", provider=message.provider)
        return OAuthRedirect(url=request.url)

    async def finish(self, message: FinishOAuth) -> TokenPair | MfaChallenge:
        """A new session for the identity the provider vouches for (an MfaChallenge first
        when the account has a second factor)."""
        provider = self._provider(message.provider)
        # spent first, in its own commit: a state works once even if what follows fails
        spent = await store.consume_one_time_token(
            self._context.pool, token_digest(message.state), "oauth_state", self._context.clock()
        )
        if (
            spent is None
            or spent.data.get("provider") != message.provider
            or spent.data.get("redirect_uri") != message.redirect_uri
        ):
            log.warning("oauth_state_mismatch", provider=message.provider)
            raise OAuthFailed("The sign-in state does not match; start the sign-in again.")
        identity = await self._complete(provider, message, spent.data)
        if identity.provider != message.provider or not identity.subject:
            raise OAuthFailed("The provider's answer does not name an account.")
        try:
            email = normalise_email(identity.email) if identity.email else None
        except InvalidField:
            email = None
        now = self._context.clock()
        profiles = self._context.profiles
        pair: TokenPair | None = None
        async with self._context.transaction() as tx:
            if tx.duplicate:
                raise OAuthFailed("This sign-in was already completed; start again.")
            user, how = await self._user_for(tx, identity, email, now)
            if how == "linked":  # it may have taken the account over: its keeper forgets it
                await profiles.changing(tx, user.id)
            challenge = await second_step(
                tx, user.id, amr=(), ip=message.ip, user_agent=message.user_agent, now=now
            )
            if challenge is None:
                pair, session_id = await self._sessions.open(
                    tx, user, message.user_agent, message.ip, now
                )
        if how == "linked":
            await profiles.wrote(user.id)
        if challenge is not None:
            log.info("oauth_needs_second_factor", provider=message.provider, user_id=user.id)
            return challenge
        assert pair is not None
        log.info(
            "oauth_signed_in",
            provider=message.provider,
            user_id=user.id,
            session_id=session_id,
            how=how,
        )
        return pair

    async def _complete(
        self, provider: ProviderConfig, message: FinishOAuth, state: Mapping[str, Any]
    ) -> ProviderIdentity:
        """Exchange the code at the provider; every failure there is an OAuthFailed."""
        try:
            return await self._flow.complete_authorization(
                provider,
                code=message.code,
                redirect_uri=message.redirect_uri,
                code_verifier=str(state.get("code_verifier") or ""),
                nonce=cast(str | None, state.get("nonce")),
                http=self._http_session(),
            )
        except DomainError:
            raise
        except Exception as error:
            # the state is spent, so a retry of this message could not succeed anyway
            log.warning(
                "oauth_provider_failed",
                provider=message.provider,
                error=f"{type(error).__name__}: {error}",
            )
            raise OAuthFailed(
                "The sign-in provider could not be reached or answered badly."
            ) from None

    async def _user_for(
        self, tx: Transaction, identity: ProviderIdentity, email: str | None, now: float
    ) -> tuple[UserRow, str]:
        """The account this provider identity signs into, linking or creating it."""
        user_id = await store.identity_user(tx, identity.provider, identity.subject)
        if user_id is not None:
            known = await store.user_by_id(tx, user_id)
            if known is None:
                raise OAuthFailed("The linked account no longer exists.")
            return known, "identity"
        existing = await store.user_by_email(tx, email) if email else None
        if existing is not None:
            return await self._link(tx, identity, existing, email, now), "linked"
        if email is None:
            raise OAuthFailed("The provider did not share an email address; allow it and retry.")
        return await self._create(tx, identity, email, now), "created"

    async def _link(
        self,
        tx: Transaction,
        identity: ProviderIdentity,
        existing: UserRow,
        email: str | None,
        now: float,
    ) -> UserRow:
        """Link the identity to the account with its email, if the provider vouches for it."""
        if not identity.email_verified:
            # the provider does not vouch for this address: linking would hand the
            # account to whoever typed it in at the provider
            log.warning("oauth_unverified_email_refused", provider=identity.provider)
            raise OAuthFailed(
                "An account with this email exists, but the provider has not verified "
                "the address. Sign in with your password instead."
            )
        if not existing.email_verified:
            # The provider proved who owns the address; whoever registered it here never
            # did. Their password and sessions end, so a squatter cannot keep a way in
            # (account pre-hijacking). The real owner can set a password by reset.
            await store.secure_takeover(tx, existing.id, now)
            # nor a second factor they set up: it would lock the real owner out
            await mfa_store.disable_totp(tx, existing.id)
            revoked = await store.revoke_user_sessions(tx, existing.id, now, "email_claimed")
            await publish_revoked(tx, existing.id, revoked, "email_claimed", now)
            await tx.publish(EmailVerified(user_id=existing.id, email=existing.email))
            refreshed = await store.user_by_id(tx, existing.id)
            existing = refreshed or existing
        await store.link_identity(
            tx,
            provider=identity.provider,
            subject=identity.subject,
            user_id=existing.id,
            email=email,
            now=now,
        )
        return existing

    async def _create(
        self, tx: Transaction, identity: ProviderIdentity, email: str, now: float
    ) -> UserRow:
        """A new account for this identity, welcomed like any other."""
        created = await store.insert_user(
            tx,
            user_id=new_id(),
            email=email,
            name=name_from_provider(identity.name, email),
            password_hash=None,  # no password until the owner sets one by reset
            email_verified=identity.email_verified,
            roles=["user"],
            now=now,
        )
        if created is None:  # a sign-up took the address a moment ago
            raise OAuthFailed("An account with this email was just created; try again.")
        await store.link_identity(
            tx,
            provider=identity.provider,
            subject=identity.subject,
            user_id=created.id,
            email=email,
            now=now,
        )
        await self._accounts.welcome(tx, created, now)
        if created.email_verified:
            # the provider vouched for the address: as good as a spent verification link
            # (an invitation to it joins now)
            await tx.publish(EmailVerified(user_id=created.id, email=created.email))
        return created

    def _provider(self, name: str) -> ProviderConfig:
        provider = self._providers.get(name)
        if provider is None:
            raise UnknownProvider(f"No sign-in provider named {name!r} is configured.")
        return provider

    def _http_session(self) -> aiohttp.ClientSession:
        if self._http is not None:
            return self._http
        if self._own_http is None or self._own_http.closed:
            self._own_http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._own_http
