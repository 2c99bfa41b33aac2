"""The ledger's rules, with no IO: input checks, account keys, and an in-memory Ledger.

Double entry, as TigerBeetle keeps it: every movement is one transfer that debits one
account and credits another by the same positive integer amount in the same currency, so
for every currency the balances of all accounts sum to zero at every moment. A balance is
credits - debits. User wallets (and the holds and fees accounts) must never go below zero
(TigerBeetle's `debits_must_not_exceed_credits`); only the provider clearing account goes
negative: it is the mirror of the money that came in from outside.

A hold (two-phase payment) is a real transfer wallet → holds account: the money leaves
`available` at once, and the hold remembers how much of it is still reserved (`held`).
Capturing takes part or all of it (payee and fee legs), the rest returns to the wallet;
voiding or expiring returns all of it. Every step is made of plain transfers, so the
zero-sum and non-negative rules need no special case for holds.

`Ledger` is the model the property tests exercise; the actor applies the same checks
(`check_amount`, `check_currency`, `check_note`, `capture_legs`, `require_funds`) to the
rows it locked.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from actors.payments.messages import (
    CURRENCIES,
    MAX_AMOUNT,
    NOTE_MAX,
    CurrencyMismatch,
    HoldNotActive,
    HoldNotFound,
    InsufficientFunds,
    InvalidPayment,
)

KEY_MAX = 200  # an idempotency key's length, as the HTTP edge allows it
USER_ID_MAX = 64
STATEMENT_MAX = 200  # the longest statement page

# The platform's own accounts, one per currency.
CLEARING = "provider_clearing"  # money that came in through a payment provider (goes < 0)
HOLDS = "holds"  # money reserved by open holds
FEES = "fees"  # the platform's fees and money paid to the platform
SYSTEM_ACCOUNTS = (CLEARING, HOLDS, FEES)

OwnerKind = Literal["user", "system"]
HoldStatus = Literal["held", "captured", "voided", "expired"]


class AccountKey(NamedTuple):
    """Which account: a user's wallet in one currency, or a system account in one."""

    kind: OwnerKind
    owner: str
    currency: str

    @property
    def may_go_negative(self) -> bool:
        return self.kind == "system" and self.owner == CLEARING


def wallet(user_id: str, currency: str) -> AccountKey:
    return AccountKey("user", user_id, currency)


def system(name: str, currency: str) -> AccountKey:
    if name not in SYSTEM_ACCOUNTS:
        raise ValueError(f"unknown system account {name!r}")
    return AccountKey("system", name, currency)


# ── input checks (the HTTP edge checks too; the actor trusts no caller) ────────────────


def check_amount(value: Any, field: str = "$.amount") -> int:
    """An integer of minor units in 1..MAX_AMOUNT; InvalidPayment naming `field` if not.

    bool is an int subclass (msgspec hands True through an `int` field): refused, as are
    floats, even integral ones; money is never a float.
    """
    if type(value) is not int:
        raise InvalidPayment(
            "An amount is a whole number of minor units (cents), never a fraction.",
            details={"field": field},
        )
    if not 1 <= value <= MAX_AMOUNT:
        raise InvalidPayment(
            f"An amount is between 1 and {MAX_AMOUNT} minor units.", details={"field": field}
        )
    return value


def check_fee(value: Any, amount: int, field: str = "$.fee") -> int:
    """A fee: an integer in 0..amount."""
    if type(value) is not int or not 0 <= value <= amount:
        raise InvalidPayment(
            "A fee is a whole number of minor units, at most the amount.", details={"field": field}
        )
    return value


def check_currency(value: Any, field: str = "$.currency") -> str:
    if not isinstance(value, str) or value not in CURRENCIES:
        raise InvalidPayment(
            "This is not a currency we keep wallets in (an ISO 4217 code like EUR).",
            details={"field": field},
        )
    return value


