"""Balances and the settle plan of a big group read through the Splits actor, against
recomputing them from every expense on each read (the way Spliit does it), and expenses
added per second through the actor; one embedded PostgreSQL, one run.

Seeding (not measured, and it bypasses the actor for everything but the group itself):
CreateGroup through the actor makes one group (`members` members, default 1,000) with its
creator; the other members are inserted in bulk with SQL into splits_members. Then
`expenses` expenses (default 100,000) are written in bulk with COPY
(`copy_records_to_table`) straight into splits_expenses and splits_expense_lines, each
with one random payer and 2-8 random participants split equally by
`actors.splits.shares.compute_shares`, and splits_balances is filled with the exact sums of
their `expense_deltas` — what the actor would have kept had it added them one by one. The
tables are then VACUUM ANALYZEd (what autovacuum would get to). Before anything is timed,
the kept balances are checked against a recomputation from every expense line, and the
actor's GetBalances and GetSettlePlan replies against the baseline's: a mismatch fails the
section.

Reads, four systems on the same group and the same pool, each from `concurrency` clients
(default 8) and from 1 client (asyncio tasks, each one call at a time):

* actor balances: `ref.ask(GetBalances(...))` — the Splits actor (8 shards keyed by
  `splits_key`, as the node spawns it) reads the kept balances (`splits_balances`, one row
  per member and currency) and the member list; never recomputed.
* actor settle plan: `ref.ask(GetSettlePlan(...))` — the kept balances, the plan kept in
  splits_plans (re-checked with `plan_settles`, computed afresh only when it no longer
  settles them).
* Spliit balances: per read, on the pool directly: the group and membership check, the
  member list, then EVERY live expense line of the group
  (`SELECT ... FROM splits_expenses e JOIN splits_expense_lines l ...`, ~550,000 rows for
  100,000 expenses) summed in Python. Only the four needed columns are fetched (Spliit
  fetches whole expense objects), which favours the baseline.
* Spliit settle plan: the same recomputation, then `settle_plan` on the result.

All of one group's asks go to one shard, which handles them one at a time: with
`concurrency` clients on one group the actor's latency includes that queue (the 1-client
rows show a read's own time). The targets (p99 < 50 ms) are judged at `concurrency`
clients. Through the actor every round does `reads` reads (default 200) at each
concurrency; the baseline does `baseline_reads` (default: one per client) and
`baseline_sequential_reads` (2) from 1 client, since each read moves the whole expense
history: its p99 over so few reads is its maximum. Method as in runtime.py: one warm-up
each, then interleaved rounds (rotating order); rates and percentiles are medians over
rounds, speed-ups (reads/s, p50, p99) the medians of per-round ratios. The group does not
change during the reads, so the actor's plan is the kept one (checked with
`plan_settles` on each read, not recomputed); the first read after a change computes and
saves it afresh — that case is not measured here.

Writes: `add_n` AddExpense asks per round (equal split, 2-8 of the group's members, one
payer) from `add_concurrency` clients into `add_groups` groups of `add_group_members`
members (made through the actor: CreateGroup and AddMember), so the groups spread over the
8 shards; the rate, p50 and p99 per ask. Afterwards those groups' kept balances are
checked against their expense lines.

Conversion (issue 17): every `foreign_every`-th seeded expense (default 10th) is in USD
at a given rate of 0.9 EUR, with its amount in EUR and its lines converted as the actor
converts them (`shares.conversion`, `shares.converted_lines`); splits_balances gets the USD
nets beside the EUR ones, and splits_converted the nets in EUR. Two more systems read the
big group: `actor GetBalances converted` (`GetBalances(converted=True)`, the kept
converted balances) from `concurrency` clients and from 1, in the same interleaved rounds
as the plain read; the target is the converted read's p99 within 2x the plain read's
(the ratio of the medians). The converted balances are checked first against a
recomputation from the converted lines.

Not measured: GET /api/v1/groups/{id}/balances over HTTP against a node (the latency
shown is the in-process ask's), the seeding itself as a workload, a settle plan read just
after a change, AddExpense into the big group, edits and deletions.
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
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore, Outbox
from actors.splits import store
from actors.splits.actor import Splits
from actors.splits.messages import (
    AddExpense,
    AddMember,
    BalancesView,
    CreateGroup,
    ExpenseView,
    GetBalances,
    GetSettlePlan,
    GroupView,
    Payer,
    SettlePlanView,
    ShareLine,
    splits_key,
)
from actors.splits.shares import (
    PlannedTransfer,
    ShareSpec,
    compute_shares,
    conversion,
    converted_lines,
    expense_deltas,
    plan_settles,
    settle_plan,
)
from splitgo.db import open_database
from transport import Codec, MemoryTransport

Progress = Callable[[str], None]
Balance = tuple[str, str, int]  # user_id, currency, net
Plan = list[tuple[str, str, int, str]]  # from, to, amount, currency

P99_TARGET_MS = 50.0  # GET /balances and GET /settle-plan, p99
CONVERTED_RATIO_TARGET = 2.0  # converted balances p99 within 2x the plain read's (issue 17)
CURRENCY = "EUR"
FOREIGN = "USD"  # the seeded foreign expenses' currency, at FOREIGN_RATE EUR per USD
FOREIGN_RATE = "0.9"
SEED_CHUNK = 10_000  # expenses per COPY
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

_RECOMPUTE_QUERY = """
SELECT l.user_id, e.currency, l.paid, l.owed
FROM splits_expenses e JOIN splits_expense_lines l ON l.expense_id = e.id
WHERE e.group_id = $1 AND e.deleted_at IS NULL
"""
# the converted nets: lines with a rate in EUR as converted, the others as they are
_RECOMPUTE_CONVERTED_QUERY = """
SELECT l.user_id, CASE WHEN e.rate IS NULL THEN e.currency ELSE $2 END AS currency,
       sum(CASE WHEN e.rate IS NULL THEN l.paid - l.owed
                ELSE l.group_paid - l.group_owed END)::bigint AS net
