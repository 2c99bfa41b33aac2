"""The sandbox payment provider (the default): a pretend checkout that behaves like a real one.

`create_checkout` hands out a checkout id and the URL of the node's own page,
`GET /sandbox/checkout/{id}` (rendered by `render_checkout_page`), with a Pay and a Decline
button. A press becomes `webhook_for(...)`: a Stripe-shaped event signed with the sandbox
secret, which `deliver_to_self` POSTs to the node's `/api/v1/payments/webhooks/sandbox` like
any provider would. It then takes exactly the path a Stripe webhook takes — the same
verification (`parse_stripe_event`), the same crediting — so the sandbox exercises the real
code rather than a shortcut.

The provider keeps no state: the payments actor stores each top-up with its checkout id and
passes what the page and the webhook need back in.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from actors.payments.messages import format_money
from actors.payments.providers import (
    SIGNATURE_HEADER,
    TOLERANCE_SECONDS,
    Checkout,
    ProviderEvent,
    ProviderUnavailable,
    logged_id,
    parse_stripe_event,
    sign_payload,
)

log = structlog.get_logger("actors.payments.sandbox")

# The node answers its own webhook quickly; a press should not hang the page for long.
DELIVERY_TIMEOUT_SECONDS = 10.0
CHECKOUT_ID_PREFIX = "cs_sandbox_"
# The API version our events imitate (informational: nothing reads it).
EVENT_API_VERSION = "2024-06-20"


@dataclass(frozen=True)
class SandboxCheckout:
    """What the payments actor stored for a sandbox checkout, handed back for a webhook."""

    checkout_id: str
    top_up_id: str
    user_id: str
    amount: int
    currency: str


class SandboxProvider:
    """`PaymentProvider` whose checkout is a page on the node itself.

    `secret` signs and verifies its webhooks; `public_url` is where browsers reach the node
    (e.g. "https://splitgo.example"), for the checkout URL.
    """

    def __init__(self, secret: bytes, public_url: str, *, tolerance: float = TOLERANCE_SECONDS):
        if not secret:
            # An empty key would make every signature forgeable.
            raise ValueError("the sandbox needs a non-empty webhook secret")
        self._secret = secret
        self._public_url = public_url.rstrip("/")
        self._tolerance = tolerance

    def __repr__(self) -> str:
        return f"SandboxProvider(public_url={self._public_url!r})"  # never the secret

    @property
    def name(self) -> str:
        return "sandbox"

    async def create_checkout(
        self,
        *,
        top_up_id: str,
        amount: int,
        currency: str,
        user_id: str,
        success_url: str,
        cancel_url: str,
    ) -> Checkout:
        """A fresh checkout id and its page's URL (nothing is stored here)."""
        checkout_id = CHECKOUT_ID_PREFIX + secrets.token_urlsafe(18)
        log.info("sandbox_checkout_created", top_up_id=top_up_id, checkout=logged_id(checkout_id))
        return Checkout(
            provider_checkout_id=checkout_id,
            url=f"{self._public_url}/sandbox/checkout/{quote(checkout_id, safe='')}",
        )

    def parse_webhook(self, body: bytes, signature: str, *, now: float) -> ProviderEvent:
        """Verify and read a sandbox webhook (the same code path as Stripe's)."""
        return parse_stripe_event(self._secret, body, signature, now=now, tolerance=self._tolerance)

    def render_checkout_page(
        self, checkout_id: str, amount: int, currency: str, action_url: str | None = None
    ) -> str:
        """The checkout page (see the module-level `render_checkout_page`)."""
        return render_checkout_page(checkout_id, amount, currency, action_url)

    def webhook_for(self, checkout: SandboxCheckout, paid: bool, now: float) -> tuple[bytes, str]:
        """The signed webhook a press sends: its body and `Stripe-Signature` header.

        Pay → `checkout.session.completed` (paid); Decline →
        `checkout.session.async_payment_failed`. The event id is derived from the checkout
        and the outcome, so pressing the same button twice sends the same event, which the
        actor credits once.
        """
        event_type = (
            "checkout.session.completed" if paid else "checkout.session.async_payment_failed"
        )
        event_id = (
            "evt_sandbox_"
            + hashlib.sha256(f"{checkout.checkout_id}\x00{event_type}".encode()).hexdigest()[:24]
        )
        created = int(now)
        event: dict[str, Any] = {
            "id": event_id,
            "object": "event",
            "api_version": EVENT_API_VERSION,
            "created": created,
            "livemode": False,
            "type": event_type,
            "data": {
                "object": {
                    "id": checkout.checkout_id,
                    "object": "checkout.session",
                    "mode": "payment",
                    "client_reference_id": checkout.top_up_id,
                    "amount_total": checkout.amount,
                    "currency": checkout.currency.lower(),  # Stripe's spelling
                    "payment_status": "paid" if paid else "unpaid",
                    "status": "complete" if paid else "open",
                    "metadata": {"top_up_id": checkout.top_up_id, "user_id": checkout.user_id},
                }
            },
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        return body, sign_payload(self._secret, body, created)


def render_checkout_page(
    checkout_id: str, amount: int, currency: str, action_url: str | None = None
) -> str:
    """A small HTML page for a sandbox checkout, with a Pay and a Decline form.

    The forms POST to `{action_url}/pay` and `{action_url}/decline`; `action_url` defaults
    to `/sandbox/checkout/{checkout_id}`. Every value is escaped: the id comes from a URL.
    """
    base = (
        action_url
        if action_url is not None
        else (f"/sandbox/checkout/{quote(checkout_id, safe='')}")
    )
    base = base.rstrip("/")
    pay = html.escape(f"{base}/pay", quote=True)
    decline = html.escape(f"{base}/decline", quote=True)
    shown_amount = html.escape(format_money(amount, currency))
    shown_id = html.escape(checkout_id)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>splitgo sandbox checkout</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; }}
