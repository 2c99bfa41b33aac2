"""`python -m tests.bench --section wallets`: hot wallets and hot sessions (issue 20).

In one run, on one embedded PostgreSQL (a temporary folder):

* reads in process: `GetWallet` and the first statement page (`GetStatement`, 50 lines)
  of `users` users (each with a top-up, a share of `transfers` transfers among them, every
  4th with an open hold) asked of the Payments actor (2 shards, memory transport, as the
  node runs it) from `clients` clients, each read a random user: from the owner shard's
  checked copy (actors/payments/wallets.py: the wallet rows' marks read again, one index
  scan, then memory) against the same actor with hot wallets off (every read from the
  tables), interleaved, best of three rounds of `reads`; how many reads the copies
  answered.
* memory: bytes a kept wallet takes (its view of one or two balances; and with a first
  statement page of 51 lines), measured with tracemalloc in this process, against what the
  node's budget counts for it (`copy_size` plus the entry overhead); bytes per kept auth
  session likewise (tests/bench/profiles_memory.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from actors.payments import messages as payment_messages
from actors.payments import store
from actors.payments.actor import Payments
from actors.payments.messages import (
    Balance,
    GetStatement,
    GetWallet,
    PlaceHold,
    Transfer,
    WalletView,
    payments_key,
)
from actors.payments.views import statement_entry
from actors.payments.wallets import HOLDER, WalletCopy, copy_size
from actors.runtime import ActorRef, ActorSystem, MemoryDeadLetterStore, Message, Outbox
from actors.runtime.resident import ENTRY_OVERHEAD, Resident
from splitgo.db import apply_schema, embedded_pgdata, release_embedded, start_embedded
from tests.bench.profiles_memory import measure_session_memory
from transport import Codec, MemoryTransport

Progress = Callable[[str], None]


@dataclass(frozen=True)
class WalletsBenchConfig:
    """How many users, how much history, how many reads."""

    users: int = 1_000
    transfers: int = 20_000
    clients: int = 8
    reads: int = 2_000  # asks per timed round


async def _reads_per_s(
    ref: ActorRef, make: Callable[[str], Message], users: list[str], n: int, clients: int
) -> float:
    """Asks per second from `clients` clients, `n` in all, each of a random user."""
    left = n
    rng = random.Random(n)

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await ref.ask(make(rng.choice(users)))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return n / (time.perf_counter() - started)


def _holders(instances: list[Payments]) -> list[Resident[Any, Any]]:
    return [
        holder
        for instance in instances
        if (holder := instance.__dict__.get("_residents", {}).get(HOLDER)) is not None
    ]


async def _seed(ref: ActorRef, instance: Payments, config: WalletsBenchConfig) -> list[str]:
    users = [f"wallet-{n:05d}" for n in range(config.users)]
    for user in users:
        await instance.credit_top_up(
            top_up_id=f"seed-{user}", user_id=user, amount=1_000_000, currency="EUR"
        )
    rng = random.Random(7)

    async def pay(offset: int) -> None:
        for n in range(offset, config.transfers, 64):
            payer, payee = rng.sample(users, 2)
            await ref.ask(
                Transfer(
                    idempotency_key=f"seed-{n}",
                    from_user_id=payer,
                    to_user_id=payee,
                    amount=rng.randint(1, 500),
                    currency="EUR",
                )
            )

    await asyncio.gather(*(pay(offset) for offset in range(64)))
    for user in users[::4]:
        await ref.ask(
            PlaceHold(idempotency_key=f"hold-{user}", user_id=user, amount=700, currency="EUR")
        )
    return users


async def measure_reads(config: WalletsBenchConfig, say: Progress) -> dict[str, Any]:
    """GetWallet and the first statement page through the Payments actor, from the owner's
    checked copies and from the tables, interleaved, best of three rounds each."""
    with tempfile.TemporaryDirectory(prefix="splitgo-walletsbench-") as folder:
        admin = await asyncio.to_thread(start_embedded, Path(folder))
        pool = await asyncpg.create_pool(admin, min_size=2, max_size=12)
        assert pool is not None
        codec = Codec()
        codec.register_module(payment_messages)
        transport = MemoryTransport(node_id="bench-wallets", codec=codec)
        system = ActorSystem(
            transport, codec=codec, dead_letters=MemoryDeadLetterStore(), outbox=Outbox(pool)
        )
        instances: dict[str, list[Payments]] = {"memory": [], "tables": []}

        def factory(name: str, hot: bool) -> Callable[[], Payments]:
            def make() -> Payments:
                instance = Payments(pool, hot_wallets=hot, maintenance_interval=0)
                instances[name].append(instance)
                return instance

            return make

        try:
            await apply_schema(pool)
            await system.start()
            refs = {
                name: system.spawn(
                    Payments,
                    name,
                    factory=factory(name, hot),
                    shards=2,
                    key=payments_key,
                    mailbox_size=4096,
                )
                for name, hot in (("memory", True), ("tables", False))
            }
            while len(instances["memory"]) < 2 or len(instances["tables"]) < 2:
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            users = await _seed(refs["memory"], instances["memory"][0], config)
            entries = await pool.fetchval("SELECT count(*) FROM payment_entries")
            say(
                f"  seeded {len(users):,} wallets, {entries:,} entries "
                f"in {time.perf_counter() - started:.1f} s"
            )
            # the copies are loaded by a first pass (what a warm node has)
            for user in users:
                await refs["memory"].ask(GetWallet(user_id=user))
                await refs["memory"].ask(GetStatement(user_id=user))
            reads: dict[str, Callable[[str], Message]] = {
                "wallet": lambda user: GetWallet(user_id=user),
                "statement": lambda user: GetStatement(user_id=user),
            }
            best: dict[str, float] = {}
            hits_before = sum(h.hits for h in _holders(instances["memory"]))
            misses_before = sum(h.misses for h in _holders(instances["memory"]))
            for _round in range(3):
                for read, make in reads.items():
                    for name in ("memory", "tables"):
                        rate = await _reads_per_s(
                            refs[name], make, users, config.reads, config.clients
                        )
                        key = f"{read}_{name}"
                        best[key] = max(best.get(key, 0.0), rate)
            held = _holders(instances["memory"])
            hits = sum(h.hits for h in held) - hits_before
            misses = sum(h.misses for h in held) - misses_before
            # the copies answered what the tables answer (no write ran meanwhile)
            for user in users[:50]:
                for make in reads.values():
                    assert await refs["memory"].ask(make(user)) == await refs["tables"].ask(
                        make(user)
                    )
            return {
                "users": len(users),
                "entries": entries,
                "clients": config.clients,
                "reads_per_round": config.reads,
                **{f"{key}_per_s": round(value, 1) for key, value in best.items()},
                "wallet_speedup": round(best["wallet_memory"] / best["wallet_tables"], 2),
                "statement_speedup": round(best["statement_memory"] / best["statement_tables"], 2),
                "copy_hits": hits,
                "copy_misses": misses,
                "kept_wallets": sum(len(h) for h in held),
                "kept_bytes": sum(h.bytes for h in held),
            }
        finally:
            await system.stop(5.0)
            await transport.close()
            await pool.close()
            await asyncio.to_thread(release_embedded, embedded_pgdata(Path(folder)))


def _statement_rows(user: str, n: int, start: datetime) -> tuple[store.StatementRow, ...]:
    rows = []
    for i in range(n):
        incoming = i % 2 == 0
        other = str(uuid.uuid4())
        rows.append(
            store.StatementRow(
                entry_id=1_000_000 + i,
                transfer_id=str(uuid.uuid4()),
                side="credit" if incoming else "debit",
                amount=100 + i,
                balance_after=50_000 + i,
                currency="EUR",
                kind="p2p",
                from_user_id=other if incoming else user,
                to_user_id=user if incoming else other,
                note="dinner" if i % 3 == 0 else None,
                created_at=start + timedelta(seconds=i),
                reference=None,
                hold_id=None,
            )
        )
    return tuple(rows)


def wallet_memory(wallets: int = 2_000, lines: int = 51) -> dict[str, float]:
    """Bytes per kept wallet, measured (tracemalloc) and as the budget counts it: a view of
    one or two balances alone, and with a first statement page of `lines` lines."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    found: dict[str, float] = {}
    for label, with_lines in (("view", False), ("view_and_page", True)):
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = []
            for n in range(wallets):
                user = str(uuid.uuid4())
                balances = [Balance(currency="EUR", available=10_000 + n, held=0)]
                if n % 5 == 0:
                    balances.append(Balance(currency="USD", available=n, held=700))
                copy = WalletCopy(
                    marks=((n, 700 + n),) + (((n + 1, 800 + n),) if n % 5 == 0 else ()),
                    read_at=float(n),
                    view=WalletView(balances=balances),
                )
                if with_lines:
                    rows = _statement_rows(user, lines, start)
                    copy.lines = tuple(statement_entry(row, user) for row in rows)
                    copy.line_ids = tuple(row.entry_id for row in rows)
                    copy.asked = lines
                    del rows
                kept.append(copy)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        found[f"{label}_measured"] = (after - before) / wallets
        found[f"{label}_budgeted"] = ENTRY_OVERHEAD + sum(copy_size(c) for c in kept) / wallets
        del kept
    return found