FROM splits_expenses e JOIN splits_expense_lines l ON l.expense_id = e.id
WHERE e.group_id = $1 AND e.deleted_at IS NULL
GROUP BY 1, 2
"""

_EXPENSE_COLUMNS = (
    "id",
    "group_id",
    "description",
    "amount",
    "currency",
    "spent_on",
    "category",
    "split_mode",
    "split_input",
    "created_by",
    "created_at",
    "updated_at",
    "version",
    "rate",
    "rate_source",
    "group_amount",
)
_LINE_COLUMNS = (
    "expense_id",
    "user_id",
    "paid",
    "owed",
    "sharing",
    "position",
    "group_paid",
    "group_owed",
)


@dataclass
class SplitsBenchConfig:
    """The big group's size, the reads per round and from how many clients, and the
    AddExpense rounds' size and spread."""

    members: int = 1_000
    expenses: int = 100_000
    reads: int = 200
    baseline_reads: int | None = None  # per round; None: one per client
    baseline_sequential_reads: int = 2  # per round, from one client
    rounds: int = 3
    concurrency: int = 8
    add_n: int = 3_000
    add_concurrency: int = 32
    add_groups: int = 50
    add_group_members: int = 20
    shards: int = 8
    pool_size: int = 20
    seed: int = 11
    foreign_every: int = 10  # every n-th seeded expense is in USD at a rate (0: none)

    def __post_init__(self) -> None:
        if self.baseline_reads is None:
            self.baseline_reads = self.concurrency
        if (
            min(
                self.reads,
                self.baseline_reads,
                self.baseline_sequential_reads,
                self.rounds,
                self.concurrency,
                self.add_n,
                self.add_concurrency,
                self.add_groups,
                self.shards,
                self.pool_size,
            )
            < 1
        ):
            raise ValueError("reads, rounds, concurrency, sizes and shards must be at least 1")
        if self.members < 8 or self.add_group_members < 8:
            raise ValueError("groups need at least 8 members (up to 8 share an expense)")
        if self.members > 1_000 or self.add_group_members > 1_000:
            raise ValueError("a group has at most 1,000 members (MAX_MEMBERS)")
        if self.expenses < 1:
            raise ValueError("expenses must be at least 1")

    @property
    def reads_per_round(self) -> int:
        assert self.baseline_reads is not None
        return self.baseline_reads


@dataclass
class RoundResult:
    """One system's round: its rate and its clients' latency percentiles."""

    rate: float
    p50_ms: float
    p99_ms: float
    n: int


@dataclass
class SystemResult:
    """The rounds of one system."""

    key: str
    label: str
    clients: int
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

    def as_json(self, unit: str) -> dict[str, Any]:
        return {
            "label": self.label,
            "clients": self.clients,
            unit: round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "rounds": [
                {
                    unit: round(r.rate, 1),
                    "p50_ms": round(r.p50_ms, 2),
                    "p99_ms": round(r.p99_ms, 2),
                    "n": r.n,
                }
                for r in self.rounds
            ],
        }


@dataclass
class Target:
    """One target with its measured value: at most `target` (latency)."""

    name: str
    value: float
    target: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.value < self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 2),
            "target": self.target,
            "unit": self.unit,
            "below": True,
            "passed": self.passed,
        }


