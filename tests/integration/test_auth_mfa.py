"""Two-factor sign-in (TOTP and recovery codes) through the real auth actor on PostgreSQL.

The harness of test_auth_actor.py: two auth shards, codec check on, a fake clock the tests
move (codes are computed by pyotp for the clock's time step).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pyotp
import pytest

from actors.auth.messages import (
    TOTP_PERIOD,
    CompleteMfaLogin,
    ConfirmTotp,
    DisableTotp,
    GetMfaStatus,
    InvalidField,
    InvalidMfaToken,
    Login,
    MfaAlreadyEnabled,
    MfaChallenge,
    MfaCodeReused,
    MfaNotEnabled,
    MfaStatus,
    RecoveryCodes,
    Refresh,
    RegenerateRecoveryCodes,
    StartTotpSetup,
    TokenPair,
    TooManyAttempts,
    TotpSetup,
    WrongMfaCode,
    WrongPassword,
)
from tests.integration.test_auth_actor import (
    PASSWORD,
    Harness,
    claims_of,
    finish,
    identity,
    running,
    start,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    async with running(pool) as made:
        yield made


def code_now(harness: Harness, secret: str, steps: int = 0) -> str:
    """The app's code at the fake clock's time, `steps` time steps later."""
    return pyotp.TOTP(secret).at(harness.clock.now + steps * TOTP_PERIOD)


async def enrolled(harness: Harness) -> tuple[str, str, list[str]]:
    """Alice, registered with TOTP on: her id, the secret and her recovery codes."""
    user = await harness.register()
    setup: TotpSetup = await harness.ask(StartTotpSetup(user_id=user.id))
    codes: RecoveryCodes = await harness.ask(
        ConfirmTotp(user_id=user.id, code=code_now(harness, setup.secret))
    )
    harness.clock.advance(TOTP_PERIOD)  # the confirming code's step is spent
    return user.id, setup.secret, codes.codes


def other_than(code: str) -> str:
    """A well-formed code that is not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def login_reply(harness: Harness) -> TokenPair | MfaChallenge:
    reply: TokenPair | MfaChallenge = await harness.ask(
        Login(email="alice@example.com", password=PASSWORD, ip="198.51.100.7")
    )
    return reply


async def challenged(harness: Harness) -> MfaChallenge:
    reply = await login_reply(harness)
    assert isinstance(reply, MfaChallenge)
    return reply


async def complete(harness: Harness, challenge: MfaChallenge, code: str) -> TokenPair:
    pair: TokenPair = await harness.ask(
        CompleteMfaLogin(mfa_token=challenge.mfa_token, code=code, ip="198.51.100.7")
    )
    return pair


async def test_setup_answers_a_secret_and_its_uri_and_confirming_turns_totp_on(
    harness: Harness,
) -> None:
    """A setup answers an otpauth URI naming splitgo and the account; a current code turns
    TOTP on and answers ten distinct recovery codes, of which only digests are stored."""
    user = await harness.register()
    setup: TotpSetup = await harness.ask(StartTotpSetup(user_id=user.id))
    assert setup.uri.startswith("otpauth://totp/splitgo:alice%40example.com?")
    assert f"secret={setup.secret}" in setup.uri
    pending: MfaStatus = await harness.ask(GetMfaStatus(user_id=user.id))
    assert (pending.totp_enabled, pending.setup_pending) == (False, True)

    codes: RecoveryCodes = await harness.ask(
        ConfirmTotp(user_id=user.id, code=code_now(harness, setup.secret))
    )
    assert len(set(codes.codes)) == 10
    status: MfaStatus = await harness.ask(GetMfaStatus(user_id=user.id))
    assert (status.totp_enabled, status.recovery_codes_left, status.setup_pending) == (
        True,
        10,
        False,
    )
    stored = await harness.pool.fetch("SELECT hash FROM mfa_recovery_codes")
    plain = {code.replace("-", "").encode() for code in codes.codes}
    assert not plain & {bytes(row["hash"]) for row in stored}
    with pytest.raises(MfaAlreadyEnabled):
        await harness.ask(StartTotpSetup(user_id=user.id))


