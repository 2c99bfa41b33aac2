"""Holds expired in batches (`Holds.expire_many`) and the races of capture, void and expiry
on a real PostgreSQL: each hold settled exactly once whatever fires twice or comes first,
and random sequences of place, capture, void and expiry keep the ledger exact."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.payments.actor import Payments
from actors.payments.messages import (
    CaptureHold,
    ExpireHold,
    HoldNotActive,
    HoldReleased,
    HoldView,
    PlaceHold,
    VoidHold,
)
from actors.runtime import DomainError, Message
from tests.integration.test_payments_actor import Harness, running
from tests.integration.test_payments_hold_captures import settled_twice

pytestmark = pytest.mark.integration


class Skewed(Payments):
    """A payments shard whose clock the test moves on (`lapse`), recording its runs of
    ExpireHold; no upkeep of its own (a test sweeps by hand)."""

    skew: ClassVar[list[float]] = [0.0]
    expiry_runs: ClassVar[list[int]] = []

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, clock=lambda: time.time() + Skewed.skew[0], maintenance_interval=0)

    @staticmethod
    def lapse(seconds: float = 7_200.0) -> None:
        """Move the clock past the default hold's hour."""
        Skewed.skew[0] += seconds

    async def _run(self, run: Sequence[Message]) -> Sequence[Any]:
        if type(run[0]) is ExpireHold:
            Skewed.expiry_runs.append(len(run))
        return await super()._run(run)


def hold(key: str, user: str, amount: int, **more: Any) -> PlaceHold:
    return PlaceHold(idempotency_key=key, user_id=user, amount=amount, currency="EUR", **more)


