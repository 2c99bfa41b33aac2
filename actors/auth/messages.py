"""The auth actor's whole public interface: commands, replies, events, errors, and how
to read an access token (the HTTP edge verifies tokens itself, with no database trip)."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import msgspec
import pyotp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, GuestProtocol

from actors.runtime import DomainError, IdempotencyKey, Message
from actors.runtime.bounds import Id, check_bounds

Role = Literal["user", "driver", "admin"]
ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
JWT_ALGORITHM = "ES256"
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
# access tokens an edge remembers having verified (by their text), ~600 bytes each
VERIFIED_TOKENS_KEPT = 10_000
# the most revoked sessions one ListRevokedSessions answers with
REVOKED_SESSIONS_MAX = 100_000


NAMES_MAX = 1_000  # users named in one GetNames (a group holds at most 1,000 members)


def auth_key(message: Any) -> str | None:
    """The shard key of an auth message: its user id, else its email (None: any shard).

    A user's id names the one shard that keeps them hot and writes them (actors/auth/
    profiles.py); an email routes what comes before an id is known (sign-up, sign-in).
    """
    user_id = getattr(message, "user_id", None)
    if user_id:
        return str(user_id)
    email = getattr(message, "email", None)
    return str(email).strip().lower() if email else None


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

OIDC_CODE_SECONDS = 60  # an authorization code lives at most this long (RFC 6749 4.1.2)
TOKEN_TYPE_OIDC_ACCESS = "oidc_access"  # an app's access token: never one of our API's
# the scopes an app may ask for, in the order they are shown and stored
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
CLIENTS_MAX = 10  # redirect URIs one client registers (provider_rules.REDIRECT_URIS_MAX)
ClientIdText = Annotated[str, msgspec.Meta(max_length=100)]
ClientNameText = Annotated[str, msgspec.Meta(max_length=200)]
OAuthParam = Annotated[str, msgspec.Meta(max_length=1000)]  # scope, state, nonce, prompt…
OidcDecision = Literal["ask", "allow", "deny"]
OidcAction = Literal["redirect", "sign_in", "consent"]


class OidcClientView(Message, frozen=True):
    """A registered app: `public` ones have no secret and prove themselves by PKCE."""

    client_id: str
    name: str
    redirect_uris: list[str]
    public: bool
    created_at: str  # RFC 3339, UTC


class OidcClientList(Message, frozen=True):
    items: list[OidcClientView]


class NewOidcClient(Message, frozen=True):
    """A client just registered, with its secret: shown this once, stored as a digest."""

    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret",)

    client: OidcClientView
    client_secret: str | None = None  # None: a public client


class RegisterOidcClient(AuthInput, frozen=True):
    """An admin (`user_id`) registers an app that signs people in with splitgo."""

    user_id: Id
    name: ClientNameText
    redirect_uris: Annotated[list[UrlText], msgspec.Meta(max_length=CLIENTS_MAX)]
    public: bool = False


class ListOidcClients(AuthInput, frozen=True):
    """Every registered app, newest first."""


class DeleteOidcClient(AuthInput, frozen=True):
    """Remove an app: its consents, codes, grants and refresh tokens go with it."""

    client_id: ClientIdText


class AuthorizeOidcRequest(AuthInput, frozen=True):
    """An authorization request (GET /oauth2/authorize) as the browser brought it, with
    who is signed in (None: nobody) and what they decided on the consent page.

    Replies OidcAuthorization; an unknown client or an unregistered redirect URI raises
    OidcRequestRefused (shown on our own page: never sent to that URI)."""

    client_id: ClientIdText
    redirect_uri: UrlText
    response_type: OAuthParam = ""
    scope: OAuthParam = ""
    state: OAuthParam = ""
    nonce: OAuthParam = ""
    code_challenge: OAuthParam = ""
    code_challenge_method: OAuthParam = ""
    prompt: OAuthParam = ""
    user_id: Id | None = None
    session_id: Id | None = None
    decision: OidcDecision = "ask"


class OidcAuthorization(Message, frozen=True):
    """What to do with the browser: `redirect` to `url` (the app's, with a code or an
    error), `sign_in` first, or show the `consent` page for `client_name` and `scopes`."""

    secret_fields: ClassVar[tuple[str, ...]] = ("url",)

    action: OidcAction
    url: str = ""
    client_name: str = ""
    scopes: list[str] = []


class ExchangeOidcCode(AuthInput, frozen=True):
    """grant_type=authorization_code; `client_secret` None for a public client."""

    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret", "code", "code_verifier")

    client_id: ClientIdText
    code: TokenText
    redirect_uri: UrlText
    code_verifier: OAuthParam
    client_secret: TokenText | None = None


class RefreshOidcTokens(AuthInput, frozen=True):
    """grant_type=refresh_token: the token is spent, a new one comes back."""

    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret", "refresh_token")

    client_id: ClientIdText
    refresh_token: TokenText
    scope: OAuthParam | None = None
    client_secret: TokenText | None = None


class OidcTokens(Message, frozen=True):
    """The token endpoint's answer."""

    secret_fields: ClassVar[tuple[str, ...]] = ("access_token", "id_token", "refresh_token")

    access_token: str
    id_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    token_type: str = "Bearer"


