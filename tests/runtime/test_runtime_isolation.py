"""Per-key failure isolation: a crashing message parks its key, not its shard.

The poisoned message is retried on its own backoff and dead-lettered with its attempt
count while the shard's other keys keep flowing; the key's later messages wait behind it
and run in order once it is dead-lettered. Run on the memory and the Redis transports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from actors.runtime import (
    Actor,
    ActorSystem,
    HandlerFailed,
    MemoryDeadLetterStore,
    Message,
    RestartPolicy,
    handles,
)
from actors.runtime.dead_letters import DeadLetter
from actors.runtime.group import ActorGroup
from tests.runtime.conftest import Cluster, left_in_stream, ready, wait_until
from transport import Codec
from transport.redis_shards import cancel_and_wait
from transport.redis_streams import RedisStreamsTransport

# retries far apart: the other keys' traffic is done long before the poison is given up
SLOW_RETRIES = RestartPolicy(backoff_initial=0.6, backoff_max=0.6)
# retries so far off that only a stop (or a takeover) ends the wait
NEVER_RETRIED = RestartPolicy(backoff_initial=30.0, backoff_max=30.0)
FAST = RestartPolicy(backoff_initial=0.001, backoff_max=0.01)


class Do(Message, frozen=True):
    key: str
    n: int
    poison: bool = False


class Done(Message, frozen=True):
    key: str
    n: int


class Journal:
    """What the actors did and when a dead letter was stored, in one ordered list."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.poison_calls = 0
        self.healed = False
        self.starts = 0

    def index(self, event: tuple[str, int]) -> int:
        return self.events.index(event)


class JournalLetters(MemoryDeadLetterStore):
    """A dead-letter store that notes each letter in the journal as ("dead", n)."""

    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    failures_left = 0  # how many of the next adds fail, as a database that is down would

    async def add(self, letter: DeadLetter) -> None:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ConnectionError("the dead-letter table is unreachable")
        await super().add(letter)
        self.journal.events.append(("dead", int(msgspec.json.decode(letter.body)["n"])))


class Keyed(Actor):
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def on_start(self) -> None:
        self.journal.starts += 1

    @handles(Do)
    async def do(self, message: Do) -> Done:
        if message.poison and not self.journal.healed:
            self.journal.poison_calls += 1
            raise RuntimeError(f"cannot digest {message.n}")
        self.journal.events.append((message.key, message.n))
        return Done(key=message.key, n=message.n)


def by_key(message: Any) -> str:
    return str(message.key)


async def keyed_node(
    cluster: Cluster, journal: Journal, policy: RestartPolicy, node_id: str = "iso-node"
) -> tuple[ActorSystem, JournalLetters]:
    codec = Codec()
    codec.register(Done)
    letters = JournalLetters(journal)
    system = await cluster.node(node_id, codec=codec, dead_letters=letters)
    system.spawn(
        Keyed,
        "keyed",
        factory=lambda: Keyed(journal),
        key=by_key,
        policy=policy,
        max_attempts=3,
    )
    await ready(system)
    return system, letters


async def test_a_poison_message_parks_its_key_while_other_keys_flow(cluster: Cluster) -> None:
    """On one shard, key A's poison message is retried on its own backoff while key B's
    asks are all answered; then it is dead-lettered with 3 attempts, its asker gets
    HandlerFailed, and A's later messages run after the dead letter, in order."""
    journal = Journal()
    system, letters = await keyed_node(cluster, journal, SLOW_RETRIES)
    ref = system.ref("keyed")
    poisoned = asyncio.create_task(ref.ask(Do(key="A", n=0, poison=True), timeout=10.0))
    await wait_until(lambda: journal.poison_calls == 1)
    for n in (1, 2, 3):
        await ref.tell(Do(key="A", n=n))
    answers = await asyncio.gather(*(ref.ask(Do(key="B", n=n)) for n in range(20)))

    assert answers == [Done(key="B", n=n) for n in range(20)]
    await wait_until(lambda: system.status()[0].parked == 4)  # on Redis, read from the stream
    assert not poisoned.done()
    assert [e for e in journal.events if e[0] != "B"] == []  # A waits, nothing dead yet

    with pytest.raises(HandlerFailed, match="RuntimeError: cannot digest 0"):
        await poisoned
    await wait_until(lambda: ("A", 3) in journal.events)
    assert journal.poison_calls == 3
    dead = journal.index(("dead", 0))
    assert all(journal.index(("B", n)) < dead for n in range(20))
    assert journal.events[dead:] == [("dead", 0), ("A", 1), ("A", 2), ("A", 3)]
    [letter] = (await letters.list())[0]
    assert (letter.message_type, letter.attempts) == ("Do", 3)
    status = system.status()[0]
    assert (status.failed, status.restarts, status.dead_lettered, status.parked) == (3, 3, 1, 0)
    assert status.state == "running"
    if cluster.redis:
        assert await left_in_stream(system, "keyed") == []  # every entry acked