@dataclass
class SplitsReport:
    """Everything one run measured, the verdicts and the correctness checks."""

    config: SplitsBenchConfig
    seeding: dict[str, Any]
    reads: dict[str, SystemResult]
    speedups: dict[str, dict[str, float]]
    adds: SystemResult
    checks: dict[str, Any]
    seconds: float

    @property
    def targets(self) -> list[Target]:
        return [
            Target(
                f"balances p99, {self.config.concurrency} clients",
                self.reads["actor_balances"].p99_ms,
                P99_TARGET_MS,
                "ms",
            ),
            Target(
                f"settle-plan p99, {self.config.concurrency} clients",
                self.reads["actor_plan"].p99_ms,
                P99_TARGET_MS,
                "ms",
            ),
            Target(
                f"converted/plain p99, {self.config.concurrency} clients",
                self.reads["actor_converted"].p99_ms / self.reads["actor_balances"].p99_ms,
                CONVERTED_RATIO_TARGET,
                "x",
            ),
        ]

    @property
    def checks_passed(self) -> bool:
        return all(bool(value) for key, value in self.checks.items() if key.endswith("_ok"))

    @property
    def all_passed(self) -> bool:
        return all(t.passed for t in self.targets) and self.checks_passed

    def as_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "config": {
                "members": c.members,
                "expenses": c.expenses,
                "reads": c.reads,
                "baseline_reads": c.baseline_reads,
                "baseline_sequential_reads": c.baseline_sequential_reads,
                "rounds": c.rounds,
                "warm_up_rounds": 1,
                "concurrency": c.concurrency,
                "add_n": c.add_n,
                "add_concurrency": c.add_concurrency,
                "add_groups": c.add_groups,
                "add_group_members": c.add_group_members,
                "shards": c.shards,
                "pool_size": c.pool_size,
                "foreign_every": c.foreign_every,
                "foreign": f"{FOREIGN} at {FOREIGN_RATE} {CURRENCY}",
                "statistic": "median",
                "interleaved": True,
                "database": "embedded PostgreSQL (one server, one database, every system)",
            },
            "seeding": self.seeding,
            "reads": {key: result.as_json("reads_per_s") for key, result in self.reads.items()},
            "speedups": {
                key: {name: round(value, 2) for name, value in ratios.items()}
                for key, ratios in self.speedups.items()
            },
            "add_expense": self.adds.as_json("expenses_per_s"),
            "targets": [t.as_json() for t in self.targets],
            "checks": self.checks,
            "all_passed": self.all_passed,
            "seconds": round(self.seconds, 2),
        }

    def format(self) -> str:
        c = self.config
        lines = read_rows(f"read (group of {c.members:,} members)", self.reads.values())
        lines += [
            f"(medians of {c.rounds} rounds; per round {c.reads:,} reads through the actor at "
            f"each concurrency, {c.baseline_reads} recomputing reads from {c.concurrency} "
            f"clients and {c.baseline_sequential_reads} from 1 client, each over all "
            f"{c.expenses:,} expenses; latency per client call, in process)",
            "",
            f"{'speed-up vs recomputing':<34} {'clients':>7} {'reads/s':>9} {'p50':>9} {'p99':>9}",
            "-" * 91,
        ]
        for key, ratios in self.speedups.items():
            label = "GetBalances" if key.startswith("balances") else "GetSettlePlan"
            clients = 1 if key.endswith("_1") else c.concurrency
            lines.append(
                f"{label:<34} {clients:>7} {ratios['rate']:>8,.0f}x {ratios['p50']:>8,.0f}x "
                f"{ratios['p99']:>8,.0f}x"
            )
        adds = self.adds
        rounds = " ".join(f"{r.rate:,.0f}" for r in adds.rounds)
        lines += [
            "",
            f"{'write':<34} {'clients':>7} {'adds/s':>9} {'p50 ms':>9} {'p99 ms':>9}  rounds (/s)",
            "-" * 91,
            f"{adds.label:<34} {adds.clients:>7} {adds.rate:>9,.0f} {adds.p50_ms:>9.2f} "
            f"{adds.p99_ms:>9.2f}  {rounds}",
            f"(medians of {c.rounds} rounds of {c.add_n:,} AddExpense asks from "
            f"{c.add_concurrency} concurrent clients into {c.add_groups} groups of "
            f"{c.add_group_members} members on {c.shards} shards)",
            "",
            f"{'target':<30} {'measured':>10} {'target':>10}  result",
            "-" * 91,
        ]
        for t in self.targets:
            verdict = "PASS" if t.passed else f"MISS ({t.value / t.target - 1:+.0%})"
            unit = t.unit if t.unit == "x" else f" {t.unit}"
            lines.append(
                f"{t.name:<30} {t.value:>7.2f}{unit:<3} {'< ' + format(t.target, 'g') + unit:>10}"
                f"  {verdict}"
            )
        checks = self.checks
        seeding = self.seeding
        lines += [
            "",
            f"seeding (bypasses the actor: bulk SQL/COPY): {seeding['expenses']:,} expenses, "
            f"{seeding['lines']:,} lines, {seeding['members']:,} members in "
            f"{seeding['seconds']:.1f} s ({seeding['expenses_per_s']:,.0f} expenses/s)",
            f"checks: kept balances = recomputed after seeding "
            f"{_ok(checks['seeded_balances_ok'])}; actor GetBalances = recomputed "
            f"{_ok(checks['actor_balances_ok'])}; actor plan = recomputed plan, settles "
            f"{_ok(checks['actor_plan_ok'])}; {checks['added_expenses']:,}/"
            f"{checks['expected_added_expenses']:,} added expenses stored, their groups' "
            f"kept balances = recomputed {_ok(checks['added_balances_ok'])}; converted "
            f"(every {c.foreign_every}th expense in {FOREIGN}): kept = recomputed from the "
            f"converted lines {_ok(checks['converted_balances_ok'])}; converted/plain "
            f"balances per round (median): p50 {checks['converted_p50_ratio']:.2f}x, p99 "
            f"{checks['converted_p99_ratio']:.2f}x at {c.concurrency} clients, p50 "
            f"{checks['converted_p50_ratio_1']:.2f}x, p99 "
            f"{checks['converted_p99_ratio_1']:.2f}x at 1 client",
        ]
        return "\n".join(lines)


