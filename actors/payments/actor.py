"""The payments actor: the ledger (wallets, transfers, holds, statement) over PostgreSQL.

The actor is the mailbox and its handlers; the work is done by its parts (see the package
docstring), `transfers`, `holds`, `wallets`, `topups`, each given the shard's `Context`
(`self.context(pool, clock)`: the database, the clock, transactions, timers).

Transfers are batched, as TigerBeetle does: a shard drains up to `batch_size` waiting
messages and `handle_batch` hands every run of consecutive transfers among them to
`Transfers.apply`, which commits the run in ONE database transaction (see transfers.py),
and every run of consecutive holds placed, captured, voided or expired (their timers) to
`Holds.apply` (`capture_many`, `void_many`, `expire_many`) the same way (see holds.py).
A lone message (and the runtime's one-by-one retry after a crashed batch) takes the same
path with a batch of one, so the results are the same.

Exactly-once without the inbox (a batching actor cannot dedupe by one envelope id): every
money-moving command carries an idempotency key, scoped by its payer (or hold), stored with
a fingerprint of the request and the first reply in the same transaction. The same key
and body replays that reply; another body is an IdempotencyConflict. Only successes are
remembered: a refused request (say, insufficient funds) can be retried with its key once
the wallet is topped up. Keys are kept `idempotency_retention` (48 h by default, >= 24 h).

Events go through the reliable hand-off (`tx.publish`) to the actors subscribed to them
where the node is composed: TransferCompleted, TransferFailed (refusals of transfers other
actors asked for: kind != "p2p"), HoldCaptured, HoldReleased, TopUpSucceeded, TopUpFailed.

Top-ups: the provider code calls `credit_top_up`, which credits the wallet from the
provider-clearing account once per top-up (a unique `external_id`), inside the caller's
transaction if it gives one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import structlog

from actors.payments import store
from actors.payments.holds import Holds
from actors.payments.messages import (
    CaptureHold,
    CreateTopUp,
    ExpireHold,
    GetCheckout,
    GetStatement,
    GetTopUp,
    GetTransfer,
    GetWallet,
    HandleWebhook,
    HoldView,
    PlaceHold,
    SandboxDecision,
    SandboxWebhook,
    StatementPage,
    TopUpView,
    Transfer,
    TransferView,
    VoidHold,
    WalletView,
    WebhookResult,
)
from actors.payments.topups import TopUps
from actors.payments.transfers import Transfers
from actors.payments.wallets import Wallets
from actors.runtime import (
    Actor,
    Clock,
    DomainError,
    Message,
    Transaction,
    UnhandledMessage,
    handles,
    wall_clock,
)

log = structlog.get_logger("actors.payments")

BATCH_SIZE = 256
# the messages whose consecutive runs commit in one transaction each
_BATCHED = (Transfer, PlaceHold, CaptureHold, VoidHold, ExpireHold)


class Payments(Actor):
    """Wallets, transfers, holds, top-ups and statements; all state lives in PostgreSQL (a
    shard keeps its users' wallets in memory too, checked against the tables at each read)."""

    batch_size = BATCH_SIZE
    idempotency_keys = store.KEYS

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        providers: Mapping[str, Any] | None = None,
        public_url: str = "",
        clock: Clock = wall_clock,
        idempotency_retention: float = 48 * 3600.0,
        maintenance_interval: float = 60.0,
        hot_wallets: bool = True,
    ) -> None:
        """`providers` (name → PaymentProvider, the first is the default) and `public_url`
        (where payers come back to) are for top-ups. `hot_wallets`: the owner shard keeps
        its users' wallets in memory, checked at each read (wallets.py); False reads the
        tables every time."""
        self._pool = pool
        self._clock = clock
        # never below a day: the contract promises keys are kept at least 24 hours
        self._retention = max(idempotency_retention, 24 * 3600.0)
        self._maintenance_interval = maintenance_interval
        context = self.context(pool, clock)
        self.transfers = Transfers(context)
        self.holds = Holds(context)
        self.wallets = Wallets(context, hot=hot_wallets)
        self.topups = TopUps(context, providers=providers or {}, public_url=public_url)

    # ── lifecycle ──────────────────────────────────────────────────────────────────────

    async def on_start(self) -> None:
        # one shard does the upkeep for all: they share the tables
        if self.shard == 0 and self._maintenance_interval > 0:
            self.every(self._maintenance_interval, self.maintain, "maintenance")
        self.prune_keys(
            self._pool, self._clock, retention=self._retention, interval=self._maintenance_interval
        )

    async def maintain(self) -> None:
        """Expire holds whose timers a restart lost."""
        now = self._clock()
        for hold_id in await self.holds.overdue(now):
            await self.tell(self.name, ExpireHold(hold_id=hold_id))

    # ── batches ────────────────────────────────────────────────────────────────────────

    async def handle_batch(self, messages: Sequence[Message]) -> Sequence[Any]:
        """Runs of consecutive transfers, and of holds placed, captured, voided or expired,
        in one transaction each; anything else alone, in mailbox order (so a GetWallet after
        a Transfer sees it). A run of one hold takes the lone path (`place_hold`,
        `capture_hold`, `void_hold`, `expire_hold`), as it always did."""
        results: list[Any] = []
        run: list[Message] = []
        for message in messages:
            if run and type(message) is not type(run[0]):
                results.extend(await self._run(run))
                run = []
            if type(message) in _BATCHED:
                run.append(message)
                continue
            results.append(await self._one(message))
        if run:
            results.extend(await self._run(run))
        return results

    async def _run(self, run: Sequence[Message]) -> Sequence[Any]:
        if type(run[0]) is Transfer:
            return await self.transfers.apply([m for m in run if isinstance(m, Transfer)])
        if len(run) == 1:
            return [await self._one(run[0])]
        if type(run[0]) is VoidHold:
            return await self.holds.void_many([m.hold_id for m in run if isinstance(m, VoidHold)])
        if type(run[0]) is CaptureHold:
            return await self.holds.capture_many([m for m in run if isinstance(m, CaptureHold)])
        if type(run[0]) is ExpireHold:
            await self.holds.expire_many([m.hold_id for m in run if isinstance(m, ExpireHold)])
            return [None] * len(run)
        return await self.holds.apply([m for m in run if isinstance(m, PlaceHold)])

    async def _one(self, message: Message) -> Any:
        handler = self.handler_for(type(message))
        if handler is None:
            return UnhandledMessage(f"{self.name} has no handler for {type(message).__name__}")
        try:
            return await handler(message)
        except DomainError as error:
            return error

    # ── transfers and reading ──────────────────────────────────────────────────────────

    @handles(Transfer)
    async def transfer(self, message: Transfer) -> TransferView:
        return await self.transfers.one(message)

    @handles(GetTransfer)
    async def get_transfer(self, message: GetTransfer) -> TransferView:
        return await self.transfers.get(message)

    @handles(GetWallet)
    async def get_wallet(self, message: GetWallet) -> WalletView:
        return await self.wallets.wallet(message)

    @handles(GetStatement)
    async def get_statement(self, message: GetStatement) -> StatementPage:
        return await self.wallets.statement(message)

    # ── holds ──────────────────────────────────────────────────────────────────────────

    @handles(PlaceHold)
    async def place_hold(self, message: PlaceHold) -> HoldView:
        return await self.holds.place(message)

    @handles(CaptureHold)
    async def capture_hold(self, message: CaptureHold) -> HoldView:
        return await self.holds.capture(message)

    @handles(VoidHold)
    async def void_hold(self, message: VoidHold) -> HoldView:
        return await self.holds.void(message.hold_id)

    @handles(ExpireHold)
    async def expire_hold(self, message: ExpireHold) -> None:
        await self.holds.expire(message.hold_id)

    # ── top-ups ────────────────────────────────────────────────────────────────────────

    @handles(CreateTopUp)
    async def create_top_up(self, message: CreateTopUp) -> TopUpView:
        return await self.topups.create(message)

    @handles(GetTopUp)
    async def get_top_up(self, message: GetTopUp) -> TopUpView:
        return await self.topups.get(message)

    @handles(GetCheckout)
    async def get_checkout(self, message: GetCheckout) -> TopUpView:
        return await self.topups.checkout(message)

    @handles(SandboxDecision)
    async def sandbox_decision(self, message: SandboxDecision) -> SandboxWebhook:
        return await self.topups.sandbox_decision(message)

    @handles(HandleWebhook)
    async def handle_webhook(self, message: HandleWebhook) -> WebhookResult:
        return await self.topups.webhook(message)

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
        """Credit a succeeded top-up once (see `TopUps.credit`); None when it was before."""
        return await self.topups.credit(
            top_up_id=top_up_id,
            user_id=user_id,
            amount=amount,
            currency=currency,
            event_id=event_id,
            tx=tx,
        )