async def test_other_keys_do_not_wait_for_the_restart_backoff(cluster: Cluster) -> None:
    """With a retry backoff of 30 s, a crash still rebuilds the actor at once (on_start runs
    again) and another key's ask is answered while the poisoned key stays parked; on Redis
    the parked entries stay unacked in the stream while the other key's are acked."""
    journal = Journal()
    system, _ = await keyed_node(cluster, journal, NEVER_RETRIED)
    ref = system.ref("keyed")
    await ref.tell(Do(key="A", n=0, poison=True))
    await ref.tell(Do(key="A", n=1))
    assert await ref.ask(Do(key="B", n=2), timeout=2.0) == Done(key="B", n=2)
    await wait_until(lambda: system.status()[0].parked == 2)
    assert journal.events == [("B", 2)]
    assert journal.starts == 2  # rebuilt once, between messages
    if cluster.redis:
        waiting = await left_in_stream(system, "keyed")
        assert sorted((e.body.key, e.body.n) for e in waiting) == [("A", 0), ("A", 1)]


async def test_parked_entries_left_by_a_stopped_node_are_taken_over_in_order(
    cluster: Cluster,
) -> None:
    """On Redis, a node that stops with a key parked acks nothing of it: the next owner of
    the shard reclaims the poison message and the message behind it and handles both in
    order. In memory, the stop keeps both as dead letters ("undelivered at shutdown")."""
    journal = Journal()
    system, letters = await keyed_node(cluster, journal, NEVER_RETRIED)
    ref = system.ref("keyed")
    await ref.tell(Do(key="A", n=0, poison=True))
    await ref.tell(Do(key="A", n=1))
    await wait_until(lambda: system.status()[0].parked == 2)
    await system.stop(timeout=0.2)
    if not cluster.redis:
        stored = sorted(msgspec.json.decode(x.body)["n"] for x in (await letters.list())[0])
        assert stored == [0, 1]
        return
    assert (await letters.list())[0] == []
    await cluster.close_transport(system.transport)
    journal.healed = True
    successor, _ = await keyed_node(cluster, journal, NEVER_RETRIED, node_id="iso-successor")
    await wait_until(lambda: journal.events == [("A", 0), ("A", 1)], timeout=10.0)
    assert await left_in_stream(successor, "keyed") == []


async def test_a_dead_letter_that_cannot_be_stored_keeps_its_key_parked(
    cluster: Cluster,
) -> None:
    """When storing the dead letter fails, the message stays parked (its key's next message
    still waits, other keys flow) and giving up is tried again later; the stored letter
    keeps the handler's error and the attempt count, then the key's next message runs."""
    journal = Journal()
    system, letters = await keyed_node(cluster, journal, FAST)
    letters.failures_left = 2
    ref = system.ref("keyed")
    await ref.tell(Do(key="A", n=0, poison=True))
    await ref.tell(Do(key="A", n=1))
    assert await ref.ask(Do(key="B", n=2)) == Done(key="B", n=2)
    await wait_until(lambda: ("A", 1) in journal.events)
    assert journal.events[-2:] == [("dead", 0), ("A", 1)]
    assert journal.poison_calls == 3  # giving up again does not run the handler again
    [letter] = (await letters.list())[0]
    assert (letter.error, letter.attempts) == ("RuntimeError: cannot digest 0", 3)
    assert system.status()[0].parked == 0


