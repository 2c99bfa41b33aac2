"""Benchmark: a Splitwise export of 10,000 rows imported through the Splits actor.

A generated group export (6 people, one currency, about 1 payment in 20 rows, a Total
balance row at the end) goes through the import as the HTTP edge's job does it: the dry
run (`ImportSplitwise` without a mapping), then the confirm, chunk after chunk (one ask
and one transaction each), progress printed after every chunk. Timed: the dry run, the
import (first chunk to last), and the whole; the target is the whole under 30 s. Checked:
every expense and settlement stored, the kept balances equal to the file's nets, and a
second run that adds nothing (also timed). One embedded PostgreSQL in a temporary folder,
one run; written to tests/bench/results/import.json by `python -m tests.bench`.
"""

from __future__ import annotations

import asyncio
import atexit
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec

from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore, Outbox
from actors.splits.actor import Splits
from actors.splits.messages import (
    CreateGroup,
    GetBalances,
    ImportDryRun,
    ImportProgress,
    ImportSplitwise,
    splits_key,
)
from splitgo.db import open_database
from transport import Codec, MemoryTransport

Progress = Callable[[str], None]

TARGET_SECONDS = 30.0
PEOPLE = ("Ana Lima", "Bo Chen", "Cleo Park", "Dev Rao", "Eli Moss", "Fay Wu")


@dataclass
class ImportBenchConfig:
    """How many rows the generated export has, rows per chunk, and the RNG seed."""

    rows: int = 10_000
    chunk: int = 1_000
    shards: int = 8
    seed: int = 17


@dataclass
class ImportReport:
    """What one run measured and checked."""

    config: ImportBenchConfig
    file_bytes: int
    expenses: int
    settlements: int
    dry_run_s: float
    import_s: float
    total_s: float
    second_run_s: float
    chunks: list[tuple[int, int, float]] = field(default_factory=list)  # done, total, at
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.total_s < TARGET_SECONDS and all(
            value is True for value in self.checks.values() if isinstance(value, bool)
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "config": msgspec.to_builtins(self.config),
            "file_bytes": self.file_bytes,
            "expenses": self.expenses,
            "settlements": self.settlements,
            "dry_run_s": round(self.dry_run_s, 3),
            "import_s": round(self.import_s, 3),
            "total_s": round(self.total_s, 3),
            "target_s": TARGET_SECONDS,
            "rows_per_s": round(self.config.rows / self.total_s, 1) if self.total_s else None,
            "second_run_s": round(self.second_run_s, 3),
            "progress": [
                {"done": done, "total": total, "at_s": round(at, 3)}
                for done, total, at in self.chunks
            ],
            "checks": self.checks,
            "passed": self.passed,
        }


def splitwise_export(rows: int, seed: int) -> tuple[bytes, dict[str, int]]:
    """A Splitwise group export of `rows` rows in EUR among PEOPLE, and each person's net
    in cents (as its Total balance row says)."""
    rng = random.Random(seed)
    nets = dict.fromkeys(PEOPLE, 0)
    lines = ["Date,Description,Category,Cost,Currency," + ",".join(PEOPLE)]
    day = date(2022, 1, 1)
    for index in range(rows):
        day += timedelta(days=1 if index % 7 == 0 else 0)
        cells = dict.fromkeys(PEOPLE, 0)
        if index % 20 == 19:  # a payment: one person pays another back
            payer, payee = rng.sample(PEOPLE, 2)
            cost = rng.randint(100, 20_000)
            cells[payer], cells[payee] = cost, -cost
            description, category = f"{payer} paid {payee}", "Payment"
        else:
            sharing = rng.sample(PEOPLE, rng.randint(2, len(PEOPLE)))
            payer = rng.choice(sharing)
            cost = rng.randint(100, 50_000)
            base, extra = divmod(cost, len(sharing))
            for position, person in enumerate(sharing):
                cells[person] -= base + (1 if position < extra else 0)
            cells[payer] += cost
            description = rng.choice(("Dinner", "Groceries", "Taxi", "Tickets", "Hotel, 2 nights"))
            category = rng.choice(("Dining out", "Groceries", "Taxi", "Plane", "Hotel"))
        for person in PEOPLE:
            nets[person] += cells[person]
        amounts = ",".join(_decimal(cells[person]) for person in PEOPLE)
        text = f'"{description}"' if "," in description else description
        lines.append(f"{day.isoformat()},{text},{category},{_decimal(cost)},EUR,{amounts}")
    totals = ",".join(_decimal(nets[person]) for person in PEOPLE)
    lines += ["", f"{day.isoformat()},Total balance, , ,EUR,{totals}"]
    return ("\n".join(lines) + "\n").encode(), nets


