"""Readable statements: each kind of ledger line says in words what it was, and a ride's
hold, fare and release, or a group's settlement, say what they belong to."""

from __future__ import annotations

from actors.payments.messages import About
from actors.payments.statements import about, summary


def test_a_rides_lines_belong_to_the_ride() -> None:
    """Hold, capture and release of one ride name the same ride."""
    for kind in ("hold", "capture", "hold_release"):
        assert about(kind, "ride:r-1") == About(kind="ride", id="r-1")


def test_settlements_and_top_ups_name_what_they_were() -> None:
    """A wallet settlement names its group and settlement; a top-up its id; a plain
    transfer belongs to nothing."""
    assert about("settlement", "splits:g-1:s-1") == About(
        kind="settlement", id="s-1", group_id="g-1"
    )
    assert about("top_up", "t-1") == About(kind="top_up", id="t-1")
    assert about("p2p", None) is None
    assert about("settlement", "splits:broken") is None


def test_every_kind_reads_as_a_sentence() -> None:
    """In and out of every kind have words, with the money and the other person."""
    assert summary("hold", -700, "EUR", None) == "Ride: 7.00 EUR held for the fare"
    assert summary("hold_release", 200, "EUR", None) == "Ride: 2.00 EUR of the hold released"
    assert summary("capture", 400, "EUR", "amy") == "Ride fare from amy"
    assert summary("settlement", -1250, "EUR", "bob") == "Settle-up paid to bob"
    assert summary("settlement", 1250, "EUR", "amy") == "Settle-up from amy"
    assert summary("top_up", 5000, "EUR", None) == "Wallet top-up of 50.00 EUR"
    assert summary("p2p", -100, "JPY", "bob") == "Sent to bob"
    assert summary("p2p", 100, "EUR", None) == "Received from someone"
