"""prompt=login and max_age rules of the OpenID Connect provider (provider_rules.py)."""

from __future__ import annotations

import pytest

from actors.auth.messages import OidcError
from actors.auth.provider_rules import (
    REAUTH_SECONDS,
    parse_max_age,
    reauth_marker,
    reauth_since,
    sign_in_too_old,
)

KEY = b"k" * 32
OTHER = b"o" * 32
NOW = 1_900_000_000.0


def test_max_age_is_whole_seconds_or_invalid_request() -> None:
    """max_age reads as a non-negative integer; anything else is invalid_request."""
    assert parse_max_age("") is None
    assert parse_max_age("0") == 0
    assert parse_max_age("3600") == 3600
    for bad in ("-1", "1.5", "abc", "٣", "9" * 20):
        with pytest.raises(OidcError) as refused:
            parse_max_age(bad)
        assert refused.value.error == "invalid_request"


def test_a_sign_in_is_too_old_for_prompt_login_or_past_max_age() -> None:
    """prompt=login always wants a newer sign-in; max_age only once that many seconds passed."""
    assert sign_in_too_old(frozenset({"login"}), None, NOW, NOW)
    assert not sign_in_too_old(frozenset(), None, NOW - 10**6, NOW)
    assert not sign_in_too_old(frozenset(), 60, NOW - 60, NOW)
    assert sign_in_too_old(frozenset(), 60, NOW - 61, NOW)
    assert sign_in_too_old(frozenset(), 0, NOW - 1, NOW)


def test_a_marker_reads_back_for_its_client_only() -> None:
    """A marker gives back its time (a little before now) for the client it was made for,
    under any listed key; another client or unknown key reads nothing."""
    marker = reauth_marker(KEY, "sg_app", NOW)
    since = reauth_since([OTHER, KEY], "sg_app", marker, NOW + 5)
    assert since is not None
    assert NOW - 5 <= since <= NOW
    assert reauth_since([KEY], "sg_other", marker, NOW) is None
    assert reauth_since([OTHER], "sg_app", marker, NOW) is None


def test_a_forged_or_stale_marker_reads_nothing() -> None:
    """An older time under the same MAC, a made-up one, or a marker past its lifetime fail."""
    marker = reauth_marker(KEY, "sg_app", NOW)
    _, _, mac = marker.partition(".")
    for bad in (f"{int(NOW) - 3600}.{mac}", "0.AAAA", "", "x.y", f"{int(NOW)}"):
        assert reauth_since([KEY], "sg_app", bad, NOW) is None
    assert reauth_since([KEY], "sg_app", marker, NOW + REAUTH_SECONDS + 5) is None