async def statuses(harness: Harness, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    rows = await harness.pool.fetch(
        "SELECT id, status, captured FROM payment_holds WHERE id = ANY($1::text[])", list(ids)
    )
    return {row["id"]: (row["status"], row["captured"]) for row in rows}


async def holds_account_matches_open_holds(harness: Harness) -> bool:
    """The holds account holds exactly what the open holds reserve."""
    held = await harness.pool.fetchval(
        "SELECT COALESCE(sum(credits - debits), 0) FROM payment_accounts"
        " WHERE owner_kind = 'system' AND owner = 'holds'"
    )
    reserved = await harness.pool.fetchval(
        "SELECT COALESCE(sum(amount), 0) FROM payment_holds WHERE status = 'held'"
    )
    return bool(held == reserved)


async def test_timers_fired_together_expire_each_hold_once(database_url: str) -> None:
    """ExpireHold for every overdue hold asked at once, each twice (a timer fired twice),
    then the sweep, release every hold once in runs, publish one HoldReleased each, and
    leave a hold not yet due alone."""
    Skewed.expiry_runs.clear()
    async with running(database_url, Skewed, shards=1) as harness:
        await harness.seed("rider", 10_000)
        placed = [await harness.ask(hold(f"p{n}", "rider", 100)) for n in range(60)]
        Skewed.lapse()
        later = await harness.ask(hold("later", "rider", 50))
        ids = [view.id for view in placed] + [later.id]
        await asyncio.gather(*(harness.ask(ExpireHold(hold_id=i)) for i in ids + ids))
        assert max(Skewed.expiry_runs) > 1
        await harness.instances[0].maintain()
        found = await statuses(harness, ids)
        assert [found[view.id] for view in placed] == [("expired", 0)] * 60
        assert found[later.id] == ("held", 0)
        assert await harness.balances("rider") == {"EUR": (9_950, 50)}
        released = await harness.event(HoldReleased, 60)
        assert released.reason == "expired"
        await asyncio.sleep(0.3)
        assert sorted(e.hold_id for e in harness.of(HoldReleased)) == sorted(ids[:-1])
        assert await settled_twice(harness) == 0
        assert await holds_account_matches_open_holds(harness)
        await harness.check_invariants()


async def test_expiry_releases_a_run_in_one_transaction(database_url: str) -> None:
    """Overdue holds of several payers named together (some twice) are released in one
    transaction (one time for all), every one once."""
    async with running(database_url, Skewed, shards=1) as harness:
        for n in range(4):
            await harness.seed(f"r{n}", 10_000)
        placed = [await harness.ask(hold(f"p{n}", f"r{n % 4}", 10 + n)) for n in range(70)]
        Skewed.lapse()
        ids = [view.id for view in placed]
        await harness.instances[0].holds.expire_many(ids + ids[:10])
        counts = await harness.pool.fetch(
            "SELECT created_at, count(*) AS n FROM payment_transfers"
            " WHERE kind = 'hold_release' GROUP BY created_at"
        )
        assert [row["n"] for row in counts] == [70]
        assert set((await statuses(harness, ids)).values()) == {("expired", 0)}
        for n in range(4):
            assert await harness.balances(f"r{n}") == {"EUR": (10_000, 0)}
        assert await settled_twice(harness) == 0
        await harness.check_invariants()


async def test_capture_void_and_expiry_racing_settle_each_hold_once(database_url: str) -> None:
    """Batches of captures, voids and expiries over the same overdue holds, run at once on
    different shards' parts and asked through the shards too, settle every hold exactly
    once: its answers agree with its final state and the money adds up."""
    async with running(database_url, Skewed) as harness:
        riders = [f"r{n}" for n in range(6)]
        for rider in riders:
            await harness.seed(rider, 100_000)
        placed = [await harness.ask(hold(f"p{n}", riders[n % 6], 1_000)) for n in range(90)]
        Skewed.lapse()
        ids = [view.id for view in placed]
        captures = [
            CaptureHold(idempotency_key="k", hold_id=i, amount=600, payee_user_id="d", fee=60)
            for i in ids
        ]
        rng = random.Random(7)

        def shuffled(items: Sequence[Any]) -> list[Any]:
            return rng.sample(list(items), len(items))

        parts = [instance.holds for instance in harness.instances]
        batch_captures, batch_voids = shuffled(captures), shuffled(ids)
        asked_captures = shuffled(captures)
        results = await asyncio.gather(
            parts[1].capture_many(batch_captures),
            parts[2].void_many(batch_voids),
            parts[3].expire_many(shuffled(ids)),
            parts[4].expire_many(shuffled(ids)),
            asyncio.gather(*(harness.ask(m) for m in asked_captures), return_exceptions=True),
            asyncio.gather(
                *(harness.ask(VoidHold(hold_id=i)) for i in ids), return_exceptions=True
            ),
            asyncio.gather(*(harness.ask(ExpireHold(hold_id=i)) for i in ids)),
        )
        captured, voided, _, _, asked, asked_voids, _ = cast(list[Any], results)
        found = await statuses(harness, ids)
        assert {status for status, _ in found.values()} <= {"captured", "voided", "expired"}
        # the batch and the asks name the same key: one capture, answered alike
        by_batch = {m.hold_id: r for m, r in zip(batch_captures, captured, strict=True)}
        by_ask = {m.hold_id: r for m, r in zip(asked_captures, asked, strict=True)}
        for hold_id in ids:
            status = found[hold_id]
            for answer in (by_batch[hold_id], by_ask[hold_id]):
                if status[0] == "captured":
                    assert isinstance(answer, HoldView)
                    assert (answer.id, answer.status, answer.captured) == (hold_id, *status)
                else:
                    assert isinstance(answer, HoldNotActive)
        for asked_ids, answers in ((batch_voids, voided), (ids, asked_voids)):
            for hold_id, answer in zip(asked_ids, answers, strict=True):
                assert isinstance(answer, HoldView) == (found[hold_id][0] == "voided")
        taken = sum(600 for status, _ in found.values() if status == "captured")
        available = [(await harness.balances(rider))["EUR"] for rider in riders]
        assert sum(a for a, _ in available) == 6 * 100_000 - taken
        assert all(held == 0 for _, held in available)
        assert (await harness.balances("d")).get("EUR", (0, 0)) == (taken // 600 * 540, 0)
        assert await settled_twice(harness) == 0
        assert await holds_account_matches_open_holds(harness)
        await harness.check_invariants()


# ── random sequences ───────────────────────────────────────────────────────────────────

_RUN = itertools.count()

Op = tuple[Any, ...]
_OPS = st.one_of(
    st.tuples(st.just("place"), st.integers(0, 2), st.sampled_from([100, 250, 400])),
    st.tuples(
        st.just("capture"),
        st.integers(0, 15),
        st.sampled_from([0, 50, 100, 250, 401]),
        st.sampled_from([0, 10]),
        st.integers(0, 2),
        st.booleans(),
    ),
    st.tuples(st.just("void"), st.integers(0, 15)),
    st.tuples(st.just("expire"), st.integers(0, 15)),
    st.just(("lapse",)),
    st.just(("sweep",)),
)


async def sweep(harness: Harness) -> None:
    """ExpireHold for every overdue hold, asked (`maintain` tells them)."""
    overdue = await harness.instances[0].holds.overdue(time.time() + Skewed.skew[0])
    await asyncio.gather(*(harness.ask(ExpireHold(hold_id=i)) for i in overdue))


async def _sequence(database_url: str, waves: list[list[Op]]) -> None:
    """Run each wave's operations at once (so the shards batch them), then check that the
    ledger sums to zero, no hold is settled twice and every answer agrees with the state."""
    run = next(_RUN)
    riders = [f"x{run}-{n}" for n in range(3)]
    async with running(database_url, Skewed, shards=2) as harness:
        for rider in riders:
            await harness.seed(rider, 1_000)
        placed: list[HoldView] = []
        answers: list[tuple[Message, Any]] = []
        for number, wave in enumerate(waves):
            if any(op[0] == "lapse" for op in wave):
                Skewed.lapse()
            messages: list[Message] = []
            for n, op in enumerate(wave):
                if op[0] == "place":
                    messages.append(hold(f"w{number}-{n}", riders[op[1]], op[2]))
                elif op[0] in ("capture", "void", "expire") and placed:
                    hold_id = placed[op[1] % len(placed)].id
                    if op[0] == "capture":
                        payee = f"x{run}-driver" if op[5] else None
                        messages.append(
                            CaptureHold(
                                idempotency_key=f"k{op[4]}",
                                hold_id=hold_id,
                                amount=op[2],
                                fee=min(op[3], op[2]),
                                payee_user_id=payee,
                            )
                        )
                    else:
                        kind = VoidHold if op[0] == "void" else ExpireHold
                        messages.append(kind(hold_id=hold_id))
            # the sweep as `maintain` does it, but asked, so the wave ends when it is done
            sweeps = [sweep(harness) for op in wave if op[0] == "sweep"]
            got = await asyncio.gather(
                *(harness.ask(m) for m in messages), *sweeps, return_exceptions=True
            )
            for message, answer in zip(messages, got, strict=False):
                assert answer is None or isinstance(answer, HoldView | DomainError), answer
                answers.append((message, answer))
                if isinstance(message, PlaceHold) and isinstance(answer, HoldView):
                    placed.append(answer)
        ids = [view.id for view in placed]
        found = await statuses(harness, ids)
        first: dict[tuple[str, str], Any] = {}
        for message, answer in answers:
            if isinstance(message, CaptureHold) and isinstance(answer, HoldView):
                assert found[answer.id] == ("captured", answer.captured)
                # a key answers one capture, however often it is asked
                assert (
                    first.setdefault((message.hold_id, message.idempotency_key), answer) == answer
                )
            if isinstance(message, VoidHold) and isinstance(answer, HoldView):
                assert found[answer.id][0] == "voided"
        for rider in riders:
            mine = [v for v in placed if v.user_id == rider]
            held = sum(v.amount for v in mine if found[v.id][0] == "held")
            taken = sum(found[v.id][1] for v in mine)
            balance = (await harness.balances(rider)).get("EUR", (0, 0))
            assert balance == (1_000 - held - taken, held)
        assert await settled_twice(harness) == 0
        assert await holds_account_matches_open_holds(harness)
        await harness.check_invariants()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(waves=st.lists(st.lists(_OPS, min_size=1, max_size=10), min_size=1, max_size=6))
def test_random_sequences_keep_the_ledger_exact(database_url: str, waves: list[list[Op]]) -> None:
    """Random waves of holds placed, captured (keys reused, amounts over the hold), voided,
    expired by timer and by sweep, with the clock moved on, keep the ledger summing to zero,
    each hold settled at most once and every wallet's available and held exact."""
    asyncio.run(_sequence(database_url, waves))
