"""Stripe's webhook signature scheme (actors/payments/providers): sign, verify, refuse.

Expected signatures are computed here independently (hmac over "{t}.{body}"), so the tests
pin the scheme, not just a round trip through our own code.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from actors.payments import providers
from actors.payments.messages import InvalidSignature
from actors.payments.providers import (
    TOLERANCE_SECONDS,
    parse_stripe_event,
    sign_payload,
    verify_signature,
)

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","type":"checkout.session.completed"}'
NOW = 1_700_000_000


def stripe_digest(secret: str | bytes, body: bytes, t: int) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def reason(exc: pytest.ExceptionInfo[InvalidSignature]) -> str:
    return str(exc.value.details.get("reason"))


# ── signing ────────────────────────────────────────────────────────────────────────────


def test_sign_payload_is_stripes_header_format() -> None:
    """sign_payload produces Stripe's t=<timestamp>,v1=<HMAC-SHA256 of t.body> header."""
    header = sign_payload(SECRET, BODY, NOW)
    assert header == f"t={NOW},v1={stripe_digest(SECRET, BODY, NOW)}"


def test_sign_payload_takes_bytes_and_str_secrets_alike() -> None:
    """A secret given as bytes signs exactly as the same secret given as a string."""
    assert sign_payload(SECRET.encode(), BODY, NOW) == sign_payload(SECRET, BODY, NOW)


def test_round_trip_returns_the_signed_timestamp() -> None:
    """Verifying a freshly signed header returns the timestamp it was signed with."""
    header = sign_payload(SECRET, BODY, NOW)
    assert verify_signature(SECRET, BODY, header, NOW) == NOW


# ── wrong secret, tampered body ───────────────────────────────────────────────────────


def test_wrong_secret_is_refused() -> None:
    """A header signed with another secret is refused with reason mismatch."""
    header = sign_payload("whsec_other", BODY, NOW)
    with pytest.raises(InvalidSignature) as exc:
        verify_signature(SECRET, BODY, header, NOW)
    assert reason(exc) == "mismatch"


@pytest.mark.parametrize(
    "tampered",
    [
        BODY.replace(b"evt_1", b"evt_2"),
        BODY + b" ",
        b"",
        BODY[:-1],
    ],
)
def test_tampered_body_is_refused(tampered: bytes) -> None:
    """A body changed, extended, emptied or truncated after signing is refused."""
    header = sign_payload(SECRET, BODY, NOW)
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, tampered, header, NOW)


def test_tampered_timestamp_is_refused() -> None:
    """Moving the timestamp of a signed header breaks the signature and is refused as a mismatch."""
    # Moving t (to make an old event look fresh) breaks the signature, which covers t.
    digest = stripe_digest(SECRET, BODY, NOW - 3600)
    with pytest.raises(InvalidSignature) as exc:
        verify_signature(SECRET, BODY, f"t={NOW},v1={digest}", NOW)
    assert reason(exc) == "mismatch"


# ── timestamp tolerance ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("offset", [0, 1, TOLERANCE_SECONDS - 1, TOLERANCE_SECONDS])
def test_timestamps_within_tolerance_either_way_pass(offset: int) -> None:
    """A timestamp up to the tolerance before or after now, inclusive, is accepted."""
    for t in (NOW - offset, NOW + offset):
        verify_signature(SECRET, BODY, sign_payload(SECRET, BODY, t), NOW)


@pytest.mark.parametrize("offset", [TOLERANCE_SECONDS + 1, 3600, NOW])
def test_stale_timestamp_is_refused(offset: int) -> None:
    """A timestamp older than the tolerance is refused with reason timestamp."""
    header = sign_payload(SECRET, BODY, NOW - offset)
    with pytest.raises(InvalidSignature) as exc:
        verify_signature(SECRET, BODY, header, NOW)
    assert reason(exc) == "timestamp"