class GetOidcUserInfo(AuthInput, frozen=True):
    """The userinfo claims an app's access token (already verified at the edge) may see:
    refused (InvalidToken) once its grant was revoked."""

    user_id: Id
    client_id: ClientIdText
    grant_id: Id
    scopes: Annotated[list[OAuthParam], msgspec.Meta(max_length=10)]


class OidcUserInfo(Message, frozen=True):
    """Claims by scope: `name` with profile, `email` and `email_verified` with email."""

    sub: str
    name: str | None = None
    email: str | None = None
    email_verified: bool | None = None


class ListConnectedApps(AuthInput, frozen=True):
    """The apps this user allowed to sign them in."""

    user_id: Id


class ConnectedApp(Message, frozen=True):
    client_id: str
    name: str
    scopes: list[str]
    since: str  # RFC 3339, UTC: when they first allowed it


class ConnectedApps(Message, frozen=True):
    items: list[ConnectedApp]


class RevokeConnectedApp(AuthInput, frozen=True):
    """Forget the user's consent to this app and end every grant it holds for them."""

    user_id: Id
    client_id: ClientIdText


class OidcError(DomainError):
    """An OAuth 2.0 refusal; `details["error"]` is RFC 6749's word for it
    (invalid_request, invalid_scope, unsupported_grant_type, ...)."""

    code = "oidc_error"
    category = "invalid"

    @property
    def error(self) -> str:
        return str(self.details.get("error", "invalid_request"))


class OidcInvalidGrant(OidcError):
    """The code or refresh token is unknown, spent, expired, another client's, or its
    PKCE verifier or redirect URI does not match."""

    code = "oidc_invalid_grant"

    @property
    def error(self) -> str:
        return "invalid_grant"


class OidcInvalidClient(OidcError):
    """The client is unknown, or its secret is missing or wrong."""

    code = "oidc_invalid_client"
    category = "unauthenticated"

    @property
    def error(self) -> str:
        return "invalid_client"


class OidcRequestRefused(DomainError):
    """An authorization request we cannot answer to the app: its client is unknown or its
    redirect URI is not registered, so the refusal is shown on our own page."""

    code = "oidc_request_refused"
    category = "invalid"


class OidcClientNotFound(DomainError):
    code = "oidc_client_not_found"
    category = "not_found"


class ConnectedAppNotFound(DomainError):
    code = "connected_app_not_found"
    category = "not_found"


# ── multi-factor: TOTP and recovery codes (issue 19) ──
# (commands, replies, events and errors of this feature)

