"""The splits actor through an ActorSystem (codec check on) on a real PostgreSQL, beside the
real payments actor for wallet settlements (events through the outbox relay)."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from actors.auth.messages import EmailVerified, UserRegistered
from actors.payments import messages as payments_messages
from actors.payments.actor import Payments
from actors.payments.messages import GetWallet, payments_key
from actors.runtime import (
    Actor,
    ActorRef,
    ActorSystem,
    MemoryDeadLetterStore,
    Message,
    Outbox,
    handles,
)
from actors.splits import messages
from actors.splits.actor import Splits
from actors.splits.messages import (
    AddExpense,
    AddMember,
    CreateGroup,
    CreateJoinLink,
    CreateRecurringCopy,
    DeleteExpense,
    EditExpense,
    ExpenseAdded,
    ExportGroup,
    GetActivity,
    GetBalances,
    GetGroup,
    GetSettlement,
    GetSettlePlan,
    GroupNotFound,
    JoinByLink,
    JoinLinkExpired,
    ListExpenses,
    NotAMember,
    Payer,
    PlanTransfer,
    RecordSettlement,
    RemoveMember,
    SettlementRecorded,
    ShareLine,
    UnsettledBalance,
    splits_key,
)
from actors.splits.shares import InvalidSplit
from splitgo.db import apply_schema
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

EVENTS: tuple[type[Message], ...] = (ExpenseAdded, SettlementRecorded)


class Listener(Actor):
    """Stands in for notifications: records the splits events."""

    def __init__(self, seen: list[Message]) -> None:
        self.seen = seen

    @handles(*EVENTS)
    async def record(self, message: Message) -> None:
        self.seen.append(message)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    system: ActorSystem
    splits: ActorRef
    payments: ActorRef
    pool: asyncpg.Pool
    events: list[Message]
    clock: Clock
    instances: list[Splits]
    ledger: list[Payments]

    async def ask(self, message: Message) -> Any:
        return await self.splits.ask(message)

    async def group(self, *members: str, currency: str = "EUR") -> str:
        group_id = str(uuid.uuid4())
        await self.ask(
            CreateGroup(group_id=group_id, user_id=members[0], name="Trip", currency=currency)
        )
        for member in members[1:]:
            await self.ask(AddMember(group_id=group_id, user_id=members[0], member_user_id=member))
        return group_id

    async def expense(self, group_id: str, payer: str, amount: int, **kwargs: Any) -> Any:
        fields: dict[str, Any] = {"split_mode": "equal", "shares": [], "currency": "EUR"}
        fields.update(kwargs)
        return await self.ask(
            AddExpense(
                group_id=group_id,
                user_id=payer,
                expense_id=str(uuid.uuid4()),
                description="Dinner",
                amount=amount,
                paid_by=[Payer(user_id=payer, amount=amount)],
                **fields,
            )
        )

    async def nets(self, group_id: str, user_id: str) -> dict[str, int]:
        view = await self.ask(GetBalances(group_id=group_id, user_id=user_id))
        return {line.user_id: line.net for line in view.balances if line.net}

    async def wallet(self, user_id: str) -> int:
        view = await self.payments.ask(GetWallet(user_id=user_id))
        return sum(b.available for b in view.balances if b.currency == "EUR")


async def eventually(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running(database_url: str) -> AsyncIterator[Harness]:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    assert pool is not None
    await apply_schema(pool)
    codec = Codec()
    codec.register_module(messages)
    codec.register_module(payments_messages)
    codec.register(UserRegistered)
    codec.register(EmailVerified)
    system = ActorSystem(
        MemoryTransport(node_id="splits-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=20.0,
    )
    await system.start()
    for kind in EVENTS:  # the listener stands in for notifications
        system.subscribe(kind, "listener")
    events: list[Message] = []
    clock = Clock()
    instances: list[Splits] = []
    ledger: list[Payments] = []

    def make_splits() -> Splits:
        instance = Splits(pool, clock=clock)
        instances.append(instance)
        return instance

    def make_payments() -> Payments:
        # no subscription: a settlement's transfer names splits itself (Transfer.notify)
        instance = Payments(pool)
        ledger.append(instance)
        return instance

    system.spawn(Listener, "listener", factory=lambda: Listener(events))
    splits = system.spawn(Splits, "splits", factory=make_splits, shards=4, key=splits_key)
    payments = system.spawn(Payments, "payments", factory=make_payments, shards=2, key=payments_key)
    try:
        yield Harness(system, splits, payments, pool, events, clock, instances, ledger)
    finally:
        await system.stop(timeout=5)
        await pool.close()


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    async with running(database_url) as started:
        yield started


async def test_a_group_starts_with_its_creator_and_adds_members(harness: Harness) -> None:
    """The creator is the first member; added members show in the group in joining order."""
    group_id = await harness.group("amy", "bob", "cy")
    view = await harness.ask(GetGroup(group_id=group_id, user_id="bob"))
    assert [m.user_id for m in view.members] == ["amy", "bob", "cy"]
    assert view.currency == "EUR"


async def test_a_group_you_are_not_in_does_not_exist_for_you(harness: Harness) -> None:
    """An outsider gets GroupNotFound for every read and write of the group."""
    group_id = await harness.group("amy", "bob")
    with pytest.raises(GroupNotFound):
        await harness.ask(GetBalances(group_id=group_id, user_id="mallory"))
    with pytest.raises(GroupNotFound):
        await harness.expense(group_id, "mallory", 1000)


async def test_an_invited_email_joins_once_it_is_verified(harness: Harness) -> None:
    """EmailVerified for an invited email makes that user a member (through the group's own
    shard), and the invite is gone."""
    group_id = await harness.group("amy")
    await harness.ask(AddMember(group_id=group_id, user_id="amy", email="dee@example.com"))
    await harness.splits.tell(EmailVerified(user_id="dee", email="Dee@example.com"))

    async def joined() -> bool:
        view = await harness.ask(GetGroup(group_id=group_id, user_id="amy"))
        return [m.user_id for m in view.members] == ["amy", "dee"] and not view.invited

    await eventually(joined)


async def test_signing_up_with_an_invited_email_does_not_join(harness: Harness) -> None:
    """UserRegistered for an invited email admits no one: the invite waits for the address to
    be verified (while another invitee, verified after, has joined already)."""
    group_id = await harness.group("amy")
    await harness.ask(AddMember(group_id=group_id, user_id="amy", email="dee@example.com"))
    await harness.ask(AddMember(group_id=group_id, user_id="amy", email="eve@example.com"))
    await harness.splits.tell(UserRegistered(user_id="dee", email="dee@example.com", name="Dee"))
    await harness.splits.tell(EmailVerified(user_id="eve", email="eve@example.com"))

    async def eve_joined() -> bool:
        view = await harness.ask(GetGroup(group_id=group_id, user_id="amy"))
        return "eve" in [m.user_id for m in view.members]

    await eventually(eve_joined)
    view = await harness.ask(GetGroup(group_id=group_id, user_id="amy"))
    assert [m.user_id for m in view.members] == ["amy", "eve"]
    assert [invite.email for invite in view.invited] == ["dee@example.com"]


async def test_expenses_keep_balances_incrementally_through_edit_and_delete(
    harness: Harness,
) -> None:
    """Adding, editing and deleting expenses moves the kept balances exactly, and they sum
    to zero at every step."""
    group_id = await harness.group("amy", "bob", "cy")
    dinner = await harness.expense(group_id, "amy", 10000)
    assert [s.amount for s in dinner.shares] == [3334, 3333, 3333]
    assert await harness.nets(group_id, "amy") == {"amy": 6666, "bob": -3333, "cy": -3333}
    await harness.ask(
        AddExpense(
            group_id=group_id,
            user_id="bob",
            expense_id=str(uuid.uuid4()),
            description="Taxi",
            amount=3000,
            currency="EUR",
            paid_by=[Payer(user_id="bob", amount=1000), Payer(user_id="cy", amount=2000)],
            split_mode="shares",
            shares=[ShareLine(user_id="amy", shares=1), ShareLine(user_id="bob", shares=2)],
        )
    )
    nets = await harness.nets(group_id, "amy")
    assert nets == {"amy": 5666, "bob": -4333, "cy": -1333}
    assert sum(nets.values()) == 0
    edited = await harness.ask(
        EditExpense(group_id=group_id, user_id="cy", expense_id=dinner.id, amount=9000)
    )
    assert edited.version == 2
    assert [s.amount for s in edited.shares] == [3000, 3000, 3000]
    assert await harness.nets(group_id, "amy") == {"amy": 5000, "bob": -4000, "cy": -1000}
    await harness.ask(DeleteExpense(group_id=group_id, user_id="amy", expense_id=dinner.id))
    assert await harness.nets(group_id, "amy") == {"amy": -1000, "bob": -1000, "cy": 2000}
    page = await harness.ask(ListExpenses(group_id=group_id, user_id="amy"))
    assert [e.description for e in page.items] == ["Taxi"]
    history = await harness.pool.fetch(
        "SELECT version, action FROM splits_expense_history WHERE expense_id = $1 ORDER BY id",
        dinner.id,
    )
    assert [(r["version"], r["action"]) for r in history] == [(1, "edited"), (2, "deleted")]


async def test_a_retried_expense_counts_once(harness: Harness) -> None:
    """The same AddExpense twice (a client retry) records one expense and moves balances once."""
    group_id = await harness.group("amy", "bob")
    command = AddExpense(
        group_id=group_id,
        user_id="amy",
        expense_id="e-retry",
        description="Lunch",
        amount=2000,
        currency="EUR",
        paid_by=[Payer(user_id="amy", amount=2000)],
        split_mode="equal",
        shares=[],
    )
    first = await harness.ask(command)
    second = await harness.ask(command)
    assert first == second
    assert await harness.nets(group_id, "amy") == {"amy": 1000, "bob": -1000}


async def test_bad_expenses_change_nothing(harness: Harness) -> None:
    """A non-member participant or shares that do not add up are refused naming the field,
    and neither balances nor the expense list move."""
    group_id = await harness.group("amy", "bob")
    await harness.expense(group_id, "amy", 1000)
    before = await harness.nets(group_id, "amy")
    with pytest.raises(NotAMember) as not_member:
        await harness.expense(
            group_id, "amy", 1000, shares=[ShareLine(user_id="amy"), ShareLine(user_id="zed")]
        )
    assert not_member.value.details["field"] == "split.shares[1].user_id"
    with pytest.raises(InvalidSplit) as bad_sum:
        await harness.expense(
            group_id,
            "amy",
            1000,
            split_mode="exact",
            shares=[ShareLine(user_id="amy", amount=400), ShareLine(user_id="bob", amount=500)],
        )
    assert bad_sum.value.details["field"] == "split.shares"
    assert await harness.nets(group_id, "amy") == before
    page = await harness.ask(ListExpenses(group_id=group_id, user_id="amy"))
    assert len(page.items) == 1


async def test_a_kept_plan_is_never_stale(harness: Harness) -> None:
    """The settle plan is read again from memory while nothing changed, shows a new expense
    at the next read, and is refused to a stranger while it is kept."""
    group_id = await harness.group("amy", "bob")
    await harness.expense(group_id, "amy", 1000)
    read = GetSettlePlan(group_id=group_id, user_id="bob")
    first = await harness.ask(read)
    assert await harness.ask(read) == first
    with pytest.raises(GroupNotFound):
        await harness.ask(GetSettlePlan(group_id=group_id, user_id="zed"))
    await harness.expense(group_id, "amy", 2000)
    after = (await harness.ask(read)).transfers
    assert [(t.from_user_id, t.to_user_id, t.amount) for t in after] == [("bob", "amy", 1500)]


async def test_paying_a_suggested_transfer_keeps_the_rest_of_the_plan(harness: Harness) -> None:
    """A cash settlement of one suggestion zeroes that pair and leaves the other suggestions
    as they were; the whole plan zeroes every balance."""
    group_id = await harness.group("a", "b", "x", "y", "z")
    # balances A=+10, B=+9, X=-8, Y=-7, Z=-4 (a fresh plan after Z pays A would reshuffle)
    for payer, debtor, amount in (("a", "x", 8), ("a", "z", 2), ("b", "y", 7), ("b", "z", 2)):
        await harness.expense(
            group_id,
            payer,
            amount,
            split_mode="exact",
            shares=[ShareLine(user_id=debtor, amount=amount)],
        )
    plan = (await harness.ask(GetSettlePlan(group_id=group_id, user_id="a"))).transfers
    assert len(plan) <= 4
    paid = plan[-1]
    await harness.ask(
        RecordSettlement(
            group_id=group_id,
            user_id=paid.from_user_id,
            settlement_id=str(uuid.uuid4()),
            to_user_id=paid.to_user_id,
            amount=paid.amount,
            currency="EUR",
            method="cash",
        )
    )
    after = (await harness.ask(GetSettlePlan(group_id=group_id, user_id="a"))).transfers

    def pairs(transfers: list[PlanTransfer]) -> list[tuple[str, str, int]]:
        return [(t.from_user_id, t.to_user_id, t.amount) for t in transfers]

    assert pairs(after) == pairs(plan[:-1])  # the nets behind them moved, the plan did not
    for step in after:
        await harness.ask(
            RecordSettlement(
                group_id=group_id,
                user_id=step.from_user_id,
                settlement_id=str(uuid.uuid4()),
                to_user_id=step.to_user_id,
                amount=step.amount,
                currency="EUR",
                method="cash",
            )
        )
    assert await harness.nets(group_id, "a") == {}
    assert (await harness.ask(GetSettlePlan(group_id=group_id, user_id="a"))).transfers == []


async def test_a_wallet_settlement_moves_money_then_balances(harness: Harness) -> None:
    """Bob owes Amy 25.00; settling by wallet moves it between their wallets, then the group's
    balances, and the activity feed and events say so."""
    group_id = await harness.group("amy", "bob")
    await harness.expense(group_id, "amy", 5000)
    await harness.ledger[0].credit_top_up(
        top_up_id="seed-bob", user_id="bob", amount=4000, currency="EUR"
    )
    pending = await harness.ask(
        RecordSettlement(
            group_id=group_id,
            user_id="bob",
            settlement_id="s-1",
            to_user_id="amy",
            amount=2500,
            currency="EUR",
            method="wallet",
        )
    )
    assert pending.status == "pending"

    async def completed() -> bool:
        view = await harness.ask(
            GetSettlement(group_id=group_id, user_id="bob", settlement_id="s-1")
        )
        return bool(view.status == "completed")

    await eventually(completed)
    assert await harness.nets(group_id, "amy") == {}
    assert await harness.wallet("bob") == 1500
    assert await harness.wallet("amy") == 2500
    feed = await harness.ask(GetActivity(group_id=group_id, user_id="amy"))
    assert feed.items[0].kind == "settlement_recorded"

    async def announced() -> bool:
        return any(isinstance(e, SettlementRecorded) for e in harness.events)

    await eventually(announced)


async def test_a_wallet_settlement_without_money_fails_and_changes_nothing(
    harness: Harness,
) -> None:
    """Payments refuses the transfer: the settlement is failed with the reason, and the
    group's balances stay as they were."""
    group_id = await harness.group("amy", "bob")
    await harness.expense(group_id, "amy", 5000)
    await harness.ask(
        RecordSettlement(
            group_id=group_id,
            user_id="bob",
            settlement_id="s-poor",
            to_user_id="amy",
            amount=2500,
            currency="EUR",
            method="wallet",
        )
    )

    async def failed() -> bool:
        view = await harness.ask(
            GetSettlement(group_id=group_id, user_id="bob", settlement_id="s-poor")
        )
        return bool(view.status == "failed")

    await eventually(failed)
    view = await harness.ask(
        GetSettlement(group_id=group_id, user_id="bob", settlement_id="s-poor")
    )
    assert view.failure_code == "insufficient_funds"
    assert await harness.nets(group_id, "amy") == {"amy": 2500, "bob": -2500}


