"""A batching actor may see its batch's envelopes (`Actor.handle_envelopes`): each message's
own id, the one its handler sees when the message runs alone, so a batch can be made
idempotent by the runtime's ids; a batch that raises still goes one by one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from actors.runtime import (
    Actor,
    ActorSystem,
    DomainError,
    Envelope,
    Message,
    RestartPolicy,
    handles,
)
from tests.runtime.conftest import wait_until
from transport import Codec

FAST = RestartPolicy(backoff_initial=0.001, backoff_max=0.01)


class Stamped(Message, frozen=True):
    n: int


class StampReceipt(Message, frozen=True):
    n: int
    envelope_id: str


class StampRefused(DomainError):
    """A refusal a single handler raises inside a batch."""

    code = "stamp_refused"
    category = "invalid"


class Book:
    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.singles: list[tuple[str, int]] = []
        self.first_may_finish = asyncio.Event()


class Stamper(Actor):
    batch_size = 8

    def __init__(self, book: Book) -> None:
        self.book = book

    async def handle_envelopes(self, envelopes: Sequence[Envelope]) -> Sequence[Any]:
        numbers = [envelope.body.n for envelope in envelopes]
        self.book.batches.append(
            [(envelope.id, n) for envelope, n in zip(envelopes, numbers, strict=True)]
        )
        if numbers == [0]:
            await self.book.first_may_finish.wait()
        if any(n < 0 for n in numbers):
            raise RuntimeError("the batch transaction failed")
        return [await self.handle_single(envelope) for envelope in envelopes]

    @handles(Stamped)
    async def stamp(self, message: Stamped) -> StampReceipt:
        assert self.envelope is not None, "a message run alone has its envelope in hand"
        self.book.singles.append((self.envelope.id, message.n))
        if message.n == 13:
            raise StampRefused("thirteen is refused")
        return StampReceipt(n=message.n, envelope_id=self.envelope.id)


async def _queue_behind_first(system: ActorSystem, book: Book, numbers: list[int]) -> Any:
    """Hold the first message's batch until the others wait behind it."""
    ref = system.spawn(Stamper, "stamper", factory=lambda: Stamper(book), policy=FAST)
    await ref.tell(Stamped(n=0))
    await wait_until(lambda: len(book.batches) == 1)
    for n in numbers[:-1]:
        await ref.tell(Stamped(n=n))
    ask = asyncio.create_task(ref.ask(Stamped(n=numbers[-1])))
    await wait_until(lambda: system.status()[0].mailbox >= len(numbers))
    book.first_may_finish.set()
    return await ask


async def test_a_batch_sees_each_envelope_id_and_its_handlers_the_same(
    system: ActorSystem, codec: Codec
) -> None:
    """handle_envelopes gets one envelope per message with distinct ids; handle_single runs
    each by its handler with that same envelope in hand, and a refusal is its result."""
    codec.register(StampReceipt)
    book = Book()
    reply = await _queue_behind_first(system, book, [1, 13, 3, 4])
    assert [n for _, n in book.batches[1]] == [1, 13, 3, 4]
    ids = [envelope_id for envelope_id, _ in book.batches[1]]
    assert len(set(ids)) == 4
    assert all(ids)
    assert reply == StampReceipt(n=4, envelope_id=ids[-1])
    assert book.singles[1:] == book.batches[1]
    status = system.status()[0]
    assert status.handled == 5
    assert status.rejected == 1
    assert status.restarts == 0


async def test_a_failed_batch_goes_one_by_one_with_the_same_ids(
    system: ActorSystem, codec: Codec
) -> None:
    """When handle_envelopes raises, each message is handled again alone, by its handler,
    with the envelope id the batch saw (so a batch's inbox marks are found)."""
    codec.register(StampReceipt)
    book = Book()
    reply = await _queue_behind_first(system, book, [1, -2, 3])
    failed = book.batches[1]
    assert [n for _, n in failed] == [1, -2, 3]
    assert reply == StampReceipt(n=3, envelope_id=failed[-1][0])
    assert book.singles[1:] == failed
    status = system.status()[0]
    assert status.restarts == 1
    assert status.dead_lettered == 0