def check_note(value: Any, field: str = "$.note") -> str | None:
    """None, or text of at most NOTE_MAX characters with no control characters."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > NOTE_MAX:
        raise InvalidPayment(f"A note has at most {NOTE_MAX} characters.", details={"field": field})
    if any(unicodedata.category(char) == "Cc" for char in value if char not in "\n\t"):
        raise InvalidPayment("A note cannot contain control characters.", details={"field": field})
    return value or None


def check_user_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= USER_ID_MAX:
        raise InvalidPayment("A user id is required.", details={"field": field})
    return value


def check_key(value: Any, field: str = "$.idempotency_key") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= KEY_MAX:
        raise InvalidPayment(
            f"An idempotency key has 1 to {KEY_MAX} characters.", details={"field": field}
        )
    return value


def check_transfer(
    *,
    idempotency_key: Any,
    from_user_id: Any,
    to_user_id: Any,
    amount: Any,
    currency: Any,
    note: Any = None,
) -> None:
    """Every rule of a transfer's input; the first one broken raises InvalidPayment."""
    check_key(idempotency_key)
    check_user_id(from_user_id, "$.from_user_id")
    if to_user_id is not None:
        check_user_id(to_user_id, "$.to_user_id")
        if to_user_id == from_user_id:
            raise InvalidPayment(
                "A transfer to yourself moves nothing.", details={"field": "$.to_user_id"}
            )
    check_amount(amount)
    check_currency(currency)
    check_note(note)


def require_funds(balance: int, amount: int, currency: str) -> None:
    """InsufficientFunds unless `balance` (available, holds excluded) covers `amount`."""
    if balance < amount:
        raise InsufficientFunds(
            "Not enough money available in this wallet.",
            details={"currency": currency, "available": max(balance, 0), "amount": amount},
        )


class Leg(NamedTuple):
    """One transfer a capture makes out of the holds account."""

    to: Literal["payee", "fees", "payer"]
    amount: int


def capture_legs(held: int, amount: int, fee: int, *, has_payee: bool) -> list[Leg]:
    """The transfers that capture `amount` (fee included) of a hold of `held`.

    `amount - fee` to the payee (to the fees account when there is none), `fee` to the
    fees account, `held - amount` back to the payer; zero legs are left out. They sum to
    `held`, so the holds account ends where it was before the hold.
    """
    check_amount(amount)
    if amount > held:
        raise InvalidPayment(
            "A capture takes at most what the hold reserves.",
            details={"field": "$.amount", "held": held},
        )
    check_fee(fee, amount)
    legs = [
        Leg("payee" if has_payee else "fees", amount - fee),
        Leg("fees", fee),
        Leg("payer", held - amount),
    ]
    return [leg for leg in legs if leg.amount > 0]


# ── the in-memory model ────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class Hold:
    """A hold in the in-memory model of the ledger."""

    id: str
    user_id: str
    currency: str
    amount: int
    captured: int = 0
    status: HoldStatus = "held"


@dataclass(frozen=True, slots=True)
class Posted:
    """One transfer: its debit and credit entries are implied (same amount)."""

    id: int
    debit: AccountKey
    credit: AccountKey
    amount: int
    kind: str


