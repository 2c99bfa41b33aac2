"""Sign-in and sessions, a feature part of the auth actor: login (with its lockouts),
refresh-token rotation, logout, and a user's list of sessions.

A session is one family of refresh tokens. Each refresh rotates the token under row locks,
so two shards racing on the same token cannot both win; a rotated token that comes back was
copied, and ends its whole family.

Every way a session ends (logout, revoking it, refresh-token reuse here; a password reset,
an email claimed by a social login elsewhere) publishes SessionsRevoked in the transaction
that ends it (`publish_revoked`): every node's HTTP edge then refuses the session's access
tokens, which would otherwise live on for up to 15 minutes. An edge that starts, or whose
broadcast reconnects, loads what it may have missed with ListRevokedSessions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from actors.auth import store
from actors.auth.context import AuthContext, new_id
from actors.auth.limits import KeyKind, Lockout
from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    REFRESH_TOKEN_SECONDS,
    REVOCATION_SECONDS,
    REVOKED_SESSIONS_MAX,
    InvalidCredentials,
    InvalidToken,
    ListRevokedSessions,
    ListSessions,
    Login,
    Logout,
    MfaChallenge,
    Refresh,
    RevokedSession,
    RevokedSessions,
    RevokeSession,
    SessionList,
    SessionNotFound,
    SessionsRevoked,
    SessionView,
    TokenPair,
    TokenReused,
    TooManyAttempts,
)
from actors.auth.mfa import second_step
from actors.auth.passwords import MAX_LENGTH
from actors.auth.profiles import sessions_changing
from actors.auth.rules import IP_MAX, USER_AGENT_MAX, clip, login_email
from actors.auth.store import UserRow
from actors.auth.tokens import new_token, token_digest
from actors.runtime import Transaction, rfc3339

log = structlog.get_logger("actors.auth")

PASSWORD_AMR = ("pwd",)  # RFC 8176: signed in with a password


async def publish_revoked(
    tx: Transaction, user_id: str, session_ids: list[str], reason: str, now: float
) -> None:
    """Tell every node's edge (with the revocation, in its transaction) that these sessions
    ended; nothing when none did. The shard that keeps the user's sessions forgets them."""
    if session_ids:
        await sessions_changing(tx, user_id)
        await tx.publish(
            SessionsRevoked(
                user_id=user_id,
                session_ids=session_ids,
                reason=reason,
                expires_at=now + REVOCATION_SECONDS,
            )
        )


