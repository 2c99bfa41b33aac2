"""Issue 17, items 1 and 2 on the splits actor: expenses and settlements in another currency
than the group's (a rate given, derived from the group amount, or looked up through the
rates actor by the edge's `ask_with_rate`), balances and plans converted into the group's
currency and kept incrementally, and itemized bills with tax and tip.

The pure conversion rules (shares.conversion, shares.converted_lines) are property-tested
first; then the actor runs through an ActorSystem (codec check on) on a real PostgreSQL,
beside the rates actor reading a fake ECB over real HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.payments.messages import MAX_AMOUNT
from actors.rates import messages as rates_messages
from actors.rates.actor import Rates
from actors.rates.feed import EcbFeed, SingleFlightFeed
from actors.rates.messages import RATES, InvalidRate, RateUnavailable, rates_key
from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore, Message, Outbox
from actors.splits import messages
from actors.splits.actor import Splits
from actors.splits.messages import (
    RATE_LOOKUP,
    AddExpense,
    AddMember,
    CreateGroup,
    DeleteExpense,
    EditExpense,
    ExpenseView,
    GetBalances,
    GetExpense,
    GetSettlePlan,
    InvalidExpense,
    Item,
    Payer,
    RecordSettlement,
    ShareLine,
    splits_key,
)
from actors.splits.shares import InvalidSplit, conversion, converted_lines, derived_rate
from splitgo.db import apply_schema
from splitgo.web.splits.rates import ask_with_rate
from tests.support.fake_rates import FakeRates
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

# ── the pure rules ─────────────────────────────────────────────────────────────────────


@given(
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30).filter(
        lambda parts: sum(parts) > 0
    ),
    st.integers(min_value=0, max_value=10**12),
)
def test_converted_lines_sum_exactly_and_stay_within_a_unit(parts: list[int], total: int) -> None:
    """Converted lines sum to the converted total exactly, each within one minor unit of
    its exact proportional value, in the lines' order."""
    lines = [(f"u{index}", part) for index, part in enumerate(parts)]
    converted = converted_lines(lines, total)
    assert [user for user, _ in converted] == [user for user, _ in lines]
    assert sum(amount for _, amount in converted) == total
    whole = sum(parts)
    for (_, part), (_, amount) in zip(lines, converted, strict=True):
        exact = Decimal(total) * part / whole
        assert abs(Decimal(amount) - exact) < 1


@given(
    st.integers(min_value=1, max_value=10**9),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1000"), places=4),
)
def test_a_rate_converts_half_to_even_to_the_group_minor_unit(amount: int, rate: Decimal) -> None:
    """A given rate converts the amount (USD cents into EUR cents) half to even, source given."""
    made = conversion(amount, "USD", "EUR", rate=str(rate))
    exact = Decimal(amount) * rate
    assert abs(Decimal(made.group_amount) - exact) <= Decimal("0.5")
    assert made.source == "given"
    assert made.rate == rate


def test_conversion_refusals_name_their_field() -> None:
    """Both rate and group amount, a zero/negative/malformed rate, a rate for the group's
    own currency, an absurd group amount: each refused naming rate or group_amount."""
    cases: list[tuple[dict[str, Any], str, str, type[Exception]]] = [
        ({"rate": "1.1", "group_amount": 100}, "USD", "group_amount", InvalidExpense),
        ({"rate": "0"}, "USD", "rate", InvalidRate),
        ({"rate": "-1.2"}, "USD", "rate", InvalidRate),
        ({"rate": "abc"}, "USD", "rate", InvalidRate),
        ({"rate": "1e3"}, "USD", "rate", InvalidRate),
        ({"rate": "1.1"}, "EUR", "rate", InvalidExpense),
        ({"group_amount": 0}, "USD", "group_amount", InvalidExpense),
        ({"group_amount": MAX_AMOUNT + 1}, "USD", "group_amount", InvalidExpense),
        ({"rate": "999999999999"}, "USD", "rate", InvalidExpense),  # makes > MAX_AMOUNT
        ({}, "USD", "rate", InvalidExpense),
    ]
    for given_, currency, field, error in cases:
        with pytest.raises(error) as raised:
            conversion(10_000_000, currency, "EUR", **given_)
        assert raised.value.details["field"] == field, given_  # type: ignore[attr-defined]


