"""A handler that returns REPLY_LATER answers its ask itself, later: the runtime sends no
reply of its own, and the shard goes on with its next message meanwhile."""

from __future__ import annotations

import asyncio

from actors.runtime import REPLY_LATER, Actor, ActorSystem, Message, handles
from transport import Codec


class Later(Message, frozen=True):
    text: str


class Answered(Message, frozen=True):
    text: str


class Deferrer(Actor):
    """Answers `Later("wait")` from a task once `gate` opens; anything else at once."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate
        self.tasks: set[asyncio.Task[None]] = set()

    @handles(Later)
    async def later(self, message: Later) -> object:
        if message.text != "wait":
            return Answered(text=message.text)
        envelope = self.envelope
        assert envelope is not None

        async def answer() -> None:
            await self.gate.wait()
            self.system.reply(envelope, Answered(text="waited"))

        task = asyncio.create_task(answer())
        self.tasks.add(task)
        return REPLY_LATER


async def test_a_later_reply_reaches_the_asker_and_the_shard_goes_on(
    system: ActorSystem, codec: Codec
) -> None:
    """The deferred ask gets the reply sent later (not a None first), while a second ask to
    the same shard is answered before it."""
    codec.register(Answered)
    gate = asyncio.Event()
    ref = system.spawn(Deferrer, "deferrer", factory=lambda: Deferrer(gate))
    waiting = asyncio.create_task(ref.ask(Later(text="wait"), timeout=10.0))
    assert await ref.ask(Later(text="now"), timeout=10.0) == Answered(text="now")
    assert not waiting.done()
    gate.set()
    assert await waiting == Answered(text="waited")
    assert len(system.pending_asks) == 0
