"""Every way a session ends publishes SessionsRevoked (through the outbox, with the
revocation), and ListRevokedSessions answers what an edge must load: the auth actor on a
real PostgreSQL, in the harness of test_auth_actor.py, with a recorder subscribed to the
event as the node subscribes the `broadcast` actor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from actors.auth.messages import (
    REVOCATION_SECONDS,
    ForgotPassword,
    ListRevokedSessions,
    Logout,
    PasswordResetRequested,
    Refresh,
    ResetPassword,
    RevokedSessions,
    RevokeSession,
    SessionsRevoked,
    TokenPair,
    TokenReused,
)
from actors.runtime import Actor, Message, handles
from tests.integration.test_auth_actor import (
    NEW_PASSWORD,
    Harness,
    claims_of,
    finish,
    identity,
    running,
    start,
)

pytestmark = pytest.mark.integration


class Recorder(Actor):
    """Stands in for the `broadcast` relay: records every SessionsRevoked it is told."""

    def __init__(self, seen: list[Message]) -> None:
        self.seen = seen

    @handles(SessionsRevoked)
    async def record(self, message: SessionsRevoked) -> None:
        self.seen.append(message)


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    async with running(pool) as made:
        made.system.subscribe(SessionsRevoked, "revocations")
        made.system.spawn(Recorder, "revocations", factory=lambda: Recorder(made.events))
        yield made


def sid(harness: Harness, pair: TokenPair) -> str:
    return claims_of(harness, pair).sid


async def test_logout_publishes_the_session_once(harness: Harness) -> None:
    """A logout publishes its session with the moment its last access token expires; a
    second logout of the same session publishes nothing more."""
    user = await harness.register()
    pair = await harness.login()
    await harness.ask(Logout(refresh_token=pair.refresh_token))
    event = await harness.event(SessionsRevoked)
    assert (event.user_id, event.session_ids, event.reason) == (
        user.id,
        [sid(harness, pair)],
        "logout",
    )
    assert event.expires_at == harness.clock.now + REVOCATION_SECONDS
    await harness.ask(Logout(refresh_token=pair.refresh_token))
    other = await harness.login()
    await harness.ask(Logout(refresh_token=other.refresh_token))
    second = await harness.event(SessionsRevoked, count=2)
    assert second.session_ids == [sid(harness, other)]
    assert len(harness.of(harness.events, SessionsRevoked)) == 2


async def test_revoking_one_session_publishes_it(harness: Harness) -> None:
    """DELETE /auth/sessions/{id} (RevokeSession) publishes that session, reason `revoked`."""
    user = await harness.register()
    phone = await harness.login()
    await harness.login()
    await harness.ask(RevokeSession(user_id=user.id, session_id=sid(harness, phone)))
    event = await harness.event(SessionsRevoked)
    assert (event.session_ids, event.reason) == ([sid(harness, phone)], "revoked")


async def test_a_password_reset_publishes_every_session_of_the_user(harness: Harness) -> None:
    """A password reset publishes all of the user's live sessions in one event."""
    await harness.register()
    first, second = await harness.login(), await harness.login()
    await harness.ask(ForgotPassword(email="alice@example.com"))
    mail = await harness.mail(PasswordResetRequested)
    await harness.ask(ResetPassword(token=mail.token, password=NEW_PASSWORD))
    event = await harness.event(SessionsRevoked)
    assert event.reason == "password_reset"
    assert sorted(event.session_ids) == sorted([sid(harness, first), sid(harness, second)])


async def test_refresh_token_reuse_publishes_the_session(harness: Harness) -> None:
    """A rotated refresh token presented again ends its session, and that is published."""
    await harness.register()
    first = await harness.login()
    await harness.ask(Refresh(refresh_token=first.refresh_token))
    with pytest.raises(TokenReused):
        await harness.ask(Refresh(refresh_token=first.refresh_token))
    event = await harness.event(SessionsRevoked)
    assert (event.session_ids, event.reason) == ([sid(harness, first)], "reuse")


async def test_an_email_claimed_by_a_social_login_publishes_the_squatters_sessions(
    harness: Harness,
) -> None:
    """A provider-verified sign-in that takes over an unverified account publishes the
    sessions it ended."""
    await harness.register()
    squatter = await harness.login()
    harness.oauth.identities["code-a"] = identity("g-alice", "alice@example.com")
    await harness.ask(finish("google", "code-a", await start(harness)))
    event = await harness.event(SessionsRevoked)
    assert (event.session_ids, event.reason) == ([sid(harness, squatter)], "email_claimed")


async def test_list_revoked_sessions_answers_what_may_still_have_live_tokens(
    harness: Harness,
) -> None:
    """ListRevokedSessions answers the sessions revoked within the last access-token
    lifetime (and the leeway), newest first, each with its expiry; `limit` truncates and
    says so."""
    await harness.register()
    old = await harness.login()
    await harness.ask(Logout(refresh_token=old.refresh_token))
    harness.clock.advance(REVOCATION_SECONDS + 1)  # every token of `old` has expired now
    pairs = []
    for _ in range(3):
        pair = await harness.login()
        await harness.ask(Logout(refresh_token=pair.refresh_token))
        pairs.append(pair)
        harness.clock.advance(1)
    answer = await harness.ask(ListRevokedSessions(since=0))
    assert isinstance(answer, RevokedSessions)
    assert [item.session_id for item in answer.items] == [sid(harness, p) for p in reversed(pairs)]
    assert answer.items[0].expires_at == harness.clock.now - 1 + REVOCATION_SECONDS
    assert answer.truncated is False
    limited = await harness.ask(ListRevokedSessions(since=0, limit=2))
    assert [item.session_id for item in limited.items] == [
        sid(harness, p) for p in reversed(pairs[1:])
    ]
    assert limited.truncated is True