def _ok(value: object) -> str:
    return "OK" if value else "BROKEN"


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _drive(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> RoundResult:
    """`concurrency` clients take the next index in turn, one call at a time each."""
    latencies: list[float] = []
    next_index = 0

    async def client() -> None:
        nonlocal next_index
        clock = time.perf_counter
        while next_index < n:
            index = next_index
            next_index += 1
            started = clock()
            await one(index)
            latencies.append(clock() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(min(concurrency, n))))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return RoundResult(
        rate=n / elapsed,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        n=n,
    )


# ── the actor in its system ────────────────────────────────────────────────────────────


class _Node:
    """An ActorSystem with the Splits actor spawned as the node spawns it."""

    def __init__(self, pool: asyncpg.Pool, shards: int) -> None:
        self.pool = pool
        self.shards = shards

    async def start(self) -> None:
        self.transport = MemoryTransport(node_id="bench-splits")
        self.system = ActorSystem(
            self.transport,
            codec=Codec(),
            dead_letters=MemoryDeadLetterStore(),
            outbox=Outbox(self.pool),
            ask_timeout=60.0,
        )
        await self.system.start()
        self.ref: ActorRef = self.system.spawn(
            Splits,
            "splits",
            factory=lambda: Splits(self.pool, recurring_interval=0),
            shards=self.shards,
            key=splits_key,
        )

    async def stop(self) -> None:
        await self.system.stop(5.0)
        await self.transport.close()


# ── seeding the big group ──────────────────────────────────────────────────────────────


@dataclass
class _BigGroup:
    group_id: str
    members: list[str]


def _as_balances(nets: dict[tuple[str, str], int], members: list[str]) -> list[Balance]:
    """What GetBalances shows: every touched (user, currency), and every member in the
    group's currency (0 when nothing touched them), sorted by currency then user."""
    lines = [(user, currency, net) for (user, currency), net in nets.items()]
    lines += [(user, CURRENCY, 0) for user in members if (user, CURRENCY) not in nets]
    lines.sort(key=lambda line: (line[1], line[0]))
    return lines


def _as_plan(nets: dict[tuple[str, str], int]) -> Plan:
    by_currency: dict[str, dict[str, int]] = defaultdict(dict)
    for (user, currency), net in nets.items():
        if net:
            by_currency[currency][user] = net
    plan: Plan = []
    for currency in sorted(by_currency):
        plan += [
            (t.from_user_id, t.to_user_id, t.amount, currency)
            for t in settle_plan(by_currency[currency])
        ]
    return plan