MFA_CHALLENGE_SECONDS = 5 * 60  # how long the second step of a sign-in may take
# the amr values (RFC 8176) of a session that passed a second factor: a code or a passkey
SECOND_FACTORS = frozenset({"otp", "hwk"})
TOTP_DIGITS = 6
TOTP_PERIOD = 30
TOTP_ISSUER = "splitgo"
MfaCodeText = Annotated[str, msgspec.Meta(max_length=64)]


class MfaChallenge(Message, frozen=True):
    """The password (or social sign-in) was right and the account has two-factor sign-in
    on: no tokens yet. Send `mfa_token` with a code (CompleteMfaLogin) within `expires_in`
    seconds; it works once. `methods`: what the code may be (totp, recovery_code)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("mfa_token",)

    mfa_token: str
    expires_in: int
    methods: list[str]


class TotpSetup(Message, frozen=True):
    """A TOTP secret waiting to be confirmed with a code: the `otpauth://` URI (for the QR
    code) and the secret itself, to type into an app by hand. Shown to its owner only."""

    secret_fields: ClassVar[tuple[str, ...]] = ("secret", "uri")

    secret: str
    uri: str
    expires_at: str  # RFC 3339: confirm before then, or start again


class RecoveryCodes(Message, frozen=True):
    """Fresh one-time recovery codes, shown once (only their digests are kept): each signs
    in once instead of a TOTP code."""

    secret_fields: ClassVar[tuple[str, ...]] = ("codes",)

    codes: list[str]


class MfaStatus(Message, frozen=True):
    """Whether a user's two-factor sign-in is on, and how many recovery codes are left."""

    totp_enabled: bool
    enabled_at: str | None = None  # RFC 3339
    recovery_codes_left: int = 0
    setup_pending: bool = False


class GetMfaStatus(AuthInput, frozen=True):
    """Replies MfaStatus."""

    user_id: Id


class StartTotpSetup(AuthInput, frozen=True):
    """A fresh TOTP secret for the user, pending until ConfirmTotp (replaces an earlier
    pending one). Replies TotpSetup; MfaAlreadyEnabled when TOTP is on."""

    user_id: Id


class ConfirmTotp(AuthInput, frozen=True):
    """Turn TOTP on with a current code of the pending secret. Replies RecoveryCodes. The
    session asking (`session_id`) has just passed the second factor: its tokens say otp
    from its next refresh on."""

    secret_fields: ClassVar[tuple[str, ...]] = ("code",)

    user_id: Id
    code: MfaCodeText
    session_id: Id | None = None


class DisableTotp(AuthInput, frozen=True):
    """Turn TOTP off, proven with the password or a current code (TOTP or recovery); the
    recovery codes go too."""

    secret_fields: ClassVar[tuple[str, ...]] = ("password", "code")

    user_id: Id
    password: Password | None = None
    code: MfaCodeText | None = None


class RegenerateRecoveryCodes(AuthInput, frozen=True):
    """New recovery codes in place of the old ones, proven as DisableTotp. Replies
    RecoveryCodes."""

    secret_fields: ClassVar[tuple[str, ...]] = ("password", "code")

    user_id: Id
    password: Password | None = None
    code: MfaCodeText | None = None


class CompleteMfaLogin(AuthInput, frozen=True):
    """The second step of a sign-in: the challenge and a TOTP or recovery code. Replies
    TokenPair (the session's `amr` says otp)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("mfa_token", "code")

    mfa_token: TokenText
    code: MfaCodeText
    ip: str | None = None
    user_agent: str | None = None


class WrongMfaCode(DomainError):
    """The code is not the current TOTP code nor an unused recovery code;
    `details["field"]` names it."""

    code = "wrong_mfa_code"
    category = "invalid"


class MfaCodeReused(DomainError):
    """A TOTP code already accepted once (or an older one): wait for the next code."""

    code = "mfa_code_reused"
    category = "invalid"


class InvalidMfaToken(DomainError):
    """The sign-in's second-step challenge is unknown, expired or used: sign in again."""

    code = "invalid_mfa_token"
    category = "unauthenticated"


