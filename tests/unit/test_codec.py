"""The msgspec msgpack codec: envelopes, message registration, and failures as replies."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from actors.runtime import DomainError, Failure, HandlerFailed, RemoteError
from transport import Codec, CodecError, Envelope, Message


class Point(Message, frozen=True):
    x: int
    y: int


class Route(Message, frozen=True):
    name: str
    points: list[Point]
    tags: dict[str, str] = {}
    note: str | None = None


class Loose(Message, frozen=True):
    value: Any


class Narrow(Message, frozen=True):
    count: int


class NotRegistered(Message, frozen=True):
    n: int


class CodecTestRefusal(DomainError):
    code = "codec_test_refusal"
    category = "conflict"


class CodecTestOverLimit(DomainError):
    """A domain error whose constructor takes its own arguments, not a message."""

    code = "codec_test_over_limit"
    category = "forbidden"

    def __init__(self, amount: int, limit: int) -> None:
        super().__init__(
            f"{amount} is over the limit of {limit}", details={"amount": amount, "limit": limit}
        )
        self.amount = amount


def make_codec() -> Codec:
    codec = Codec()
    codec.register(Point, Route, Loose, Narrow, Failure)
    return codec


def envelope(body: Any, **fields: Any) -> Envelope:
    return Envelope(id="m-1", target="maps", shard=2, kind="tell", body=body, **fields)


def test_tell_envelope_round_trips() -> None:
    """A tell with a nested message body comes back equal, field for field."""
    codec = make_codec()
    original = envelope(
        Route(name="home", points=[Point(x=1, y=2), Point(x=-3, y=4)], tags={"k": "v"})
    )
    decoded = codec.roundtrip(original)
    assert decoded == original
    assert type(decoded.body) is Route
    assert type(decoded.body.points[0]) is Point


def test_ask_envelope_round_trips_every_field() -> None:
    """An ask keeps its sender, reply node, trace id, attempt count and deadline."""
    codec = make_codec()
    original = Envelope(
        id="m-2",
        target="maps",
        shard=0,
        kind="ask",
        body=Point(x=0, y=0),
        sender="rides/3",
        reply_to="node-a",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        attempt=2,
        deadline=1_700_000_000.25,
    )
    assert codec.roundtrip(original) == original


def test_reply_with_no_body_round_trips() -> None:
    """A reply to an ask whose handler returned None travels with an empty body."""
    codec = make_codec()
    original = Envelope(
        id="r-1", target="node-a", shard=0, kind="reply", body=None, in_reply_to="m-2"
    )
    assert codec.roundtrip(original) == original


def test_encoded_message_carries_its_tag() -> None:
    """On the wire a message body names its type by the class name (the tag)."""
    codec = make_codec()
    data = codec.encode(envelope(Point(x=1, y=2)))
    assert b"msg_type" in data
    assert b"Point" in data


def test_same_type_registered_twice_is_fine() -> None:
    """Registering a type again (two actors handling it) is not a clash."""
    codec = make_codec()
    codec.register(Point, Point)
    assert codec.knows(Point)


def test_duplicate_tag_is_refused() -> None:
    """A second, different class with the same tag is refused, naming the first one."""
    codec = make_codec()

    def other_point() -> type[Message]:
        class Point(Message, frozen=True):  # same name, so the same tag
            z: int

        return Point

    with pytest.raises(ValueError, match="tag 'Point' is taken"):
        codec.register(other_point())
    assert codec.knows(Point)


def test_only_message_types_can_be_registered() -> None:
    """Plain classes and structs that are not Messages are refused."""
    codec = Codec()

    class Plain(msgspec.Struct):
        n: int

    with pytest.raises(TypeError, match="not a Message"):
        codec.register(Plain)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a Message"):
        codec.register(int)  # type: ignore[arg-type]


def test_unregistered_message_is_a_codec_error() -> None:
    """Encoding a message of a type the codec does not know raises CodecError."""
    with pytest.raises(CodecError, match="not registered"):
        make_codec().encode(envelope(NotRegistered(n=1)))


def test_plain_value_as_body_is_a_codec_error() -> None:
    """A body that is not a Message (a dict, say) cannot cross a network."""
    with pytest.raises(CodecError, match="not registered"):
        make_codec().encode(envelope({"n": 1}))


def test_unencodable_field_is_a_codec_error() -> None:
    """A registered message holding a value msgpack cannot encode raises CodecError."""
    codec = make_codec()
    with pytest.raises(CodecError, match="cannot be encoded"):
        codec.encode(envelope(Loose(value=object())))
    with pytest.raises(CodecError, match="cannot be encoded"):
        codec.encode(envelope(Loose(value=2**80)))


def test_field_of_the_wrong_type_fails_to_decode() -> None:
    """A value of the wrong type for its field encodes, but is refused when decoded."""
    codec = make_codec()
    with pytest.raises(CodecError, match="cannot be decoded"):
        codec.roundtrip(envelope(Narrow(count="three")))  # type: ignore[arg-type]


def test_message_unknown_to_the_receiver_fails_to_decode() -> None:
    """A node that has not registered a type refuses to decode a message of it."""
    sender = make_codec()
    receiver = Codec()
    receiver.register(Narrow)
    data = sender.encode(envelope(Point(x=1, y=1)))
    with pytest.raises(CodecError, match="cannot be decoded"):
        receiver.decode(data)


def test_garbage_bytes_fail_to_decode() -> None:
    """Bytes that are not an envelope raise CodecError, not a msgspec error."""
    with pytest.raises(CodecError):
        make_codec().decode(b"\x93not an envelope")


def test_registering_later_extends_the_decoder() -> None:
    """A type registered after the first decode is decodable afterwards."""
    codec = Codec()
    codec.register(Point)
    codec.roundtrip(envelope(Point(x=1, y=1)))
    codec.register(NotRegistered)
    assert codec.roundtrip(envelope(NotRegistered(n=5))).body == NotRegistered(n=5)


def test_body_json_renders_messages_and_falls_back_to_repr() -> None:
    """Dead letters show the message as JSON, or its repr when it will not encode."""
    codec = make_codec()
    assert msgspec.json.decode(codec.body_json(Point(x=1, y=2))) == {
        "msg_type": "Point",
        "x": 1,
        "y": 2,
    }
    rendered = msgspec.json.decode(codec.body_json(Loose(value=object())))
    assert isinstance(rendered, str)
    assert rendered.startswith("Loose(")


def test_failure_round_trips_and_rebuilds_the_registered_class() -> None:
    """A Failure made from a domain error crosses the codec and raises the same class again."""
    codec = make_codec()
    failure = Failure.of(CodecTestRefusal("not now", details={"retry_in": 5}))
    decoded = codec.roundtrip(
        Envelope(id="r", target="n", shard=0, kind="reply", body=failure, in_reply_to="m")
    ).body
    assert decoded == failure
    error = decoded.to_error()
    assert type(error) is CodecTestRefusal
    assert (error.code, error.category, error.message) == (
        "codec_test_refusal",
        "conflict",
        "not now",
    )
    assert error.details == {"retry_in": 5}
    assert str(error) == "not now"


def test_failure_rebuilds_a_class_with_its_own_constructor() -> None:
    """A domain error whose __init__ takes other arguments is still rebuilt as its own class."""
    codec = make_codec()
    failure = Failure.of(CodecTestOverLimit(120, 100))
    error = codec.roundtrip(envelope(failure)).body.to_error()
    assert type(error) is CodecTestOverLimit
    assert error.code == "codec_test_over_limit"
    assert error.category == "forbidden"
    assert error.message == "120 is over the limit of 100"
    assert error.details == {"amount": 120, "limit": 100}


def test_failure_of_a_runtime_error_rebuilds_it() -> None:
    """The runtime's own errors (HandlerFailed) travel the same way."""
    error = Failure.of(HandlerFailed("RuntimeError: boom")).to_error()
    assert type(error) is HandlerFailed
    assert error.message == "RuntimeError: boom"


