"""Top-ups: checkouts at the payment provider, and its signed webhooks crediting wallets.

A top-up row is made (once per user and idempotency key) before the provider is called, so
a retried request reuses it and the provider's own idempotency (the top-up id) prevents a
second checkout. A webhook is verified by the provider adapter before anything moves; each
provider event is applied once (its id is recorded in the same transaction), and each
top-up credits once: provider clearing → the user's wallet, under a unique `external_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog

from actors.payments import store
from actors.payments.ledger import (
    CLEARING,
    AccountKey,
    check_amount,
    check_currency,
    check_key,
    check_user_id,
    system,
    wallet,
)
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
    TopUpSucceeded,
    TopUpView,
    TransferView,
    UnknownPaymentProvider,
    WebhookResult,
)
from actors.payments.providers import PaymentProvider, provider_named
from actors.payments.providers.sandbox import SandboxCheckout, SandboxProvider
from actors.payments.shared import retrying
from actors.payments.views import transfer_view
from actors.runtime import Context, Transaction

log = structlog.get_logger("actors.payments")


class TopUps:
    """Top-ups through the configured providers (the first one is the default)."""

    def __init__(self, context: Context, *, providers: Mapping[str, Any], public_url: str) -> None:
        self._context = context
        self._pool = context.pool
        self._providers = dict(providers)
        self._public_url = public_url.rstrip("/")

    def _default_provider(self) -> tuple[str, PaymentProvider]:
        if not self._providers:
            raise UnknownPaymentProvider("no payment provider is configured")
        name = next(iter(self._providers))
        provider: PaymentProvider = self._providers[name]
        return name, provider

    async def create(self, message: CreateTopUp) -> TopUpView:
        check_key(message.idempotency_key)
        check_amount(message.amount)
        check_currency(message.currency)
        name, provider = self._default_provider()
        row = await store.insert_top_up(
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
            row = await store.set_top_up_checkout(
                self._pool, row["id"], checkout.provider_checkout_id, checkout.url
            )
            log.info("top_up_created", top_up_id=row["id"], provider=name)
        return store.top_up_view(row)

    async def get(self, message: GetTopUp) -> TopUpView:
        row = await store.top_up_by_id(self._pool, message.top_up_id)
        if row is None or row["user_id"] != message.user_id:
            raise TopUpNotFound("no top-up of yours has this id")
        return store.top_up_view(row)

    async def checkout(self, message: GetCheckout) -> TopUpView:
        row = await store.top_up_by_checkout(self._pool, message.checkout_id)
        if row is None:
            raise TopUpNotFound("no checkout has this id")
        return store.top_up_view(row)

    async def sandbox_decision(self, message: SandboxDecision) -> SandboxWebhook:
        sandbox = self._providers.get("sandbox")
        if not isinstance(sandbox, SandboxProvider):
            raise UnknownPaymentProvider("the sandbox provider is not configured")
        row = await store.top_up_by_checkout(self._pool, message.checkout_id)
        if row is None:
            raise TopUpNotFound("no checkout has this id")
        checkout = SandboxCheckout(
            checkout_id=row["checkout_id"],
            top_up_id=row["id"],
            user_id=row["user_id"],
            amount=row["amount"],
            currency=row["currency"],
        )
        body, signature = sandbox.webhook_for(checkout, paid=message.pay, now=self._context.clock())
        return SandboxWebhook(body=body, signature=signature)

    async def webhook(self, message: HandleWebhook) -> WebhookResult:
        provider = provider_named(self._providers, message.provider)
        # verification first: a bad signature or stale timestamp raises, nothing moves
        event = provider.parse_webhook(message.body, message.signature, now=self._context.clock())
        if event.kind == "ignored":
            return WebhookResult(event_id=event.event_id, applied=False)
        async with self._context.transaction(dedupe=False) as tx:
            if not await store.first_sighting(tx, message.provider, event.event_id):
                log.info("webhook_replayed", provider=message.provider, event_id=event.event_id)
                return WebhookResult(event_id=event.event_id, applied=False)
            row = await store.lock_top_up(tx, event.top_up_id)
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
                await store.set_top_up_status(tx, row["id"], "succeeded")
                await self.credit(
                    top_up_id=row["id"],
                    user_id=row["user_id"],
                    amount=row["amount"],
                    currency=row["currency"],
                    event_id=event.event_id,
                    tx=tx,
                )
            else:
                await store.set_top_up_status(tx, row["id"], "failed")
                await tx.publish(
                    TopUpFailed(
                        top_up_id=row["id"],
                        user_id=row["user_id"],
                        amount=row["amount"],
                        currency=row["currency"],
                    )
                )
            log.info("webhook_applied", top_up_id=row["id"], kind=event.kind)
        return WebhookResult(event_id=event.event_id, applied=True)

    async def credit(
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
            async with self._context.transaction(dedupe=False) as own_tx:
                return await self._credit(
                    own_tx, top_up_id, user_id, amount, currency, accounts, event_id
                )

        return await retrying(own, "credit_top_up")

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
            now=self._context.now(),
            to_user_id=user_id,
            reference=top_up_id,
            external_id=external_id,
        )
        await booking.flush(tx)
        await tx.publish(
            TopUpSucceeded(top_up_id=top_up_id, user_id=user_id, amount=amount, currency=currency)
        )
        log.info("top_up_credited", top_up_id=top_up_id, user_id=user_id, amount=amount)
        return transfer_view(row)
