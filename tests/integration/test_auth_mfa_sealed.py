"""TOTP secrets are stored sealed (actors/auth/secret_box.py): through the real auth actor
on PostgreSQL, the harness of test_auth_mfa.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from actors.auth.messages import (
    TOTP_PERIOD,
    CompleteMfaLogin,
    ConfirmTotp,
    Login,
    MfaChallenge,
    RecoveryCodes,
    StartTotpSetup,
    TokenPair,
    TotpSetup,
    WrongMfaCode,
)
from tests.integration.test_auth_actor import PASSWORD, Harness, claims_of, running
from tests.integration.test_auth_mfa import challenged, code_now, complete, enrolled

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    async with running(pool) as made:
        yield made


async def test_enrolling_stores_no_plaintext_secret(harness: Harness) -> None:
    """Neither the pending secret nor the enabled one is stored in the clear."""
    user = await harness.register()
    setup: TotpSetup = await harness.ask(StartTotpSetup(user_id=user.id))
    pending = await harness.pool.fetchval("SELECT pending_secret FROM mfa_totp")
    assert pending.startswith("v1:")
    assert setup.secret not in pending
    await harness.pool.execute("DELETE FROM mfa_totp")

    user_id, secret, _ = await enrolled_again(harness, user.id)
    row = await harness.pool.fetchrow("SELECT secret, pending_secret FROM mfa_totp")
    assert row["pending_secret"] is None
    assert row["secret"].startswith("v1:")
    assert secret not in row["secret"]
    pair = await complete(harness, await challenged(harness), code_now(harness, secret))
    assert claims_of(harness, pair).sub == user_id


async def enrolled_again(harness: Harness, user_id: str) -> tuple[str, str, list[str]]:
    """`enrolled` for the user registered already (its setup starts afresh)."""

    setup: TotpSetup = await harness.ask(StartTotpSetup(user_id=user_id))
    codes: RecoveryCodes = await harness.ask(
        ConfirmTotp(user_id=user_id, code=code_now(harness, setup.secret))
    )
    harness.clock.advance(TOTP_PERIOD)
    return user_id, setup.secret, codes.codes


async def test_an_old_plaintext_secret_works_and_is_sealed_on_use(harness: Harness) -> None:
    """A secret stored in the clear before sealing still signs in, and is sealed then."""
    user_id, secret, _ = await enrolled(harness)
    await harness.pool.execute("UPDATE mfa_totp SET secret = $1", secret)
    pair: TokenPair = await complete(harness, await challenged(harness), code_now(harness, secret))
    assert claims_of(harness, pair).sub == user_id
    stored = await harness.pool.fetchval("SELECT secret FROM mfa_totp")
    assert stored.startswith("v1:")
    assert secret not in stored


async def test_a_secret_copied_from_another_user_matches_no_code(harness: Harness) -> None:
    """A sealed secret moved to another user's row opens for nobody: that user's codes fail
    while recovery codes still work."""

    alice_id, alice_secret, _ = await enrolled(harness)
    bob = await harness.register("bob@example.com", "Bob")
    _, bob_secret, bob_codes = await enrolled_again(harness, bob.id)
    await harness.pool.execute(
        "UPDATE mfa_totp SET secret = (SELECT secret FROM mfa_totp WHERE user_id = $1)"
        " WHERE user_id = $2",
        alice_id,
        bob.id,
    )

    challenge = await harness.ask(Login(email="bob@example.com", password=PASSWORD))
    assert isinstance(challenge, MfaChallenge)
    for secret in (alice_secret, bob_secret):
        with pytest.raises(WrongMfaCode):
            await harness.ask(
                CompleteMfaLogin(mfa_token=challenge.mfa_token, code=code_now(harness, secret))
            )
    pair = await harness.ask(CompleteMfaLogin(mfa_token=challenge.mfa_token, code=bob_codes[0]))
    assert claims_of(harness, pair).sub == bob.id
