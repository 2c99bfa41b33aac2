"""Every auth message that writes a session has the owner's kept list dropped
(actors/auth/profiles.py, `SessionsTransaction`): after each, the list the owner serves from
memory is the table's.

Each test first has the owner keep the user's list, then changes the rows behind the actor's
back (`agents_behind`), so a kept list that was not dropped shows the old agents and the
comparison with the table fails. Writers that route by token or challenge (no user id) are
sent to the shard that does not own the user: its transaction must tell the owner before it
replies. The harness of test_auth_actor.py: two auth shards, the outbox relay, a fake clock.
"""

from __future__ import annotations

import json
import uuid

import pytest

from actors.auth import store
from actors.auth.actor import Auth
from actors.auth.deletion import Deletion
from actors.auth.messages import (
    ChangePassword,
    CompleteMfaLogin,
    DeleteAccount,
    FinishPasskeySignIn,
    ForgotPassword,
    GetUser,
    ListSessions,
    Login,
    Logout,
    PasswordResetRequested,
    Refresh,
    ResetPassword,
    RevokeSession,
    SessionList,
    TokenPair,
    TokenReused,
)
from actors.auth.profiles import SessionsTransaction, UntrackedSessionWrite, sessions_changing
from actors.runtime import Transaction
from tests.integration.test_auth_actor import (
    NEW_PASSWORD,
    PASSWORD,
    PUBLIC_URL,
    Harness,
    finish,
    identity,
    start,
)
from tests.integration.test_auth_mfa import challenged, code_now, enrolled
from tests.integration.test_auth_passkeys import add_passkey, sign_in_options
from tests.support.auth_shards import elsewhere, relayed
from tests.support.soft_authenticator import SoftAuthenticator

pytestmark = pytest.mark.integration


async def kept_then_changed_behind(auth_harness: Harness, user_id: str) -> None:
    """The owner keeps the user's list; then the rows change without the actor knowing."""
    await relayed(auth_harness)
    await auth_harness.ask(ListSessions(user_id=user_id))
    marker = f"behind-{uuid.uuid4()}"
    await auth_harness.pool.execute(
        "UPDATE auth_sessions SET user_agent = $2 WHERE user_id = $1", user_id, marker
    )
    kept = await auth_harness.ask(ListSessions(user_id=user_id))
    assert all(item.user_agent != marker for item in kept.items)  # served from memory


async def assert_served_is_table(auth_harness: Harness, user_id: str) -> SessionList:
    """The list the owner serves equals the table's live sessions, field by field."""
    served: SessionList = await auth_harness.ask(ListSessions(user_id=user_id))
    rows = await store.live_sessions(auth_harness.pool, user_id, auth_harness.clock())
    assert [(s.id, s.user_agent) for s in served.items] == [(r.id, r.user_agent) for r in rows]
    return served


async def test_login_on_either_shard(auth_harness: Harness) -> None:
    """A password sign-in, on the owner's shard and on the other, drops the kept list."""
    user = await auth_harness.register()
    await auth_harness.login(user_agent="first")
    for key in (user.id, elsewhere(auth_harness, user.id)):
        await kept_then_changed_behind(auth_harness, user.id)
        auth_harness.clock.advance(1)
        await auth_harness.auth.ask(
            Login(email=user.email, password=PASSWORD, user_agent="next"), key=key
        )
        served = await assert_served_is_table(auth_harness, user.id)
        assert served.items[0].user_agent == "next"


async def test_refresh_reuse_and_logout(auth_harness: Harness) -> None:
    """A refresh (rotation), a spent token coming back (the family ends) and a sign-out,
    each on the shard that does not own the user, drop the kept list."""
    user = await auth_harness.register()
    other = elsewhere(auth_harness, user.id)
    first = await auth_harness.login(user_agent="a")
    second = await auth_harness.login(user_agent="b")
    await kept_then_changed_behind(auth_harness, user.id)
    auth_harness.clock.advance(5)
    await auth_harness.auth.ask(
        Refresh(refresh_token=first.refresh_token, user_agent="a2"), key=other
    )
    assert "a2" in [
        s.user_agent for s in (await assert_served_is_table(auth_harness, user.id)).items
    ]
    await kept_then_changed_behind(auth_harness, user.id)
    with pytest.raises(TokenReused):
        await auth_harness.auth.ask(Refresh(refresh_token=first.refresh_token), key=other)
    assert len((await assert_served_is_table(auth_harness, user.id)).items) == 1
    await kept_then_changed_behind(auth_harness, user.id)
    await auth_harness.auth.ask(Logout(refresh_token=second.refresh_token), key=other)
    assert (await assert_served_is_table(auth_harness, user.id)).items == []


