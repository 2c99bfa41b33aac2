"""After the load: what PostgreSQL holds against what the client was told.

Each kind of write is found by its key (tests/soak/mix.py) and reconciled by
tests/soak/checks.py; then the money: the ledger sums to zero per currency, every account
equals the sum of its entries, and the group balances sum to zero per group and currency
and equal a recount from the expenses and settlements. A sample of the successes is sent
again with its key and must answer the same id.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import asyncpg

from tests.soak.checks import Reconciled, reconcile
from tests.soak.load import Client, Request
from tests.soak.mix import World, went_through

# each kind of keyed write, and where its key and id are stored
STORED = {
    "transfer": "SELECT note AS key, id FROM payment_transfers WHERE kind = 'p2p'",
    "expense": "SELECT description AS key, id FROM splits_expenses",
    "chat": "SELECT text AS key, id FROM chat_messages",
    "top_up": "SELECT idempotency_key AS key, id FROM payment_top_ups",
    "signup": "SELECT email AS key, id FROM users",
}
REPLAYED = 300  # successes sent again with their key (every retried one, then a sample)

LEDGER_SUMS = """
SELECT currency, sum(credits - debits)::bigint AS total FROM payment_accounts GROUP BY currency
"""
ACCOUNTS_OFF_THEIR_ENTRIES = """
SELECT a.id, a.credits - a.debits AS kept, coalesce(e.total, 0) AS entries
FROM payment_accounts a
LEFT JOIN (
    SELECT account_id, sum(CASE side WHEN 'credit' THEN amount ELSE -amount END) AS total
    FROM payment_entries GROUP BY account_id
) e ON e.account_id = a.id
WHERE a.credits - a.debits <> coalesce(e.total, 0)
"""
GROUP_SUMS = """
SELECT group_id, currency, sum(net)::bigint AS total FROM splits_balances
GROUP BY group_id, currency HAVING sum(net) <> 0
"""
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


def key_of(request: Request) -> str | None:
    """The key the stored row carries: the sign-up's email, else the Idempotency-Key."""
    if request.kind == "signup":
        return str((request.body or {}).get("email"))
    return request.key


def reconcile_all(client: Client, rows: dict[str, list[tuple[str, str]]]) -> list[Reconciled]:
    """Every kind of keyed write, reconciled with its rows."""
    verdicts = []
    for kind in STORED:
        sent = [r for r in client.sent if r.kind == kind]
        confirmed: dict[str, str | None] = {}
        for request in sent:
            key = key_of(request)
            if key is None:
                continue
            if request.succeeded:
                confirmed[key] = request.id
            elif kind == "signup" and request.status == 409 and len(request.answers) > 1:
                confirmed[key] = None  # a retried register found its own first attempt
        unsettled = {key_of(r) or "" for r in sent if not r.final}
        retried = {key_of(r) or "" for r in sent if len(r.answers) > 1}
        verdicts.append(
            reconcile(kind, confirmed, rows[kind], unsettled=unsettled, retried=retried)
        )
    return verdicts


async def stored_rows(connection: asyncpg.Connection) -> dict[str, list[tuple[str, str]]]:
    return {
        kind: [(str(row["key"]), str(row["id"])) for row in await connection.fetch(query)]
        for kind, query in STORED.items()
    }


async def money(connection: asyncpg.Connection) -> dict[str, Any]:
    """The ledger's and the groups' invariants, each with what breaks it (empty: holds)."""
    sums = {row["currency"]: int(row["total"]) for row in await connection.fetch(LEDGER_SUMS)}
    off = [dict(row) for row in await connection.fetch(ACCOUNTS_OFF_THEIR_ENTRIES)]
    groups_off = [dict(row) for row in await connection.fetch(GROUP_SUMS)]
    kept = {
        (row["group_id"], row["user_id"], row["currency"]): int(row["net"])
        for row in await connection.fetch(
            "SELECT group_id, user_id, currency, net FROM splits_balances"
        )
        if row["net"]
    }
    recounted = {
        (row["group_id"], row["user_id"], row["currency"]): int(row["net"])
        for row in await connection.fetch(RECOUNT)
        if row["net"]
    }
    differing = sorted(
        str(key) for key in set(kept) | set(recounted) if kept.get(key) != recounted.get(key)
    )
    return {
        "ledger_sums": sums,
        "ledger_nonzero": {c: t for c, t in sums.items() if t != 0},
        "accounts_off_their_entries": [str(row["id"]) for row in off],
        "groups_not_summing_to_zero": [str(row["group_id"]) for row in groups_off],
        "group_balances_off_recount": differing,
    }


