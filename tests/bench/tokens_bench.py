"""`python -m tests.bench --section tokens`: access-token verification at the edge, per second.

Today's tokens (ES256, verified with the published public key alone, `AccessTokenVerifier`)
side by side, in one run on one core, with the HS256 tokens splitgo issued before (the same
joserfc decode, claims conversion and checks, keyed with the shared secret), and with the
bare ECDSA P-256 signature check of `cryptography` (the floor no JWT library goes under).
Signing is measured too (each sign-in and refresh signs one token).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from joserfc import jwt
from joserfc.jwk import OctKey

from actors.auth.messages import AccessClaims, AccessTokenVerifier
from actors.auth.tokens import SigningKeys

Progress = Callable[[str], None]
SEED = b"bench-signing-seed-0123456789abcdef"
# the edge checks one token per authenticated request: at this rate the check is 10 % of a
# core at 1,000 requests/s (the node's authenticated GET /me rate is in auth.json)
TARGET_VERIFY_PER_S = 10_000.0


@dataclass(frozen=True)
class Rate:
    """Operations per second over `n` timed operations (best of `rounds`)."""

    n: int
    per_s: float

    @property
    def us_each(self) -> float:
        return 1e6 / self.per_s


def best_rate(operation: Callable[[], object], n: int, rounds: int = 3) -> Rate:
    """The best of `rounds` timed runs of `n` calls (the least disturbed by neighbours)."""
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            operation()
        best = max(best, n / (time.perf_counter() - started))
    return Rate(n=n, per_s=best)


class Hs256Verifier:
    """How splitgo verified access tokens before ES256: HS256 keyed with a shared secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = OctKey.import_key(secret)

    def verify(self, token: str, *, now: float) -> AccessClaims:
        claims = msgspec.convert(
            jwt.decode(token, self._key, algorithms=["HS256"]).claims, AccessClaims
        )
        if claims.typ != "access" or claims.exp <= now or claims.iat > now + 60:
            raise ValueError("refused")
        return claims


def _hs256_token(now: float) -> str:
    payload = {"sub": "u", "roles": ["user"], "sid": "s", "iat": int(now), "exp": int(now) + 900}
    payload["typ"] = "access"
    return jwt.encode({"alg": "HS256", "typ": "JWT", "kid": "k1"}, payload, OctKey.import_key(SEED))


def _bare_ecdsa(keys: SigningKeys, token: str) -> Callable[[], object]:
    """The signature check alone, with `cryptography` (no JSON, no base64 of the claims)."""
    verifier = keys.verifier()
    public = verifier._keys["k1"].public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signing_input, _, signature_b64 = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    der = utils.encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    data = signing_input.encode()

    def check() -> None:
        try:
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise AssertionError("the bench token must verify") from None

    return check


def run_tokens_bench(n: int = 20_000) -> dict[str, Any]:
    """Measure and return the figures (verify and sign, ES256 and HS256, bare ECDSA)."""
    now = time.time()
    keys = SigningKeys(keys={"k1": SEED}, current="k1")
    es256 = AccessTokenVerifier(keys.public_jwks())
    # every first sight of a token: distinct tokens, so the edge's memory of verified ones
    # never answers
    fresh = [
        keys.issue_access_token(user_id="u", roles=["user"], session_id=f"s{i}", now=now)
        for i in range(n)
    ]
    es_token = fresh[0]
    cold = AccessTokenVerifier(keys.public_jwks())
    hs256 = Hs256Verifier(SEED)
    hs_token = _hs256_token(now)
    assert es256.verify(es_token, now=now).sub == hs256.verify(hs_token, now=now).sub == "u"
    rates = {
        "verify_es256_first_sight": best_rate(
            lambda: cold.verify(fresh.pop(), now=now),
            n // 4,
        ),
        "verify_es256_seen_before": best_rate(lambda: es256.verify(es_token, now=now), n),
        "verify_hs256": best_rate(lambda: hs256.verify(hs_token, now=now), n),
        "verify_bare_ecdsa_p256": best_rate(_bare_ecdsa(keys, es_token), n),
        "sign_es256": best_rate(
            lambda: keys.issue_access_token(user_id="u", roles=["user"], session_id="s", now=now),
            n // 2,
        ),
        "sign_hs256": best_rate(lambda: _hs256_token(now), n // 2),
    }
    figures: dict[str, Any] = {
        name: {"n": rate.n, "per_s": round(rate.per_s), "us_each": round(rate.us_each, 1)}
        for name, rate in rates.items()
    }
    first = rates["verify_es256_first_sight"].per_s
    figures["es256_first_sight_vs_hs256"] = round(first / rates["verify_hs256"].per_s, 3)
    figures["es256_seen_before_vs_hs256"] = round(
        rates["verify_es256_seen_before"].per_s / rates["verify_hs256"].per_s, 3
    )
    figures["target_verify_per_s"] = TARGET_VERIFY_PER_S
    figures["passed"] = first >= TARGET_VERIFY_PER_S
    return figures


def tokens_section(
    results_dir: Path,
    base: dict[str, Any],
    say: Progress,
    write: Callable[[str, dict[str, Any], Path], Path],
) -> bool:
    """Run, print and write tokens.json."""
    say(
        "\n== tokens: access-token verification at the edge, one core: ES256 with the public "
        f"key (today) vs HS256 with the shared secret (before), target >= "
        f"{TARGET_VERIFY_PER_S:,.0f}/s"
    )
    figures = run_tokens_bench()
    for name, row in figures.items():
        if isinstance(row, dict):
            say(f"  {name:<26} {row['per_s']:>9,}/s  {row['us_each']:>7.1f} µs each")
    say(
        f"  ES256 at first sight verifies at {figures['es256_first_sight_vs_hs256']:.2f}x "
        f"HS256's rate, seen before at {figures['es256_seen_before_vs_hs256']:.2f}x; "
        f"{'ok' if figures['passed'] else 'MISSED'} (target >= {TARGET_VERIFY_PER_S:,.0f}/s "
        "at first sight)"
    )
    path = write("tokens.json", {**base, **figures}, results_dir)
    say(f"\nwritten: {path}")
    return bool(figures["passed"])
