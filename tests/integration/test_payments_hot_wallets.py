"""Hot wallets (issue 20): the payments shard that owns a user answers GetWallet and the
first statement page from its checked copy, and every change made on any shard (a transfer
credited by the payer's shard, a top-up, a hold placed, captured or voided) shows at the
payee's next read."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.payments import store
from actors.payments.actor import Payments
from actors.payments.messages import (
    CaptureHold,
    GetStatement,
    GetWallet,
    HoldView,
    InsufficientFunds,
    PlaceHold,
    VoidHold,
)
from actors.payments.wallets import HOLDER
from actors.runtime.resident import Resident
from tests.integration.test_payments_actor import Harness, running, transfer

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    async with running(database_url, shards=2) as made:
        yield made


def holders(harness: Harness) -> list[Resident[Any, Any]]:
    found: list[Resident[Any, Any]] = []
    for instance in harness.instances:
        holder = instance.__dict__.get("_residents", {}).get(HOLDER)
        if holder is not None:
            found.append(holder)
    return found


def hits(harness: Harness) -> int:
    """How many reads were answered from a kept copy, over every shard."""
    return sum(holder.hits for holder in holders(harness))


def on_other_shards(harness: Harness, payee: str, count: int) -> list[str]:
    """`count` user ids whose payments shard is not the payee's."""
    home = harness.system.shard_for("payments", payee)
    found = [
        f"payer-{n}"
        for n in range(200)
        if harness.system.shard_for("payments", f"payer-{n}") != home
    ]
    return found[:count]


async def test_a_credit_from_another_shard_shows_at_the_next_read(harness: Harness) -> None:
    """A payee's kept wallet and first statement page show a transfer that the payer's shard
    credited, and a second read with nothing changed is answered from memory."""
    (payer,) = on_other_shards(harness, "bob", 1)
    await harness.seed(payer, 1_000)
    await harness.seed("bob", 10)
    assert await harness.balances("bob") == {"EUR": (10, 0)}
    page = await harness.ask(GetStatement(user_id="bob"))
    assert [entry.amount for entry in page.items] == [10]
    before = hits(harness)
    assert await harness.balances("bob") == {"EUR": (10, 0)}
    assert (await harness.ask(GetStatement(user_id="bob"))) == page
    assert hits(harness) == before + 2  # nothing changed: both from memory

    await harness.ask(transfer("t1", payer, "bob", 300))
    assert await harness.balances("bob") == {"EUR": (310, 0)}
    page = await harness.ask(GetStatement(user_id="bob"))
    assert [entry.amount for entry in page.items] == [300, 10]
    assert page.items[0].counterparty_user_id == payer
    # a smaller page is cut from the kept lines, with its cursor
    first = await harness.ask(GetStatement(user_id="bob", limit=1))
    assert [entry.amount for entry in first.items] == [300]
    assert first.next_cursor is not None
    await harness.check_invariants()


async def test_top_up_hold_capture_and_void_each_show(harness: Harness) -> None:
    """A top-up, a hold placed, a hold captured in full for someone else (no money moves on
    the wallet, only `held`), and a hold voided (the refund) each show at the next read."""
    await harness.seed("rider", 1_000)
    assert await harness.balances("rider") == {"EUR": (1_000, 0)}
    await harness.seed("rider", 500)  # a second top-up, credited outside the owner's mailbox
    assert await harness.balances("rider") == {"EUR": (1_500, 0)}

    hold: HoldView = await harness.ask(
        PlaceHold(idempotency_key="h1", user_id="rider", amount=400, currency="EUR")
    )
    assert await harness.balances("rider") == {"EUR": (1_100, 400)}
    await harness.ask(
        CaptureHold(idempotency_key="c1", hold_id=hold.id, amount=400, payee_user_id="driver")
    )
    assert await harness.balances("rider") == {"EUR": (1_100, 0)}
    assert await harness.balances("driver") == {"EUR": (400, 0)}

    second: HoldView = await harness.ask(
        PlaceHold(idempotency_key="h2", user_id="rider", amount=250, currency="EUR")
    )
    assert await harness.balances("rider") == {"EUR": (850, 250)}
    await harness.ask(VoidHold(hold_id=second.id))
    assert await harness.balances("rider") == {"EUR": (1_100, 0)}
    page = await harness.ask(GetStatement(user_id="rider"))
    assert [entry.kind for entry in page.items][:2] == ["hold_release", "hold"]
    await harness.check_invariants()


async def test_a_new_currency_wallet_shows(harness: Harness) -> None:
    """A wallet in a second currency, made by a credit on another shard, is in the next read."""
    (payer,) = on_other_shards(harness, "bob", 1)
    await harness.seed("bob", 5)
    assert await harness.balances("bob") == {"EUR": (5, 0)}
    await harness.seed(payer, 100, "USD")
    await harness.ask(transfer("u1", payer, "bob", 40, "USD"))
    assert await harness.balances("bob") == {"EUR": (5, 0), "USD": (40, 0)}


async def test_reads_racing_credits_never_miss_an_acknowledged_one(harness: Harness) -> None:
    """While payers on the other shard credit the payee concurrently, every read the payee
    makes shows at least every credit acknowledged before the read began and never more than
    was sent; at the end the kept wallet equals the ledger."""
    payers = on_other_shards(harness, "bob", 6)
    for payer in payers:
        await harness.seed(payer, 10_000)
    acknowledged = 0
    sent = 0
    rng = random.Random(20)

    async def pay(payer: str) -> None:
        nonlocal acknowledged, sent
        for n in range(15):
            amount = rng.randint(1, 50)
            sent += amount
            await harness.ask(transfer(f"{payer}-{n}", payer, "bob", amount))
            acknowledged += amount

    async def read() -> None:
        for _ in range(60):
            floor = acknowledged
            available = (await harness.balances("bob")).get("EUR", (0, 0))[0]
            assert floor <= available <= sent
            await asyncio.sleep(0)

    await asyncio.gather(*(pay(payer) for payer in payers), read(), read())
    assert await harness.balances("bob") == {"EUR": (sent, 0)}
    stored = await harness.pool.fetchval(
        "SELECT credits - debits FROM payment_accounts WHERE owner_kind = 'user' AND owner = 'bob'"
    )
    assert stored == sent
    await harness.check_invariants()


