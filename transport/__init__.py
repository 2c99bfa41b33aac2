"""How messages move between actors; knows nothing of any domain."""

from __future__ import annotations

from transport.base import Mailbox, MailboxClosed, ReplyHandler, Timer, Transport, UnknownTarget
from transport.codec import Codec, CodecError, Message
from transport.envelope import Envelope, Kind
from transport.ids import IdGenerator
from transport.memory import MemoryTransport

__all__ = [
    "Codec",
    "CodecError",
    "Envelope",
    "IdGenerator",
    "Kind",
    "Mailbox",
    "MailboxClosed",
    "MemoryTransport",
    "Message",
    "ReplyHandler",
    "Timer",
    "Transport",
    "UnknownTarget",
]
