"""What every auth message shares: the bounds of its text fields, the shard key
(`auth_key`), the base of commands and events (`AuthInput`), and the email rule every
edge and actor applies."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

import msgspec

from actors.auth.messages.errors import InvalidField
from actors.runtime import Message
from actors.runtime.bounds import check_bounds

Role = Literal["user", "driver", "admin"]
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


def auth_key(message: Any) -> str | None:
    """The shard key of an auth message: its user id, else its email (None: any shard).

    A user's id names the one shard that keeps them hot and writes them (actors/auth/
    profiles.py); an email routes what comes before an id is known (sign-up, sign-in). A
    GetNames of one user goes to that user's shard, which names them from memory when it
    keeps them; a longer one to any shard.
    """
    user_id = getattr(message, "user_id", None)
    if user_id:
        return str(user_id)
    email = getattr(message, "email", None)
    if email:
        return str(email).strip().lower()
    user_ids = getattr(message, "user_ids", None)
    if user_ids and len(user_ids) == 1:
        return str(user_ids[0])
    return None


class AuthInput(Message, frozen=True):
    """What the auth actor handles (commands, and the events it publishes): the fields'
    bounds hold wherever one is made or decoded, or it is InvalidField naming the field
    (`$.password`, never its value)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidField)


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
