"""The payment provider port: what the payments actor needs from whoever takes the money.

Two adapters implement `PaymentProvider`:

- `sandbox.SandboxProvider` (the default): a checkout page served by the node itself, whose
  Pay and Decline buttons send the same signed webhook a real provider would.
- `stripe.StripeProvider`: Stripe Checkout Sessions over Stripe's REST API.

Both speak Stripe's webhook format and signature scheme, so a webhook from either goes through
one verification path (`parse_stripe_event`): the `Stripe-Signature` header
(`t=<unix seconds>,v1=<hex HMAC-SHA256 over "{t}.{body}">`, possibly several `v1`), compared
in constant time, with the timestamp within `TOLERANCE_SECONDS` of now in either direction.
Anything that does not verify raises `InvalidSignature`, before any field of the body is
trusted.

How the payments actor uses the port:

1. `CreateTopUp` → `create_checkout(...)` → store the top-up with `provider_checkout_id`,
   answer with `Checkout.url`.
2. `HandleWebhook` → `parse_webhook(body, signature, now=time.time())` → credit the top-up
   named by the event at most once per `event_id` (providers resend events).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from actors.payments.messages import InvalidSignature, UnknownPaymentProvider
from actors.runtime import DomainError

# Stripe's default: a signed event older (or newer) than this is refused, which bounds how
# long a captured webhook could be replayed at us.
TOLERANCE_SECONDS = 300
# The header both adapters sign with (the sandbox imitates Stripe on purpose).
SIGNATURE_HEADER = "Stripe-Signature"
# The only scheme we accept; `v0` (Stripe's test-only scheme) and unknown ones are ignored.
SIGNATURE_SCHEME = "v1"
# A real header is ~100 characters; refuse absurd ones before splitting them.
MAX_SIGNATURE_HEADER = 4096
# Events are small JSON documents; anything bigger is not one we parse.
MAX_EVENT_BYTES = 256 * 1024

EventKind = Literal["checkout.completed", "checkout.failed", "ignored"]

# how much of a checkout id a log line keeps: its kind (`cs_sandbox_`, `cs_test_`) and a
# few characters, enough to tell two apart; the rest (at least 120 random bits) stays out
LOGGED_ID_CHARS = 15


def logged_id(checkout_id: str) -> str:
    """What a log line may show of a checkout id: the id opens a page that pays (its URL is
    a bearer credential), so only its first characters are kept."""
    return f"{checkout_id[:LOGGED_ID_CHARS]}…"


class ProviderUnavailable(DomainError):
    """The payment provider could not be reached, refused the request or answered nonsense.

    The message and `details` name the provider and the HTTP status or error type, never the
    credentials or the provider's full answer.
    """

    code = "payment_provider_unavailable"
    category = "unavailable"


@dataclass(frozen=True)
class Checkout:
    """Where to send the payer: the provider's id for the checkout and its page's URL."""

    provider_checkout_id: str
    url: str


@dataclass(frozen=True)
class ProviderEvent:
    """A verified provider event, reduced to what the ledger needs.

    For `checkout.completed` and `checkout.failed` every field is filled from the signed body;
    the actor must still check `amount` and `currency` against the stored top-up. For
    `ignored` (event types we do not act on) only `event_id` and `event_type` are meaningful;
    the other fields hold whatever the event carried ("" or 0 when absent).
    """

    event_id: str
    kind: EventKind
    checkout_id: str
    top_up_id: str
    amount: int
    currency: str  # ISO 4217, upper case
    event_type: str = ""  # the provider's own type, for logs


class PaymentProvider(Protocol):
    """One way to take a payer's money for a top-up."""

    @property
    def name(self) -> str:
        """The provider's name in `/payments/webhooks/{provider}` ("sandbox", "stripe")."""
        ...

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
        """Open a checkout for `amount` minor units of `currency`; `ProviderUnavailable` when
        the provider cannot. Safe to repeat for the same `top_up_id`."""
        ...

    def parse_webhook(self, body: bytes, signature: str, *, now: float) -> ProviderEvent:
        """Verify `signature` over `body` (the raw request bytes) and read the event;
        `InvalidSignature` when the signature, its timestamp or the event does not check out."""
        ...


def provider_named(providers: Mapping[str, PaymentProvider], name: str) -> PaymentProvider:
    """The configured provider called `name`, else `UnknownPaymentProvider`."""
    provider = providers.get(name)
    if provider is None:
        raise UnknownPaymentProvider("no such payment provider", details={"provider": name[:64]})
    return provider


# ── Stripe's signature scheme ─────────────────────────────────────────────────────────


def _key(secret: bytes | str) -> bytes:
    # Stripe keys the HMAC with the whole `whsec_...` string as UTF-8 (not base64-decoded).
    return secret.encode() if isinstance(secret, str) else secret


