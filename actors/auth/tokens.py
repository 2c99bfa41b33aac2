"""Token rules, with no IO: access JWTs, opaque refresh tokens, single-use tokens.

Access tokens (and the ID tokens splitgo issues as an OpenID Connect provider) are JWTs
signed with ES256 (ECDSA on P-256) under the current key; the header's `kid` names that
key, so keys can rotate: add a new key first, keep the old one listed until the last token
it signed has expired (15 minutes for access tokens). Only the public halves are needed to
verify — `messages.AccessTokenVerifier`, built from the JWK Set that
`/.well-known/jwks.json` publishes — so other services verify our tokens without a secret.

Each key is derived from a seed (`SPLITGO_JWT_KEYS`, `kid:seed,...`, 32+ bytes each) with
HKDF-SHA256: nodes that share the seeds sign with the same keys, and no PEM files have to
travel. The seed is the private key's only form: keep it as secret as one.

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
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import ECKey

from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    JWT_ALGORITHM,
    TOKEN_TYPE_ACCESS,
    AccessTokenVerifier,
)

# a seed shorter than the key it makes would be the weaker secret
MIN_KEY_BYTES = 32
_TOKEN_BYTES = 32
# the order of P-256's base point: private scalars lie in [1, n-1]
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def derive_signing_key(kid: str, seed: bytes) -> ECKey:
    """The ES256 private key a seed stands for: HKDF-SHA256 (salted with the key id) gives
    384 bits, reduced to a P-256 scalar (the extra 128 bits make the bias negligible)."""
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=48,
        salt=b"splitgo-es256:" + kid.encode("utf-8"),
        info=b"access and ID token signing key",
    ).derive(seed)
    scalar = int.from_bytes(material, "big") % (_P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    return ECKey.import_key(private, {"kid": kid, "alg": JWT_ALGORITHM, "use": "sig"})


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """ES256 keys by `kid`, each derived from its seed; `current` signs, every key is
    published (and so verifies) until it is dropped from the list."""

    keys: Mapping[str, bytes]
    current: str
    _private: dict[str, ECKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"the current key id {self.current!r} is not among the keys")
        for kid, seed in self.keys.items():
            if not kid:
                raise ValueError("a key id must not be empty")
            if len(seed) < MIN_KEY_BYTES:
                raise ValueError(f"key {kid!r} is shorter than {MIN_KEY_BYTES} bytes")
        object.__setattr__(self, "keys", dict(self.keys))
        derived = {kid: derive_signing_key(kid, seed) for kid, seed in self.keys.items()}
        object.__setattr__(self, "_private", derived)

    @classmethod
    def first_signs(cls, keys: Mapping[str, bytes]) -> SigningKeys:
        """The keys with the first one (in order) signing: how settings list them."""
        if not keys:
            raise ValueError("at least one signing key is needed")
        return cls(keys=keys, current=next(iter(keys)))

    def public_jwks(self) -> dict[str, Any]:
        """The JWK Set of the public keys, the current one first: what
        `/.well-known/jwks.json` serves and all a verifier needs."""
        ordered = [self.current, *(kid for kid in self._private if kid != self.current)]
        return {"keys": [self._private[kid].as_dict(private=False) for kid in ordered]}

    def verifier(self) -> AccessTokenVerifier:
        """What the HTTP edge checks tokens with: the public keys only."""
        return AccessTokenVerifier(self.public_jwks())

    def sign_jwt(self, payload: Mapping[str, Any], *, typ: str = "JWT") -> str:
        """`payload` as a compact JWS signed with the current key (header: alg, typ, kid)."""
        header = {"alg": JWT_ALGORITHM, "typ": typ, "kid": self.current}
        return jwt.encode(header, dict(payload), self._private[self.current])

    def issue_access_token(
        self,
        *,
        user_id: str,
        roles: Sequence[str],
        session_id: str,
        now: float,
        amr: Sequence[str] = (),
    ) -> str:
        """An access token for this user in this session, valid ACCESS_TOKEN_SECONDS.
        `amr` says how the session was signed in (RFC 8176: pwd, otp, hwk, ...)."""
        issued = int(now)
        payload: dict[str, Any] = {
            "sub": user_id,
            "roles": list(roles),
            "sid": session_id,
            "iat": issued,
            "exp": issued + ACCESS_TOKEN_SECONDS,
            "typ": TOKEN_TYPE_ACCESS,
        }
        if amr:
            payload["amr"] = list(amr)
        return self.sign_jwt(payload)


def new_token() -> str:
    """A fresh opaque token: 256 random bits, URL-safe (43 characters, fits a t.me link)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    """What is stored for an opaque token: its SHA-256 digest."""
    return hashlib.sha256(token.encode("utf-8")).digest()