async def test_held_messages_are_bounded_by_the_mailbox_size(cluster: Cluster) -> None:
    """A parked key holds at most as many messages as a mailbox: past that the shard takes
    no more from its mailbox until the key moves on (backpressure, nothing dropped; on
    Redis the stream's bound already counts the parked entries, still unacked)."""
    journal = Journal()
    codec = Codec()
    codec.register(Done)
    system = await cluster.node("iso-node", codec=codec, dead_letters=JournalLetters(journal))
    ref = system.spawn(
        Keyed,
        "keyed",
        factory=lambda: Keyed(journal),
        key=by_key,
        policy=NEVER_RETRIED,
        mailbox_size=4,
    )
    await ready(system)
    await ref.tell(Do(key="A", n=0, poison=True))
    for n in range(1, 7):
        await ref.tell(Do(key="A", n=n))
    worker = system._groups["keyed"].workers[0]
    if cluster.redis:
        # the stream's own bound counts the parked entries (unacked): the rest waits to be sent
        await wait_until(lambda: worker.parked.count == 4)
    else:
        await wait_until(lambda: worker.parked.count == 4 and worker.mailbox.depth() == 3)
        assert system.status()[0].mailbox == 7
    assert journal.events == []


# --- supervision intensity -----------------------------------------------------------


async def test_intensity_counts_restarts_only_while_the_shard_makes_no_progress(
    cluster: Cluster,
) -> None:
    """With at most 2 restarts allowed, poison messages separated by handled ones never
    escalate (each one rebuilds the actor); three crashes in a row with nothing handled
    between them escalate the shard to its group."""
    journal = Journal()
    codec = Codec()
    codec.register(Done)
    system = await cluster.node("iso-node", codec=codec, dead_letters=JournalLetters(journal))
    ref = system.spawn(
        Keyed,
        "keyed",
        factory=lambda: Keyed(journal),
        key=by_key,
        policy=RestartPolicy(max_restarts=2, within=60.0, backoff_initial=0.001),
        group_policy=FAST,
        max_attempts=1,
    )
    group: ActorGroup = system._groups["keyed"]
    for n in range(4):
        await ref.tell(Do(key=f"poison-{n}", n=n, poison=True))
        assert await ref.ask(Do(key=f"fine-{n}", n=n)) == Done(key=f"fine-{n}", n=n)
    status = system.status()[0]
    assert (status.restarts, status.dead_lettered, group.restarts) == (4, 4, 0)

    for n in range(10, 13):
        await ref.tell(Do(key=f"poison-{n}", n=n, poison=True))
    await wait_until(lambda: group.restarts == 1)
    await wait_until(lambda: system.status()[0].dead_lettered == 7)
    assert await ref.ask(Do(key="after", n=99)) == Done(key="after", n=99)


# --- batches -------------------------------------------------------------------------


class Item(Message, frozen=True):
    key: str
    n: int


class Receipt(Message, frozen=True):
    n: int


class Ledger:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.singles: list[int] = []
        self.events: list[tuple[str, int]] = []
        self.first_may_finish = asyncio.Event()


class Batcher(Actor):
    """Commits items in batches; an item with a negative n sinks any batch and crashes its
    single handler too (a poison transfer)."""

    batch_size = 8

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @handles(Item)
    async def item(self, message: Item) -> Receipt:
        if message.n < 0:
            raise RuntimeError("the transfer cannot be booked")
        self.ledger.singles.append(message.n)
        self.ledger.events.append((message.key, message.n))
        return Receipt(n=message.n)

    async def handle_batch(self, messages: Sequence[Message]) -> Sequence[Any]:
        items = [m for m in messages if isinstance(m, Item)]
        self.ledger.batches.append([m.n for m in items])
        if [m.n for m in items] == [0]:
            await self.ledger.first_may_finish.wait()
        if any(m.n < 0 for m in items):
            raise RuntimeError("the batch transaction failed")
        self.ledger.events.extend((m.key, m.n) for m in items)
        return [Receipt(n=m.n) for m in items]


