"""How the ledger's stored rows are shown in replies."""

from __future__ import annotations

from actors.payments import statements, store
from actors.payments.messages import HoldView, StatementEntry, TransferView
from actors.runtime import rfc3339


def transfer_view(row: store.TransferRow) -> TransferView:
    return TransferView(
        id=row.id,
        status="completed",
        from_user_id=row.from_user_id,
        to_user_id=row.to_user_id,
        amount=row.amount,
        currency=row.currency,
        kind=row.kind,
        created_at=rfc3339(row.created_at),
        note=row.note,
        reference=row.reference,
    )


def hold_view(hold: store.HoldRow) -> HoldView:
    return HoldView(
        id=hold.id,
        user_id=hold.user_id,
        status=hold.status,  # type: ignore[arg-type]  # the table's CHECK keeps it one of four
        amount=hold.amount,
        captured=hold.captured,
        currency=hold.currency,
        expires_at=rfc3339(hold.expires_at),
        reference=hold.reference,
    )


def statement_entry(row: store.StatementRow, user_id: str) -> StatementEntry:
    """One entry of `user_id`'s statement: what came in is positive, what went out negative."""
    incoming = row.side == "credit"
    counterparty = row.from_user_id if incoming else row.to_user_id
    other = None if counterparty == user_id else counterparty
    amount = row.amount if incoming else -row.amount
    return StatementEntry(
        transfer_id=row.transfer_id,
        amount=amount,
        currency=row.currency,
        kind=row.kind,
        counterparty_user_id=other,
        created_at=rfc3339(row.created_at),
        note=row.note,
        balance_after=row.balance_after,
        summary=statements.summary(row.kind, amount, row.currency, other),
        about=statements.about(row.kind, row.reference),
    )
