"""RestartPolicy and RestartWindow: Erlang's intensity and period, with capped backoff."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.runtime import RestartPolicy
from actors.runtime.supervision import RestartWindow


def test_backoff_doubles_and_caps() -> None:
    """Each restart inside the window waits twice the last, never more than backoff_max."""
    window = RestartWindow(
        RestartPolicy(max_restarts=10, within=60.0, backoff_initial=0.1, backoff_max=0.5)
    )
    delays = [window.next_delay(now=100.0 + i) for i in range(6)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.5])


def test_intensity_exceeded_returns_none() -> None:
    """Past max_restarts within the period the window says no, and keeps saying no."""
    window = RestartWindow(RestartPolicy(max_restarts=3, within=10.0, backoff_initial=0.01))
    assert [window.next_delay(now=t) for t in (0.0, 1.0, 2.0)] == pytest.approx([0.01, 0.02, 0.04])
    assert window.next_delay(now=3.0) is None
    assert window.next_delay(now=9.0) is None


def test_zero_restarts_allowed_means_escalate_at_once() -> None:
    """With max_restarts=0 the first crash already exceeds the intensity."""
    window = RestartWindow(RestartPolicy(max_restarts=0))
    assert window.next_delay(now=0.0) is None


def test_old_restarts_fall_out_of_the_window() -> None:
    """Restarts older than `within` no longer count: the count and the backoff start over."""
    window = RestartWindow(RestartPolicy(max_restarts=2, within=10.0, backoff_initial=1.0))
    assert window.next_delay(now=0.0) == 1.0
    assert window.next_delay(now=5.0) == 2.0
    assert window.next_delay(now=9.0) is None  # two restarts in the last 10 s
    # at 10.5 the restart at 0.0 is more than 10 s old; the one at 5.0 still counts
    assert window.next_delay(now=10.5) == 2.0
    assert window.next_delay(now=12.0) is None
    # everything has aged out: back to the initial backoff
    assert window.next_delay(now=40.0) == 1.0


def test_restart_exactly_at_the_period_edge_still_counts() -> None:
    """A restart exactly `within` seconds old still counts; only strictly older ones age out."""
    window = RestartWindow(RestartPolicy(max_restarts=1, within=10.0, backoff_initial=1.0))
    assert window.next_delay(now=0.0) == 1.0
    assert window.next_delay(now=10.0) is None
    assert window.next_delay(now=10.001) == 1.0


def test_reset_forgets_the_restarts() -> None:
    """reset() (a supervisor's fresh start) allows max_restarts again from the initial backoff."""
    window = RestartWindow(RestartPolicy(max_restarts=1, backoff_initial=0.5))
    assert window.next_delay(now=0.0) == 0.5
    assert window.next_delay(now=0.1) is None
    window.reset()
    assert window.next_delay(now=0.2) == 0.5


def test_without_now_uses_the_monotonic_clock() -> None:
    """Called without `now`, the window still counts restarts (on the monotonic clock)."""
    window = RestartWindow(RestartPolicy(max_restarts=1, backoff_initial=0.001))
    assert window.next_delay() == 0.001
    assert window.next_delay() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_restarts": -1},
        {"within": 0.0},
        {"backoff_initial": -0.1},
        {"backoff_initial": 2.0, "backoff_max": 1.0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    """A policy with negative counts, an empty period or an inverted backoff range is refused."""
    with pytest.raises(ValueError, match="must be"):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


policies = st.builds(
    RestartPolicy,
    max_restarts=st.integers(min_value=0, max_value=12),
    within=st.floats(min_value=0.5, max_value=100.0),
    backoff_initial=st.floats(min_value=0.0, max_value=1.0),
    backoff_max=st.floats(min_value=1.0, max_value=30.0),
)


@settings(deadline=None)
@given(policy=policies, steps=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=30))
def test_delays_within_one_window_never_decrease_and_stay_capped(
    policy: RestartPolicy, steps: list[float]
) -> None:
    """All crashes inside one period: delays never decrease and never pass backoff_max, at most
    max_restarts are allowed, and once refused every later one is refused."""
    window = RestartWindow(policy)
    # every call lands within `within` of the first one, so nothing ages out
    span = policy.within / (len(steps) + 1)
    now = 0.0
    results: list[float | None] = []
    for step in steps:
        now += step * span
        results.append(window.next_delay(now=now))
    allowed = [delay for delay in results if delay is not None]
    assert len(allowed) == min(len(steps), policy.max_restarts)
    assert results[: len(allowed)] == allowed  # the refusals all come after the allowances
    assert allowed == sorted(allowed)
    assert all(policy.backoff_initial <= delay <= policy.backoff_max for delay in allowed)


@settings(deadline=None)
@given(policy=policies, gaps=st.lists(st.floats(min_value=0.0, max_value=50.0), max_size=40))
def test_window_matches_a_simple_model(policy: RestartPolicy, gaps: list[float]) -> None:
    """At any call times, the decision equals a direct model: count the allowed restarts in the
    last `within` seconds; refuse past max_restarts, else wait initial*2**count capped."""
    window = RestartWindow(policy)
    allowed_at: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        recent = [t for t in allowed_at if now - t <= policy.within]
        if len(recent) >= policy.max_restarts:
            expected = None
        else:
            expected = min(policy.backoff_max, policy.backoff_initial * 2 ** len(recent))
            allowed_at.append(now)
        assert window.next_delay(now=now) == expected
        allowed_at = [t for t in allowed_at if now - t <= policy.within]
