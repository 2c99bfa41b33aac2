"""Transfers as stored (append-only), and the statement of a user's wallets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.runtime import Executor


@dataclass(frozen=True, slots=True)
class TransferRow:
    """A transfer as stored (append-only)."""

    id: str
    kind: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    currency: str
    from_user_id: str | None
    to_user_id: str | None
    note: str | None
    reference: str | None
    hold_id: str | None
    external_id: str | None
    created_at: datetime


_TRANSFER = (
    "id, kind, debit_account_id, credit_account_id, amount, currency, from_user_id,"
    " to_user_id, note, reference, hold_id, external_id, created_at"
)


def _transfer(row: Any) -> TransferRow | None:
    if row is None:
        return None
    return TransferRow(**{name: row[name] for name in TransferRow.__slots__})


async def transfer_by_id(db: Executor, transfer_id: str) -> TransferRow | None:
    return _transfer(
        await db.fetchrow(f"SELECT {_TRANSFER} FROM payment_transfers WHERE id = $1", transfer_id)
    )


async def transfer_by_external_id(db: Executor, external_id: str) -> TransferRow | None:
    return _transfer(
        await db.fetchrow(
            f"SELECT {_TRANSFER} FROM payment_transfers WHERE external_id = $1", external_id
        )
    )


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One entry on a user's wallet, with the transfer it belongs to."""

    entry_id: int
    transfer_id: str
    side: str
    amount: int
    balance_after: int
    currency: str
    kind: str
    from_user_id: str | None
    to_user_id: str | None
    note: str | None
    created_at: datetime
    reference: str | None = None
    hold_id: str | None = None


async def statement(
    db: Executor, user_id: str, *, limit: int, before: int | None
) -> list[StatementRow]:
    """The entries on the user's wallets, newest first, below entry id `before`."""
    rows = await db.fetch(
        """
        SELECT e.id AS entry_id, e.transfer_id, e.side, e.amount, e.balance_after,
               t.currency, t.kind, t.from_user_id, t.to_user_id, t.note, e.created_at,
               t.reference, t.hold_id
        FROM payment_entries e
        JOIN payment_transfers t ON t.id = e.transfer_id
        WHERE e.account_id IN (SELECT id FROM payment_accounts
                               WHERE owner_kind = 'user' AND owner = $1)
          AND ($2::bigint IS NULL OR e.id < $2)
        ORDER BY e.id DESC
        LIMIT $3
        """,
        user_id,
        before,
        limit,
    )
    return [StatementRow(**dict(row)) for row in rows]