def run_wallets_bench(config: WalletsBenchConfig, say: Progress) -> dict[str, Any]:
    results: dict[str, Any] = {"loadavg_before": os.getloadavg()}
    results["reads"] = asyncio.run(measure_reads(config, say))
    results["loadavg_after"] = os.getloadavg()
    results["wallet_memory"] = wallet_memory()
    results["session_memory"] = measure_session_memory().as_json()
    return results


def format_wallets(results: dict[str, Any]) -> str:
    reads = results["reads"]
    memory = results["wallet_memory"]
    sessions = results["session_memory"]
    load = " / ".join(f"{value:.2f}" for value in results["loadavg_before"])
    lines = [
        f"load average before: {load}",
        f"{reads['users']:,} wallets, {reads['entries']:,} ledger entries, "
        f"{reads['clients']} clients, {reads['reads_per_round']:,} reads a round (best of 3)",
        "| read (in process, Payments actor, 2 shards) | from the checked copy | from the "
        "tables | ratio |",
        "|---|---:|---:|---:|",
        f"| GetWallet | {reads['wallet_memory_per_s']:,.0f}/s | "
        f"{reads['wallet_tables_per_s']:,.0f}/s | {reads['wallet_speedup']:.2f}x |",
        f"| GetStatement, first page of 50 | {reads['statement_memory_per_s']:,.0f}/s | "
        f"{reads['statement_tables_per_s']:,.0f}/s | {reads['statement_speedup']:.2f}x |",
        f"answered from copies: {reads['copy_hits']:,} reads, loaded: {reads['copy_misses']:,}"
        f" ({reads['kept_wallets']:,} wallets kept, {reads['kept_bytes']:,} bytes as budgeted)",
        f"bytes per kept wallet (view): {memory['view_measured']:,.0f} measured, "
        f"{memory['view_budgeted']:,.0f} budgeted",
        f"bytes per kept wallet with its first page (51 lines): "
        f"{memory['view_and_page_measured']:,.0f} measured, "
        f"{memory['view_and_page_budgeted']:,.0f} budgeted",
        f"bytes per kept auth session: {sessions['measured_bytes_per_session']:,.0f} measured, "
        f"{sessions['budgeted_bytes_per_session']:,.0f} budgeted "
        f"({sessions['sessions_per_user']} sessions a user)",
    ]
    return "\n".join(lines)


def wallets_section(
    results_dir: Path,
    base: dict[str, Any],
    say: Progress,
    write: Callable[[str, dict[str, Any], Path], Path],
    config: WalletsBenchConfig | None = None,
) -> bool:
    """The section as `python -m tests.bench` runs it (no target: figures side by side)."""
    say("\n== wallets: hot wallets and sessions, from the owner's memory and from the tables")
    results = run_wallets_bench(config or WalletsBenchConfig(), say)
    say(format_wallets(results))
    path = write("wallets.json", {**base, **results}, results_dir)
    say(f"\nwritten: {path}")
    return True