def test_a_group_amount_derives_the_rate_across_minor_units() -> None:
    """12,000 JPY paid as 74.63 EUR derives 0.006219166667 EUR per yen (10 digits)."""
    made = conversion(12_000, "JPY", "EUR", group_amount=7463)
    assert made.source == "derived"
    assert made.group_amount == 7463
    assert made.rate == Decimal("0.006219166667")
    assert derived_rate(1000, "USD", 925, "EUR") == Decimal("0.925")


# ── the actor ──────────────────────────────────────────────────────────────────────────

DAY = "2024-05-10"
ECB_DAY = {"USD": "1.0772", "GBP": "0.8612", "JPY": "167.50"}


class Clock:
    """The splits actor's clock: a fixed moment in 2024 (the fake ECB's week)."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 10, 18, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    system: ActorSystem
    splits: ActorRef
    rates: ActorRef
    pool: asyncpg.Pool
    fake: FakeRates

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

    def expense(self, group_id: str, payer: str, amount: int, **fields: Any) -> AddExpense:
        made: dict[str, Any] = {"split_mode": "equal", "shares": [], "currency": "EUR"}
        made.update(fields)
        return AddExpense(
            group_id=group_id,
            user_id=payer,
            expense_id=str(uuid.uuid4()),
            description="Dinner",
            amount=amount,
            paid_by=[Payer(user_id=payer, amount=amount)],
            **made,
        )

    async def nets(self, group_id: str, *, converted: bool) -> dict[tuple[str, str], int]:
        view = await self.ask(GetBalances(group_id=group_id, user_id="amy", converted=converted))
        return {(line.user_id, line.currency): line.net for line in view.balances if line.net}

    async def kept_matches_lines(self, group_id: str) -> None:
        """The kept converted balances equal a sum over the stored lines and settlements."""
        rows = await self.pool.fetch(
            """
            SELECT user_id, currency, sum(net)::bigint AS net FROM (
                SELECT l.user_id,
                       CASE WHEN e.rate IS NULL THEN e.currency ELSE g.currency END AS currency,
                       CASE WHEN e.rate IS NULL THEN l.paid - l.owed
                            ELSE l.group_paid - l.group_owed END AS net
                FROM splits_expense_lines l JOIN splits_expenses e ON e.id = l.expense_id
                JOIN splits_groups g ON g.id = e.group_id
                WHERE e.group_id = $1 AND e.deleted_at IS NULL
                UNION ALL
                SELECT s.from_user_id,
                       CASE WHEN s.rate IS NULL THEN s.currency ELSE g.currency END,
                       coalesce(s.group_amount, s.amount)
                FROM splits_settlements s JOIN splits_groups g ON g.id = s.group_id
                WHERE s.group_id = $1 AND s.status = 'completed'
                UNION ALL
                SELECT s.to_user_id,
                       CASE WHEN s.rate IS NULL THEN s.currency ELSE g.currency END,
                       -coalesce(s.group_amount, s.amount)
                FROM splits_settlements s JOIN splits_groups g ON g.id = s.group_id
                WHERE s.group_id = $1 AND s.status = 'completed'
            ) x GROUP BY user_id, currency
            """,
            group_id,
        )
        summed = {(r["user_id"], r["currency"]): r["net"] for r in rows if r["net"]}
        assert summed == await self.nets(group_id, converted=True)


@asynccontextmanager
async def running(database_url: str) -> AsyncIterator[Harness]:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    assert pool is not None
    await apply_schema(pool)
    codec = Codec()
    codec.register_module(messages)
    codec.register_module(rates_messages)
    system = ActorSystem(
        MemoryTransport(node_id="money-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=20.0,
    )
    await system.start()
    http = aiohttp.ClientSession()
    fake = FakeRates()
    await fake.start()
    fake.set_day(DAY, ECB_DAY)
    feed = SingleFlightFeed(EcbFeed(http, fake.url, timeout=2.0))
    clock = Clock()
    splits = system.spawn(
        Splits, "splits", factory=lambda: Splits(pool, clock=clock), shards=2, key=splits_key
    )
    rates = system.spawn(Rates, RATES, factory=lambda: Rates(pool, feed), key=rates_key)
    try:
        yield Harness(system, splits, rates, pool, fake)
    finally:
        await system.stop(timeout=5)
        await fake.stop()
        await http.close()
        await pool.close()


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    async with running(database_url) as started:
        yield started


async def test_a_given_rate_converts_the_expense_and_its_lines(harness: Harness) -> None:
    """100.00 USD at 0.9 EUR split by three: each line converted, summing to 90.00 EUR;
    balances per currency in USD, converted in EUR, both summing to zero."""
    group = await harness.group("amy", "bob", "cy")
    view: ExpenseView = await harness.ask(
        harness.expense(group, "amy", 10_000, currency="USD", rate="0.9")
    )
    assert (view.rate, view.rate_source, view.group_amount) == ("0.9", "given", 9000)
    assert view.group_shares is not None
    assert view.group_paid_by is not None
    assert [(s.user_id, s.amount) for s in view.group_shares] == [
        ("amy", 3000),
        ("bob", 3000),
        ("cy", 3000),
    ]
    assert [(p.user_id, p.amount) for p in view.group_paid_by] == [("amy", 9000)]
    plain = await harness.nets(group, converted=False)
    assert plain == {("amy", "USD"): 6666, ("bob", "USD"): -3333, ("cy", "USD"): -3333}
    converted = await harness.nets(group, converted=True)
    assert converted == {("amy", "EUR"): 6000, ("bob", "EUR"): -3000, ("cy", "EUR"): -3000}
    await harness.kept_matches_lines(group)


async def test_a_group_amount_derives_the_rate(harness: Harness) -> None:
    """Paid 50.00 GBP, the card took 59.13 EUR: the rate is derived, the lines sum to 59.13."""
    group = await harness.group("amy", "bob")
    view = await harness.ask(harness.expense(group, "bob", 5000, currency="GBP", group_amount=5913))
    assert view.rate_source == "derived"
    assert view.rate == "1.1826"
    assert sum(s.amount for s in view.group_shares) == 5913
    converted = await harness.nets(group, converted=True)
    # 2,956.5 each: the left-over unit to the earlier share (amy's), so bob is owed 2,957
    assert converted == {("bob", "EUR"): 2957, ("amy", "EUR"): -2957}


async def test_a_foreign_expense_without_a_rate_asks_for_a_lookup(harness: Harness) -> None:
    """With neither rate nor group amount the actor refuses with rate_unavailable marked
    for a lookup, naming the pair and the day; nothing is stored."""
    group = await harness.group("amy", "bob")
    message = harness.expense(group, "amy", 1000, currency="USD", date=DAY, rate_lookup=True)
    with pytest.raises(RateUnavailable) as raised:
        await harness.ask(message)
    details = raised.value.details
    assert details[RATE_LOOKUP] is True
    assert (details["base"], details["quote"], details["day"]) == ("USD", "EUR", DAY)
    assert await harness.nets(group, converted=False) == {}
    assert await harness.pool.fetchval("SELECT count(*) FROM splits_expenses") == 0


async def test_a_caller_that_cannot_look_up_keeps_the_amount_apart(harness: Harness) -> None:
    """Without `rate_lookup` (another actor, as rides does) a foreign expense is kept with
    no rate: in the converted view it stays apart in its own currency, still summing to 0."""
    group = await harness.group("amy", "bob")
    view = await harness.ask(harness.expense(group, "amy", 1000, currency="USD"))
    assert view.rate is None
    assert view.group_shares is None
    await harness.ask(harness.expense(group, "bob", 500, currency="EUR"))
    assert await harness.nets(group, converted=True) == {
        ("amy", "EUR"): -250,
        ("bob", "EUR"): 250,
        ("amy", "USD"): 500,
        ("bob", "USD"): -500,
    }
    await harness.kept_matches_lines(group)


async def test_ask_with_rate_looks_the_day_up_through_the_rates_actor(harness: Harness) -> None:
    """The edge's helper asks the rates actor for the expense's day and prices the expense
    at the ECB rate (EUR per USD = 1/1.0772, 10 digits), its source and day kept."""
    group = await harness.group("amy", "bob")
    message = harness.expense(group, "amy", 10_000, currency="USD", date=DAY)
    view = await ask_with_rate(harness.system, message)
    assert (view.rate_source, view.rate_day) == ("ecb", DAY)
    assert view.rate == "0.9283327144"
    assert view.group_amount == 9283
    again = await harness.ask(
        GetExpense(group_id=group, user_id="bob", expense_id=message.expense_id)
    )
    assert again == view


async def test_an_edit_keeps_a_given_rate_and_looks_up_a_new_day(harness: Harness) -> None:
    """A new amount keeps the given rate; a looked-up rate on a new day is looked up again;
    back in the group's currency the rate goes; deleting takes every balance back to zero."""
    group = await harness.group("amy", "bob")
    added = await harness.ask(
        harness.expense(group, "amy", 10_000, currency="USD", rate="0.9", date=DAY)
    )
    edited = await harness.ask(
        EditExpense(
            group_id=group,
            user_id="amy",
            expense_id=added.id,
            amount=20_000,
            paid_by=[Payer(user_id="amy", amount=20_000)],
        )
    )
    assert (edited.rate, edited.group_amount) == ("0.9", 18_000)
    assert await harness.nets(group, converted=True) == {
        ("amy", "EUR"): 9000,
        ("bob", "EUR"): -9000,
    }
    looked = await ask_with_rate(
        harness.system, harness.expense(group, "bob", 1000, currency="USD", date=DAY)
    )
    with pytest.raises(RateUnavailable):  # another day needs another looked-up rate
        await harness.ask(
            EditExpense(
                group_id=group,
                user_id="bob",
                expense_id=looked.id,
                date="2024-05-09",
                rate_lookup=True,
            )
        )
    home = await harness.ask(
        EditExpense(group_id=group, user_id="amy", expense_id=added.id, currency="EUR")
    )
    assert home.rate is None
    assert home.group_amount is None
    assert home.group_shares is None
    await harness.kept_matches_lines(group)
    for expense_id in (added.id, looked.id):
        await harness.ask(DeleteExpense(group_id=group, user_id="amy", expense_id=expense_id))
    assert await harness.nets(group, converted=False) == {}
    assert await harness.nets(group, converted=True) == {}


