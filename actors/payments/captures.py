"""Holds captured in batches: a run of CaptureHold waiting together in a shard's mailbox
commits in ONE transaction, each message with its own answer (a HoldView or the DomainError
a lone capture would give), as holds placed and voided do (see holds.py).

A capture takes `amount` (fee included) of a hold: `amount - fee` to the payee (to the fees
account when there is none), `fee` to the fees account, what is left back to the payer
(`ledger.capture_legs`). A batch has the shape all the actor's batches share (batches.py):
it reads its holds, checks each message as a lone capture does (key, amount, fee, the hold,
the payee), creates the accounts it needs in autocommit statements, then in its transaction
locks the accounts (id order, as every ledger step), reads the holds again (settled under
those locks: see `Captures._open`) and answers each message in mailbox order against that
state kept in memory: a key seen before replays its first answer (so a retry never
captures twice, in this batch or a later one), a closed hold or an amount over the hold is
refused alone and changes nothing. The captured holds are closed in one conditional
UPDATE, the legs, entries and balances written in one statement (`store.Booking`), the
keys and the HoldCaptured events in the same transaction. A lone capture is a run of one.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

import structlog

from actors.payments import store
from actors.payments.batches import Answers, Batch, Batched, Checked, Posted, check_each
from actors.payments.ledger import (
    FEES,
    HOLDS,
    AccountKey,
    capture_legs,
    check_amount,
    check_fee,
    check_key,
    check_user_id,
    system,
    wallet,
)
from actors.payments.messages import (
    CaptureHold,
    HoldCaptured,
    HoldNotActive,
    HoldNotFound,
    HoldView,
    InvalidPayment,
)
from actors.payments.store.holds import capture_holds
from actors.payments.views import hold_view
from actors.runtime import DomainError, Transaction

log = structlog.get_logger("actors.payments")


@dataclasses.dataclass(slots=True)
class _Holds:
    """The holds one capture batch reads, as it has decided them so far."""

    holds: dict[str, store.HoldRow]
    captured: dict[str, int] = dataclasses.field(default_factory=dict)


class Captures(Batched[CaptureHold, HoldView, _Holds]):
    """Captures holds, a run of CaptureHold in one transaction (a lone one as a run of one)."""

    what = "capture_holds"
    view = HoldView

    async def _check(self, messages: Sequence[CaptureHold]) -> list[Checked]:
        found = await store.holds_by_ids(
            self._pool, list(dict.fromkeys(m.hold_id for m in messages))
        )
        return check_each(messages, lambda m: _check(m, found.get(m.hold_id)))

    async def _prepare(self, fine: Sequence[CaptureHold], accounts: Sequence[AccountKey]) -> None:
        await store.ensure_accounts(self._pool, accounts)

    async def _open(self, tx: Transaction, fine: Sequence[CaptureHold]) -> _Holds:
        # read, not locked: every step that writes a hold (placing, capturing, voiding,
        # expiring; only payments' store touches the table) holds its payer's wallet
        # and the holds account locked first, and this batch holds them now, so no other
        # step on these holds is in flight and this read (a snapshot taken after those
        # locks, READ COMMITTED) is how they stay until the commit. Steps on one hold do
        # run on two shards: its expiry timer on the payer's (which placed it), its
        # captures and voids on the hold's. Exactly-once does not rest on this read: the
        # conditional close in `_write` takes an open hold once, and a hold it finds
        # closed fails the whole batch (rolled back, then redone one by one).
        return _Holds(await store.holds_by_ids(tx, sorted({m.hold_id for m in fine})))

    def _scope_key(self, message: CaptureHold) -> tuple[str, str]:
        return (f"capture:{message.hold_id}", message.idempotency_key)

    async def _post(self, batch: Batch[_Holds], message: CaptureHold) -> HoldView:
        return _capture(batch, message)

    async def _write(self, batch: Batch[_Holds]) -> None:
        captured = batch.state.captured
        closed = await capture_holds(batch.tx, list(captured.items()), batch.now)
        if len(closed) != len(captured):
            # their accounts are locked: never, unless a step skipped the lock order
            raise RuntimeError("a locked open hold could not be closed")

    def _done(self, results: Answers[HoldView], posted: Posted[CaptureHold, HoldView]) -> None:
        for message, view in posted:
            log.info("hold_captured", hold_id=view.id, amount=message.amount)


def _check(message: CaptureHold, hold: store.HoldRow | None) -> list[AccountKey]:
    """What a lone capture checks before its transaction, in its order; the accounts the
    capture will touch."""
    check_key(message.idempotency_key)
    check_amount(message.amount)
    check_fee(message.fee, message.amount)
    if hold is None:
        raise HoldNotFound("No such hold.")
    accounts = [
        wallet(hold.user_id, hold.currency),
        system(HOLDS, hold.currency),
        system(FEES, hold.currency),
    ]
    if message.payee_user_id is not None:
        check_user_id(message.payee_user_id, "$.payee_user_id")
        if message.payee_user_id == hold.user_id:
            raise InvalidPayment(
                "A hold is captured for someone else.", details={"field": "$.payee_user_id"}
            )
        accounts.append(wallet(message.payee_user_id, hold.currency))
    return accounts


def _capture(batch: Batch[_Holds], message: CaptureHold) -> HoldView:
    """One capture against the batch's locked state: its answer, its legs posted in memory."""
    hold = batch.state.holds.get(message.hold_id)
    if hold is None:
        raise HoldNotActive("The hold is gone already.")
    # checked against the hold's amount before its state, as a lone capture always did
    legs = capture_legs(
        hold.amount, message.amount, message.fee, has_payee=message.payee_user_id is not None
    )
    if hold.status != "held":
        raise HoldNotActive(f"The hold is {hold.status} already.")
    payer = wallet(hold.user_id, hold.currency)
    credits = {
        "payee": (wallet(message.payee_user_id or "", hold.currency), message.payee_user_id),
        "fees": (system(FEES, hold.currency), None),
        "payer": (payer, hold.user_id),
    }
    try:
        for leg in legs:
            credit, to_user = credits[leg.to]
            batch.booking.post(
                transfer_id=str(uuid.uuid4()),
                kind="capture" if leg.to != "payer" else "hold_release",
                debit=system(HOLDS, hold.currency),
                credit=credit,
                amount=leg.amount,
                now=batch.now,
                from_user_id=hold.user_id if leg.to != "payer" else None,
                to_user_id=to_user,
                reference=hold.reference,
                hold_id=hold.id,
            )
    except DomainError as error:
        # the legs were checked above and the holds account covers its open holds: a
        # refusal here would leave some legs posted, so the whole batch fails (and the
        # runtime redoes it one by one)
        raise RuntimeError(f"a capture's leg was refused: {error!r}") from error
    closed = dataclasses.replace(hold, status="captured", captured=message.amount)
    # another key later in the batch finds it captured
    batch.state.holds[hold.id] = closed
    batch.state.captured[hold.id] = message.amount
    event = HoldCaptured(
        hold_id=hold.id,
        user_id=hold.user_id,
        amount=message.amount,
        currency=hold.currency,
        reference=hold.reference,
    )
    batch.events.append((event, None))
    return hold_view(closed)
