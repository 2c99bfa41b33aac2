"""Reliable hand-off on a real PostgreSQL: outbox rows commit with the change, the relay
delivers them at least once, and the receiver's inbox makes every effect happen once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
import pytest

from actors.runtime import (
    Actor,
    ActorSystem,
    Message,
    Outbox,
    PgDeadLetterStore,
    RestartPolicy,
    handles,
)
from actors.runtime.backoff import Backoff
from splitgo.db import apply_schema
from transport import Codec, Envelope, MemoryTransport


class Deposit(Message, frozen=True):
    account: str
    amount: int
    notify: tuple[str, ...] = ("ledger",)  # who hears of it, through the outbox
    times: int = 1  # messages per target, amounts amount, amount + 1, ...
    fail: bool = False  # raise after tx.tell, inside the transaction
    crash_after_commit: bool = False  # raise after the commit, on the first attempt only


class Credited(Message, frozen=True):
    account: str
    amount: int


@dataclass
class Probe:
    """What one system's actors saw, for assertions."""

    calls: list[tuple[str, str, int]] = field(default_factory=list)  # (actor, id, amount)
    duplicates: int = 0
    trace_ids: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set up, the ledger waits for it
    waiting: int = 0  # ledger handlers waiting at the gate


class Accounts(Actor):
    """Changes a balance and tells other actors about it, in one transaction."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    @handles(Deposit)
    async def deposit(self, message: Deposit) -> None:
        assert self.envelope is not None
        self.probe.trace_ids.append(self.envelope.trace_id)
        async with self.transaction() as tx:
            if tx.duplicate:
                return
            await tx.execute(
                "INSERT INTO balances (account, balance) VALUES ($1, $2) ON CONFLICT (account)"
                " DO UPDATE SET balance = balances.balance + EXCLUDED.balance",
                message.account,
                message.amount,
            )
            for target in message.notify:
                for n in range(message.times):
                    credited = Credited(account=message.account, amount=message.amount + n)
                    await tx.tell(target, credited, key=message.account)
            if message.fail:
                raise RuntimeError("crashed after tx.tell")
        if message.crash_after_commit and self.envelope.attempt == 0:
            raise RuntimeError("crashed after the commit")


class Ledger(Actor):
    """Records one entry per credit, deduplicated by the inbox."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    @handles(Credited)
    async def credited(self, message: Credited) -> None:
        assert self.envelope is not None
        if self.probe.gate is not None:
            self.probe.waiting += 1
            await self.probe.gate.wait()
        self.probe.calls.append((self.name, self.envelope.id, message.amount))
        async with self.transaction() as tx:
            if tx.duplicate:
                self.probe.duplicates += 1
                return
            await tx.execute(
                "INSERT INTO entries (actor, account, amount) VALUES ($1, $2, $3)",
                self.name,
                message.account,
                message.amount,
            )


class Careless(Actor):
    """Forgets to check tx.duplicate: the rollback of duplicates still saves it."""

    @handles(Credited)
    async def credited(self, message: Credited) -> None:
        async with self.transaction() as tx:
            await tx.execute(
                "INSERT INTO entries (actor, account, amount) VALUES ($1, $2, $3)",
                self.name,
                message.account,
                message.amount,
            )
            await tx.tell("ledger", message, key=message.account)


FAST = RestartPolicy(max_restarts=50, within=60, backoff_initial=0.001, backoff_max=0.005)
MakeSystem = Callable[..., Awaitable[tuple[ActorSystem, Probe]]]


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    await apply_schema(pool)
    await pool.execute(
        """
        CREATE TABLE balances (account text PRIMARY KEY, balance bigint NOT NULL);
        CREATE TABLE entries (actor text NOT NULL, account text NOT NULL, amount bigint NOT NULL);
        """
    )
    return pool


@pytest.fixture
async def make_system(db: asyncpg.Pool) -> AsyncIterator[MakeSystem]:
    systems: list[ActorSystem] = []

    async def make(
        *,
        relay: bool = True,
        interval: float = 0.05,
        spawn: tuple[str, ...] = ("accounts", "ledger"),
        ledger_mailbox: int = 1024,
        gate: asyncio.Event | None = None,
    ) -> tuple[ActorSystem, Probe]:
        codec = Codec()
        probe = Probe(gate=gate)
        system = ActorSystem(
            MemoryTransport(node_id=f"node-{len(systems)}", codec=codec),
            codec=codec,
            dead_letters=PgDeadLetterStore(db),
            outbox=Outbox(db, relay=relay, interval=interval, backoff=Backoff(0.05, 0.2)),
        )
        await system.start()
        systems.append(system)
        by_account: Callable[[Any], object] = lambda m: m.account  # noqa: E731
        if "accounts" in spawn:
            system.spawn(
                Accounts, "accounts", factory=lambda: Accounts(probe), shards=2, key=by_account
            )
        for name in ("ledger", "audit"):
            if name in spawn:
                system.spawn(
                    Ledger,
                    name,
                    factory=lambda: Ledger(probe),
                    shards=2,
                    key=by_account,
                    policy=FAST,
                    mailbox_size=ledger_mailbox,
                )
            else:
                system.route(name, shards=2, key=by_account)
        if "careless" in spawn:
            system.spawn(Careless, "careless", key=by_account)
        return system, probe

    yield make
    for system in systems:
        await system.stop(1.0)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