def _digest(secret: bytes | str, body: bytes, t: int) -> str:
    return hmac.new(_key(secret), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign_payload(secret: bytes | str, body: bytes, t: int) -> str:
    """The `Stripe-Signature` header value for `body` sent at unix time `t`."""
    return f"t={t},{SIGNATURE_SCHEME}={_digest(secret, body, t)}"


def verify_signature(
    secret: bytes | str,
    body: bytes,
    header: str,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> int:
    """Check a `Stripe-Signature` header against `body`; the signed timestamp if it holds.

    Raises `InvalidSignature` when the header is missing or malformed, when no `v1` signature
    matches (compared with `hmac.compare_digest`, so timing tells nothing about the expected
    value), or when the timestamp is more than `tolerance` seconds from `now` either way.
    """
    if not header:
        raise InvalidSignature("missing webhook signature", details={"reason": "missing"})
    if len(header) > MAX_SIGNATURE_HEADER:
        raise InvalidSignature("malformed webhook signature", details={"reason": "malformed"})
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise InvalidSignature("malformed webhook signature", details={"reason": "malformed"})
        if key == "t":
            # Only plain decimal digits: int() would also take "+1", " 1" or "1_000".
            if timestamp is not None or not value.isascii() or not value.isdigit():
                raise InvalidSignature(
                    "malformed webhook signature", details={"reason": "malformed"}
                )
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("malformed webhook signature", details={"reason": "malformed"})

    expected = _digest(secret, body, timestamp)
    matched = False
    for candidate in candidates:
        # Every candidate is compared (no early exit), each in constant time; a non-ASCII
        # candidate cannot be compared as str, and cannot match a hex digest anyway.
        if candidate.isascii() and hmac.compare_digest(expected, candidate):
            matched = True
    if not matched:
        raise InvalidSignature("webhook signature does not match", details={"reason": "mismatch"})
    # Checked after the signature, like Stripe: the timestamp is only trusted once signed.
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature(
            "webhook timestamp is outside the tolerance", details={"reason": "timestamp"}
        )
    return timestamp


# ── Stripe-shaped events ──────────────────────────────────────────────────────────────

# Stripe's Checkout event types and what they mean for a top-up. `completed` is only a success
# when the session is paid: with delayed payment methods it arrives `unpaid`, and the outcome
# follows as `async_payment_succeeded` or `async_payment_failed`.
_COMPLETED = "checkout.session.completed"
_ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
_FAILED_TYPES = frozenset({"checkout.session.async_payment_failed", "checkout.session.expired"})


def parse_stripe_event(
    secret: bytes | str,
    body: bytes,
    header: str,
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> ProviderEvent:
    """Verify a Stripe-format webhook and map it to a `ProviderEvent` (both adapters).

    `checkout.session.completed` with `payment_status` "paid" and `async_payment_succeeded`
    → `checkout.completed` (a completed but unpaid session is still waiting for its money);
    `async_payment_failed` and `expired` → `checkout.failed`; any other type → `ignored`.
    A signed body that is not such an event raises `InvalidSignature` too: it cannot be acted
    on, and the answer (400) is the same.
    """
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidSignature("webhook body too large", details={"reason": "too_large"})
    verify_signature(secret, body, header, now, tolerance)
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _bad_event("not JSON") from None
    if not isinstance(event, dict):
        raise _bad_event("not an object")
    event_id = event.get("id")
    event_type = event.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise _bad_event("no id or type")
    if not event_id or not event_type:
        raise _bad_event("no id or type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        obj = {}

    kind: EventKind
    if event_type == _COMPLETED:
        kind = "checkout.completed" if obj.get("payment_status") == "paid" else "ignored"
    elif event_type == _ASYNC_SUCCEEDED:
        kind = "checkout.completed"
    elif event_type in _FAILED_TYPES:
        kind = "checkout.failed"
    else:
        kind = "ignored"

    checkout_id = obj.get("id")
    amount = obj.get("amount_total")
    currency = obj.get("currency")
    top_up_id = _top_up_id(obj)
    # `bool` is an `int` in Python; `true` is not an amount.
    if kind != "ignored" and (
        not _nonempty_str(checkout_id)
        or not _nonempty_str(top_up_id)
        or not isinstance(amount, int)
        or isinstance(amount, bool)
        or amount < 0
        or not _nonempty_str(currency)
    ):
        raise _bad_event("checkout session fields missing")
    return ProviderEvent(
        event_id=event_id,
        kind=kind,
        checkout_id=checkout_id if isinstance(checkout_id, str) else "",
        top_up_id=top_up_id or "",
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else 0,
        currency=currency.upper() if isinstance(currency, str) else "",
        event_type=event_type,
    )


def _top_up_id(session: Mapping[str, Any]) -> str | None:
    """Our top-up id from a session: `metadata.top_up_id` and `client_reference_id` (we set
    both); when both are present they must agree."""
    metadata = session.get("metadata")
    from_metadata = metadata.get("top_up_id") if isinstance(metadata, dict) else None
    reference = session.get("client_reference_id")
    ids = {v for v in (from_metadata, reference) if _nonempty_str(v)}
    if len(ids) > 1:
        raise _bad_event("top-up references disagree")
    return str(ids.pop()) if ids else None


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _bad_event(reason: str) -> InvalidSignature:
    return InvalidSignature(
        f"webhook event not understood: {reason}", details={"reason": "bad_event"}
    )


__all__ = [
    "SIGNATURE_HEADER",
    "TOLERANCE_SECONDS",
    "Checkout",
    "EventKind",
    "PaymentProvider",
    "ProviderEvent",
    "ProviderUnavailable",
    "parse_stripe_event",
    "provider_named",
    "sign_payload",
    "verify_signature",
]
