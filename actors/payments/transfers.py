"""Transfers between wallets, applied in batches: the payments actor's hot path.

`apply` takes a run of transfers and commits them in ONE transaction. It locks all the
accounts involved in one statement ordered by account id (the one fixed order, so two
shards never deadlock), then checks and applies each transfer in memory, in mailbox order:
a transfer that fails its checks (funds, idempotency conflict, bad input) is refused alone
and the rest commit. Entries, balances, idempotency rows and the events go in with that one
commit. A lone transfer takes the same path with a run of one, so the results are the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import msgspec
import structlog

from actors.payments import store
from actors.payments.ledger import FEES, AccountKey, check_transfer, system, wallet
from actors.payments.messages import (
    GetTransfer,
    InvalidPayment,
    Transfer,
    TransferCompleted,
    TransferFailed,
    TransferNotFound,
    TransferView,
)
from actors.payments.shared import fingerprint, no_wallet, retrying
from actors.payments.views import transfer_view
from actors.runtime import Context, DomainError, Transaction
from actors.runtime.idempotency import Remembered, Row, replay

log = structlog.get_logger("actors.payments")

# an idempotency row to store with the batch
NewKey = Row


async def _nothing(batch: Sequence[Transfer]) -> None:
    return None


class Transfers:
    """Moves money between wallets (and to the fees account), idempotently, in batches."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool
        # accounts are never deleted, so one seen to exist needs no pre-check again
        self._known_accounts: set[AccountKey] = set()
        # awaited inside a batch's transaction after its writes, before its commit: a seam
        # for tests that inject a fault there
        self.before_commit: Callable[[Sequence[Transfer]], Awaitable[None]] = _nothing

    async def one(self, message: Transfer) -> TransferView:
        """A lone transfer: a batch of one; a refusal is raised."""
        result = (await self.apply([message]))[0]
        if isinstance(result, DomainError):
            raise result
        assert isinstance(result, TransferView)
        return result

    async def get(self, message: GetTransfer) -> TransferView:
        row = await store.transfer_by_id(self._pool, message.transfer_id)
        if row is None or message.user_id not in (row.from_user_id, row.to_user_id):
            # someone else's transfer is as good as missing: no probing of ids
            raise TransferNotFound("No such transfer.")
        return transfer_view(row)

    async def apply(self, messages: Sequence[Transfer]) -> list[TransferView | DomainError]:
        """Apply a run of transfers in one transaction: a view or a refusal for each."""
        checked: list[DomainError | None] = []
        for message in messages:
            try:
                check_transfer(
                    idempotency_key=message.idempotency_key,
                    from_user_id=message.from_user_id,
                    to_user_id=message.to_user_id,
                    amount=message.amount,
                    currency=message.currency,
                    note=message.note,
                )
                checked.append(None)
            except InvalidPayment as error:
                checked.append(error)
        fine = [m for m, error in zip(messages, checked, strict=True) if error is None]
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
        return await retrying(lambda: self._commit(messages, checked), "transfers")

    async def _commit(
        self, messages: Sequence[Transfer], checked: Sequence[DomainError | None]
    ) -> list[TransferView | DomainError]:
        results: list[TransferView | DomainError] = []
        now = self._context.now()
        fine = [m for m, error in zip(messages, checked, strict=True) if error is None]
        async with self._context.transaction(dedupe=False) as tx:
            booking = store.Booking(
                await store.lock_accounts(
                    tx,
                    [wallet(m.from_user_id, m.currency) for m in fine]
                    + [_credit_account(m) for m in fine],
                )
            )
            memory = await store.KEYS.recall_many(tx, [_scope_key(m) for m in fine])
            new_keys: list[NewKey] = []
            for message, error in zip(messages, checked, strict=True):
                try:
                    if error is not None:
                        raise error
                    view, new_key = await self._post(tx, booking, memory, message, now)
                except DomainError as refusal:
                    results.append(refusal)
                    if message.kind != "p2p":
                        await tx.publish(
                            TransferFailed(
                                reference=message.reference,
                                from_user_id=message.from_user_id,
                                code=refusal.code,
                                message=refusal.message,
                            ),
                            also=message.notify,
                        )
                    continue
                results.append(view)
                if new_key is not None:
                    new_keys.append(new_key)
            await booking.flush(tx)
            await store.KEYS.remember_many(tx, new_keys, now)
            await self.before_commit(messages)
        applied = sum(1 for result in results if isinstance(result, TransferView))
        log.info("transfers_applied", batch=len(messages), accepted=applied)
        return results

    async def _post(
        self,
        tx: Transaction,
        booking: store.Booking,
        memory: dict[tuple[str, str], Remembered],
        message: Transfer,
        now: datetime,
    ) -> tuple[TransferView, NewKey | None]:
        scope_key = _scope_key(message)
        print_ = fingerprint(message)
        known = memory.get(scope_key)
        if known is not None:
            return replay(known, print_, TransferView), None
        debit = wallet(message.from_user_id, message.currency)
        if not booking.has(debit):
            raise await no_wallet(tx, message.from_user_id, message.currency, message.amount)
        row = booking.post(
            transfer_id=str(uuid.uuid4()),
            kind=message.kind,
            debit=debit,
            credit=_credit_account(message),
            amount=message.amount,
            now=now,
            from_user_id=message.from_user_id,
            to_user_id=message.to_user_id,
            note=message.note,
            reference=message.reference,
        )
        view = transfer_view(row)
        reply = msgspec.msgpack.encode(view)
        # a second message with this key later in the same batch replays this one
        memory[scope_key] = Remembered(print_, reply)
        await tx.publish(
            TransferCompleted(
                transfer_id=row.id,
                from_user_id=row.from_user_id,
                to_user_id=row.to_user_id,
                amount=row.amount,
                currency=row.currency,
                kind=row.kind,
                reference=row.reference,
            ),
            also=message.notify,
        )
        return view, (scope_key[0], scope_key[1], print_, reply, None)


def _credit_account(message: Transfer) -> AccountKey:
    if message.to_user_id is None:
        return system(FEES, message.currency)
    return wallet(message.to_user_id, message.currency)


def _scope_key(message: Transfer) -> tuple[str, str]:
    # keys are the payer's own: two users may pick the same key without colliding
    return (f"transfer:{message.from_user_id}", message.idempotency_key)