class MfaNotEnabled(DomainError):
    """Two-factor sign-in is not on (or no setup is waiting to be confirmed)."""

    code = "mfa_not_enabled"
    category = "conflict"


class MfaAlreadyEnabled(DomainError):
    """Two-factor sign-in is on already: turn it off first to use another app."""

    code = "mfa_already_enabled"
    category = "conflict"


# ── passkeys (issue 19) ──
# (commands, replies, events and errors of this feature)

PASSKEY_JSON_MAX = 32_768  # a browser's credential JSON (an attestation with its certificates)
PASSKEY_NAME_MAX = 60  # a passkey's name once trimmed ("Phone", "Work laptop")
PasskeyJson = Annotated[str, msgspec.Meta(max_length=PASSKEY_JSON_MAX)]
PasskeyName = Annotated[str, msgspec.Meta(max_length=200)]


class PasskeyOptions(Message, frozen=True):
    """What the browser hands navigator.credentials.create() or .get(): WebAuthn's options
    as JSON (binary fields base64url), with a single-use challenge good for 5 minutes."""

    options: str


class PasskeyView(Message, frozen=True):
    """One of a user's passkeys as they see it (never its key or credential id)."""

    id: str
    name: str
    created_at: str  # RFC 3339, UTC
    last_used_at: str | None = None
    transports: list[str] = []
    backed_up: bool = False  # synced to the person's other devices (a multi-device passkey)


class PasskeyList(Message, frozen=True):
    items: list[PasskeyView]


class StartPasskeyRegistration(AuthInput, frozen=True):
    """A signed-in user asks to add a passkey: replies PasskeyOptions for create()."""

    user_id: Id


class FinishPasskeyRegistration(AuthInput, frozen=True):
    """The browser's answer to create(), and the name the user gives the passkey: replies
    the new PasskeyView."""

    secret_fields: ClassVar[tuple[str, ...]] = ("credential",)
    user_id: Id
    credential: PasskeyJson
    name: PasskeyName


class StartPasskeySignIn(AuthInput, frozen=True):
    """Someone not signed in asks to sign in with a passkey: replies PasskeyOptions for
    get(), naming no credential (the authenticator offers the ones it holds)."""


class FinishPasskeySignIn(AuthInput, frozen=True):
    """The browser's assertion from get(): replies a TokenPair for a new session."""

    secret_fields: ClassVar[tuple[str, ...]] = ("credential",)
    credential: PasskeyJson
    ip: str | None = None
    user_agent: str | None = None


class ListPasskeys(AuthInput, frozen=True):
    """The user's passkeys, oldest first: replies PasskeyList."""

    user_id: Id


class RenamePasskey(AuthInput, frozen=True):
    """Give one of the user's passkeys another name: replies the PasskeyView."""

    user_id: Id
    passkey_id: Id
    name: PasskeyName


class DeletePasskey(AuthInput, frozen=True):
    """Remove one of the user's passkeys: it signs nobody in any more."""

    user_id: Id
    passkey_id: Id


class PasskeyRejected(DomainError):
    """A passkey response that does not verify: another site's (origin or relying party),
    a bad signature, an unknown or expired challenge, or not a WebAuthn response at all."""

    code = "passkey_rejected"
    category = "invalid"


class PasskeyReplayed(DomainError):
    """An assertion (or attestation) presented again: its challenge was already used, or
    the authenticator's signature counter did not advance (a copy or a cloned key)."""

    code = "passkey_replayed"
    category = "unauthenticated"


class UnknownPasskey(DomainError):
    """A sign-in with a passkey that is not registered here (deleted, or another site's)."""

    code = "unknown_passkey"
    category = "unauthenticated"


