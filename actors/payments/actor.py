"""The payments actor: the ledger (wallets, transfers, holds, statement) over PostgreSQL.

Transfers are batched, as TigerBeetle does: a shard drains up to `batch_size` waiting
messages and applies every transfer among them in ONE database transaction. It locks all
the accounts involved in one statement ordered by account id (the one fixed order, so two
shards never deadlock), then checks and applies each transfer in memory, in mailbox order:
a transfer that fails its checks (funds, idempotency conflict, bad input) is refused alone
and the rest commit. Entries, balances, idempotency rows and the events go in with that
one commit. A lone message (and the runtime's one-by-one retry after a crashed batch)
takes the same path with a batch of one, so the results are the same.

Exactly-once without the inbox (a batching actor cannot dedupe by one envelope id): every
money-moving command carries an idempotency key, scoped by its payer (or hold), stored with
a fingerprint of the request and the first reply in the same transaction. The same key
and body replays that reply; another body is an IdempotencyConflict. Only successes are
remembered: a refused request (say, insufficient funds) can be retried with its key once
the wallet is topped up. Keys are kept `idempotency_retention` (48 h by default, >= 24 h).

Events go through the reliable hand-off (`tx.tell`) to the actors named in `subscribers`
(none by default): TransferCompleted, TransferFailed (refusals of transfers other actors
asked for: kind != "p2p"), HoldCaptured, HoldReleased, TopUpSucceeded.

Top-ups: the provider code calls `credit_top_up`, which credits the wallet from the
provider-clearing account once per top-up (a unique `external_id`), inside the caller's
transaction if it gives one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

import aiohttp
import asyncpg
import msgspec
import structlog

from actors.payments import store
from actors.payments.ledger import (
    CLEARING,
    FEES,
    HOLDS,
    STATEMENT_MAX,
    AccountKey,
    capture_legs,
    check_amount,
    check_currency,
    check_fee,
    check_key,
    check_transfer,
    check_user_id,
    require_funds,
    system,
    wallet,
)
from actors.payments.messages import (
    Balance,
    CaptureHold,
    CurrencyMismatch,
    ExpireHold,
    GetStatement,
    GetTransfer,
    GetWallet,
    HoldCaptured,
    HoldNotActive,
    HoldNotFound,
    HoldReleased,
    HoldView,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidPayment,
    PlaceHold,
    StatementEntry,
    StatementPage,
    TopUpSucceeded,
    Transfer,
    TransferCompleted,
    TransferFailed,
    TransferNotFound,
    TransferView,
    VoidHold,
    WalletView,
)
from actors.payments.topups import TopUps
from actors.runtime import Actor, DomainError, Message, Transaction, UnhandledMessage, handles
from actors.runtime.clock import rfc3339

log = structlog.get_logger("actors.payments")

BATCH_SIZE = 256
HOLD_MAX_SECONDS = 30 * 24 * 3600.0
# a deadlock or serialization failure is retried this many times before it surfaces
_TX_RETRIES = 5
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)

V = TypeVar("V", TransferView, HoldView)


def fingerprint(message: Message) -> bytes:
    """SHA-256 of the canonical request (msgpack of the frozen struct, fields in order)."""
    return hashlib.sha256(msgspec.msgpack.encode(message)).digest()


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


def replay(known: store.Remembered, print_: bytes, kind: type[V]) -> V:
    """The first reply for this key, or IdempotencyConflict when the body differs."""
    if known.fingerprint != print_:
        raise IdempotencyConflict(
            "This idempotency key was used before with a different request.",
            details={"field": "idempotency_key"},
        )
    return msgspec.msgpack.decode(known.reply, type=kind)


async def _retrying(attempt: Callable[[], Any], what: str) -> Any:
    """Run a transaction, again on a deadlock or serialization failure (never seen by
    clients: the fixed lock order makes them rare, and a retry is always safe)."""
    for tries in range(1, _TX_RETRIES + 1):
        try:
            return await attempt()
        except _RETRYABLE as error:
            if tries == _TX_RETRIES:
                raise
            log.warning("payments_tx_retry", what=what, attempt=tries, error=type(error).__name__)
            await asyncio.sleep(0.005 * 2**tries)
    raise AssertionError("unreachable")


class Payments(TopUps, Actor):
    """Wallets, transfers, holds and statements; all state lives in PostgreSQL."""

    batch_size = BATCH_SIZE

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        providers: Mapping[str, Any] | None = None,
        http: aiohttp.ClientSession | None = None,
        public_url: str = "",
        clock: Callable[[], float] = time.time,
        subscribers: Mapping[type, Sequence[str]] | None = None,
        idempotency_retention: float = 48 * 3600.0,
        maintenance_interval: float = 60.0,
    ) -> None:
        """`subscribers` maps an event type to the actor types that hear it (none by
        default). `providers`, `http` and `public_url` are for the top-up code."""
        self._pool = pool
        self._providers = dict(providers or {})
        self._http = http
        self._public_url = public_url.rstrip("/")
        self._clock = clock
        self._subscribers = {kind: tuple(names) for kind, names in (subscribers or {}).items()}
        # never below a day: the contract promises keys are kept at least 24 hours
        self._retention = max(idempotency_retention, 24 * 3600.0)
        self._maintenance_interval = maintenance_interval
        # accounts are never deleted, so one seen to exist needs no pre-check again
        self._known_accounts: set[AccountKey] = set()

    # ── lifecycle ──────────────────────────────────────────────────────────────────────

    async def on_start(self) -> None:
        # one shard does the upkeep for all: they share the tables
        if self.shard == 0 and self._maintenance_interval > 0:
            self.every(self._maintenance_interval, self.maintain, "maintenance")

    async def maintain(self) -> None:
        """Forget old idempotency keys; expire holds whose timers a restart lost."""
        now = self._clock()
        pruned = await store.prune_idempotency(self._pool, store.at(now - self._retention))
        if pruned:
            log.info("idempotency_keys_pruned", rows=pruned)
        for hold_id in await store.overdue_holds(self._pool, store.at(now)):
            await self.tell(self.name, ExpireHold(hold_id=hold_id))

    def _now(self) -> datetime:
        return store.at(self._clock())

    async def _publish(self, tx: Transaction, event: Message, also: str | None = None) -> None:
        """To the subscribers of the event's type, and to `also` (the asker's own actor)."""
        targets = self._subscribers.get(type(event), ())
        for target in targets:
            await tx.tell(target, event)
        if also is not None and also not in targets:
            await tx.tell(also, event)

    # ── batches ────────────────────────────────────────────────────────────────────────

    async def handle_batch(self, messages: Sequence[Message]) -> Sequence[Any]:
        """Runs of consecutive transfers in one transaction each; anything else alone, in
        mailbox order (so a GetWallet after a Transfer sees it)."""
        results: list[Any] = []
        run: list[Transfer] = []
        for message in messages:
            if type(message) is Transfer:
                run.append(message)
                continue
            if run:
                results.extend(await self._transfers(run))
                run = []
            results.append(await self._one(message))
        if run:
            results.extend(await self._transfers(run))
        return results

    async def _one(self, message: Message) -> Any:
        handler = self.handler_for(type(message))
        if handler is None:
            return UnhandledMessage(f"{self.name} has no handler for {type(message).__name__}")
        try:
            return await handler(message)
        except DomainError as error:
            return error

    async def _before_commit(self, batch: Sequence[Transfer]) -> None:
        """Called inside a transfer batch's transaction, after its writes (a test hook)."""

    # ── transfers ──────────────────────────────────────────────────────────────────────

    @handles(Transfer)
    async def transfer(self, message: Transfer) -> TransferView:
        result = (await self._transfers([message]))[0]
        if isinstance(result, DomainError):
            raise result
        assert isinstance(result, TransferView)
        return result

    async def _transfers(self, messages: Sequence[Transfer]) -> list[TransferView | DomainError]:
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
        # payees' wallets are created before the transaction (see store.py), only for
        # payers who have a wallet to pay from; a payer's is never created: no wallet, no
        # money (and a refused transfer leaves no empty wallet behind)
        known = self._known_accounts
        debits = {wallet(m.from_user_id, m.currency) for m in fine}
        unknown = debits - known
        if unknown:
            known.update(await store.existing_accounts(self._pool, unknown))
        credits = {_credit_account(m) for m in fine if wallet(m.from_user_id, m.currency) in known}
        if credits - known:
            await store.ensure_accounts(self._pool, credits - known)
            known.update(credits)
        results: list[TransferView | DomainError] = await _retrying(
            lambda: self._apply_transfers(messages, checked), "transfers"
        )
        return results

    async def _apply_transfers(
        self, messages: Sequence[Transfer], checked: Sequence[DomainError | None]
    ) -> list[TransferView | DomainError]:
        results: list[TransferView | DomainError] = []
        now = self._now()
        fine = [m for m, error in zip(messages, checked, strict=True) if error is None]
        async with self.transaction(dedupe=False) as tx:
            booking = store.Booking(
                await store.lock_accounts(
                    tx,
                    [wallet(m.from_user_id, m.currency) for m in fine]
                    + [_credit_account(m) for m in fine],
                )
            )
            memory = await store.remembered(tx, [_scope_key(m) for m in fine])
            new_keys: list[tuple[str, str, bytes, bytes]] = []
            for message, error in zip(messages, checked, strict=True):
                try:
                    if error is not None:
                        raise error
                    view, new_key = await self._apply_one(tx, booking, memory, message, now)
                except DomainError as refusal:
                    results.append(refusal)
                    if message.kind != "p2p":
                        await self._publish(
                            tx,
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
            await store.remember(tx, new_keys, now)
            await self._before_commit(messages)
        applied = sum(1 for result in results if isinstance(result, TransferView))
        log.info("transfers_applied", batch=len(messages), accepted=applied)
        return results

    async def _apply_one(
        self,
        tx: Transaction,
        booking: store.Booking,
        memory: dict[tuple[str, str], store.Remembered],
        message: Transfer,
        now: datetime,
    ) -> tuple[TransferView, tuple[str, str, bytes, bytes] | None]:
        scope_key = _scope_key(message)
        print_ = fingerprint(message)
        known = memory.get(scope_key)
        if known is not None:
            return replay(known, print_, TransferView), None
        debit = wallet(message.from_user_id, message.currency)
        if not booking.has(debit):
            raise await self._no_wallet(tx, message.from_user_id, message.currency, message.amount)
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
        memory[scope_key] = store.Remembered(print_, reply)
        await self._publish(
            tx,
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
        return view, (scope_key[0], scope_key[1], print_, reply)

    async def _no_wallet(
        self, db: store.Executor, user_id: str, currency: str, amount: int
    ) -> DomainError:
        """Why a payer with no wallet in this currency cannot pay: their money is in other
        currencies (CurrencyMismatch), or they have none at all (InsufficientFunds)."""
        others = await store.user_currencies(db, user_id)
        if others:
            return CurrencyMismatch(
                f"There is no {currency} wallet to pay from; this account holds "
                f"{', '.join(others)}.",
                details={"field": "$.currency", "wallets": others},
            )
        try:
            require_funds(0, amount, currency)
        except InsufficientFunds as error:
            return error
        raise AssertionError("a positive amount always exceeds an empty wallet")

    # ── reading ────────────────────────────────────────────────────────────────────────

    @handles(GetWallet)
    async def get_wallet(self, message: GetWallet) -> WalletView:
        rows = await store.wallet(self._pool, message.user_id)
        return WalletView(
            balances=[
                Balance(currency=row.currency, available=row.available, held=row.held)
                for row in rows
            ]
        )

    @handles(GetTransfer)
    async def get_transfer(self, message: GetTransfer) -> TransferView:
        row = await store.transfer_by_id(self._pool, message.transfer_id)
        if row is None or message.user_id not in (row.from_user_id, row.to_user_id):
            # someone else's transfer is as good as missing: no probing of ids
            raise TransferNotFound("No such transfer.")
        return transfer_view(row)

    @handles(GetStatement)
    async def get_statement(self, message: GetStatement) -> StatementPage:
        limit = message.limit
        if type(limit) is not int or not 1 <= limit <= STATEMENT_MAX:
            raise InvalidPayment(
                f"A page holds 1 to {STATEMENT_MAX} entries.", details={"field": "$.limit"}
            )
        before: int | None = None
        if message.cursor is not None:
            if (
                not (message.cursor.isascii() and message.cursor.isdigit())
                or len(message.cursor) > 18
            ):
                raise InvalidPayment("This cursor is not valid.", details={"field": "$.cursor"})
            before = int(message.cursor)
        # one more than asked: whether there is a next page, without a count
        rows = await store.statement(self._pool, message.user_id, limit=limit + 1, before=before)
        page = rows[:limit]
        items = [_statement_entry(row, message.user_id) for row in page]
        more = len(rows) > limit
        return StatementPage(items=items, next_cursor=str(page[-1].entry_id) if more else None)

    # ── holds ──────────────────────────────────────────────────────────────────────────

    @handles(PlaceHold)
    async def place_hold(self, message: PlaceHold) -> HoldView:
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
        view, placed = await _retrying(lambda: self._place(message, holds), "place_hold")
        if placed:
            self.schedule(expires_in, ExpireHold(hold_id=view.id))
            log.info("hold_placed", hold_id=view.id, user_id=view.user_id, amount=view.amount)
        return view  # type: ignore[no-any-return]

    async def _place(self, message: PlaceHold, holds: AccountKey) -> tuple[HoldView, bool]:
        now_s = self._clock()
        now = store.at(now_s)
        debit = wallet(message.user_id, message.currency)
        scope_key = (f"hold:{message.user_id}", message.idempotency_key)
        print_ = fingerprint(message)
        async with self.transaction(dedupe=False) as tx:
            booking = store.Booking(await store.lock_accounts(tx, [debit, holds]))
            known = (await store.remembered(tx, [scope_key])).get(scope_key)
            if known is not None:
                return replay(known, print_, HoldView), False
            if not booking.has(debit):
                raise await self._no_wallet(tx, message.user_id, message.currency, message.amount)
            hold = store.HoldRow(
                id=str(uuid.uuid4()),
                user_id=message.user_id,
                currency=message.currency,
                amount=message.amount,
                captured=0,
                status="held",
                reference=message.reference,
                expires_at=store.at(now_s + message.expires_in),
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
            await store.remember(tx, [(*scope_key, print_, msgspec.msgpack.encode(view))], now)
        return view, True

    @handles(CaptureHold)
    async def capture_hold(self, message: CaptureHold) -> HoldView:
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
        view: HoldView = await _retrying(
            lambda: self._capture(message, hold, accounts), "capture_hold"
        )
        return view

    async def _capture(
        self, message: CaptureHold, hold: store.HoldRow, accounts: list[AccountKey]
    ) -> HoldView:
        now = self._now()
        scope_key = (f"capture:{hold.id}", message.idempotency_key)
        print_ = fingerprint(message)
        async with self.transaction(dedupe=False) as tx:
            booking = store.Booking(await store.lock_accounts(tx, accounts))
            known = (await store.remembered(tx, [scope_key])).get(scope_key)
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
            await store.remember(tx, [(*scope_key, print_, msgspec.msgpack.encode(view))], now)
            await self._publish(
                tx,
                HoldCaptured(
                    hold_id=hold.id,
                    user_id=hold.user_id,
                    amount=message.amount,
                    currency=hold.currency,
                    reference=hold.reference,
                ),
            )
        log.info("hold_captured", hold_id=hold.id, amount=message.amount, fee=message.fee)
        return view

    @handles(VoidHold)
    async def void_hold(self, message: VoidHold) -> HoldView:
        """Release a hold; voiding a voided hold again answers the same (a retry)."""
        return await self._release(message.hold_id, "voided")

    @handles(ExpireHold)
    async def expire_hold(self, message: ExpireHold) -> None:
        """The hold's own timer (or the sweep): only an open hold past its time expires."""
        hold = await store.hold_by_id(self._pool, message.hold_id)
        if hold is None or hold.status != "held":
            return
        if hold.expires_at.timestamp() > self._clock() + 1.0:
            return  # not yet (a clock moved back): the sweep will come again
        # captured or voided meanwhile: nothing to expire
        with contextlib.suppress(HoldNotActive):
            await self._release(hold.id, "expired")

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
        view: HoldView = await _retrying(
            lambda: self._apply_release(hold, reason, accounts), "release_hold"
        )
        return view

    async def _apply_release(
        self, hold: store.HoldRow, reason: Literal["voided", "expired"], accounts: list[AccountKey]
    ) -> HoldView:
        now = self._now()
        async with self.transaction(dedupe=False) as tx:
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
            await self._publish(
                tx,
                HoldReleased(
                    hold_id=hold.id,
                    user_id=hold.user_id,
                    amount=hold.amount,
                    currency=hold.currency,
                    reason=reason,
                    reference=hold.reference,
                ),
            )
        log.info("hold_released", hold_id=hold.id, reason=reason, amount=hold.amount)
        return hold_view(closed)

    # ── top-ups (called by the provider code) ──────────────────────────────────────────

    async def credit_top_up(
        self,
        *,
        top_up_id: str,
        user_id: str,
        amount: int,
        currency: str,
        event_id: str | None = None,
        tx: Transaction | None = None,
    ) -> TransferView | None:
        """Credit a succeeded top-up: provider clearing → the user's wallet, once.

        Once per top-up (`payment_transfers.external_id = "top_up:<id>"`, unique), so a
        replayed provider event, or two events for one payment, credit once: the second
        call returns None. With `tx` (the webhook handler's open transaction, in which it
        marks its top-up row) the credit and TopUpSucceeded commit with it; without, in a
        transaction of their own. Safe to call while `tx` is open: the accounts are created
        beforehand on another connection.
        """
        check_user_id(user_id, "$.user_id")
        check_amount(amount)
        check_currency(currency)
        accounts = [system(CLEARING, currency), wallet(user_id, currency)]
        await store.ensure_accounts(self._pool, accounts)
        if tx is not None:
            return await self._credit(tx, top_up_id, user_id, amount, currency, accounts, event_id)

        async def own() -> TransferView | None:
            async with self.transaction(dedupe=False) as own_tx:
                return await self._credit(
                    own_tx, top_up_id, user_id, amount, currency, accounts, event_id
                )

        result: TransferView | None = await _retrying(own, "credit_top_up")
        return result

    async def _credit(
        self,
        tx: Transaction,
        top_up_id: str,
        user_id: str,
        amount: int,
        currency: str,
        accounts: list[AccountKey],
        event_id: str | None,
    ) -> TransferView | None:
        booking = store.Booking(await store.lock_accounts(tx, accounts))
        external_id = f"top_up:{top_up_id}"
        if await store.transfer_by_external_id(tx, external_id) is not None:
            log.info("top_up_already_credited", top_up_id=top_up_id, event_id=event_id)
            return None
        row = booking.post(
            transfer_id=str(uuid.uuid4()),
            kind="top_up",
            debit=accounts[0],
            credit=accounts[1],
            amount=amount,
            now=self._now(),
            to_user_id=user_id,
            reference=top_up_id,
            external_id=external_id,
        )
        await booking.flush(tx)
        await self._publish(
            tx,
            TopUpSucceeded(top_up_id=top_up_id, user_id=user_id, amount=amount, currency=currency),
        )
        log.info("top_up_credited", top_up_id=top_up_id, user_id=user_id, amount=amount)
        return transfer_view(row)


def _credit_account(message: Transfer) -> AccountKey:
    if message.to_user_id is None:
        return system(FEES, message.currency)
    return wallet(message.to_user_id, message.currency)


def _scope_key(message: Transfer) -> tuple[str, str]:
    # keys are the payer's own: two users may pick the same key without colliding
    return (f"transfer:{message.from_user_id}", message.idempotency_key)


def _statement_entry(row: store.StatementRow, user_id: str) -> StatementEntry:
    incoming = row.side == "credit"
    counterparty = row.from_user_id if incoming else row.to_user_id
    return StatementEntry(
        transfer_id=row.transfer_id,
        amount=row.amount if incoming else -row.amount,
        currency=row.currency,
        kind=row.kind,
        counterparty_user_id=None if counterparty == user_id else counterparty,
        created_at=rfc3339(row.created_at),
        note=row.note,
        balance_after=row.balance_after,
    )
