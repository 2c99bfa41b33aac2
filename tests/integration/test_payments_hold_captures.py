"""Holds captured in batches (`Holds.capture_many`, captures.py) on a real PostgreSQL: each
message's own answer as a lone capture gives it, refusals alone, keys replayed (in the batch,
after it, after a crash that came after the commit), and the ledger's sums exact."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg
import pytest

from actors.payments.actor import Payments
from actors.payments.messages import (
    CaptureHold,
    HoldCaptured,
    HoldNotActive,
    HoldNotFound,
    HoldView,
    IdempotencyConflict,
    InvalidPayment,
    PlaceHold,
)
from actors.runtime import DomainError, Message
from tests.integration.test_payments_actor import Harness, running

pytestmark = pytest.mark.integration


def hold(key: str, user: str, amount: int, **more: Any) -> PlaceHold:
    return PlaceHold(idempotency_key=key, user_id=user, amount=amount, currency="EUR", **more)


def capture(key: str, hold_id: str, amount: int, **more: Any) -> CaptureHold:
    return CaptureHold(idempotency_key=key, hold_id=hold_id, amount=amount, **more)


async def fees(harness: Harness) -> int:
    value = await harness.pool.fetchval(
        "SELECT COALESCE(sum(credits - debits), 0) FROM payment_accounts"
        " WHERE owner_kind = 'system' AND owner = 'fees'"
    )
    return int(value)


async def settled_twice(harness: Harness) -> int:
    """Holds whose settling transfers (captured, fees, returned, released) do not add up to
    exactly their amount when closed, or to nothing while open."""
    value = await harness.pool.fetchval(
        """
        SELECT count(*) FROM payment_holds h
        WHERE COALESCE((SELECT sum(t.amount) FROM payment_transfers t
                        WHERE t.hold_id = h.id AND t.kind IN ('capture', 'hold_release')), 0)
              <> CASE h.status WHEN 'held' THEN 0 ELSE h.amount END
           OR (SELECT count(*) FROM payment_transfers t
               WHERE t.hold_id = h.id AND t.kind = 'hold') <> 1
           OR h.captured <> COALESCE((SELECT sum(t.amount) FROM payment_transfers t
                                      WHERE t.hold_id = h.id AND t.kind = 'capture'), 0)
        """
    )
    return int(value)


async def test_a_batch_of_captures_answers_each_alone(database_url: str) -> None:
    """In one batch a capture with a payee and a fee, one without a payee, a key captured
    before (replayed), a key repeated in the batch (replayed), the same key with another
    body, a second key on a hold the batch captured, an amount over the hold, an unknown
    hold, a voided hold, the payer as payee and a fee over the amount each get their own
    answer; the refused ones change nothing and the money adds up."""
    async with running(database_url, shards=1) as harness:
        holds = harness.instances[0].holds
        await harness.seed("rider", 10_000)
        a, b, c, d, e = [await holds.place(hold(f"h{n}", "rider", 1_000)) for n in range(5)]
        first = await holds.capture(capture("k0", e.id, 600, payee_user_id="driver", fee=100))
        await holds.void(d.id)
        batch = [
            capture("k1", a.id, 800, payee_user_id="driver", fee=200),  # 600 + 200, 200 back
            capture("k0", e.id, 600, payee_user_id="driver", fee=100),  # captured before
            capture("k1", a.id, 800, payee_user_id="driver", fee=200),  # repeated in batch
            capture("k1", a.id, 700, payee_user_id="driver", fee=200),  # same key, other body
            capture("k2", a.id, 10, payee_user_id="driver"),  # captured by this batch
            capture("k3", b.id, 1_001, payee_user_id="driver"),  # over the hold
            capture("k4", "missing", 10),
            capture("k5", d.id, 10, payee_user_id="driver"),  # voided
            capture("k6", b.id, 10, payee_user_id="rider"),  # the payer is no payee
            capture("k7", b.id, 10, payee_user_id="driver", fee=11),
            capture("k8", c.id, 300),  # no payee: all to the platform, 700 back
            capture("k3", b.id, 1_000, payee_user_id="driver", fee=0),  # the refused key again
        ]
        results = await holds.capture_many(batch)
        assert isinstance(results[0], HoldView)
        assert (results[0].id, results[0].status, results[0].captured) == (a.id, "captured", 800)
        assert results[1] == first
        assert results[2] == results[0]
        assert isinstance(results[3], IdempotencyConflict)
        assert isinstance(results[4], HoldNotActive)
        assert isinstance(results[5], InvalidPayment)
        assert results[5].details["field"] == "$.amount"
        assert isinstance(results[6], HoldNotFound)
        assert isinstance(results[7], HoldNotActive)
        assert isinstance(results[8], InvalidPayment)
        assert isinstance(results[9], InvalidPayment)
        assert isinstance(results[10], HoldView)
        assert (results[10].status, results[10].captured) == ("captured", 300)
        assert isinstance(results[11], HoldView)
        assert (results[11].id, results[11].captured) == (b.id, 1_000)
        # rider: 10,000 - 5 x 1,000 held; then back: 400 (e), 1,000 (d), 200 (a), 700 (c)
        assert await harness.balances("rider") == {"EUR": (7_300, 0)}
        assert await harness.balances("driver") == {"EUR": (500 + 600 + 1_000, 0)}
        assert await fees(harness) == 100 + 200 + 300
        await harness.event(HoldCaptured, 4)
        await asyncio.sleep(0.2)
        assert sorted(ev.hold_id for ev in harness.of(HoldCaptured)) == sorted(
            [e.id, a.id, c.id, b.id]
        )
        # a later retry of any of them answers the same and moves nothing
        again = await holds.capture_many([batch[0], batch[10], batch[11]])
        assert again == [results[0], results[10], results[11]]
        assert await harness.balances("rider") == {"EUR": (7_300, 0)}
        assert await settled_twice(harness) == 0
        await harness.check_invariants()


def outcome(result: HoldView | DomainError, holds: Sequence[str]) -> tuple[Any, ...]:
    """What a caller sees, the hold named by its place in the run."""
    if isinstance(result, DomainError):
        return ("refused", result.code, str(result.details.get("field")))
    return ("held", holds.index(result.id), result.status, result.amount, result.captured)


async def test_a_batch_of_captures_gives_what_one_by_one_gives(database_url: str) -> None:
    """Random batches of captures (keys repeated with the same or another body, holds named
    twice, amounts and fees over the limits, voided and unknown holds, payer as payee) give
    the same answers, wallets and hold states as the same captures one by one."""
    async with running(database_url, shards=1) as harness:
        holds = harness.instances[0].holds
        for seed in range(6):
            rng = random.Random(seed)
            amounts = [rng.choice([50, 100, 300, 1_000]) for _ in range(12)]
            voided = set(rng.sample(range(12), 2))
            plan = []
            for n in range(rng.randint(1, 40)):
                index = rng.randrange(13)  # 12: an unknown hold
                amount = rng.choice([0, 10, 50, 100, 300, 1_001])
                fee = rng.choice([0, 0, 5, 60])
                payee = rng.choice(["driver", "driver", None, "rider"])
                key = f"k{rng.randrange(max(1, n))}" if rng.random() < 0.3 else f"k{n}"
                plan.append((index, amount, fee, payee, key))
            answers, states = [], []
            for side in ("b", "s"):
                prefix = f"{side}{seed}-"
                await harness.seed(prefix + "rider", 20_000)
                ids = []
                for n, amount in enumerate(amounts):
                    ids.append((await holds.place(hold(f"p{n}", prefix + "rider", amount))).id)
                for n in voided:
                    await holds.void(ids[n])
                messages = [
                    capture(
                        key,
                        ids[index] if index < 12 else f"missing-{index}",
                        amount,
                        fee=fee,
                        payee_user_id=None if payee is None else prefix + payee,
                    )
                    for index, amount, fee, payee, key in plan
                ]
                if side == "b":
                    results = await holds.capture_many(messages)
                else:
                    results = []
                    for message in messages:
                        try:
                            results.append(await holds.capture(message))
                        except DomainError as error:
                            results.append(error)
                answers.append([outcome(r, ids) for r in results])
                rows = await harness.pool.fetch(
                    "SELECT id, status, captured FROM payment_holds WHERE id = ANY($1::text[])",
                    ids,
                )
                by_id = {row["id"]: (row["status"], row["captured"]) for row in rows}
                states.append(
                    (
                        [by_id[i] for i in ids],
                        await harness.balances(prefix + "rider"),
                        await harness.balances(prefix + "driver"),
                    )
                )
            assert answers[0] == answers[1], seed
            assert states[0] == states[1], seed
        assert await settled_twice(harness) == 0
        await harness.check_invariants()


class CrashAfterCommit(Payments):
    """Fails the first run of several captures after it committed, before any reply."""

    crashed: ClassVar[list[int]] = []

    async def _run(self, run: Sequence[Message]) -> Sequence[Any]:
        results = await super()._run(run)
        if type(run[0]) is CaptureHold and len(run) > 1 and not CrashAfterCommit.crashed:
            CrashAfterCommit.crashed.append(len(run))
            raise RuntimeError("injected fault after a batch of captures committed")
        return results


class CrashBeforeCommit(Payments):
    """Fails the first run of several captures after its writes, before its commit."""

    crashed: ClassVar[list[int]] = []

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.holds.captures.before_commit = self._crash

    async def _crash(self, batch: Sequence[CaptureHold]) -> None:
        if len(batch) > 1 and not CrashBeforeCommit.crashed:
            CrashBeforeCommit.crashed.append(len(batch))
            raise RuntimeError("injected fault in the middle of a batch of captures")


@pytest.mark.parametrize("kind", [CrashAfterCommit, CrashBeforeCommit])
async def test_a_crashed_batch_of_captures_captures_each_hold_once(
    database_url: str, kind: type[CrashAfterCommit] | type[CrashBeforeCommit]
) -> None:
    """A batch of captures that crashes after (or before) its commit is redone one by one by
    the runtime: every hold captured once, every ask answered as the batch would have, each
    HoldCaptured published once; asking all again captures nothing more."""
    kind.crashed.clear()
    async with running(database_url, kind, shards=1) as harness:
        await harness.seed("rider", 100_000)
        placed = [await harness.ask(hold(f"p{n}", "rider", 1_000)) for n in range(50)]
        batch = [
            capture(f"c{n}", view.id, 500 + n, payee_user_id="driver", fee=100)
            for n, view in enumerate(placed)
        ]
        # two askers of every capture: one batch holds the same key twice
        answers = await asyncio.gather(*(harness.ask(m) for m in batch + batch))
        assert kind.crashed
        assert kind.crashed[0] > 1
        assert [(a.id, a.status, a.captured) for a in answers[:50]] == [
            (view.id, "captured", 500 + n) for n, view in enumerate(placed)
        ]
        assert answers[50:] == answers[:50]
        taken = sum(500 + n for n in range(50))
        assert await harness.balances("rider") == {"EUR": (100_000 - taken, 0)}
        assert await harness.balances("driver") == {"EUR": (taken - 50 * 100, 0)}
        assert await fees(harness) == 50 * 100
        again = await asyncio.gather(*(harness.ask(m) for m in batch))
        assert again == answers[:50]
        assert await harness.balances("rider") == {"EUR": (100_000 - taken, 0)}
        await harness.event(HoldCaptured, 50)
        await asyncio.sleep(0.3)
        assert len(harness.of(HoldCaptured)) == 50
        assert await settled_twice(harness) == 0
        await harness.check_invariants()


async def test_captures_asked_together_through_the_shards(database_url: str) -> None:
    """Many CaptureHold asked at once through eight shards (each batching its run), with
    keys retried and a second key per hold, capture every hold once: the first key wins,
    its retry answers the same, the other key is refused."""
    async with running(database_url) as harness:
        riders = [f"r{n}" for n in range(10)]
        for rider in riders:
            await harness.seed(rider, 10_000)
        placed = [await harness.ask(hold(f"p{n}", riders[n % 10], 200 + n % 7)) for n in range(120)]
        asks = [capture("a", view.id, 150, payee_user_id="driver", fee=15) for view in placed]
        answers = await asyncio.gather(*(harness.ask(m) for m in asks + asks))
        assert all(isinstance(a, HoldView) and a.status == "captured" for a in answers)
        assert answers[:120] == answers[120:]
        others = await asyncio.gather(
            *(harness.ask(capture("b", view.id, 10)) for view in placed), return_exceptions=True
        )
        assert all(isinstance(a, HoldNotActive) for a in others)
        assert await harness.balances("driver") == {"EUR": (120 * 135, 0)}
        assert await fees(harness) == 120 * 15
        assert await settled_twice(harness) == 0
        await harness.check_invariants()
