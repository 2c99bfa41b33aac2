"""The auth actor's own input checks (the HTTP edge checks too, but the actor trusts no one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from actors.auth.actor import normalise_email, normalise_name, normalise_phone, rfc3339
from actors.auth.messages import InvalidField


def field_of(error: pytest.ExceptionInfo[InvalidField]) -> str:
    return str(error.value.details["field"])


def test_emails_are_stripped_and_lower_cased() -> None:
    """An email address loses its surrounding whitespace and is lower-cased throughout."""
    assert normalise_email("  Alice.Smith+x@Example.COM ") == "alice.smith+x@example.com"


@pytest.mark.parametrize(
    "raw", ["", "   ", "alice", "alice@", "@example.com", "alice@example", "a b@example.com",
            "alice@@example.com", "a@b..com", "x" * 65 + "@example.com", "a@" + "b" * 250 + ".com"]
)  # fmt: skip
def test_malformed_emails_name_the_field(raw: str) -> None:
    """A blank, malformed or over-long email address is refused with InvalidField naming $.email."""
    with pytest.raises(InvalidField) as caught:
        normalise_email(raw)
    assert field_of(caught) == "$.email"


def test_names_are_trimmed_and_inner_whitespace_collapsed() -> None:
    """A name is trimmed, inner runs of whitespace become one space, and 100 characters are kept."""
    assert normalise_name("  Alice \n  Smith ") == "Alice Smith"
    assert normalise_name("x" * 100) == "x" * 100


@pytest.mark.parametrize("raw", ["", "   ", "x" * 101, "Alice\x00", "Al\u200bice"])
def test_bad_names_name_the_field(raw: str) -> None:
    """A blank name, one over 100 characters, or one with a NUL or zero-width character is refused
    with InvalidField naming $.name."""
    with pytest.raises(InvalidField) as caught:
        normalise_name(raw)
    assert field_of(caught) == "$.name"


def test_phones_are_e164_and_empty_clears() -> None:
    """A phone number is normalised to E.164, a blank one clears to None, and numbers that are not
    valid E.164 are refused with InvalidField naming $.phone."""
    assert normalise_phone("+49 (170) 123-4567") == "+491701234567"
    assert normalise_phone("  ") is None
    for raw in ("0170 1234567", "+0123456789", "+12", "+4917012345678901", "call me"):
        with pytest.raises(InvalidField) as caught:
            normalise_phone(raw)
        assert field_of(caught) == "$.phone"


def test_times_are_rfc3339_utc() -> None:
    """rfc3339 renders any aware datetime in UTC with a Z suffix and no fractional seconds."""
    moment = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2024-05-01T12:00:00Z"
    assert rfc3339(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
