"""The probe actor's public interface: messages the multi-node tests send."""

from __future__ import annotations

from actors.runtime import DomainError, Message


class Record(Message, frozen=True):
    """Record one effect for `key`; `seq` counts up per key, so order can be checked."""

    key: str
    seq: int


class Explode(Message, frozen=True):
    """Crash unless the `fixed` switch is on in the database; then record the effect."""

    key: str


class Echo(Message, frozen=True):
    text: str


class Echoed(Message, frozen=True):
    text: str
    node: str


class Refuse(Message, frozen=True):
    reason: str


class ProbeRefused(DomainError):
    """The probe said no, on purpose: a domain error that must cross nodes intact."""

    code = "probe_refused"
    category = "conflict"