def paid_checkouts(client: Client) -> set[str]:
    """The checkouts the client knows were paid."""
    return {r.path.split("/")[3] for r in client.sent if r.kind == "pay" and went_through(r)}


async def pending_paid_top_ups(connection: asyncpg.Connection, client: Client) -> int:
    """Top-ups whose checkout was paid and whose credit has not landed yet."""
    paid = paid_checkouts(client)
    rows = await connection.fetch(
        "SELECT checkout_id FROM payment_top_ups WHERE status = 'pending'"
    )
    return sum(1 for row in rows if row["checkout_id"] in paid)


async def replay(client: Client, seed: int) -> list[dict[str, Any]]:
    """Send successes again with their key: each must answer the id it answered first."""
    keyed = [r for r in client.sent if r.succeeded and r.key and r.kind in STORED and r.id]
    retried = [r for r in keyed if len(r.answers) > 1]
    others = [r for r in keyed if len(r.answers) == 1]
    rng = random.Random(seed)
    chosen = retried[:REPLAYED] + rng.sample(
        others, min(len(others), max(0, REPLAYED - len(retried)))
    )
    gate = asyncio.Semaphore(4)

    async def again(first: Request) -> dict[str, Any] | None:
        copy = Request(first.kind, first.method, first.path, first.body, first.key, first.person)
        async with gate:
            await client.send(copy, record=False)
        if copy.status == first.status and copy.id == first.id:
            return None
        return {
            "kind": first.kind,
            "key": first.key,
            "first": first.id,
            "again": [copy.status, copy.id],
        }

    found = await asyncio.gather(*(again(r) for r in chosen))
    return [d for d in found if d is not None] + [{"replayed": len(chosen)}]


async def served(client: Client, urls: list[str], world: World) -> dict[str, dict[str, int]]:
    """Group balances and member wallets as each node serves them (node -> item -> amount),
    after the takeovers: a shard's state in memory must be what the database holds."""
    found: dict[str, dict[str, int]] = {}
    for url in urls:
        items: dict[str, int] = {}
        for group, team in world.groups.items():
            async with client.http.get(
                f"{url}/api/v1/groups/{group}/balances", headers=team[0].headers
            ) as response:
                body = await response.json(content_type=None)
            for line in body.get("balances", []):
                if line["net"]:
                    items[f"{group}:{line['user_id']}:{line['currency']}"] = int(line["net"])
        for member in world.members:
            async with client.http.get(f"{url}/api/v1/wallet", headers=member.headers) as response:
                body = await response.json(content_type=None)
            for line in body.get("balances", []):
                # a hold moves its money out of the wallet's account: available is the account
                if int(line["available"]):
                    items[f"wallet:{member.id}:{line['currency']}"] = int(line["available"])
        found[url] = items
    return found


async def stored_reads(connection: asyncpg.Connection, world: World) -> dict[str, int]:
    """The same items from PostgreSQL."""
    items = {
        f"{row['group_id']}:{row['user_id']}:{row['currency']}": int(row["net"])
        for row in await connection.fetch(
            "SELECT group_id, user_id, currency, net FROM splits_balances WHERE net <> 0"
        )
    }
    members = [member.id for member in world.members]
    for row in await connection.fetch(
        "SELECT owner, currency, credits - debits AS balance FROM payment_accounts "
        "WHERE owner_kind = 'user' AND owner = ANY($1::text[]) AND credits <> debits",
        members,
    ):
        items[f"wallet:{row['owner']}:{row['currency']}"] = int(row["balance"])
    return items


def tally(client: Client) -> dict[str, Any]:
    """Requests by kind, final statuses and retries."""
    return {
        "requests": len(client.sent),
        "by_kind": dict(Counter(r.kind for r in client.sent)),
        "finals": {
            f"{k}:{s}": n for (k, s), n in Counter((r.kind, r.status) for r in client.sent).items()
        },
        "retried": sum(1 for r in client.sent if len(r.answers) > 1),
        "attempts": sum(len(r.answers) for r in client.sent),
        "unsettled": sum(1 for r in client.sent if not r.final),
    }