async def test_a_shard_without_hot_wallets_reads_the_tables(database_url: str) -> None:
    """With hot wallets off nothing is kept, and the answers are the same."""

    class Cold(Payments):
        def __init__(self, pool: Any) -> None:
            super().__init__(pool, hot_wallets=False)

    async with running(database_url, payments_type=Cold, shards=2) as cold:
        await cold.seed("amy", 70)
        assert await cold.balances("amy") == {"EUR": (70, 0)}
        assert await cold.balances("amy") == {"EUR": (70, 0)}
        assert holders(cold) == []
        assert [e.amount for e in (await cold.ask(GetStatement(user_id="amy"))).items] == [70]
        assert (await cold.ask(GetWallet(user_id="nobody"))).balances == []


async def test_first_pages_of_every_size_match_the_tables(harness: Harness) -> None:
    """First pages of 1 to 60 lines, served from the kept lines when they cover the page and
    from the tables when not, are the pages the tables give, cursors included."""
    (payer,) = on_other_shards(harness, "bob", 1)
    await harness.seed(payer, 1_000)
    for n in range(7):
        await harness.ask(transfer(f"p{n}", payer, "bob", 10 + n))
    for limit in [50, *range(1, 61)]:
        page = await harness.ask(GetStatement(user_id="bob", limit=limit))
        assert [entry.amount for entry in page.items] == [16, 15, 14, 13, 12, 11, 10][:limit]
        if limit < 7:
            rest = await harness.ask(GetStatement(user_id="bob", limit=10, cursor=page.next_cursor))
            assert [entry.amount for entry in rest.items] == [16, 15, 14, 13, 12, 11, 10][limit:]
        else:
            assert page.next_cursor is None


async def test_a_long_statement_pages_alike_from_memory_and_tables(harness: Harness) -> None:
    """With more lines than a copy keeps (51), pages of 50, 51 and 60 lines and the page after
    each are the tables' pages."""
    (payer,) = on_other_shards(harness, "bob", 1)
    await harness.seed(payer, 100_000)
    await asyncio.gather(
        *(harness.ask(transfer(f"q{n}", payer, "bob", 100 + n)) for n in range(55))
    )
    stored = await harness.pool.fetch(
        "SELECT e.amount FROM payment_entries e JOIN payment_accounts a ON a.id = e.account_id"
        " WHERE a.owner = 'bob' ORDER BY e.id DESC"
    )
    expected = [row["amount"] for row in stored]
    for limit in (50, 51, 60, 50):
        page = await harness.ask(GetStatement(user_id="bob", limit=limit))
        assert [entry.amount for entry in page.items] == expected[:limit]
        if limit >= len(expected):
            assert page.next_cursor is None
            continue
        rest = await harness.ask(GetStatement(user_id="bob", limit=100, cursor=page.next_cursor))
        assert [entry.amount for entry in rest.items] == expected[limit:]


async def test_random_operations_never_leave_a_copy_behind_the_tables(harness: Harness) -> None:
    """After each of 80 random operations (transfers across shards, top-ups, holds placed,
    captured in part or in full, voided), each user's wallet and first statement page, read
    through the actor (from a kept copy when it is still right), equal the tables'."""
    users = ["ann", "ben", *on_other_shards(harness, "ann", 2)]
    rng = random.Random(11)
    for user in users:
        await harness.seed(user, 5_000)
    holds: list[str] = []
    for step in range(80):
        kind = rng.choice(["transfer", "transfer", "top_up", "hold", "capture", "void"])
        if kind == "transfer":
            payer, payee = rng.sample(users, 2)
            amount = rng.randint(1, 300)
            with contextlib.suppress(InsufficientFunds):
                await harness.ask(transfer(f"r{step}", payer, payee, amount))
        elif kind == "top_up":
            await harness.seed(rng.choice(users), rng.randint(1, 500))
        elif kind == "hold":
            try:
                hold: HoldView = await harness.ask(
                    PlaceHold(
                        idempotency_key=f"h{step}",
                        user_id=rng.choice(users),
                        amount=rng.randint(1, 400),
                        currency="EUR",
                    )
                )
                holds.append(hold.id)
            except InsufficientFunds:
                pass
        elif holds:
            hold_id = holds.pop(rng.randrange(len(holds)))
            if kind == "void":
                await harness.ask(VoidHold(hold_id=hold_id))
            else:
                placed = await store.hold_by_id(harness.pool, hold_id)
                assert placed is not None
                payee = rng.choice([u for u in users if u != placed.user_id])
                await harness.ask(
                    CaptureHold(
                        idempotency_key=f"c{step}",
                        hold_id=hold_id,
                        amount=rng.choice([placed.amount, rng.randint(1, placed.amount)]),
                        payee_user_id=payee,
                    )
                )
        for user in users:
            rows = await store.wallet(harness.pool, user)
            assert await harness.balances(user) == {
                row.currency: (row.available, row.held) for row in rows
            }
            lines = await store.statement(harness.pool, user, limit=51, before=None)
            page = await harness.ask(GetStatement(user_id=user))
            assert [entry.transfer_id for entry in page.items] == [
                row.transfer_id for row in lines[:50]
            ]
    assert hits(harness) > 0
    await harness.check_invariants()
