"""Transfers per second through the batching payments actor, against one transaction per
transfer, on one embedded PostgreSQL, in one run.

Two systems move the same money between the same wallets:

* batched: splitgo's ActorSystem (MemoryTransport without codec check, an Outbox on the
  pool) with the Payments actor spawned as the node spawns it (2 shards keyed by payer,
  mailbox 4096, batch_size 256): each shard drains what waits in its mailbox and applies
  the consecutive transfers in ONE database transaction. `concurrency` asyncio tasks
  each `await ref.ask(Transfer(...))`, one after the other, with a unique idempotency key.
* one-tx: the same number of asyncio tasks, each running one transaction per transfer
  directly with asyncpg on the same pool: BEGIN; lock both accounts with one
  `SELECT ... ORDER BY id FOR UPDATE`; remember the idempotency key; check the balance;
  insert the transfer and its two entries; update both balances; COMMIT. Its own
  `bench_*` tables in the same database, shaped like the payment_* ones.

Both get the identical list of (payer, payee) pairs per round, drawn at random among
`wallets` wallets seeded with plenty of EUR (the actor's through its own top-up credit
path, `credit_top_up`), amount 1 each. Every transfer must complete; a refusal fails the
run. Method as in runtime.py: one warm-up each, then interleaved rounds (rotating order);
rates are medians of the rounds, the ratio the median of the per-round ratios. Latency is
each ask's (or transaction's) time from the client's side, p50/p99 per round, medians of
those shown. After the rounds the ledger's zero-sum invariant (every currency's credits -
debits over all accounts sums to 0, and no wallet is negative) is checked on both.

Not measured here: POST /api/v1/transfers over HTTP against a node; the latency shown is
the in-process ask's.
"""

from __future__ import annotations

import asyncio
import atexit
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from actors.payments import store
from actors.payments.actor import Payments
from actors.payments.messages import Transfer, TransferView, payments_key
from actors.runtime import ActorRef, ActorSystem, DomainError, MemoryDeadLetterStore, Outbox
from splitgo.db import open_database
from transport import Codec, MemoryTransport

Progress = Callable[[str], None]
Pair = tuple[int, int]

RATIO_TARGET = 3.0  # batched at least this multiple of one transaction per transfer
RATE_TARGET = 10_000.0  # batched transfers per second on the embedded PostgreSQL
SEED_AMOUNT = 10**11  # minor units per wallet: never runs short
CURRENCY = "EUR"

