"""The payments actor's whole public interface: commands, replies, events and errors.

Money is integer minor units with an ISO 4217 currency, never floats. Every command that
moves money carries an idempotency key: the same key with the same body returns the first
result; with another body it is refused (`IdempotencyConflict`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from actors.runtime import DomainError, Message
from actors.runtime.bounds import Id, Limit, check_bounds

# the runtime's one error, named in this interface too
from actors.runtime.idempotency import IdempotencyConflict as IdempotencyConflict

# ISO 4217 codes we accept, with their minor-unit exponent (JPY has none, KWD three).
CURRENCIES: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
    "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "CAD": 2, "AUD": 2, "NZD": 2, "JPY": 0,
    "CNY": 2, "INR": 2, "BRL": 2, "MXN": 2, "ZAR": 2, "TRY": 2, "UAH": 2, "ILS": 2,
    "SGD": 2, "HKD": 2, "KRW": 0, "KWD": 3, "BHD": 3, "AED": 2,
}  # fmt: skip


def exponent_of(currency: str) -> int:
    """How many decimals the currency has (JPY none, EUR two, KWD three); 2 when unknown."""
    return CURRENCIES.get(currency.upper(), 2)


def format_money(amount: int, currency: str) -> str:
    """Minor units as people read them, by integer arithmetic only: 1234 EUR → "12.34 EUR",
    -300 EUR → "-3.00 EUR", 500 JPY → "500 JPY", 1234 KWD → "1.234 KWD"."""
    code = currency.upper()
    exponent = exponent_of(code)
    sign = "-" if amount < 0 else ""
    whole, minor = divmod(abs(amount), 10**exponent)
    number = f"{whole}.{minor:0{exponent}d}" if exponent else str(whole)
    return f"{sign}{number} {code}"


MAX_AMOUNT = 10**12  # minor units: far above any real payment, far below int64 overflow
NOTE_MAX = 200
TransferKind = Literal["p2p", "settlement", "fare", "fee", "top_up"]

# Bounds of the fields below (actors/runtime/bounds.py checks them wherever a message is
# made or decoded). Amounts are bounded in size here, and in meaning by the ledger's rules
# (a transfer is 1 to MAX_AMOUNT).
SignedAmount = Annotated[int, Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
Currency = Annotated[str, Meta(min_length=3, max_length=3)]
Note = Annotated[str, Meta(max_length=NOTE_MAX)]
# the actor types a transfer may tell its outcome besides the subscribers (an unknown name
# could not be told: the outcome would be lost)
Notified = Literal["splits", "rides"]


def payments_key(message: Any) -> str | None:
    """Shard key: the paying user (so one payer's money moves in order), else the user."""
    for field in ("from_user_id", "user_id"):
        value = getattr(message, field, None)
        if value:
            return str(value)
    return getattr(message, "hold_id", None) or getattr(message, "top_up_id", None)


class PaymentsInput(Message, frozen=True):
    """What the payments actor handles (commands, its timers, the events it publishes):
    the fields' bounds hold wherever one is made or decoded, or it is InvalidPayment naming
    the field (`$.amount`)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidPayment)


# ── replies ────────────────────────────────────────────────────────────────────────────


class Balance(Message, frozen=True):
    currency: str
    available: int
    held: int


class WalletView(Message, frozen=True):
    balances: list[Balance]


class TransferView(Message, frozen=True):
    id: str
    status: Literal["completed"]
    from_user_id: str | None  # None for money from outside (a top-up)
    to_user_id: str | None  # None for money leaving to the platform (a fee)
    amount: int
    currency: str
    kind: str
    created_at: str  # RFC 3339, UTC
    note: str | None = None
    reference: str | None = None


class About(Message, frozen=True):
    """What a statement line belongs to: a `ride`, a group's `settlement`, a `top_up`."""

    kind: Literal["ride", "settlement", "top_up"]
    id: str
    group_id: str | None = None


class StatementEntry(Message, frozen=True):
    """One movement of a user's money: positive in, negative out, and in words what it was
    (`summary`) and what it belongs to (`about`): a ride's hold, fare and release share
    their ride."""

    transfer_id: str
    amount: int
    currency: str
    kind: str
    counterparty_user_id: str | None
    created_at: str
    note: str | None = None
    balance_after: int | None = None
    summary: str = ""
    about: About | None = None


class StatementPage(Message, frozen=True):
    items: list[StatementEntry]
    next_cursor: str | None


class HoldView(Message, frozen=True):
    id: str
    user_id: str
    status: Literal["held", "captured", "voided", "expired"]
    amount: int
    captured: int
    currency: str
    expires_at: str
    reference: str | None = None


class TopUpView(Message, frozen=True):
    id: str
    status: Literal["pending", "succeeded", "failed"]
    amount: int
    currency: str
    checkout_url: str | None = None


class SandboxWebhook(Message, frozen=True):
    """The signed event the sandbox provider sends for a press on its page; the HTTP edge
    delivers it to the node's own webhook route, exactly as a real provider would."""

    body: bytes
    signature: str


class WebhookResult(Message, frozen=True):
    """What a verified provider event did: credited once, or nothing (already seen)."""

    event_id: str
    applied: bool


# ── commands ───────────────────────────────────────────────────────────────────────────


class Transfer(PaymentsInput, frozen=True):
    """Move money from one user's wallet to another's (or, with `to_user_id` None, to the
    platform's fees account). Refused whole if the payer's available balance is short."""

    idempotency_key: str
    from_user_id: Id
    to_user_id: Id | None
    amount: SignedAmount
    currency: Currency
    note: Note | None = None
    kind: TransferKind = "p2p"
    reference: str | None = None  # the caller's id for it (a settlement, a ride)
    notify: Notified | None = None  # an actor to tell the outcome (TransferCompleted / Failed)


class GetWallet(PaymentsInput, frozen=True):
    user_id: Id


class GetStatement(PaymentsInput, frozen=True):
    user_id: Id
    limit: Limit = 50
    cursor: str | None = None


class GetTransfer(PaymentsInput, frozen=True):
    user_id: Id
    transfer_id: Id


class PlaceHold(PaymentsInput, frozen=True):
    """Reserve money on a wallet: it leaves `available` and shows in `held`. A retry with
    the key answers the first hold whatever amount it asks (the caller adopts that amount:
    a ride's quote may have moved with the surge between a crash and the retry)."""

    idempotency_key: str
    user_id: Id
    amount: SignedAmount
    currency: Currency
    expires_in: float = 3600.0  # seconds; then the hold voids itself
    reference: str | None = None


class CaptureHold(PaymentsInput, frozen=True):
    """Take `amount` (<= held) of a hold: `amount - fee` to `payee_user_id` (or all to the
    platform when None) and `fee` to the platform's fees; the rest returns to the payer."""

    idempotency_key: str
    hold_id: Id
    amount: SignedAmount
    payee_user_id: Id | None = None
    fee: SignedAmount = 0


class VoidHold(PaymentsInput, frozen=True):
    hold_id: Id


class ExpireHold(PaymentsInput, frozen=True):
    """The runtime timer a hold sets for itself."""

    hold_id: Id


class CreateTopUp(PaymentsInput, frozen=True):
    idempotency_key: str
    user_id: Id
    amount: SignedAmount
    currency: Currency


class GetTopUp(PaymentsInput, frozen=True):
    user_id: Id
    top_up_id: Id


class HandleWebhook(PaymentsInput, frozen=True):
    """A provider's notification, exactly as it arrived: verified before anything moves."""

    provider: str
    body: bytes
    signature: str  # the provider's signature header (Stripe-Signature for both adapters)


class GetCheckout(PaymentsInput, frozen=True):
    """The top-up behind a provider checkout id (the sandbox page shows it, no login)."""

    checkout_id: Id


class SandboxDecision(PaymentsInput, frozen=True):
    """A press on the sandbox checkout page; the reply is the webhook to deliver
    (`SandboxWebhook`). The actor never posts it itself: it would wait on its own shard."""

    checkout_id: Id
    pay: bool


# ── events (through the reliable hand-off) ────────────────────────────────────────────


class TransferCompleted(PaymentsInput, frozen=True):
    transfer_id: Id
    from_user_id: str | None
    to_user_id: Id | None
    amount: SignedAmount
    currency: Currency
    kind: str
    reference: str | None = None


class TransferFailed(PaymentsInput, frozen=True):
    """A transfer asked for by message (not HTTP) that was refused; `code` says why."""

    reference: str | None
    from_user_id: Id
    code: str
    message: str


class TopUpSucceeded(PaymentsInput, frozen=True):
    top_up_id: Id
    user_id: Id
    amount: SignedAmount
    currency: Currency


class TopUpFailed(PaymentsInput, frozen=True):
    top_up_id: Id
    user_id: Id
    amount: SignedAmount
    currency: Currency


class HoldCaptured(PaymentsInput, frozen=True):
    hold_id: Id
    user_id: Id
    amount: SignedAmount
    currency: Currency
    reference: str | None = None


class HoldReleased(PaymentsInput, frozen=True):
    """A hold voided or expired: its money is available again."""

    hold_id: Id
    user_id: Id
    amount: SignedAmount
    currency: Currency
    reason: Literal["voided", "expired"]
    reference: str | None = None


# ── errors ─────────────────────────────────────────────────────────────────────────────


class InsufficientFunds(DomainError):
    """The payer's available balance (held money excluded) is below the amount."""

    code = "insufficient_funds"
    category = "invalid"


class InvalidPayment(DomainError):
    """A malformed amount, currency, note or party; `details["field"]` names it."""

    code = "invalid_payment"
    category = "invalid"


class CurrencyMismatch(DomainError):
    """Money cannot move between wallets of different currencies."""

    code = "currency_mismatch"
    category = "invalid"


class HoldNotFound(DomainError):
    code = "hold_not_found"
    category = "not_found"


class HoldNotActive(DomainError):
    """The hold was captured, voided or expired already."""

    code = "hold_not_active"
    category = "conflict"


class TopUpNotFound(DomainError):
    code = "top_up_not_found"
    category = "not_found"


class TransferNotFound(DomainError):
    code = "transfer_not_found"
    category = "not_found"


class InvalidSignature(DomainError):
    """A webhook whose signature or timestamp does not check out: nothing is credited."""

    code = "invalid_signature"
    category = "invalid"


class UnknownPaymentProvider(DomainError):
    code = "unknown_payment_provider"
    category = "not_found"
