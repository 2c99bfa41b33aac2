"""Passkey rules with no IO: names, the signature counter, the relying party, and reading
the challenge back out of a browser's WebAuthn response.

The actor's part (`passkeys.py`) does the ceremonies with the `webauthn` library; these are
the decisions around them, kept apart so they are tested on their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from actors.auth.messages import PASSKEY_NAME_MAX, InvalidField, has_control_characters

# a challenge is good for one ceremony within this many seconds
CHALLENGE_SECONDS = 5 * 60
# how long the browser may let the person choose an authenticator (a hint, milliseconds)
CEREMONY_TIMEOUT_MS = 4 * 60 * 1000
# what a browser may say about how it reaches an authenticator (WebAuthn's enum)
TRANSPORTS = ("ble", "cable", "hybrid", "internal", "nfc", "smart-card", "usb")
RP_NAME = "splitgo"


def normalise_passkey_name(raw: str, field: str = "$.name") -> str:
    """The name a person gave a passkey ("Phone"), spaces collapsed; InvalidField unless
    1..60 characters with no control characters."""
    name = " ".join(raw.split())
    if not name:
        raise InvalidField("Give the passkey a name, such as Phone.", details={"field": field})
    if len(name) > PASSKEY_NAME_MAX:
        raise InvalidField(
            f"A passkey's name has at most {PASSKEY_NAME_MAX} characters.",
            details={"field": field},
        )
    if has_control_characters(name):
        raise InvalidField(
            "A passkey's name cannot contain control characters.", details={"field": field}
        )
    return name


def sign_count_advanced(stored: int, presented: int) -> bool:
    """Whether an assertion's signature counter is acceptable after `stored`.

    An authenticator that counts must report more than last time: the same or a lower
    number means the assertion was replayed or the credential was cloned. One that does
    not count (synced passkeys) reports 0 each time, which is accepted while the stored
    count is 0 too.
    """
    if stored == 0 and presented == 0:
        return True
    return presented > stored


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the passkeys are for: `id` is the host of the public URL (what authenticators
    scope credentials to), `origin` the scheme, host and port a browser reports."""

    id: str
    origin: str


def relying_party(public_url: str) -> RelyingParty | None:
    """The relying party of the node's public URL; None when there is none to speak of
    (no URL, not http(s), no host)."""
    parts = urlsplit(public_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return None
    shown = f"[{host}]" if ":" in host else host
    origin = (
        f"{parts.scheme}://{shown}"
        if port in (None, default)
        else f"{parts.scheme}://{shown}:{port}"
    )
    return RelyingParty(id=host, origin=origin)


def base64url_decode(text: str) -> bytes:
    """Bytes of unpadded base64url text (as WebAuthn's JSON carries them); ValueError if
    it is not."""
    if not isinstance(text, str):
        raise ValueError("not base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url text") from None


def parse_credential(raw: str) -> dict[str, Any]:
    """A browser's credential JSON as a dict; ValueError unless it is a JSON object."""
    try:
        decoded = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError("the credential is not JSON") from None
    if not isinstance(decoded, dict):
        raise ValueError("the credential is not a JSON object")
    return decoded


def challenge_of(credential: dict[str, Any]) -> bytes:
    """The challenge a credential answers, read from its clientDataJSON (the signature
    over it is checked later, against the challenge we stored); ValueError if unreadable."""
    response = credential.get("response")
    if not isinstance(response, dict):
        raise ValueError("the credential has no response")
    client_data = base64url_decode(response.get("clientDataJSON", ""))
    try:
        fields = json.loads(client_data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ValueError("the client data is not JSON") from None
    if not isinstance(fields, dict):
        raise ValueError("the client data is not a JSON object")
    challenge = base64url_decode(fields.get("challenge", ""))
    if not challenge:
        raise ValueError("the client data names no challenge")
    return challenge


def raw_id_of(credential: dict[str, Any]) -> bytes:
    """The credential id a response names (its rawId); ValueError if unreadable."""
    raw_id = base64url_decode(credential.get("rawId", ""))
    if not raw_id:
        raise ValueError("the credential names no id")
    return raw_id


def transports_of(credential: dict[str, Any]) -> list[str]:
    """The transports a registration response lists, only WebAuthn's known ones, sorted."""
    response = credential.get("response")
    listed = response.get("transports") if isinstance(response, dict) else None
    if not isinstance(listed, list):
        return []
    return sorted({item for item in listed if isinstance(item, str) and item in TRANSPORTS})


def challenge_digest(challenge: bytes) -> bytes:
    """What is stored of a challenge: its SHA-256."""
    return hashlib.sha256(challenge).digest()