_BASELINE_SCHEMA = """
DROP TABLE IF EXISTS bench_entries, bench_transfers, bench_idempotency, bench_accounts;
CREATE TABLE bench_accounts (
    id             bigserial PRIMARY KEY,
    owner          text NOT NULL UNIQUE,
    currency       text NOT NULL,
    debits         bigint NOT NULL DEFAULT 0 CHECK (debits >= 0),
    credits        bigint NOT NULL DEFAULT 0 CHECK (credits >= 0),
    allow_negative boolean NOT NULL DEFAULT false,
    CHECK (allow_negative OR debits <= credits)
);
CREATE TABLE bench_transfers (
    id                text PRIMARY KEY,
    debit_account_id  bigint NOT NULL REFERENCES bench_accounts (id),
    credit_account_id bigint NOT NULL REFERENCES bench_accounts (id),
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE TABLE bench_entries (
    id            bigserial PRIMARY KEY,
    transfer_id   text NOT NULL REFERENCES bench_transfers (id),
    account_id    bigint NOT NULL REFERENCES bench_accounts (id),
    side          text NOT NULL,
    amount        bigint NOT NULL,
    balance_after bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    UNIQUE (transfer_id, side)
);
CREATE INDEX bench_entries_by_account ON bench_entries (account_id, id DESC);
CREATE TABLE bench_idempotency (
    scope      text NOT NULL,
    key        text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


@dataclass
class PaymentsBenchConfig:
    """How many transfers per round, from how many concurrent clients, among how many
    wallets, on a pool of how many connections."""

    n: int = 10_000
    rounds: int = 3
    concurrency: int = 64
    wallets: int = 200
    pool_size: int = 20
    shards: int = 2
    seed: int = 7

    def __post_init__(self) -> None:
        if min(self.n, self.rounds, self.concurrency, self.pool_size, self.shards) < 1:
            raise ValueError("n, rounds, concurrency, pool_size and shards must be at least 1")
        if self.wallets < 2:
            raise ValueError("wallets must be at least 2")


@dataclass
class RoundResult:
    """One system's round: its rate and its clients' latency percentiles."""

    rate: float
    p50_ms: float
    p99_ms: float
    mean_batch: float | None = None  # transfers per database transaction (the actor's)


@dataclass
class SystemResult:
    """The rounds of one system."""

    key: str
    label: str
    rounds: list[RoundResult] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(r.rate for r in self.rounds)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.rounds)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.rounds)

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "transfers_per_s": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "rounds": [
                {
                    "transfers_per_s": round(r.rate, 1),
                    "p50_ms": round(r.p50_ms, 2),
                    "p99_ms": round(r.p99_ms, 2),
                    "mean_transfers_per_tx": (
                        round(r.mean_batch, 2) if r.mean_batch is not None else 1.0
                    ),
                }
                for r in self.rounds
            ],
        }


@dataclass
class Target:
    """One target with its measured value."""

    name: str
    value: float
    target: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.value >= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 2),
            "target": self.target,
            "unit": self.unit,
            "passed": self.passed,
        }


@dataclass
class PaymentsReport:
    """Everything one run measured, the verdicts and the ledger checks."""

    config: PaymentsBenchConfig
    systems: dict[str, SystemResult]
    ratio: float
    ledger: dict[str, Any]
    seconds: float

    @property
    def targets(self) -> list[Target]:
        return [
            Target("batched/one-tx", self.ratio, RATIO_TARGET, "x"),
            Target("batched transfers/s", self.systems["batched"].rate, RATE_TARGET, "/s"),
        ]

    @property
    def all_passed(self) -> bool:
        return all(t.passed for t in self.targets) and bool(self.ledger["zero_sum"])

    def as_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "config": {
                "n": c.n,
                "rounds": c.rounds,
                "warm_up_rounds": 1,
                "concurrency": c.concurrency,
                "wallets": c.wallets,
                "pool_size": c.pool_size,
                "shards": c.shards,
                "statistic": "median",
                "interleaved": True,
                "database": "embedded PostgreSQL (one server, one database, both systems)",
            },
            "systems": {key: result.as_json() for key, result in self.systems.items()},
            "ratio_batched_vs_one_tx": round(self.ratio, 3),
            "targets": [t.as_json() for t in self.targets],
            "ledger": self.ledger,
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 2),
        }

    def format(self) -> str:
        lines = [
            "",
            f"{'system':<34} {'transfers/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'per tx':>7}"
            "  rounds (/s)",
            "-" * 91,
        ]
        for result in self.systems.values():
            rounds = " ".join(f"{r.rate:,.0f}" for r in result.rounds)
            batches = [r.mean_batch for r in result.rounds if r.mean_batch is not None]
            per_tx = statistics.median(batches) if batches else 1.0
            lines.append(
                f"{result.label:<34} {result.rate:>12,.0f} {result.p50_ms:>8.2f} "
                f"{result.p99_ms:>8.2f} {per_tx:>7.1f}  {rounds}"
            )
        lines += [
            f"(medians of {self.config.rounds} rounds of {self.config.n:,} transfers from "
            f"{self.config.concurrency} concurrent clients; latency: per client call, "
            "in process — POST /api/v1/transfers over HTTP is measured below; per tx: mean "
            "transfers per database transaction)",
            "",
            f"{'target':<22} {'measured':>10} {'target':>10}  result",
            "-" * 91,
        ]
        for t in self.targets:
            shown = f"{t.value:.2f}x" if t.unit == "x" else f"{t.value:,.0f}"
            wanted = f">= {t.target:g}x" if t.unit == "x" else f">= {t.target:,.0f}"
            verdict = "PASS" if t.passed else f"MISS ({t.value / t.target - 1:+.0%})"
            lines.append(f"{t.name:<22} {shown:>10} {wanted:>10}  {verdict}")
        ledger = self.ledger
        lines += [
            "",
            f"ledger zero-sum: payment_accounts {ledger['payments_sums']}, "
            f"bench_accounts {ledger['baseline_sums']}; negative wallets "
            f"{ledger['payments_negative']}/{ledger['baseline_negative']}; transfers booked "
            f"{ledger['payments_p2p_transfers']:,}/{ledger['baseline_transfers']:,} "
            f"(expected {ledger['expected_transfers']:,} each) -> "
            f"{'OK' if ledger['zero_sum'] else 'BROKEN'}",
        ]
        return "\n".join(lines)


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _drive(
    pairs: list[Pair], concurrency: int, one: Callable[[int, Pair], Awaitable[None]]
) -> RoundResult:
    """`concurrency` clients take the next pair in turn, one call at a time each."""
    latencies: list[float] = []
    next_index = 0

    async def client() -> None:
        nonlocal next_index
        clock = time.perf_counter
        while next_index < len(pairs):
            index = next_index
            next_index += 1
            started = clock()
            await one(index, pairs[index])
            latencies.append(clock() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return RoundResult(
        rate=len(pairs) / elapsed,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
    )


class _CountingPayments(Payments):
    """The Payments actor, counting how many transfers each of its transactions applied."""

    def __init__(self, pool: asyncpg.Pool, batches: list[int]) -> None:
        super().__init__(pool)
        apply = self.transfers.apply

        async def counting(messages: Sequence[Transfer]) -> list[TransferView | DomainError]:
            batches.append(len(messages))
            return await apply(messages)

        self.transfers.apply = counting  # type: ignore[method-assign]


class _Batched:
    """The Payments actor in an ActorSystem, asked by concurrent clients."""

    key = "batched"
    label = "splitgo Payments actor (batched)"

    def __init__(self, pool: asyncpg.Pool, config: PaymentsBenchConfig) -> None:
        self.pool = pool
        self.config = config
        self.users = [f"bench-user-{i:04d}" for i in range(config.wallets)]
        self.instances: list[Payments] = []
        self.batches: list[int] = []  # transfers per actor transaction, this round

    async def start(self) -> None:
        self.transport = MemoryTransport(node_id="bench-payments")
        self.system = ActorSystem(
            self.transport,
            codec=Codec(),
            dead_letters=MemoryDeadLetterStore(),
            outbox=Outbox(self.pool),
            ask_timeout=60.0,
        )
        await self.system.start()

        def make() -> Payments:
            instance = _CountingPayments(self.pool, self.batches)
            self.instances.append(instance)
            return instance

        self.ref: ActorRef = self.system.spawn(
            Payments,
            "payments",
            factory=make,
            shards=self.config.shards,
            key=payments_key,
            mailbox_size=4096,
        )
        async with asyncio.timeout(10):
            while len(self.instances) < self.config.shards:
                await asyncio.sleep(0.01)
        for user in self.users:  # the provider top-up credit path: clearing -> wallet
            credited = await self.instances[0].credit_top_up(
                top_up_id=f"bench-seed-{user}", user_id=user, amount=SEED_AMOUNT, currency=CURRENCY
            )
            if credited is None:
                raise RuntimeError(f"seeding {user} credited nothing")

    async def run(self, pairs: list[Pair]) -> RoundResult:
        ask = self.ref.ask
        users = self.users
        prefix = uuid.uuid4().hex

        async def one(index: int, pair: Pair) -> None:
            reply = await ask(
                Transfer(
                    idempotency_key=f"{prefix}-{index}",
                    from_user_id=users[pair[0]],
                    to_user_id=users[pair[1]],
                    amount=1,
                    currency=CURRENCY,
                )
            )
            if type(reply) is not TransferView:
                raise RuntimeError(f"the actor answered {reply!r}")

        self.batches.clear()
        result = await _drive(pairs, self.config.concurrency, one)
        result.mean_batch = len(pairs) / len(self.batches) if self.batches else None
        return result

    async def stop(self) -> None:
        await self.system.stop(5.0)
        await self.transport.close()


class _OneTx:
    """One asyncpg transaction per transfer on the same pool, its own bench_* tables."""

    key = "one_tx"
    label = "one transaction per transfer"

    def __init__(self, pool: asyncpg.Pool, config: PaymentsBenchConfig) -> None:
        self.pool = pool
        self.config = config
        self.owners = [f"bench-user-{i:04d}" for i in range(config.wallets)]

    async def start(self) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(_BASELINE_SCHEMA)
            await connection.execute(
                "INSERT INTO bench_accounts (owner, currency, debits, allow_negative)"
                " VALUES ('provider_clearing', $1, $2, true)",
                CURRENCY,
                SEED_AMOUNT * len(self.owners),
            )
            await connection.executemany(
                "INSERT INTO bench_accounts (owner, currency, credits) VALUES ($1, $2, $3)",
                [(owner, CURRENCY, SEED_AMOUNT) for owner in self.owners],
            )
            await connection.execute("ANALYZE bench_accounts")

    async def run(self, pairs: list[Pair]) -> RoundResult:
        pool = self.pool
        owners = self.owners
        prefix = uuid.uuid4().hex

        async def one(index: int, pair: Pair) -> None:
            payer, payee = owners[pair[0]], owners[pair[1]]
            key = f"{prefix}-{index}"
            amount = 1
            now = datetime.now(UTC)
            async with pool.acquire() as connection, connection.transaction():
                rows = await connection.fetch(
                    "SELECT id, owner, debits, credits FROM bench_accounts"
                    " WHERE owner = ANY($1::text[]) ORDER BY id FOR UPDATE",
                    [payer, payee],
                )
                accounts = {row["owner"]: row for row in rows}
                fresh = await connection.fetchval(
                    "INSERT INTO bench_idempotency (scope, key, created_at) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    f"transfer:{payer}",
                    key,
                    now,
                )
                if not fresh:
                    return  # a replay: already applied
                debit, credit = accounts[payer], accounts[payee]
                if debit["credits"] - debit["debits"] < amount:
                    raise RuntimeError(f"{payer} is short of funds")
                transfer_id = str(uuid.uuid4())
                await connection.execute(
                    "INSERT INTO bench_transfers"
                    " (id, debit_account_id, credit_account_id, amount, currency, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    transfer_id,
                    debit["id"],
                    credit["id"],
                    amount,
                    CURRENCY,
                    now,
                )
                await connection.execute(
                    "INSERT INTO bench_entries"
                    " (transfer_id, account_id, side, amount, balance_after, created_at)"
                    " VALUES ($1, $2, 'debit', $4, $5, $7), ($1, $3, 'credit', $4, $6, $7)",
                    transfer_id,
                    debit["id"],
                    credit["id"],
                    amount,
                    debit["credits"] - debit["debits"] - amount,
                    credit["credits"] - credit["debits"] + amount,
                    now,
                )
                await connection.execute(
                    "UPDATE bench_accounts SET debits = debits + CASE WHEN id = $1 THEN $3 ELSE 0"
                    " END, credits = credits + CASE WHEN id = $2 THEN $3 ELSE 0 END"
                    " WHERE id IN ($1, $2)",
                    debit["id"],
                    credit["id"],
                    amount,
                )

        return await _drive(pairs, self.config.concurrency, one)

    async def stop(self) -> None:
        return None


_Bench = _Batched | _OneTx


def _batch_note(result: RoundResult) -> str:
    return f"   {result.mean_batch:.1f}/tx" if result.mean_batch is not None else ""


def _pairs(rng: random.Random, n: int, wallets: int) -> list[Pair]:
    """n (payer, payee) index pairs, payer != payee, uniformly among the wallets."""
    pairs: list[Pair] = []
    for _ in range(n):
        payer = rng.randrange(wallets)
        payee = rng.randrange(wallets - 1)
        pairs.append((payer, payee + 1 if payee >= payer else payee))
    return pairs


async def _ledger(pool: asyncpg.Pool, expected: int) -> dict[str, Any]:
    """The zero-sum invariant on both ledgers, and that every transfer was booked once."""
    payments_sums = await store.sums_by_currency(pool)
    baseline_rows = await pool.fetch(
        "SELECT currency, sum(credits - debits)::bigint AS total FROM bench_accounts"
        " GROUP BY currency"
    )
    baseline_sums = {row["currency"]: row["total"] for row in baseline_rows}
    payments_negative = await pool.fetchval(
        "SELECT count(*) FROM payment_accounts WHERE NOT allow_negative AND debits > credits"
    )
    baseline_negative = await pool.fetchval(
        "SELECT count(*) FROM bench_accounts WHERE NOT allow_negative AND debits > credits"
    )
    payments_p2p = await pool.fetchval("SELECT count(*) FROM payment_transfers WHERE kind = 'p2p'")
    baseline_transfers = await pool.fetchval("SELECT count(*) FROM bench_transfers")
    zero_sum = (
        all(total == 0 for total in payments_sums.values())
        and all(total == 0 for total in baseline_sums.values())
        and payments_negative == 0
        and baseline_negative == 0
        and payments_p2p == expected
        and baseline_transfers == expected
    )
    return {
        "payments_sums": payments_sums,
        "baseline_sums": baseline_sums,
        "payments_negative": payments_negative,
        "baseline_negative": baseline_negative,
        "payments_p2p_transfers": payments_p2p,
        "baseline_transfers": baseline_transfers,
        "expected_transfers": expected,
        "zero_sum": zero_sum,
    }


async def _run(config: PaymentsBenchConfig, progress: Progress, folder: Path) -> PaymentsReport:
    started = time.perf_counter()
    progress(f"  starting the embedded PostgreSQL in {folder}")
    database = await open_database(None, folder, pool_size=config.pool_size)
    pool = database.pool
    rng = random.Random(config.seed)
    benches: list[_Bench] = [_Batched(pool, config), _OneTx(pool, config)]
    results = {b.key: SystemResult(b.key, b.label) for b in benches}
    total = 0
    try:
        for bench in benches:
            await bench.start()
        progress(f"  seeded {config.wallets} wallets with {SEED_AMOUNT:,} {CURRENCY} each")
        warm = _pairs(rng, max(config.n // 4, 1), config.wallets)
        total += len(warm)
        for bench in benches:
            result = await bench.run(warm)
            progress(
                f"  warm-up   {bench.label:<34} {result.rate:>9,.0f} transfers/s   "
                f"p50 {result.p50_ms:6.2f} ms   p99 {result.p99_ms:6.2f} ms" + _batch_note(result)
            )
        for round_index in range(config.rounds):
            pairs = _pairs(rng, config.n, config.wallets)
            total += len(pairs)
            shift = round_index % len(benches)
            for bench in benches[shift:] + benches[:shift]:
                result = await bench.run(pairs)
                results[bench.key].rounds.append(result)
                progress(
                    f"  round {round_index + 1}/{config.rounds} {bench.label:<34} "
                    f"{result.rate:>9,.0f} transfers/s   "
                    f"p50 {result.p50_ms:6.2f} ms   p99 {result.p99_ms:6.2f} ms"
                    + _batch_note(result)
                )
        ratios = [
            b.rate / o.rate
            for b, o in zip(results["batched"].rounds, results["one_tx"].rounds, strict=True)
        ]
    finally:
        for bench in reversed(benches):
            await bench.stop()
    try:
        ledger = await _ledger(pool, total)
    finally:
        await database.close()
    return PaymentsReport(
        config, results, statistics.median(ratios), ledger, time.perf_counter() - started
    )


def run_payments_bench(config: PaymentsBenchConfig, progress: Progress = print) -> PaymentsReport:
    """Start an embedded PostgreSQL in a temporary folder and measure both systems on it.

    The server stops when this process exits; the folder is removed after that.
    """
    folder = Path(tempfile.mkdtemp(prefix="splitgo-bench-payments-"))
    # registered before the server starts, so it runs after the server's own exit hook
    atexit.register(shutil.rmtree, folder, True)
    return asyncio.run(_run(config, progress, folder))
