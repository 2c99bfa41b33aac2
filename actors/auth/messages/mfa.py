"""Two-factor sign-in with TOTP and recovery codes: setting it up, the second step of a
sign-in, its errors, and the `otpauth://` URI an authenticator app reads."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec
import pyotp

from actors.auth.messages.fields import AuthInput, Password, TokenText
from actors.runtime import DomainError, Message
from actors.runtime.bounds import Id

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
