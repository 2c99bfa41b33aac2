"""The auth actor's own input checks (the HTTP edge checks too, but the actor trusts no one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from actors.auth.messages import InvalidField, normalise_email
from actors.auth.rules import (
    ROLES,
    check_redirect_uri,
    check_role,
    contact_phone,
    login_email,
    name_from_provider,
    normalise_name,
    normalise_phone,
)
from actors.runtime import rfc3339


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
    """rfc3339 to the second (as auth answers) renders any aware datetime in UTC with a Z suffix
    and no fractional seconds."""
    moment = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment, timespec="seconds") == "2024-05-01T12:00:00Z"
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rfc3339(moment, timespec="seconds") == "2024-01-02T03:04:05Z"


def test_a_shared_contact_gives_an_e164_number() -> None:
    """A messenger's contact number gets its + when it lacks one; a blank one is refused with
    InvalidField naming $.phone."""
    assert contact_phone("491701234567") == "+491701234567"
    assert contact_phone("+49 170 1234567") == "+491701234567"
    with pytest.raises(InvalidField) as caught:
        contact_phone("")
    assert field_of(caught) == "$.phone"


def test_roles_are_the_known_ones() -> None:
    """A known role passes; any other is refused with InvalidField naming $.role."""
    assert [check_role(role) for role in ROLES] == list(ROLES)
    with pytest.raises(InvalidField) as caught:
        check_role("root")
    assert field_of(caught) == "$.role"


def test_a_provider_name_falls_back_to_the_email() -> None:
    """A social account takes the provider's name, cut to 100 characters, else the email's local
    part when the name is blank or unusable."""
    assert name_from_provider("  Ada  Lovelace ", "ada@example.com") == "Ada Lovelace"
    assert name_from_provider(None, "ada@example.com") == "ada"
    assert name_from_provider("x" * 150, "ada@example.com") == "x" * 100
    assert name_from_provider("Ada\x00", "ada@example.com") == "ada"


def test_redirect_uris_must_be_on_our_site() -> None:
    """A redirect URI must be an absolute http(s) URL on the public site (any site when none is
    known); anything else is refused with InvalidField naming $.redirect_uri."""
    check_redirect_uri("https://splitgo.test/callback", "https://splitgo.test")
    check_redirect_uri("http://localhost:8080/callback", "")
    for uri in ("/callback", "ftp://splitgo.test/x", "https://evil.example/callback"):
        with pytest.raises(InvalidField) as caught:
            check_redirect_uri(uri, "https://splitgo.test")
        assert field_of(caught) == "$.redirect_uri"


def test_a_login_email_is_only_trimmed_and_cut() -> None:
    """A login's email is stripped, lower-cased and cut to 254 characters, never refused."""
    assert login_email("  Bob@Example.COM ") == "bob@example.com"
    assert login_email("not an email") == "not an email"
    assert len(login_email("x" * 400)) == 254