class PasskeyNotFound(DomainError):
    """No passkey of this user has that id."""

    code = "passkey_not_found"
    category = "not_found"


class PasskeyExists(DomainError):
    """This authenticator's credential is already registered (to this or another account)."""

    code = "passkey_exists"
    category = "conflict"


class PasskeysUnavailable(DomainError):
    """The node has no public URL a browser could scope passkeys to."""

    code = "passkeys_unavailable"
    category = "conflict"


# ── account deletion and export (issue 19) ──
# (commands, replies, events and errors of this feature)

DELETED_NAME = "Deleted user"  # what a deleted account is called wherever names are shown
# how recent a sign-in confirms a deletion for an account with no password (social only)
FRESH_SIGN_IN_SECONDS = 10 * 60


class DescribeMyAccount(AuthInput, frozen=True):
    """Everything auth keeps about the user, for their data export: replies MyAccount."""

    user_id: Id


class LinkedProvider(Message, frozen=True):
    """A social login linked to the account (the provider's own subject id is left out)."""

    provider: str
    email: str | None
    created_at: str


class MyAccount(Message, frozen=True):
    """The user's profile, their live sessions and linked social logins."""

    user: UserView
    sessions: list[SessionView]
    providers: list[LinkedProvider]


class DeleteAccount(AuthInput, frozen=True):
    """Delete the user's account, confirmed by their password (an account with no password:
    by a sign-in in the last FRESH_SIGN_IN_SECONDS, the session `session_id`). Refused
    (AccountNotEmpty) while their wallet or a group balance is not zero. Replies
    AccountDeletion; the same again answers the same."""

    secret_fields: ClassVar[tuple[str, ...]] = ("password",)

    user_id: Id
    session_id: Id
    password: Password | None = None
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


class AccountDeletion(Message, frozen=True):
    """An account deleted: its id (now anonymous) and when."""

    user_id: str
    deleted_at: str  # RFC 3339, UTC


class AccountDeleted(AuthInput, frozen=True):
    """An account was deleted (event): whoever keeps ways to reach the user forgets them."""

    user_id: Id


class AccountNotEmpty(DomainError):
    """The account still holds money or a group balance; the message says what to do,
    `details["reasons"]` each reason in words."""

    code = "account_not_empty"
    category = "conflict"


class FreshSignInRequired(DomainError):
    """An account with no password confirms a deletion by signing in again first."""

    code = "fresh_sign_in_required"
    category = "forbidden"


class SecondFactorRequired(DomainError):
    """The account has two-factor sign-in on, and this session did not pass a second factor
    (it began before TOTP was turned on): sign in again with a code or a passkey."""

    code = "mfa_required"
    category = "forbidden"


# ── social login by discovery (issue 19) ──
# (commands, replies, events and errors of this feature)


# ── hot profiles (issue 20) ──


class ForgetCachedUser(AuthInput, frozen=True):
    """A user's row changed on another shard (a link by token, a sign-in by email): the
    shard that owns the user id drops what it keeps of them. Sent, not through the outbox,
    before the changing handler replies, so whatever is asked after comes behind it."""

    user_id: Id


# ── reading access tokens ──────────────────────────────────────────────────────────────


