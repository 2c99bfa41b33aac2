"""Access tokens issued by tokens.py (ES256) and read by messages.AccessTokenVerifier with the
public keys alone; opaque tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey

from actors.auth.messages import (
    ACCESS_TOKEN_SECONDS,
    AccessTokenVerifier,
    InvalidToken,
)
from actors.auth.tokens import SigningKeys, derive_signing_key, new_token, token_digest

KEY_A = b"a" * 32
KEY_B = b"b" * 48
NOW = 1_700_000_000.0


def keys(current: str = "k1") -> SigningKeys:
    return SigningKeys(keys={"k1": KEY_A, "k2": KEY_B}, current=current)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], payload: dict[str, object], key: bytes | None) -> str:
    """A JWT built by hand: ES256 with the key the seed `key` makes (under the header's kid,
    k1 when it names none), HMAC keyed with the seed itself for HS256/HS512, or unsigned when
    key is None."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    if header["alg"] == "ES256":
        private = derive_signing_key(str(header.get("kid", "k1")), key).private_key
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        der = private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[str(header["alg"])]
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sub": "user-1",
        "roles": ["user"],
        "sid": "session-1",
        "iat": int(NOW),
        "exp": int(NOW) + ACCESS_TOKEN_SECONDS,
        "typ": "access",
    }
    base.update(changes)
    return base


def header(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    loaded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return loaded


def test_an_issued_token_verifies_with_every_claim() -> None:
    """An issued access token verifies with its subject, roles, session, type and 15-minute expiry,
    under an ES256 header naming the current kid."""
    signing = keys()
    token = signing.issue_access_token(
        user_id="user-1", roles=["user", "admin"], session_id="session-1", now=NOW
    )
    read = signing.verifier().verify(token, now=NOW + 1)
    assert (read.sub, read.roles, read.sid, read.typ) == (
        "user-1",
        ["user", "admin"],
        "session-1",
        "access",
    )
    assert (read.iat, read.exp) == (int(NOW), int(NOW) + 15 * 60)
    assert read.has_role("admin")
    assert not read.has_role("driver")
    assert read.amr == []
    assert header(token) == {"alg": "ES256", "typ": "JWT", "kid": "k1"}


def test_an_issued_token_verifies_with_any_jwt_library_and_the_published_key() -> None:
    """An issued token is plain ES256: a JWT library holding only the published public key of
    the current kid verifies it, and the published set holds no private part."""
    signing = keys()
    token = signing.issue_access_token(user_id="u", roles=["user"], session_id="s", now=NOW)
    published = signing.public_jwks()["keys"]
    assert [key["kid"] for key in published] == ["k1", "k2"]
    assert all("d" not in key and key["alg"] == "ES256" for key in published)
    public = ECKey.import_key(published[0])
    assert jwt.decode(token, public, algorithms=["ES256"]).claims["sub"] == "u"


def test_the_amr_claim_says_how_the_session_signed_in() -> None:
    """A token issued with an amr carries it, and the verifier reads it back."""
    token = keys().issue_access_token(
        user_id="u", roles=["admin"], session_id="s", now=NOW, amr=["pwd", "otp"]
    )
    assert keys().verifier().verify(token, now=NOW).amr == ["pwd", "otp"]


def test_a_verifier_from_the_published_jwks_alone_accepts_tokens() -> None:
    """A verifier made from the JWK Set as published (JSON round trip, private parts never
    present) verifies tokens; one given private parts keeps only the public ones."""
    signing = keys()
    token = signing.issue_access_token(user_id="u", roles=["user"], session_id="s", now=NOW)
    published = json.loads(json.dumps(signing.public_jwks()))
    assert AccessTokenVerifier(published).verify(token, now=NOW).sub == "u"
    private = {"keys": [derive_signing_key("k1", KEY_A).as_dict(private=True)]}
    verifier = AccessTokenVerifier(private)
    assert all("d" not in key for key in verifier.jwks()["keys"])
    assert verifier.verify(token, now=NOW).sub == "u"


def test_a_verifier_refuses_key_sets_it_cannot_use() -> None:
    """An empty key set or one holding a non-P-256 key makes no verifier."""
    with pytest.raises(ValueError, match="at least one"):
        AccessTokenVerifier({"keys": []})
    with pytest.raises(ValueError, match="P-256"):
        AccessTokenVerifier({"keys": [{"kty": "oct", "k": b64(KEY_A), "kid": "k1"}]})


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=32, max_size=64), kid=st.text(min_size=1, max_size=12))
def test_a_seed_always_makes_the_same_valid_key(seed: bytes, kid: str) -> None:
    """Deriving a key twice from one seed and kid gives the same P-256 key (nodes sharing
    seeds sign alike), and a different kid gives a different key."""
    first = derive_signing_key(kid, seed).as_dict(private=False)
    assert first == derive_signing_key(kid, seed).as_dict(private=False)
    assert first["crv"] == "P-256"
    assert first["x"] != derive_signing_key(kid + "x", seed).as_dict(private=False)["x"]


