"""A transaction's bookings: transfers checked and applied in memory against the accounts it
locked, then written with their entries and the new balances in one statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.payments.ledger import AccountKey, require_funds
from actors.payments.messages import CurrencyMismatch, InvalidPayment
from actors.payments.store.accounts import AccountRow
from actors.payments.store.transfers import TransferRow
from actors.runtime import Executor


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