async def test_a_wrong_code_does_not_confirm_the_setup(harness: Harness) -> None:
    """Confirming with a wrong code is refused at the code field and TOTP stays off."""
    user = await harness.register()
    setup: TotpSetup = await harness.ask(StartTotpSetup(user_id=user.id))
    wrong = f"{(int(code_now(harness, setup.secret)) + 1) % 1_000_000:06d}"
    with pytest.raises(WrongMfaCode) as refused:
        await harness.ask(ConfirmTotp(user_id=user.id, code=wrong))
    assert refused.value.details["field"] == "$.code"
    status: MfaStatus = await harness.ask(GetMfaStatus(user_id=user.id))
    assert not status.totp_enabled


async def test_login_needs_the_code_and_the_session_says_otp(harness: Harness) -> None:
    """With TOTP on, the right password answers a challenge, not tokens; the challenge and a
    current code open a session whose tokens, refreshed ones too, say pwd and otp."""
    user_id, secret, _ = await enrolled(harness)
    challenge = await challenged(harness)
    assert (challenge.expires_in, challenge.methods) == (300, ["totp", "recovery_code"])
    assert await harness.pool.fetchval("SELECT count(*) FROM auth_sessions") == 0

    pair = await complete(harness, challenge, code_now(harness, secret))
    claims = claims_of(harness, pair)
    assert (claims.sub, claims.amr) == (user_id, ["pwd", "otp"])
    refreshed: TokenPair = await harness.ask(Refresh(refresh_token=pair.refresh_token))
    assert claims_of(harness, refreshed).amr == ["pwd", "otp"]
    with pytest.raises(InvalidMfaToken):  # the challenge is spent
        await complete(harness, challenge, code_now(harness, secret, 1))


async def test_a_login_without_totp_answers_tokens_saying_pwd(harness: Harness) -> None:
    """A user without a second factor signs in as before, and the session says pwd."""
    await harness.register()
    pair = await harness.login()
    assert claims_of(harness, pair).amr == ["pwd"]


async def test_a_wrong_code_is_refused_and_the_challenge_stays(harness: Harness) -> None:
    """A wrong code is refused (no session) and the right one still works afterwards."""
    _, secret, _ = await enrolled(harness)
    challenge = await challenged(harness)
    with pytest.raises(WrongMfaCode):
        await complete(harness, challenge, other_than(code_now(harness, secret)))
    with pytest.raises(InvalidField):  # neither a TOTP code nor a recovery code
        await complete(harness, challenge, "12")
    pair = await complete(harness, challenge, code_now(harness, secret))
    assert claims_of(harness, pair).amr == ["pwd", "otp"]


async def test_a_code_is_refused_once_used_and_so_is_an_older_one(harness: Harness) -> None:
    """A code accepted once is refused as reused within its window, as is the previous
    step's code, though both are still in the window."""
    _, secret, _ = await enrolled(harness)
    used = code_now(harness, secret)
    await complete(harness, await challenged(harness), used)
    with pytest.raises(MfaCodeReused):
        await complete(harness, await challenged(harness), used)
    with pytest.raises(MfaCodeReused):
        await complete(harness, await challenged(harness), code_now(harness, secret, -1))
    harness.clock.advance(TOTP_PERIOD)
    await complete(harness, await challenged(harness), code_now(harness, secret))