@pytest.mark.parametrize("offset", [TOLERANCE_SECONDS + 1, 86_400])
def test_future_timestamp_is_refused(offset: int) -> None:
    """A timestamp further ahead than the tolerance is refused with reason timestamp."""
    header = sign_payload(SECRET, BODY, NOW + offset)
    with pytest.raises(InvalidSignature) as exc:
        verify_signature(SECRET, BODY, header, NOW)
    assert reason(exc) == "timestamp"


def test_tolerance_is_configurable() -> None:
    """A 20-second-old signature passes with a 30-second tolerance and fails with a 10-second
    one."""
    header = sign_payload(SECRET, BODY, NOW - 20)
    verify_signature(SECRET, BODY, header, NOW, tolerance=30)
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, BODY, header, NOW, tolerance=10)


# ── malformed headers ─────────────────────────────────────────────────────────────────

GOOD = stripe_digest(SECRET, BODY, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"v1={GOOD}",  # no timestamp
        f"t={NOW}",  # no signature
        f"t={NOW},v0={GOOD}",  # only the test-mode scheme
        f"t={NOW},v2={GOOD}",  # an unknown scheme only
        f"t=abc,v1={GOOD}",
        f"t=,v1={GOOD}",
        f"t=-{NOW},v1={GOOD}",
        f"t=+{NOW},v1={GOOD}",
        f"t={NOW}.5,v1={GOOD}",
        f"t={NOW},t={NOW},v1={GOOD}",  # two timestamps
        f"t={NOW};v1={GOOD}",
        f"t={NOW},v1",
        f"t=١٢٣,v1={GOOD}",  # non-ASCII digits
        f"t={NOW},v1={GOOD}," + "x" * 5000,
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    """Headers that are empty, lack a timestamp or v1 signature, have a malformed or repeated
    timestamp, use the wrong separator, or are over-long are refused."""
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, BODY, header, NOW)


@pytest.mark.parametrize(
    "bad_v1",
    ["", "00", GOOD.upper(), GOOD[:-1], GOOD + "0", "é" * 64],
)
def test_wrong_or_odd_signature_values_are_refused(bad_v1: str) -> None:
    """A v1 value that is empty, short, upper-cased, a character too short or too long, or non-ASCII
    is refused."""
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, BODY, f"t={NOW},v1={bad_v1}", NOW)


def test_spaces_around_items_and_unknown_keys_are_tolerated() -> None:
    """Spaces after commas and unknown schemes or keys alongside a valid v1 are ignored."""
    # Stripe may add schemes; a receiver ignores what it does not know.
    header = f"t={NOW}, v1={GOOD}, v0=deadbeef, x=y"
    assert verify_signature(SECRET, BODY, header, NOW) == NOW


# ── several v1 signatures (secret rotation) ───────────────────────────────────────────


@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_of_several_v1_signatures_may_match(position: int) -> None:
    """With several v1 signatures, the header verifies whichever position the matching one is in."""
    values = ["0" * 64, stripe_digest("whsec_old", BODY, NOW), "f" * 64]
    values[position] = GOOD
    header = f"t={NOW}," + ",".join(f"v1={v}" for v in values)
    assert verify_signature(SECRET, BODY, header, NOW) == NOW


def test_several_v1_signatures_none_matching_is_refused() -> None:
    """Several v1 signatures none of which match the secret are refused."""
    header = f"t={NOW},v1={'0' * 64},v1={stripe_digest('whsec_old', BODY, NOW)}"
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, BODY, header, NOW)


# ── constant-time comparison ──────────────────────────────────────────────────────────


