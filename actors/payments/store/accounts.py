"""The ledger's accounts: created ahead of the transactions that move money, locked in one
fixed order, and read as wallets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from actors.payments.ledger import AccountKey
from actors.runtime import Executor


@dataclass(slots=True)
class AccountRow:
    """A locked account: its id and running totals (balance = credits - debits)."""

    id: int
    key: AccountKey
    debits: int
    credits: int

    @property
    def balance(self) -> int:
        return self.credits - self.debits


def _key(row: Any) -> AccountKey:
    return AccountKey(row["owner_kind"], row["owner"], row["currency"])


async def ensure_accounts(db: Executor, keys: Iterable[AccountKey]) -> None:
    """Create the missing accounts (autocommit, in key order: see the module docstring)."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    await db.execute(
        """
        INSERT INTO payment_accounts (owner_kind, owner, currency, allow_negative)
        SELECT kind, owner, currency, negative
        FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[])
            WITH ORDINALITY AS k(kind, owner, currency, negative, n)
        ORDER BY n
        ON CONFLICT (owner_kind, owner, currency) DO NOTHING
        """,
        [key.kind for key in wanted],
        [key.owner for key in wanted],
        [key.currency for key in wanted],
        [key.may_go_negative for key in wanted],
    )


async def existing_accounts(db: Executor, keys: Iterable[AccountKey]) -> set[AccountKey]:
    """Which of `keys` have an account (no lock: a hint, the transaction checks again)."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    rows = await db.fetch(
        """
        SELECT a.owner_kind, a.owner, a.currency
        FROM payment_accounts a
        JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(kind, owner, currency)
          ON a.owner_kind = k.kind AND a.owner = k.owner AND a.currency = k.currency
        """,
        [key.kind for key in wanted],
        [key.owner for key in wanted],
        [key.currency for key in wanted],
    )
    return {_key(row) for row in rows}


async def lock_accounts(db: Executor, keys: Iterable[AccountKey]) -> dict[AccountKey, AccountRow]:
    """Lock the existing accounts among `keys`, in id order (the one fixed order)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await db.fetch(
        """
        SELECT a.id, a.owner_kind, a.owner, a.currency, a.debits, a.credits
        FROM payment_accounts a
        JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(kind, owner, currency)
          ON a.owner_kind = k.kind AND a.owner = k.owner AND a.currency = k.currency
        ORDER BY a.id
        FOR UPDATE OF a
        """,
        [key.kind for key in wanted],
        [key.owner for key in wanted],
        [key.currency for key in wanted],
    )
    accounts = [AccountRow(row["id"], _key(row), row["debits"], row["credits"]) for row in rows]
    return {account.key: account for account in accounts}


async def user_currencies(db: Executor, user_id: str) -> list[str]:
    """The currencies a user has a wallet in."""
    rows = await db.fetch(
        "SELECT currency FROM payment_accounts WHERE owner_kind = 'user' AND owner = $1"
        " ORDER BY currency",
        user_id,
    )
    return [row["currency"] for row in rows]


@dataclass(frozen=True, slots=True)
class WalletRow:
    """One currency of a user's wallet: its balance and what open holds reserve."""

    currency: str
    available: int
    held: int


async def wallet(db: Executor, user_id: str) -> list[WalletRow]:
    """Each of the user's wallets: balance (available) and what open holds reserve."""
    _marks, rows = await marked_wallet(db, user_id)
    return rows


# (account id, version) of each of a user's wallets, by id: the version is the row's xmin,
# which every committed UPDATE of the row changes (a balance posted, a hold placed or
# closed: actors/payments/store/holds.py touches the row) and a new wallet adds a pair
Marks = tuple[tuple[int, int], ...]


async def wallet_marks(db: Executor, user_id: str) -> Marks:
    """The marks of the user's wallets now (one index scan: what a kept copy checks)."""
    rows = await db.fetch(
        "SELECT id, xmin::text::bigint AS version FROM payment_accounts"
        " WHERE owner_kind = 'user' AND owner = $1 ORDER BY id",
        user_id,
    )
    return tuple((row["id"], row["version"]) for row in rows)


async def marked_wallet(db: Executor, user_id: str) -> tuple[Marks, list[WalletRow]]:
    """`wallet` and the marks it was read at, in one statement (one snapshot)."""
    rows = await db.fetch(
        """
        SELECT a.id, a.xmin::text::bigint AS version, a.currency,
               a.credits - a.debits AS available,
               COALESCE((SELECT sum(h.amount) FROM payment_holds h
                         WHERE h.user_id = a.owner AND h.currency = a.currency
                           AND h.status = 'held'), 0)::bigint AS held
        FROM payment_accounts a
        WHERE a.owner_kind = 'user' AND a.owner = $1
        ORDER BY a.currency
        """,
        user_id,
    )
    marks = tuple(sorted((row["id"], row["version"]) for row in rows))
    return marks, [WalletRow(row["currency"], row["available"], row["held"]) for row in rows]


async def sums_by_currency(db: Executor) -> dict[str, int]:
    """Sum of all balances per currency: zero for every currency, always (the invariant)."""
    rows = await db.fetch(
        "SELECT currency, sum(credits - debits)::bigint AS total FROM payment_accounts"
        " GROUP BY currency"
    )
    return {row["currency"]: row["total"] for row in rows}