async def test_settling_in_either_currency_moves_both_views(harness: Harness) -> None:
    """Bob owes 45.00 EUR converted (50.00 USD at 0.9): paying 25.00 USD at 0.9 and 22.50
    EUR settles the converted view; each view's plan and balances sum to zero."""
    group = await harness.group("amy", "bob")
    await harness.ask(harness.expense(group, "amy", 10_000, currency="USD", rate="0.9"))
    plan = await harness.ask(GetSettlePlan(group_id=group, user_id="amy", converted=True))
    assert [(t.from_user_id, t.to_user_id, t.amount, t.currency) for t in plan.transfers] == [
        ("bob", "amy", 4500, "EUR")
    ]
    usd = await harness.ask(
        RecordSettlement(
            group_id=group,
            user_id="bob",
            settlement_id=str(uuid.uuid4()),
            to_user_id="amy",
            amount=2500,
            currency="USD",
            method="cash",
            rate="0.9",
        )
    )
    assert (usd.rate, usd.group_amount) == ("0.9", 2250)
    assert await harness.nets(group, converted=False) == {
        ("amy", "USD"): 2500,
        ("bob", "USD"): -2500,
    }
    assert await harness.nets(group, converted=True) == {
        ("amy", "EUR"): 2250,
        ("bob", "EUR"): -2250,
    }
    await harness.ask(
        RecordSettlement(
            group_id=group,
            user_id="bob",
            settlement_id=str(uuid.uuid4()),
            to_user_id="amy",
            amount=2250,
            currency="EUR",
            method="cash",
        )
    )
    assert await harness.nets(group, converted=True) == {}
    plan = await harness.ask(GetSettlePlan(group_id=group, user_id="amy", converted=True))
    assert plan.transfers == []
    assert plan.converted
    await harness.kept_matches_lines(group)


