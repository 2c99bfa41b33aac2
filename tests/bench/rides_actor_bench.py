"""Location updates absorbed per second by the rides actor, as a node runs it.

An ActorSystem on the memory transport (no codec check) with the `Rides` actor on its
one shard, its drivers loaded from an embedded PostgreSQL (`drivers` rows inserted in
bulk before it starts, all online). The bench tells `UpdateLocation` messages for random
drivers making small moves as fast as the mailbox takes them (a full mailbox makes the
sender wait), then asks the same shard one question: the answer comes after every update
before it was handled, so updates / elapsed is what the actor absorbed. No database write
happens per update (positions are written every few seconds, as in the node).

Not measured here: POST /api/v1/drivers/me/location over HTTP (each ping is then an HTTP
request, which costs far more than the actor's part).
"""

from __future__ import annotations

import asyncio
import atexit
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from actors.rides.actor import Rides
from actors.rides.messages import GetOffers, UpdateLocation, rides_key
from actors.runtime import ActorSystem, MemoryDeadLetterStore, Outbox
from splitgo.db import open_database
from tests.bench.rides_bench import UpdateRow
from transport import Codec, MemoryTransport

Progress = Callable[[str], None]
CENTRE = (52.52, 13.40)


async def _measure(
    folder: Path, drivers: int, updates: int, rounds: int, progress: Progress
) -> UpdateRow:
    database = await open_database(None, folder, pool_size=4)
    pool = database.pool
    now = datetime.now(UTC)
    rng = random.Random(11)
    keys = [f"driver-{i}" for i in range(drivers)]
    await pool.execute("TRUNCATE rides_drivers CASCADE")
    await pool.copy_records_to_table(
        "rides_drivers",
        columns=["user_id", "vehicle", "plate", "status", "lat", "lon", "seen_at", "created_at"],
        records=[
            (
                k,
                "Car",
                "B-1",
                "online",
                CENTRE[0] + rng.uniform(-0.2, 0.2),
                CENTRE[1] + rng.uniform(-0.3, 0.3),
                now,
                now,
            )
            for k in keys
        ],
    )
    system = ActorSystem(
        MemoryTransport(node_id="bench-rides"),
        codec=Codec(),
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool),
    )
    await system.start()
    rides = system.spawn(
        Rides, "rides", factory=lambda: Rides(pool), key=rides_key, mailbox_size=8192
    )
    await rides.ask(GetOffers(user_id=keys[0]))  # loaded and running
    row = UpdateRow("rides_actor_update", "UpdateLocation through the rides actor", updates)
    try:
        for round_index in range(rounds + 1):
            moves = [
                UpdateLocation(
                    user_id=rng.choice(keys),
                    lat=CENTRE[0] + rng.uniform(-0.2, 0.2),
                    lon=CENTRE[1] + rng.uniform(-0.3, 0.3),
                )
                for _ in range(updates)
            ]
            started = time.perf_counter()
            for move in moves:
                await rides.tell(move)
            await rides.ask(GetOffers(user_id=keys[0]), timeout=60)
            rate = updates / (time.perf_counter() - started)
            label = "warm-up" if round_index == 0 else f"round {round_index}/{rounds}"
            progress(f"  {label:<11} rides actor {rate:,.0f} updates/s ({updates:,} tells)")
            if round_index:
                row.rates.append(rate)
    finally:
        await system.stop(timeout=5)
        await pool.close()
    row.note = f"{drivers:,} drivers loaded from PostgreSQL; one shard, memory transport"
    return row


def measure_actor_updates(
    drivers: int, updates: int, rounds: int, progress: Progress = print
) -> UpdateRow:
    """Run the measurement on a fresh embedded PostgreSQL (removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="splitgo-bench-rides-"))
    atexit.register(shutil.rmtree, folder, True)
    return asyncio.run(_measure(folder, drivers, updates, rounds, progress))