async def _seed_big_group(
    node: _Node, pool: asyncpg.Pool, config: SplitsBenchConfig, progress: Progress
) -> tuple[_BigGroup, dict[str, Any]]:
    """CreateGroup through the actor; members, expenses, lines and balances in bulk."""
    started = time.perf_counter()
    rng = random.Random(config.seed)
    group_id = f"bench-big-{uuid.uuid4().hex[:8]}"
    members = [f"bench-member-{i:04d}" for i in range(config.members)]
    view = await node.ref.ask(
        CreateGroup(
            group_id=group_id, user_id=members[0], name="Bench big group", currency=CURRENCY
        )
    )
    if type(view) is not GroupView:
        raise RuntimeError(f"CreateGroup answered {view!r}")
    joined = datetime.now(UTC)
    async with pool.acquire() as connection:
        await connection.copy_records_to_table(
            "splits_members",
            records=[
                (group_id, user, joined + timedelta(microseconds=i + 1))
                for i, user in enumerate(members[1:])
            ],
            columns=("group_id", "user_id", "joined_at"),
        )
    progress(
        f"  seeding (bypasses the actor): group {group_id} made by CreateGroup, "
        f"{config.members - 1:,} more members by COPY into splits_members"
    )

    nets: dict[tuple[str, str], int] = defaultdict(int)
    converted_nets: dict[str, int] = defaultdict(int)
    total_lines = 0
    made = 0
    everyone = range(config.members)
    async with pool.acquire() as connection:
        while made < config.expenses:
            chunk = min(SEED_CHUNK, config.expenses - made)
            expenses: list[tuple[Any, ...]] = []
            lines: list[tuple[Any, ...]] = []
            for i in range(made, made + chunk):
                expense_id = f"{group_id}-e{i:07d}"
                payer = members[rng.randrange(config.members)]
                sharing = [members[k] for k in rng.sample(everyone, rng.randint(2, 8))]
                amount = rng.randint(100, 50_000)
                shares = compute_shares(amount, "equal", [ShareSpec(user) for user in sharing])
                payers = [(payer, amount)]
                foreign = config.foreign_every > 0 and i % config.foreign_every == 0
                currency = FOREIGN if foreign else CURRENCY
                for user, delta in expense_deltas(payers, shares).items():
                    nets[(user, currency)] += delta
                # the converted lines, as the actor converts a USD expense at a given rate
                group_amount = (
                    conversion(amount, FOREIGN, CURRENCY, rate=FOREIGN_RATE).group_amount
                    if foreign
                    else amount
                )
                group_shares = converted_lines(shares, group_amount) if foreign else shares
                for user, delta in expense_deltas([(payer, group_amount)], group_shares).items():
                    converted_nets[user] += delta
                at = _EPOCH + timedelta(seconds=i * 60)
                expenses.append(
                    (
                        expense_id,
                        group_id,
                        f"expense {i}",
                        amount,
                        currency,
                        (_EPOCH + timedelta(days=i % 730)).date(),
                        "general",
                        "equal",
                        '[{"user_id": "' + '"}, {"user_id": "'.join(sharing) + '"}]',
                        payer,
                        at,
                        at,
                        1,
                        Decimal(FOREIGN_RATE) if foreign else None,
                        "given" if foreign else None,
                        group_amount if foreign else None,
                    )
                )
                # as store.expenses orders the lines: the sharers, then a payer who is not one
                owed = dict(shares)
                group_owed = dict(group_shares)
                for position, (user, share) in enumerate(shares):
                    lines.append(
                        (
                            expense_id,
                            user,
                            amount if user == payer else 0,
                            share,
                            True,
                            position,
                            (group_amount if user == payer else 0) if foreign else None,
                            group_owed[user] if foreign else None,
                        )
                    )
                if payer not in owed:
                    lines.append(
                        (
                            expense_id,
                            payer,
                            amount,
                            0,
                            False,
                            len(shares),
                            group_amount if foreign else None,
                            0 if foreign else None,
                        )
                    )
            await connection.copy_records_to_table(
                "splits_expenses", records=expenses, columns=_EXPENSE_COLUMNS
            )
            await connection.copy_records_to_table(
                "splits_expense_lines", records=lines, columns=_LINE_COLUMNS
            )
            made += chunk
            total_lines += len(lines)
            progress(
                f"  seeding: {made:>9,}/{config.expenses:,} expenses, {total_lines:,} lines "
                f"({time.perf_counter() - started:.1f} s)"
            )
        await connection.copy_records_to_table(
            "splits_balances",
            records=[(group_id, user, cur, net) for (user, cur), net in sorted(nets.items())],
            columns=("group_id", "user_id", "currency", "net"),
        )
        await connection.copy_records_to_table(
            "splits_converted",
            records=[
                (group_id, user, CURRENCY, net) for user, net in sorted(converted_nets.items())
            ],
            columns=("group_id", "user_id", "currency", "net"),
        )
        for table in (
            "splits_members",
            "splits_expenses",
            "splits_expense_lines",
            "splits_balances",
            "splits_converted",
        ):
            await connection.execute(f"VACUUM ANALYZE {table}")
    seconds = time.perf_counter() - started
    progress(
        f"  seeding: splits_balances filled with the sums of the expenses' deltas "
        f"({len(nets):,} rows); VACUUM ANALYZE done; {seconds:.1f} s in all"
    )
    seeding = {
        "members": config.members,
        "expenses": config.expenses,
        "lines": total_lines,
        "balance_rows": len(nets),
        "converted_rows": len(converted_nets),
        "foreign_expenses": 0
        if config.foreign_every <= 0
        else (config.expenses + config.foreign_every - 1) // config.foreign_every,
        "seconds": round(seconds, 2),
        "expenses_per_s": round(config.expenses / seconds, 1),
        "method": "CreateGroup through the actor; members, expenses, lines and balances by "
        "COPY (copy_records_to_table), bypassing the actor",
    }
    return _BigGroup(group_id, members), seeding


# ── the read systems ───────────────────────────────────────────────────────────────────


async def _recompute(
    pool: asyncpg.Pool, group_id: str, user_id: str
) -> tuple[dict[tuple[str, str], int], list[str]]:
    """Spliit's way: the membership check, the members, then every expense line summed."""
    async with pool.acquire() as connection:
        group = await store.groups.group(connection, group_id)
        if group is None or not await store.groups.is_member(connection, group_id, user_id):
            raise RuntimeError(f"{user_id} is not in {group_id}")
        members = [
            user for user, _ in (await store.groups.members(connection, [group_id]))[group_id]
        ]
        rows = await connection.fetch(_RECOMPUTE_QUERY, group_id)
    nets: dict[tuple[str, str], int] = defaultdict(int)
    for user, currency, paid, owed in rows:
        nets[(user, currency)] += paid - owed
    return nets, members


