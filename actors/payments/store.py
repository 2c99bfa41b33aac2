"""Every SQL statement of the payments ledger, over its own tables (schema.sql's payments
section).

Each function takes what runs the statement: the pool (autocommit) or an open
`Transaction`. Times are passed in, never taken from the database's clock, so the actor's
clock is the only one. Deadlock freedom rests on two rules kept here:

- accounts are created (`ensure_accounts`) in autocommit statements, in key order, before
  the transaction that moves money, so no transaction waits on another's uncommitted
  INSERT of an account row;
- a transaction locks every account it touches in one statement, ordered by id
  (`lock_accounts`), before it writes, and locks nothing else of the ledger.

Transfers and entries are append-only (a trigger refuses UPDATE and DELETE); balances on
`payment_accounts` are kept with them in the same transaction, and its CHECK refuses a
wallet whose debits exceed its credits, whatever the code above does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from actors.payments.ledger import AccountKey, require_funds
from actors.payments.messages import CurrencyMismatch, InvalidPayment


class Executor(Protocol):
    """An asyncpg pool or connection, or a runtime Transaction."""

    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


def at(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (what asyncpg takes for timestamptz)."""
    return datetime.fromtimestamp(seconds, UTC)


# ── accounts ───────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class AccountRow:
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
    currency: str
    available: int
    held: int


async def wallet(db: Executor, user_id: str) -> list[WalletRow]:
    """Each of the user's wallets: balance (available) and what open holds reserve."""
    rows = await db.fetch(
        """
        SELECT a.currency, a.credits - a.debits AS available,
               COALESCE((SELECT sum(h.amount) FROM payment_holds h
                         WHERE h.user_id = a.owner AND h.currency = a.currency
                           AND h.status = 'held'), 0)::bigint AS held
        FROM payment_accounts a
        WHERE a.owner_kind = 'user' AND a.owner = $1
        ORDER BY a.currency
        """,
        user_id,
    )
    return [WalletRow(row["currency"], row["available"], row["held"]) for row in rows]


async def sums_by_currency(db: Executor) -> dict[str, int]:
    """Sum of all balances per currency: zero for every currency, always (the invariant)."""
    rows = await db.fetch(
        "SELECT currency, sum(credits - debits)::bigint AS total FROM payment_accounts"
        " GROUP BY currency"
    )
    return {row["currency"]: row["total"] for row in rows}


# ── transfers and entries ──────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class TransferRow:
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


@dataclass(slots=True)
class Booking:
    """The accounts one transaction locked, and the transfers it posts against them.

    `post` checks and applies a transfer in memory (so a refused one changes nothing and
    the rest of the batch goes on); `flush` writes every posted transfer, its two entries
    and the new balances in one statement.
    """

    accounts: dict[AccountKey, AccountRow]
    transfers: list[TransferRow] = field(default_factory=list)
    # (transfer_id, account_id, side, amount, balance_after, created_at), in posting order
    entries: list[tuple[str, int, str, int, int, datetime]] = field(default_factory=list)
    touched: set[AccountKey] = field(default_factory=set)

    def balance(self, key: AccountKey) -> int:
        account = self.accounts.get(key)
        return 0 if account is None else account.balance

    def has(self, key: AccountKey) -> bool:
        return key in self.accounts

    def post(
        self,
        *,
        transfer_id: str,
        kind: str,
        debit: AccountKey,
        credit: AccountKey,
        amount: int,
        now: datetime,
        from_user_id: str | None = None,
        to_user_id: str | None = None,
        note: str | None = None,
        reference: str | None = None,
        hold_id: str | None = None,
        external_id: str | None = None,
    ) -> TransferRow:
        if debit.currency != credit.currency:
            raise CurrencyMismatch(
                "Money cannot move between wallets of different currencies.",
                details={"field": "$.currency"},
            )
        if debit == credit:
            raise InvalidPayment(
                "A transfer to the same account moves nothing.", details={"field": "$.to_user_id"}
            )
        source = self.accounts.get(debit)
        target = self.accounts.get(credit)
        if source is None or target is None:
            # the caller ensures and locks both sides; a payee missing here (its payer got a
            # wallet after the pre-check) fails the batch: the runtime redoes it one by one
            if source is None and not debit.may_go_negative:
                require_funds(0, amount, debit.currency)
            raise RuntimeError(f"account not locked: {debit if source is None else credit}")
        if not debit.may_go_negative:
            require_funds(source.balance, amount, debit.currency)
        source.debits += amount
        target.credits += amount
        self.touched.update((debit, credit))
        row = TransferRow(
            id=transfer_id,
            kind=kind,
            debit_account_id=source.id,
            credit_account_id=target.id,
            amount=amount,
            currency=debit.currency,
            from_user_id=from_user_id,
            to_user_id=to_user_id,
            note=note,
            reference=reference,
            hold_id=hold_id,
            external_id=external_id,
            created_at=now,
        )
        self.transfers.append(row)
        self.entries.append((transfer_id, source.id, "debit", amount, source.balance, now))
        self.entries.append((transfer_id, target.id, "credit", amount, target.balance, now))
        return row

    async def flush(self, db: Executor) -> None:
        """Write every posted transfer, its entries and the new balances in ONE statement
        (one round trip: the transfers, entries and balances are data-modifying CTEs)."""
        if not self.transfers:
            return
        columns = list(zip(*(_transfer_tuple(row) for row in self.transfers), strict=True))
        entry_columns = list(zip(*self.entries, strict=True))
        touched = [self.accounts[key] for key in sorted(self.touched)]
        # entries in posting order, so entry ids (the statement's order) follow it; the
        # entries' foreign key to their transfer is checked at the statement's end
        await db.execute(
            """
            WITH transfers AS (
                INSERT INTO payment_transfers (id, kind, debit_account_id, credit_account_id,
                    amount, currency, from_user_id, to_user_id, note, reference, hold_id,
                    external_id, created_at)
                SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                    $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                    $11::text[], $12::text[], $13::timestamptz[])
            ), entries AS (
                INSERT INTO payment_entries (transfer_id, account_id, side, amount,
                    balance_after, created_at)
                SELECT transfer_id, account_id, side, amount, balance_after, created_at
                FROM unnest($14::text[], $15::bigint[], $16::text[], $17::bigint[],
                            $18::bigint[], $19::timestamptz[])
                    WITH ORDINALITY AS e(transfer_id, account_id, side, amount, balance_after,
                                         created_at, n)
                ORDER BY n
            )
            UPDATE payment_accounts a SET debits = v.debits, credits = v.credits
            FROM unnest($20::bigint[], $21::bigint[], $22::bigint[]) AS v(id, debits, credits)
            WHERE a.id = v.id
            """,
            *(list(column) for column in columns),
            *(list(column) for column in entry_columns),
            [account.id for account in touched],
            [account.debits for account in touched],
            [account.credits for account in touched],
        )


