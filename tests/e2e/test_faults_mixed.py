"""A node killed under a mix of writes, every one with an Idempotency-Key (issue item 7).

Two nodes A and B share the actors' shards on Redis; clients talk to A only, sending
transfers, expenses (equal split), cash and wallet settlements, ride requests and ride
cancellations, each POST with a key of its own. A is SIGKILLed midway. Every request that
got no HTTP answer, a 5xx, a 202 (a wallet settlement still pending) or a 409
`idempotency_in_flight` is sent again to B with the same key and body until it gets a
final answer. Then, straight from PostgreSQL: every 201 exists exactly once under the id it
answered, no key made two rows, nothing exists that no 201 announced, money is conserved
(and each wallet is what the answered requests say it is), no hold is left open, and each
group's kept balances equal a recount from its expenses and completed settlements.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from splitgo.web.rides import ride_id_for
from tests.e2e.test_cluster import cluster_on, eventually
from tests.e2e.test_faults import (
    JWT_KEYS,
    OPS_TOKEN,
    SANDBOX_SECRET,
    User,
    available,
    fund,
    ledger_holds,
    new_user,
)
from tests.support.node import RunningNode, start_node
from tests.support.redis import redis_url

pytestmark = pytest.mark.e2e

SEED = 20240607
FUNDS = 100_000
SPLITS_SHARDS = 8  # splitgo/composition.py
LOAD_SECONDS = 2.5  # load on A before the kill
RETRY_PAUSE = 0.25
RETRY_SECONDS = 60.0  # every unanswered request gets its final answer within this
CENTRE = (45.25, 10.25)  # where riders are picked up and drivers wait


# ── what was sent ─────────────────────────────────────────────────────────────────────


@dataclass
class Sent:
    """One POST of the load: what it was, with its key, and every answer it got."""

    kind: str  # transfer | expense | cash | wallet | ride | cancel
    user: User
    path: str
    body: dict[str, Any]
    key: str
    answers: list[tuple[int, str | None]] = field(default_factory=list)  # (status, code)
    reply: dict[str, Any] | None = None  # the body of the last 2xx

    @property
    def status(self) -> int:
        return self.answers[-1][0]

    @property
    def code(self) -> str | None:
        return self.answers[-1][1]

    @property
    def id(self) -> str | None:
        return None if self.reply is None else self.reply.get("id")

    def final(self) -> bool:
        return is_final(*self.answers[-1])


def is_final(status: int, code: str | None) -> bool:
    """A 2xx or a 4xx that retrying with the key would not change: no answer, a 5xx, a
    202 (a wallet settlement still moving) and 409 idempotency_in_flight are not."""
    if status == 0 or status >= 500 or status == 202:
        return False
    return not (status == 409 and code == "idempotency_in_flight")


async def post(http: aiohttp.ClientSession, url: str, sent: Sent) -> None:
    """Send `sent` (again) to the node at `url` with its key; record the answer."""
    headers = {**sent.user.headers, "Idempotency-Key": sent.key}
    try:
        async with http.post(f"{url}{sent.path}", json=sent.body, headers=headers) as response:
            body: Any = None
            with contextlib.suppress(Exception):
                body = await response.json(content_type=None)
            code = body.get("code") if isinstance(body, dict) and response.status >= 400 else None
            if 200 <= response.status < 300 and isinstance(body, dict):
                sent.reply = body
            sent.answers.append((response.status, code))
    except (aiohttp.ClientError, TimeoutError) as error:
        sent.answers.append((0, type(error).__name__))


@dataclass
class Mix:
    """The load: every request sent, how many are on the wire, and when to stop."""

    sent: list[Sent] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0

    async def send(
        self,
        http: aiohttp.ClientSession,
        url: str,
        kind: str,
        user: User,
        path: str,
        body: dict[str, Any],
        key_in: str | None = None,
    ) -> Sent:
        """POST `body` with a fresh key of its own, also written into `body[key_in]`."""
        key = f"mix-{kind}-{len(self.sent)}"
        sent = Sent(kind, user, path, {**body, key_in: key} if key_in else body, key)
        self.sent.append(sent)
        self.in_flight += 1
        try:
            await post(http, url, sent)
        finally:
            self.in_flight -= 1
        return sent


# ── the cluster and the people ─────────────────────────────────────────────────────────


async def shard_owners(
    http: aiohttp.ClientSession, node: RunningNode, actor: str
) -> dict[int, str]:
    """Which node holds each shard of `actor`, as the cluster view shows it."""
    async with http.get(
        f"{node.url}/ops/actors", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    ) as response:
        body = await response.json()
    return {
        shard["shard"]: shard["node"]
        for shard in body.get("cluster", {}).get(actor, [])
        if shard.get("node")
    }


async def ok(
    http: aiohttp.ClientSession, url: str, user: User, path: str, body: Any, key: str
) -> dict[str, Any]:
    """A set-up POST that must succeed (a 503 of a busy machine is tried again)."""
    for _ in range(10):
        headers = {**user.headers, "Idempotency-Key": key}
        async with http.post(f"{url}{path}", json=body, headers=headers) as response:
            if response.status < 300:
                return dict(await response.json(content_type=None) or {})
            assert response.status == 503, f"{path}: {response.status} {await response.text()}"
        await asyncio.sleep(0.5)
    raise AssertionError(f"{path} kept answering 503")


def point(north_m: float = 0.0, east_m: float = 0.0) -> dict[str, float]:
    return {"lat": CENTRE[0] + north_m / 111_000, "lon": CENTRE[1] + east_m / 78_000}


async def fund_and_wait(http: aiohttp.ClientSession, url: str, user: User) -> None:
    await fund(http, url, user, FUNDS)

    async def credited() -> bool:
        return await available(http, url, user) == FUNDS

    await eventually(credited, 20, "the top-up credited")


# ── the load ───────────────────────────────────────────────────────────────────────────


async def transfers(
    mix: Mix, http: aiohttp.ClientSession, url: str, payer: User, payee: User, rng: random.Random
) -> None:
    """Small transfers from one user to another; the note is the key, to find it."""
    while not mix.stop.is_set():
        body = {"to_user_id": payee.id, "amount": rng.randint(1, 9), "currency": "EUR"}
        await mix.send(http, url, "transfer", payer, "/api/v1/transfers", body, "note")
        await asyncio.sleep(0.01)


async def expenses(
    mix: Mix,
    http: aiohttp.ClientSession,
    url: str,
    group: str,
    members: list[User],
    rng: random.Random,
) -> None:
    """Expenses split equally among the members, paid by each in turn; the description
    is the key, to find it."""
    turn = 0
    while not mix.stop.is_set():
        payer = members[turn % len(members)]
        body = {
            "amount": rng.randint(100, 999),
            "currency": "EUR",
            "paid_by": payer.id,
            "split": {"mode": "equal", "shares": [{"user_id": m.id} for m in members]},
        }
        path = f"/api/v1/groups/{group}/expenses"
        await mix.send(http, url, "expense", payer, path, body, "description")
        turn += 1
        await asyncio.sleep(0.01)


async def settlements(
    mix: Mix, http: aiohttp.ClientSession, url: str, group: str, members: list[User]
) -> None:
    """Cash and wallet settlements in turn between the members; each amount is one of its
    own in the group (1, 2, 3…), so a row names its request."""
    turn = 0
    while not mix.stop.is_set():
        payer, payee = members[turn % len(members)], members[(turn + 1) % len(members)]
        method = "cash" if turn % 2 == 0 else "wallet"
        body = {"to_user_id": payee.id, "amount": turn + 1, "currency": "EUR", "method": method}
        path = f"/api/v1/groups/{group}/settlements"
        await mix.send(http, url, method, payer, path, body)
        turn += 1
        await asyncio.sleep(0.01)


async def rides(mix: Mix, http: aiohttp.ClientSession, url: str, rider: User, lane: int) -> None:
    """A ride requested, then cancelled by its rider, over and over."""
    while not mix.stop.is_set():
        trip = {"pickup": point(east_m=50 * lane), "dropoff": point(1_500, 1_500)}
        requested = await mix.send(http, url, "ride", rider, "/api/v1/rides", trip)
        if requested.status == 201 and requested.id:
            path = f"/api/v1/rides/{requested.id}/cancel"
            reason = {"reason": "mixed load"}
            await mix.send(http, url, "cancel", rider, path, reason)
        await asyncio.sleep(0.01)


# ── what PostgreSQL holds afterwards ──────────────────────────────────────────────────


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


RECOUNT = """
WITH moves AS (
    SELECT e.group_id, l.user_id, e.currency, l.paid - l.owed AS delta
    FROM splits_expenses e JOIN splits_expense_lines l ON l.expense_id = e.id
    WHERE e.deleted_at IS NULL
    UNION ALL
    SELECT group_id, from_user_id, currency, amount FROM splits_settlements
    WHERE status = 'completed'
    UNION ALL
    SELECT group_id, to_user_id, currency, -amount FROM splits_settlements
    WHERE status = 'completed'
)
SELECT group_id, user_id, currency, sum(delta)::bigint AS net FROM moves
GROUP BY group_id, user_id, currency
"""

ACCOUNTS_OFF_THEIR_ENTRIES = """
SELECT a.id, a.owner, a.credits - a.debits AS kept, coalesce(e.total, 0) AS entries
FROM payment_accounts a
LEFT JOIN (
    SELECT account_id, sum(CASE side WHEN 'credit' THEN amount ELSE -amount END) AS total
    FROM payment_entries GROUP BY account_id
) e ON e.account_id = a.id
WHERE a.credits - a.debits <> coalesce(e.total, 0)
"""


def nonzero(rows: list[asyncpg.Record]) -> dict[tuple[str, str, str], int]:
    return {
        (row["group_id"], row["user_id"], row["currency"]): int(row["net"])
        for row in rows
        if row["net"]
    }


async def evidence(database_url: str, sent: Sent) -> dict[str, Any]:
    """What a request with an unexpected final answer left behind (for a ride: its hold)."""
    found: dict[str, Any] = {"kind": sent.kind, "key": sent.key, "answers": sent.answers}
    if sent.kind == "ride":
        ride_id = ride_id_for(sent.user.id, sent.key)
        found["ride"] = [
            dict(row)
            for row in await fetch(
                database_url, "SELECT id, status FROM rides WHERE id = $1", ride_id
            )
        ]
        found["holds"] = [
            dict(row)
            for row in await fetch(
                database_url,
                "SELECT id, amount, status FROM payment_holds WHERE reference = $1",
                f"ride:{ride_id}",
            )
        ]
    return found


# ── the test ───────────────────────────────────────────────────────────────────────────


async def test_a_node_killed_under_mixed_keyed_writes_doubles_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """Transfers, expenses, settlements and rides sent to node A, which is SIGKILLed
    midway; every unanswered request retried on B with its key: each 201 exists once under
    its id, no key made two effects, money is conserved and group balances recount."""
    began = time.monotonic()
    async with cluster_on(tmp_path, redis_url()) as cluster:
        env = {
            **cluster.env(),
            "SPLITGO_PLUGINS": "",
            "SPLITGO_JWT_KEYS": JWT_KEYS,
            "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
            # short: requests caught by the kill fail (and are retried) rather than wait
            "SPLITGO_ASK_TIMEOUT": "2",
            "SPLITGO_RIDES_OFFER_TIMEOUT": "1",
        }
        node_a, node_b = await asyncio.gather(
            *(
                start_node(tmp_path / name, "--transport", "redis", "--node-id", name, env=env)
                for name in ("a", "b")
            )
        )
        cluster.nodes += [node_a, node_b]
        a, b = node_a.url, node_b.url
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:

            async def shared() -> bool:
                payments = set((await shard_owners(http, node_b, "payments")).values())
                splits = set((await shard_owners(http, node_b, "splits")).values())
                return payments == splits == {"a", "b"}

            await eventually(shared, 20, "payments and splits shards on both A and B")
            splits_owner = await shard_owners(http, node_b, "splits")
            rides_owner = (await shard_owners(http, node_b, "rides")).get(0)

            # four funded users; two drivers online at the pickup
            people = list(await asyncio.gather(*(new_user(http, a, f"user{n}") for n in range(4))))
            drivers = list(
                await asyncio.gather(*(new_user(http, a, f"driver{n}") for n in range(2)))
            )
            await asyncio.gather(*(fund_and_wait(http, a, person) for person in people))
            for n, driver in enumerate(drivers):
                vehicle = {"vehicle": "Skoda Octavia", "plate": f"MX {n}"}
                await ok(http, a, driver, "/api/v1/drivers", vehicle, f"driver-{n}")
                await ok(http, a, driver, "/api/v1/drivers/me/location", point(20 * n), f"at-{n}")
                status = {"status": "online"}
                await ok(http, a, driver, "/api/v1/drivers/me/status", status, f"online-{n}")

            # two groups of three, one on a splits shard of A's and one on B's
            groups: dict[str, str] = {}  # node -> group id
            made = 0
            while set(groups) != {"a", "b"}:
                body = {"name": f"Mix {made}", "currency": "EUR"}
                created = await ok(http, a, people[0], "/api/v1/groups", body, f"group-{made}")
                made += 1
                owner = splits_owner[zlib.crc32(created["id"].encode()) % SPLITS_SHARDS]
                groups.setdefault(owner, created["id"])
                assert made < 16, "a group on each node's splits shards"
            members = {groups["a"]: people[0:3], groups["b"]: [people[0], *people[2:4]]}
            for group, team in members.items():
                for member in team[1:]:
                    path = f"/api/v1/groups/{group}/members"
                    await ok(
                        http, a, team[0], path, {"user_id": member.id}, f"m-{group}-{member.id}"
                    )

            # the load, on A only; A killed midway while requests are on the wire
            mix = Mix()
            workers = [
                *(
                    transfers(mix, http, a, people[n], people[(n + 1) % 4], random.Random(SEED + n))
                    for n in range(4)
                ),
                *(
                    expenses(mix, http, a, group, team, random.Random(SEED + 10 + n))
                    for n, (group, team) in enumerate(members.items())
                ),
                *(settlements(mix, http, a, group, team) for group, team in members.items()),
                rides(mix, http, a, people[1], 0),
                rides(mix, http, a, people[3], 1),
            ]
            tasks = [asyncio.create_task(worker) for worker in workers]
            try:
                await asyncio.sleep(LOAD_SECONDS)

                async def busy() -> bool:
                    return mix.in_flight >= len(tasks) // 2

                with contextlib.suppress(AssertionError):
                    await eventually(busy, 5, "requests on the wire")
                killed_at, on_the_wire = time.monotonic(), mix.in_flight
                node_a.process.kill()
                await asyncio.to_thread(node_a.process.wait)
            finally:
                mix.stop.set()
                await asyncio.gather(*tasks)

            # every request without a final answer, again on B with its key until it has one
            unanswered = [s for s in mix.sent if not s.final()]
            deadline = asyncio.get_running_loop().time() + RETRY_SECONDS
            gate = asyncio.Semaphore(6)

            async def settle(sent: Sent) -> None:
                async with gate:
                    while True:
                        await post(http, b, sent)
                        if sent.final() or asyncio.get_running_loop().time() > deadline:
                            return
                        await asyncio.sleep(RETRY_PAUSE)

            await asyncio.gather(*(settle(sent) for sent in unanswered))
            retries = sum(len(s.answers) - 1 for s in unanswered)
            endless = [(s.kind, s.key, s.answers[-3:]) for s in unanswered if not s.final()]
            assert endless == [], f"no final answer within {RETRY_SECONDS}s on B: {endless}"

            finals = Counter((s.kind, s.status, s.code) for s in mix.sent)
            allowed = {
                ("transfer", 201, None),
                ("expense", 201, None),
                ("cash", 201, None),
                ("wallet", 201, None),
                ("ride", 201, None),
                ("ride", 409, "ride_in_progress"),
                ("cancel", 200, None),
                ("cancel", 409, "invalid_transition"),
            }
            odd = [s for s in mix.sent if (s.kind, s.status, s.code) not in allowed]
            assert odd == [], "; ".join(
                [repr(await evidence(cluster.database_url, s)) for s in odd]
            )
            every_answer = Counter(status for s in mix.sent for status, _ in s.answers)
            assert every_answer[500] == 0, [
                (s.kind, s.key, s.answers) for s in mix.sent if any(a == 500 for a, _ in s.answers)
            ]

            # a success asked again with its key on B answers the same thing
            async def replayed(sent: Sent) -> tuple[str, str, int, str | None] | None:
                again = Sent(sent.kind, sent.user, sent.path, sent.body, sent.key)
                async with gate:
                    await post(http, b, again)
                if (again.status, again.id) != (sent.status, sent.id):
                    return (sent.kind, sent.key, again.status, again.id)
                return None

            succeeded = [s for s in mix.sent if s.status < 300]
            differing = [d for d in await asyncio.gather(*map(replayed, succeeded)) if d]
            assert differing == [], differing

            # clean-up: every ride still under way is cancelled, so every hold closes
            database_url = cluster.database_url
            active = await fetch(
                database_url,
                "SELECT id, rider_id FROM rides WHERE status IN "
                "('requested', 'driver_assigned', 'driver_arrived', 'in_progress')",
            )
            by_id = {person.id: person for person in people}
            for n, row in enumerate(active):
                path = f"/api/v1/rides/{row['id']}/cancel"
                cancel = Sent("cleanup", by_id[row["rider_id"]], path, {}, f"cleanup-{n}")
                for _ in range(40):
                    await post(http, b, cancel)
                    if cancel.final():
                        break
                    await asyncio.sleep(RETRY_PAUSE)
                assert (cancel.status, cancel.code) in {(200, None), (409, "invalid_transition")}

            async def holds_closed() -> bool:
                rows = await fetch(
                    database_url, "SELECT count(*) AS n FROM payment_holds WHERE status = 'held'"
                )
                return int(rows[0]["n"]) == 0

            await eventually(holds_closed, 30, "every ride's hold voided")

            async def settlements_done() -> bool:
                rows = await fetch(
                    database_url,
                    "SELECT count(*) AS n FROM splits_settlements WHERE status = 'pending'",
                )
                return int(rows[0]["n"]) == 0

            await eventually(settlements_done, 30, "no wallet settlement left pending")

        # ── PostgreSQL's view ──
        ok_201 = {
            kind: [s for s in mix.sent if s.kind == kind and s.status == 201]
            for kind in ("transfer", "expense", "cash", "wallet", "ride")
        }

        # transfers: one row per 201, under its id, found by its note (the key)
        rows = await fetch(
            database_url, "SELECT id, note FROM payment_transfers WHERE kind = 'p2p'"
        )
        by_note = Counter(row["note"] for row in rows)
        ids_by_note = {row["note"]: row["id"] for row in rows}
        assert max(by_note.values(), default=1) == 1, [k for k, n in by_note.items() if n > 1]
        assert set(by_note) == {s.key for s in ok_201["transfer"]}
        assert {s.key: s.id for s in ok_201["transfer"]} == {
            s.key: ids_by_note[s.key] for s in ok_201["transfer"]
        }

        # expenses: one row per 201, under its id, found by its description (the key)
        rows = await fetch(
            database_url, "SELECT id, description FROM splits_expenses WHERE deleted_at IS NULL"
        )
        by_description = Counter(row["description"] for row in rows)
        assert max(by_description.values(), default=1) == 1, by_description.most_common(3)
        assert {row["description"]: row["id"] for row in rows} == {
            s.key: s.id for s in ok_201["expense"]
        }

        # settlements: one completed row per 201, under its id, found by (group, amount)
        rows = await fetch(
            database_url,
            "SELECT id, group_id, amount, method, status, transfer_id FROM splits_settlements",
        )
        by_amount = Counter((row["group_id"], row["amount"]) for row in rows)
        assert max(by_amount.values(), default=1) == 1, by_amount.most_common(3)
        settled = {
            (s.path.split("/")[4], s.body["amount"]): (s.id, s.kind, "completed")
            for s in ok_201["cash"] + ok_201["wallet"]
        }
        assert {
            (row["group_id"], row["amount"]): (row["id"], row["method"], row["status"])
            for row in rows
        } == settled
        # a completed wallet settlement moved its money once, through the transfer it names
        moved = await fetch(
            database_url,
            "SELECT id, reference FROM payment_transfers WHERE kind = 'settlement'",
        )
        by_reference = Counter(row["reference"] for row in moved)
        assert max(by_reference.values(), default=1) == 1, by_reference.most_common(3)
        wallet_rows = {row["id"]: row for row in rows if row["method"] == "wallet"}
        assert {row["reference"]: row["id"] for row in moved} == {
            f"splits:{row['group_id']}:{row['id']}": row["transfer_id"]
            for row in wallet_rows.values()
        }

        # rides: one row per 201, under the id its key names, with one hold
        rows = await fetch(database_url, "SELECT id, rider_id, hold_id FROM rides")
        assert {row["id"]: row["rider_id"] for row in rows} == {
            s.id: s.user.id for s in ok_201["ride"]
        }
        assert all(s.id == ride_id_for(s.user.id, s.key) for s in ok_201["ride"])
        cancelled = {
            s.path.split("/")[4] for s in mix.sent if s.kind == "cancel" and s.status == 200
        }
        assert {
            row["id"]
            for row in await fetch(database_url, "SELECT id FROM rides WHERE status = 'cancelled'")
        } >= cancelled
        holds = await fetch(
            database_url,
            "SELECT id, reference, status FROM payment_holds WHERE reference LIKE 'ride:%'",
        )
        holds_by_ride = Counter(row["reference"] for row in holds)
        assert max(holds_by_ride.values(), default=1) == 1, holds_by_ride.most_common(3)
        hold_of = {row["reference"]: row["id"] for row in holds}
        assert {row["id"]: row["hold_id"] for row in rows} == {
            row["id"]: hold_of.get(f"ride:{row['id']}") for row in rows
        }

        # money: conserved, no wallet below zero, every account its entries' sum, and each
        # wallet exactly what the answered transfers and wallet settlements say
        ledger = await ledger_holds(database_url)
        assert set(ledger["sums"].values()) == {0}, ledger["sums"]
        assert ledger["negative_wallets"] == 0
        assert ledger["transfers_without_two_entries"] == 0
        assert await fetch(database_url, ACCOUNTS_OFF_THEIR_ENTRIES) == []
        expected = Counter({person.id: FUNDS for person in people})
        for sent in ok_201["transfer"] + ok_201["wallet"]:
            expected[sent.user.id] -= sent.body["amount"]
            expected[sent.body["to_user_id"]] += sent.body["amount"]
        wallets = await fetch(
            database_url,
            "SELECT owner, credits - debits AS balance FROM payment_accounts "
            "WHERE owner_kind = 'user' AND currency = 'EUR'",
        )
        balances = {row["owner"]: int(row["balance"]) for row in wallets}
        assert {person.id: balances.pop(person.id, 0) for person in people} == {
            person.id: expected[person.id] for person in people
        }
        assert set(balances.values()) <= {0}, balances  # the drivers never earned anything

        # group balances: as kept == as recounted from expenses and completed settlements
        kept = nonzero(
            await fetch(
                database_url, "SELECT group_id, user_id, currency, net FROM splits_balances"
            )
        )
        assert kept == nonzero(await fetch(database_url, RECOUNT))
        for group in members:
            assert sum(net for (g, _, _), net in kept.items() if g == group) == 0

        first = Counter(s.kind for s in mix.sent)
        print(
            f"mixed sigkill: {len(mix.sent)} requests {dict(first)}, "
            f"{on_the_wire} on the wire at the kill ({killed_at - began:.1f}s in), "
            f"{len(unanswered)} unanswered {dict(Counter(s.kind for s in unanswered))} "
            f"first answers {dict(Counter(s.answers[0] for s in unanswered))}, "
            f"{retries} retries on B, finals {dict(finals)}, "
            f"rides' shard on {rides_owner}, "
            f"{len(active)} rides cancelled after, test {time.monotonic() - began:.1f}s"
        )
