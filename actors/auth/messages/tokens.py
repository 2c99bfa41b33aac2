"""How to read an access token: its claims, and the verifier any service builds from the
published JWK Set (the HTTP edge verifies tokens itself, with no database trip)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, GuestProtocol

from actors.auth.messages.errors import InvalidToken
from actors.auth.messages.fields import Role

ACCESS_TOKEN_SECONDS = 15 * 60
JWT_ALGORITHM = "ES256"
TOKEN_TYPE_ACCESS = "access"
# how far in the future an access token's `iat` may lie (clocks of nodes differ a little)
IAT_LEEWAY_SECONDS = 60
# how long a revoked session is remembered at the edge: past it, every access token the
# session ever had has expired (its last was issued at the latest at the revocation)
REVOCATION_SECONDS = ACCESS_TOKEN_SECONDS + IAT_LEEWAY_SECONDS
# access tokens an edge remembers having verified (by their text), ~600 bytes each
VERIFIED_TOKENS_KEPT = 10_000


class AccessClaims(msgspec.Struct, frozen=True):
    """What an access token says: who, with which roles, in which session, until when, and
    how the session was signed in (`amr`, RFC 8176: pwd, otp, hwk, ...)."""

    sub: str
    roles: list[str]
    sid: str
    exp: int
    iat: int
    typ: str = TOKEN_TYPE_ACCESS
    amr: list[str] = []

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class AccessTokenVerifier:
    """Verifies splitgo's JWTs with the public keys alone: no secret, no database trip.

    Built from the JWK Set `/.well-known/jwks.json` publishes, so any service can hold one.
    Only ES256 on P-256 is accepted (no `alg: none`, no HMAC keyed with a public key); the
    `kid` must name a published key. `verify` reads an access token (the right `typ`,
    unexpired, issued no later than IAT_LEEWAY_SECONDS from now); whether its session was
    revoked is the edge's check (splitgo/web/revocation.py). `verify_jwt` does the same for
    the other tokens splitgo signs (an OpenID Connect client's access token).
    """

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        raw_keys = jwks.get("keys")
        if not isinstance(raw_keys, list) or not raw_keys:
            raise ValueError("at least one public key is needed")
        keys: dict[str, ECKey] = {}
        for raw in raw_keys:
            if not isinstance(raw, dict) or raw.get("kty") != "EC" or raw.get("crv") != "P-256":
                raise ValueError("only P-256 (ES256) keys verify splitgo's tokens")
            public = {name: value for name, value in raw.items() if name != "d"}
            keys[str(public.get("kid", ""))] = ECKey.import_key(public)
        self._keys = keys
        # tokens that verified, by their whole text: a client sends the same token with
        # every request for 15 minutes, and an ECDSA check costs ~5x an HMAC one
        self._verified: dict[str, AccessClaims] = {}

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set this verifier trusts, as `/.well-known/jwks.json` serves it."""
        return {"keys": [key.as_dict(private=False) for key in self._keys.values()]}

    def verify(self, token: str, *, now: float | None = None) -> AccessClaims:
        now = time.time() if now is None else now
        known = self._verified.get(token)
        if known is not None:
            # the very token, signature and all, passed before: only time can change it
            _check_times(known.exp, known.iat, now)
            return known
        claims = self.verify_jwt(token, typ=TOKEN_TYPE_ACCESS, now=now)
        try:
            read = msgspec.convert(claims, AccessClaims)
        except (msgspec.ValidationError, TypeError):
            raise InvalidToken("the access token is not valid") from None
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest goes first
        self._verified[token] = read
        return read

    def verify_jwt(
        self,
        token: str,
        *,
        typ: str,
        audience: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The claims of a token splitgo signed, once its signature, `typ`, `exp`, `iat`
        and (when given) `aud` check out; else InvalidToken, in words that never echo it."""

        def key_for(signature: GuestProtocol) -> ECKey:
            header = signature.headers()
            key = self._keys.get(str(header.get("kid", "")))
            if key is None or header.get("alg") != JWT_ALGORITHM:
                raise InvalidToken("the token's key or algorithm is not ours")
            return key

        try:
            claims = dict(jwt.decode(token, key_for, algorithms=[JWT_ALGORITHM]).claims)
        except (JoseError, ValueError, TypeError):
            raise InvalidToken("the access token is not valid") from None
        if claims.get("typ") != typ:
            raise InvalidToken(f"this is not a token of type {typ}")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise InvalidToken("the access token is not valid")
        _check_times(exp, iat, time.time() if now is None else now)
        if audience is not None and claims.get("aud") != audience:
            raise InvalidToken("the token was issued to another party")
        return claims


def _check_times(exp: int, iat: int, now: float) -> None:
    """InvalidToken unless `now` lies in the token's life (with IAT_LEEWAY_SECONDS of skew)."""
    if exp <= now:
        raise InvalidToken("the access token has expired")
    if iat > now + IAT_LEEWAY_SECONDS:
        # no node of ours signs tokens from the future: a forged or broken clock
        raise InvalidToken("the access token was issued in the future")