async def test_five_wrong_codes_lock_the_second_factor(harness: Harness) -> None:
    """Five wrong codes in a row lock out even the right code, with retry_after, and end the
    challenge; after the lockout a new sign-in works."""
    _, secret, _ = await enrolled(harness)
    challenge = await challenged(harness)
    right = code_now(harness, secret)
    wrong = other_than(right)
    for _ in range(4):
        with pytest.raises(WrongMfaCode):
            await complete(harness, challenge, wrong)
    with pytest.raises(WrongMfaCode):
        await complete(harness, challenge, wrong)
    fresh = await challenged(harness)
    with pytest.raises(TooManyAttempts) as locked:
        await complete(harness, fresh, right)
    assert locked.value.details["retry_after"] == 300
    with pytest.raises(InvalidMfaToken):  # the lockout ended the open challenge
        await complete(harness, challenge, right)

    harness.clock.advance(301)  # the lockout is over, and so is that challenge's time
    with pytest.raises(InvalidMfaToken):
        await complete(harness, fresh, code_now(harness, secret))
    pair = await complete(harness, await challenged(harness), code_now(harness, secret))
    assert claims_of(harness, pair).amr == ["pwd", "otp"]


async def test_a_recovery_code_works_once(harness: Harness) -> None:
    """A recovery code (any case, with or without dashes) completes a sign-in once; again
    it is a wrong code; one fewer is left."""
    user_id, _, codes = await enrolled(harness)
    pair = await complete(harness, await challenged(harness), codes[0].upper().replace("-", " "))
    assert claims_of(harness, pair).amr == ["pwd", "otp"]
    with pytest.raises(WrongMfaCode):
        await complete(harness, await challenged(harness), codes[0])
    status: MfaStatus = await harness.ask(GetMfaStatus(user_id=user_id))
    assert status.recovery_codes_left == 9


async def test_regenerating_replaces_the_recovery_codes(harness: Harness) -> None:
    """New recovery codes (proven with the password) make the old ones stop working."""
    user_id, _, old = await enrolled(harness)
    new: RecoveryCodes = await harness.ask(
        RegenerateRecoveryCodes(user_id=user_id, password=PASSWORD)
    )
    assert not set(new.codes) & set(old)
    with pytest.raises(WrongMfaCode):
        await complete(harness, await challenged(harness), old[1])
    await complete(harness, await challenged(harness), new.codes[1])


async def test_disabling_needs_a_proof_and_then_login_answers_tokens(harness: Harness) -> None:
    """Turning TOTP off with a wrong password is refused; with a current code it is off, its
    recovery codes gone, and the password alone signs in again."""
    user_id, secret, _ = await enrolled(harness)
    with pytest.raises(WrongPassword):
        await harness.ask(DisableTotp(user_id=user_id, password="not the password at all"))
    with pytest.raises(InvalidField):
        await harness.ask(DisableTotp(user_id=user_id))
    await harness.ask(DisableTotp(user_id=user_id, code=code_now(harness, secret)))
    status: MfaStatus = await harness.ask(GetMfaStatus(user_id=user_id))
    assert (status.totp_enabled, status.recovery_codes_left) == (False, 0)
    assert isinstance(await login_reply(harness), TokenPair)
    with pytest.raises(MfaNotEnabled):
        await harness.ask(DisableTotp(user_id=user_id, password=PASSWORD))


async def test_an_unknown_challenge_is_refused(harness: Harness) -> None:
    """A made-up challenge token is refused as invalid, whatever the code."""
    await enrolled(harness)
    with pytest.raises(InvalidMfaToken):
        await harness.ask(CompleteMfaLogin(mfa_token="x" * 43, code="123456"))


async def test_social_login_needs_the_second_factor(harness: Harness) -> None:
    """A social sign-in into an account with TOTP on answers a challenge; the code completes
    it with a session saying otp."""
    _, secret, _ = await enrolled(harness)
    await harness.pool.execute("UPDATE users SET email_verified = true")
    harness.oauth.identities["code-1"] = identity("g-1", "alice@example.com")
    reply = await harness.ask(finish("google", "code-1", await start(harness)))
    assert isinstance(reply, MfaChallenge)
    pair = await complete(harness, reply, code_now(harness, secret))
    assert "otp" in claims_of(harness, pair).amr