async def count(pool: asyncpg.Pool, query: str, *args: object) -> int:
    return int(await pool.fetchval(query, *args))


async def test_a_committed_tell_is_delivered_once_and_marked_sent(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """The change and the message commit together; the nudge delivers it, not the sweep."""
    # a sweep a minute away: only the nudge after the commit can deliver in time
    system, probe = await make_system(interval=60.0)
    await system.ref("accounts").tell(Deposit(account="acc-1", amount=1250))

    await eventually(lambda: _is(count(db, "SELECT count(*) FROM entries"), 1))
    # the receiver may commit before the relay commits the pass that marks the row sent
    await eventually(
        lambda: _is(count(db, "SELECT count(*) FROM runtime_outbox WHERE sent_at IS NOT NULL"), 1)
    )
    await asyncio.sleep(0.2)  # nothing more arrives later
    assert await db.fetchval("SELECT balance FROM balances WHERE account = 'acc-1'") == 1250
    [row] = await db.fetch("SELECT * FROM runtime_outbox")
    assert row["sent_at"] is not None
    assert row["attempts"] == 0
    assert (row["actor"], row["message_type"]) == ("ledger", "Credited")
    # the receiver saw the outbox row's own envelope id, with the sender's trace id
    assert probe.calls == [("ledger", row["id"], 1250)]
    assert row["trace_id"] == probe.trace_ids[0] != ""
    assert await count(db, "SELECT count(*) FROM runtime_inbox WHERE actor = 'ledger'") == 1


async def test_a_rolled_back_transaction_sends_nothing(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """A handler that raises after tx.tell leaves no row and no message behind."""
    system, probe = await make_system()
    await system.ref("accounts").tell(Deposit(account="acc-1", amount=5, fail=True))

    await eventually(lambda: _is(count(db, "SELECT count(*) FROM runtime_dead_letters"), 1))
    await asyncio.sleep(0.3)  # several relay sweeps
    assert await count(db, "SELECT count(*) FROM runtime_outbox") == 0
    assert await count(db, "SELECT count(*) FROM balances") == 0
    assert await count(db, "SELECT count(*) FROM runtime_inbox") == 0
    assert probe.calls == []


async def test_a_crash_after_the_commit_is_retried_without_a_second_effect(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """The runtime retries the message; its inbox row makes the retry a no-op."""
    system, probe = await make_system()
    await system.ref("accounts").tell(Deposit(account="acc-1", amount=7, crash_after_commit=True))

    await eventually(lambda: _is(count(db, "SELECT count(*) FROM entries"), 1))
    await eventually(lambda: _true(sum(s.failed for s in system.status()) == 1))
    await asyncio.sleep(0.2)
    assert await db.fetchval("SELECT balance FROM balances") == 7
    assert await count(db, "SELECT count(*) FROM runtime_outbox") == 1
    assert len(probe.calls) == 1


async def test_an_outbox_row_survives_a_crash_between_commit_and_delivery(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """Committed but never sent (the node died): a new node's relay sends it, once."""
    first, first_probe = await make_system(relay=False)
    await first.ref("accounts").tell(Deposit(account="acc-1", amount=300))
    await eventually(lambda: _is(count(db, "SELECT count(*) FROM runtime_outbox"), 1))
    await asyncio.sleep(0.2)
    assert first_probe.calls == []
    await first.stop(1.0)
    assert await count(db, "SELECT count(*) FROM runtime_outbox WHERE sent_at IS NULL") == 1

    _, second_probe = await make_system()
    await eventually(lambda: _is(count(db, "SELECT count(*) FROM entries"), 1))
    await eventually(
        lambda: _is(count(db, "SELECT count(*) FROM runtime_outbox WHERE sent_at IS NULL"), 0)
    )
    await asyncio.sleep(0.3)  # several sweeps: nothing is sent again
    assert [amount for _, _, amount in second_probe.calls] == [300]
    assert await db.fetchval("SELECT balance FROM balances") == 300


async def test_a_relay_cut_off_mid_send_loses_nothing_and_duplicates_do_nothing(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """The stop cancels a relay pass blocked on a full mailbox: its rows stay unsent, the
    next node sends them all again, and the copies that did arrive change nothing."""
    gate = asyncio.Event()  # never set: the first node's ledger is stuck
    first, first_probe = await make_system(ledger_mailbox=1, gate=gate)
    transport = first.transport
    assert isinstance(transport, MemoryTransport)
    mailbox = transport.mailboxes()[("ledger", _shard(first, "acc-1"))]
    await first.ref("accounts").tell(Deposit(account="acc-1", amount=1, times=3))
    # one credit in the handler, one in the mailbox, the relay waiting to put the third
    await eventually(lambda: _true(first_probe.waiting == 1 and mailbox.depth() == 1))
    await first.stop(0.3)
    assert await count(db, "SELECT count(*) FROM runtime_outbox WHERE sent_at IS NULL") == 3
    letters, _ = await first.dead_letters.list(limit=10)
    assert sorted(letter.message_type for letter in letters) == ["Credited", "Credited"]

    second, probe = await make_system()
    await eventually(lambda: _is(count(db, "SELECT count(*) FROM entries"), 3))
    assert [amount for _, _, amount in probe.calls] == [1, 2, 3]  # in order
    # the copies the first node had taken arrive again, from its dead letters
    for letter in letters:
        await second.replay(letter.id)
    await eventually(lambda: _true(probe.duplicates == 2))
    assert await count(db, "SELECT count(*) FROM entries") == 3
    assert await count(db, "SELECT count(*) FROM runtime_outbox WHERE sent_at IS NULL") == 0


async def test_a_duplicate_delivery_has_no_second_effect(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """The same envelope id twice: handled twice, applied once."""
    system, probe = await make_system(spawn=("ledger", "audit"))
    envelope = Envelope(
        id="fixed-id-1",
        target="ledger",
        shard=0,
        kind="tell",
        body=Credited(account="acc-1", amount=40),
        trace_id="t-1",
    )
    await system.transport.send(envelope)
    await system.transport.send(envelope)

    await eventually(lambda: _true(len(probe.calls) == 2))
    await eventually(lambda: _true(probe.duplicates == 1))
    assert await count(db, "SELECT count(*) FROM entries") == 1
    assert await count(db, "SELECT count(*) FROM runtime_inbox") == 1
    # the inbox is per actor type, not per shard: on another shard it is a duplicate too
    again = msgspec.structs.replace(envelope, shard=1)
    await system.transport.send(again)
    await eventually(lambda: _true(probe.duplicates == 2))
    # ...but another actor type handling the same id is not
    await system.transport.send(msgspec.structs.replace(envelope, target="audit"))
    await eventually(lambda: _is(count(db, "SELECT count(*) FROM entries"), 2))
    assert probe.duplicates == 2


async def test_a_handler_that_forgets_the_duplicate_check_still_has_one_effect(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """A duplicate's transaction rolls back whatever it wrote, outbox rows included."""
    system, probe = await make_system(spawn=("ledger", "careless"))
    envelope = Envelope(
        id="fixed-id-2",
        target="careless",
        shard=0,
        kind="tell",
        body=Credited(account="a", amount=9),
    )
    for _ in range(3):
        await system.transport.send(envelope)

    await eventually(lambda: _is(count(db, "SELECT count(*) FROM runtime_inbox"), 2))
    await asyncio.sleep(0.3)
    assert await count(db, "SELECT count(*) FROM entries WHERE actor = 'careless'") == 1
    assert await count(db, "SELECT count(*) FROM runtime_outbox") == 1
    assert len(probe.calls) == 1  # the ledger heard of it once


async def test_two_relays_never_send_the_same_row(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """Two nodes write and relay at once: every message is delivered once in total."""
    first, first_probe = await make_system(interval=0.02)
    second, second_probe = await make_system(interval=0.02)
    sends = [
        system.ref("accounts").tell(Deposit(account=f"acc-{n % 7}", amount=n + 1))
        for n in range(60)
        for system in (first, second)
    ]
    await asyncio.gather(*sends)

    await eventually(lambda: _is(count(db, "SELECT count(*) FROM entries"), 120))
    await eventually(
        lambda: _is(count(db, "SELECT count(*) FROM runtime_outbox WHERE sent_at IS NULL"), 0)
    )
    await asyncio.sleep(0.2)
    calls = first_probe.calls + second_probe.calls
    assert len(calls) == 120  # no row was sent twice, so no duplicate even reached a ledger
    assert len({message_id for _, message_id, _ in calls}) == 120
    assert first_probe.duplicates == second_probe.duplicates == 0
    assert await count(db, "SELECT count(*) FROM runtime_outbox") == 120


async def test_rows_to_one_shard_arrive_in_order(db: asyncpg.Pool, make_system: MakeSystem) -> None:
    """Several tells of one transaction, and of successive ones, keep their order."""
    system, probe = await make_system()
    await system.ref("accounts").tell(Deposit(account="acc-1", amount=1, times=10))
    await system.ref("accounts").tell(Deposit(account="acc-1", amount=11, times=10))
    await eventually(lambda: _is(count(db, "SELECT count(*) FROM entries"), 20))
    assert [amount for _, _, amount in probe.calls] == list(range(1, 21))


async def test_a_failed_send_holds_back_its_shard_only_and_is_retried(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """No ledger hosted yet: its rows wait (backoff, logged); the audit's go out meanwhile."""
    system, probe = await make_system(spawn=("accounts", "audit"))
    await system.ref("accounts").tell(
        Deposit(account="acc-1", amount=1, notify=("ledger", "audit"), times=2)
    )
    await eventually(
        lambda: _is(count(db, "SELECT count(*) FROM entries WHERE actor = 'audit'"), 2)
    )
    # the audit may commit its entries before the relay commits the pass that sent them
    await eventually(
        lambda: _is(count(db, "SELECT count(*) FROM runtime_outbox WHERE attempts > 0"), 1)
    )
    failed = await db.fetch("SELECT * FROM runtime_outbox WHERE actor = 'ledger' ORDER BY seq")
    assert [row["sent_at"] for row in failed] == [None, None]
    assert failed[0]["attempts"] >= 1
    assert "UnknownTarget" in failed[0]["last_error"]
    assert failed[0]["retry_at"] is not None
    assert failed[1]["attempts"] == 0  # held back behind the first, never tried out of order

    system.spawn(Ledger, "ledger", factory=lambda: Ledger(probe), shards=2, key=lambda m: m.account)
    await eventually(
        lambda: _is(count(db, "SELECT count(*) FROM entries WHERE actor = 'ledger'"), 2)
    )
    ledger = [amount for actor, _, amount in probe.calls if actor == "ledger"]
    assert ledger == [1, 2]


async def test_old_sent_rows_and_inbox_marks_are_pruned(
    db: asyncpg.Pool, make_system: MakeSystem
) -> None:
    """Past the retention they go; unsent rows stay whatever their age."""
    await db.execute(
        """
        INSERT INTO runtime_outbox
            (id, actor, shard, message_type, trace_id, envelope, created_at, sent_at)
        VALUES
            ('old-sent', 'x', 0, 'M', 't', '\\x00', now() - interval '2 days',
             now() - interval '2 days'),
            ('new-sent', 'x', 0, 'M', 't', '\\x00', now(), now()),
            ('old-unsent', 'nobody', 0, 'M', 't', '\\x00', now() - interval '9 days', NULL);
        UPDATE runtime_outbox SET retry_at = now() + interval '1 hour' WHERE id = 'old-unsent';
        INSERT INTO runtime_inbox (actor, message_id, handled_at) VALUES
            ('ledger', 'old', now() - interval '8 days'),
            ('ledger', 'new', now() - interval '1 day');
        """
    )
    outbox = Outbox(db, relay=False)
    assert await outbox.prune() == (1, 1)
    assert await outbox.prune() == (0, 0)
    left = await db.fetch("SELECT id FROM runtime_outbox ORDER BY id")
    assert [row["id"] for row in left] == ["new-sent", "old-unsent"]
    assert await db.fetchval("SELECT message_id FROM runtime_inbox") == "new"

    # the relay prunes on its own too
    await db.execute(
        "UPDATE runtime_outbox SET sent_at = now() - interval '3 days' WHERE sent_at IS NOT NULL"
    )
    codec = Codec()
    system = ActorSystem(
        MemoryTransport(node_id="pruner", codec=codec),
        codec=codec,
        dead_letters=PgDeadLetterStore(db),
        outbox=Outbox(db, interval=0.02, prune_interval=0.02, sent_retention=3600.0),
    )
    await system.start()
    try:
        await eventually(lambda: _is(count(db, "SELECT count(*) FROM runtime_outbox"), 1))
    finally:
        await system.stop(1.0)


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _true(value: bool) -> bool:
    return value


def _shard(system: ActorSystem, account: str) -> int:
    return system._routes["ledger"].shard_for(None, account)