class _Reads:
    """The four read systems on the big group."""

    def __init__(self, node: _Node, pool: asyncpg.Pool, group: _BigGroup) -> None:
        self.node = node
        self.pool = pool
        self.group = group

    def user(self, index: int) -> str:
        return self.group.members[index % len(self.group.members)]

    async def actor_balances(self, index: int) -> None:
        reply = await self.node.ref.ask(
            GetBalances(group_id=self.group.group_id, user_id=self.user(index))
        )
        if type(reply) is not BalancesView or len(reply.balances) < len(self.group.members):
            raise RuntimeError(f"GetBalances answered {reply!r:.200}")

    async def actor_converted(self, index: int) -> None:
        reply = await self.node.ref.ask(
            GetBalances(group_id=self.group.group_id, user_id=self.user(index), converted=True)
        )
        if type(reply) is not BalancesView or len(reply.balances) < len(self.group.members):
            raise RuntimeError(f"GetBalances(converted) answered {reply!r:.200}")

    async def actor_plan(self, index: int) -> None:
        reply = await self.node.ref.ask(
            GetSettlePlan(group_id=self.group.group_id, user_id=self.user(index))
        )
        if type(reply) is not SettlePlanView:
            raise RuntimeError(f"GetSettlePlan answered {reply!r:.200}")

    async def spliit_balances(self, index: int) -> None:
        nets, members = await _recompute(self.pool, self.group.group_id, self.user(index))
        if len(_as_balances(nets, members)) < len(members):
            raise RuntimeError("the recomputed balances miss members")

    async def spliit_plan(self, index: int) -> None:
        nets, _ = await _recompute(self.pool, self.group.group_id, self.user(index))
        _as_plan(nets)


async def _check_seeded(node: _Node, pool: asyncpg.Pool, group: _BigGroup) -> dict[str, Any]:
    """Kept balances = recomputed ones; the actor's replies = the baseline's."""
    nets, members = await _recompute(pool, group.group_id, group.members[0])
    recomputed = {key: net for key, net in nets.items() if net}
    kept = {
        (user, currency): net
        for user, currency, net in await store.balances.balances(pool, group.group_id)
        if net
    }
    balances = await node.ref.ask(GetBalances(group_id=group.group_id, user_id=group.members[0]))
    actor_lines = [(b.user_id, b.currency, b.net) for b in balances.balances]
    plan = await node.ref.ask(GetSettlePlan(group_id=group.group_id, user_id=group.members[0]))
    actor_plan = [(t.from_user_id, t.to_user_id, t.amount, t.currency) for t in plan.transfers]
    currencies = {currency for _, currency in recomputed}
    settles = all(
        plan_settles(
            [PlannedTransfer(a, b, n) for a, b, n, c in actor_plan if c == currency],
            {user: net for (user, c), net in recomputed.items() if c == currency},
        )
        for currency in currencies
    )
    converted_rows = await pool.fetch(_RECOMPUTE_CONVERTED_QUERY, group.group_id, CURRENCY)
    converted = {(r["user_id"], r["currency"]): r["net"] for r in converted_rows if r["net"]}
    view = await node.ref.ask(
        GetBalances(group_id=group.group_id, user_id=group.members[0], converted=True)
    )
    return {
        "seeded_balances_ok": kept == recomputed,
        "seeded_nonzero_balances": len(recomputed),
        "actor_balances_ok": actor_lines == _as_balances(nets, members),
        "actor_plan_ok": actor_plan == _as_plan(nets) and settles,
        "plan_transfers": len(actor_plan),
        "converted_balances_ok": converted
        == {(b.user_id, b.currency): b.net for b in view.balances if b.net}
        and sum(converted.values()) == 0,
    }


# ── AddExpense through the actor ───────────────────────────────────────────────────────


@dataclass
class _SmallGroup:
    group_id: str
    members: list[str]


async def _make_small_groups(node: _Node, config: SplitsBenchConfig) -> list[_SmallGroup]:
    """CreateGroup and AddMember through the actor, the groups concurrently."""
    run = uuid.uuid4().hex[:6]
    groups = [
        _SmallGroup(
            f"bench-add-{run}-{g:03d}",
            [f"bench-g{g:03d}-m{m:03d}" for m in range(config.add_group_members)],
        )
        for g in range(config.add_groups)
    ]

    async def make(group: _SmallGroup) -> None:
        owner = group.members[0]
        await node.ref.ask(
            CreateGroup(group_id=group.group_id, user_id=owner, name="Bench", currency=CURRENCY)
        )
        for member in group.members[1:]:
            await node.ref.ask(
                AddMember(group_id=group.group_id, user_id=owner, member_user_id=member)
            )

    await asyncio.gather(*(make(group) for group in groups))
    return groups