class Sessions:
    """Signs users in and keeps their sessions: one refresh-token family each."""

    def __init__(self, context: AuthContext) -> None:
        self._context = context

    async def login(self, message: Login) -> TokenPair | MfaChallenge:
        """A new session for the right email and password, unless the email or the
        address is locked out; an MfaChallenge instead when the user has a second factor."""
        context, limits = self._context, self._context.limits
        email = login_email(message.email)
        ip = clip(message.ip, IP_MAX)
        email_key = limits.key("email", email)
        ip_key = limits.key("ip", ip) if ip else None
        now = context.clock()
        held = await store.lockouts(context.pool, [k for k in (email_key, ip_key) if k])
        retry_after = limits.retry_after(held.values(), now)
        if retry_after is not None:
            log.warning("login_locked_out", email=email, ip=ip, retry_after=retry_after)
            raise TooManyAttempts(
                f"Too many failed sign-ins. Try again in {retry_after} seconds.",
                details={"retry_after": retry_after},
            )
        user = await store.user_by_email(context.pool, email)
        password = message.password
        # an unknown email or an absurd password still costs one verification (no timing
        # difference), and counts as a failure
        stored = user.password_hash if user is not None and len(password) <= MAX_LENGTH else None
        verified = await context.passwords.verify(stored, password[:MAX_LENGTH])
        if not verified or user is None or stored is None:
            await self._record_failure(email, ip, held, context.clock())
            log.info("login_failed", email=email, ip=ip, known=user is not None)
            raise InvalidCredentials("The email or password is wrong.")
        if context.passwords.needs_rehash(stored):
            # parameters went up since this hash was made: upgrade it while we know the password
            fresh = await context.passwords.hash(password)
            await store.set_password(
                context.pool, user.id, fresh, context.clock(), replacing=stored
            )
        now = context.clock()
        async with context.transaction(dedupe=False) as tx:
            await store.forget_email_failures(tx, email, email_key)
            # a second factor first, when the user has one: a challenge, no session yet
            challenge = await second_step(
                tx, user.id, amr=PASSWORD_AMR, ip=ip, user_agent=message.user_agent, now=now
            )
            if challenge is not None:
                log.info("login_needs_second_factor", user_id=user.id, ip=ip)
                return challenge
            pair, session_id = await self.open(
                tx, user, message.user_agent, ip, now, amr=PASSWORD_AMR
            )
        log.info("login_succeeded", user_id=user.id, session_id=session_id, ip=ip)
        return pair

    async def _record_failure(
        self, email: str, ip: str | None, held: Mapping[str, Lockout], now: float
    ) -> None:
        """Count the failure; lock the email (or address) out when it passes its threshold."""
        limits = self._context.limits
        async with self._context.transaction(dedupe=False) as tx:
            await store.record_failure(tx, email, ip, now)
            previous = held.get(limits.key("email", email))
            since = limits.counting_since(previous, now)
            failures = await store.failures_for_email(tx, email, since)
            await self._lock_out_if_tripped(tx, "email", email, failures, previous, now)
            if ip:
                previous = held.get(limits.key("ip", ip))
                since = limits.counting_since(previous, now)
                failures = await store.failures_for_ip(tx, ip, since)
                await self._lock_out_if_tripped(tx, "ip", ip, failures, previous, now)

    async def _lock_out_if_tripped(
        self,
        tx: Transaction,
        kind: KeyKind,
        value: str,
        failures: int,
        previous: Lockout | None,
        now: float,
    ) -> None:
        limits = self._context.limits
        if not limits.tripped(kind, failures):
            return
        lockout = limits.next_lockout(previous, now)
        await store.set_lockout(tx, limits.key(kind, value), lockout, now)
        log.warning(
            "login_lockout",
            key=kind,
            count=lockout.count,
            seconds=round(lockout.until - now),
            **{kind: value},
        )

    async def open(
        self,
        tx: Transaction,
        user: UserRow,
        user_agent: str | None,
        ip: str | None,
        now: float,
        *,
        amr: Sequence[str] = (),
    ) -> tuple[TokenPair, str]:
        """A new session (a new refresh-token family) and its first token pair; `amr` says
        how it was signed in (RFC 8176), in each of its access tokens, refreshed ones too."""
        session_id = new_id()
        refresh_token = new_token()
        await sessions_changing(tx, user.id)
        await store.open_session(
            tx,
            session_id=session_id,
            user_id=user.id,
            user_agent=clip(user_agent, USER_AGENT_MAX),
            ip=clip(ip, IP_MAX),
            token_hash=token_digest(refresh_token),
            now=now,
            expires_at=now + REFRESH_TOKEN_SECONDS,
            amr=amr,
        )
        return self._pair(user, session_id, refresh_token, now, amr), session_id

    def _pair(
        self,
        user: UserRow,
        session_id: str,
        refresh_token: str,
        now: float,
        amr: Sequence[str] = (),
    ) -> TokenPair:
        access_token = self._context.keys.issue_access_token(
            user_id=user.id, roles=user.roles, session_id=session_id, now=now, amr=amr
        )
        return TokenPair(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=ACCESS_TOKEN_SECONDS,
        )

    async def refresh(self, message: Refresh) -> TokenPair:
        """A new token pair for a live refresh token, which is spent; a spent one ends its
        session (TokenReused)."""
        digest = token_digest(message.refresh_token)
        now = self._context.clock()
        outcome = "invalid"
        pair: TokenPair | None = None
        session_id: str | None = None
        # deduplicated: a redelivery of this very message (a node died after the commit)
        # must not look like reuse and revoke the session
        async with self._context.transaction() as tx:
            if tx.duplicate:
                raise InvalidToken("This refresh token was already exchanged.")
            found = await store.refresh_token_for_update(tx, digest)
            if found is not None and not found.session_revoked:
                session_id = found.session_id
                if found.used:
                    # a rotated token came back: it was copied. End the whole family, so
                    # neither the thief nor the owner holds a working token any more.
                    if await store.revoke_session(tx, found.session_id, now, "reuse"):
                        await publish_revoked(tx, found.user_id, [found.session_id], "reuse", now)
                    outcome = "reused"
                elif found.expires_at > now:
                    pair = await self._rotate(tx, message, digest, found, now)
        # raised after the commit: the revocation of a reused family must stick
        if outcome == "reused":
            log.warning("refresh_token_reused", session_id=session_id, ip=message.ip)
            raise TokenReused(
                "This refresh token was already used; the session is revoked. Sign in again."
            )
        if pair is None:
            raise InvalidToken("The refresh token is invalid, expired or revoked.")
        log.info("session_refreshed", session_id=session_id)
        return pair

    async def _rotate(
        self,
        tx: Transaction,
        message: Refresh,
        digest: bytes,
        found: store.RefreshRow,
        now: float,
    ) -> TokenPair | None:
        """Spend the presented token and issue its successor; None if the user is gone."""
        user = await store.user_by_id(tx, found.user_id)
        if user is None:
            return None
        refresh_token = new_token()
        await sessions_changing(tx, found.user_id)
        await store.rotate_refresh_token(
            tx,
            old_hash=digest,
            new_hash=token_digest(refresh_token),
            session_id=found.session_id,
            now=now,
            expires_at=now + REFRESH_TOKEN_SECONDS,
            user_agent=clip(message.user_agent, USER_AGENT_MAX),
            ip=clip(message.ip, IP_MAX),
        )
        return self._pair(user, found.session_id, refresh_token, now, found.amr)

    async def logout(self, message: Logout) -> None:
        """End the session of this refresh token (any token of its family names it)."""
        found = await store.session_of_refresh_token(
            self._context.pool, token_digest(message.refresh_token)
        )
        if found is None:
            raise InvalidToken("The refresh token is not valid.")
        session_id, user_id = found
        now = self._context.clock()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return None
            # logging out twice is still a logout (the second revokes nothing)
            if await store.revoke_session(tx, session_id, now, "logout"):
                await publish_revoked(tx, user_id, [session_id], "logout", now)
        log.info("logged_out", user_id=user_id, session_id=session_id)
        return None

    async def live(self, message: ListSessions) -> SessionList:
        """The user's live sessions, most recently used first (kept by the user's shard)."""
        hot = self._context.profiles.sessions
        rows = await hot.live(message.user_id, self._context.clock())
        return SessionList(
            items=[
                SessionView(
                    id=row.id,
                    created_at=rfc3339(row.created_at, timespec="seconds"),
                    last_used_at=rfc3339(row.last_used_at, timespec="seconds"),
                    user_agent=row.user_agent,
                )
                for row in rows
            ]
        )

    async def revoke(self, message: RevokeSession) -> None:
        """End one of the user's own live sessions."""
        now = self._context.clock()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return None
            if not await store.revoke_user_session(tx, message.user_id, message.session_id, now):
                # raised inside: nothing is kept, so a redelivery is refused alike
                raise SessionNotFound("No such session.")
            await publish_revoked(tx, message.user_id, [message.session_id], "revoked", now)
        log.info("session_revoked", user_id=message.user_id, session_id=message.session_id)
        return None

    async def revoked_lately(self, message: ListRevokedSessions) -> RevokedSessions:
        """The sessions revoked since `message.since` whose access tokens may still be
        alive, newest first, each with when its last token has expired."""
        limit = max(1, min(message.limit, REVOKED_SESSIONS_MAX))
        # a session revoked before that has no live access token left: nothing to refuse
        since = max(message.since, self._context.clock() - REVOCATION_SECONDS)
        rows = await store.revoked_since(self._context.pool, since, limit + 1)
        return RevokedSessions(
            items=[
                RevokedSession(session_id=session_id, expires_at=revoked_at + REVOCATION_SECONDS)
                for session_id, revoked_at in rows[:limit]
            ],
            truncated=len(rows) > limit,
        )
