"""GetNames from hot profiles (actors/auth/accounts.py, `Profiles.kept_names`), on
PostgreSQL: the shard that owns and keeps a user names them from memory, every other id is
named by one batched query, and a rename (UpdateUser, what PATCH /me sends) and an account
deletion show at once on every shard.

The harness of test_auth_actor.py: two auth shards routed by `auth_key`, a fake clock.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from actors.auth import store
from actors.auth.deletion import Deletion
from actors.auth.messages import (
    DELETED_NAME,
    DeleteAccount,
    GetNames,
    GetUser,
    ListSessions,
    Names,
    UpdateUser,
    auth_key,
)
from actors.runtime import Executor
from actors.splits.messages import PlaceholderAdded
from tests.integration.test_auth_actor import PASSWORD, Harness
from tests.support.auth_shards import elsewhere

pytestmark = pytest.mark.integration


@pytest.fixture
def queried(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ids each call of `store.names` asked the table for."""
    asked: list[list[str]] = []
    real = store.names

    async def recording(db: Executor, user_ids: list[str]) -> list[tuple[str, str]]:
        asked.append(list(user_ids))
        return await real(db, user_ids)

    monkeypatch.setattr(store, "names", recording)
    return asked


async def names_on(auth_harness: Harness, key: str, user_ids: list[str]) -> list[tuple[str, str]]:
    """GetNames handled by the shard `key` routes to: (id, name) in the reply's order."""
    reply: Names = await auth_harness.auth.ask(GetNames(user_ids=user_ids), key=key)
    return [(person.user_id, person.name) for person in reply.people]


async def rename_behind(auth_harness: Harness, user_id: str, name: str) -> None:
    """Change the row without the actor knowing (only to tell memory from the table)."""
    await auth_harness.pool.execute("UPDATE users SET name = $2 WHERE id = $1", user_id, name)


async def test_the_owner_names_kept_users_from_memory(
    auth_harness: Harness, queried: list[list[str]]
) -> None:
    """A user the owner keeps is named from memory there (the table is not asked), and by
    the table on the other shard."""
    user = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=user.id))  # the owner keeps Alice
    await rename_behind(auth_harness, user.id, "Behind")
    assert await names_on(auth_harness, user.id, [user.id]) == [(user.id, "Alice")]
    assert queried == []
    assert await names_on(auth_harness, elsewhere(auth_harness, user.id), [user.id]) == [
        (user.id, "Behind")
    ]
    assert queried == [[user.id]]


async def test_one_name_is_asked_of_its_owner(
    auth_harness: Harness, queried: list[list[str]]
) -> None:
    """A GetNames of one user, sent with no key, routes to that user's shard (`auth_key`),
    which names them from memory; a longer one may go to any shard."""
    user = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=user.id))
    await rename_behind(auth_harness, user.id, "Behind")
    for _ in range(4):  # without the routing, every other ask would reach the other shard
        reply: Names = await auth_harness.ask(GetNames(user_ids=[user.id]))
        assert [(p.user_id, p.name) for p in reply.people] == [(user.id, "Alice")]
    assert queried == []
    assert auth_key(GetNames(user_ids=[user.id, "x"])) is None


async def test_the_rest_is_named_by_one_query_in_the_order_asked(
    auth_harness: Harness, queried: list[list[str]]
) -> None:
    """Kept users from memory; users not kept, placeholders and unknown ids in one query;
    the reply in the order asked, each id once, unknown ids left out."""
    alice = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=alice.id))
    home = auth_harness.system.shard_for("auth", alice.id)
    bob = await auth_harness.register("bob@example.com", "Bob")
    await auth_harness.ask(GetUser(user_id=bob.id))  # kept by his owner: maybe this one
    placeholder, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    await auth_harness.ask(
        PlaceholderAdded(
            group_id=str(uuid.uuid4()), placeholder_id=placeholder, name="Gran", added_by=bob.id
        )
    )
    asked = [unknown, bob.id, alice.id, placeholder, alice.id]
    named = await names_on(auth_harness, alice.id, asked)
    assert named == [(bob.id, "Bob"), (alice.id, "Alice"), (placeholder, "Gran")]
    kept_by_home = auth_harness.system.shard_for("auth", bob.id) == home
    rest = [unknown, placeholder] if kept_by_home else [unknown, bob.id, placeholder]
    assert queried == [rest]


async def test_a_rename_shows_at_once_on_every_shard(auth_harness: Harness) -> None:
    """After UpdateUser (PATCH /me) the owner names the new name from memory, and so does
    the table on the other shard."""
    user = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=user.id))
    await auth_harness.ask(UpdateUser(user_id=user.id, name="Alice Liddell"))
    for key in (user.id, elsewhere(auth_harness, user.id)):
        assert await names_on(auth_harness, key, [user.id]) == [(user.id, "Alice Liddell")]


async def test_a_deleted_account_is_named_deleted_user(
    auth_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After DeleteAccount both shards name the user DELETED_NAME ("Deleted user")."""

    async def nothing_held(self: Deletion, user_id: str) -> list[str]:
        return []  # no payments or splits in this auth_harness: the account holds nothing

    monkeypatch.setattr(Deletion, "_obstacles", nothing_held)
    user = await auth_harness.register()
    await auth_harness.login()
    await auth_harness.ask(GetUser(user_id=user.id))
    sessions: Any = await auth_harness.ask(ListSessions(user_id=user.id))
    await auth_harness.ask(
        DeleteAccount(user_id=user.id, session_id=sessions.items[0].id, password=PASSWORD)
    )
    for key in (user.id, elsewhere(auth_harness, user.id)):
        assert await names_on(auth_harness, key, [user.id]) == [(user.id, DELETED_NAME)]
    assert DELETED_NAME == "Deleted user"
