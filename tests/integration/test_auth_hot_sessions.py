"""Hot sessions in the auth actor (actors/auth/profiles.py, `HotSessions`), on PostgreSQL:
the shard that owns a user answers ListSessions from memory, and every sign-in, refresh,
sign-out, revocation and password change, made on whichever shard, shows at the next list.

The harness of test_auth_actor.py: two auth shards routed by `auth_key`, the outbox relay,
a fake clock the tests move.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors.auth import store
from actors.auth.messages import (
    REFRESH_TOKEN_SECONDS,
    ChangePassword,
    ForgetCachedSessions,
    ListSessions,
    Login,
    Logout,
    Refresh,
    RevokeSession,
    SessionList,
    TokenPair,
)
from actors.auth.profiles import SESSIONS_HOLDER
from tests.integration.test_auth_actor import PASSWORD, Harness
from tests.support.auth_shards import elsewhere, holders, relayed

pytestmark = pytest.mark.integration


async def listed(auth_harness: Harness, user_id: str) -> SessionList:
    found: SessionList = await auth_harness.ask(ListSessions(user_id=user_id))
    return found


async def agents_behind(auth_harness: Harness, user_id: str, agent: str) -> None:
    """Change the rows without the actor knowing (only to tell memory from the table)."""
    await auth_harness.pool.execute(
        "UPDATE auth_sessions SET user_agent = $2 WHERE user_id = $1", user_id, agent
    )


async def test_sessions_are_listed_from_the_owner_shards_memory(auth_harness: Harness) -> None:
    """After the first list, ListSessions is answered from memory, kept only by the owner."""
    user = await auth_harness.register()
    await auth_harness.login()
    await relayed(auth_harness)
    first = await listed(auth_harness, user.id)
    assert [s.user_agent for s in first.items] == ["pytest"]
    await agents_behind(auth_harness, user.id, "behind")
    assert await listed(auth_harness, user.id) == first  # not read again
    home = auth_harness.system.shard_for("auth", user.id)
    kept = holders(auth_harness, SESSIONS_HOLDER)
    mine = kept[home]
    assert mine is not None
    assert user.id in mine
    assert all(h is None or user.id not in h for i, h in enumerate(kept) if i != home)


async def test_a_sign_in_on_another_shard_shows_at_the_next_list(auth_harness: Harness) -> None:
    """A sign-in handled on a shard that does not own the user (it routes by email) has the
    owner forget the kept list before it replies."""
    user = await auth_harness.register()
    await auth_harness.login(user_agent="phone")
    assert len((await listed(auth_harness, user.id)).items) == 1
    await agents_behind(auth_harness, user.id, "table")
    auth_harness.clock.advance(5)
    await auth_harness.auth.ask(
        Login(email=user.email, password=PASSWORD, user_agent="laptop"),
        key=elsewhere(auth_harness, user.id),
    )
    shown = await listed(auth_harness, user.id)
    assert [s.user_agent for s in shown.items] == ["laptop", "table"]


async def test_refresh_and_sign_out_by_token_show_at_the_next_list(auth_harness: Harness) -> None:
    """A refresh (the session's last use moves) and a sign-out (it is gone), each handled on a
    shard that does not own the user, show at the owner's next list."""
    user = await auth_harness.register()
    pair = await auth_harness.login(user_agent="phone")
    before = (await listed(auth_harness, user.id)).items[0]
    auth_harness.clock.advance(60)
    other = elsewhere(auth_harness, user.id)
    fresh: TokenPair = await auth_harness.auth.ask(
        Refresh(refresh_token=pair.refresh_token, user_agent="phone 2"), key=other
    )
    after = (await listed(auth_harness, user.id)).items[0]
    assert (after.id, after.user_agent) == (before.id, "phone 2")
    assert after.last_used_at > before.last_used_at
    await auth_harness.auth.ask(Logout(refresh_token=fresh.refresh_token), key=other)
    assert (await listed(auth_harness, user.id)).items == []


async def test_revocations_by_the_owner_show_at_once(auth_harness: Harness) -> None:
    """Revoking one session, and changing the password (every other session ends), show at
    the next list."""
    user = await auth_harness.register()
    for agent in ("a", "b", "c"):
        auth_harness.clock.advance(1)
        await auth_harness.login(user_agent=agent)
    items = (await listed(auth_harness, user.id)).items
    assert [s.user_agent for s in items] == ["c", "b", "a"]
    await auth_harness.ask(RevokeSession(user_id=user.id, session_id=items[2].id))
    assert [s.user_agent for s in (await listed(auth_harness, user.id)).items] == ["c", "b"]
    await auth_harness.ask(
        ChangePassword(
            user_id=user.id,
            session_id=items[0].id,
            current_password=PASSWORD,
            password="another horse battery staple 9",
        )
    )
    assert [s.user_agent for s in (await listed(auth_harness, user.id)).items] == ["c"]


async def test_expired_sessions_leave_the_kept_list(auth_harness: Harness) -> None:
    """A kept session past its expiry is no longer listed (filtered at each read)."""
    user = await auth_harness.register()
    await auth_harness.login()
    assert len((await listed(auth_harness, user.id)).items) == 1
    auth_harness.clock.advance(REFRESH_TOKEN_SECONDS + 1)
    assert (await listed(auth_harness, user.id)).items == []


async def test_a_failed_sign_in_write_leaves_nothing_stale(
    auth_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-in whose transaction fails after it noted the change still has the owner drop
    the kept list: the next list is the table's."""
    user = await auth_harness.register()
    await auth_harness.login(user_agent="phone")
    await relayed(auth_harness)
    await listed(auth_harness, user.id)
    await agents_behind(auth_harness, user.id, "table")

    async def failing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "open_session", failing)
    with pytest.raises(Exception, match="database went away"):
        await auth_harness.auth.ask(
            Login(email=user.email, password=PASSWORD), key=elsewhere(auth_harness, user.id)
        )
    monkeypatch.undo()
    assert [s.user_agent for s in (await listed(auth_harness, user.id)).items] == ["table"]


async def test_forget_cached_sessions_drops_the_owners_copy(auth_harness: Harness) -> None:
    """ForgetCachedSessions (what the outbox delivers after a crash) drops the owner's list."""
    user = await auth_harness.register()
    await auth_harness.login(user_agent="phone")
    await relayed(auth_harness)
    await listed(auth_harness, user.id)
    await agents_behind(auth_harness, user.id, "table")
    await auth_harness.ask(ForgetCachedSessions(user_id=user.id))
    assert [s.user_agent for s in (await listed(auth_harness, user.id)).items] == ["table"]
