"""Top-ups: checkouts at the payment provider, and its signed webhooks crediting wallets.

A mixin of the Payments actor (its handlers join the actor's own). A top-up row is made
(once per user and idempotency key) before the provider is called, so a retried request
reuses it and the provider's own idempotency (the top-up id) prevents a second checkout.
A webhook is verified by the provider adapter before anything moves; each provider event
is applied once (its id is recorded in the same transaction), and each top-up credits once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from actors.payments import topup_store
from actors.payments.ledger import check_amount, check_currency, check_key
from actors.payments.messages import (
    CreateTopUp,
    GetCheckout,
    GetTopUp,
    HandleWebhook,
    IdempotencyConflict,
    SandboxDecision,
    SandboxWebhook,
    TopUpFailed,
    TopUpNotFound,
    TopUpView,
    TransferView,
    UnknownPaymentProvider,
    WebhookResult,
)
from actors.payments.providers import PaymentProvider, provider_named
from actors.payments.providers.sandbox import SandboxCheckout, SandboxProvider
from actors.runtime import Message, handles

if TYPE_CHECKING:
    from actors.runtime.outbox import Transaction

log = structlog.get_logger("actors.payments")


class TopUps:
    """The top-up handlers; the Payments actor provides the attributes used here."""

    _pool: asyncpg.Pool
    _providers: dict[str, Any]
    _public_url: str
    _clock: Callable[[], float]

    if TYPE_CHECKING:

        def transaction(self, *, dedupe: bool = True) -> Transaction: ...

        async def _publish(self, tx: Transaction, event: Message) -> None: ...

        async def credit_top_up(
            self,
            *,
            top_up_id: str,
            user_id: str,
            amount: int,
            currency: str,
            event_id: str | None = None,
            tx: Transaction | None = None,
        ) -> TransferView | None: ...

    def _default_provider(self) -> tuple[str, PaymentProvider]:
        if not self._providers:
            raise UnknownPaymentProvider("no payment provider is configured")
        name = next(iter(self._providers))
        provider: PaymentProvider = self._providers[name]
        return name, provider

    @handles(CreateTopUp)
    async def create_top_up(self, message: CreateTopUp) -> TopUpView:
        check_key(message.idempotency_key)
        check_amount(message.amount)
        check_currency(message.currency)
        name, provider = self._default_provider()
        row = await topup_store.insert_or_get(
            self._pool,
            top_up_id=str(uuid.uuid4()),
            user_id=message.user_id,
            key=message.idempotency_key,
            amount=message.amount,
            currency=message.currency,
            provider=name,
        )
        if (row["amount"], row["currency"]) != (message.amount, message.currency):
            raise IdempotencyConflict("this idempotency key was used for another top-up")
        if row["checkout_id"] is None:
            checkout = await provider.create_checkout(
                top_up_id=row["id"],
                amount=row["amount"],
                currency=row["currency"],
                user_id=row["user_id"],
                success_url=f"{self._public_url}/api/v1/wallet/top-ups/{row['id']}",
                cancel_url=f"{self._public_url}/api/v1/wallet/top-ups/{row['id']}",
            )
            row = await topup_store.set_checkout(
                self._pool, row["id"], checkout.provider_checkout_id, checkout.url
            )
            log.info("top_up_created", top_up_id=row["id"], provider=name)
        return topup_store.view(row)

    @handles(GetTopUp)
    async def get_top_up(self, message: GetTopUp) -> TopUpView:
        row = await topup_store.by_id(self._pool, message.top_up_id)
        if row is None or row["user_id"] != message.user_id:
            raise TopUpNotFound("no top-up of yours has this id")
        return topup_store.view(row)

    @handles(GetCheckout)
    async def get_checkout(self, message: GetCheckout) -> TopUpView:
        row = await topup_store.by_checkout(self._pool, message.checkout_id)
        if row is None:
            raise TopUpNotFound("no checkout has this id")
        return topup_store.view(row)

    @handles(SandboxDecision)
    async def sandbox_decision(self, message: SandboxDecision) -> SandboxWebhook:
        sandbox = self._providers.get("sandbox")
        if not isinstance(sandbox, SandboxProvider):
            raise UnknownPaymentProvider("the sandbox provider is not configured")
        row = await topup_store.by_checkout(self._pool, message.checkout_id)
        if row is None:
            raise TopUpNotFound("no checkout has this id")
        checkout = SandboxCheckout(
            checkout_id=row["checkout_id"],
            top_up_id=row["id"],
            user_id=row["user_id"],
            amount=row["amount"],
            currency=row["currency"],
        )
        body, signature = sandbox.webhook_for(checkout, paid=message.pay, now=self._clock())
        return SandboxWebhook(body=body, signature=signature)

    @handles(HandleWebhook)
    async def handle_webhook(self, message: HandleWebhook) -> WebhookResult:
        provider = provider_named(self._providers, message.provider)
        # verification first: a bad signature or stale timestamp raises, nothing moves
        event = provider.parse_webhook(message.body, message.signature, now=self._clock())
        if event.kind == "ignored":
            return WebhookResult(event_id=event.event_id, applied=False)
        async with self.transaction(dedupe=False) as tx:
            connection = tx.connection
            if not await topup_store.first_sighting(connection, message.provider, event.event_id):
                log.info("webhook_replayed", provider=message.provider, event_id=event.event_id)
                return WebhookResult(event_id=event.event_id, applied=False)
            row = await topup_store.lock(connection, event.top_up_id)
            if row is None or row["provider"] != message.provider:
                log.warning("webhook_for_unknown_top_up", event_id=event.event_id)
                return WebhookResult(event_id=event.event_id, applied=False)
            if (event.amount, event.currency) != (row["amount"], row["currency"]):
                # a signed event that names another amount than we asked for: never credit it
                log.error("webhook_amount_mismatch", top_up_id=row["id"], event_id=event.event_id)
                return WebhookResult(event_id=event.event_id, applied=False)
            if row["status"] != "pending":
                return WebhookResult(event_id=event.event_id, applied=False)
            if event.kind == "checkout.completed":
                await topup_store.set_status(connection, row["id"], "succeeded")
                await self.credit_top_up(
                    top_up_id=row["id"],
                    user_id=row["user_id"],
                    amount=row["amount"],
                    currency=row["currency"],
                    event_id=event.event_id,
                    tx=tx,
                )
            else:
                await topup_store.set_status(connection, row["id"], "failed")
                await self._publish(
                    tx,
                    TopUpFailed(
                        top_up_id=row["id"],
                        user_id=row["user_id"],
                        amount=row["amount"],
                        currency=row["currency"],
                    ),
                )
            log.info("webhook_applied", top_up_id=row["id"], kind=event.kind)
        return WebhookResult(event_id=event.event_id, applied=True)
