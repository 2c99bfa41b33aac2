"""Transfers between wallets, applied in batches: the payments actor's hot path.

`apply` takes a run of transfers and commits them in ONE transaction (the shape every batch
of the actor shares: batches.py). It locks all the accounts involved in one statement
ordered by account id (the one fixed order, so two shards never deadlock), then checks and
applies each transfer in memory, in mailbox order: a transfer that fails its checks (funds,
idempotency conflict, bad input) is refused alone and the rest commit. Entries, balances,
idempotency rows and the events go in with that one commit. A lone transfer takes the same
path with a run of one, so the results are the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog

from actors.payments import store
from actors.payments.batches import Answers, Batch, Batched, Checked, Event, Posted, check_each
from actors.payments.ledger import FEES, AccountKey, check_transfer, system, wallet
from actors.payments.messages import (
    GetTransfer,
    Transfer,
    TransferCompleted,
    TransferFailed,
    TransferNotFound,
    TransferView,
)
from actors.payments.shared import no_wallet
from actors.payments.views import transfer_view
from actors.runtime import Context, DomainError, Transaction

log = structlog.get_logger("actors.payments")


class Transfers(Batched[Transfer, TransferView, None]):
    """Moves money between wallets (and to the fees account), idempotently, in batches."""

    what = "transfers"
    view = TransferView

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        # accounts are never deleted, so one seen to exist needs no pre-check again
        self._known_accounts: set[AccountKey] = set()

    async def get(self, message: GetTransfer) -> TransferView:
        row = await store.transfer_by_id(self._pool, message.transfer_id)
        if row is None or message.user_id not in (row.from_user_id, row.to_user_id):
            # someone else's transfer is as good as missing: no probing of ids
            raise TransferNotFound("No such transfer.")
        return transfer_view(row)

    async def _check(self, messages: Sequence[Transfer]) -> list[Checked]:
        return check_each(messages, _check)

    async def _prepare(self, fine: Sequence[Transfer], accounts: Sequence[AccountKey]) -> None:
        # payees' wallets are created before the transaction (see store), only for payers
        # who have a wallet to pay from; a payer's is never created: no wallet, no money
        # (and a refused transfer leaves no empty wallet behind)
        known = self._known_accounts
        debits = {wallet(m.from_user_id, m.currency) for m in fine}
        unknown = debits - known
        if unknown:
            known.update(await store.existing_accounts(self._pool, unknown))
        credits = {_credit_account(m) for m in fine if wallet(m.from_user_id, m.currency) in known}
        if credits - known:
            await store.ensure_accounts(self._pool, credits - known)
            known.update(credits)

    async def _open(self, tx: Transaction, fine: Sequence[Transfer]) -> None:
        return None

    def _scope_key(self, message: Transfer) -> tuple[str, str]:
        # keys are the payer's own: two users may pick the same key without colliding
        return (f"transfer:{message.from_user_id}", message.idempotency_key)

    async def _post(self, batch: Batch[None], message: Transfer) -> TransferView:
        debit = wallet(message.from_user_id, message.currency)
        if not batch.booking.has(debit):
            raise await no_wallet(batch.tx, message.from_user_id, message.currency, message.amount)
        row = batch.booking.post(
            transfer_id=str(uuid.uuid4()),
            kind=message.kind,
            debit=debit,
            credit=_credit_account(message),
            amount=message.amount,
            now=batch.now,
            from_user_id=message.from_user_id,
            to_user_id=message.to_user_id,
            note=message.note,
            reference=message.reference,
        )
        event = TransferCompleted(
            transfer_id=row.id,
            from_user_id=row.from_user_id,
            to_user_id=row.to_user_id,
            amount=row.amount,
            currency=row.currency,
            kind=row.kind,
            reference=row.reference,
        )
        batch.events.append((event, message.notify))
        return transfer_view(row)

    def _refused(self, message: Transfer, refusal: DomainError) -> Event | None:
        # a transfer another actor asked for tells it of the refusal; a person's is answered
        if message.kind == "p2p":
            return None
        event = TransferFailed(
            reference=message.reference,
            from_user_id=message.from_user_id,
            code=refusal.code,
            message=refusal.message,
        )
        return event, message.notify

    def _done(self, results: Answers[TransferView], posted: Posted[Transfer, TransferView]) -> None:
        applied = sum(1 for result in results if isinstance(result, TransferView))
        log.info("transfers_applied", batch=len(results), accepted=applied)


def _check(message: Transfer) -> list[AccountKey]:
    check_transfer(
        idempotency_key=message.idempotency_key,
        from_user_id=message.from_user_id,
        to_user_id=message.to_user_id,
        amount=message.amount,
        currency=message.currency,
        note=message.note,
    )
    return [wallet(message.from_user_id, message.currency), _credit_account(message)]


def _credit_account(message: Transfer) -> AccountKey:
    if message.to_user_id is None:
        return system(FEES, message.currency)
    return wallet(message.to_user_id, message.currency)