def _transfer_tuple(row: TransferRow) -> tuple[Any, ...]:
    return (
        row.id,
        row.kind,
        row.debit_account_id,
        row.credit_account_id,
        row.amount,
        row.currency,
        row.from_user_id,
        row.to_user_id,
        row.note,
        row.reference,
        row.hold_id,
        row.external_id,
        row.created_at,
    )


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


async def statement(
    db: Executor, user_id: str, *, limit: int, before: int | None
) -> list[StatementRow]:
    """The entries on the user's wallets, newest first, below entry id `before`."""
    rows = await db.fetch(
        """
        SELECT e.id AS entry_id, e.transfer_id, e.side, e.amount, e.balance_after,
               t.currency, t.kind, t.from_user_id, t.to_user_id, t.note, e.created_at
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


# ── idempotency ────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Remembered:
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


# ── holds ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class HoldRow:
    id: str
    user_id: str
    currency: str
    amount: int
    captured: int
    status: str
    reference: str | None
    expires_at: datetime
    created_at: datetime


_HOLD = "id, user_id, currency, amount, captured, status, reference, expires_at, created_at"


def _hold(row: Any) -> HoldRow | None:
    return None if row is None else HoldRow(**{name: row[name] for name in HoldRow.__slots__})


async def insert_hold(db: Executor, hold: HoldRow) -> None:
    await db.execute(
        f"INSERT INTO payment_holds ({_HOLD}, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        hold.id,
        hold.user_id,
        hold.currency,
        hold.amount,
        hold.captured,
        hold.status,
        hold.reference,
        hold.expires_at,
        hold.created_at,
    )


async def hold_by_id(db: Executor, hold_id: str) -> HoldRow | None:
    return _hold(await db.fetchrow(f"SELECT {_HOLD} FROM payment_holds WHERE id = $1", hold_id))


async def close_hold(
    db: Executor, hold_id: str, *, status: str, captured: int, now: datetime
) -> HoldRow | None:
    """Move a hold out of `held` (one conditional UPDATE: a second closer gets None)."""
    return _hold(
        await db.fetchrow(
            f"""
            UPDATE payment_holds SET status = $2, captured = $3, updated_at = $4
            WHERE id = $1 AND status = 'held'
            RETURNING {_HOLD}
            """,
            hold_id,
            status,
            captured,
            now,
        )
    )


async def overdue_holds(db: Executor, now: datetime, limit: int = 500) -> list[str]:
    """Open holds past their expiry (their timers were lost with a restart)."""
    rows = await db.fetch(
        "SELECT id FROM payment_holds WHERE status = 'held' AND expires_at <= $1"
        " ORDER BY expires_at LIMIT $2",
        now,
        limit,
    )
    return [row["id"] for row in rows]
