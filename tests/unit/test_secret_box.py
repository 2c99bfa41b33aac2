"""TOTP secrets sealed at rest (actors/auth/secret_box.py): AES-256-GCM bound to the user."""

from __future__ import annotations

import pytest

from actors.auth.secret_box import SecretBox, SecretUnreadable, is_sealed

JWT = {"k1": b"j" * 48, "k0": b"o" * 48}
DATA = {"d1": b"d" * 48}
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_a_sealed_secret_opens_for_its_user_and_holds_no_plaintext() -> None:
    """Sealing then opening gives the secret back; the stored form is versioned, names its
    key and does not contain the secret."""
    box = SecretBox.from_seeds(None, JWT, "k1")
    sealed = box.seal(SECRET, "user-a")
    assert sealed.startswith("v1:j.k1:")
    assert SECRET not in sealed
    assert is_sealed(sealed)
    assert box.open(sealed, "user-a") == SECRET
    assert box.seal(SECRET, "user-a") != sealed  # a fresh nonce each time


def test_a_secret_copied_to_another_user_does_not_open() -> None:
    """The user id is the associated data: the same value under another user is refused."""
    box = SecretBox.from_seeds(DATA, JWT, "k1")
    with pytest.raises(SecretUnreadable):
        box.open(box.seal(SECRET, "user-a"), "user-b")


def test_a_tampered_secret_does_not_open() -> None:
    """A changed byte of the ciphertext, or a cut one, is refused."""
    box = SecretBox.from_seeds(DATA, JWT, "k1")
    sealed = box.seal(SECRET, "user-a")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for bad in (flipped, sealed[:-4], "v1:d.d1:!!"):
        with pytest.raises(SecretUnreadable):
            box.open(bad, "user-a")


def test_an_old_plaintext_secret_reads_as_it_is_and_is_not_current() -> None:
    """A secret stored before sealing reads unchanged and asks to be sealed again."""
    box = SecretBox.from_seeds(None, JWT, "k1")
    assert box.open(SECRET, "user-a") == SECRET
    assert not box.is_current(SECRET)


def test_data_keys_seal_and_jwt_derived_keys_still_open() -> None:
    """With data keys set the first one seals, and a value sealed under a JWT seed before
    still opens (then is not current); the signing kid seals, not the first listed."""
    before = SecretBox.from_seeds(None, JWT, "k0")
    old = before.seal(SECRET, "user-a")
    assert old.startswith("v1:j.k0:")
    after = SecretBox.from_seeds(DATA, JWT, "k1")
    assert after.open(old, "user-a") == SECRET
    assert not after.is_current(old)
    assert after.is_current(after.seal(SECRET, "user-a"))
    assert after.current == "d.d1"


def test_a_key_no_longer_listed_cannot_open() -> None:
    """A value sealed under a seed since dropped is unreadable, not mistaken for plaintext."""
    old = SecretBox.from_seeds(None, {"k0": b"o" * 48}, "k0").seal(SECRET, "user-a")
    with pytest.raises(SecretUnreadable):
        SecretBox.from_seeds(None, {"k1": b"j" * 48}, "k1").open(old, "user-a")


def test_the_data_key_differs_from_the_same_seed_under_another_id() -> None:
    """The key id salts the derivation: the same seed listed as JWT and data seals apart."""
    seed = {"x": b"s" * 48}
    sealed = SecretBox.from_seeds(seed, {"y": b"t" * 48}, "y").seal(SECRET, "user-a")
    forged = sealed.replace("v1:d.x:", "v1:j.x:")
    with pytest.raises(SecretUnreadable):
        SecretBox.from_seeds(None, seed, "x").open(forged, "user-a")
