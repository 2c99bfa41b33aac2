"""Idempotency keys, recorded by the actor that owns the effect, in the same transaction.

An edge (HTTP, the bot) turns a client's `Idempotency-Key` into an `IdempotencyKey`: who
and where (`scope`: the caller and the route, or the route alone where nobody is signed
in), the key, and a fingerprint of the request (secrets left out). It travels on the
command to the actor that owns what the command creates. That actor, inside the very
transaction that makes the effect, asks its `KeyTable` (a table of its own, with the same
shape for every actor) whether the key is known:

- unknown: the handler does its work and `remember`s its reply in that transaction, so
  the key exists exactly when the effect does (a crash before the commit leaves neither;
  a crash after it leaves both, and the retry gets the first reply);
- known with the same fingerprint: the first reply, decoded, instead of a second effect;
- known with another fingerprint: `IdempotencyConflict` (409 `idempotency_conflict`);
- known but still pending (a flow that finishes later, such as a wallet settlement that
  waits for payments): `IdempotencyInFlight` (409 `idempotency_in_flight`); whatever
  finishes the flow `complete`s the key with its final reply.

A refusal raised before anything is recorded is not remembered: a refused request (say,
insufficient funds for a transfer) may be retried with its key and succeed. A flow that
was accepted and failed later (a wallet settlement payments refused) completes its key
with that failure, which its retries answer. Two transactions racing to insert the same
key (two shards, two nodes) cannot both commit: the loser's insert hits the primary key,
its effect rolls back with it, and it is refused as in flight. Keys are pruned after a
retention of at least 24 hours (shared/API.md, Conventions).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import asyncpg
import msgspec

from actors.runtime.errors import DomainError
from actors.runtime.store import Executor

__all__ = [
    "IdempotencyConflict",
    "IdempotencyInFlight",
    "IdempotencyKey",
    "KeyTable",
    "Remembered",
    "fingerprint_of",
    "key_of",
]

KEY_MAX = 200  # shared/API.md: an Idempotency-Key is 1 to 200 characters
SCOPE_MAX = 400
RETENTION_MIN = 24 * 3600.0  # the contract keeps keys at least a day

T = TypeVar("T")


class IdempotencyKey(msgspec.Struct, frozen=True, kw_only=True):
    """A client's idempotency key as its owning actor records it."""

    scope: Annotated[str, msgspec.Meta(min_length=1, max_length=SCOPE_MAX)]
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_MAX)]
    # hex SHA-256 of the request as the edge read it (`fingerprint_of`)
    fingerprint: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class IdempotencyConflict(DomainError):
    """This idempotency key was used before with a different request."""

    code = "idempotency_conflict"
    category = "conflict"


class IdempotencyInFlight(DomainError):
    """The first request with this idempotency key is still running."""

    code = "idempotency_in_flight"
    category = "conflict"


def key_of(message: object) -> IdempotencyKey | None:
    """The idempotency key a command carries in its `idempotency` field, if any."""
    key = getattr(message, "idempotency", None)
    return key if isinstance(key, IdempotencyKey) else None


def fingerprint_of(*parts: object) -> str:
    """Hex SHA-256 of the parts (structs, dicts, strings) in a canonical encoding."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = msgspec.msgpack.encode(part, order="deterministic")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Remembered:
    """What a key recorded: the request's fingerprint and the reply (None while pending)."""

    fingerprint: bytes
    reply: bytes | None


# (scope, key, fingerprint, reply or None while pending, subject or None)
Row = tuple[str, str, bytes, bytes | None, str | None]

_TABLE = re.compile(r"[a-z_]+_idempotency")