async def test_a_foreign_settlement_without_a_rate_asks_for_a_lookup(harness: Harness) -> None:
    """A USD settlement in a EUR group with no rate is refused for a lookup; the helper
    records it at the day's ECB rate."""
    group = await harness.group("amy", "bob")
    settle = RecordSettlement(
        group_id=group,
        user_id="bob",
        settlement_id=str(uuid.uuid4()),
        to_user_id="amy",
        amount=1000,
        currency="USD",
        method="cash",
    )
    with pytest.raises(RateUnavailable):
        await harness.ask(msgspec.structs.replace(settle, rate_lookup=True))
    view = await ask_with_rate(harness.system, settle)
    assert view.rate_source == "ecb"
    assert view.group_amount == 928


async def test_an_itemized_bill_with_tax_and_tip_is_exact(harness: Harness) -> None:
    """Wine 30.00 (amy, bob), pizza 20.00 (all three), tax 5.00, tip 7.01 spread in
    proportion: shares sum to 62.01 exactly and each item shows its part."""
    group = await harness.group("amy", "bob", "cy")
    items = [
        Item(
            description="Wine",
            amount=3000,
            split_mode="equal",
            shares=[ShareLine(user_id="amy"), ShareLine(user_id="bob")],
        ),
        Item(description="Pizza", amount=2000, split_mode="equal"),
    ]
    view = await harness.ask(
        harness.expense(group, "cy", 6201, split_mode="items", items=items, tax=500, tip=701)
    )
    assert view.split_mode == "items"
    assert view.tax == 500
    assert view.tip == 701
    assert [(i.amount, i.extra, i.adjusted) for i in view.items] == [
        (3000, 721, 3721),
        (2000, 480, 2480),
    ]
    shares = {s.user_id: s.amount for s in view.shares}
    # wine 37.21 -> 18.61 + 18.60; pizza 24.80 -> 8.27 + 8.27 + 8.26
    assert shares == {"amy": 1861 + 827, "bob": 1860 + 827, "cy": 826}
    assert sum(shares.values()) == 6201
    edited = await harness.ask(EditExpense(group_id=group, user_id="cy", expense_id=view.id, tip=0))
    assert edited.amount == 5500
    assert sum(s.amount for s in edited.shares) == 5500
    assert edited.paid_by[0].amount == 5500


