"""Passkeys through the auth actor on a real PostgreSQL, with real WebAuthn responses made by
a software authenticator (tests/support/soft_authenticator.py): registration, sign-in, the
list, and every refusal (replays, another site's origin, unknown credentials)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from actors.auth.messages import (
    DeletePasskey,
    FinishPasskeyRegistration,
    FinishPasskeySignIn,
    InvalidField,
    ListPasskeys,
    PasskeyExists,
    PasskeyList,
    PasskeyNotFound,
    PasskeyOptions,
    PasskeyRejected,
    PasskeyReplayed,
    PasskeyView,
    RenamePasskey,
    StartPasskeyRegistration,
    StartPasskeySignIn,
    TokenPair,
    UnknownPasskey,
)
from tests.integration.test_auth_actor import PUBLIC_URL, Harness, claims_of, running
from tests.support.soft_authenticator import SoftAuthenticator, b64url

pytestmark = pytest.mark.integration

EVIL = "https://splitgo.test.evil.example"


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    """The auth actor's harness of test_auth_actor.py: two shards, a fake clock."""
    async with running(pool) as made:
        yield made


async def registration_options(harness: Harness, user_id: str) -> dict[str, Any]:
    reply = await harness.ask(StartPasskeyRegistration(user_id=user_id))
    assert isinstance(reply, PasskeyOptions)
    options: dict[str, Any] = json.loads(reply.options)
    return options


async def sign_in_options(harness: Harness) -> dict[str, Any]:
    reply = await harness.ask(StartPasskeySignIn())
    assert isinstance(reply, PasskeyOptions)
    options: dict[str, Any] = json.loads(reply.options)
    return options


async def add_passkey(
    harness: Harness, user_id: str, authenticator: SoftAuthenticator, name: str = "Phone"
) -> PasskeyView:
    options = await registration_options(harness, user_id)
    credential = json.dumps(authenticator.create(options))
    view = await harness.ask(
        FinishPasskeyRegistration(user_id=user_id, credential=credential, name=name)
    )
    assert isinstance(view, PasskeyView)
    return view


async def sign_in(harness: Harness, assertion: dict[str, Any]) -> TokenPair:
    pair = await harness.ask(
        FinishPasskeySignIn(credential=json.dumps(assertion), ip="198.51.100.9", user_agent="t")
    )
    assert isinstance(pair, TokenPair)
    return pair


async def test_registration_options_name_the_site_the_user_and_their_passkeys(
    harness: Harness,
) -> None:
    """Registration options carry the public URL's host as RP ID, a stable random user handle,
    the user's existing passkeys to exclude, and prefer a resident key and verification."""
    user = await harness.register()
    first = await registration_options(harness, user.id)
    assert first["rp"] == {"id": "splitgo.test", "name": "splitgo"}
    assert first["user"]["name"] == user.email
    assert first["user"]["id"] not in (user.id, b64url(user.id.encode()))
    assert first["authenticatorSelection"]["residentKey"] == "preferred"
    assert first["authenticatorSelection"]["userVerification"] == "preferred"
    assert first["excludeCredentials"] == []
    authenticator = SoftAuthenticator(PUBLIC_URL)
    await add_passkey(harness, user.id, authenticator)
    second = await registration_options(harness, user.id)
    assert second["user"]["id"] == first["user"]["id"]
    assert second["challenge"] != first["challenge"]
    assert [item["id"] for item in second["excludeCredentials"]] == [
        b64url(authenticator.credential_id)
    ]


async def test_a_registered_passkey_signs_its_owner_in_without_a_password(
    harness: Harness,
) -> None:
    """A passkey added while signed in is listed, and its assertion opens a session of its
    owner; the options name no credential (the authenticator offers its own)."""
    user = await harness.register()
    view = await add_passkey(harness, user.id, SoftAuthenticator(PUBLIC_URL), "  My   phone ")
    assert (view.name, view.transports, view.last_used_at) == ("My phone", ["internal"], None)
    authenticator = SoftAuthenticator(PUBLIC_URL)
    harness.clock.advance(1)  # listed oldest first: the two must not share a created_at
    await add_passkey(harness, user.id, authenticator, "Laptop")
    options = await sign_in_options(harness)
    assert options["rpId"] == "splitgo.test"
    assert options["allowCredentials"] == []
    pair = await sign_in(harness, authenticator.get(options))
    claims = claims_of(harness, pair)
    assert claims.sub == user.id
    assert claims.amr == ["hwk", "user"]
    listed = await harness.ask(ListPasskeys(user_id=user.id))
    assert isinstance(listed, PasskeyList)
    assert [(item.name, item.last_used_at is not None) for item in listed.items] == [
        ("My phone", False),
        ("Laptop", True),
    ]


