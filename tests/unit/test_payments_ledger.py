"""The ledger's rules without a database: input checks, capture legs, and property tests
on the in-memory Ledger (any sequence of operations keeps every currency at zero and no
wallet below zero; a refused operation changes nothing)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.payments.ledger import (
    FEES,
    HOLDS,
    Ledger,
    capture_legs,
    check_amount,
    check_currency,
    check_note,
    check_transfer,
    system,
    wallet,
)
from actors.payments.messages import (
    MAX_AMOUNT,
    NOTE_MAX,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidPayment,
)
from actors.runtime import DomainError

USERS = ["u1", "u2", "u3", "u4"]
CURRENCIES = ["EUR", "JPY"]


@pytest.mark.parametrize("value", [True, False, 1.0, 10.5, "10", None, 0, -1, MAX_AMOUNT + 1])
def test_bad_amounts_are_refused_naming_the_field(value: Any) -> None:
    """A non-integer, boolean, non-positive or over-maximum amount is refused naming $.amount."""
    with pytest.raises(InvalidPayment) as caught:
        check_amount(value)
    assert caught.value.details == {"field": "$.amount"}


def test_good_amounts_pass() -> None:
    """Amounts of 1 and of the maximum are accepted unchanged."""
    assert check_amount(1) == 1
    assert check_amount(MAX_AMOUNT) == MAX_AMOUNT


@pytest.mark.parametrize("value", ["eur", "XXX", "", None, 978])
def test_unknown_currencies_are_refused(value: Any) -> None:
    """A lower-case, unknown, empty, missing or numeric currency is refused naming $.currency."""
    with pytest.raises(InvalidPayment) as caught:
        check_currency(value)
    assert caught.value.details == {"field": "$.currency"}


def test_notes() -> None:
    """A missing note or one at the length limit is accepted, while an over-long note, a control
    character or a non-string is refused naming $.note."""
    assert check_note(None) is None
    assert check_note("x" * NOTE_MAX) == "x" * NOTE_MAX
    for bad in ("x" * (NOTE_MAX + 1), "bell\x07", 5):
        with pytest.raises(InvalidPayment) as caught:
            check_note(bad)
        assert caught.value.details == {"field": "$.note"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to_user_id": "alice"}, "$.to_user_id"),
        ({"amount": 1.5}, "$.amount"),
        ({"amount": True}, "$.amount"),
        ({"amount": 0}, "$.amount"),
        ({"amount": -5}, "$.amount"),
        ({"currency": "ABC"}, "$.currency"),
        ({"note": "n" * (NOTE_MAX + 1)}, "$.note"),
        ({"idempotency_key": ""}, "$.idempotency_key"),
        ({"from_user_id": ""}, "$.from_user_id"),
    ],
)
def test_transfer_input(change: dict[str, Any], field: str) -> None:
    """A valid transfer passes, and each bad field, including paying oneself, is refused naming that
    field."""
    fields: dict[str, Any] = {
        "idempotency_key": "k",
        "from_user_id": "alice",
        "to_user_id": "bob",
        "amount": 100,
        "currency": "EUR",
        "note": None,
    }
    check_transfer(**fields)
    with pytest.raises(InvalidPayment) as caught:
        check_transfer(**(fields | change))
    assert caught.value.details["field"] == field


def test_capture_legs_sum_to_the_hold() -> None:
    """A capture splits the hold into payee, fee and refund legs that sum to it, and a capture or
    fee beyond what it covers is refused."""
    assert [tuple(leg) for leg in capture_legs(1000, 700, 50, has_payee=True)] == [
        ("payee", 650),
        ("fees", 50),
        ("payer", 300),
    ]
    assert [tuple(leg) for leg in capture_legs(1000, 1000, 0, has_payee=False)] == [("fees", 1000)]
    with pytest.raises(InvalidPayment):
        capture_legs(1000, 1001, 0, has_payee=True)
    with pytest.raises(InvalidPayment):
        capture_legs(1000, 100, 101, has_payee=True)


def test_ledger_refuses_overdraft_and_mixed_currencies() -> None:
    """The ledger refuses overdrafts, including of held money, and postings across currencies, and a
    capture pays the payee and fees and releases the rest of the hold."""
    ledger = Ledger()
    ledger.top_up("u1", 100, "EUR")
    with pytest.raises(InsufficientFunds):
        ledger.transfer("u1", "u2", 101, "EUR")
    with pytest.raises(CurrencyMismatch):
        ledger.post(wallet("u1", "EUR"), wallet("u2", "JPY"), 10, "p2p")
    ledger.place_hold("h", "u1", 60, "EUR")
    assert (ledger.available("u1", "EUR"), ledger.held("u1", "EUR")) == (40, 60)
    with pytest.raises(InsufficientFunds):
        ledger.transfer("u1", "u2", 41, "EUR")
    ledger.capture("h", 50, payee="u2", fee=5)
    assert ledger.available("u1", "EUR") == 50
    assert ledger.available("u2", "EUR") == 45
    assert ledger.balance(system(FEES, "EUR")) == 5
    assert ledger.balance(system(HOLDS, "EUR")) == 0
    assert ledger.invariant_violations() == []


amounts = st.one_of(st.integers(min_value=-5, max_value=400), st.sampled_from([0.5, True]))
users = st.sampled_from(USERS)
payees = st.one_of(st.none(), users)
currencies = st.sampled_from(CURRENCIES)
hold_ids = st.sampled_from(["h0", "h1", "h2", "h3", "h4", "h5"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("top_up"), users, st.integers(1, 500), currencies),
        st.tuples(st.just("transfer"), users, payees, amounts, currencies),
        st.tuples(st.just("hold"), hold_ids, users, amounts, currencies),
        st.tuples(st.just("capture"), hold_ids, amounts, payees, st.integers(0, 50)),
        st.tuples(st.just("void"), hold_ids),
        st.tuples(st.just("expire"), hold_ids),
    ),
    max_size=60,
)


def apply(ledger: Ledger, operation: tuple[Any, ...]) -> None:
    name, *args = operation
    if name == "top_up":
        ledger.top_up(*args)
    elif name == "transfer":
        ledger.transfer(*args)
    elif name == "hold":
        if args[0] in ledger.holds:
            return
        ledger.place_hold(*args)
    elif name == "capture":
        hold_id, amount, payee, fee = args
        ledger.capture(hold_id, amount, payee=payee, fee=fee)
    elif name == "void":
        ledger.release(args[0], "voided")
    else:
        ledger.release(args[0], "expired")


@settings(deadline=None)
@given(operations)
def test_any_sequence_keeps_zero_sum_and_no_negative_wallet(ops: list[tuple[Any, ...]]) -> None:
    """Any sequence of operations keeps every currency summing to zero and no wallet or hold
    negative, and a refused operation changes nothing."""
    ledger = Ledger()
    for operation in ops:
        before = copy.deepcopy(ledger)
        try:
            apply(ledger, operation)
        except DomainError:
            # a refusal changes nothing at all
            assert ledger.sums_by_currency() == before.sums_by_currency()
            assert {k: ledger.balance(k) for k in ledger.accounts()} == {
                k: before.balance(k) for k in before.accounts()
            }
            assert len(ledger.transfers) == len(before.transfers)
        assert ledger.invariant_violations() == []
        for user in USERS:
            for currency in CURRENCIES:
                assert ledger.available(user, currency) >= 0
                assert ledger.held(user, currency) >= 0
    assert all(total == 0 for total in ledger.sums_by_currency().values())