def _decimal(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, minor = divmod(abs(cents), 100)
    return f"{sign}{whole}.{minor:02d}"


async def _import(
    ref: ActorRef, first: ImportSplitwise, progress: Progress, started: float
) -> tuple[ImportProgress, list[tuple[int, int, float]]]:
    """Every chunk asked in turn, as the edge's job asks them."""
    message, seen = first, []
    while True:
        reply: ImportProgress = await ref.ask(message, timeout=120.0)
        at = time.perf_counter() - started
        seen.append((reply.done, reply.total, at))
        progress(f"  progress: {reply.done:,} of {reply.total:,} rows ({at:.2f} s)")
        if reply.finished:
            return reply, seen
        message = msgspec.structs.replace(
            message,
            start=reply.done,
            expenses_added=reply.expenses_added,
            settlements_added=reply.settlements_added,
            placeholders_added=reply.placeholders_added,
        )


async def _run(config: ImportBenchConfig, progress: Progress, folder: Path) -> ImportReport:
    data, nets = splitwise_export(config.rows, config.seed)
    progress(f"  a Splitwise export of {config.rows:,} rows ({len(data) / 2**20:.1f} MiB)")
    progress(f"  starting the embedded PostgreSQL in {folder}")
    database = await open_database(None, folder, pool_size=10)
    transport = MemoryTransport(node_id="bench-import")
    system = ActorSystem(
        transport,
        codec=Codec(),
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(database.pool),
        ask_timeout=120.0,
    )
    try:
        await system.start()
        ref = system.spawn(
            Splits,
            "splits",
            factory=lambda: Splits(database.pool, recurring_interval=0),
            shards=config.shards,
            key=splits_key,
        )
        user, group_id = str(uuid.uuid4()), str(uuid.uuid4())
        await ref.ask(CreateGroup(group_id=group_id, user_id=user, name="Bench", currency="EUR"))

        started = time.perf_counter()
        dry: ImportDryRun = await ref.ask(
            ImportSplitwise(group_id=group_id, user_id=user, data=data), timeout=120.0
        )
        dry_run_s = time.perf_counter() - started
        progress(
            f"  dry run: {dry.report.expenses:,} expenses, {dry.report.settlements:,} "
            f"settlements, {len(dry.mapping)} people ({dry_run_s:.2f} s)"
        )
        first = ImportSplitwise(
            group_id=group_id,
            user_id=user,
            data=data,
            mapping=dry.mapping,
            file_sha256=dry.report.file_sha256,
            chunk=config.chunk,
        )
        began = time.perf_counter()
        result, chunks = await _import(ref, first, progress, started)
        import_s = time.perf_counter() - began
        total_s = time.perf_counter() - started
        progress(f"  imported in {total_s:.2f} s (dry run {dry_run_s:.2f} s + {import_s:.2f} s)")

        second_started = time.perf_counter()
        again, _ = await _import(ref, first, lambda _: None, second_started)
        second_s = time.perf_counter() - second_started

        balances = await ref.ask(GetBalances(group_id=group_id, user_id=user))
        kept = {line.user_id: line.net for line in balances.balances if line.net}
        names = await database.pool.fetch(
            "SELECT id, name FROM splits_placeholders WHERE group_id = $1", group_id
        )
        expected = {row["id"]: nets[row["name"]] for row in names if nets[row["name"]]}
        stored = await database.pool.fetchval(
            "SELECT count(*) FROM splits_expenses WHERE group_id = $1", group_id
        )
        checks = {
            "all_expenses_stored": stored == dry.report.expenses == result.expenses_added,
            "all_settlements_stored": result.settlements_added == dry.report.settlements,
            "balances_equal_file_nets": kept == expected,
            "second_run_adds_nothing": again.expenses_added == 0 and again.settlements_added == 0,
            "progress_chunks": len(chunks),
        }
        progress(
            "  checks: "
            + ", ".join(f"{key} {value}" for key, value in checks.items())
            + f"; second run {second_s:.2f} s"
        )
        return ImportReport(
            config=config,
            file_bytes=len(data),
            expenses=result.expenses_added,
            settlements=result.settlements_added,
            dry_run_s=dry_run_s,
            import_s=import_s,
            total_s=total_s,
            second_run_s=second_s,
            chunks=chunks,
            checks=checks,
        )
    finally:
        await system.stop(5.0)
        await transport.close()
        await database.close()


def run_import_bench(config: ImportBenchConfig, progress: Progress = print) -> ImportReport:
    """Start an embedded PostgreSQL in a temporary folder and time the import on it."""
    folder = Path(tempfile.mkdtemp(prefix="splitgo-bench-import-"))
    atexit.register(shutil.rmtree, folder, True)
    return asyncio.run(_run(config, progress, folder))


if __name__ == "__main__":
    report = run_import_bench(ImportBenchConfig())
    print(f"total {report.total_s:.2f} s (target < {TARGET_SECONDS:.0f} s): {report.passed}")


def import_section(
    results_dir: Path,
    base: dict[str, Any],
    say: Progress,
    write: Callable[[str, dict[str, Any], Path], Path],
) -> bool:
    """`python -m tests.bench --section import`: run, print and write import.json."""
    config = ImportBenchConfig()
    say(
        f"\n== import: a Splitwise export of {config.rows:,} rows through the Splits actor "
        f"(dry run, then chunks of {config.chunk:,} rows, one transaction each), one embedded "
        f"PostgreSQL; target < {TARGET_SECONDS:.0f} s"
    )
    report = run_import_bench(config, progress=say)
    say(
        f"  import of {config.rows:,} rows: {report.total_s:.2f} s "
        f"(target < {TARGET_SECONDS:.0f} s) {'ok' if report.passed else 'MISSED'}"
    )
    path = write("import.json", {**base, **report.as_json()}, results_dir)
    say(f"\nwritten: {path}")
    return report.passed