def test_a_token_works_until_its_fifteen_minutes_are_up() -> None:
    """An access token verifies up to the last second of its lifetime and is refused as expired
    after."""
    signing = keys()
    token = signing.issue_access_token(user_id="u", roles=["user"], session_id="s", now=NOW)
    verifier = signing.verifier()
    verifier.verify(token, now=NOW + ACCESS_TOKEN_SECONDS - 1)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token, now=NOW + ACCESS_TOKEN_SECONDS)


def test_a_token_issued_now_verifies_on_the_real_clock() -> None:
    """A token issued at the current time verifies when the verifier reads the real clock."""
    signing = keys()
    token = signing.issue_access_token(user_id="u", roles=["user"], session_id="s", now=time.time())
    assert signing.verifier().verify(token).sub == "u"


def test_a_token_signed_with_another_key_under_a_known_kid_is_refused() -> None:
    """A token naming a known kid but signed with a different key is refused."""
    token = forge({"alg": "ES256", "kid": "k1"}, claims(), b"x" * 32)
    with pytest.raises(InvalidToken):
        keys().verifier().verify(token, now=NOW)


def test_a_token_with_an_unknown_or_missing_kid_is_refused() -> None:
    """A token whose kid is unknown or absent is refused, even when signed with a valid key."""
    verifier = keys().verifier()
    with pytest.raises(InvalidToken):
        verifier.verify(forge({"alg": "ES256", "kid": "k9"}, claims(), KEY_A), now=NOW)
    with pytest.raises(InvalidToken):
        verifier.verify(forge({"alg": "ES256"}, claims(), KEY_A), now=NOW)


def test_the_forged_helper_makes_tokens_the_verifier_accepts() -> None:
    """A hand-forged token with the right algorithm, kid and key is accepted by the verifier."""
    # so the refusals around it are about what they change, not about the helper
    token = forge({"alg": "ES256", "kid": "k1"}, claims(), KEY_A)
    assert keys().verifier().verify(token, now=NOW).sub == "user-1"


def test_alg_none_is_refused() -> None:
    """An unsigned token with alg none is refused."""
    with pytest.raises(InvalidToken):
        keys().verifier().verify(forge({"alg": "none", "kid": "k1"}, claims(), None), now=NOW)


def test_hmac_algorithms_are_refused_even_with_the_seed_or_the_public_key() -> None:
    """HS256 or HS512 tokens are refused, whether keyed with the seed (the form splitgo issued
    before ES256) or with the published public key (algorithm confusion)."""
    public = json.dumps(keys().public_jwks()["keys"][0]).encode()
    for alg in ("HS256", "HS512"):
        for key in (KEY_A, public):
            with pytest.raises(InvalidToken):
                keys().verifier().verify(forge({"alg": alg, "kid": "k1"}, claims(), key), now=NOW)


def test_a_refresh_token_is_no_access_token() -> None:
    """Neither an opaque refresh token nor a signed JWT of type refresh is accepted as an access
    token."""
    verifier = keys().verifier()
    # the opaque refresh token itself
    with pytest.raises(InvalidToken):
        verifier.verify(new_token(), now=NOW)
    # and a correctly signed JWT of another kind
    refresh_like = forge({"alg": "ES256", "kid": "k1"}, claims(typ="refresh"), KEY_A)
    with pytest.raises(InvalidToken, match="not a token of type access"):
        verifier.verify(refresh_like, now=NOW)


