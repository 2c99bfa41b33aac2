"""Holds placed in batches (`Holds.apply`) on a real PostgreSQL: the same results as one by
one, refusals alone, replays by key, and a crashed batch redone one by one."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from actors.payments.actor import Payments
from actors.payments.messages import (
    CaptureHold,
    CurrencyMismatch,
    GetWallet,
    HoldNotActive,
    HoldNotFound,
    HoldReleased,
    HoldView,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidPayment,
    PlaceHold,
    VoidHold,
)
from actors.runtime import DomainError
from tests.integration.test_payments_actor import Harness, running

pytestmark = pytest.mark.integration


def hold(key: str, user: str, amount: int, currency: str = "EUR", **more: Any) -> PlaceHold:
    return PlaceHold(idempotency_key=key, user_id=user, amount=amount, currency=currency, **more)


def outcome(result: HoldView | DomainError, prefix: str) -> tuple[Any, ...]:
    """What a caller sees of a result, without the hold's random id and times."""
    if isinstance(result, DomainError):
        return ("refused", type(result).__name__, result.code)
    user = result.user_id.removeprefix(prefix)
    return ("held", user, result.amount, result.currency, result.status, result.reference)


async def wallets(harness: Harness, users: Sequence[str]) -> list[dict[str, tuple[int, int]]]:
    answers = []
    for user in users:
        view = await harness.ask(GetWallet(user_id=user))
        answers.append({b.currency: (b.available, b.held) for b in view.balances})
    return answers


async def one_by_one(harness: Harness, batch: Sequence[PlaceHold]) -> list[HoldView | DomainError]:
    results: list[HoldView | DomainError] = []
    for message in batch:
        try:
            results.append(await harness.instances[0].holds.place(message))
        except DomainError as error:
            results.append(error)
    return results


def renamed(message: PlaceHold, prefix: str) -> PlaceHold:
    return PlaceHold(
        idempotency_key=message.idempotency_key,
        user_id=prefix + message.user_id,
        amount=message.amount,
        currency=message.currency,
        reference=message.reference,
        expires_in=message.expires_in,
    )


async def test_a_batch_of_holds_gives_what_one_by_one_gives(database_url: str) -> None:
    """Random batches of holds (repeated keys, overdrafts, users with no wallet or another
    currency, bad input) give the same answers, balances and held amounts as the same holds
    placed one by one."""
    async with running(database_url, shards=1) as harness:
        holds = harness.instances[0].holds
        for seed in range(6):
            rng = random.Random(seed)
            users = [f"u{n}" for n in range(5)]
            funded = {"u0": 1_000, "u1": 300, "u2": 50}
            for prefix in (f"b{seed}-", f"s{seed}-"):
                for user, amount in funded.items():
                    await harness.seed(prefix + user, amount)
                await harness.seed(prefix + "u3", 500, "USD")  # u3 holds dollars only; u4 none
            batch = []
            for n in range(rng.randint(1, 40)):
                key = f"k{rng.randrange(max(1, n))}" if rng.random() < 0.2 else f"k{n}"
                amount = rng.choice([1, 20, 99, 250, 400])
                expires = 0.0 if rng.random() < 0.05 else 600.0
                batch.append(hold(key, rng.choice(users), amount, expires_in=expires))
            batched = await holds.apply([renamed(m, f"b{seed}-") for m in batch])
            single = await one_by_one(harness, [renamed(m, f"s{seed}-") for m in batch])
            assert [outcome(r, f"b{seed}-") for r in batched] == [
                outcome(r, f"s{seed}-") for r in single
            ], seed
            assert await wallets(harness, [f"b{seed}-{u}" for u in users]) == await wallets(
                harness, [f"s{seed}-{u}" for u in users]
            )
            # no hold row, entry or key is left by a refusal: the same counts both ways
            for table, column in (
                ("payment_holds", "user_id"),
                ("payment_transfers", "from_user_id"),
            ):
                counts = [
                    await harness.pool.fetchval(
                        f"SELECT count(*) FROM {table} WHERE {column} LIKE $1", f"{prefix}%"
                    )
                    for prefix in (f"b{seed}-", f"s{seed}-")
                ]
                assert counts[0] == counts[1], (seed, table)
        await harness.check_invariants()


async def test_a_batch_with_a_replay_an_overdraft_and_no_wallet(database_url: str) -> None:
    """In one batch a known key replays its first hold, a key repeated in the batch replays
    the earlier one, an overdraft in the middle and payers with no wallet are refused alone,
    and the rest hold their money."""
    async with running(database_url, shards=1) as harness:
        holds = harness.instances[0].holds
        await harness.seed("rider", 1_000)
        await harness.seed("tourist", 1_000, "USD")
        first = await holds.place(hold("h0", "rider", 100))
        results = await holds.apply(
            [
                hold("h0", "rider", 150),  # a retry with another amount: the first hold
                hold("h1", "rider", 300),
                hold("h2", "rider", 900),  # more than is left
                hold("h3", "nobody", 10),
                hold("h4", "tourist", 10),  # dollars only
                hold("h5", "rider", 0),
                hold("h1", "rider", 300),  # repeated in the batch
                hold("h1", "rider", 300, reference="other"),  # same key, another request
                hold("h6", "rider", 600),  # exactly what is left
            ]
        )
        assert results[0] == first
        assert isinstance(results[1], HoldView)
        assert results[1].amount == 300
        assert isinstance(results[2], InsufficientFunds)
        assert isinstance(results[3], InsufficientFunds)
        assert isinstance(results[4], CurrencyMismatch)
        assert isinstance(results[5], InvalidPayment)
        assert results[6] == results[1]
        assert isinstance(results[7], IdempotencyConflict)
        assert isinstance(results[8], HoldView)
        assert results[8].amount == 600
        assert await harness.balances("rider") == {"EUR": (0, 1_000)}
        assert await harness.balances("tourist") == {"USD": (1_000, 0)}
        assert await harness.pool.fetchval("SELECT count(*) FROM payment_holds") == 3
        assert not await harness.pool.fetchval(
            "SELECT count(*) FROM payment_accounts WHERE owner = 'nobody'"
        )
        # the refused overdraft's key is not remembered: retried once there is money, it holds
        await harness.seed("rider", 900)
        again = await holds.place(hold("h2", "rider", 900))
        assert again.status == "held"
        await harness.check_invariants()


