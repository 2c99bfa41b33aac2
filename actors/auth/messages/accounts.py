"""Accounts: signing up, verifying the email, resetting and changing the password, the
profile (names, contacts, phone), roles, the Telegram link, the events they publish, and
the hot profile a user's shard keeps."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from actors.auth.messages.fields import (
    AuthInput,
    EmailText,
    NameText,
    Password,
    PhoneText,
    Role,
    TokenText,
)
from actors.runtime import IdempotencyKey, Message
from actors.runtime.bounds import Id

NAMES_MAX = 1_000  # users named in one GetNames (a group holds at most 1,000 members)


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


class TelegramLink(Message, frozen=True):
    url: str
    expires_at: str


class Register(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    email: EmailText
    password: Password
    name: NameText
    ip: str | None = None
    idempotency: IdempotencyKey | None = None  # the client's key: a retry replays


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


# ── hot profiles (issue 20) ──


class ForgetCachedUser(AuthInput, frozen=True):
    """A user's row changed on another shard (a link by token, a sign-in by email): the
    shard that owns the user id drops what it keeps of them. Sent, not through the outbox,
    before the changing handler replies, so whatever is asked after comes behind it."""

    user_id: Id