def test_a_token_missing_a_claim_or_tampered_with_is_refused() -> None:
    """A token missing its sid claim, one whose payload was swapped for elevated roles, or a
    malformed one is refused."""
    verifier = keys().verifier()
    incomplete = claims()
    del incomplete["sid"]
    with pytest.raises(InvalidToken):
        verifier.verify(forge({"alg": "ES256", "kid": "k1"}, incomplete, KEY_A), now=NOW)
    good = keys().issue_access_token(user_id="u", roles=["user"], session_id="s", now=NOW)
    head, _payload, signature = good.split(".")
    elevated = b64(json.dumps(claims(sub="u", roles=["admin"], sid="s")).encode())
    with pytest.raises(InvalidToken):
        verifier.verify(f"{head}.{elevated}.{signature}", now=NOW)
    with pytest.raises(InvalidToken):
        verifier.verify("not.a.jwt", now=NOW)


def test_keys_rotate_by_kid() -> None:
    """After rotation new tokens carry the new kid and old tokens verify while the old key is kept,
    then stop once it is dropped."""
    old = SigningKeys(keys={"k1": KEY_A}, current="k1")
    old_token = old.issue_access_token(user_id="u", roles=["user"], session_id="s", now=NOW)
    rotated = keys(current="k2")
    new_token_ = rotated.issue_access_token(user_id="u", roles=["user"], session_id="s", now=NOW)
    assert header(new_token_)["kid"] == "k2"
    # both verify while the old key is kept for verifying
    assert rotated.verifier().verify(old_token, now=NOW).sub == "u"
    assert rotated.verifier().verify(new_token_, now=NOW).sub == "u"
    # once it is dropped, its tokens stop working
    with pytest.raises(InvalidToken):
        AccessTokenVerifier(keys_only("k2")).verify(old_token, now=NOW)


def keys_only(kid: str) -> dict[str, object]:
    """The published key set with only this kid left in it."""
    return {"keys": [key for key in keys().public_jwks()["keys"] if key["kid"] == kid]}


def test_first_signs_takes_the_first_key() -> None:
    """first_signs makes the first key given the signing key and refuses an empty set of keys."""
    assert SigningKeys.first_signs({"k2": KEY_B, "k1": KEY_A}).current == "k2"
    with pytest.raises(ValueError, match="at least one"):
        SigningKeys.first_signs({})


def test_weak_or_inconsistent_keys_are_refused() -> None:
    """A key under 32 bytes, a current kid not among the keys, or an empty kid is refused."""
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKeys(keys={"k1": b"short"}, current="k1")
    with pytest.raises(ValueError, match="not among"):
        SigningKeys(keys={"k1": KEY_A}, current="k2")
    with pytest.raises(ValueError, match="empty"):
        SigningKeys(keys={"": KEY_A, "k1": KEY_A}, current="k1")


def test_opaque_tokens_are_random_and_stored_as_a_digest() -> None:
    """Opaque tokens are distinct 43-character URL-safe strings whose stored form is their SHA-256
    digest."""
    first, second = new_token(), new_token()
    assert first != second
    assert len(first) == 43  # 256 bits, URL-safe: fits a t.me ?start= parameter (64 max)
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert token_digest(first) == hashlib.sha256(first.encode()).digest()
    assert token_digest(first) != token_digest(second)


def test_a_token_verified_before_still_expires_and_a_changed_one_is_checked_again() -> None:
    """The verifier's memory of verified tokens never extends a token's life, and a token
    differing from a remembered one in its signature is refused."""
    signing = keys()
    verifier = signing.verifier()
    token = signing.issue_access_token(user_id="u", roles=["user"], session_id="s", now=NOW)
    assert verifier.verify(token, now=NOW).sub == "u"
    assert verifier.verify(token, now=NOW + 1).sub == "u"
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token, now=NOW + ACCESS_TOKEN_SECONDS)
    head, payload, signature = token.split(".")
    other = "A" if signature[5] != "A" else "B"
    changed = f"{head}.{payload}.{signature[:5]}{other}{signature[6:]}"
    with pytest.raises(InvalidToken):
        verifier.verify(changed, now=NOW)
