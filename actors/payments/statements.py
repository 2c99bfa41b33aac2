"""What a statement line was, in words, and what it belongs to: pure, no IO.

The ledger records kinds and references (`ride:<id>` on a ride's hold, its capture and
its release; `splits:<group>:<settlement>` on a wallet settlement; the top-up's id on a
top-up). A person reads "Ride: 7.00 EUR held for the fare" and "Paid <payee> in a group's
settle-up"; the people are named by id here and by name at the edge.
"""

from __future__ import annotations

from actors.payments.messages import About, format_money

RIDE_REFERENCE = "ride:"
SETTLEMENT_REFERENCE = "splits:"


def about(kind: str, reference: str | None) -> About | None:
    """The ride, settlement or top-up a transfer belongs to (None: a plain transfer)."""
    if reference and reference.startswith(RIDE_REFERENCE):
        return About(kind="ride", id=reference.removeprefix(RIDE_REFERENCE))
    if reference and reference.startswith(SETTLEMENT_REFERENCE):
        parts = reference.split(":")
        if len(parts) == 3:
            return About(kind="settlement", id=parts[2], group_id=parts[1])
    if kind == "top_up" and reference:
        return About(kind="top_up", id=reference)
    return None


def summary(kind: str, amount: int, currency: str, counterparty: str | None) -> str:
    """The line in words; `amount` is signed (in > 0), `counterparty` the other user's id."""
    money = format_money(abs(amount), currency)
    incoming = amount > 0
    other = counterparty or "someone"
    if kind == "hold":
        return f"Ride: {money} held for the fare"
    if kind == "hold_release":
        return f"Ride: {money} of the hold released"
    if kind == "capture":
        return f"Ride fare from {other}" if incoming else f"Ride fare: {money}"
    if kind == "settlement":
        return f"Settle-up from {other}" if incoming else f"Settle-up paid to {other}"
    if kind == "top_up":
        return f"Wallet top-up of {money}"
    if kind == "fee":
        return f"Fee: {money}"
    return f"Received from {other}" if incoming else f"Sent to {other}"