def _adds(
    rng: random.Random, n: int, groups: list[_SmallGroup]
) -> list[tuple[_SmallGroup, str, list[str], int]]:
    """n (group, payer, sharers, amount): random group, payer and 2-8 sharers."""
    adds: list[tuple[_SmallGroup, str, list[str], int]] = []
    for _ in range(n):
        group = groups[rng.randrange(len(groups))]
        payer = group.members[rng.randrange(len(group.members))]
        sharers = rng.sample(group.members, rng.randint(2, 8))
        adds.append((group, payer, sharers, rng.randint(100, 50_000)))
    return adds


async def _add_round(
    node: _Node, adds: list[tuple[_SmallGroup, str, list[str], int]], concurrency: int
) -> RoundResult:
    ask = node.ref.ask
    prefix = uuid.uuid4().hex[:12]

    async def one(index: int) -> None:
        group, payer, sharers, amount = adds[index]
        reply = await ask(
            AddExpense(
                group_id=group.group_id,
                user_id=payer,
                expense_id=f"{prefix}-{index}",
                description=f"bench expense {index}",
                amount=amount,
                currency=CURRENCY,
                paid_by=[Payer(user_id=payer, amount=amount)],
                split_mode="equal",
                shares=[ShareLine(user_id=user) for user in sharers],
            )
        )
        if type(reply) is not ExpenseView:
            raise RuntimeError(f"AddExpense answered {reply!r:.200}")

    return await _drive(len(adds), concurrency, one)


async def _check_added(
    pool: asyncpg.Pool, groups: list[_SmallGroup], expected: int
) -> dict[str, Any]:
    ids = [group.group_id for group in groups]
    stored = await pool.fetchval(
        "SELECT count(*) FROM splits_expenses WHERE group_id = ANY($1::text[])", ids
    )
    recomputed_rows = await pool.fetch(
        "SELECT e.group_id, l.user_id, e.currency, sum(l.paid - l.owed)::bigint AS net"
        " FROM splits_expenses e JOIN splits_expense_lines l ON l.expense_id = e.id"
        " WHERE e.group_id = ANY($1::text[]) AND e.deleted_at IS NULL"
        " GROUP BY 1, 2, 3",
        ids,
    )
    kept_rows = await pool.fetch(
        "SELECT group_id, user_id, currency, net FROM splits_balances"
        " WHERE group_id = ANY($1::text[]) AND net <> 0",
        ids,
    )
    recomputed = {tuple(row[:3]): row["net"] for row in recomputed_rows if row["net"]}
    kept = {tuple(row[:3]): row["net"] for row in kept_rows}
    return {
        "added_expenses": stored,
        "expected_added_expenses": expected,
        "added_balances_ok": stored == expected and kept == recomputed,
    }


# ── the run ────────────────────────────────────────────────────────────────────────────


def _ratios(fast: SystemResult, slow: SystemResult) -> dict[str, float]:
    pairs = list(zip(fast.rounds, slow.rounds, strict=True))
    return {
        "rate": statistics.median(f.rate / s.rate for f, s in pairs),
        "p50": statistics.median(s.p50_ms / f.p50_ms for f, s in pairs),
        "p99": statistics.median(s.p99_ms / f.p99_ms for f, s in pairs),
    }


def _line(prefix: str, label: str, clients: int, result: RoundResult, unit: str) -> str:
    return (
        f"  {prefix:<9} {label:<33} {clients:>2} cl. {result.rate:>9,.1f} {unit}   "
        f"p50 {result.p50_ms:8.2f} ms   p99 {result.p99_ms:8.2f} ms   (n={result.n:,})"
    )


