"""Login limits as pure logic: thresholds, the counting window, and lockouts that grow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.limits import Lockout, LoginLimits

LIMITS = LoginLimits()
NOW = 1_700_000_000.0


def test_the_defaults_are_the_documented_rule() -> None:
    """The default limits are 5 failures per email, 20 per address, over a 15-minute window."""
    assert (LIMITS.email_threshold, LIMITS.ip_threshold, LIMITS.window) == (5, 20, 900.0)


def test_five_failures_for_an_email_and_twenty_for_an_address_trip() -> None:
    """An email trips at its 5th failure and an address at its 20th, and not one failure before."""
    assert not LIMITS.tripped("email", 4)
    assert LIMITS.tripped("email", 5)
    assert not LIMITS.tripped("ip", 19)
    assert LIMITS.tripped("ip", 20)


def test_keys_keep_emails_and_addresses_apart() -> None:
    """Counter keys are prefixed with their kind, so an email and an address never share a key."""
    assert LIMITS.key("email", "a@b.c") == "email:a@b.c"
    assert LIMITS.key("ip", "10.0.0.1") == "ip:10.0.0.1"


def test_no_lockout_means_no_wait() -> None:
    """No lockout, or only lockouts that have already ended, means there is no retry-after wait."""
    assert LIMITS.retry_after([], NOW) is None
    assert LIMITS.retry_after([None], NOW) is None
    # one that has ended holds nothing either
    assert LIMITS.retry_after([Lockout(until=NOW - 1, count=1)], NOW) is None
    assert LIMITS.retry_after([Lockout(until=NOW, count=1)], NOW) is None


def test_the_wait_is_whole_seconds_rounded_up_and_the_longest_lock_wins() -> None:
    """The retry-after wait is the longest active lockout's remaining time rounded up to whole
    seconds."""
    locks = [Lockout(until=NOW + 10.2, count=1), None, Lockout(until=NOW + 299.5, count=3)]
    assert LIMITS.retry_after(locks, NOW) == 300
    assert LIMITS.retry_after([Lockout(until=NOW + 0.01, count=1)], NOW) == 1


def test_failures_count_over_the_window_only() -> None:
    """Without a previous lockout, failures are counted from one window (900 s) back."""
    assert LIMITS.counting_since(None, NOW) == NOW - 900


def test_failures_before_a_lockout_ended_do_not_count_again() -> None:
    """Failures are counted from when the last lockout ended, unless that is older than the
    window."""
    ended = Lockout(until=NOW - 60, count=1)
    assert LIMITS.counting_since(ended, NOW) == NOW - 60
    # an old lockout is older than the window: the window decides
    long_ago = Lockout(until=NOW - 10_000, count=1)
    assert LIMITS.counting_since(long_ago, NOW) == NOW - 900


def test_the_first_lockout_lasts_the_base_time() -> None:
    """The first lockout lasts the base time of 300 seconds and has count 1."""
    first = LIMITS.next_lockout(None, NOW)
    assert first == Lockout(until=NOW + 300, count=1)


def test_each_lockout_in_a_row_doubles_the_wait() -> None:
    """Each further lockout in a row bumps the count and doubles the wait (300 s, 600 s, 1200 s)."""
    first = LIMITS.next_lockout(None, NOW)
    second = LIMITS.next_lockout(first, first.until + 60)
    third = LIMITS.next_lockout(second, second.until + 60)
    assert (second.count, third.count) == (2, 3)
    assert second.until - (first.until + 60) == 600
    assert third.until - (second.until + 60) == 1200


def test_the_wait_is_capped_at_a_day() -> None:
    """A lockout never lasts more than a day, however many have come in a row."""
    assert LIMITS.duration(10) == 24 * 3600
    assert LIMITS.duration(10_000) == 24 * 3600


def test_a_key_clean_for_a_day_starts_from_the_first_step_again() -> None:
    """A lockout that ended over a day ago restarts at the base time, while a more recent one keeps
    escalating the count."""
    old = Lockout(until=NOW - 24 * 3600 - 1, count=7)
    assert LIMITS.next_lockout(old, NOW) == Lockout(until=NOW + 300, count=1)
    recent = Lockout(until=NOW - 24 * 3600 + 1, count=7)
    assert LIMITS.next_lockout(recent, NOW).count == 8


@given(st.integers(min_value=1, max_value=500))
def test_lockouts_never_shrink_and_stay_within_bounds(count: int) -> None:
    """For any count, the lockout lies between the base and the maximum and never shrinks as the
    count grows."""
    assert LIMITS.base_lockout <= LIMITS.duration(count) <= LIMITS.max_lockout
    assert LIMITS.duration(count) <= LIMITS.duration(count + 1)


def test_nonsense_settings_are_refused() -> None:
    """A zero window or a zero threshold is refused with a ValueError."""
    with pytest.raises(ValueError, match="positive"):
        LoginLimits(window=0)
    with pytest.raises(ValueError, match="thresholds"):
        LoginLimits(email_threshold=0)