async def test_a_replayed_assertion_is_refused_and_logged_without_it(harness: Harness) -> None:
    """The same assertion presented twice: the second is refused as a replay, and the log
    says so without the assertion's challenge, signature or data."""
    user = await harness.register()
    authenticator = SoftAuthenticator(PUBLIC_URL)
    await add_passkey(harness, user.id, authenticator)
    assertion = authenticator.get(await sign_in_options(harness))
    await sign_in(harness, assertion)
    with capture_logs() as logs, pytest.raises(PasskeyReplayed):
        await sign_in(harness, assertion)
    replays = [entry for entry in logs if entry["event"] == "passkey_replayed"]
    assert [entry["reason"] for entry in replays] == ["challenge_reused"]
    shown = json.dumps(logs, default=str)
    for secret in assertion["response"].values():
        if secret:
            assert secret not in shown


async def test_a_counter_that_did_not_advance_is_refused_as_a_replay(harness: Harness) -> None:
    """An assertion over a fresh challenge whose signature counter is not above the stored
    one (a cloned key) is refused, and opens no session."""
    user = await harness.register()
    authenticator = SoftAuthenticator(PUBLIC_URL)
    await add_passkey(harness, user.id, authenticator)
    await sign_in(harness, authenticator.get(await sign_in_options(harness)))
    stale = authenticator.get(await sign_in_options(harness), sign_count=1)
    with capture_logs() as logs, pytest.raises(PasskeyReplayed):
        await sign_in(harness, stale)
    assert any(e.get("reason") == "sign_count" for e in logs if e["event"] == "passkey_replayed")
    count = await harness.pool.fetchval(
        "SELECT count(*) FROM auth_sessions WHERE user_id = $1", user.id
    )
    assert count == 1  # the first sign-in's only
    # the real authenticator, counting on, still signs in
    await sign_in(harness, authenticator.get(await sign_in_options(harness)))


async def test_an_authenticator_that_does_not_count_signs_in_every_time(harness: Harness) -> None:
    """A synced passkey reporting a counter of 0 every time is accepted each time."""
    user = await harness.register()
    authenticator = SoftAuthenticator(PUBLIC_URL, counting=False)
    await add_passkey(harness, user.id, authenticator)
    for _ in range(2):
        pair = await sign_in(harness, authenticator.get(await sign_in_options(harness)))
        assert claims_of(harness, pair).sub == user.id


async def test_responses_made_for_another_origin_are_refused(harness: Harness) -> None:
    """A registration or an assertion a phishing page obtained (another origin) is refused
    naming the expected origin, and stores nothing."""
    user = await harness.register()
    authenticator = SoftAuthenticator(PUBLIC_URL)
    options = await registration_options(harness, user.id)
    forged = json.dumps(authenticator.create(options, origin=EVIL))
    with pytest.raises(PasskeyRejected, match=r"https://splitgo\.test"):
        await harness.ask(FinishPasskeyRegistration(user_id=user.id, credential=forged, name="x"))
    assert (await harness.ask(ListPasskeys(user_id=user.id))).items == []
    await add_passkey(harness, user.id, authenticator)
    phished = authenticator.get(await sign_in_options(harness), origin=EVIL)
    with pytest.raises(PasskeyRejected, match="another site"):
        await sign_in(harness, phished)


async def test_an_unknown_or_deleted_passkey_signs_nobody_in(harness: Harness) -> None:
    """An assertion by a credential never registered, or deleted since, is refused."""
    user = await harness.register()
    stranger = SoftAuthenticator(PUBLIC_URL)
    with pytest.raises(UnknownPasskey):
        await sign_in(harness, stranger.get(await sign_in_options(harness)))
    authenticator = SoftAuthenticator(PUBLIC_URL)
    view = await add_passkey(harness, user.id, authenticator)
    await harness.ask(DeletePasskey(user_id=user.id, passkey_id=view.id))
    with pytest.raises(UnknownPasskey):
        await sign_in(harness, authenticator.get(await sign_in_options(harness)))


