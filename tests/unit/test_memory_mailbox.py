"""The memory mailbox: a bounded FIFO with one reader and senders waiting in line."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.unit.conftest import wait_until
from transport import Envelope, MailboxClosed
from transport.memory import MemoryMailbox


def envelope(label: str) -> Envelope:
    return Envelope(id=label, target="box", shard=0, kind="tell", body=None)


def ids(envelopes: list[Envelope]) -> list[str]:
    return [e.id for e in envelopes]


async def settle() -> None:
    """Let every runnable task take its next step (a few loop iterations)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_capacity_must_be_positive() -> None:
    """A mailbox without room for one envelope is refused at construction."""
    with pytest.raises(ValueError, match="capacity"):
        MemoryMailbox(0)


async def test_fifo_order() -> None:
    """Envelopes come out in the order they went in, whether offered or put."""
    box = MemoryMailbox(10)
    assert box.offer(envelope("a"))
    await box.put(envelope("b"))
    assert box.offer(envelope("c"))
    assert box.depth() == 3
    first = box.get_nowait()
    assert first is not None
    assert first.id == "a"
    assert ids([await box.get(), await box.get()]) == ["b", "c"]
    assert box.get_nowait() is None
    assert box.depth() == 0


async def test_offer_refuses_when_full_and_put_waits() -> None:
    """A full mailbox refuses offer and makes put wait until the reader makes room."""
    box = MemoryMailbox(1)
    assert box.offer(envelope("a"))
    assert not box.offer(envelope("b"))
    sender = asyncio.create_task(box.put(envelope("b")))
    await settle()
    assert not sender.done()
    assert (await box.get()).id == "a"
    await asyncio.wait_for(sender, 1.0)
    assert ids([await box.get()]) == ["b"]


async def test_offer_does_not_jump_the_line_of_waiting_senders() -> None:
    """While senders wait in line, offer refuses even if room appeared, so order is kept."""
    box = MemoryMailbox(1)
    assert box.offer(envelope("a"))
    waiting = asyncio.create_task(box.put(envelope("b")))
    await settle()
    assert box.get_nowait() is not None  # room is promised to the waiting sender
    assert not box.offer(envelope("c"))
    await asyncio.wait_for(waiting, 1.0)
    assert ids([await box.get()]) == ["b"]


async def test_blocked_reader_is_woken_by_a_sender() -> None:
    """A reader waiting on an empty mailbox gets the next envelope as soon as it is offered."""
    box = MemoryMailbox(2)
    reader = asyncio.create_task(box.get())
    await settle()
    assert not reader.done()
    assert box.offer(envelope("a"))
    assert (await asyncio.wait_for(reader, 1.0)).id == "a"


async def test_capacity_never_exceeded_with_many_blocked_senders() -> None:
    """Many senders blocked on a small mailbox: depth never passes capacity, each sender's
    envelopes arrive in its order, and every envelope arrives exactly once."""
    capacity = 3
    box = MemoryMailbox(capacity)
    senders, per_sender = 12, 15
    rng = random.Random(7)
    overflow: list[int] = []

    async def sender(s: int) -> None:
        for i in range(per_sender):
            await box.put(envelope(f"{s}:{i}"))
            if box.depth() > capacity:
                overflow.append(box.depth())
            if rng.random() < 0.3:
                await asyncio.sleep(0)

    received: list[str] = []

    async def reader() -> None:
        while len(received) < senders * per_sender:
            if rng.random() < 0.5:
                item = box.get_nowait()
                if item is None:
                    item = await box.get()
            else:
                item = await box.get()
            received.append(item.id)
            if box.depth() > capacity:
                overflow.append(box.depth())
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)

    async def monitor() -> None:
        while True:
            if box.depth() > capacity:
                overflow.append(box.depth())
            await asyncio.sleep(0)

    watcher = asyncio.create_task(monitor())
    try:
        await asyncio.wait_for(asyncio.gather(reader(), *(sender(s) for s in range(senders))), 5.0)
    finally:
        watcher.cancel()
    assert overflow == []
    assert sorted(received) == sorted(f"{s}:{i}" for s in range(senders) for i in range(per_sender))
    for s in range(senders):
        mine = [int(r.split(":")[1]) for r in received if r.startswith(f"{s}:")]
        assert mine == list(range(per_sender))


@pytest.mark.parametrize("seed", range(5))
async def test_capacity_holds_while_blocked_senders_are_cancelled_at_random(seed: int) -> None:
    """Senders cancelled at random moments while a reader drains: depth never passes capacity,
    every sender whose put returned is received exactly once, no cancelled one is, and the
    mailbox still works at full capacity afterwards."""
    capacity = 2
    box = MemoryMailbox(capacity)
    rng = random.Random(seed)
    overflow: list[int] = []
    received: list[str] = []
    tasks = {f"s{i}": asyncio.create_task(box.put(envelope(f"s{i}"))) for i in range(40)}

    async def reader() -> None:
        while not all(task.done() for task in tasks.values()) or box.depth():
            item = box.get_nowait()
            if item is not None:
                received.append(item.id)
            if box.depth() > capacity:
                overflow.append(box.depth())
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)

    async def canceller() -> None:
        for name in rng.sample(sorted(tasks), 15):
            tasks[name].cancel()
            if box.depth() > capacity:
                overflow.append(box.depth())
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(reader(), canceller()), 5.0)
    delivered = {name for name, task in tasks.items() if not task.cancelled()}
    assert overflow == []
    assert sorted(received) == sorted(delivered)
    # the accounting is intact: exactly `capacity` more fit, then the mailbox is full
    assert all(box.offer(envelope(f"x{i}")) for i in range(capacity))
    assert not box.offer(envelope("one too many"))


