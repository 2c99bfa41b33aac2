"""What the payments actor's money-moving parts share: idempotent replies, transactions
retried on a deadlock, and why a payer without a wallet cannot pay.

Plain functions: the parts reach the database, the clock and the shard's transactions
through the runtime's `Context` they are given (see actors/runtime/parts.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg
import msgspec
import structlog

from actors.payments import store
from actors.payments.ledger import require_funds
from actors.payments.messages import (
    CurrencyMismatch,
    HoldView,
    InsufficientFunds,
    TransferView,
)
from actors.runtime import DomainError, Executor, Message

log = structlog.get_logger("actors.payments")

# a deadlock or serialization failure is retried this many times before it surfaces
_TX_RETRIES = 5
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)

V = TypeVar("V", TransferView, HoldView)
R = TypeVar("R")


def fingerprint(message: Message) -> bytes:
    """SHA-256 of the canonical request (msgpack of the frozen struct, fields in order)."""
    return hashlib.sha256(msgspec.msgpack.encode(message)).digest()


async def retrying(attempt: Callable[[], Awaitable[R]], what: str) -> R:
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


async def no_wallet(db: Executor, user_id: str, currency: str, amount: int) -> DomainError:
    """Why a payer with no wallet in this currency cannot pay: their money is in other
    currencies (CurrencyMismatch), or they have none at all (InsufficientFunds)."""
    others = await store.user_currencies(db, user_id)
    if others:
        return CurrencyMismatch(
            f"There is no {currency} wallet to pay from; this account holds {', '.join(others)}.",
            details={"field": "$.currency", "wallets": others},
        )
    try:
        require_funds(0, amount, currency)
    except InsufficientFunds as error:
        return error
    raise AssertionError("a positive amount always exceeds an empty wallet")


async def no_fault(batch: Sequence[Message]) -> None:
    """The default of a batch's `before_commit` seam (tests put a fault there)."""
    return None