async def test_a_member_with_a_balance_cannot_leave(harness: Harness) -> None:
    """Removing a member who owes is refused (unsettled_balance); once settled they can go."""
    group_id = await harness.group("amy", "bob")
    await harness.expense(group_id, "amy", 1000)
    with pytest.raises(UnsettledBalance):
        await harness.ask(RemoveMember(group_id=group_id, user_id="bob", member_user_id="bob"))
    await harness.ask(
        RecordSettlement(
            group_id=group_id,
            user_id="bob",
            settlement_id="s-cash",
            to_user_id="amy",
            amount=500,
            currency="EUR",
            method="cash",
        )
    )
    await harness.ask(RemoveMember(group_id=group_id, user_id="bob", member_user_id="bob"))
    view = await harness.ask(GetGroup(group_id=group_id, user_id="amy"))
    assert [m.user_id for m in view.members] == ["amy"]


async def test_recurring_expenses_make_independent_copies_once(harness: Harness) -> None:
    """A weekly expense dated two weeks back gets its two due copies, each its own expense;
    a second timer makes none."""
    group_id = await harness.group("amy", "bob")
    start = (datetime.fromtimestamp(harness.clock.now, UTC) - timedelta(days=14)).date()
    rent = await harness.expense(group_id, "amy", 1000, recurrence="weekly", date=start.isoformat())
    for _ in range(2):
        await harness.splits.tell(CreateRecurringCopy(group_id=group_id, expense_id=rent.id))

    async def copied() -> bool:
        page = await harness.ask(ListExpenses(group_id=group_id, user_id="amy"))
        return len(page.items) == 3

    await eventually(copied)
    await asyncio.sleep(0.2)
    page = await harness.ask(ListExpenses(group_id=group_id, user_id="amy"))
    assert sorted(e.date for e in page.items) == [
        start.isoformat(),
        (start + timedelta(days=7)).isoformat(),
        (start + timedelta(days=14)).isoformat(),
    ]
    assert {e.recurring_from for e in page.items} == {None, rent.id}
    assert await harness.nets(group_id, "amy") == {"amy": 1500, "bob": -1500}


async def test_the_export_lists_every_expense_with_its_shares(harness: Harness) -> None:
    """The CSV has one row per live expense with the amount and each member's share."""
    group_id = await harness.group("amy", "bob")
    await harness.expense(group_id, "amy", 1001)
    export = await harness.ask(ExportGroup(group_id=group_id, user_id="bob"))
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 1
    assert rows[0]["amount"] == "10.01"
    assert rows[0]["share:amy"] == "5.01"
    assert rows[0]["share:bob"] == "5.00"
    assert rows[0]["paid_by"] == "amy=10.01"


async def test_a_join_link_expires_and_says_so(harness: Harness) -> None:
    """A link past its lifetime admits nobody (join_link_expired) and changes nothing."""
    group_id = await harness.group("a")
    link = await harness.ask(CreateJoinLink(group_id=group_id, user_id="a", expires_in=3_600))
    secret = link.token.split(".", 1)[1]
    harness.clock.now += 3_601
    with pytest.raises(JoinLinkExpired):
        await harness.ask(JoinByLink(group_id=group_id, user_id="b", secret=secret))
    view = await harness.ask(GetGroup(group_id=group_id, user_id="a"))
    assert [m.user_id for m in view.members] == ["a"]