def test_signatures_are_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every v1 candidate is compared with hmac.compare_digest against the expected digest, with no
    early exit."""
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    header = f"t={NOW},v1={'0' * 64},v1={GOOD}"
    verify_signature(SECRET, BODY, header, NOW)
    # Both candidates compared (no early exit, no `==`), against the expected digest.
    assert calls == [(GOOD, "0" * 64), (GOOD, GOOD)]

    calls.clear()
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, BODY, f"t={NOW},v1={'1' * 64}", NOW)
    assert calls == [(GOOD, "1" * 64)]


# ── event mapping (the path both adapters share) ─────────────────────────────────────


def session_event(event_type: str, **overrides: object) -> bytes:
    session: dict[str, object] = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "client_reference_id": "tu_1",
        "amount_total": 1234,
        "currency": "eur",
        "payment_status": "paid",
        "metadata": {"top_up_id": "tu_1", "user_id": "u_1"},
    }
    session.update(overrides)
    return json.dumps({"id": "evt_9", "type": event_type, "data": {"object": session}}).encode()


def parse(body: bytes) -> providers.ProviderEvent:
    return parse_stripe_event(SECRET, body, sign_payload(SECRET, body, NOW), now=NOW)


def test_paid_completed_session_maps_to_checkout_completed() -> None:
    """A paid checkout.session.completed event maps to a checkout.completed event with its checkout,
    top-up, amount and upper-cased currency."""
    event = parse(session_event("checkout.session.completed"))
    assert event == providers.ProviderEvent(
        event_id="evt_9",
        kind="checkout.completed",
        checkout_id="cs_test_1",
        top_up_id="tu_1",
        amount=1234,
        currency="EUR",
        event_type="checkout.session.completed",
    )


@pytest.mark.parametrize(
    ("event_type", "payment_status", "kind"),
    [
        ("checkout.session.completed", "unpaid", "ignored"),  # delayed payment, not yet money
        ("checkout.session.async_payment_succeeded", "paid", "checkout.completed"),
        ("checkout.session.async_payment_failed", "unpaid", "checkout.failed"),
        ("checkout.session.expired", "unpaid", "checkout.failed"),
        ("payment_intent.succeeded", "paid", "ignored"),
        ("charge.refunded", "paid", "ignored"),
    ],
)
def test_event_types_map_to_kinds(event_type: str, payment_status: str, kind: str) -> None:
    """Each Stripe event type and payment status maps to completed, failed or ignored, keeping the
    event id and type."""
    event = parse(session_event(event_type, payment_status=payment_status))
    assert event.kind == kind
    assert event.event_id == "evt_9"
    assert event.event_type == event_type


def test_top_up_id_from_either_reference() -> None:
    """The top-up id is taken from the metadata or the client reference id when only one is set."""
    only_metadata = parse(session_event("checkout.session.completed", client_reference_id=None))
    assert only_metadata.top_up_id == "tu_1"
    only_reference = parse(session_event("checkout.session.completed", metadata={}))
    assert only_reference.top_up_id == "tu_1"


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_reference_id": "tu_other"},  # references disagree
        {"client_reference_id": None, "metadata": {}},  # no top-up at all
        {"amount_total": "1234"},
        {"amount_total": True},
        {"amount_total": -1},
        {"currency": None},
        {"id": None},
    ],
)
def test_signed_but_unusable_sessions_are_refused(overrides: dict[str, object]) -> None:
    """A signed session whose references disagree or are missing, or whose amount, currency or id is
    unusable, is refused with reason bad_event."""
    with pytest.raises(InvalidSignature) as exc:
        parse(session_event("checkout.session.completed", **overrides))
    assert reason(exc) == "bad_event"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"type": "x"}', b'{"id": "evt_1"}', b'{"id": 5, "type": "x"}', b"\xff"],
)
def test_signed_non_events_are_refused(body: bytes) -> None:
    """A correctly signed body that is not a JSON object with a string id and type is refused."""
    with pytest.raises(InvalidSignature):
        parse(body)


def test_event_signature_is_checked_before_the_body_is_read() -> None:
    """A well-formed event signed with the wrong secret is refused as a mismatch before its body is
    parsed."""
    body = session_event("checkout.session.completed")
    with pytest.raises(InvalidSignature) as exc:
        parse_stripe_event(SECRET, body, sign_payload("whsec_x", body, NOW), now=NOW)
    assert reason(exc) == "mismatch"
