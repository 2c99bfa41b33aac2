"""The msgspec msgpack codec over the registered message types."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Union

import msgspec

from transport.envelope import Envelope, Kind


class Message(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="msg_type"):
    """Base of every message: frozen, keyword-only, tagged by its class name."""


class CodecError(Exception):
    """A message that cannot cross a network: unregistered, unencodable or undecodable."""

    code = "codec_error"


class _WireEnvelope(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    # Field order must match Envelope: the body stays raw until its type is known.
    id: str
    target: str
    shard: int
    kind: Kind
    body: msgspec.Raw
    sender: str | None = None
    reply_to: str | None = None
    in_reply_to: str | None = None
    trace_id: str = ""
    attempt: int = 0
    deadline: float | None = None


class Codec:
    """Encodes envelopes to msgpack and back, for the message types registered with it."""

    def __init__(self) -> None:
        self._types: dict[str, type[Message]] = {}
        self._encoder = msgspec.msgpack.Encoder()
        self._body_decoder: msgspec.msgpack.Decoder[Any] | None = None
        self._wire_decoder = msgspec.msgpack.Decoder(_WireEnvelope)
        self._json_encoder = msgspec.json.Encoder()

    def register(self, *types: type[Message]) -> None:
        """Make these message types known; a second type with the same tag is refused."""
        for message_type in types:
            if not (isinstance(message_type, type) and issubclass(message_type, Message)):
                raise TypeError(f"{message_type!r} is not a Message subclass")
            tag = str(message_type.__struct_config__.tag)
            known = self._types.get(tag)
            if known is not None and known is not message_type:
                raise ValueError(
                    f"message tag {tag!r} is taken by {known.__module__}.{known.__qualname__}"
                )
            self._types[tag] = message_type
        self._body_decoder = None

    def register_module(self, module: ModuleType) -> None:
        """Register every Message type an actor's `messages.py` defines or re-exports from
        its own package (`replies.py` beside it); not what it imports of other actors."""
        package = module.__name__.rpartition(".")[0]
        self.register(
            *(
                value
                for value in vars(module).values()
                if isinstance(value, type)
                and issubclass(value, Message)
                and value is not Message
                and (value.__module__ == module.__name__ or _within(value.__module__, package))
            )
        )

    def knows(self, message_type: type) -> bool:
        tag = getattr(getattr(message_type, "__struct_config__", None), "tag", None)
        return tag is not None and self._types.get(str(tag)) is message_type

    def encode(self, envelope: Envelope) -> bytes:
        body = envelope.body
        if body is not None and not self.knows(type(body)):
            raise CodecError(f"message type {type(body).__qualname__} is not registered")
        try:
            return self._encoder.encode(envelope)
        except (TypeError, ValueError, OverflowError) as error:
            raise CodecError(f"{type(body).__qualname__} cannot be encoded: {error}") from error

    def decode(self, data: bytes) -> Envelope:
        try:
            wire = self._wire_decoder.decode(data)
            body = self._decoder().decode(wire.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise CodecError(f"envelope cannot be decoded: {error}") from error
        return Envelope(
            id=wire.id,
            target=wire.target,
            shard=wire.shard,
            kind=wire.kind,
            body=body,
            sender=wire.sender,
            reply_to=wire.reply_to,
            in_reply_to=wire.in_reply_to,
            trace_id=wire.trace_id,
            attempt=wire.attempt,
            deadline=wire.deadline,
        )

    def roundtrip(self, envelope: Envelope) -> Envelope:
        """What the envelope becomes after crossing a network."""
        return self.decode(self.encode(envelope))

    def body_json(self, body: Any) -> bytes:
        """A JSON rendering of a message body, for people reading dead letters."""
        try:
            return self._json_encoder.encode(body)
        except (TypeError, ValueError, OverflowError):
            return self._json_encoder.encode(repr(body))

    def _decoder(self) -> msgspec.msgpack.Decoder[Any]:
        if self._body_decoder is None:
            body_type: Any = Union[tuple([*self._types.values(), type(None)])]  # noqa: UP007
            self._body_decoder = msgspec.msgpack.Decoder(body_type)
        return self._body_decoder


def _within(module_name: str, package: str) -> bool:
    return bool(package) and module_name.startswith(package + ".")
