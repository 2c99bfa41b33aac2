"""Every actor type the node knows, registered together as the node registers them."""

from __future__ import annotations

from splitgo.node import ACTORS
from transport import Codec


def test_every_actor_s_messages_register_in_one_codec() -> None:
    """No two actors' messages share a tag (the node would refuse to start)."""
    codec = Codec()
    for spec in ACTORS.values():
        codec.register_module(spec.messages)
    assert {"auth", "notifications", "payments", "splits", "rides"} <= set(ACTORS)
