"""The auth actor's input rules, with no IO: names, phone numbers, roles, redirect URIs.

The HTTP edge checks these too; the actor trusts no caller. Email addresses follow the one
rule in `messages.py` (`normalise_email`). A refusal is an InvalidField naming the field.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from actors.auth.messages import EMAIL_MAX, InvalidField, has_control_characters

ROLES = ("user", "driver", "admin")
NAME_MAX = 100
USER_AGENT_MAX = 512
IP_MAX = 64

_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def normalise_name(raw: str, field: str = "$.name") -> str:
    """The name stripped; InvalidField unless 1..100 characters with no control characters."""
    name = " ".join(raw.split())
    if not name:
        raise InvalidField("A name is required.", details={"field": field})
    if len(name) > NAME_MAX:
        raise InvalidField(f"A name has at most {NAME_MAX} characters.", details={"field": field})
    if has_control_characters(name):
        raise InvalidField("A name cannot contain control characters.", details={"field": field})
    return name


def name_from_provider(name: str | None, email: str) -> str:
    """The name a social sign-in's new account gets: the provider's, else the email's
    local part (cut to fit, whatever the provider sent)."""
    local = email.split("@", 1)[0]
    raw = (name or "").strip() or local
    try:
        return normalise_name(raw[:NAME_MAX])
    except InvalidField:
        return local[:NAME_MAX]


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


def contact_phone(raw: str) -> str:
    """The number of a contact a messenger shared (it may lack the +), in E.164."""
    phone = normalise_phone(raw if raw.startswith("+") else f"+{raw}")
    if phone is None:
        raise InvalidField("The shared contact has no phone number.", details={"field": "$.phone"})
    return phone


def check_role(role: str) -> str:
    """The role, if it is one of ROLES; InvalidField ($.role) otherwise."""
    if role not in ROLES:
        raise InvalidField(f"A role is one of {', '.join(ROLES)}.", details={"field": "$.role"})
    return role


def login_email(raw: str) -> str:
    """The address a login looks up. No format check: a malformed address is just one no
    account has, and gets the same answer."""
    return raw.strip().lower()[:EMAIL_MAX]


def clip(text: str | None, limit: int) -> str | None:
    """`text` cut to `limit` characters; None when empty (user agents, addresses)."""
    return text[:limit] if text else None


def check_redirect_uri(redirect_uri: str, public_url: str) -> None:
    """The provider sends the code back here: an absolute http(s) URL, on our own site
    when we know it (`public_url`); InvalidField ($.redirect_uri) otherwise."""
    parts = urlsplit(redirect_uri)
    ours = urlsplit(public_url) if public_url else None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidField(
            "The redirect URI must be an absolute http(s) URL.",
            details={"field": "$.redirect_uri"},
        )
    if ours is not None and (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc):
        raise InvalidField(
            "The redirect URI must be on this site.", details={"field": "$.redirect_uri"}
        )
