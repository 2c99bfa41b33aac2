"""The Stripe payment provider: Checkout Sessions over Stripe's REST API, signed webhooks.

`create_checkout` POSTs a form-encoded `/v1/checkout/sessions` (Stripe's API takes forms, not
JSON) for one line item of the top-up's amount, with our top-up id as `client_reference_id`,
in `metadata`, and as the `Idempotency-Key` — so a retried create returns the same session
instead of opening a second one. Everything that goes wrong talking to Stripe ends as
`ProviderUnavailable`, naming the HTTP status and Stripe's error type, never the API key or
Stripe's message (which may quote what we sent).

`parse_webhook` verifies `Stripe-Signature` with the webhook signing secret (`whsec_...`)
and maps the event (see `parse_stripe_event`). `base_url` points the adapter at a fake Stripe
in tests.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import aiohttp
import structlog

from actors.payments.providers import (
    TOLERANCE_SECONDS,
    Checkout,
    ProviderEvent,
    ProviderUnavailable,
    logged_id,
    parse_stripe_event,
)

log = structlog.get_logger("actors.payments.stripe")

STRIPE_API_URL = "https://api.stripe.com"
# Read at call time, so tests can shorten it.
HTTP_TIMEOUT_SECONDS = 15.0
# A Checkout Session is a few kilobytes of JSON.
MAX_RESPONSE_BYTES = 1024 * 1024
PRODUCT_NAME = "splitgo wallet top-up"


class StripeProvider:
    """`PaymentProvider` backed by Stripe Checkout."""

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        base_url: str = STRIPE_API_URL,
        http: aiohttp.ClientSession,
        tolerance: float = TOLERANCE_SECONDS,
    ) -> None:
        if not api_key or not webhook_secret:
            raise ValueError("Stripe needs an API key and a webhook signing secret")
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._base_url = base_url.rstrip("/")
        self._http = http
        self._tolerance = tolerance

    def __repr__(self) -> str:
        return f"StripeProvider(base_url={self._base_url!r})"  # never the key or secret

    @property
    def name(self) -> str:
        return "stripe"

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
        """Create a Checkout Session for the top-up; `ProviderUnavailable` on any failure."""
        form = [
            ("mode", "payment"),
            ("line_items[0][price_data][currency]", currency.lower()),
            ("line_items[0][price_data][unit_amount]", str(amount)),
            ("line_items[0][price_data][product_data][name]", PRODUCT_NAME),
            ("line_items[0][quantity]", "1"),
            ("success_url", success_url),
            ("cancel_url", cancel_url),
            ("client_reference_id", top_up_id),
            ("metadata[top_up_id]", top_up_id),
            ("metadata[user_id]", user_id),
        ]
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            # Stripe replays the first answer for a repeated key (24 h): one session per top-up.
            "Idempotency-Key": top_up_id,
            "Accept": "application/json",
        }
        status, body = await self._call(
            "create checkout session",
            self._http.post(
                f"{self._base_url}/v1/checkout/sessions",
                data=form,
                headers=headers,
                # The request carries the key: never re-send it to wherever a redirect points.
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS),
            ),
        )
        document = _json_object(body)
        if not 200 <= status < 300:
            self._refused("create checkout session", status, document)
        session_id = document.get("id") if document is not None else None
        url = document.get("url") if document is not None else None
        if not isinstance(session_id, str) or not session_id or not isinstance(url, str) or not url:
            log.warning("stripe_answer_without_session_id_or_url", status=status)
            raise ProviderUnavailable(
                "stripe answered the checkout request with something unexpected",
                details={"provider": "stripe", "status": status},
            )
        log.info("stripe_checkout_created", top_up_id=top_up_id, checkout=logged_id(session_id))
        return Checkout(provider_checkout_id=session_id, url=url)

    def parse_webhook(self, body: bytes, signature: str, *, now: float) -> ProviderEvent:
        """Verify a Stripe webhook with the signing secret and map its event."""
        return parse_stripe_event(
            self._webhook_secret, body, signature, now=now, tolerance=self._tolerance
        )

    async def _call(self, what: str, request: Any) -> tuple[int, bytes]:
        """Run one request to Stripe: its status and (bounded) body, or `ProviderUnavailable`.

        `request` is the un-awaited aiohttp request context manager, so that connection
        errors and timeouts end here.
        """
        try:
            async with request as response:
                body: bytes = await response.content.read(MAX_RESPONSE_BYTES + 1)
                status: int = response.status
        except TimeoutError:
            log.warning("stripe_timed_out", step=what)
            raise ProviderUnavailable(
                f"stripe did not answer the {what} request in time",
                details={"provider": "stripe"},
            ) from None
        except aiohttp.ClientError as exc:
            log.warning("stripe_unreachable", step=what, error=type(exc).__name__)
            raise ProviderUnavailable(
                f"could not reach stripe for the {what} request", details={"provider": "stripe"}
            ) from None
        if len(body) > MAX_RESPONSE_BYTES:
            log.warning("stripe_answer_too_large", step=what, status=status)
            raise ProviderUnavailable(
                f"stripe answered the {what} request with too much",
                details={"provider": "stripe", "status": status},
            )
        return status, body

    def _refused(self, what: str, status: int, document: dict[str, Any] | None) -> NoReturn:
        """Raise `ProviderUnavailable` for a non-2xx answer, with Stripe's error type and code
        (short machine words) but not its message."""
        error = document.get("error") if document is not None else None
        error_type = _word(error.get("type")) if isinstance(error, dict) else None
        error_code = _word(error.get("code")) if isinstance(error, dict) else None
        log.warning(
            "stripe_refused", step=what, status=status, error_type=error_type, code=error_code
        )
        details: dict[str, Any] = {"provider": "stripe", "status": status}
        if error_type:
            details["error_type"] = error_type
        if error_code:
            details["error_code"] = error_code
        raise ProviderUnavailable(
            f"stripe refused the {what} request (HTTP {status})", details=details
        )


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _word(value: Any) -> str | None:
    """A Stripe error type or code fit to log and show: short, identifier characters only."""
    if not isinstance(value, str):
        return None
    return "".join(c for c in value if c.isalnum() or c in "_-.")[:64] or None