class CrashingPayments(Payments):
    """Fails the first multi-hold batch after its writes, before its commit."""

    crashed: list[int] = []

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.holds.before_commit = self._crash

    async def _crash(self, batch: Sequence[PlaceHold]) -> None:
        if len(batch) > 1 and not CrashingPayments.crashed:
            CrashingPayments.crashed.append(len(batch))
            raise RuntimeError("injected fault in the middle of a batch of holds")


async def test_a_crashed_batch_of_holds_is_redone_one_by_one(database_url: str) -> None:
    """A batch of holds that crashes before its commit is redone one by one by the runtime:
    every hold placed once, the overdrafts refused, nothing held twice."""
    CrashingPayments.crashed.clear()
    async with running(database_url, CrashingPayments, shards=1) as harness:
        await harness.seed("rider", 5_000)
        batch = [hold(f"c{n}", "rider", 100 + n) for n in range(60)]
        answers = await asyncio.gather(*(harness.ask(m) for m in batch), return_exceptions=True)
        assert CrashingPayments.crashed
        assert CrashingPayments.crashed[0] > 1
        placed = [a for a in answers if isinstance(a, HoldView)]
        refused = [a for a in answers if isinstance(a, InsufficientFunds)]
        assert len(placed) + len(refused) == 60
        held = sum(view.amount for view in placed)
        assert held <= 5_000
        assert len({view.id for view in placed}) == len(placed)
        assert await harness.pool.fetchval("SELECT count(*) FROM payment_holds") == len(placed)
        assert await harness.balances("rider") == {"EUR": (5_000 - held, held)}
        # a retry of every key answers the same holds and holds nothing more
        again = await asyncio.gather(*(harness.ask(m) for m in batch), return_exceptions=True)
        assert [a.id for a in again if isinstance(a, HoldView)] == [v.id for v in placed]
        assert await harness.balances("rider") == {"EUR": (5_000 - held, held)}
        await harness.check_invariants()


async def test_a_batch_of_voids_answers_as_one_by_one(database_url: str) -> None:
    """In one batch of voids an open hold is released once (even named twice), a voided
    hold answers the same again, a captured hold and an unknown id are refused alone, and
    each release is published once."""
    async with running(database_url, shards=1) as harness:
        holds = harness.instances[0].holds
        await harness.seed("rider", 1_000)
        one = await holds.place(hold("v1", "rider", 100))
        two = await holds.place(hold("v2", "rider", 200))
        done = await holds.place(hold("v3", "rider", 300))
        taken = await holds.place(hold("v4", "rider", 50))
        gone = await holds.void(done.id)
        await harness.ask(CaptureHold(idempotency_key="c", hold_id=taken.id, amount=50))
        results = await holds.void_many([one.id, one.id, "missing", taken.id, two.id, done.id])
        assert isinstance(results[0], HoldView)
        assert (results[0].id, results[0].status) == (one.id, "voided")
        assert results[1] == results[0]
        assert isinstance(results[2], HoldNotFound)
        assert isinstance(results[3], HoldNotActive)
        assert isinstance(results[4], HoldView)
        assert (results[4].id, results[4].status) == (two.id, "voided")
        assert results[5] == gone
        assert await harness.balances("rider") == {"EUR": (950, 0)}
        released = await harness.event(HoldReleased, 3)
        await asyncio.sleep(0.2)
        ids = sorted(event.hold_id for event in harness.of(HoldReleased))
        assert ids == sorted([one.id, two.id, done.id])
        assert released.reason == "voided"
        await harness.check_invariants()


async def test_voids_asked_together_release_each_hold_once(database_url: str) -> None:
    """Many VoidHold asked at once (so the shard batches them), each hold named twice, release
    every hold once and answer both askers the same."""
    async with running(database_url, shards=1) as harness:
        await harness.seed("rider", 10_000)
        placed = [await harness.ask(hold(f"w{n}", "rider", 10 + n)) for n in range(40)]
        asks = [VoidHold(hold_id=view.id) for view in placed] * 2
        answers = await asyncio.gather(*(harness.ask(m) for m in asks))
        assert [a.status for a in answers] == ["voided"] * 80
        assert answers[:40] == answers[40:]
        assert await harness.balances("rider") == {"EUR": (10_000, 0)}
        await harness.event(HoldReleased, 40)
        await asyncio.sleep(0.2)
        assert len(harness.of(HoldReleased)) == 40
        await harness.check_invariants()
