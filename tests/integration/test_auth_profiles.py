"""Hot profiles in the auth actor (actors/auth/profiles.py), on PostgreSQL: GetUser answered
from the owner shard's memory, written through by every write, never stale after a failed
write, reloaded after passivation, and forgotten when another shard changes the user.

The harness of test_auth_actor.py: two auth shards routed by `auth_key`, the outbox relay,
a fake clock the tests move.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from actors.auth import store
from actors.auth.messages import (
    ConsumeTelegramLink,
    CreateTelegramLink,
    EmailVerificationRequested,
    GetContacts,
    GetUser,
    GrantRole,
    MakeAdmin,
    UpdateUser,
    UserView,
    VerifyEmail,
)
from actors.auth.profiles import HOLDER, PROFILE_IDLE_SECONDS
from actors.runtime.resident import Resident
from tests.integration.test_auth_actor import Harness, running

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    async with running(pool) as made:
        yield made


def holders(harness: Harness) -> list[Resident[str, Any] | None]:
    """Each auth shard's profiles holder (None before its first use)."""
    group = harness.system._groups["auth"]
    found: list[Resident[str, Any] | None] = []
    for worker in group.workers:
        actor = worker._actor
        residents = actor.__dict__.get("_residents", {}) if actor is not None else {}
        found.append(residents.get(HOLDER))
    return found


def owner(harness: Harness, user_id: str) -> int:
    return harness.system.shard_for("auth", user_id)


def other_key(harness: Harness, shard: int) -> str:
    """A routing key that lands on another shard than `shard`."""
    for n in range(100):
        if harness.system.shard_for("auth", f"elsewhere-{n}") != shard:
            return f"elsewhere-{n}"
    raise AssertionError("every key routes to one shard")


async def rename_behind(harness: Harness, user_id: str, name: str) -> None:
    """Change the row without the actor knowing (only to tell memory from the table)."""
    await harness.pool.execute("UPDATE users SET name = $2 WHERE id = $1", user_id, name)


async def test_get_user_is_answered_from_the_owner_shards_memory(harness: Harness) -> None:
    """After the first read, GetUser is answered from memory, kept only by the owner shard."""
    user = await harness.register()
    first = await harness.ask(GetUser(user_id=user.id))
    await rename_behind(harness, user.id, "Behind")
    second = await harness.ask(GetUser(user_id=user.id))
    assert second == first  # not read again
    kept = holders(harness)
    home = owner(harness, user.id)
    mine = kept[home]
    assert mine is not None
    assert user.id in mine
    others = [h for i, h in enumerate(kept) if i != home]
    assert all(h is None or user.id not in h for h in others)


async def test_get_user_after_update_user_shows_the_new_values(harness: Harness) -> None:
    """UpdateUser writes through: the next GetUser (from memory) shows the new name and phone."""
    user = await harness.register()
    await harness.ask(GetUser(user_id=user.id))
    updated = await harness.ask(UpdateUser(user_id=user.id, name="Alicia", phone="+14155550100"))
    shown = await harness.ask(GetUser(user_id=user.id))
    assert shown == updated
    assert (shown.name, shown.phone, shown.phone_verified) == ("Alicia", "+14155550100", False)
    contacts = await harness.ask(GetContacts(user_id=user.id))
    assert (contacts.name, contacts.phone) == ("Alicia", "+14155550100")


async def test_a_role_granted_shows_at_once(harness: Harness) -> None:
    """GrantRole writes through to the kept profile."""
    user = await harness.register()
    await harness.ask(GetUser(user_id=user.id))
    await harness.ask(GrantRole(user_id=user.id, role="driver"))
    shown = await harness.ask(GetUser(user_id=user.id))
    assert "driver" in shown.roles


async def test_an_admin_made_by_email_on_another_shard_shows_at_once(harness: Harness) -> None:
    """MakeAdmin routes by email, maybe to another shard: the owner forgets the user before
    the reply, so the next GetUser shows the role."""
    user = await harness.register()
    await harness.ask(GetUser(user_id=user.id))
    await harness.auth.ask(
        MakeAdmin(email=user.email), key=other_key(harness, owner(harness, user.id))
    )
    shown = await harness.ask(GetUser(user_id=user.id))
    assert "admin" in shown.roles


async def test_a_failed_write_leaves_nothing_stale(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that raises drops the kept user: the next read loads the table's row, not
    what memory held before."""
    user = await harness.register()
    await harness.ask(GetUser(user_id=user.id))
    await rename_behind(harness, user.id, "Behind")

    async def failing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "update_profile", failing)
    with pytest.raises(Exception, match=r"went away|handler"):
        await harness.ask(UpdateUser(user_id=user.id, name="Never"))
    monkeypatch.undo()
    shown = await harness.ask(GetUser(user_id=user.id))
    assert shown.name == "Behind"


async def test_an_idle_profile_is_passivated_and_reloaded(harness: Harness) -> None:
    """A profile unused for the idle time leaves memory; the next read loads it again."""
    user = await harness.register()
    await harness.ask(GetUser(user_id=user.id))
    await rename_behind(harness, user.id, "Behind")
    harness.clock.advance(PROFILE_IDLE_SECONDS + 1)
    shown = await harness.ask(GetUser(user_id=user.id))
    assert shown.name == "Behind"


async def test_a_verification_on_another_shard_reaches_the_owner(harness: Harness) -> None:
    """A verification link routes by its token: whichever shard spends it, the owner forgets
    the user before the reply, so GetUser says verified at once."""
    user = await harness.register()
    assert (await harness.ask(GetUser(user_id=user.id))).email_verified is False
    mail = await harness.mail(EmailVerificationRequested)
    await harness.auth.ask(
        VerifyEmail(token=mail.token), key=other_key(harness, owner(harness, user.id))
    )
    shown = await harness.ask(GetUser(user_id=user.id))
    assert shown.email_verified is True


async def test_a_telegram_link_updates_both_accounts(harness: Harness) -> None:
    """Linking a chat shows on the new account, and on the account it was taken from, at once."""
    alice = await harness.register()
    bob = await harness.register("bob@example.com", "Bob")
    for user in (alice, bob):
        link = await harness.ask(CreateTelegramLink(user_id=user.id))
        token = parse_qs(urlsplit(link.url).query)["start"][0]
        await harness.ask(GetUser(user_id=alice.id))
        await harness.ask(GetUser(user_id=bob.id))
        await harness.auth.ask(
            ConsumeTelegramLink(token=token, chat_id=4242),
            key=other_key(harness, owner(harness, user.id)),
        )
    shown_alice: UserView = await harness.ask(GetUser(user_id=alice.id))
    shown_bob: UserView = await harness.ask(GetUser(user_id=bob.id))
    assert (shown_alice.telegram_linked, shown_bob.telegram_linked) == (False, True)
