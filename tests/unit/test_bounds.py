"""Bounds declared on messages (actors/runtime/bounds.py): refused where a message is made,
naming the field as a JSON path with the owning actor's error, and refused again by the
codec when decoding; every message type an actor handles is bounded."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from actors.payments.messages import MAX_AMOUNT, InvalidPayment, Transfer
from actors.rides.fares import FareTable, check_trip, estimate
from actors.rides.messages import EstimateRide, InvalidRide, Point, TripTooLong
from actors.runtime import DomainError
from actors.runtime.bounds import LIST_MAX, TEXT_MAX
from actors.splits import messages as splits_messages
from actors.splits.messages import AddExpense, InvalidExpense, Payer
from splitgo.composition import ACTORS
from transport import Codec, CodecError, Envelope

LISBON, SYDNEY = (38.7223, -9.1393), (-33.8688, 151.2093)


def expense(**changes: Any) -> AddExpense:
    fields: dict[str, Any] = {
        "group_id": "g1",
        "user_id": "u1",
        "expense_id": "e1",
        "description": "Dinner",
        "amount": 1000,
        "currency": "EUR",
        "paid_by": [Payer(user_id="u1", amount=1000)],
        "split_mode": "equal",
        "shares": [],
    }
    return AddExpense(**{**fields, **changes})


def refusal_of(make: Any, error: type[DomainError]) -> DomainError:
    with pytest.raises(error) as refused:
        make()
    return refused.value


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"date": "9999-12-31", "recurrence": "yearly"}, "$.date"),
        ({"date": "0001-01-01", "recurrence": "monthly"}, "$.date"),
        ({"date": "20260301"}, "$.date"),
        ({"date": "2026-02-30"}, "$.date"),
        ({"amount": MAX_AMOUNT + 1}, "$.amount"),
        ({"amount": True}, "$.amount"),
        ({"description": "x" * 201}, "$.description"),
        ({"description": "Din\x00ner"}, "$.description"),
        ({"group_id": ""}, "$.group_id"),
        ({"category": "c" * 41}, "$.category"),
        ({"recurrence": "hourly"}, "$.recurrence"),
        ({"paid_by": [Payer(user_id="u1", amount=-(MAX_AMOUNT + 1))]}, "$.paid_by[0].amount"),
        ({"shares": [None] * (LIST_MAX + 1)}, "$.shares"),
    ],
)
def test_an_expense_past_a_bound_is_refused_where_it_is_made(
    changes: dict[str, Any], field: str
) -> None:
    """Each bound of AddExpense refuses with InvalidExpense naming the field's JSON path, in
    words (no value, no pattern)."""
    refused = refusal_of(lambda: expense(**changes), InvalidExpense)
    assert refused.details["field"] == field
    assert refused.code == "invalid_expense"
    assert "\x00" not in refused.message
    assert "^" not in refused.message


def test_the_first_and_last_days_and_the_largest_amount_are_within_bounds() -> None:
    """1900-01-01, 2099-12-31 and an amount of exactly 10^12 minor units are accepted."""
    assert expense(date="1900-01-01").date == "1900-01-01"
    assert expense(date="2099-12-31", recurrence="yearly").date == "2099-12-31"
    assert expense(amount=MAX_AMOUNT).amount == MAX_AMOUNT


def test_a_refusal_is_also_a_value_error_so_the_codec_refuses_it_when_decoding() -> None:
    """Bytes of an out-of-bounds message (from a sender that skipped the check) do not
    decode: the codec says CodecError, and no DomainError escapes it."""
    codec = Codec()
    codec.register_module(splits_messages)
    good = expense(date="2026-03-01")
    envelope = Envelope(id="1", target="splits", shard=0, kind="tell", body=good)
    data = codec.encode(envelope).replace(b"2026-03-01", b"9999-12-31")
    with pytest.raises(CodecError, match="1900-01-01"):
        codec.decode(data)
    assert isinstance(refusal_of(lambda: expense(date="9999-12-31"), InvalidExpense), ValueError)


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [
        (90.0001, 0.0, "$.pickup.lat"),
        (-90.5, 0.0, "$.pickup.lat"),
        (0.0, 180.5, "$.pickup.lon"),
        (math.nan, 0.0, "$.pickup.lat"),
        (0.0, -math.inf, "$.pickup.lon"),
        (10**400, 0.0, "$.pickup.lat"),
        ("52.5", 0.0, "$.pickup.lat"),
    ],
)
def test_a_place_off_the_earth_is_refused_naming_the_coordinate(
    lat: Any, lon: Any, field: str
) -> None:
    """Coordinates must be finite numbers, latitude -90..90 and longitude -180..180."""
    refused = refusal_of(
        lambda: EstimateRide(pickup=Point(lat=lat, lon=lon), dropoff=Point(lat=0, lon=0)),
        InvalidRide,
    )
    assert refused.details["field"] == field


def test_a_transfer_past_its_bounds_is_refused_by_payments_rules() -> None:
    """An amount past 10^12, text over the house maximum and an actor to notify that does
    not exist are refused with InvalidPayment naming the field."""

    def transfer(**changes: Any) -> Transfer:
        fields: dict[str, Any] = {
            "idempotency_key": "k",
            "from_user_id": "a",
            "to_user_id": "b",
            "amount": 1,
            "currency": "EUR",
        }
        return Transfer(**{**fields, **changes})

    for changes, field in (
        ({"amount": MAX_AMOUNT + 1}, "$.amount"),
        ({"reference": "r" * (TEXT_MAX + 1)}, "$.reference"),
        ({"notify": "nobody"}, "$.notify"),
    ):
        refused = refusal_of(lambda changes=changes: transfer(**changes), InvalidPayment)
        assert refused.details["field"] == field
    assert transfer(notify="splits").notify == "splits"


def test_a_trip_longer_than_the_table_allows_is_too_long() -> None:
    """Lisbon to Sydney is past the 200 km default (TripTooLong naming `$.dropoff`, with
    the distance); a table may allow more, and a zero maximum is a configuration error."""
    with pytest.raises(TripTooLong) as refused:
        estimate(LISBON, SYDNEY, 10_000, FareTable())
    assert refused.value.details["field"] == "$.dropoff"
    assert refused.value.details["distance_m"] > 18_000_000
    assert refused.value.code == "trip_too_long"
    check_trip(200_000, FareTable())  # exactly the maximum is a trip
    with pytest.raises(TripTooLong):
        check_trip(200_001, FareTable())
    far = FareTable(max_trip_m=20_000_000)
    amount, distance, _ = estimate(LISBON, SYDNEY, 10_000, far)
    assert amount > 0
    assert distance > 18_000_000
    with pytest.raises(ValueError, match="max_trip_m"):
        FareTable(max_trip_m=0)


def test_every_message_type_an_actor_handles_is_bounded() -> None:
    """Each message type any actor handles checks its bounds when made (it has a
    `__post_init__` from its actor's Input base): a new message cannot skip them."""
    unbounded = sorted(
        f"{name}: {message_type.__name__}"
        for name, spec in ACTORS.items()
        # the product's actors; a test plugin (tests/support/probe.py) may be registered too
        if spec.actor_type.__module__.startswith("actors.")
        for message_type in spec.actor_type.message_types()
        if "__post_init__" not in dir(message_type)
    )
    assert unbounded == []


def test_msgspec_meta_is_what_is_checked() -> None:
    """A bound declared with msgspec Meta is the same bound the codec applies on decode."""
    decoded = msgspec.json.decode(b'{"lat": 91, "lon": 0}', type=dict)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(decoded, Point)