async def test_revoke_and_password_change_and_reset(auth_harness: Harness) -> None:
    """Revoking a session, changing the password and resetting it each drop the kept list."""
    user = await auth_harness.register()
    for agent in ("a", "b", "c"):
        auth_harness.clock.advance(1)
        await auth_harness.login(user_agent=agent)
    items = (await assert_served_is_table(auth_harness, user.id)).items
    await kept_then_changed_behind(auth_harness, user.id)
    await auth_harness.ask(RevokeSession(user_id=user.id, session_id=items[2].id))
    assert len((await assert_served_is_table(auth_harness, user.id)).items) == 2
    await kept_then_changed_behind(auth_harness, user.id)
    await auth_harness.ask(
        ChangePassword(
            user_id=user.id,
            session_id=items[0].id,
            current_password=PASSWORD,
            password=NEW_PASSWORD,
        )
    )
    assert [s.id for s in (await assert_served_is_table(auth_harness, user.id)).items] == [
        items[0].id
    ]
    await kept_then_changed_behind(auth_harness, user.id)
    await auth_harness.ask(ForgotPassword(email=user.email))
    mail = await auth_harness.mail(PasswordResetRequested)
    await auth_harness.auth.ask(
        ResetPassword(token=mail.token, password="a brand new passphrase 42"),
        key=elsewhere(auth_harness, user.id),
    )
    assert (await assert_served_is_table(auth_harness, user.id)).items == []


async def test_second_factor_sign_in(auth_harness: Harness) -> None:
    """Completing a sign-in with a TOTP code (routed by its challenge, here to the shard
    that does not own the user) drops the kept list."""
    user_id, secret, _ = await enrolled(auth_harness)
    await kept_then_changed_behind(auth_harness, user_id)
    challenge = await challenged(auth_harness)
    pair = await auth_harness.auth.ask(
        CompleteMfaLogin(
            mfa_token=challenge.mfa_token, code=code_now(auth_harness, secret), user_agent="otp"
        ),
        key=elsewhere(auth_harness, user_id),
    )
    assert isinstance(pair, TokenPair)
    served = await assert_served_is_table(auth_harness, user_id)
    assert [s.user_agent for s in served.items] == ["otp"]


async def test_passkey_sign_in(auth_harness: Harness) -> None:
    """A passkey sign-in on the shard that does not own the user drops the kept list."""
    user = await auth_harness.register()
    authenticator = SoftAuthenticator(PUBLIC_URL)
    await add_passkey(auth_harness, user.id, authenticator)
    await auth_harness.login(user_agent="password")
    await kept_then_changed_behind(auth_harness, user.id)
    auth_harness.clock.advance(1)
    assertion = authenticator.get(await sign_in_options(auth_harness))
    await auth_harness.auth.ask(
        FinishPasskeySignIn(credential=json.dumps(assertion), user_agent="passkey"),
        key=elsewhere(auth_harness, user.id),
    )
    served = await assert_served_is_table(auth_harness, user.id)
    assert served.items[0].user_agent == "passkey"


async def test_social_sign_in_that_claims_the_email(auth_harness: Harness) -> None:
    """A provider vouching for an unverified account's email ends its sessions and opens
    one of its own: both show at the owner's next list."""
    user = await auth_harness.register()
    await auth_harness.login(user_agent="squatter")
    await kept_then_changed_behind(auth_harness, user.id)
    auth_harness.oauth.identities["code-1"] = identity("g-1", user.email)
    state = await start(auth_harness)
    await auth_harness.auth.ask(
        finish("google", "code-1", state), key=elsewhere(auth_harness, user.id)
    )
    served = await assert_served_is_table(auth_harness, user.id)
    assert [s.user_agent for s in served.items] == ["browser"]


async def test_account_deletion(auth_harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting the account ends every session: the kept list is dropped."""

    async def nothing_held(self: Deletion, user_id: str) -> list[str]:
        return []  # no payments or splits in this auth_harness: the account holds nothing

    monkeypatch.setattr(Deletion, "_obstacles", nothing_held)
    user = await auth_harness.register()
    await auth_harness.login(user_agent="a")
    await auth_harness.login(user_agent="b")
    await kept_then_changed_behind(auth_harness, user.id)
    session_id = (await auth_harness.ask(ListSessions(user_id=user.id))).items[0].id
    await auth_harness.ask(DeleteAccount(user_id=user.id, session_id=session_id, password=PASSWORD))
    assert (await assert_served_is_table(auth_harness, user.id)).items == []


async def test_a_session_write_outside_an_auth_transaction_fails_loudly(
    auth_harness: Harness,
) -> None:
    """`sessions_changing` in a transaction that would not tell the owner raises, inside it,
    so the write rolls back: a forgotten tracking can never leave a stale copy."""
    user = await auth_harness.register()
    home = auth_harness.system.shard_for("auth", user.id)
    actor = auth_harness.system._groups["auth"].workers[home]._actor
    assert isinstance(actor, Auth)

    async def write_untracked() -> None:
        async with Transaction(actor, dedupe=False) as tx:
            await tx.execute("UPDATE users SET name = 'Rolled back' WHERE id = $1", user.id)
            await sessions_changing(tx, user.id)

    with pytest.raises(UntrackedSessionWrite):
        await write_untracked()
    assert await auth_harness.pool.fetchval("SELECT name FROM users WHERE id = $1", user.id) == (
        "Alice"
    )
    assert isinstance(actor._context.transaction(), SessionsTransaction)


async def test_reads_run_their_handlers_bare(auth_harness: Harness) -> None:
    """The shard's loop calls GetUser's (GET /api/v1/me) and ListSessions' handlers as they
    are: tracking session writes lives in the transaction and costs a read nothing."""
    for worker in auth_harness.system._groups["auth"].workers:
        actor = worker._actor
        assert isinstance(actor, Auth)
        assert actor.dispatch[GetUser] == actor.get_user
        assert actor.dispatch[ListSessions] == actor.list_sessions
