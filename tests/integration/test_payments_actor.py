"""The payments actor through an ActorSystem (codec check on) on a real PostgreSQL.

Eight payments shards keyed like the node keys them, a recording subscriber for the events
(fed by the outbox relay), wallets seeded through the top-up credit path.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from actors.payments import messages, store
from actors.payments.actor import Payments
from actors.payments.messages import (
    CaptureHold,
    CurrencyMismatch,
    GetStatement,
    GetTransfer,
    GetWallet,
    HoldCaptured,
    HoldNotActive,
    HoldReleased,
    HoldView,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidPayment,
    PlaceHold,
    StatementEntry,
    TopUpSucceeded,
    Transfer,
    TransferCompleted,
    TransferFailed,
    TransferNotFound,
    TransferView,
    VoidHold,
    payments_key,
)
from actors.runtime import (
    Actor,
    ActorRef,
    ActorSystem,
    InvalidCursor,
    MemoryDeadLetterStore,
    Message,
    Outbox,
    RestartPolicy,
    handles,
)
from splitgo.db import apply_schema
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

EVENTS: tuple[type[Message], ...] = (
    TransferCompleted,
    TransferFailed,
    HoldCaptured,
    HoldReleased,
    TopUpSucceeded,
)


class Listener(Actor):
    """Stands in for splits, rides and notifications: records every payments event."""

    def __init__(self, seen: list[Message]) -> None:
        self.seen = seen

    @handles(*EVENTS)
    async def record(self, message: Message) -> None:
        self.seen.append(message)


@dataclass
class Harness:
    system: ActorSystem
    payments: ActorRef
    pool: asyncpg.Pool
    events: list[Message]
    instances: list[Payments]

    async def ask(self, message: Message) -> Any:
        return await self.payments.ask(message)

    async def seed(self, user_id: str, amount: int, currency: str = "EUR") -> None:
        credited = await self.instances[0].credit_top_up(
            top_up_id=f"seed-{user_id}-{currency}-{amount}",
            user_id=user_id,
            amount=amount,
            currency=currency,
        )
        assert credited is not None

    async def balances(self, user_id: str) -> dict[str, tuple[int, int]]:
        view = await self.ask(GetWallet(user_id=user_id))
        return {b.currency: (b.available, b.held) for b in view.balances}

    async def event(self, kind: type[Message], count: int = 1) -> Any:
        await eventually(lambda: len(self.of(kind)) >= count)
        return self.of(kind)[count - 1]

    def of(self, kind: type[Message]) -> list[Any]:
        return [message for message in self.events if type(message) is kind]

    async def check_invariants(self) -> None:
        sums = await store.sums_by_currency(self.pool)
        assert all(total == 0 for total in sums.values()), sums
        negative = await self.pool.fetchval(
            "SELECT count(*) FROM payment_accounts WHERE NOT allow_negative AND debits > credits"
        )
        assert negative == 0
        # the balances agree with the append-only entries
        drift = await self.pool.fetchval(
            """
            SELECT count(*) FROM payment_accounts a
            WHERE a.credits - a.debits <> COALESCE((
                SELECT sum(CASE e.side WHEN 'credit' THEN e.amount ELSE -e.amount END)
                FROM payment_entries e WHERE e.account_id = a.id), 0)
            """
        )
        assert drift == 0


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running(
    database_url: str, payments_type: type[Payments] = Payments, shards: int = 8
) -> AsyncIterator[Harness]:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=20)
    assert pool is not None
    await apply_schema(pool)
    codec = Codec()
    codec.register_module(messages)
    system = ActorSystem(
        MemoryTransport(node_id="payments-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=20.0,
    )
    await system.start()
    events: list[Message] = []
    instances: list[Payments] = []
    for kind in EVENTS:
        system.subscribe(kind, "listener")

    def make() -> Payments:
        instance = payments_type(pool)
        instances.append(instance)
        return instance

    system.spawn(Listener, "listener", factory=lambda: Listener(events))
    payments = system.spawn(
        payments_type,
        "payments",
        factory=make,
        shards=shards,
        key=payments_key,
        mailbox_size=4096,
        policy=RestartPolicy(max_restarts=10, within=60, backoff_initial=0.01, backoff_max=0.05),
    )
    await eventually(lambda: len(instances) >= shards)
    try:
        yield Harness(system, payments, pool, events, instances)
    finally:
        await system.stop(2.0)
        await pool.close()


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    async with running(database_url) as made:
        yield made


def transfer(
    key: str, frm: str, to: str | None, amount: int, currency: str = "EUR", **more: Any
) -> Transfer:
    return Transfer(
        idempotency_key=key,
        from_user_id=frm,
        to_user_id=to,
        amount=amount,
        currency=currency,
        **more,
    )


# ── transfers ──────────────────────────────────────────────────────────────────────────


async def test_a_transfer_moves_money_and_replays_by_its_key(harness: Harness) -> None:
    """A transfer moves the money and emits TransferCompleted, the same key and body replays it,
    another body is refused, keys are per payer, and only its parties can read it."""
    await harness.seed("alice", 1_000)
    done: TransferView = await harness.ask(transfer("k1", "alice", "bob", 300, note="pizza"))
    assert (done.status, done.amount, done.from_user_id, done.to_user_id, done.note) == (
        "completed",
        300,
        "alice",
        "bob",
        "pizza",
    )
    assert await harness.balances("alice") == {"EUR": (700, 0)}
    assert await harness.balances("bob") == {"EUR": (300, 0)}
    completed = await harness.event(TransferCompleted)
    assert (completed.transfer_id, completed.kind) == (done.id, "p2p")

    # the same key and body: the first result, nothing moves again
    again = await harness.ask(transfer("k1", "alice", "bob", 300, note="pizza"))
    assert again == done
    assert await harness.balances("alice") == {"EUR": (700, 0)}
    # the same key, another body: refused
    with pytest.raises(IdempotencyConflict):
        await harness.ask(transfer("k1", "alice", "bob", 301, note="pizza"))
    # another payer may use the same key: keys are per payer
    await harness.seed("carol", 50)
    await harness.ask(transfer("k1", "carol", "bob", 50))
    assert await harness.balances("bob") == {"EUR": (350, 0)}

    assert await harness.ask(GetTransfer(user_id="bob", transfer_id=done.id)) == done
    with pytest.raises(TransferNotFound):
        await harness.ask(GetTransfer(user_id="carol", transfer_id=done.id))
    await harness.check_invariants()


async def test_refusals_move_nothing(harness: Harness) -> None:
    """Overdrafts, currency mismatches and invalid fields are refused naming the field, moving no
    money and leaving a refused key free for a retry."""
    await harness.seed("alice", 100)
    with pytest.raises(InsufficientFunds):
        await harness.ask(transfer("k1", "alice", "bob", 101))
    # the refused key was not spent: a retry after a top-up goes through
    await harness.seed("alice", 1)
    await harness.ask(transfer("k1", "alice", "bob", 101))
    with pytest.raises(InsufficientFunds):
        await harness.ask(transfer("k2", "nobody", "bob", 1))
    # alice's money is in EUR: a USD transfer has no wallet to come from
    with pytest.raises(CurrencyMismatch) as mismatch:
        await harness.ask(transfer("k3", "bob", "alice", 1, "USD"))
    assert mismatch.value.details["field"] == "$.currency"
    # made inside the check: a note past its bound is refused where the message is made
    cases: list[tuple[Callable[[], Transfer], str]] = [
        (lambda: transfer("k4", "bob", "bob", 1), "$.to_user_id"),
        (lambda: transfer("k5", "bob", "alice", 0), "$.amount"),
        (lambda: transfer("k6", "bob", "alice", -3), "$.amount"),
        (lambda: transfer("k7", "bob", "alice", 1, "XYZ"), "$.currency"),
        (lambda: transfer("k8", "bob", "alice", 1, note="x" * 201), "$.note"),
        (lambda: transfer("", "bob", "alice", 1), "$.idempotency_key"),
    ]
    for make, field in cases:
        with pytest.raises(InvalidPayment) as caught:
            await harness.ask(make())
        assert caught.value.details["field"] == field
    assert await harness.balances("bob") == {"EUR": (101, 0)}
    assert await harness.balances("alice") == {"EUR": (0, 0)}
    assert await harness.pool.fetchval("SELECT count(*) FROM payment_transfers") == 3
    await harness.check_invariants()


async def test_a_refused_settlement_is_published(harness: Harness) -> None:
    """A settlement refused for lack of funds publishes TransferFailed with its reference and
    code."""
    with pytest.raises(InsufficientFunds):
        await harness.ask(transfer("s1", "dan", "erin", 10, kind="settlement", reference="st-1"))
    failed = await harness.event(TransferFailed)
    assert (failed.reference, failed.code) == ("st-1", "insufficient_funds")


async def test_statement_pages_newest_first(harness: Harness) -> None:
    """A statement pages newest first with running balances and counterparties, and a malformed
    cursor is refused."""
    await harness.seed("alice", 1_000)
    for n in range(5):
        await harness.ask(transfer(f"t{n}", "alice", "bob", 10 + n))
    seen: list[StatementEntry] = []
    cursor = None
    pages = 0
    while True:
        page = await harness.ask(GetStatement(user_id="alice", limit=2, cursor=cursor))
        seen += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert [entry.amount for entry in seen] == [-14, -13, -12, -11, -10, 1_000]
    assert [entry.balance_after for entry in seen] == [940, 954, 967, 979, 990, 1_000]
    assert seen[0].counterparty_user_id == "bob"
    bob = await harness.ask(GetStatement(user_id="bob"))
    assert [entry.amount for entry in bob.items] == [14, 13, 12, 11, 10]
    with pytest.raises(InvalidCursor):
        await harness.ask(GetStatement(user_id="alice", cursor="nope"))


# ── holds ──────────────────────────────────────────────────────────────────────────────


async def test_hold_capture_part_with_fee(harness: Harness) -> None:
    """A hold reserves money, replays by key (the first hold, whatever amount a retry asks),
    and a partial capture pays the payee less the fee, returns the rest, replays on retry and
    can no longer be voided."""
    await harness.seed("rider", 5_000)
    hold: HoldView = await harness.ask(
        PlaceHold(idempotency_key="h1", user_id="rider", amount=2_000, currency="EUR")
    )
    assert hold.status == "held"
    assert await harness.balances("rider") == {"EUR": (3_000, 2_000)}
    # more than available now: refused
    with pytest.raises(InsufficientFunds):
        await harness.ask(transfer("t1", "rider", "x", 3_001))
    again = await harness.ask(
        PlaceHold(idempotency_key="h1", user_id="rider", amount=2_000, currency="EUR")
    )
    assert again == hold
    # a retry asking another amount (a ride's quote moved with the surge) gets the first
    moved = await harness.ask(
        PlaceHold(idempotency_key="h1", user_id="rider", amount=2_500, currency="EUR")
    )
    assert moved == hold
    assert await harness.balances("rider") == {"EUR": (3_000, 2_000)}
    capture = CaptureHold(
        idempotency_key="c1", hold_id=hold.id, amount=1_500, payee_user_id="driver", fee=300
    )
    captured: HoldView = await harness.ask(capture)
    assert (captured.status, captured.captured) == ("captured", 1_500)
    assert await harness.balances("rider") == {"EUR": (3_500, 0)}
    assert await harness.balances("driver") == {"EUR": (1_200, 0)}
    assert await harness.ask(capture) == captured  # a retry replays
    with pytest.raises(HoldNotActive):
        await harness.ask(VoidHold(hold_id=hold.id))
    event = await harness.event(HoldCaptured)
    assert (event.hold_id, event.amount) == (hold.id, 1_500)
    fees = await harness.pool.fetchval(
        "SELECT credits - debits FROM payment_accounts WHERE owner = 'fees'"
    )
    assert fees == 300
    await harness.check_invariants()


async def test_hold_void_and_expiry(harness: Harness) -> None:
    """Voiding a hold returns its money and answers the same on retry, and an expired hold is
    released on its own and can no longer be captured."""
    await harness.seed("rider", 1_000)
    first = await harness.ask(
        PlaceHold(idempotency_key="h1", user_id="rider", amount=400, currency="EUR")
    )
    voided = await harness.ask(VoidHold(hold_id=first.id))
    assert voided.status == "voided"
    assert await harness.ask(VoidHold(hold_id=first.id)) == voided  # a retry answers the same
    assert await harness.balances("rider") == {"EUR": (1_000, 0)}
    second = await harness.ask(
        PlaceHold(idempotency_key="h2", user_id="rider", amount=700, currency="EUR", expires_in=0.2)
    )
    assert await harness.balances("rider") == {"EUR": (300, 700)}
    released = await harness.event(HoldReleased, 2)
    assert (released.hold_id, released.reason) == (second.id, "expired")
    assert await harness.balances("rider") == {"EUR": (1_000, 0)}
    with pytest.raises(HoldNotActive):
        await harness.ask(CaptureHold(idempotency_key="c", hold_id=second.id, amount=1))
    await harness.check_invariants()


# ── load and crashes ───────────────────────────────────────────────────────────────────


async def test_concurrent_transfers_with_retried_keys(harness: Harness) -> None:
    """2,000 random transfers among 50 wallets from 100 concurrent clients, with retries
    of the same keys mixed in."""
    wallets = [f"w{n:02}" for n in range(50)]
    for user in wallets:
        await harness.seed(user, 2_000)
    rng = random.Random(7)
    plan = []
    for n in range(2_000):
        frm, to = rng.sample(wallets, 2)
        plan.append(transfer(f"key-{n}", frm, to, rng.randint(1, 400)))
    # one in ten is sent twice, the second time by another client
    work = plan + [plan[rng.randrange(len(plan))] for _ in range(200)]
    rng.shuffle(work)
    accepted: dict[str, str] = {}  # key -> transfer id
    refused: list[BaseException] = []
    queue: asyncio.Queue[Transfer] = asyncio.Queue()
    for message in work:
        queue.put_nowait(message)

    async def client() -> None:
        while not queue.empty():
            message = queue.get_nowait()
            try:
                view = await harness.ask(message)
            except InsufficientFunds as error:
                refused.append(error)
                continue
            known = accepted.setdefault(message.idempotency_key, view.id)
            assert known == view.id  # a retried key answers the first result

    await asyncio.gather(*(client() for _ in range(100)))
    assert len(accepted) + len(refused) >= 2_000
    await harness.check_invariants()
    # every accepted transfer once in the payer's statement and once in the payee's
    seen: dict[str, int] = {}
    for user in wallets:
        cursor = None
        while True:
            page = await harness.ask(GetStatement(user_id=user, limit=200, cursor=cursor))
            for entry in page.items:
                if entry.kind == "p2p":
                    seen[entry.transfer_id] = seen.get(entry.transfer_id, 0) + 1
            cursor = page.next_cursor
            if cursor is None:
                break
    assert set(seen) == set(accepted.values())
    assert set(seen.values()) == {2}
    total = await harness.pool.fetchval("SELECT count(*) FROM payment_transfers WHERE kind='p2p'")
    assert total == len(accepted)


class CrashingPayments(Payments):
    """Fails the first multi-transfer batch after its writes, before its commit."""

    crashed: list[int] = []

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.transfers.before_commit = self._crash

    async def _crash(self, batch: Sequence[Transfer]) -> None:
        if len(batch) > 1 and not CrashingPayments.crashed:
            CrashingPayments.crashed.append(len(batch))
            raise RuntimeError("injected fault in the middle of a batch")


async def test_a_crash_mid_batch_loses_nothing_and_doubles_nothing(database_url: str) -> None:
    """A crash before a multi-transfer batch commits loses no transfer and doubles none, in the
    ledger or in the published events."""
    CrashingPayments.crashed.clear()
    async with running(database_url, CrashingPayments, shards=1) as harness:
        await harness.seed("payer", 10_000)
        messages_ = [transfer(f"c{n}", "payer", f"p{n % 5}", 10 + n) for n in range(60)]
        views = await asyncio.gather(*(harness.ask(m) for m in messages_))
        assert CrashingPayments.crashed
        assert CrashingPayments.crashed[0] > 1
        assert len({view.id for view in views}) == 60
        count = await harness.pool.fetchval(
            "SELECT count(*) FROM payment_transfers WHERE kind='p2p'"
        )
        assert count == 60
        spent = sum(10 + n for n in range(60))
        assert await harness.balances("payer") == {"EUR": (10_000 - spent, 0)}
        await eventually(lambda: len(harness.of(TransferCompleted)) >= 60)
        await asyncio.sleep(0.2)
        ids = [event.transfer_id for event in harness.of(TransferCompleted)]
        assert sorted(ids) == sorted(view.id for view in views)  # none lost, none doubled
        await harness.check_invariants()


async def test_top_up_credit_once(harness: Harness) -> None:
    """Crediting a top-up for the same provider event twice credits the wallet once and publishes
    TopUpSucceeded."""
    instance = harness.instances[0]
    first = await instance.credit_top_up(
        top_up_id="tu1", user_id="alice", amount=500, currency="EUR", event_id="evt_1"
    )
    assert first is not None
    assert first.kind == "top_up"
    replayed = await instance.credit_top_up(
        top_up_id="tu1", user_id="alice", amount=500, currency="EUR", event_id="evt_1"
    )
    assert replayed is None
    assert await harness.balances("alice") == {"EUR": (500, 0)}
    event = await harness.event(TopUpSucceeded)
    assert (event.top_up_id, event.amount) == ("tu1", 500)
    await harness.check_invariants()


async def test_entries_are_append_only(harness: Harness) -> None:
    """The database refuses updates to ledger entries and deletes of transfers."""
    await harness.seed("alice", 10)
    with pytest.raises(asyncpg.RaiseError):
        await harness.pool.execute("UPDATE payment_entries SET amount = 1")
    with pytest.raises(asyncpg.RaiseError):
        await harness.pool.execute("DELETE FROM payment_transfers")