def test_unknown_code_becomes_remote_error_keeping_code_and_category() -> None:
    """A code this process does not know becomes a RemoteError with that code and category."""
    codec = make_codec()
    failure = Failure(
        code="someone_elses_code", category="rate_limited", message="slow down", details={"a": 1}
    )
    error = codec.roundtrip(envelope(failure)).body.to_error()
    assert type(error) is RemoteError
    assert error.code == "someone_elses_code"
    assert error.category == "rate_limited"
    assert error.message == "slow down"
    assert error.details == {"a": 1}


def test_remote_error_with_unknown_category_is_internal() -> None:
    """A category outside the known list is treated as internal, not passed through."""
    error = Failure(code="mystery", category="weird", message="?").to_error()
    assert isinstance(error, RemoteError)
    assert (error.code, error.category) == ("mystery", "internal")


def test_remote_error_round_trips_as_remote_error() -> None:
    """A RemoteError passed on again keeps the original code, not 'remote_error'."""
    first = Failure(code="far_away", category="not_found", message="gone").to_error()
    again = Failure.of(first).to_error()
    assert isinstance(again, RemoteError)
    assert (again.code, again.category, again.message) == ("far_away", "not_found", "gone")


def test_domain_error_category_must_be_known() -> None:
    """Declaring a domain error with an unknown category fails at class creation."""
    with pytest.raises(TypeError, match="category"):

        class Bad(DomainError):
            code = "codec_test_bad_category"
            category = "oops"


def test_domain_error_code_cannot_be_taken_twice() -> None:
    """Two different error classes cannot claim the same code."""
    with pytest.raises(TypeError, match="is taken"):

        class Imposter(DomainError):
            code = "codec_test_refusal"


def test_register_module_takes_every_message_type_the_module_defines() -> None:
    """An actor's messages.py registers at once, replies included, but not what it imports."""
    import types

    module = types.ModuleType("fake_actor.messages")

    class DoThing(Message, frozen=True):
        n: int

    class ThingDone(Message, frozen=True):
        n: int

    DoThing.__module__ = ThingDone.__module__ = module.__name__
    module.DoThing = DoThing  # type: ignore[attr-defined]
    module.ThingDone = ThingDone  # type: ignore[attr-defined]
    module.Message = Message  # type: ignore[attr-defined]
    codec = Codec()
    codec.register_module(module)
    assert codec.knows(DoThing)
    assert codec.knows(ThingDone)
    assert not codec.knows(Message)