async def test_bad_items_are_refused_at_their_path_and_change_nothing(harness: Harness) -> None:
    """Items that don't add up to the amount, a non-member in an item, a split that does
    not add up: each refused naming the item's field, nothing stored."""
    group = await harness.group("amy", "bob")
    wine = Item(description="Wine", amount=3000, split_mode="equal")
    with pytest.raises(InvalidExpense) as raised:
        await harness.ask(harness.expense(group, "amy", 9999, split_mode="items", items=[wine]))
    assert raised.value.details["field"] == "$.amount"
    stranger = Item(
        description="Cake", amount=500, split_mode="equal", shares=[ShareLine(user_id="zed")]
    )
    with pytest.raises(messages.NotAMember) as not_member:
        await harness.ask(
            harness.expense(group, "amy", 3500, split_mode="items", items=[wine, stranger])
        )
    assert not_member.value.details["field"] == "items[1].split.shares[0].user_id"
    exact = Item(
        description="Cake",
        amount=500,
        split_mode="exact",
        shares=[ShareLine(user_id="amy", amount=100)],
    )
    with pytest.raises(InvalidSplit) as bad_split:
        await harness.ask(
            harness.expense(group, "amy", 3500, split_mode="items", items=[wine, exact])
        )
    assert bad_split.value.details["field"].startswith("$.items[1].split")
    assert await harness.pool.fetchval("SELECT count(*) FROM splits_expenses") == 0
    assert await harness.nets(group, converted=True) == {}
