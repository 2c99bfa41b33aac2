"""Account deletion and the data export's account part: what auth keeps about a user,
deleting an account (and the event it publishes), and the errors of it."""

from __future__ import annotations

from typing import ClassVar

from actors.auth.messages.accounts import UserView
from actors.auth.messages.fields import AuthInput, Password
from actors.auth.messages.sessions import SessionView
from actors.runtime import DomainError, IdempotencyKey, Message
from actors.runtime.bounds import Id

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
