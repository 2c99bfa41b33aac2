"""The auth actor: accounts, passwords, sessions and tokens, social login, roles.

One handler per command of `messages.py`. The actor holds no state between messages: every
fact is in its tables (store.py), so any number of shards can serve it, on any node.
Single-use tokens are spent by one conditional UPDATE and refresh tokens are rotated under
row locks, so two shards racing on the same token cannot both win.

What other actors must hear goes through the reliable hand-off (`self.transaction()` and
`tx.tell`), committed with the change that caused it:

- to the notifier (`notifications`): EmailVerificationRequested (sign-up), PasswordReset-
  Requested (forgot password), PasswordChanged (reset);
- to whoever subscribed (the `subscribers` constructor argument): UserRegistered,
  EmailVerified, TelegramLinked.

Slow or blocking work (argon2, zxcvbn) runs in worker threads, and never while a database
transaction is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import structlog

from actors.auth import oauth as oauth_module
from actors.auth import store
from actors.auth.limits import Lockout, LoginLimits
from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    REFRESH_TOKEN_SECONDS,
    ConfirmPhone,
    ConsumeTelegramLink,
    Contacts,
    CreateTelegramLink,
    EmailTaken,
    EmailVerificationRequested,
    EmailVerified,
    FindUserByChat,
    FindUserByEmail,
    FinishOAuth,
    ForgotPassword,
    GetContacts,
    GetUser,
    GrantRole,
    InvalidCredentials,
    InvalidField,
    InvalidToken,
    ListSessions,
    Login,
    Logout,
    MakeAdmin,
    OAuthFailed,
    OAuthRedirect,
    PasswordChanged,
    PasswordResetRequested,
    Refresh,
    Register,
    ResetPassword,
    RevokeSession,
    SessionList,
    SessionNotFound,
    SessionView,
    StartOAuth,
    TelegramLink,
    TelegramLinked,
    TelegramNotConfigured,
    TokenPair,
    TokenReused,
    TooManyAttempts,
    UnknownProvider,
    UpdateUser,
    UserNotFound,
    UserRegistered,
    UserView,
    VerifyEmail,
)
from actors.auth.oauth import AuthorizationRequest, ProviderConfig, ProviderIdentity
from actors.auth.passwords import MAX_LENGTH, Passwords, check_password, user_inputs
from actors.auth.store import UserRow
from actors.auth.tokens import SigningKeys, new_token, token_digest
from actors.runtime import Actor, DomainError, Message, Transaction, handles

log = structlog.get_logger("actors.auth")

VERIFY_EMAIL_SECONDS = 48 * 3600
RESET_PASSWORD_SECONDS = 3600
TELEGRAM_LINK_SECONDS = 10 * 60
OAUTH_STATE_SECONDS = 10 * 60
# reset mails per account per hour: more would let anyone flood someone's inbox
RESET_MAILS_PER_HOUR = 5
ROLES = ("user", "driver", "admin")
NAME_MAX = 100
EMAIL_MAX = 254
_USER_AGENT_MAX = 512
_IP_MAX = 64

# Deliberately simple: one @, no spaces, a dot in the domain. The real check is the
# verification mail; a stricter pattern only refuses real addresses.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


# ── the social login module, as this actor uses it ─────────────────────────────────────


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


# ── input rules (the HTTP edge checks these too; the actor trusts no caller) ───────────


def normalise_email(raw: str) -> str:
    """The address stripped and lower-cased; InvalidField ($.email) unless it looks real."""
    email = raw.strip().lower()
    if not email:
        raise InvalidField("An email address is required.", details={"field": "$.email"})
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        raise InvalidField("This is not a valid email address.", details={"field": "$.email"})
    return email


def normalise_name(raw: str, field: str = "$.name") -> str:
    """The name stripped; InvalidField unless 1..100 characters with no control characters."""
    name = " ".join(raw.split())
    if not name:
        raise InvalidField("A name is required.", details={"field": field})
    if len(name) > NAME_MAX:
        raise InvalidField(f"A name has at most {NAME_MAX} characters.", details={"field": field})
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in name):
        raise InvalidField("A name cannot contain control characters.", details={"field": field})
    return name


def normalise_phone(raw: str) -> str | None:
    """An E.164 number (+491701234567), separators removed; "" clears it (None)."""
    phone = _PHONE_SEPARATORS.sub("", raw.strip())
    if not phone:
        return None
    if not _PHONE.match(phone):
        raise InvalidField(
            "A phone number is written in international form, like +491701234567.",
            details={"field": "$.phone"},
        )
    return phone


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second: 2024-05-01T12:00:00Z."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def user_view(user: UserRow) -> UserView:
    return UserView(
        id=user.id,
        email=user.email,
        name=user.name,
        email_verified=user.email_verified,
        roles=list(user.roles),
        telegram_linked=user.telegram_chat_id is not None,
        created_at=rfc3339(user.created_at),
        phone=user.phone,
        phone_verified=user.phone_verified,
    )


def _clip(text: str | None, limit: int) -> str | None:
    return text[:limit] if text else None


def _new_id() -> str:
    return str(uuid.uuid4())


class Auth(Actor):
    """Accounts and sign-in: one handler per command; all state lives in PostgreSQL."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        keys: SigningKeys,
        *,
        providers: Mapping[str, ProviderConfig] | None = None,
        http: aiohttp.ClientSession | None = None,
        bot_username: str = "",
        public_url: str = "",
        subscribers: Mapping[type[Message], Sequence[str]] | None = None,
        notifier: str | None = "notifications",
        passwords: Passwords | None = None,
        limits: LoginLimits | None = None,
        oauth: OAuthFlow | None = None,
        clock: Callable[[], float] = time.time,
        prune_interval: float = 600.0,
    ) -> None:
        """`subscribers` maps an event type (UserRegistered, EmailVerified, TelegramLinked)
        to the actor types that hear it; `notifier` is the actor that mails (None: nobody).
        `oauth` defaults to the actors.auth.oauth module; `clock` gives epoch seconds.
        Share one `passwords` between shards to cap concurrent hashing node-wide."""
        self._pool = pool
        self._keys = keys
        self._providers = dict(providers or {})
        self._http = http
        self._own_http: aiohttp.ClientSession | None = None
        self._bot_username = bot_username.lstrip("@")
        self._public_url = public_url.rstrip("/")
        self._subscribers = {kind: tuple(names) for kind, names in (subscribers or {}).items()}
        self._notifier = notifier
        self._passwords = passwords or Passwords()
        self._limits = limits or LoginLimits()
        self._oauth: OAuthFlow = oauth if oauth is not None else oauth_module
        self._clock = clock
        self._prune_interval = prune_interval

    # ── lifecycle ──────────────────────────────────────────────────────────────────────

    async def on_start(self) -> None:
        # one shard prunes for all: they share the tables
        if self.shard == 0 and self._prune_interval > 0:
            self.every(self._prune_interval, self.prune, "prune")

    async def on_stop(self) -> None:
        if self._own_http is not None:
            with contextlib.suppress(Exception):
                await self._own_http.close()
            self._own_http = None

    async def prune(self) -> None:
        """Drop expired tokens, old login failures and finished lockouts."""
        removed = await store.prune(
            self._pool,
            self._clock(),
            failures_older_than=max(self._limits.window, 3600.0),
            keep=self._limits.forget_after,
        )
        if removed:
            log.info("auth_pruned", rows=removed)

    # ── accounts ───────────────────────────────────────────────────────────────────────

    @handles(Register)
    async def register(self, message: Register) -> UserView:
        email = normalise_email(message.email)
        name = normalise_name(message.name)
        await self._check_password(message.password, email, name)
        # A cheap refusal before the costly hash; the insert below is the real guard. A
        # redelivery skips it: if its first delivery committed, the inbox says so below and
        # the answer is that account, not "taken".
        redelivered = self.envelope is not None and self.envelope.attempt > 0
        if not redelivered and await store.user_by_email(self._pool, email) is not None:
            raise EmailTaken("An account with this email already exists.")
        created = await self._create_account(email, name, message.password, ["user"])
        if isinstance(created, UserView):
            return created
        if created is None:
            raise EmailTaken("An account with this email already exists.")
        log.info("user_registered", user_id=created.id, ip=message.ip)
        return user_view(created)

    async def _create_account(
        self, email: str, name: str, password: str, roles: list[str]
    ) -> UserRow | UserView | None:
        """A new local account and its welcome, in one transaction with the inbox mark.

        Returns the new row; the earlier answer (a view) when this message was handled
        before; None when another request took the email meanwhile.
        """
        password_hash = await self._passwords.hash(password)
        now = self._clock()
        async with self.transaction() as tx:
            if tx.duplicate:
                return await self._existing_view(tx, email)
            user = await store.insert_user(
                tx,
                user_id=_new_id(),
                email=email,
                name=name,
                password_hash=password_hash,
                email_verified=False,
                roles=roles,
                now=now,
            )
            if user is not None:
                await self._welcome(tx, user, now)
        return user

    async def _issue_token(
        self, tx: Transaction, purpose: store.Purpose, user: UserRow, now: float, lifetime: float
    ) -> str:
        """A single-use token for `user`: only its digest is stored; the token is returned
        once, to be mailed."""
        token = new_token()
        await store.add_one_time_token(
            tx,
            token_hash=token_digest(token),
            purpose=purpose,
            user_id=user.id,
            data={"email": user.email},
            now=now,
            expires_at=now + lifetime,
        )
        return token

    async def _welcome(self, tx: Transaction, user: UserRow, now: float) -> None:
        """What every new account causes: a verification mail (if needed) and the event."""
        if not user.email_verified:
            token = await self._issue_token(tx, "verify_email", user, now, VERIFY_EMAIL_SECONDS)
            await self._notify(
                tx,
                EmailVerificationRequested(
                    user_id=user.id, email=user.email, name=user.name, token=token
                ),
            )
        await self._publish(tx, UserRegistered(user_id=user.id, email=user.email, name=user.name))

    async def _existing_view(self, tx: Transaction, email: str) -> UserView:
        # a redelivery of a message already handled: answer what the first answer was
        user = await store.user_by_email(tx, email)
        if user is None:
            raise UserNotFound("No account has this email.")
        return user_view(user)

    @handles(GetUser)
    async def get_user(self, message: GetUser) -> UserView:
        user = await store.user_by_id(self._pool, message.user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return user_view(user)

    @handles(FindUserByChat)
    async def find_user_by_chat(self, message: FindUserByChat) -> UserView:
        user = await store.user_by_chat(self._pool, message.chat_id)
        if user is None:
            raise UserNotFound("No account is linked to this Telegram chat.")
        return user_view(user)

    @handles(ConfirmPhone)
    async def confirm_phone(self, message: ConfirmPhone) -> UserView:
        user = await store.user_by_chat(self._pool, message.chat_id)
        if user is None:
            raise UserNotFound("No account is linked to this Telegram chat.")
        phone = normalise_phone(
            message.phone if message.phone.startswith("+") else f"+{message.phone}"
        )
        if phone is None:
            raise InvalidField(
                "The shared contact has no phone number.", details={"field": "$.phone"}
            )
        await store.confirm_phone(self._pool, user.id, phone, self._clock())
        confirmed = await store.user_by_id(self._pool, user.id)
        assert confirmed is not None
        return user_view(confirmed)

    @handles(GetContacts)
    async def get_contacts(self, message: GetContacts) -> Contacts:
        user = await store.user_by_id(self._pool, message.user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return Contacts(
            user_id=user.id,
            email=user.email,
            email_verified=user.email_verified,
            name=user.name,
            telegram_chat_id=user.telegram_chat_id,
            phone=user.phone,
            phone_verified=user.phone_verified,
        )

    @handles(FindUserByEmail)
    async def find_user_by_email(self, message: FindUserByEmail) -> UserView:
        user = await store.user_by_email(self._pool, normalise_email(message.email))
        if user is None:
            raise UserNotFound("No user has this email.")
        return user_view(user)

    @handles(UpdateUser)
    async def update_user(self, message: UpdateUser) -> UserView:
        name = normalise_name(message.name) if message.name is not None else None
        phone = normalise_phone(message.phone) if message.phone is not None else None
        user = await store.update_profile(
            self._pool,
            message.user_id,
            self._clock(),
            name=name,
            phone=phone,
            set_phone=message.phone is not None,
        )
        if user is None:
            raise UserNotFound("No such user.")
        log.info("user_updated", user_id=user.id)
        return user_view(user)

    @handles(MakeAdmin)
    async def make_admin(self, message: MakeAdmin) -> UserView:
        email = normalise_email(message.email)
        existing = await store.user_by_email(self._pool, email)
        if existing is not None:
            return await self._promote(existing.id)
        if message.password is None:
            raise InvalidField(
                "There is no account with this email; give a password to create one.",
                details={"field": "$.password"},
            )
        name = normalise_name(message.name or email.split("@", 1)[0])
        await self._check_password(message.password, email, name)
        created = await self._create_account(email, name, message.password, ["user", "admin"])
        if isinstance(created, UserView):
            return created
        if created is None:  # created meanwhile by a sign-up on another shard
            raced = await store.user_by_email(self._pool, email)
            if raced is None:
                raise UserNotFound("No account has this email.")
            return await self._promote(raced.id)
        log.info("admin_created", user_id=created.id)
        return user_view(created)

    async def _promote(self, user_id: str) -> UserView:
        user = await store.add_role(self._pool, user_id, "admin", self._clock())
        if user is None:
            raise UserNotFound("No such user.")
        log.info("role_granted", user_id=user.id, role="admin")
        return user_view(user)

    @handles(GrantRole)
    async def grant_role(self, message: GrantRole) -> UserView:
        if message.role not in ROLES:
            raise InvalidField(f"A role is one of {', '.join(ROLES)}.", details={"field": "$.role"})
        user = await store.add_role(self._pool, message.user_id, message.role, self._clock())
        if user is None:
            raise UserNotFound("No such user.")
        log.info("role_granted", user_id=user.id, role=message.role)
        return user_view(user)

    # ── sign-in and sessions ───────────────────────────────────────────────────────────

    @handles(Login)
    async def login(self, message: Login) -> TokenPair:
        # no format check: a malformed address is just one no account has (same answer)
        email = message.email.strip().lower()[:EMAIL_MAX]
        ip = _clip(message.ip, _IP_MAX)
        limits = self._limits
        email_key = limits.key("email", email)
        ip_key = limits.key("ip", ip) if ip else None
        now = self._clock()
        held = await store.lockouts(self._pool, [k for k in (email_key, ip_key) if k])
        retry_after = limits.retry_after(held.values(), now)
        if retry_after is not None:
            log.warning("login_locked_out", email=email, ip=ip, retry_after=retry_after)
            raise TooManyAttempts(
                f"Too many failed sign-ins. Try again in {retry_after} seconds.",
                details={"retry_after": retry_after},
            )
        user = await store.user_by_email(self._pool, email)
        password = message.password
        # an unknown email or an absurd password still costs one verification (no timing
        # difference), and counts as a failure
        stored = user.password_hash if user is not None and len(password) <= MAX_LENGTH else None
        verified = await self._passwords.verify(stored, password[:MAX_LENGTH])
        if not verified or user is None or stored is None:
            await self._record_failure(email, ip, held, self._clock())
            log.info("login_failed", email=email, ip=ip, known=user is not None)
            raise InvalidCredentials("The email or password is wrong.")
        if self._passwords.needs_rehash(stored):
            # parameters went up since this hash was made: upgrade it while we know the password
            fresh = await self._passwords.hash(password)
            await store.set_password(self._pool, user.id, fresh, self._clock(), replacing=stored)
        now = self._clock()
        async with self.transaction(dedupe=False) as tx:
            await store.forget_email_failures(tx, email, email_key)
            pair, session_id = await self._open_session(tx, user, message.user_agent, ip, now)
        log.info("login_succeeded", user_id=user.id, session_id=session_id, ip=ip)
        return pair

    async def _record_failure(
        self, email: str, ip: str | None, held: Mapping[str, Lockout], now: float
    ) -> None:
        """Count the failure; lock the email (or address) out when it passes its threshold."""
        limits = self._limits
        async with self.transaction(dedupe=False) as tx:
            await store.record_failure(tx, email, ip, now)
            email_key = limits.key("email", email)
            previous = held.get(email_key)
            failures = await store.failures_for_email(
                tx, email, limits.counting_since(previous, now)
            )
            if limits.tripped("email", failures):
                lockout = limits.next_lockout(previous, now)
                await store.set_lockout(tx, email_key, lockout, now)
                log.warning(
                    "login_lockout",
                    key="email",
                    email=email,
                    count=lockout.count,
                    seconds=round(lockout.until - now),
                )
            if ip:
                ip_key = limits.key("ip", ip)
                previous = held.get(ip_key)
                failures = await store.failures_for_ip(tx, ip, limits.counting_since(previous, now))
                if limits.tripped("ip", failures):
                    lockout = limits.next_lockout(previous, now)
                    await store.set_lockout(tx, ip_key, lockout, now)
                    log.warning(
                        "login_lockout",
                        key="ip",
                        ip=ip,
                        count=lockout.count,
                        seconds=round(lockout.until - now),
                    )

    async def _open_session(
        self,
        tx: Transaction,
        user: UserRow,
        user_agent: str | None,
        ip: str | None,
        now: float,
    ) -> tuple[TokenPair, str]:
        """A new session (a new refresh-token family) and its first token pair."""
        session_id = _new_id()
        refresh_token = new_token()
        await store.open_session(
            tx,
            session_id=session_id,
            user_id=user.id,
            user_agent=_clip(user_agent, _USER_AGENT_MAX),
            ip=_clip(ip, _IP_MAX),
            token_hash=token_digest(refresh_token),
            now=now,
            expires_at=now + REFRESH_TOKEN_SECONDS,
        )
        return self._pair(user, session_id, refresh_token, now), session_id

    def _pair(self, user: UserRow, session_id: str, refresh_token: str, now: float) -> TokenPair:
        access_token = self._keys.issue_access_token(
            user_id=user.id, roles=user.roles, session_id=session_id, now=now
        )
        return TokenPair(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=ACCESS_TOKEN_SECONDS,
        )

    @handles(Refresh)
    async def refresh(self, message: Refresh) -> TokenPair:
        digest = token_digest(message.refresh_token)
        now = self._clock()
        outcome = "invalid"
        pair: TokenPair | None = None
        session_id: str | None = None
        # deduplicated: a redelivery of this very message (a node died after the commit)
        # must not look like reuse and revoke the session
        async with self.transaction() as tx:
            if tx.duplicate:
                raise InvalidToken("This refresh token was already exchanged.")
            found = await store.refresh_token_for_update(tx, digest)
            if found is not None and not found.session_revoked:
                session_id = found.session_id
                if found.used:
                    # a rotated token came back: it was copied. End the whole family, so
                    # neither the thief nor the owner holds a working token any more.
                    await store.revoke_session(tx, found.session_id, now, "reuse")
                    outcome = "reused"
                elif found.expires_at > now:
                    user = await store.user_by_id(tx, found.user_id)
                    if user is not None:
                        refresh_token = new_token()
                        await store.rotate_refresh_token(
                            tx,
                            old_hash=digest,
                            new_hash=token_digest(refresh_token),
                            session_id=found.session_id,
                            now=now,
                            expires_at=now + REFRESH_TOKEN_SECONDS,
                            user_agent=_clip(message.user_agent, _USER_AGENT_MAX),
                            ip=_clip(message.ip, _IP_MAX),
                        )
                        pair = self._pair(user, found.session_id, refresh_token, now)
                        outcome = "rotated"
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

    @handles(Logout)
    async def logout(self, message: Logout) -> None:
        found = await store.session_of_refresh_token(
            self._pool, token_digest(message.refresh_token)
        )
        if found is None:
            raise InvalidToken("The refresh token is not valid.")
        session_id, user_id = found
        # any token of the family names the session; logging out twice is still a logout
        await store.revoke_session(self._pool, session_id, self._clock(), "logout")
        log.info("logged_out", user_id=user_id, session_id=session_id)

    @handles(ListSessions)
    async def list_sessions(self, message: ListSessions) -> SessionList:
        rows = await store.live_sessions(self._pool, message.user_id, self._clock())
        return SessionList(
            items=[
                SessionView(
                    id=row.id,
                    created_at=rfc3339(row.created_at),
                    last_used_at=rfc3339(row.last_used_at),
                    user_agent=row.user_agent,
                )
                for row in rows
            ]
        )

    @handles(RevokeSession)
    async def revoke_session(self, message: RevokeSession) -> None:
        revoked = await store.revoke_user_session(
            self._pool, message.user_id, message.session_id, self._clock()
        )
        if not revoked:
            raise SessionNotFound("No such session.")
        log.info("session_revoked", user_id=message.user_id, session_id=message.session_id)

    # ── email verification and password reset ─────────────────────────────────────────

    @handles(VerifyEmail)
    async def verify_email(self, message: VerifyEmail) -> None:
        digest = token_digest(message.token)
        now = self._clock()
        verified: UserRow | None = None
        async with self.transaction() as tx:
            if tx.duplicate:
                return None
            spent = await store.consume_one_time_token(tx, digest, "verify_email", now)
            user = await store.user_by_id(tx, spent.user_id) if spent and spent.user_id else None
            # the link verifies the address it was sent to, not whatever the account has now
            if spent is not None and user is not None and user.email == spent.data.get("email"):
                verified = user
                if await store.mark_email_verified(tx, user.id, user.email, now):
                    await self._publish(tx, EmailVerified(user_id=user.id, email=user.email))
        if verified is None:
            raise InvalidToken("This verification link is invalid, used or expired.")
        log.info("email_verified", user_id=verified.id)
        return None

    @handles(ForgotPassword)
    async def forgot_password(self, message: ForgotPassword) -> None:
        # the same silent answer whatever the email: no account enumeration
        try:
            email = normalise_email(message.email)
        except InvalidField:
            return None
        user = await store.user_by_email(self._pool, email)
        if user is None:
            log.info("password_reset_unknown_email")
            return None
        now = self._clock()
        async with self.transaction() as tx:
            if tx.duplicate:
                return None
            recent = await store.tokens_issued_since(tx, user.id, "reset_password", now - 3600)
            if recent >= RESET_MAILS_PER_HOUR:
                log.warning("password_reset_throttled", user_id=user.id)
                return None
            token = await self._issue_token(tx, "reset_password", user, now, RESET_PASSWORD_SECONDS)
            await self._notify(
                tx,
                PasswordResetRequested(
                    user_id=user.id,
                    email=user.email,
                    name=user.name,
                    token=token,
                    telegram_chat_id=user.telegram_chat_id,
                ),
            )
        log.info("password_reset_requested", user_id=user.id)
        return None

    @handles(ResetPassword)
    async def reset_password(self, message: ResetPassword) -> None:
        digest = token_digest(message.token)
        invalid = InvalidToken("This reset link is invalid, used or expired.")
        pending = await store.peek_one_time_token(
            self._pool, digest, "reset_password", self._clock()
        )
        user = (
            await store.user_by_id(self._pool, pending.user_id)
            if pending and pending.user_id
            else None
        )
        if user is None:
            raise invalid
        # a weak password is refused before the token is spent: the link still works
        await self._check_password(message.password, user.email, user.name)
        password_hash = await self._passwords.hash(message.password)
        now = self._clock()
        changed = False
        revoked = 0
        async with self.transaction() as tx:
            if tx.duplicate:
                return None
            if await store.consume_one_time_token(tx, digest, "reset_password", now):
                await store.set_password(tx, user.id, password_hash, now, replacing=None)
                await store.spend_user_tokens(tx, user.id, "reset_password", now)
                revoked = await store.revoke_user_sessions(tx, user.id, now, "password_reset")
                await store.forget_email_failures(
                    tx, user.email, self._limits.key("email", user.email)
                )
                await self._notify(
                    tx,
                    PasswordChanged(
                        user_id=user.id,
                        email=user.email,
                        telegram_chat_id=user.telegram_chat_id,
                    ),
                )
                changed = True
        if not changed:
            raise invalid
        log.info("password_reset", user_id=user.id, sessions_revoked=revoked)
        return None

    # ── Telegram ───────────────────────────────────────────────────────────────────────

    @handles(CreateTelegramLink)
    async def create_telegram_link(self, message: CreateTelegramLink) -> TelegramLink:
        if not self._bot_username:
            raise TelegramNotConfigured("No Telegram bot is configured.")
        if await store.user_by_id(self._pool, message.user_id) is None:
            raise UserNotFound("No such user.")
        now = self._clock()
        token = new_token()
        expires_at = now + TELEGRAM_LINK_SECONDS
        await store.add_one_time_token(
            self._pool,
            token_hash=token_digest(token),
            purpose="telegram_link",
            user_id=message.user_id,
            now=now,
            expires_at=expires_at,
        )
        log.info("telegram_link_created", user_id=message.user_id)
        return TelegramLink(
            url=f"https://t.me/{self._bot_username}?start={token}",
            expires_at=rfc3339(store.at(expires_at)),
        )

    @handles(ConsumeTelegramLink)
    async def consume_telegram_link(self, message: ConsumeTelegramLink) -> UserView:
        digest = token_digest(message.token)
        now = self._clock()
        linked: UserRow | None = None
        async with self.transaction() as tx:
            if tx.duplicate:
                linked = await store.user_by_chat(tx, message.chat_id)
                if linked is None:
                    raise InvalidToken("This Telegram link is invalid, used or expired.")
                return user_view(linked)
            spent = await store.consume_one_time_token(tx, digest, "telegram_link", now)
            if spent is not None and spent.user_id is not None:
                linked = await store.bind_telegram(tx, spent.user_id, message.chat_id, now)
                if linked is not None:
                    await self._publish(
                        tx, TelegramLinked(user_id=linked.id, chat_id=message.chat_id)
                    )
        if linked is None:
            raise InvalidToken("This Telegram link is invalid, used or expired.")
        log.info("telegram_linked", user_id=linked.id)
        return user_view(linked)

    # ── social login ───────────────────────────────────────────────────────────────────

    @handles(StartOAuth)
    async def start_oauth(self, message: StartOAuth) -> OAuthRedirect:
        provider = self._provider(message.provider)
        self._check_redirect_uri(message.redirect_uri)
        request = self._oauth.authorization_request(provider, message.redirect_uri)
        now = self._clock()
        await store.add_one_time_token(
            self._pool,
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

    @handles(FinishOAuth)
    async def finish_oauth(self, message: FinishOAuth) -> TokenPair:
        provider = self._provider(message.provider)
        # spent first, in its own commit: a state works once even if what follows fails
        spent = await store.consume_one_time_token(
            self._pool, token_digest(message.state), "oauth_state", self._clock()
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
        now = self._clock()
        async with self.transaction() as tx:
            if tx.duplicate:
                raise OAuthFailed("This sign-in was already completed; start again.")
            user, how = await self._oauth_user(tx, identity, email, now)
            pair, session_id = await self._open_session(
                tx, user, message.user_agent, message.ip, now
            )
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
            return await self._oauth.complete_authorization(
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

    async def _oauth_user(
        self,
        tx: Transaction,
        identity: ProviderIdentity,
        email: str | None,
        now: float,
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
                await store.revoke_user_sessions(tx, existing.id, now, "email_claimed")
                await self._publish(tx, EmailVerified(user_id=existing.id, email=existing.email))
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
            return existing, "linked"
        if email is None:
            raise OAuthFailed("The provider did not share an email address; allow it and retry.")
        name = (identity.name or "").strip() or email.split("@", 1)[0]
        try:
            name = normalise_name(name[:NAME_MAX])
        except InvalidField:
            name = email.split("@", 1)[0][:NAME_MAX]
        created = await store.insert_user(
            tx,
            user_id=_new_id(),
            email=email,
            name=name,
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
        await self._welcome(tx, created, now)
        return created, "created"

    def _provider(self, name: str) -> ProviderConfig:
        provider = self._providers.get(name)
        if provider is None:
            raise UnknownProvider(f"No sign-in provider named {name!r} is configured.")
        return provider

    def _check_redirect_uri(self, redirect_uri: str) -> None:
        """The provider sends the code back here: it must be on our own site."""
        parts = urlsplit(redirect_uri)
        ours = urlsplit(self._public_url) if self._public_url else None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidField(
                "The redirect URI must be an absolute http(s) URL.",
                details={"field": "$.redirect_uri"},
            )
        if ours is not None and (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc):
            raise InvalidField(
                "The redirect URI must be on this site.", details={"field": "$.redirect_uri"}
            )

    def _http_session(self) -> aiohttp.ClientSession:
        if self._http is not None:
            return self._http
        if self._own_http is None or self._own_http.closed:
            self._own_http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._own_http

    # ── helpers ────────────────────────────────────────────────────────────────────────

    async def _check_password(self, password: str, email: str, name: str | None) -> None:
        # zxcvbn takes up to ~20 ms of CPU: off the loop, like the hashing
        await asyncio.to_thread(check_password, password, user_inputs(email, name))

    async def _notify(self, tx: Transaction, event: Message) -> None:
        if self._notifier is not None:
            await tx.tell(self._notifier, event)

    async def _publish(self, tx: Transaction, event: Message) -> None:
        for target in self._subscribers.get(type(event), ()):
            await tx.tell(target, event)