async def test_stale_foreign_and_malformed_responses_are_refused(harness: Harness) -> None:
    """A challenge older than 5 minutes, a challenge never handed out, a sign-in challenge
    used to register, and text that is no credential are each refused."""
    user = await harness.register()
    authenticator = SoftAuthenticator(PUBLIC_URL)
    options = await registration_options(harness, user.id)
    harness.clock.advance(301)
    late = json.dumps(authenticator.create(options))
    with pytest.raises(PasskeyRejected, match="expired"):
        await harness.ask(FinishPasskeyRegistration(user_id=user.id, credential=late, name="x"))
    made_up = json.dumps(authenticator.create({**options, "challenge": b64url(b"0" * 32)}))
    with pytest.raises(PasskeyRejected, match="no request"):
        await harness.ask(FinishPasskeyRegistration(user_id=user.id, credential=made_up, name="x"))
    crossed = json.dumps(authenticator.create({**options, **(await sign_in_options(harness))}))
    with pytest.raises(PasskeyRejected):
        await harness.ask(FinishPasskeyRegistration(user_id=user.id, credential=crossed, name="x"))
    for junk in ("not json", "[]", '{"response": {"clientDataJSON": "!!"}}'):
        with pytest.raises(PasskeyRejected):
            await harness.ask(FinishPasskeySignIn(credential=junk))


async def test_another_users_registration_challenge_does_not_fit(harness: Harness) -> None:
    """A registration answering the options handed to another user is refused."""
    alice = await harness.register()
    bob = await harness.register("bob@example.com", "Bob")
    options = await registration_options(harness, alice.id)
    credential = json.dumps(SoftAuthenticator(PUBLIC_URL).create(options))
    with pytest.raises(PasskeyRejected):
        await harness.ask(
            FinishPasskeyRegistration(user_id=bob.id, credential=credential, name="x")
        )


async def test_passkeys_are_renamed_and_deleted_by_their_owner_only(harness: Harness) -> None:
    """The owner renames and deletes a passkey; a bad name changes nothing; another user
    finds no such passkey."""
    alice = await harness.register()
    bob = await harness.register("bob@example.com", "Bob")
    view = await add_passkey(harness, alice.id, SoftAuthenticator(PUBLIC_URL))
    renamed = await harness.ask(RenamePasskey(user_id=alice.id, passkey_id=view.id, name="Work"))
    assert renamed.name == "Work"
    for bad in ("   ", "x" * 61, "tab\x07"):
        with pytest.raises(InvalidField) as refused:
            await harness.ask(RenamePasskey(user_id=alice.id, passkey_id=view.id, name=bad))
        assert refused.value.details == {"field": "$.name"}
    with pytest.raises(PasskeyNotFound):
        await harness.ask(RenamePasskey(user_id=bob.id, passkey_id=view.id, name="Mine"))
    with pytest.raises(PasskeyNotFound):
        await harness.ask(DeletePasskey(user_id=bob.id, passkey_id=view.id))
    listed = await harness.ask(ListPasskeys(user_id=alice.id))
    assert [item.name for item in listed.items] == ["Work"]
    await harness.ask(DeletePasskey(user_id=alice.id, passkey_id=view.id))
    assert (await harness.ask(ListPasskeys(user_id=alice.id))).items == []


async def test_a_bad_name_refuses_the_registration_before_spending_its_challenge(
    harness: Harness,
) -> None:
    """An empty name is refused naming `$.name`; the same response then registers with a
    good name."""
    user = await harness.register()
    options = await registration_options(harness, user.id)
    credential = json.dumps(SoftAuthenticator(PUBLIC_URL).create(options))
    with pytest.raises(InvalidField):
        await harness.ask(
            FinishPasskeyRegistration(user_id=user.id, credential=credential, name="")
        )
    view = await harness.ask(
        FinishPasskeyRegistration(user_id=user.id, credential=credential, name="Key")
    )
    assert view.name == "Key"


def test_the_browsers_credential_is_a_secret_field_of_both_finishing_messages() -> None:
    """A dead letter of a finishing message never keeps the browser's response."""
    for kind in (FinishPasskeyRegistration, FinishPasskeySignIn):
        assert kind.secret_fields == ("credential",)


async def test_a_credential_registered_once_is_not_registered_again(harness: Harness) -> None:
    """The same authenticator's credential, offered again by its owner or by someone else,
    is refused as already registered; the first registration stays."""
    alice = await harness.register()
    bob = await harness.register("bob@example.com", "Bob")
    authenticator = SoftAuthenticator(PUBLIC_URL)
    await add_passkey(harness, alice.id, authenticator)
    for user in (alice, bob):
        with pytest.raises(PasskeyExists):
            await add_passkey(harness, user.id, authenticator, "Again")
    listed = await harness.ask(ListPasskeys(user_id=alice.id))
    assert [item.name for item in listed.items] == ["Phone"]