class LedgerLetters(MemoryDeadLetterStore):
    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    async def add(self, letter: DeadLetter) -> None:
        await super().add(letter)
        self.ledger.events.append(("dead", int(msgspec.json.decode(letter.body)["n"])))


async def test_a_poison_message_in_a_batch_parks_only_its_key(cluster: Cluster) -> None:
    """A batch sunk by one poison item is handled one by one: the other payers' items are
    booked, the poison's payer waits behind it, later batches of other payers go on, and
    after the poison is dead-lettered (3 attempts) its payer's next item is booked."""
    ledger = Ledger()
    codec = Codec()
    codec.register(Receipt)
    letters = LedgerLetters(ledger)
    system = await cluster.node("iso-node", codec=codec, dead_letters=letters)
    ref = system.spawn(
        Batcher,
        "batcher",
        factory=lambda: Batcher(ledger),
        key=by_key,
        policy=SLOW_RETRIES,
        max_attempts=3,
    )
    await ready(system)
    await ref.tell(Item(key="x", n=0))
    await wait_until(lambda: ledger.batches == [[0]])
    for key, n in (("p1", 1), ("bad", -1), ("p2", 2), ("bad", 3), ("p3", 4)):
        await ref.tell(Item(key=key, n=n))
    await wait_until(lambda: system.status()[0].mailbox == 6)  # the batch in hand and five
    ledger.first_may_finish.set()
    await wait_until(lambda: ledger.singles == [1, 2, 4])
    assert ledger.batches == [[0], [1, -1, 2, 3, 4]]
    assert system.status()[0].parked == 2

    later = [asyncio.create_task(ref.ask(Item(key=f"q{n}", n=n))) for n in (5, 6, 7)]
    assert await asyncio.gather(*later) == [Receipt(n=5), Receipt(n=6), Receipt(n=7)]
    assert ("bad", 3) not in ledger.events

    await wait_until(lambda: ("bad", 3) in ledger.events)
    [letter] = (await letters.list())[0]
    assert (letter.message_type, letter.attempts) == ("Item", 3)
    dead = ledger.events.index(("dead", -1))
    assert all(ledger.events.index((f"q{n}", n)) < dead for n in (5, 6, 7))
    assert ledger.events[dead:] == [("dead", -1), ("bad", 3)]
    status = system.status()[0]
    assert (status.handled, status.dead_lettered, status.parked, status.mailbox) == (8, 1, 0, 0)
    if cluster.redis:
        assert await left_in_stream(system, "batcher") == []


async def test_a_node_that_loses_its_shard_drops_what_it_parked(cluster: Cluster) -> None:
    """On Redis, when a shard is handed to another node while a key is parked, the old node
    drops its parked messages unacked instead of retrying them, and the new owner handles
    each of them once, in order."""
    if not cluster.redis:
        pytest.skip("shards move between nodes only on Redis")
    journal = Journal()
    first, _ = await keyed_node(cluster, journal, SLOW_RETRIES)
    ref = first.ref("keyed")
    await ref.tell(Do(key="A", n=0, poison=True))
    await ref.tell(Do(key="A", n=1))
    await wait_until(lambda: first.status()[0].parked == 2)
    transport = first.transport
    assert isinstance(transport, RedisStreamsTransport)
    host = transport._hosts["keyed"]
    await cancel_and_wait(host._tasks[0])  # no lease keeping: it would take the shard back
    await host.hand_back(host.mailboxes[0], wait=0.05)
    journal.healed = True
    await wait_until(lambda: first.status()[0].parked == 0)  # at its retry, it saw the move

    second, _ = await keyed_node(cluster, journal, SLOW_RETRIES, node_id="iso-second")
    await wait_until(lambda: second.status()[0].handled == 2, timeout=10.0)
    assert journal.events == [("A", 0), ("A", 1)]
    assert first.status()[0].handled == 0