.amount {{ font-size: 2rem; margin: 1rem 0; }}
form {{ display: inline-block; margin-right: 1rem; }}
button {{ font-size: 1.1rem; padding: 0.5rem 1.5rem; }}
</style>
</head>
<body>
<h1>Sandbox checkout</h1>
<p>No real money moves: this page stands in for a payment provider.</p>
<p class="amount">{shown_amount}</p>
<p><small>Checkout <code>{shown_id}</code></small></p>
<form method="post" action="{pay}">
  <button type="submit" name="decision" value="pay">Pay</button>
</form>
<form method="post" action="{decline}">
  <button type="submit" name="decision" value="decline">Decline</button>
</form>
</body>
</html>
"""


async def deliver_to_self(http: aiohttp.ClientSession, url: str, body: bytes, header: str) -> int:
    """POST a sandbox webhook to the node's own webhook endpoint, as a provider would.

    Returns the HTTP status (2xx); raises `ProviderUnavailable` when the endpoint cannot be
    reached, is slow, or refuses (a 400 here means the node's sandbox secret is not the one
    that signed: a configuration error, not the payer's).

    Do not await this from inside the payments actor's own message handler if the webhook
    is routed back to that same actor: it would wait on itself until the timeout.
    """
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: header}
    try:
        async with http.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_SECONDS),
        ) as response:
            status = response.status
            await response.read()
    except TimeoutError:
        log.warning("sandbox_webhook_delivery_timed_out")
        raise ProviderUnavailable(
            "the sandbox webhook was not answered in time", details={"provider": "sandbox"}
        ) from None
    except aiohttp.ClientError as exc:
        log.warning("sandbox_webhook_delivery_failed", error=type(exc).__name__)
        raise ProviderUnavailable(
            "could not deliver the sandbox webhook", details={"provider": "sandbox"}
        ) from None
    if not 200 <= status < 300:
        log.warning("sandbox_webhook_refused", status=status)
        raise ProviderUnavailable(
            f"the sandbox webhook was refused with HTTP {status}",
            details={"provider": "sandbox", "status": status},
        )
    log.info("sandbox_webhook_delivered", status=status)
    return status
