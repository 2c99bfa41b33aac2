"""`POST /api/v1/transfers` over HTTP under load: a real node, funded payers, and the
load generator in a process of its own (each request a new Idempotency-Key)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench.http_bench import NodeProcess, _register_and_login, loadgen

PAYERS = 8
FUNDS = 10_000_000  # minor units per payer: far more than a run spends


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


async def measure_http_transfers(seconds: float, concurrency: int) -> dict[str, Any]:
    """req/s and latency of POST /transfers from `concurrency` keep-alive connections."""
    with tempfile.TemporaryDirectory(prefix="splitgo-paybench-http-") as folder:
        scratch = Path(folder)
        node = NodeProcess(scratch)
        await node.start()
        try:
            async with aiohttp.ClientSession() as session:
                tokens = [
                    await _register_and_login(session, node.url, 500 + n) for n in range(PAYERS)
                ]
                payee_token = await _register_and_login(session, node.url, 999)
                async with session.get(
                    f"{node.url}/api/v1/me", headers={"Authorization": f"Bearer {payee_token}"}
                ) as rsp:
                    payee = (await rsp.json())["id"]
                for token in tokens:
                    await _fund(session, node.url, token)
            tokens_file = scratch / "tokens"
            tokens_file.write_text("\n".join(tokens) + "\n")
            bodies_file = scratch / "bodies"
            body = {"to_user_id": payee, "amount": 1, "currency": "EUR"}
            bodies_file.write_text(json.dumps(body) + "\n")
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
        finally:
            node.stop()
    return result
