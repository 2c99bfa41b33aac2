"""Passkeys (WebAuthn): registering one, signing in with one, a user's passkeys, and
the errors of it."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from actors.auth.messages.fields import AuthInput
from actors.runtime import DomainError, Message
from actors.runtime.bounds import Id

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
