"""Holds: money set aside on a wallet (say, a ride's upfront price), then captured for a
payee less a fee, voided, or expired by its own timer.

Placing moves the amount from the wallet to the holds account; capturing moves it on to the
payee and the fees account (and what is left back to the payer); voiding and expiring move
it back. Each step closes the hold with a conditional UPDATE under its payer's and the
holds account's locks, so two steps racing on one hold cannot both win. Placing and
capturing are idempotent by key.

Runs of holds placed (`apply`), captured (`capture_many`, see captures.py), voided
(`void_many`) and expired (`expire_many`) that wait together in a shard's mailbox commit in
ONE transaction each, as transfers do: the accounts locked once in id order, each hold then
checked and posted in memory against the locked balances, so a refused one leaves nothing
and the rest go on. A lone hold takes the same path with a run of one (a lone void its own).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Literal

import msgspec
import structlog

from actors.payments import store
from actors.payments.batches import Answers, Batch, Batched, Checked, Posted, check_each
from actors.payments.captures import Captures
from actors.payments.ledger import (
    HOLDS,
    AccountKey,
    check_amount,
    check_currency,
    check_key,
    check_user_id,
    system,
    wallet,
)
from actors.payments.messages import (
    CaptureHold,
    ExpireHold,
    HoldNotActive,
    HoldNotFound,
    HoldReleased,
    HoldView,
    InvalidPayment,
    PlaceHold,
)
from actors.payments.shared import fingerprint, no_wallet, retrying
from actors.payments.views import hold_view
from actors.runtime import Context, DomainError, Transaction, at

log = structlog.get_logger("actors.payments")

HOLD_MAX_SECONDS = 30 * 24 * 3600.0


class Holds(Batched[PlaceHold, HoldView, list[store.HoldRow]]):
    """Places, captures, voids and expires holds; each hold has its own expiry timer.

    Placing is its batch (`apply`, batches.py): each hold checked as a lone hold would be,
    the wallets and holds accounts locked once, and each hold then refused or posted in
    memory against the locked balances, so a refusal leaves nothing and the rest go on.
    """

    what = "place_hold"
    view = HoldView

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.captures = Captures(context)

    async def place(self, message: PlaceHold) -> HoldView:
        """A lone hold: a batch of one; a refusal is raised."""
        return await self.one(message)

    async def _check(self, messages: Sequence[PlaceHold]) -> list[Checked]:
        return check_each(messages, _check)

    async def _prepare(self, fine: Sequence[PlaceHold], accounts: Sequence[AccountKey]) -> None:
        # the payer's wallet is never created: no wallet, no money (see transfers.py)
        holds = sorted({system(HOLDS, m.currency) for m in fine})
        if holds:
            await store.ensure_accounts(self._pool, holds)

    async def _open(self, tx: Transaction, fine: Sequence[PlaceHold]) -> list[store.HoldRow]:
        return []

    def _scope_key(self, message: PlaceHold) -> tuple[str, str]:
        return (f"hold:{message.user_id}", message.idempotency_key)

    def _fingerprint(self, message: PlaceHold) -> bytes:
        # the amount is left out: a retried hold answers the first one whatever it asks (a
        # ride's quote moves with the surge between a crash and its retry)
        return fingerprint(msgspec.structs.replace(message, amount=1))

    async def _post(self, batch: Batch[list[store.HoldRow]], message: PlaceHold) -> HoldView:
        debit = wallet(message.user_id, message.currency)
        if not batch.booking.has(debit):
            raise await no_wallet(batch.tx, message.user_id, message.currency, message.amount)
        hold = store.HoldRow(
            id=str(uuid.uuid4()),
            user_id=message.user_id,
            currency=message.currency,
            amount=message.amount,
            captured=0,
            status="held",
            reference=message.reference,
            expires_at=at(batch.now_s + message.expires_in),
            created_at=batch.now,
        )
        # checks the funds before it changes anything: a refused hold leaves nothing
        batch.booking.post(
            transfer_id=str(uuid.uuid4()),
            kind="hold",
            debit=debit,
            credit=system(HOLDS, message.currency),
            amount=message.amount,
            now=batch.now,
            from_user_id=message.user_id,
            reference=message.reference,
            hold_id=hold.id,
        )
        batch.state.append(hold)
        return hold_view(hold)

    async def _write(self, batch: Batch[list[store.HoldRow]]) -> None:
        await store.insert_holds(batch.tx, batch.state)

    def _done(self, results: Answers[HoldView], posted: Posted[PlaceHold, HoldView]) -> None:
        for message, view in posted:
            self._context.schedule(message.expires_in, ExpireHold(hold_id=view.id))
            log.info("hold_placed", hold_id=view.id, user_id=view.user_id, amount=view.amount)

    async def capture(self, message: CaptureHold) -> HoldView:
        """A lone capture (a run of one, see captures.py); a refusal is raised."""
        return await self.captures.one(message)

    async def capture_many(self, messages: Sequence[CaptureHold]) -> list[HoldView | DomainError]:
        """Capture a run of holds in ONE transaction: a view or a refusal for each, in order."""
        return await self.captures.apply(messages)

    async def void(self, hold_id: str) -> HoldView:
        """Release a hold (a run of one); voiding a voided hold again answers the same (a
        retry); a refusal is raised."""
        result = (await self.void_many([hold_id]))[0]
        if isinstance(result, DomainError):
            raise result
        return result

    async def void_many(self, hold_ids: Sequence[str]) -> list[HoldView | DomainError]:
        """Void a run of holds in ONE transaction: for each, in order, what `void` answers.

        Holds closed meanwhile (a capture racing) are read again and answered as `void`
        would; anything unexpected fails the whole run, which the runtime then redoes one
        by one (so each gets exactly the lone path's answer).
        """
        found = await store.holds_by_ids(self._pool, list(dict.fromkeys(hold_ids)))
        open_: dict[str, store.HoldRow] = {
            hold_id: hold for hold_id, hold in found.items() if hold.status == "held"
        }
        if open_:
            holds = list(open_.values())
            closed = await retrying(lambda: self._release_open(holds, "voided"), "void_holds")
        else:
            closed = {}
        results: list[HoldView | DomainError] = []
        for hold_id in hold_ids:
            hold = closed.get(hold_id) or found.get(hold_id)
            if hold is None:
                results.append(HoldNotFound("No such hold."))
            elif isinstance(hold, DomainError):
                results.append(hold)
            elif hold.status == "voided":
                results.append(hold_view(hold))
            else:
                results.append(HoldNotActive(f"The hold is {hold.status} already."))
        return results

    async def _release_open(
        self, holds: Sequence[store.HoldRow], reason: Literal["voided", "expired"]
    ) -> dict[str, store.HoldRow | DomainError]:
        """Release these holds (read open) in ONE transaction: each closed by one conditional
        UPDATE under its payer's and the holds account's locks, so a hold another step
        closed meanwhile is answered as it is now and released by no one twice.

        Its accounts are not created first: both were there when the hold was placed (the
        holds account made before it, the payer's wallet needed to pay it) and accounts are
        never deleted; were one missing, its posting would fail the run, moving nothing."""
        now = self._context.now()
        answers: dict[str, store.HoldRow | DomainError] = {}
        released: list[store.HoldRow] = []
        async with self._context.transaction(dedupe=False) as tx:
            booking = store.Booking(
                await store.lock_accounts(
                    tx,
                    [wallet(h.user_id, h.currency) for h in holds]
                    + [system(HOLDS, h.currency) for h in holds],
                )
            )
            closed = await store.close_holds(tx, [h.id for h in holds], status=reason, now=now)
            for hold in holds:
                row = closed.get(hold.id)
                if row is None:
                    # closed by another step since it was read: answered as `void` would
                    current = await store.hold_by_id(tx, hold.id)
                    if current is None:
                        answers[hold.id] = HoldNotActive("The hold is gone already.")
                    else:
                        answers[hold.id] = current
                    continue
                answers[hold.id] = row
                released.append(row)
                booking.post(
                    transfer_id=str(uuid.uuid4()),
                    kind="hold_release",
                    debit=system(HOLDS, row.currency),
                    credit=wallet(row.user_id, row.currency),
                    amount=row.amount,
                    now=now,
                    to_user_id=row.user_id,
                    reference=row.reference,
                    hold_id=row.id,
                )
                await tx.publish(
                    HoldReleased(
                        hold_id=row.id,
                        user_id=row.user_id,
                        amount=row.amount,
                        currency=row.currency,
                        reason=reason,
                        reference=row.reference,
                    )
                )
            await booking.flush(tx)
        for row in released:
            log.info("hold_released", hold_id=row.id, reason=reason, amount=row.amount)
        return answers

    async def expire(self, hold_id: str) -> None:
        """The hold's own timer (or the sweep): only an open hold past its time expires."""
        await self.expire_many([hold_id])

    async def expire_many(self, hold_ids: Sequence[str]) -> None:
        """Release the open holds past their time among these (a run of timers, the sweep's
        overdue holds told one by one) in ONE transaction: a run is at most the actor's
        `batch_size`, as every batch is.

        Exactly once whatever races it: a timer fired twice, an id named twice, a void or a
        capture committed meanwhile all meet the conditional close and release nothing.
        """
        found = await store.holds_by_ids(self._pool, list(dict.fromkeys(hold_ids)))
        # a hold not yet due (a clock moved back) is left: its sweep will come again
        due_by = self._context.clock() + 1.0
        due = [
            hold
            for hold in found.values()
            if hold.status == "held" and hold.expires_at.timestamp() <= due_by
        ]
        if due:
            await retrying(lambda: self._release_open(due, "expired"), "expire_holds")

    async def overdue(self, now: float) -> list[str]:
        """Open holds past their expiry at `now` (their timers were lost with a restart)."""
        return await store.overdue_holds(self._pool, at(now))


def _check(message: PlaceHold) -> list[AccountKey]:
    """What a lone hold checks before its transaction; the accounts it will touch."""
    check_key(message.idempotency_key)
    check_user_id(message.user_id, "$.user_id")
    check_amount(message.amount)
    check_currency(message.currency)
    expires_in = message.expires_in
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not math.isfinite(expires_in)
        or not 0 < expires_in <= HOLD_MAX_SECONDS
    ):
        raise InvalidPayment(
            f"A hold lasts more than 0 and at most {HOLD_MAX_SECONDS:.0f} seconds.",
            details={"field": "$.expires_in"},
        )
    return [wallet(message.user_id, message.currency), system(HOLDS, message.currency)]
