"""Login limits as pure logic: thresholds, the counting window, and lockouts that grow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.limits import Lockout, LoginLimits

LIMITS = LoginLimits()
NOW = 1_700_000_000.0


def test_the_defaults_are_the_documented_rule() -> None:
    assert (LIMITS.email_threshold, LIMITS.ip_threshold, LIMITS.window) == (5, 20, 900.0)


def test_five_failures_for_an_email_and_twenty_for_an_address_trip() -> None:
    assert not LIMITS.tripped("email", 4)
    assert LIMITS.tripped("email", 5)
    assert not LIMITS.tripped("ip", 19)
    assert LIMITS.tripped("ip", 20)


def test_keys_keep_emails_and_addresses_apart() -> None:
    assert LIMITS.key("email", "a@b.c") == "email:a@b.c"
    assert LIMITS.key("ip", "10.0.0.1") == "ip:10.0.0.1"


def test_no_lockout_means_no_wait() -> None:
    assert LIMITS.retry_after([], NOW) is None
    assert LIMITS.retry_after([None], NOW) is None
    # one that has ended holds nothing either
    assert LIMITS.retry_after([Lockout(until=NOW - 1, count=1)], NOW) is None
    assert LIMITS.retry_after([Lockout(until=NOW, count=1)], NOW) is None


def test_the_wait_is_whole_seconds_rounded_up_and_the_longest_lock_wins() -> None:
    locks = [Lockout(until=NOW + 10.2, count=1), None, Lockout(until=NOW + 299.5, count=3)]
    assert LIMITS.retry_after(locks, NOW) == 300
    assert LIMITS.retry_after([Lockout(until=NOW + 0.01, count=1)], NOW) == 1


def test_failures_count_over_the_window_only() -> None:
    assert LIMITS.counting_since(None, NOW) == NOW - 900


def test_failures_before_a_lockout_ended_do_not_count_again() -> None:
    ended = Lockout(until=NOW - 60, count=1)
    assert LIMITS.counting_since(ended, NOW) == NOW - 60
    # an old lockout is older than the window: the window decides
    long_ago = Lockout(until=NOW - 10_000, count=1)
    assert LIMITS.counting_since(long_ago, NOW) == NOW - 900


def test_the_first_lockout_lasts_the_base_time() -> None:
    first = LIMITS.next_lockout(None, NOW)
    assert first == Lockout(until=NOW + 300, count=1)


def test_each_lockout_in_a_row_doubles_the_wait() -> None:
    first = LIMITS.next_lockout(None, NOW)
    second = LIMITS.next_lockout(first, first.until + 60)
    third = LIMITS.next_lockout(second, second.until + 60)
    assert (second.count, third.count) == (2, 3)
    assert second.until - (first.until + 60) == 600
    assert third.until - (second.until + 60) == 1200


def test_the_wait_is_capped_at_a_day() -> None:
    assert LIMITS.duration(10) == 24 * 3600
    assert LIMITS.duration(10_000) == 24 * 3600


def test_a_key_clean_for_a_day_starts_from_the_first_step_again() -> None:
    old = Lockout(until=NOW - 24 * 3600 - 1, count=7)
    assert LIMITS.next_lockout(old, NOW) == Lockout(until=NOW + 300, count=1)
    recent = Lockout(until=NOW - 24 * 3600 + 1, count=7)
    assert LIMITS.next_lockout(recent, NOW).count == 8


@given(st.integers(min_value=1, max_value=500))
def test_lockouts_never_shrink_and_stay_within_bounds(count: int) -> None:
    assert LIMITS.base_lockout <= LIMITS.duration(count) <= LIMITS.max_lockout
    assert LIMITS.duration(count) <= LIMITS.duration(count + 1)


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoginLimits(window=0)
    with pytest.raises(ValueError, match="thresholds"):
        LoginLimits(email_threshold=0)
