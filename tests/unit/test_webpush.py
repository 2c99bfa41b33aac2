"""Web Push's pure parts: the message encryption against RFC 8291's published example
(section 5 and Appendix A), the VAPID header of RFC 8292, the keys, the endpoints a node
accepts, and what a notification says in a push message."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from actors.notifications.channels.webpush import (
    MAX_PLAINTEXT,
    VapidKeys,
    b64u,
    browser_key,
    decrypt,
    encrypt,
    endpoint_problem,
    public_bytes,
    unb64u,
    vapid_header,
)
from actors.notifications.notices import Notice
from actors.notifications.push_devices import page_of, payload_of

# RFC 8291, section 5 and Appendix A
PLAINTEXT = b"When I grow up, I want to be a watermelon"
UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
AS_PUBLIC = (
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
AUTH_SECRET = "BTBZMqHH6r4Tts7J_aSIgg"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
HEADER = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInm"
    "YWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
CIPHERTEXT = "8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ"
BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInm"
    "YWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexS"
    "gSxsj_Qulcy4a-fN"
)


def private_key(value: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(unb64u(value), "big"), ec.SECP256R1())


def test_encryption_matches_rfc_8291_appendix_a() -> None:
    """With the example's sender key and salt pinned, the body is the RFC's to the octet:
    its 86-octet header, then its ciphertext."""
    sender = private_key(AS_PRIVATE)
    assert b64u(public_bytes(sender.public_key())) == AS_PUBLIC
    body = encrypt(
        PLAINTEXT, unb64u(UA_PUBLIC), unb64u(AUTH_SECRET), sender=sender, salt=unb64u(SALT)
    )
    assert b64u(body[:86]) == HEADER
    assert b64u(body[86:]) == CIPHERTEXT
    assert b64u(body) == BODY


def test_the_rfc_example_decrypts_with_the_browsers_private_key() -> None:
    """The RFC's message opens with the user agent's private key and auth secret, and not
    with another auth secret."""
    receiver = private_key(UA_PRIVATE)
    assert b64u(public_bytes(receiver.public_key())) == UA_PUBLIC
    assert decrypt(unb64u(BODY), receiver, unb64u(AUTH_SECRET)) == PLAINTEXT
    with pytest.raises(ValueError, match="does not open"):
        decrypt(unb64u(BODY), receiver, bytes(16))


def test_each_message_has_its_own_sender_key_and_salt() -> None:
    """Two encryptions of the same text differ (fresh ECDH key and salt) and both open."""
    receiver = ec.generate_private_key(ec.SECP256R1())
    auth = bytes(range(16))
    p256dh = public_bytes(receiver.public_key())
    first, second = encrypt(b"hello", p256dh, auth), encrypt(b"hello", p256dh, auth)
    assert first != second
    assert first[:16] != second[:16]
    assert decrypt(first, receiver, auth) == decrypt(second, receiver, auth) == b"hello"


def test_encryption_refuses_bad_keys_and_oversized_messages() -> None:
    """A p256dh that is no P-256 point, a short auth secret or a message past one record
    is refused before anything is sent."""
    receiver = public_bytes(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(ValueError, match="p256dh"):
        encrypt(b"x", b"\x04" + bytes(10), bytes(16))
    with pytest.raises(ValueError, match="auth secret"):
        encrypt(b"x", receiver, bytes(8))
    with pytest.raises(ValueError, match="at most"):
        encrypt(b"x" * (MAX_PLAINTEXT + 1), receiver, bytes(16))
    assert len(encrypt(b"x" * MAX_PLAINTEXT, receiver, bytes(16))) == 4096


def test_the_vapid_header_is_an_es256_jwt_for_the_push_services_origin() -> None:
    """`vapid t=…, k=…`: k is the public key, t an ES256 JWT that verifies with it, whose
    audience is the endpoint's origin, with a contact and an expiry within 24 hours."""
    keys = VapidKeys.generate()
    now = time.time()
    header = vapid_header(
        keys, "https://push.example.net:8443/wpush/v2/abc", "mailto:ops@example.com", now=now
    )
    scheme, _, params = header.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == keys.public_key
    head_b64, claims_b64, signature_b64 = fields["t"].split(".")
    assert json.loads(unb64u(head_b64)) == {"typ": "JWT", "alg": "ES256"}
    claims = json.loads(unb64u(claims_b64))
    assert claims["aud"] == "https://push.example.net:8443"
    assert claims["sub"] == "mailto:ops@example.com"
    assert now < claims["exp"] <= now + 24 * 3600
    signature = unb64u(signature_b64)
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public = browser_key(unb64u(fields["k"]))
    public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))


def test_vapid_keys_load_from_pem_and_from_the_raw_private_value() -> None:
    """A key kept as PEM or given as its 32 octets in base64url is the same key; anything
    else is refused with a sentence."""
    keys = VapidKeys.generate()
    assert VapidKeys.load(keys.to_pem()).public_key == keys.public_key
    raw = keys.private.private_numbers().private_value.to_bytes(32, "big")
    assert VapidKeys.load(b64u(raw)).public_key == keys.public_key
    assert len(unb64u(keys.public_key)) == 65
    with pytest.raises(ValueError, match="32 octets"):
        VapidKeys.load(b64u(b"short"))
    other = ec.generate_private_key(ec.SECP384R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ValueError, match="P-256"):
        VapidKeys.load(pem)


@pytest.mark.parametrize(
    ("endpoint", "allowed"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", True),
        ("https://updates.push.services.mozilla.com/wpush/v2/x", True),
        ("http://fcm.googleapis.com/fcm/send/abc", False),
        ("https://127.0.0.1/push", False),
        ("https://10.1.2.3/push", False),
        ("https://[::1]/push", False),
        ("https://localhost/push", False),
        ("https://user:pw@push.example.com/x", False),
        ("ftp://push.example.com/x", False),
        ("https://push.example.com/" + "x" * 1000, False),
    ],
)
def test_only_public_https_push_services_are_accepted(endpoint: str, allowed: bool) -> None:
    """A node posts only to https push services on public hosts (no loopback, private
    addresses or credentials in the URL)."""
    assert (endpoint_problem(endpoint, allow_http=False) is None) is allowed


def test_tests_may_let_a_local_http_push_service_in() -> None:
    """With allow_http (SPLITGO_WEBPUSH_ALLOW_HTTP) a fake service on 127.0.0.1 is fine."""
    assert endpoint_problem("http://127.0.0.1:5000/push/t1", allow_http=True) is None
    assert endpoint_problem("ftp://127.0.0.1/x", allow_http=True) is not None


def notice(**data: str) -> Notice:
    return Notice(
        user_id="amy",
        category="splits",
        kind="ExpenseAdded",
        title="New expense in Trip",
        text="Bob added “Dinner” (90.00 EUR); your share is 45.00 EUR.",
        html="",
        telegram="",
        data=dict(data),
    )


def test_a_push_message_says_the_title_and_text_and_opens_its_page() -> None:
    """The payload carries the notice's words and the page it is about on this node."""
    payload = payload_of(notice(group_id="g1", expense_id="e1"), "d1")
    assert payload == {
        "title": "New expense in Trip",
        "body": "Bob added “Dinner” (90.00 EUR); your share is 45.00 EUR.",
        "url": "/groups/g1/expenses/e1",
        "kind": "ExpenseAdded",
        "tag": "d1",
    }
    assert page_of(notice(ride_id="r1")) == "/rides/r1"
    assert page_of(notice(top_up_id="t1")) == "/wallet"
    assert page_of(notice(group_id="g1")) == "/groups/g1"
    assert page_of(notice()) == "/notifications"