class KeyTable:
    """One actor's idempotency keys, kept in its own table (`<actor>_idempotency`, all of
    the same shape: see splitgo/schema) and used inside that actor's transactions."""

    def __init__(self, table: str) -> None:
        if not _TABLE.fullmatch(table):
            raise ValueError(f"an idempotency table is named <actor>_idempotency, not {table!r}")
        self.table = table

    # ── one key ────────────────────────────────────────────────────────────────────────

    async def recall(
        self, db: Executor, key: IdempotencyKey | None, reply_type: type[T]
    ) -> T | None:
        """The first reply for `key` (None when the key is new or absent); raises
        `IdempotencyConflict` for another request, `IdempotencyInFlight` while pending."""
        if key is None:
            return None
        known = (await self.recall_many(db, [(key.scope, key.key)])).get((key.scope, key.key))
        if known is None:
            return None
        return replay(known, bytes.fromhex(key.fingerprint), reply_type)

    async def remember(
        self,
        db: Executor,
        key: IdempotencyKey | None,
        reply: Any,
        now: datetime,
        *,
        pending: bool = False,
        subject: str | None = None,
    ) -> None:
        """Record `reply` (or, `pending`, that a flow about `subject` runs on) for `key`."""
        if key is None:
            return
        encoded = None if pending else msgspec.msgpack.encode(reply)
        row: Row = (key.scope, key.key, bytes.fromhex(key.fingerprint), encoded, subject)
        await self.remember_many(db, [row], now)

    async def complete(self, db: Executor, subject: str, reply: Any) -> None:
        """The flow about `subject` finished: its pending keys now answer `reply`."""
        await db.execute(
            f"UPDATE {self.table} SET reply = $2 WHERE subject = $1 AND reply IS NULL",
            subject,
            msgspec.msgpack.encode(reply),
        )

    # ── many keys at once (a batch) ────────────────────────────────────────────────────

    async def recall_many(
        self, db: Executor, scope_keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Remembered]:
        """What these (scope, key) pairs recorded, where they recorded anything."""
        if not scope_keys:
            return {}
        rows = await db.fetch(
            f"""
            SELECT i.scope, i.key, i.fingerprint, i.reply
            FROM {self.table} i
            JOIN unnest($1::text[], $2::text[]) AS k(scope, key)
              ON i.scope = k.scope AND i.key = k.key
            """,
            [scope for scope, _ in scope_keys],
            [key for _, key in scope_keys],
        )
        return {
            (row["scope"], row["key"]): Remembered(row["fingerprint"], row["reply"]) for row in rows
        }

    async def remember_many(self, db: Executor, rows: Sequence[Row], now: datetime) -> None:
        """Record these rows; a key recorded already by a concurrent transaction makes this
        one fail as `IdempotencyInFlight`, so its effect rolls back with it."""
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        try:
            await db.execute(
                f"""
                INSERT INTO {self.table} (scope, key, fingerprint, reply, subject, created_at)
                SELECT scope, key, fingerprint, reply, subject, $6
                FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[])
                    AS r(scope, key, fingerprint, reply, subject)
                """,
                *(list(column) for column in columns),
                now,
            )
        except asyncpg.UniqueViolationError as error:
            raise IdempotencyInFlight(
                "Another request with this idempotency key is running; retry it shortly.",
                details={"field": "Idempotency-Key"},
            ) from error

    # ── upkeep ─────────────────────────────────────────────────────────────────────────

    async def prune(self, db: Executor, older_than: datetime, chunk: int = 5_000) -> int:
        """Forget keys recorded before `older_than`; how many went."""
        total = 0
        while True:
            status = await db.execute(
                f"DELETE FROM {self.table} WHERE (scope, key) IN (SELECT scope, key"
                f" FROM {self.table} WHERE created_at < $1 LIMIT $2)",
                older_than,
                chunk,
            )
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < chunk:
                return total


def replay(known: Remembered, fingerprint: bytes, reply_type: type[T]) -> T:
    """The first reply a key recorded, or why there is none to give."""
    if known.fingerprint != fingerprint:
        raise IdempotencyConflict(
            "This idempotency key was used before with a different request; use a new key.",
            details={"field": "Idempotency-Key"},
        )
    if known.reply is None:
        raise IdempotencyInFlight(
            "The first request with this idempotency key is still running; retry it shortly.",
            details={"field": "Idempotency-Key"},
        )
    return msgspec.msgpack.decode(known.reply, type=reply_type)