class AccessClaims(msgspec.Struct, frozen=True):
    """What an access token says: who, with which roles, in which session, until when, and
    how the session was signed in (`amr`, RFC 8176: pwd, otp, hwk, ...)."""

    sub: str
    roles: list[str]
    sid: str
    exp: int
    iat: int
    typ: str = TOKEN_TYPE_ACCESS
    amr: list[str] = []

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class AccessTokenVerifier:
    """Verifies splitgo's JWTs with the public keys alone: no secret, no database trip.

    Built from the JWK Set `/.well-known/jwks.json` publishes, so any service can hold one.
    Only ES256 on P-256 is accepted (no `alg: none`, no HMAC keyed with a public key); the
    `kid` must name a published key. `verify` reads an access token (the right `typ`,
    unexpired, issued no later than IAT_LEEWAY_SECONDS from now); whether its session was
    revoked is the edge's check (splitgo/web/revocation.py). `verify_jwt` does the same for
    the other tokens splitgo signs (an OpenID Connect client's access token).
    """

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        raw_keys = jwks.get("keys")
        if not isinstance(raw_keys, list) or not raw_keys:
            raise ValueError("at least one public key is needed")
        keys: dict[str, ECKey] = {}
        for raw in raw_keys:
            if not isinstance(raw, dict) or raw.get("kty") != "EC" or raw.get("crv") != "P-256":
                raise ValueError("only P-256 (ES256) keys verify splitgo's tokens")
            public = {name: value for name, value in raw.items() if name != "d"}
            keys[str(public.get("kid", ""))] = ECKey.import_key(public)
        self._keys = keys
        # tokens that verified, by their whole text: a client sends the same token with
        # every request for 15 minutes, and an ECDSA check costs ~5x an HMAC one
        self._verified: dict[str, AccessClaims] = {}

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set this verifier trusts, as `/.well-known/jwks.json` serves it."""
        return {"keys": [key.as_dict(private=False) for key in self._keys.values()]}

    def verify(self, token: str, *, now: float | None = None) -> AccessClaims:
        now = time.time() if now is None else now
        known = self._verified.get(token)
        if known is not None:
            # the very token, signature and all, passed before: only time can change it
            _check_times(known.exp, known.iat, now)
            return known
        claims = self.verify_jwt(token, typ=TOKEN_TYPE_ACCESS, now=now)
        try:
            read = msgspec.convert(claims, AccessClaims)
        except (msgspec.ValidationError, TypeError):
            raise InvalidToken("the access token is not valid") from None
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest goes first
        self._verified[token] = read
        return read

    def verify_jwt(
        self,
        token: str,
        *,
        typ: str,
        audience: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The claims of a token splitgo signed, once its signature, `typ`, `exp`, `iat`
        and (when given) `aud` check out; else InvalidToken, in words that never echo it."""

        def key_for(signature: GuestProtocol) -> ECKey:
            header = signature.headers()
            key = self._keys.get(str(header.get("kid", "")))
            if key is None or header.get("alg") != JWT_ALGORITHM:
                raise InvalidToken("the token's key or algorithm is not ours")
            return key

        try:
            claims = dict(jwt.decode(token, key_for, algorithms=[JWT_ALGORITHM]).claims)
        except (JoseError, ValueError, TypeError):
            raise InvalidToken("the access token is not valid") from None
        if claims.get("typ") != typ:
            raise InvalidToken(f"this is not a token of type {typ}")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise InvalidToken("the access token is not valid")
        _check_times(exp, iat, time.time() if now is None else now)
        if audience is not None and claims.get("aud") != audience:
            raise InvalidToken("the token was issued to another party")
        return claims


def _check_times(exp: int, iat: int, now: float) -> None:
    """InvalidToken unless `now` lies in the token's life (with IAT_LEEWAY_SECONDS of skew)."""
    if exp <= now:
        raise InvalidToken("the access token has expired")
    if iat > now + IAT_LEEWAY_SECONDS:
        # no node of ours signs tokens from the future: a forged or broken clock
        raise InvalidToken("the access token was issued in the future")


def provisioning_uri(secret: str, account: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads from a TOTP setup's QR code."""
    uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=account, issuer_name=TOTP_ISSUER
    )
    # pyotp leaves the optional parameters out when they are the defaults; some apps want them
    if "period=" not in uri:
        uri += f"&period={TOTP_PERIOD}"
    if "digits=" not in uri:
        uri += f"&digits={TOTP_DIGITS}"
    return uri


def spaced_secret(secret: str) -> str:
    """A TOTP secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