@dataclass
class Ledger:
    """Accounts and transfers in memory, applying every rule the database enforces.

    A refused operation raises a DomainError and changes nothing (checks come before any
    write). The property tests run random operations against it and check `invariants`.
    """

    debits: dict[AccountKey, int] = field(default_factory=lambda: defaultdict(int))
    credits: dict[AccountKey, int] = field(default_factory=lambda: defaultdict(int))
    transfers: list[Posted] = field(default_factory=list)
    holds: dict[str, Hold] = field(default_factory=dict)

    # ── reading ────────────────────────────────────────────────────────────────────────

    def balance(self, account: AccountKey) -> int:
        return self.credits.get(account, 0) - self.debits.get(account, 0)

    def available(self, user_id: str, currency: str) -> int:
        return self.balance(wallet(user_id, currency))

    def held(self, user_id: str, currency: str) -> int:
        return sum(
            hold.amount
            for hold in self.holds.values()
            if hold.status == "held" and hold.user_id == user_id and hold.currency == currency
        )

    def accounts(self) -> set[AccountKey]:
        return set(self.debits) | set(self.credits)

    def sums_by_currency(self) -> dict[str, int]:
        sums: dict[str, int] = defaultdict(int)
        for account in self.accounts():
            sums[account.currency] += self.balance(account)
        return dict(sums)

    def invariant_violations(self) -> list[str]:
        """What is wrong with the ledger; empty when every rule holds."""
        problems = [
            f"{currency} sums to {total}"
            for currency, total in self.sums_by_currency().items()
            if total != 0
        ]
        problems += [
            f"{account} is negative ({self.balance(account)})"
            for account in self.accounts()
            if not account.may_go_negative and self.balance(account) < 0
        ]
        for currency in {account.currency for account in self.accounts()}:
            reserved = sum(
                hold.amount
                for hold in self.holds.values()
                if hold.status == "held" and hold.currency == currency
            )
            if reserved != self.balance(system(HOLDS, currency)):
                problems.append(f"{currency} holds account does not match the open holds")
        return problems

    # ── moving money ───────────────────────────────────────────────────────────────────

    def post(self, debit: AccountKey, credit: AccountKey, amount: int, kind: str) -> Posted:
        """One transfer, after every check: same currency, positive amount, funds."""
        check_amount(amount)
        if debit.currency != credit.currency:
            raise CurrencyMismatch(
                "Money cannot move between wallets of different currencies.",
                details={"field": "$.currency"},
            )
        if debit == credit:
            raise InvalidPayment(
                "A transfer to the same account moves nothing.", details={"field": "$.to_user_id"}
            )
        if not debit.may_go_negative:
            require_funds(self.balance(debit), amount, debit.currency)
        posted = Posted(len(self.transfers) + 1, debit, credit, amount, kind)
        self.debits[debit] += amount
        self.credits[credit] += amount
        self.transfers.append(posted)
        return posted

    def top_up(self, user_id: str, amount: int, currency: str) -> Posted:
        check_currency(currency)
        return self.post(system(CLEARING, currency), wallet(user_id, currency), amount, "top_up")

    def transfer(
        self, from_user_id: str, to_user_id: str | None, amount: int, currency: str
    ) -> Posted:
        check_transfer(
            idempotency_key="-",
            from_user_id=from_user_id,
            to_user_id=to_user_id,
            amount=amount,
            currency=currency,
        )
        credit = system(FEES, currency) if to_user_id is None else wallet(to_user_id, currency)
        return self.post(wallet(from_user_id, currency), credit, amount, "p2p")

    def place_hold(self, hold_id: str, user_id: str, amount: int, currency: str) -> Hold:
        check_currency(currency)
        if hold_id in self.holds:
            raise ValueError(f"hold {hold_id} exists")
        self.post(wallet(user_id, currency), system(HOLDS, currency), amount, "hold")
        hold = Hold(hold_id, user_id, currency, amount)
        self.holds[hold_id] = hold
        return hold

    def _active(self, hold_id: str) -> Hold:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise HoldNotFound("No such hold.")
        if hold.status != "held":
            raise HoldNotActive(f"The hold is {hold.status} already.")
        return hold

    def capture(self, hold_id: str, amount: int, payee: str | None = None, fee: int = 0) -> Hold:
        hold = self._active(hold_id)
        if payee is not None and payee == hold.user_id:
            raise InvalidPayment(
                "A hold is captured for someone else.", details={"field": "$.payee_user_id"}
            )
        legs = capture_legs(hold.amount, amount, fee, has_payee=payee is not None)
        holds = system(HOLDS, hold.currency)
        for leg in legs:
            if leg.to == "payee":
                assert payee is not None
                target = wallet(payee, hold.currency)
            elif leg.to == "fees":
                target = system(FEES, hold.currency)
            else:
                target = wallet(hold.user_id, hold.currency)
            self.post(holds, target, leg.amount, "capture")
        hold.captured = amount
        hold.status = "captured"
        return hold

    def release(self, hold_id: str, status: Literal["voided", "expired"] = "voided") -> Hold:
        hold = self._active(hold_id)
        self.post(
            system(HOLDS, hold.currency),
            wallet(hold.user_id, hold.currency),
            hold.amount,
            "hold_release",
        )
        hold.status = status
        return hold