async def _run(config: SplitsBenchConfig, progress: Progress, folder: Path) -> SplitsReport:
    started = time.perf_counter()
    progress(f"  starting the embedded PostgreSQL in {folder}")
    database = await open_database(None, folder, pool_size=config.pool_size)
    pool = database.pool
    node = _Node(pool, config.shards)
    rng = random.Random(config.seed + 1)
    try:
        await node.start()
        group, seeding = await _seed_big_group(node, pool, config, progress)
        checks = await _check_seeded(node, pool, group)
        progress(
            f"  checks: kept = recomputed {_ok(checks['seeded_balances_ok'])} "
            f"({checks['seeded_nonzero_balances']:,} non-zero balances), actor balances "
            f"{_ok(checks['actor_balances_ok'])}, actor plan {_ok(checks['actor_plan_ok'])} "
            f"({checks['plan_transfers']:,} transfers)"
        )
        reads = _Reads(node, pool, group)
        many, few, n = config.concurrency, config.reads_per_round, config.reads
        one_few = config.baseline_sequential_reads
        systems: list[tuple[str, str, Callable[[int], Awaitable[None]], int, int]] = [
            ("actor_balances", "actor GetBalances (kept)", reads.actor_balances, n, many),
            ("actor_converted", "actor GetBalances converted", reads.actor_converted, n, many),
            ("actor_plan", "actor GetSettlePlan (kept)", reads.actor_plan, n, many),
            ("spliit_balances", "recompute balances (Spliit)", reads.spliit_balances, few, many),
            ("spliit_plan", "recompute + settle_plan (Spliit)", reads.spliit_plan, few, many),
            ("actor_balances_1", "actor GetBalances (kept)", reads.actor_balances, n, 1),
            ("actor_converted_1", "actor GetBalances converted", reads.actor_converted, n, 1),
            ("actor_plan_1", "actor GetSettlePlan (kept)", reads.actor_plan, n, 1),
            ("spliit_balances_1", "recompute balances (Spliit)", reads.spliit_balances, one_few, 1),
            ("spliit_plan_1", "recompute + settle_plan (Spliit)", reads.spliit_plan, one_few, 1),
        ]
        results = {key: SystemResult(key, label, clients) for key, label, _, _, clients in systems}
        for key, label, one, count, clients in systems:
            warm = max(count // 4, 1) if key.startswith("actor") else 1
            result = await _drive(warm, clients, one)
            progress(_line("warm-up", label, clients, result, "reads/s"))
        for round_index in range(config.rounds):
            shift = round_index % len(systems)
            for key, label, one, count, clients in systems[shift:] + systems[:shift]:
                result = await _drive(count, clients, one)
                results[key].rounds.append(result)
                progress(
                    _line(
                        f"round {round_index + 1}/{config.rounds}",
                        label,
                        clients,
                        result,
                        "reads/s",
                    )
                )
        speedups = {
            f"{kind}{suffix}": _ratios(
                results[f"actor_{key}{suffix}"], results[f"spliit_{key}{suffix}"]
            )
            for suffix in ("", "_1")
            for kind, key in (("balances", "balances"), ("settle_plan", "plan"))
        }
        # the converted read against the plain one in the same rounds (> 1: slower)
        for suffix in ("", "_1"):
            pairs = list(
                zip(
                    results[f"actor_converted{suffix}"].rounds,
                    results[f"actor_balances{suffix}"].rounds,
                    strict=True,
                )
            )
            checks[f"converted_p50_ratio{suffix}"] = round(
                statistics.median(c.p50_ms / p.p50_ms for c, p in pairs), 3
            )
            checks[f"converted_p99_ratio{suffix}"] = round(
                statistics.median(c.p99_ms / p.p99_ms for c, p in pairs), 3
            )

        progress(
            f"  AddExpense: making {config.add_groups} groups of {config.add_group_members} "
            "members through the actor (CreateGroup, AddMember)"
        )
        small = await _make_small_groups(node, config)
        adds = SystemResult("add_expense", "actor AddExpense", config.add_concurrency)
        total_added = 0
        warm_adds = _adds(rng, max(config.add_n // 4, 1), small)
        total_added += len(warm_adds)
        result = await _add_round(node, warm_adds, config.add_concurrency)
        progress(_line("warm-up", adds.label, adds.clients, result, "adds/s"))
        for round_index in range(config.rounds):
            batch = _adds(rng, config.add_n, small)
            total_added += len(batch)
            result = await _add_round(node, batch, config.add_concurrency)
            adds.rounds.append(result)
            progress(
                _line(
                    f"round {round_index + 1}/{config.rounds}",
                    adds.label,
                    adds.clients,
                    result,
                    "adds/s",
                )
            )
        checks.update(await _check_added(pool, small, total_added))
    finally:
        await node.stop()
        await database.close()
    return SplitsReport(
        config, seeding, results, speedups, adds, checks, time.perf_counter() - started
    )


def run_splits_bench(config: SplitsBenchConfig, progress: Progress = print) -> SplitsReport:
    """Start an embedded PostgreSQL in a temporary folder, seed it and measure on it.

    The server stops when this process exits; the folder is removed after that.
    """
    folder = Path(tempfile.mkdtemp(prefix="splitgo-bench-splits-"))
    # registered before the server starts, so it runs after the server's own exit hook
    atexit.register(shutil.rmtree, folder, True)
    return asyncio.run(_run(config, progress, folder))


def read_rows(title: str, reads: Iterable[SystemResult]) -> list[str]:
    """The table of reads: rate, p50 and p99 of each, and each round's p99."""
    lines = [
        "",
        f"{title:<34} {'clients':>7} {'reads/s':>9} {'p50 ms':>9} {'p99 ms':>9}  rounds (p99 ms)",
        "-" * 91,
    ]
    for result in reads:
        rounds = " ".join(f"{r.p99_ms:,.1f}" for r in result.rounds)
        lines.append(
            f"{result.label:<34} {result.clients:>7} {result.rate:>9,.1f} "
            f"{result.p50_ms:>9,.2f} {result.p99_ms:>9,.2f}  {rounds}"
        )
    return lines
