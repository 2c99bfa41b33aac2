"""Multi-factor rules as pure logic: TOTP windows and reuse, recovery codes, lockouts."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pyotp
from hypothesis import given
from hypothesis import strategies as st

from actors.auth import mfa_rules as rules
from actors.auth.messages import TOTP_PERIOD, provisioning_uri
from actors.auth.mfa_rules import MFA_THRESHOLD, Strikes

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_700_000_000.0
times = st.floats(min_value=1_000_000.0, max_value=4_000_000_000.0, allow_nan=False)


def test_a_new_secret_is_160_bits_of_base32() -> None:
    """A secret is 32 base32 characters (160 bits), and two are never the same."""
    first, second = rules.new_secret(), rules.new_secret()
    assert len(first) == 32
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert first != second


def test_the_uri_is_what_authenticator_apps_read() -> None:
    """The otpauth URI names splitgo and the account, and spells out the secret, the six
    digits and the 30-second period."""
    uri = provisioning_uri(SECRET, "ada@example.com")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/splitgo:ada%40example.com"
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert query == {"secret": SECRET, "issuer": "splitgo", "period": "30", "digits": "6"}


def test_the_codes_are_those_of_rfc_6238() -> None:
    """The code for a time step is the one any authenticator app (pyotp) shows then."""
    assert rules.code_at(SECRET, rules.time_step(NOW)) == pyotp.TOTP(SECRET).at(NOW)


@given(times, st.integers(min_value=-1, max_value=1))
def test_a_code_matches_within_one_step_either_side(now: float, offset: int) -> None:
    """A code made for step t is accepted at any time in steps t-1, t and t+1, and names t."""
    step = rules.time_step(now) + offset
    assert rules.matching_step(SECRET, rules.code_at(SECRET, step), now) == step


@given(times, st.integers(min_value=2, max_value=1000), st.sampled_from([-1, 1]))
def test_a_code_outside_the_window_does_not_match(now: float, distance: int, sign: int) -> None:
    """A code of a step two or more away matches no step (unless it happens to equal a
    code inside the window: six digits do collide)."""
    step = rules.time_step(now) + sign * distance
    code = rules.code_at(SECRET, step)
    inside = {rules.code_at(SECRET, rules.time_step(now) + i) for i in (-1, 0, 1)}
    if code not in inside:
        assert rules.matching_step(SECRET, code, now) is None


@given(times, st.integers(min_value=-1, max_value=1), st.integers(min_value=0, max_value=2))
def test_an_accepted_code_never_verifies_twice(now: float, offset: int, later: int) -> None:
    """Once a code's step is accepted, the same code checked again at any moment of its
    window is reuse, and so is any code of an earlier step."""
    step = rules.time_step(now) + offset
    code = rules.code_at(SECRET, step)
    accepted = rules.matching_step(SECRET, code, now)
    assert accepted is not None
    assert not rules.is_reuse(accepted, last_step=accepted - 1)
    again = rules.matching_step(SECRET, code, now + later * TOTP_PERIOD)
    assert again is None or rules.is_reuse(again, last_step=accepted)
    assert rules.is_reuse(accepted - 1, last_step=accepted)


def test_typed_codes_are_recognised_and_normalised() -> None:
    """Six digits (spaces allowed) are a TOTP code; 12 letters of the alphabet in any case,
    with dashes or spaces, a recovery code; anything else neither."""
    assert rules.code_kind(" 123 456 ") == ("totp", "123456")
    assert rules.code_kind("K7MQ-2XCF-9TDH") == ("recovery", "k7mq2xcf9tdh")
    assert rules.code_kind("k7mq 2xcf 9tdh") == ("recovery", "k7mq2xcf9tdh")
    for wrong in ("", "12345", "1234567", "abcdef", "k7mq-2xcf-9td0", "k7mq-2xcf-9tdh-x"):
        assert rules.code_kind(wrong) is None


def test_recovery_codes_are_ten_distinct_and_read_in_groups() -> None:
    """Ten distinct codes, each recognised as a recovery code as shown (with dashes)."""
    codes = rules.new_recovery_codes()
    assert len(set(codes)) == 10
    for code in codes:
        shown = rules.shown_recovery_code(code)
        assert len(shown) == 14
        assert shown.count("-") == 2
        assert rules.code_kind(shown) == ("recovery", code)


def test_a_recovery_digest_is_salted_with_the_user() -> None:
    """The same code digests differently for two users, and never holds the code."""
    code = rules.new_recovery_codes(1)[0]
    first, second = rules.recovery_digest("u1", code), rules.recovery_digest("u2", code)
    assert first != second
    assert len(first) == 32
    assert code.encode() not in first


def test_five_wrong_codes_in_a_row_lock_for_five_minutes() -> None:
    """Four wrong codes lock nothing; the fifth locks for 300 s and counting starts again."""
    strikes = Strikes()
    for _ in range(MFA_THRESHOLD - 1):
        strikes = strikes.failed(NOW)
        assert strikes.retry_after(NOW) is None
    strikes = strikes.failed(NOW)
    assert (strikes.failures, strikes.lockouts, strikes.retry_after(NOW)) == (0, 1, 300)
    assert strikes.retry_after(NOW + 299.5) == 1
    assert strikes.retry_after(NOW + 300) is None


def test_a_right_code_starts_the_count_again() -> None:
    """After a right code, four more wrong ones still lock nothing."""
    strikes = Strikes()
    for _ in range(MFA_THRESHOLD - 1):
        strikes = strikes.failed(NOW)
    strikes = strikes.succeeded()
    for _ in range(MFA_THRESHOLD - 1):
        strikes = strikes.failed(NOW)
    assert strikes.retry_after(NOW) is None


@given(st.integers(min_value=1, max_value=40))
def test_lockouts_in_a_row_double_up_to_a_day(count: int) -> None:
    """The n-th lockout in a row lasts 5 min * 2^(n-1), never more than a day."""
    assert rules.lockout_seconds(count) == min(300.0 * 2 ** (count - 1), 86_400.0)


def test_a_lockout_long_ago_does_not_lengthen_the_next() -> None:
    """A second lockout soon after the first lasts twice as long; one a day later does not."""
    first = Strikes(failures=MFA_THRESHOLD - 1).failed(NOW)
    soon = Strikes(MFA_THRESHOLD - 1, first.locked_until, first.lockouts).failed(NOW + 400)
    assert (soon.lockouts, soon.retry_after(NOW + 400)) == (2, 600)
    late = NOW + 2 * 86_400
    again = Strikes(MFA_THRESHOLD - 1, first.locked_until, first.lockouts).failed(late)
    assert (again.lockouts, again.retry_after(late)) == (1, 300)
