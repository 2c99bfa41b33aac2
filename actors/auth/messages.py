"""The auth actor's whole public interface: commands, replies, events, errors, and how
to read an access token (the HTTP edge verifies tokens itself, with no database trip)."""

from __future__ import annotations

import re
import time
import unicodedata
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import GuestProtocol, OctKey

from actors.runtime import DomainError, IdempotencyKey, Message
from actors.runtime.bounds import Id, check_bounds

Role = Literal["user", "driver", "admin"]
ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
JWT_ALGORITHM = "HS256"
TOKEN_TYPE_ACCESS = "access"
PASSWORD_MAX = 1024  # argon2id hashes what it is given: a megabyte would be work, not a password
EPOCH_MAX = 4_102_444_800  # 2100-01-01 in epoch seconds: no later time is a real one
# Field bounds (actors/runtime/bounds.py); the rules (actors/auth/rules.py) then say what is
# well formed. Raw text may carry spaces the rules trim, hence the room.
EmailText = Annotated[str, msgspec.Meta(max_length=2 * 254)]
Password = Annotated[str, msgspec.Meta(max_length=PASSWORD_MAX)]
NameText = Annotated[str, msgspec.Meta(max_length=200)]
PhoneText = Annotated[str, msgspec.Meta(max_length=40)]
TokenText = Annotated[str, msgspec.Meta(max_length=512)]
UrlText = Annotated[str, msgspec.Meta(max_length=2048)]
Provider = Annotated[str, msgspec.Meta(max_length=40)]
# how far in the future an access token's `iat` may lie (clocks of nodes differ a little)
IAT_LEEWAY_SECONDS = 60
# how long a revoked session is remembered at the edge: past it, every access token the
# session ever had has expired (its last was issued at the latest at the revocation)
REVOCATION_SECONDS = ACCESS_TOKEN_SECONDS + IAT_LEEWAY_SECONDS
# the most revoked sessions one ListRevokedSessions answers with
REVOKED_SESSIONS_MAX = 100_000


NAMES_MAX = 1_000  # users named in one GetNames (a group holds at most 1,000 members)


def auth_key(message: Any) -> str | None:
    """The shard key of an auth message: its email, else its user id (None: any shard)."""
    email = getattr(message, "email", None)
    if email:
        return str(email).strip().lower()
    user_id = getattr(message, "user_id", None)
    return str(user_id) if user_id else None


class AuthInput(Message, frozen=True):
    """What the auth actor handles (commands, and the events it publishes): the fields'
    bounds hold wherever one is made or decoded, or it is InvalidField naming the field
    (`$.password`, never its value)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidField)


# ── replies ────────────────────────────────────────────────────────────────────────────


class UserView(Message, frozen=True):
    """A user as the API shows it (`GET /me`)."""

    id: str
    email: str
    name: str
    email_verified: bool
    roles: list[str]
    telegram_linked: bool
    created_at: str  # RFC 3339, UTC
    phone: str | None = None
    phone_verified: bool = False


class TokenPair(Message, frozen=True):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class SessionView(Message, frozen=True):
    id: str
    created_at: str
    last_used_at: str
    user_agent: str | None = None


class SessionList(Message, frozen=True):
    items: list[SessionView]


class RevokedSession(Message, frozen=True):
    """A revoked session, and when (epoch seconds) its last access token has expired."""

    session_id: str
    expires_at: float


class RevokedSessions(Message, frozen=True):
    """The sessions revoked lately, newest first; `truncated`: older ones were left out."""

    items: list[RevokedSession]
    truncated: bool = False


class TelegramLink(Message, frozen=True):
    url: str
    expires_at: str


class OAuthRedirect(Message, frozen=True):
    """Where to send the browser to sign in at the provider."""

    url: str


# ── commands ───────────────────────────────────────────────────────────────────────────


class Register(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    email: EmailText
    password: Password
    name: NameText
    ip: str | None = None
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class Login(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    email: EmailText
    password: Password
    ip: str | None = None
    user_agent: str | None = None


class Refresh(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("refresh_token",)
    refresh_token: TokenText
    ip: str | None = None
    user_agent: str | None = None


class Logout(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("refresh_token",)
    refresh_token: TokenText


class ListSessions(AuthInput, frozen=True):
    user_id: Id


class RevokeSession(AuthInput, frozen=True):
    user_id: Id
    session_id: Id


class ListRevokedSessions(AuthInput, frozen=True):
    """The sessions revoked since `since` (epoch seconds), at most `limit`, newest first:
    what an HTTP edge loads at start and after a reconnect. Replies RevokedSessions."""

    since: Annotated[float, msgspec.Meta(ge=-EPOCH_MAX, le=EPOCH_MAX)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=REVOKED_SESSIONS_MAX)] = REVOKED_SESSIONS_MAX


class VerifyEmail(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)
    token: TokenText


class ForgotPassword(AuthInput, frozen=True):
    email: EmailText


class ResetPassword(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("token", "password")
    token: TokenText
    password: Password


class ChangePassword(AuthInput, frozen=True):
    """A signed-in user sets a new password by giving the current one; every other session
    of theirs ends (`session_id`, the one asking, stays)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("current_password", "password")
    user_id: Id
    session_id: Id
    current_password: Password
    password: Password


