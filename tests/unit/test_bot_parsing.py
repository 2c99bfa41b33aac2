"""The bot's pure parsing: `/add` arguments, amounts into minor units and back, and which
group an `/add` is for."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.payments.messages import format_money
from actors.splits.messages import GroupView
from splitgo.bot.parsing import (
    AddArgs,
    UsageError,
    parse_add,
    parse_amount,
    pick_group,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("12.50 Pizza @Trip", AddArgs(Decimal("12.50"), "Pizza", "Trip")),
        ("12,5 Taxi", AddArgs(Decimal("12.5"), "Taxi", None)),
        ('7 Beer @"Road trip"', AddArgs(Decimal("7"), "Beer", "Road trip")),
        ("7 Beer @“Road trip”", AddArgs(Decimal("7"), "Beer", "Road trip")),
        ("3 @Trip Coffee", AddArgs(Decimal("3"), "Coffee", "Trip")),
        ("  20   Big   dinner  out  @trip ", AddArgs(Decimal("20"), "Big dinner out", "trip")),
        ("5 Gift for bob@example.com", AddArgs(Decimal("5"), "Gift for bob@example.com", None)),
        ("5 Dinner @ home", AddArgs(Decimal("5"), "Dinner @ home", None)),
        ("1200 Sushi @Tokyo", AddArgs(Decimal("1200"), "Sushi", "Tokyo")),
        ("12.50 USD Pizza @Trip", AddArgs(Decimal("12.50"), "Pizza", "Trip", "USD")),
        ("12.50 usd Pizza", AddArgs(Decimal("12.50"), "Pizza", None, "USD")),
        ("12 Eurostar tickets", AddArgs(Decimal("12"), "Eurostar tickets", None)),
        ("12 Tea", AddArgs(Decimal("12"), "Tea", None)),
    ],
)
def test_add_arguments_are_read(args: str, expected: AddArgs) -> None:
    """Amount, description and the optional @group come apart, whitespace tidied."""
    assert parse_add(args) == expected


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (None, "amount"),
        ("", "amount"),
        ("   ", "amount"),
        ("abc", "not an amount"),
        ("Pizza 12.50", "not an amount"),
        ("-3 Pizza", "more than zero"),
        ("+3 Pizza", "more than zero"),
        ("0 Pizza", "more than zero"),
        ("0.00 Pizza", "more than zero"),
        ("12.50", "description"),
        ("12.50 @Trip", "description"),
        ("12.50 USD @Trip", "description"),
        ("1e3 Pizza", "not an amount"),
        ("12.5.0 Pizza", "not an amount"),
        ("1,200.50 Pizza", "not an amount"),
        ("NaN Pizza", "not an amount"),
        ("١٢ Pizza", "not an amount"),
        ('12 Pizza @""', "group name"),
        ("12 " + "x" * 201, "too long"),
    ],
)
def test_bad_add_arguments_are_refused_with_a_reason(args: str | None, says: str) -> None:
    """No amount, a non-number, a sign, zero or no description: a sentence saying which."""
    with pytest.raises(UsageError) as refused:
        parse_add(args)
    assert says in refused.value.sentence


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12,5", "EUR", 1250),
        ("12", "EUR", 1200),
        ("0.01", "EUR", 1),
        ("1200", "JPY", 1200),
        ("1.234", "KWD", 1234),
        ("7", "KWD", 7000),
    ],
)
def test_amounts_become_minor_units_of_the_currency(text: str, currency: str, minor: int) -> None:
    """The currency's exponent scales the amount exactly: EUR cents, whole yen, KWD fils."""
    assert to_minor_units(parse_amount(text), currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "says"),
    [
        ("1.234", "EUR", "at most 2 decimals"),
        ("12.5", "JPY", "no decimals"),
        ("1.2345", "KWD", "at most 3 decimals"),
        ("10000000000.01", "EUR", "too large"),
    ],
)
def test_more_decimals_than_the_currency_has_are_refused(
    text: str, currency: str, says: str
) -> None:
    """An amount the currency cannot hold exactly is refused, not rounded."""
    with pytest.raises(UsageError) as refused:
        to_minor_units(parse_amount(text), currency)
    assert says in refused.value.sentence


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1250, "EUR", "12.50 EUR"),
        (1, "EUR", "0.01 EUR"),
        (-417, "EUR", "-4.17 EUR"),
        (1200, "JPY", "1200 JPY"),
        (1234, "KWD", "1.234 KWD"),
        (0, "USD", "0.00 USD"),
    ],
)
def test_minor_units_are_shown_with_the_currency_decimals(
    minor: int, currency: str, text: str
) -> None:
    """The bot says amounts back as the one money formatter does: the inverse of the
    conversion, with the currency code after."""
    assert format_money(minor, currency) == text


def group(name: str, group_id: str | None = None) -> GroupView:
    return GroupView(
        id=group_id or name,
        name=name,
        currency="EUR",
        created_by="amy",
        created_at="2026-03-01T12:00:00Z",
        members=[],
        invited=[],
    )


def test_the_group_is_matched_by_name_whatever_its_case() -> None:
    """`@trip` finds the group named Trip; a name with spaces matches too."""
    groups = [group("Trip"), group("Road trip"), group("Flat")]
    assert pick_group(groups, "trip").id == "Trip"
    assert pick_group(groups, "ROAD TRIP").id == "Road trip"


def test_the_only_group_needs_no_name() -> None:
    """With exactly one group the @ part may be left out."""
    assert pick_group([group("Trip")], None).id == "Trip"


@pytest.mark.parametrize(
    ("groups", "name", "says"),
    [
        ([], None, "not in any group"),
        ([group("Trip"), group("Flat")], None, "Which group?"),
        ([group("Trip"), group("Flat")], "Beach", "no group named Beach"),
        ([group("Trip", "a"), group("trip", "b")], "Trip", "2 groups named Trip"),
    ],
)
def test_an_unclear_group_is_refused_with_the_choices(
    groups: list[GroupView], name: str | None, says: str
) -> None:
    """No group, several without a name, an unknown or ambiguous name: a sentence saying so."""
    with pytest.raises(UsageError) as refused:
        pick_group(groups, name)
    assert says in refused.value.sentence
