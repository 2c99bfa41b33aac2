"""Hot profiles in the auth actor (actors/auth/profiles.py), on PostgreSQL: GetUser answered
from the owner shard's memory, written through by every write, never stale after a failed
write, reloaded after passivation, and forgotten when another shard changes the user.

The harness of test_auth_actor.py: two auth shards routed by `auth_key`, the outbox relay,
a fake clock the tests move.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from tests.integration.test_auth_actor import Harness
from tests.support.auth_shards import elsewhere, holders

pytestmark = pytest.mark.integration


async def rename_behind(auth_harness: Harness, user_id: str, name: str) -> None:
    """Change the row without the actor knowing (only to tell memory from the table)."""
    await auth_harness.pool.execute("UPDATE users SET name = $2 WHERE id = $1", user_id, name)


async def test_get_user_is_answered_from_the_owner_shards_memory(auth_harness: Harness) -> None:
    """After the first read, GetUser is answered from memory, kept only by the owner shard."""
    user = await auth_harness.register()
    first = await auth_harness.ask(GetUser(user_id=user.id))
    await rename_behind(auth_harness, user.id, "Behind")
    second = await auth_harness.ask(GetUser(user_id=user.id))
    assert second == first  # not read again
    kept = holders(auth_harness, HOLDER)
    home = auth_harness.system.shard_for("auth", user.id)
    mine = kept[home]
    assert mine is not None
    assert user.id in mine
    others = [h for i, h in enumerate(kept) if i != home]
    assert all(h is None or user.id not in h for h in others)


async def test_get_user_after_update_user_shows_the_new_values(auth_harness: Harness) -> None:
    """UpdateUser writes through: the next GetUser (from memory) shows the new name and phone."""
    user = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=user.id))
    updated = await auth_harness.ask(
        UpdateUser(user_id=user.id, name="Alicia", phone="+14155550100")
    )
    shown = await auth_harness.ask(GetUser(user_id=user.id))
    assert shown == updated
    assert (shown.name, shown.phone, shown.phone_verified) == ("Alicia", "+14155550100", False)
    contacts = await auth_harness.ask(GetContacts(user_id=user.id))
    assert (contacts.name, contacts.phone) == ("Alicia", "+14155550100")


async def test_a_role_granted_shows_at_once(auth_harness: Harness) -> None:
    """GrantRole writes through to the kept profile."""
    user = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=user.id))
    await auth_harness.ask(GrantRole(user_id=user.id, role="driver"))
    shown = await auth_harness.ask(GetUser(user_id=user.id))
    assert "driver" in shown.roles


async def test_an_admin_made_by_email_on_another_shard_shows_at_once(auth_harness: Harness) -> None:
    """MakeAdmin routes by email, maybe to another shard: the owner forgets the user before
    the reply, so the next GetUser shows the role."""
    user = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=user.id))
    await auth_harness.auth.ask(MakeAdmin(email=user.email), key=elsewhere(auth_harness, user.id))
    shown = await auth_harness.ask(GetUser(user_id=user.id))
    assert "admin" in shown.roles


async def test_a_failed_write_leaves_nothing_stale(
    auth_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that raises drops the kept user: the next read loads the table's row, not
    what memory held before."""
    user = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=user.id))
    await rename_behind(auth_harness, user.id, "Behind")

    async def failing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "update_profile", failing)
    with pytest.raises(Exception, match=r"went away|handler"):
        await auth_harness.ask(UpdateUser(user_id=user.id, name="Never"))
    monkeypatch.undo()
    shown = await auth_harness.ask(GetUser(user_id=user.id))
    assert shown.name == "Behind"


async def test_an_idle_profile_is_passivated_and_reloaded(auth_harness: Harness) -> None:
    """A profile unused for the idle time leaves memory; the next read loads it again."""
    user = await auth_harness.register()
    await auth_harness.ask(GetUser(user_id=user.id))
    await rename_behind(auth_harness, user.id, "Behind")
    auth_harness.clock.advance(PROFILE_IDLE_SECONDS + 1)
    shown = await auth_harness.ask(GetUser(user_id=user.id))
    assert shown.name == "Behind"


async def test_a_verification_on_another_shard_reaches_the_owner(auth_harness: Harness) -> None:
    """A verification link routes by its token: whichever shard spends it, the owner forgets
    the user before the reply, so GetUser says verified at once."""
    user = await auth_harness.register()
    assert (await auth_harness.ask(GetUser(user_id=user.id))).email_verified is False
    mail = await auth_harness.mail(EmailVerificationRequested)
    await auth_harness.auth.ask(VerifyEmail(token=mail.token), key=elsewhere(auth_harness, user.id))
    shown = await auth_harness.ask(GetUser(user_id=user.id))
    assert shown.email_verified is True


async def test_a_telegram_link_updates_both_accounts(auth_harness: Harness) -> None:
    """Linking a chat shows on the new account, and on the account it was taken from, at once."""
    alice = await auth_harness.register()
    bob = await auth_harness.register("bob@example.com", "Bob")
    for user in (alice, bob):
        link = await auth_harness.ask(CreateTelegramLink(user_id=user.id))
        token = parse_qs(urlsplit(link.url).query)["start"][0]
        await auth_harness.ask(GetUser(user_id=alice.id))
        await auth_harness.ask(GetUser(user_id=bob.id))
        await auth_harness.auth.ask(
            ConsumeTelegramLink(token=token, chat_id=4242),
            key=elsewhere(auth_harness, user.id),
        )
    shown_alice: UserView = await auth_harness.ask(GetUser(user_id=alice.id))
    shown_bob: UserView = await auth_harness.ask(GetUser(user_id=bob.id))
    assert (shown_alice.telegram_linked, shown_bob.telegram_linked) == (False, True)