class GetUser(AuthInput, frozen=True):
    user_id: Id


class GetNames(AuthInput, frozen=True):
    """The display names of these users (unknown ids are left out), as `Names`."""

    user_ids: Annotated[list[Id], msgspec.Meta(max_length=NAMES_MAX)]


class Person(Message, frozen=True):
    """A user as others see them: the id and the display name, never the email."""

    user_id: str
    name: str


class Names(Message, frozen=True):
    people: list[Person]


class FindUserByChat(AuthInput, frozen=True):
    """The user whose account is linked to this Telegram chat, or UserNotFound."""

    chat_id: int


class ConfirmPhone(AuthInput, frozen=True):
    """Telegram shared the chat owner's own contact: their number becomes the account's,
    verified (Telegram vouches for it). Replies UserView; UserNotFound if the chat is not
    linked."""

    chat_id: int
    phone: PhoneText


class GetContacts(AuthInput, frozen=True):
    """Where a user can be reached (for notifications)."""

    user_id: Id


class Contacts(Message, frozen=True):
    user_id: str
    email: str
    email_verified: bool
    name: str
    telegram_chat_id: int | None = None
    phone: str | None = None
    phone_verified: bool = False


class FindUserByEmail(AuthInput, frozen=True):
    """The user with this email (case-insensitive), or UserNotFound."""

    email: EmailText


class UpdateUser(AuthInput, frozen=True):
    user_id: Id
    name: NameText | None = None
    phone: PhoneText | None = None


class CreateTelegramLink(AuthInput, frozen=True):
    user_id: Id


class ConsumeTelegramLink(AuthInput, frozen=True):
    """The bot's half of the deep link: binds a Telegram chat to the account (single use)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    token: TokenText
    chat_id: int


class StartOAuth(AuthInput, frozen=True):
    provider: Provider
    redirect_uri: UrlText


class FinishOAuth(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("code", "state")
    provider: Provider
    code: UrlText
    state: UrlText
    redirect_uri: UrlText
    ip: str | None = None
    user_agent: str | None = None


class MakeAdmin(AuthInput, frozen=True):
    """Create (with this password) or promote the user with this email to admin."""

    secret_fields: ClassVar[tuple[str, ...]] = ("password",)

    email: EmailText
    password: Password | None = None
    name: NameText | None = None


class GrantRole(AuthInput, frozen=True):
    """Give a user one more role (rides grants `driver`); replies with the UserView."""

    user_id: Id
    role: Role


# ── events (sent through the reliable hand-off) ───────────────────────────────────────


class UserRegistered(AuthInput, frozen=True):
    user_id: Id
    email: EmailText
    name: NameText


class ProfileChanged(AuthInput, frozen=True):
    """A user's display name changed: every node forgets the name it kept for them."""

    user_id: Id
    name: NameText


class EmailVerificationRequested(AuthInput, frozen=True):
    """For notifications: mail this single-use token to the address (never logged)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    user_id: Id
    email: EmailText
    name: NameText
    token: TokenText


class EmailVerified(AuthInput, frozen=True):
    user_id: Id
    email: EmailText


class PasswordResetRequested(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)
    user_id: Id
    email: EmailText
    name: NameText
    token: TokenText
    # the linked Telegram chat, so the reset link can go out there too
    telegram_chat_id: int | None = None


class PasswordChanged(AuthInput, frozen=True):
    user_id: Id
    email: EmailText
    telegram_chat_id: int | None = None


class TelegramLinked(AuthInput, frozen=True):
    user_id: Id
    chat_id: int


class SessionsRevoked(Message, frozen=True):
    """These sessions of the user ended (logout, revoked, password reset, refresh-token
    reuse, an email claimed): every node's edge refuses their access tokens until
    `expires_at` (epoch seconds), when the last of them has expired anyway."""

    user_id: str
    session_ids: list[str]
    reason: str
    expires_at: float


# ── errors ─────────────────────────────────────────────────────────────────────────────


class EmailTaken(DomainError):
    """Another account already uses this email."""

    code = "email_taken"
    category = "conflict"


class WeakPassword(DomainError):
    """Too short or too guessable; the message says why and how to do better."""

    code = "weak_password"
    category = "invalid"


class InvalidCredentials(DomainError):
    """Wrong email or password (the same answer for an unknown email)."""

    code = "invalid_credentials"
    category = "unauthenticated"


class WrongPassword(DomainError):
    """The current password given to change it is not the account's."""

    code = "wrong_password"
    category = "invalid"


