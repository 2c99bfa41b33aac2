"""Token rules, with no IO: access JWTs, opaque refresh tokens, single-use tokens.

Access tokens are JWTs signed with HS256 under the current key; the header's `kid` names
that key, so keys can rotate: add a new key as current, keep the old one for verifying
until the last token it signed has expired (15 minutes). They are read back by
`messages.AccessTokenVerifier`, which needs no database.

Refresh tokens and single-use tokens (email verification, password reset, Telegram link,
OAuth state) are 256 random bits, shown to their owner once and stored only as a SHA-256
digest: a copy of the database does not yield a usable token. A plain hash (not argon2) is
right here because the input is random and long, so there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from joserfc import jwt
from joserfc.jwk import OctKey

from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    JWT_ALGORITHM,
    TOKEN_TYPE_ACCESS,
    AccessTokenVerifier,
)

# HS256 keys shorter than the hash output weaken it (RFC 7518 section 3.2)
MIN_KEY_BYTES = 32
_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """HS256 keys by `kid`; `current` signs new tokens, every key verifies."""

    keys: Mapping[str, bytes]
    current: str
    _signing_key: OctKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"the current key id {self.current!r} is not among the keys")
        for kid, key in self.keys.items():
            if not kid:
                raise ValueError("a key id must not be empty")
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(f"key {kid!r} is shorter than {MIN_KEY_BYTES} bytes")
        object.__setattr__(self, "keys", dict(self.keys))
        object.__setattr__(self, "_signing_key", OctKey.import_key(self.keys[self.current]))

    @classmethod
    def first_signs(cls, keys: Mapping[str, bytes]) -> SigningKeys:
        """The keys with the first one (in order) signing: how settings list them."""
        if not keys:
            raise ValueError("at least one signing key is needed")
        return cls(keys=keys, current=next(iter(keys)))

    def verifier(self) -> AccessTokenVerifier:
        """What the HTTP edge checks tokens with (the same keys)."""
        return AccessTokenVerifier(dict(self.keys))

    def issue_access_token(
        self, *, user_id: str, roles: Sequence[str], session_id: str, now: float
    ) -> str:
        """An access token for this user in this session, valid ACCESS_TOKEN_SECONDS."""
        issued = int(now)
        header = {"alg": JWT_ALGORITHM, "typ": "JWT", "kid": self.current}
        payload = {
            "sub": user_id,
            "roles": list(roles),
            "sid": session_id,
            "iat": issued,
            "exp": issued + ACCESS_TOKEN_SECONDS,
            "typ": TOKEN_TYPE_ACCESS,
        }
        return jwt.encode(header, payload, self._signing_key, algorithms=[JWT_ALGORITHM])


def new_token() -> str:
    """A fresh opaque token: 256 random bits, URL-safe (43 characters, fits a t.me link)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    """What is stored for an opaque token: its SHA-256 digest."""
    return hashlib.sha256(token.encode("utf-8")).digest()
