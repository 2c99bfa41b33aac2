"""Holds: money set aside on a wallet (say, a ride's upfront price), then captured for a
payee less a fee, voided, or expired by its own timer.

Placing moves the amount from the wallet to the holds account; capturing moves it on to the
payee and the fees account (and what is left back to the payer); voiding and expiring move
it back. Each step is one transaction that closes the hold with one conditional UPDATE, so
two steps racing on one hold cannot both win. Placing and capturing are idempotent by key.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from typing import Literal

import msgspec
import structlog

from actors.payments import store
from actors.payments.ledger import (
    FEES,
    HOLDS,
    AccountKey,
    capture_legs,
    check_amount,
    check_currency,
    check_fee,
    check_key,
    check_user_id,
    system,
    wallet,
)
from actors.payments.messages import (
    CaptureHold,
    ExpireHold,
    HoldCaptured,
    HoldNotActive,
    HoldNotFound,
    HoldReleased,
    HoldView,
    InvalidPayment,
    PlaceHold,
)
from actors.payments.shared import fingerprint, no_wallet, retrying
from actors.payments.views import hold_view
from actors.runtime import Context, at
from actors.runtime.idempotency import replay

log = structlog.get_logger("actors.payments")

HOLD_MAX_SECONDS = 30 * 24 * 3600.0


class Holds:
    """Places, captures, voids and expires holds; each hold has its own expiry timer."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def place(self, message: PlaceHold) -> HoldView:
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
        holds = system(HOLDS, message.currency)
        await store.ensure_accounts(self._pool, [holds])
        view, placed = await retrying(lambda: self._place(message, holds), "place_hold")
        if placed:
            self._context.schedule(expires_in, ExpireHold(hold_id=view.id))
            log.info("hold_placed", hold_id=view.id, user_id=view.user_id, amount=view.amount)
        return view

    async def _place(self, message: PlaceHold, holds: AccountKey) -> tuple[HoldView, bool]:
        now_s = self._context.clock()
        now = at(now_s)
        debit = wallet(message.user_id, message.currency)
        scope_key = (f"hold:{message.user_id}", message.idempotency_key)
        # the amount is left out: a retried hold answers the first one whatever it asks (a
        # ride's quote moves with the surge between a crash and its retry)
        print_ = fingerprint(msgspec.structs.replace(message, amount=1))
        async with self._context.transaction(dedupe=False) as tx:
            booking = store.Booking(await store.lock_accounts(tx, [debit, holds]))
            known = (await store.KEYS.recall_many(tx, [scope_key])).get(scope_key)
            if known is not None:
                return replay(known, print_, HoldView), False
            if not booking.has(debit):
                raise await no_wallet(tx, message.user_id, message.currency, message.amount)
            hold = store.HoldRow(
                id=str(uuid.uuid4()),
                user_id=message.user_id,
                currency=message.currency,
                amount=message.amount,
                captured=0,
                status="held",
                reference=message.reference,
                expires_at=at(now_s + message.expires_in),
                created_at=now,
            )
            booking.post(
                transfer_id=str(uuid.uuid4()),
                kind="hold",
                debit=debit,
                credit=holds,
                amount=message.amount,
                now=now,
                from_user_id=message.user_id,
                reference=message.reference,
                hold_id=hold.id,
            )
            await store.insert_hold(tx, hold)
            await booking.flush(tx)
            view = hold_view(hold)
            await store.KEYS.remember_many(
                tx, [(*scope_key, print_, msgspec.msgpack.encode(view), None)], now
            )
        return view, True

    async def capture(self, message: CaptureHold) -> HoldView:
        check_key(message.idempotency_key)
        check_amount(message.amount)
        check_fee(message.fee, message.amount)
        hold = await store.hold_by_id(self._pool, message.hold_id)
        if hold is None:
            raise HoldNotFound("No such hold.")
        if message.payee_user_id is not None:
            check_user_id(message.payee_user_id, "$.payee_user_id")
            if message.payee_user_id == hold.user_id:
                raise InvalidPayment(
                    "A hold is captured for someone else.", details={"field": "$.payee_user_id"}
                )
        accounts = [
            wallet(hold.user_id, hold.currency),
            system(HOLDS, hold.currency),
            system(FEES, hold.currency),
        ]
        if message.payee_user_id is not None:
            accounts.append(wallet(message.payee_user_id, hold.currency))
        await store.ensure_accounts(self._pool, accounts)
        return await retrying(lambda: self._capture(message, hold, accounts), "capture_hold")

    async def _capture(
        self, message: CaptureHold, hold: store.HoldRow, accounts: list[AccountKey]
    ) -> HoldView:
        now = self._context.now()
        scope_key = (f"capture:{hold.id}", message.idempotency_key)
        print_ = fingerprint(message)
        async with self._context.transaction(dedupe=False) as tx:
            booking = store.Booking(await store.lock_accounts(tx, accounts))
            known = (await store.KEYS.recall_many(tx, [scope_key])).get(scope_key)
            if known is not None:
                return replay(known, print_, HoldView)
            # checked against the hold's amount before it is closed: a refusal writes nothing
            legs = capture_legs(
                hold.amount,
                message.amount,
                message.fee,
                has_payee=message.payee_user_id is not None,
            )
            closed = await store.close_hold(
                tx, hold.id, status="captured", captured=message.amount, now=now
            )
            if closed is None:
                current = await store.hold_by_id(tx, hold.id)
                raise HoldNotActive(f"The hold is {current.status if current else 'gone'} already.")
            payer = wallet(hold.user_id, hold.currency)
            for leg in legs:
                credit, to_user = {
                    "payee": (
                        wallet(message.payee_user_id or "", hold.currency),
                        message.payee_user_id,
                    ),
                    "fees": (system(FEES, hold.currency), None),
                    "payer": (payer, hold.user_id),
                }[leg.to]
                booking.post(
                    transfer_id=str(uuid.uuid4()),
                    kind="capture" if leg.to != "payer" else "hold_release",
                    debit=system(HOLDS, hold.currency),
                    credit=credit,
                    amount=leg.amount,
                    now=now,
                    from_user_id=hold.user_id if leg.to != "payer" else None,
                    to_user_id=to_user,
                    reference=hold.reference,
                    hold_id=hold.id,
                )
            await booking.flush(tx)
            view = hold_view(closed)
            await store.KEYS.remember_many(
                tx, [(*scope_key, print_, msgspec.msgpack.encode(view), None)], now
            )
            await tx.publish(
                HoldCaptured(
                    hold_id=hold.id,
                    user_id=hold.user_id,
                    amount=message.amount,
                    currency=hold.currency,
                    reference=hold.reference,
                )
            )
        log.info("hold_captured", hold_id=hold.id, amount=message.amount, fee=message.fee)
        return view

    async def void(self, hold_id: str) -> HoldView:
        """Release a hold; voiding a voided hold again answers the same (a retry)."""
        return await self._release(hold_id, "voided")

    async def expire(self, hold_id: str) -> None:
        """The hold's own timer (or the sweep): only an open hold past its time expires."""
        hold = await store.hold_by_id(self._pool, hold_id)
        if hold is None or hold.status != "held":
            return
        if hold.expires_at.timestamp() > self._context.clock() + 1.0:
            return  # not yet (a clock moved back): the sweep will come again
        # captured or voided meanwhile: nothing to expire
        with contextlib.suppress(HoldNotActive):
            await self._release(hold.id, "expired")

    async def overdue(self, now: float) -> list[str]:
        """Open holds past their expiry at `now` (their timers were lost with a restart)."""
        return await store.overdue_holds(self._pool, at(now))

    async def _release(self, hold_id: str, reason: Literal["voided", "expired"]) -> HoldView:
        hold = await store.hold_by_id(self._pool, hold_id)
        if hold is None:
            raise HoldNotFound("No such hold.")
        if hold.status == reason:
            return hold_view(hold)
        if hold.status != "held":
            raise HoldNotActive(f"The hold is {hold.status} already.")
        accounts = [wallet(hold.user_id, hold.currency), system(HOLDS, hold.currency)]
        await store.ensure_accounts(self._pool, accounts)
        return await retrying(lambda: self._apply_release(hold, reason, accounts), "release_hold")

    async def _apply_release(
        self, hold: store.HoldRow, reason: Literal["voided", "expired"], accounts: list[AccountKey]
    ) -> HoldView:
        now = self._context.now()
        async with self._context.transaction(dedupe=False) as tx:
            booking = store.Booking(await store.lock_accounts(tx, accounts))
            closed = await store.close_hold(tx, hold.id, status=reason, captured=0, now=now)
            if closed is None:
                current = await store.hold_by_id(tx, hold.id)
                if current is not None and current.status == reason:
                    return hold_view(current)
                raise HoldNotActive(f"The hold is {current.status if current else 'gone'} already.")
            booking.post(
                transfer_id=str(uuid.uuid4()),
                kind="hold_release",
                debit=system(HOLDS, hold.currency),
                credit=wallet(hold.user_id, hold.currency),
                amount=hold.amount,
                now=now,
                to_user_id=hold.user_id,
                reference=hold.reference,
                hold_id=hold.id,
            )
            await booking.flush(tx)
            await tx.publish(
                HoldReleased(
                    hold_id=hold.id,
                    user_id=hold.user_id,
                    amount=hold.amount,
                    currency=hold.currency,
                    reason=reason,
                    reference=hold.reference,
                )
            )
        log.info("hold_released", hold_id=hold.id, reason=reason, amount=hold.amount)
        return hold_view(closed)
