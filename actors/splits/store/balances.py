"""Each member's kept net balance per currency, and the kept settle plans (splits_balances,
splits_plans); the same converted into the group's currency at the stored rates
(splits_converted, splits_converted_plans), kept in the same transactions.

What has no rate moves both the same way: in the group's currency it counts 1:1, and in a
foreign one it is not convertible and stays apart in its own currency. So `apply_deltas`
moves both tables by default; an expense or settlement with a rate moves the plain ones
(`converted=False`) and the converted ones in the group's currency (`apply_converted`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from actors.runtime import Executor


async def balances(
    db: Executor, group_id: str, *, converted: bool = False
) -> list[tuple[str, str, int]]:
    """(user_id, currency, net) of every member with a balance row, by currency then user;
    `converted`: in the group's currency at the stored rates (what has none apart)."""
    table = "splits_converted" if converted else "splits_balances"
    rows = await db.fetch(
        f"SELECT user_id, currency, net FROM {table} WHERE group_id = $1"
        " ORDER BY currency, user_id",
        group_id,
    )
    return [(row["user_id"], row["currency"], row["net"]) for row in rows]


async def unsettled(db: Executor, group_id: str, user_id: str) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT currency, net FROM splits_balances"
        " WHERE group_id = $1 AND user_id = $2 AND net <> 0",
        group_id,
        user_id,
    )
    return {row["currency"]: row["net"] for row in rows}


async def group_unsettled(db: Executor, group_id: str) -> dict[str, int]:
    """The total owed in each currency where any member's balance is not zero."""
    rows = await db.fetch(
        "SELECT currency, sum(net) FILTER (WHERE net > 0) AS owed FROM splits_balances"
        " WHERE group_id = $1 AND net <> 0 GROUP BY currency",
        group_id,
    )
    return {row["currency"]: int(row["owed"] or 0) for row in rows}


async def apply_deltas(
    db: Executor,
    group_id: str,
    currency: str,
    deltas: Mapping[str, int],
    *,
    converted: bool = True,
) -> None:
    """Add each user's change to their net balance in this currency (one statement); and,
    `converted` (something with no rate), to their converted balance the same way."""
    changed = sorted((user, delta) for user, delta in deltas.items() if delta)
    if not changed:
        return
    if not converted:
        await _apply(db, "splits_balances", group_id, currency, changed)
        return
    await db.execute(
        """
        WITH d AS (
            SELECT * FROM unnest($3::text[], $4::bigint[]) AS d(user_id, delta)
        ), plain AS (
            INSERT INTO splits_balances (group_id, user_id, currency, net)
            SELECT $1, d.user_id, $2, d.delta FROM d
            ON CONFLICT (group_id, user_id, currency)
            DO UPDATE SET net = splits_balances.net + EXCLUDED.net
        )
        INSERT INTO splits_converted (group_id, user_id, currency, net)
        SELECT $1, d.user_id, $2, d.delta FROM d
        ON CONFLICT (group_id, user_id, currency)
        DO UPDATE SET net = splits_converted.net + EXCLUDED.net
        """,
        group_id,
        currency,
        [user for user, _ in changed],
        [delta for _, delta in changed],
    )


async def apply_converted(
    db: Executor, group_id: str, currency: str, deltas: Mapping[str, int]
) -> None:
    """Add each user's change to their converted balance in `currency` (the group's)."""
    changed = sorted((user, delta) for user, delta in deltas.items() if delta)
    if changed:
        await _apply(db, "splits_converted", group_id, currency, changed)


async def _apply(
    db: Executor, table: str, group_id: str, currency: str, changed: Sequence[tuple[str, int]]
) -> None:
    await db.execute(
        f"""
        INSERT INTO {table} (group_id, user_id, currency, net)
        SELECT $1, d.user_id, $2, d.delta FROM unnest($3::text[], $4::bigint[]) AS d(user_id, delta)
        ON CONFLICT (group_id, user_id, currency)
        DO UPDATE SET net = {table}.net + EXCLUDED.net
        """,
        group_id,
        currency,
        [user for user, _ in changed],
        [delta for _, delta in changed],
    )


async def saved_plans(
    db: Executor, group_id: str, *, converted: bool = False
) -> dict[str, list[tuple[str, str, int]]]:
    """The kept settle plans by currency (`converted`: the converted ones)."""
    table = "splits_converted_plans" if converted else "splits_plans"
    rows = await db.fetch(f"SELECT currency, plan FROM {table} WHERE group_id = $1", group_id)
    return {row["currency"]: [tuple(item) for item in json.loads(row["plan"])] for row in rows}


async def save_plan(
    db: Executor,
    group_id: str,
    currency: str,
    plan: Sequence[tuple[str, str, int]],
    *,
    converted: bool = False,
) -> None:
    table = "splits_converted_plans" if converted else "splits_plans"
    await db.execute(
        f"INSERT INTO {table} (group_id, currency, plan) VALUES ($1, $2, $3::jsonb)"
        " ON CONFLICT (group_id, currency) DO UPDATE SET plan = EXCLUDED.plan",
        group_id,
        currency,
        json.dumps([list(item) for item in plan]),
    )


async def balances_of_groups(
    db: Executor, group_ids: Sequence[str]
) -> list[tuple[str, str, str, int]]:
    """(group_id, user_id, currency, net) of every non-zero balance in these groups."""
    rows = await db.fetch(
        "SELECT group_id, user_id, currency, net FROM splits_balances"
        " WHERE group_id = ANY($1::text[]) AND net <> 0 ORDER BY group_id, currency, user_id",
        list(group_ids),
    )
    return [(row["group_id"], row["user_id"], row["currency"], row["net"]) for row in rows]


async def saved_plans_of_groups(
    db: Executor, group_ids: Sequence[str]
) -> dict[tuple[str, str], list[tuple[str, str, int]]]:
    """The kept settle plans of these groups, by (group_id, currency)."""
    rows = await db.fetch(
        "SELECT group_id, currency, plan FROM splits_plans WHERE group_id = ANY($1::text[])",
        list(group_ids),
    )
    return {
        (row["group_id"], row["currency"]): [tuple(item) for item in json.loads(row["plan"])]
        for row in rows
    }


async def behind_net(db: Executor, group_id: str, user_id: str) -> list[Any]:
    """Every live expense and completed settlement that moved `user_id`'s net in the group,
    oldest first: (kind, id, day, description, currency, paid, owed, counterpart, at)."""
    return await db.fetch(
        """
        SELECT 'expense' AS kind, e.id, e.spent_on AS day, e.description, e.currency,
               l.paid, l.owed, NULL::text AS counterpart, e.created_at AS at
        FROM splits_expense_lines l JOIN splits_expenses e ON e.id = l.expense_id
        WHERE e.group_id = $1 AND l.user_id = $2 AND e.deleted_at IS NULL
          AND (l.paid <> 0 OR l.owed <> 0)
        UNION ALL
        SELECT 'settlement', s.id, s.settled_at::date, NULL, s.currency,
               CASE WHEN s.from_user_id = $2 THEN s.amount ELSE 0 END,
               CASE WHEN s.to_user_id = $2 THEN s.amount ELSE 0 END,
               CASE WHEN s.from_user_id = $2 THEN s.to_user_id ELSE s.from_user_id END,
               s.settled_at
        FROM splits_settlements s
        WHERE s.group_id = $1 AND s.status = 'completed' AND $2 IN (s.from_user_id, s.to_user_id)
        ORDER BY at, id
        """,
        group_id,
        user_id,
    )
