"""`python -m tests.bench --section holds`: holds placed, voided, captured and expired per
second through the Payments actor, runs of consecutive PlaceHold (VoidHold, CaptureHold,
ExpireHold) in one transaction (`Holds.apply`, `void_many`, `capture_many`, `expire_many`)
against one transaction per hold, in one run.

On one embedded PostgreSQL (a temporary folder), two Payments actors as the node spawns them
(2 shards keyed as the node keys them, mailbox 4096, batch_size 256, memory transport) on
the same tables: "batched" as shipped, "single" with runs of holds handed one by one to the
lone path (`place_hold`, `void_hold`, `capture_hold`, `expire_hold`: what every hold did
before). `clients` asyncio tasks each ask PlaceHold (amount 10, unique key, an hour) for a
random one of `users` funded wallets, `holds` per round; then VoidHold for every other hold
of the round (shuffled); then CaptureHold for the rest (shuffled; 8 of the 10 taken, a fee
of 2, for a random one of `drivers`, unique keys: three legs each); then `holds / 2` more
holds are placed (not measured), the actors' clock is moved on two hours and ExpireHold is
asked for each of them (shuffled; what their timers send). Rounds interleaved (rotating
order) after a warm-up each; the median of the rounds' rates and of their p50/p99 ask
latency shown. Every hold must be placed, every void answered voided, every capture
captured, every expiry expired; afterwards the ledger's zero-sum check and the holds
account's balance against the holds still open.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from actors.payments import messages as payment_messages
from actors.payments import store
from actors.payments.actor import Payments
from actors.payments.messages import (
    CaptureHold,
    ExpireHold,
    HoldView,
    PlaceHold,
    VoidHold,
    payments_key,
)
from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore, Message, Outbox
from splitgo.db import apply_schema, embedded_pgdata, release_embedded, start_embedded
from transport import Codec, MemoryTransport

Progress = Callable[[str], None]

HOLD, TAKEN, FEE = 10, 8, 2  # a hold, what a capture takes of it, the platform's fee of that
STEPS = ("place", "void", "capture", "expire")


@dataclass(frozen=True)
class HoldsBenchConfig:
    """The sizes of a run."""

    users: int = 400
    drivers: int = 100
    holds: int = 3_000
    clients: int = 200
    rounds: int = 3


_ONE_BY_ONE = (PlaceHold, VoidHold, CaptureHold, ExpireHold)


class _OneByOne(Payments):
    """Places, voids, captures and expires every hold alone, in its own transaction (the
    path before batching)."""

    async def _run(self, run: Sequence[Message]) -> Sequence[Any]:
        if type(run[0]) in _ONE_BY_ONE:
            return [await self._one(message) for message in run]
        return await super()._run(run)


def _places(users: Sequence[str], holds: int) -> list[Message]:
    rng = random.Random()
    return [
        PlaceHold(
            idempotency_key=uuid.uuid4().hex,
            user_id=rng.choice(users),
            amount=HOLD,
            currency="EUR",
            expires_in=3_600.0,
        )
        for _ in range(holds)
    ]


def _captures(hold_ids: Sequence[str], drivers: Sequence[str]) -> list[Message]:
    rng = random.Random()
    plan: list[Message] = [
        CaptureHold(
            idempotency_key=uuid.uuid4().hex,
            hold_id=hold_id,
            amount=TAKEN,
            payee_user_id=rng.choice(drivers),
            fee=FEE,
        )
        for hold_id in hold_ids
    ]
    rng.shuffle(plan)
    return plan


def _placed(answer: Any) -> bool:
    return isinstance(answer, HoldView) and answer.status == "held"


def _voided(answer: Any) -> bool:
    return isinstance(answer, HoldView) and answer.status == "voided"


def _captured(answer: Any) -> bool:
    return isinstance(answer, HoldView) and answer.status == "captured"


def _expired(answer: Any) -> bool:
    return answer is None  # what ExpireHold answers; the rows are checked after the round


async def _round(
    ref: ActorRef, plan: Sequence[Message], clients: int, expect: Callable[[Any], bool]
) -> dict[str, Any]:
    """Ask every message of `plan` from `clients` tasks; each answer must be `expect`ed."""
    latencies: list[float] = []
    placed: list[str] = []
    queue = list(reversed(plan))

    async def client() -> None:
        while queue:
            message = queue.pop()
            started = time.perf_counter()
            answer = await ref.ask(message)
            latencies.append(time.perf_counter() - started)
            if not expect(answer):
                raise RuntimeError(f"{type(message).__name__} answered {answer!r}")
            if isinstance(answer, HoldView):
                placed.append(answer.id)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": len(plan) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "ids": placed,
    }


async def _steps(
    refs: dict[str, ActorRef],
    name: str,
    users: Sequence[str],
    drivers: Sequence[str],
    config: HoldsBenchConfig,
    skew: list[float],
    pool: asyncpg.Pool,
) -> dict[str, dict[str, Any]]:
    """One round of the four steps on actor `name`: the figures of each."""
    ref = refs[name]
    placed = await _round(ref, _places(users, config.holds), config.clients, _placed)
    # every other hold of the round voided (a ride's cancel), the rest captured (its end)
    voids: list[Message] = [VoidHold(hold_id=i) for i in placed["ids"][::2]]
    random.shuffle(voids)
    voided = await _round(ref, voids, config.clients, _voided)
    captures = _captures(placed["ids"][1::2], drivers)
    captured = await _round(ref, captures, config.clients, _captured)
    # holds to expire, placed by the batched actor for both (only their expiry is measured)
    due = await _round(refs["batched"], _places(users, config.holds // 2), config.clients, _placed)
    skew[0] += 7_200.0
    expiries: list[Message] = [ExpireHold(hold_id=i) for i in due["ids"]]
    random.shuffle(expiries)
    expired = await _round(ref, expiries, config.clients, _expired)
    left = await pool.fetchval(
        "SELECT count(*) FROM payment_holds WHERE id = ANY($1::text[]) AND status <> 'expired'",
        due["ids"],
    )
    if left:
        raise RuntimeError(f"{left} holds asked to expire were not expired")
    return {"place": placed, "void": voided, "capture": captured, "expire": expired}


async def measure_holds(config: HoldsBenchConfig, say: Progress) -> dict[str, Any]:
    """Batched against one by one, interleaved rounds, on one embedded PostgreSQL."""
    with tempfile.TemporaryDirectory(prefix="splitgo-holdsbench-") as folder:
        admin = await asyncio.to_thread(start_embedded, Path(folder))
        pool = await asyncpg.create_pool(admin, min_size=2, max_size=12)
        assert pool is not None
        codec = Codec()
        codec.register_module(payment_messages)
        transport = MemoryTransport(node_id="bench-holds", codec=codec)
        # one by one queues its asks for seconds on a loaded machine: the figures are
        # measured, not bounded, so a slow answer must not end the run
        system = ActorSystem(
            transport,
            codec=codec,
            dead_letters=MemoryDeadLetterStore(),
            outbox=Outbox(pool),
            ask_timeout=120.0,
        )
        instances: list[Payments] = []
        # the actors' clock, moved on two hours before each expiry step (the holds' own
        # timers run on the runtime's clock and do not fire during a run)
        skew = [0.0]

        def clock() -> float:
            return time.time() + skew[0]

        def factory(kind: type[Payments]) -> Callable[[], Payments]:
            def make() -> Payments:
                instance = kind(pool, maintenance_interval=0, clock=clock)
                instances.append(instance)
                return instance

            return make

        try:
            await apply_schema(pool)
            await system.start()
            refs = {
                name: system.spawn(
                    kind,
                    name,
                    factory=factory(kind),
                    shards=2,
                    key=payments_key,
                    mailbox_size=4096,
                )
                for name, kind in (("batched", Payments), ("single", _OneByOne))
            }
            while len(instances) < 4:
                await asyncio.sleep(0.01)
            users = [f"rider-{n}" for n in range(config.users)]
            for user in users:
                await instances[0].credit_top_up(
                    top_up_id=f"seed-{user}", user_id=user, amount=10**9, currency="EUR"
                )
            drivers = [f"driver-{n}" for n in range(config.drivers)]
            names = list(refs)
            for name in names:  # warm-up
                await _round(refs[name], _places(users, 300), config.clients, _placed)
            rounds: dict[str, list[dict[str, Any]]] = {
                f"{name}_{step}": [] for name in names for step in STEPS
            }
            for n in range(config.rounds):
                for name in names[n % 2 :] + names[: n % 2]:
                    got = await _steps(refs, name, users, drivers, config, skew, pool)
                    for step in STEPS:
                        rounds[f"{name}_{step}"].append(got[step])
                        say(
                            f"  round {n + 1} {name:8} {step:7} {got[step]['rate']:8,.0f} holds/s"
                            f"  p50 {got[step]['p50_ms']:6.1f} ms"
                            f"  p99 {got[step]['p99_ms']:6.1f} ms"
                        )
            sums = await store.sums_by_currency(pool)
            assert all(total == 0 for total in sums.values()), sums
            counts = {
                row["status"]: row["n"]
                for row in await pool.fetch(
                    "SELECT status, count(*) AS n FROM payment_holds GROUP BY status"
                )
            }
            reserved = await pool.fetchval(
                "SELECT COALESCE(sum(amount), 0) FROM payment_holds WHERE status = 'held'"
            )
            held = await pool.fetchval(
                "SELECT credits - debits FROM payment_accounts WHERE owner_kind = 'system'"
                " AND owner = 'holds'"
            )
            assert held == reserved, (held, reserved)
            results: dict[str, Any] = {
                "users": config.users,
                "drivers": config.drivers,
                "holds_per_round": config.holds,
                "clients": config.clients,
                "rounds": config.rounds,
                "holds_open": counts.get("held", 0),
                "holds_voided": counts.get("voided", 0),
                "holds_captured": counts.get("captured", 0),
                "holds_expired": counts.get("expired", 0),
            }
            for name, measured in rounds.items():
                for figure in ("rate", "p50_ms", "p99_ms"):
                    value = statistics.median(r[figure] for r in measured)
                    results[f"{name}_{figure}"] = round(value, 1)
            for step in STEPS:
                results[f"{step}_speedup"] = round(
                    statistics.median(
                        b["rate"] / s["rate"]
                        for b, s in zip(
                            rounds[f"batched_{step}"], rounds[f"single_{step}"], strict=True
                        )
                    ),
                    2,
                )
            return results
        finally:
            await system.stop(5.0)
            await transport.close()
            await pool.close()
            await asyncio.to_thread(release_embedded, embedded_pgdata(Path(folder)))


def format_holds(results: dict[str, Any]) -> str:
    lines = []
    for step in STEPS:
        b, s = f"batched_{step}", f"single_{step}"
        lines.append(
            f"  {step}: batched {results[b + '_rate']:,.0f}/s (p50 {results[b + '_p50_ms']} ms,"
            f" p99 {results[b + '_p99_ms']} ms) against one by one {results[s + '_rate']:,.0f}/s"
            f" (p50 {results[s + '_p50_ms']} ms, p99 {results[s + '_p99_ms']} ms):"
            f" x{results[step + '_speedup']}"
        )
    lines.append(
        f"  ({results['clients']} clients, {results['users']} wallets, {results['drivers']} payees)"
    )
    return "\n".join(lines)


def holds_section(
    results_dir: Path,
    base: dict[str, Any],
    say: Progress,
    write: Callable[[str, dict[str, Any], Path], Path],
    config: HoldsBenchConfig | None = None,
) -> bool:
    """The section as `python -m tests.bench` runs it (no target: figures side by side)."""
    say(
        "\n== holds: PlaceHold, VoidHold, CaptureHold, ExpireHold batched in one transaction"
        " per run, against one by one"
    )
    before = os.getloadavg()
    results = asyncio.run(measure_holds(config or HoldsBenchConfig(), say))
    results["loadavg_before"] = before
    results["loadavg_after"] = os.getloadavg()
    say(format_holds(results))
    path = write("holds.json", {**base, **results}, results_dir)
    say(f"\nwritten: {path}")
    return True
