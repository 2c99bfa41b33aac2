"""Idempotency keys: the first reply to each (scope, key), with the request's fingerprint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from actors.runtime import Executor


@dataclass(frozen=True, slots=True)
class Remembered:
    """The fingerprint of the request that first used a key, and its encoded reply."""

    fingerprint: bytes
    reply: bytes


async def remembered(
    db: Executor, scope_keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Remembered]:
    """The stored first results of these (scope, key) pairs."""
    if not scope_keys:
        return {}
    rows = await db.fetch(
        """
        SELECT i.scope, i.key, i.fingerprint, i.reply
        FROM payment_idempotency i
        JOIN unnest($1::text[], $2::text[]) AS k(scope, key)
          ON i.scope = k.scope AND i.key = k.key
        """,
        [scope for scope, _ in scope_keys],
        [key for _, key in scope_keys],
    )
    return {
        (row["scope"], row["key"]): Remembered(row["fingerprint"], row["reply"]) for row in rows
    }


async def remember(
    db: Executor, rows: Sequence[tuple[str, str, bytes, bytes]], now: datetime
) -> None:
    """Store (scope, key, fingerprint, reply) rows; a key stored already is kept as it was."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    await db.execute(
        """
        INSERT INTO payment_idempotency (scope, key, fingerprint, reply, created_at)
        SELECT scope, key, fingerprint, reply, $5
        FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[])
            AS r(scope, key, fingerprint, reply)
        ON CONFLICT (scope, key) DO NOTHING
        """,
        *(list(column) for column in columns),
        now,
    )


async def prune_idempotency(db: Executor, older_than: datetime, chunk: int = 5_000) -> int:
    """Forget idempotency keys stored before `older_than`; how many went."""
    total = 0
    while True:
        status = await db.execute(
            "DELETE FROM payment_idempotency WHERE (scope, key) IN (SELECT scope, key"
            " FROM payment_idempotency WHERE created_at < $1 LIMIT $2)",
            older_than,
            chunk,
        )
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < chunk:
            return total
