"""Secrets kept at rest encrypted (the TOTP secrets of actors/auth/mfa.py): AES-256-GCM.

Keys come from seeds by HKDF-SHA256 (salted with the key's id, `info` naming the use): the
seeds of `SPLITGO_DATA_KEYS` (`kid:seed,...`; the first seals, all open) when set, else
those of `SPLITGO_JWT_KEYS`. Every listed seed opens, so either list rotates: put the new
seed first, and a sealed value is sealed again under it the next time it is used
(`is_current`). A value sealed under a seed no longer listed cannot be opened.

A sealed value reads `v1:<key id>:<base64url(nonce + ciphertext)>`; the associated data is
the owner's user id, so a value copied into another user's row does not open. A value
without the prefix is an old plaintext one (a base32 secret never holds a colon).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
INFO = b"splitgo totp secret v1"
NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A sealed value that no listed key opens (unknown key, tampered, or another
    user's)."""


def derive_key(key_id: str, seed: bytes) -> bytes:
    """The AES-256 key a seed stands for (distinct from the JWT key the same seed makes:
    another `info`)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=key_id.encode(), info=INFO).derive(seed)


class SecretBox:
    """Seals and opens short secrets bound to a user id; the first key seals."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        """`keys` are raw AES-256 keys by id, the sealing one first."""
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        for key_id, key in keys.items():
            if ":" in key_id or len(key) != 32:
                raise ValueError(f"key {key_id!r}: an id without ':' and 32 bytes")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = next(iter(keys))

    @classmethod
    def from_seeds(
        cls,
        data_seeds: Mapping[str, bytes] | None,
        jwt_seeds: Mapping[str, bytes],
        jwt_current: str,
    ) -> SecretBox:
        """Keys of the data seeds (ids `d.<kid>`, the first sealing) when there are any,
        else of the JWT seeds (`j.<kid>`, the signing one sealing); all open, so setting
        data keys later loses nothing."""
        if jwt_current in jwt_seeds:
            jwt_seeds = {jwt_current: jwt_seeds[jwt_current], **jwt_seeds}
        keys = {
            f"d.{kid}": derive_key(f"d.{kid}", seed) for kid, seed in (data_seeds or {}).items()
        }
        keys.update({f"j.{kid}": derive_key(f"j.{kid}", seed) for kid, seed in jwt_seeds.items()})
        return cls(keys)

    def seal(self, plaintext: str, user_id: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current].encrypt(nonce, plaintext.encode(), user_id.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{VERSION}:{self.current}:{body}"

    def open(self, stored: str, user_id: str) -> str:
        """The plaintext of a stored value (an old plaintext one as it is)."""
        if not is_sealed(stored):
            return stored
        _, key_id, body = stored.split(":", 2)
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretUnreadable(f"no key {key_id!r} is listed")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], user_id.encode())
            return plain.decode()
        except (InvalidTag, ValueError) as error:
            raise SecretUnreadable("the value does not open for this user") from error

    def is_current(self, stored: str) -> bool:
        """Whether a stored value is sealed under the sealing key (else: seal it again)."""
        return stored.startswith(f"{VERSION}:{self.current}:")


def is_sealed(stored: str) -> bool:
    return stored.startswith(f"{VERSION}:")