class InvalidToken(DomainError):
    """A token that is malformed, expired, revoked, forged or of the wrong kind."""

    code = "invalid_token"
    category = "unauthenticated"


class SessionRevoked(InvalidToken):
    """An access token of a session that was ended (logout, revoked, password reset)."""

    code = "session_revoked"


class TokenReused(DomainError):
    """A refresh token presented after it was rotated: the whole session is revoked."""

    code = "token_reused"
    category = "unauthenticated"


class TooManyAttempts(DomainError):
    """Too many failed logins; `details["retry_after"]` says how many seconds to wait."""

    code = "too_many_attempts"
    category = "rate_limited"


class UserNotFound(DomainError):
    code = "user_not_found"
    category = "not_found"


class SessionNotFound(DomainError):
    code = "session_not_found"
    category = "not_found"


class UnknownProvider(DomainError):
    """No social login provider of that name is configured."""

    code = "unknown_provider"
    category = "not_found"


class OAuthFailed(DomainError):
    """The provider refused, the state did not match, or its answer made no sense."""

    code = "oauth_failed"
    category = "invalid"


class InvalidField(DomainError):
    """A field of the command is malformed (an email, a name, a phone number);
    `details["field"]` names it as a JSON path (`$.email`)."""

    code = "invalid_field"
    category = "invalid"


# ── input rules every edge and actor share ────────────────────────────────────────────

EMAIL_MAX = 254
# Deliberately simple: one @, no spaces, a dot in the domain. The real check is the
# verification mail; a stricter pattern only refuses real addresses.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


def valid_email(text: str) -> bool:
    """True when `text` (already stripped and lower-cased) looks like an email address."""
    return len(text) <= EMAIL_MAX and _EMAIL.match(text) is not None


def normalise_email(raw: str, field: str = "$.email") -> str:
    """The address stripped and lower-cased; InvalidField naming `field` unless it looks
    real."""
    email = raw.strip().lower()
    if not email:
        raise InvalidField("An email address is required.", details={"field": field})
    if not valid_email(email):
        raise InvalidField("This is not a valid email address.", details={"field": field})
    return email


def has_control_characters(text: str) -> bool:
    """True when `text` holds a control or format character (names and titles refuse them)."""
    return any(unicodedata.category(char) in ("Cc", "Cf") for char in text)


class TelegramNotConfigured(DomainError):
    """No Telegram bot is configured, so there is nothing to link to."""

    code = "telegram_not_configured"
    category = "conflict"  # the node's setup, not a passing outage: retrying will not help


# ── OpenID Connect provider (issue 19) ──
# (commands, replies, events and errors of this feature)


# ── multi-factor: TOTP and recovery codes (issue 19) ──
# (commands, replies, events and errors of this feature)


# ── passkeys (issue 19) ──
# (commands, replies, events and errors of this feature)


# ── account deletion and export (issue 19) ──
# (commands, replies, events and errors of this feature)


# ── social login by discovery (issue 19) ──
# (commands, replies, events and errors of this feature)


# ── reading access tokens ──────────────────────────────────────────────────────────────


class AccessClaims(msgspec.Struct, frozen=True):
    """What an access token says: who, with which roles, in which session, until when."""

    sub: str
    roles: list[str]
    sid: str
    exp: int
    iat: int
    typ: str = TOKEN_TYPE_ACCESS

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class AccessTokenVerifier:
    """Verifies access tokens against the signing keys by `kid`: no database round trip.

    Only HS256 is accepted (no `alg: none`, no algorithm confusion); the `kid` must name a
    known key; the token must be an access token, unexpired, and issued no later than
    IAT_LEEWAY_SECONDS from now. Whether its session was revoked is the edge's check
    (splitgo/web/revocation.py).
    """

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = {kid: OctKey.import_key(secret) for kid, secret in keys.items()}

    def verify(self, token: str, *, now: float | None = None) -> AccessClaims:
        def key_for(signature: GuestProtocol) -> OctKey:
            header = signature.headers()
            key = self._keys.get(str(header.get("kid", "")))
            if key is None or header.get("alg") != JWT_ALGORITHM:
                raise InvalidToken("the token's key or algorithm is not ours")
            return key

        try:
            decoded = jwt.decode(token, key_for, algorithms=[JWT_ALGORITHM])
            claims = msgspec.convert(decoded.claims, AccessClaims)
        except (JoseError, ValueError, msgspec.ValidationError, TypeError):
            raise InvalidToken("the access token is not valid") from None
        if claims.typ != TOKEN_TYPE_ACCESS:
            raise InvalidToken("this is not an access token")
        now = time.time() if now is None else now
        if claims.exp <= now:
            raise InvalidToken("the access token has expired")
        if claims.iat > now + IAT_LEEWAY_SECONDS:
            # no node of ours signs tokens from the future: a forged or broken clock
            raise InvalidToken("the access token was issued in the future")
        return claims
