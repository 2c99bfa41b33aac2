"""The passkey rules with no IO (actors/auth/passkey_rules.py): names, the signature counter,
the relying party of a public URL, and reading a browser's response."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.auth.messages import PASSKEY_NAME_MAX, InvalidField
from actors.auth.passkey_rules import (
    RelyingParty,
    base64url_decode,
    challenge_digest,
    challenge_of,
    normalise_passkey_name,
    parse_credential,
    raw_id_of,
    relying_party,
    sign_count_advanced,
    transports_of,
)

counts = st.integers(min_value=0, max_value=2**32 - 1)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_name_is_trimmed_and_its_spaces_collapsed() -> None:
    """Spaces around and inside a passkey's name are tidied."""
    assert normalise_passkey_name("  My \t phone  ") == "My phone"


@pytest.mark.parametrize("raw", ["", "   ", "x" * (PASSKEY_NAME_MAX + 1), "a\x00b", "a\u200eb"])
def test_an_empty_long_or_control_character_name_is_refused_naming_the_field(raw: str) -> None:
    """A name that is empty, too long or holds control characters is InvalidField at $.name."""
    with pytest.raises(InvalidField) as refused:
        normalise_passkey_name(raw)
    assert refused.value.details == {"field": "$.name"}


@given(st.text(max_size=200))
def test_an_accepted_name_is_within_bounds_and_stable(raw: str) -> None:
    """Whatever is accepted is 1..60 characters, and normalising it again changes nothing."""
    try:
        name = normalise_passkey_name(raw)
    except InvalidField:
        return
    assert 1 <= len(name) <= PASSKEY_NAME_MAX
    assert normalise_passkey_name(name) == name


@given(counts, counts)
def test_a_counting_authenticator_must_advance(stored: int, presented: int) -> None:
    """A counter is accepted only when it is above the stored one, except 0 after 0."""
    expected = presented > stored or (stored == 0 and presented == 0)
    assert sign_count_advanced(stored, presented) is expected


def test_an_authenticator_that_stopped_counting_is_a_replay() -> None:
    """0 after a counter that was counting is refused (a cloned key reset to 0)."""
    assert sign_count_advanced(0, 0)
    assert not sign_count_advanced(5, 0)
    assert not sign_count_advanced(5, 5)
    assert sign_count_advanced(5, 6)


@pytest.mark.parametrize(
    ("url", "party"),
    [
        ("https://splitgo.example", RelyingParty("splitgo.example", "https://splitgo.example")),
        (
            "https://Splitgo.Example:443/app/",
            RelyingParty("splitgo.example", "https://splitgo.example"),
        ),
        ("http://localhost:8080", RelyingParty("localhost", "http://localhost:8080")),
        ("https://id.example:8443", RelyingParty("id.example", "https://id.example:8443")),
        ("http://[::1]:9000", RelyingParty("::1", "http://[::1]:9000")),
    ],
)
def test_the_relying_party_is_the_public_urls_host_and_origin(
    url: str, party: RelyingParty
) -> None:
    """The RP ID is the host (lower case), the origin has no default port and no path."""
    assert relying_party(url) == party


@pytest.mark.parametrize("url", ["", "ftp://example.com", "https://", "not a url", "http://h:x"])
def test_no_relying_party_without_a_web_address(url: str) -> None:
    """An empty, non-web or host-less URL has no relying party."""
    assert relying_party(url) is None


def test_the_challenge_is_read_from_the_client_data() -> None:
    """A credential's challenge is the base64url of its clientDataJSON's `challenge`."""
    challenge = bytes(range(32))
    client_data = json.dumps({"type": "webauthn.get", "challenge": b64url(challenge)}).encode()
    credential = {"rawId": b64url(b"id"), "response": {"clientDataJSON": b64url(client_data)}}
    assert challenge_of(credential) == challenge
    assert raw_id_of(credential) == b"id"


@pytest.mark.parametrize(
    "credential",
    [
        {},
        {"response": []},
        {"response": {"clientDataJSON": "!!!"}},
        {"response": {"clientDataJSON": b64url(b"not json")}},
        {"response": {"clientDataJSON": b64url(b"[1]")}},
        {"response": {"clientDataJSON": b64url(b'{"challenge": ""}')}},
        {"response": {"clientDataJSON": b64url(b'{"challenge": 7}')}},
    ],
)
def test_an_unreadable_response_has_no_challenge(credential: dict[str, object]) -> None:
    """Anything but client data naming a challenge is a ValueError."""
    with pytest.raises(ValueError, match=r"client data|response|base64url|challenge"):
        challenge_of(credential)


@given(st.text(max_size=300))
def test_parsing_any_text_gives_an_object_or_a_value_error(raw: str) -> None:
    """Whatever text arrives, it parses to a dict or is a ValueError (never another error)."""
    with contextlib.suppress(ValueError):
        assert isinstance(parse_credential(raw), dict)


@given(st.binary(max_size=64))
def test_base64url_round_trips(data: bytes) -> None:
    """Unpadded base64url decodes back to the bytes."""
    assert base64url_decode(b64url(data)) == data


def test_only_known_transports_are_kept() -> None:
    """A registration's transports keep WebAuthn's names only, sorted and once each."""
    credential = {"response": {"transports": ["usb", "internal", "warp", 3, "usb"]}}
    assert transports_of(credential) == ["internal", "usb"]
    assert transports_of({"response": {}}) == []


def test_a_challenge_is_kept_as_its_digest() -> None:
    """What is stored of a challenge is 32 bytes that are not the challenge."""
    digest = challenge_digest(b"c" * 32)
    assert len(digest) == 32
    assert digest != b"c" * 32
