"""Secrets out of dead letters: messages name their secret fields, the runtime blanks them."""

from __future__ import annotations

import msgspec

from transport import Envelope

REDACTED = "[redacted]"


def without_secrets(envelope: Envelope) -> tuple[Envelope, bool]:
    """The envelope with its message's `secret_fields` blanked, and whether any were.

    A message type lists them as a class attribute, e.g.
    `secret_fields: ClassVar[tuple[str, ...]] = ("password",)`.
    """
    body = envelope.body
    names = [name for name in getattr(type(body), "secret_fields", ()) if hasattr(body, name)]
    if not names:
        return envelope, False
    blanked = msgspec.structs.replace(body, **dict.fromkeys(names, REDACTED))
    return msgspec.structs.replace(envelope, body=blanked), True