async def test_cancelled_waiting_sender_keeps_the_line_moving() -> None:
    """A blocked sender cancelled in the middle of the line leaves; those behind it get in."""
    box = MemoryMailbox(1)
    assert box.offer(envelope("a"))
    b = asyncio.create_task(box.put(envelope("b")))
    c = asyncio.create_task(box.put(envelope("c")))
    d = asyncio.create_task(box.put(envelope("d")))
    await settle()
    c.cancel()
    await settle()
    got = [await asyncio.wait_for(box.get(), 1.0) for _ in range(3)]
    assert ids(got) == ["a", "b", "d"]
    await asyncio.gather(b, d)
    assert c.cancelled()
    assert box.depth() == 0


async def test_cancelled_first_in_line_passes_its_turn() -> None:
    """The first waiting sender cancelled: the next one in line takes its place."""
    box = MemoryMailbox(1)
    assert box.offer(envelope("a"))
    b = asyncio.create_task(box.put(envelope("b")))
    c = asyncio.create_task(box.put(envelope("c")))
    await settle()
    b.cancel()
    await settle()
    assert ids([await box.get(), await asyncio.wait_for(box.get(), 1.0)]) == ["a", "c"]
    await c


async def test_sender_cancelled_after_being_woken_gives_its_room_to_the_next() -> None:
    """A sender woken (room reserved) but cancelled before it ran passes the room on."""
    box = MemoryMailbox(1)
    assert box.offer(envelope("a"))
    b = asyncio.create_task(box.put(envelope("b")))
    c = asyncio.create_task(box.put(envelope("c")))
    await settle()
    assert box.get_nowait() is not None  # wakes b: its room is reserved
    b.cancel()  # ...but b is cancelled before it gets to run
    await asyncio.gather(b, c, return_exceptions=True)
    assert b.cancelled()
    assert c.done()
    assert c.exception() is None
    assert box.depth() == 1
    assert not box.offer(envelope("d"))  # full again: c holds the only place
    assert ids([await box.get()]) == ["c"]
    assert box.offer(envelope("e"))


async def test_sender_cancelled_while_room_appears_does_not_inflate_capacity() -> None:
    """A sender cancelled in line just as the reader frees room gives back no room it never
    held: the mailbox's capacity still holds afterwards."""
    box = MemoryMailbox(1)
    assert box.offer(envelope("a"))
    b = asyncio.create_task(box.put(envelope("b")))
    c = asyncio.create_task(box.put(envelope("c")))
    await settle()
    b.cancel()  # b's waiter is cancelled, but b has not run its cleanup yet
    assert box.get_nowait() is not None  # frees room: skips b, wakes c
    await asyncio.gather(b, c, return_exceptions=True)
    assert b.cancelled()
    assert box.depth() == 1
    assert not box.offer(envelope("d")), "capacity 1 exceeded"
    assert box.depth() == 1
    late = asyncio.create_task(box.put(envelope("e")))
    await settle()
    assert not late.done()
    assert ids([await box.get()]) == ["c"]
    await asyncio.wait_for(late, 1.0)
    assert ids([await box.get()]) == ["e"]


async def test_close_returns_what_was_left_and_refuses_more() -> None:
    """close() hands back the queued envelopes; later offers, puts and gets raise MailboxClosed."""
    box = MemoryMailbox(5)
    for label in "abc":
        assert box.offer(envelope(label))
    assert (await box.get()).id == "a"
    assert ids(box.close()) == ["b", "c"]
    assert box.depth() == 0
    with pytest.raises(MailboxClosed):
        box.offer(envelope("d"))
    with pytest.raises(MailboxClosed):
        await box.put(envelope("d"))
    with pytest.raises(MailboxClosed):
        await box.get()


async def test_close_wakes_blocked_reader() -> None:
    """A reader waiting on an empty mailbox is woken by close() with MailboxClosed."""
    box = MemoryMailbox(1)
    reader = asyncio.create_task(box.get())
    await settle()
    assert box.close() == []
    with pytest.raises(MailboxClosed):
        await asyncio.wait_for(reader, 1.0)


async def test_close_wakes_blocked_senders() -> None:
    """Senders waiting on a full mailbox are woken by close() with MailboxClosed (not dropped
    silently: each learns its envelope was not accepted)."""
    box = MemoryMailbox(1)
    assert box.offer(envelope("a"))
    senders = [asyncio.create_task(box.put(envelope(label))) for label in "bcd"]
    await settle()
    assert ids(box.close()) == ["a"]
    results = await asyncio.wait_for(asyncio.gather(*senders, return_exceptions=True), 1.0)
    assert all(isinstance(result, MailboxClosed) for result in results)


async def test_close_wakes_a_woken_sender_that_has_not_run_yet() -> None:
    """A sender woken with reserved room, then the mailbox closed before it ran: it raises
    MailboxClosed instead of slipping its envelope into a closed mailbox."""
    box = MemoryMailbox(1)
    assert box.offer(envelope("a"))
    sender = asyncio.create_task(box.put(envelope("b")))
    await settle()
    assert box.get_nowait() is not None
    assert box.close() == []
    with pytest.raises(MailboxClosed):
        await asyncio.wait_for(sender, 1.0)
    assert box.depth() == 0


async def test_wait_until_helper_fails_instead_of_hanging() -> None:
    """The conftest helper turns a condition that never holds into a test failure."""
    with pytest.raises(pytest.fail.Exception, match="not met"):
        await wait_until(lambda: False, timeout=0.02)
