"""The auth actor's errors of accounts, sign-in and tokens, each with a stable `code`
(each feature module - `provider`, `mfa`, `passkeys`, `deletion`, `social` - keeps its own
errors beside its commands)."""

from __future__ import annotations

from actors.runtime import DomainError


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


class InvalidField(DomainError):
    """A field of the command is malformed (an email, a name, a phone number);
    `details["field"]` names it as a JSON path (`$.email`)."""

    code = "invalid_field"
    category = "invalid"


class TelegramNotConfigured(DomainError):
    """No Telegram bot is configured, so there is nothing to link to."""

    code = "telegram_not_configured"
    category = "conflict"  # the node's setup, not a passing outage: retrying will not help
