"""Invitations (accept, decline, withdraw, list) and placeholder members (split with, then
claimed with their history), end to end against a real node over HTTP."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_splits import (
    equal,
    expense_body,
    members_of,
    new_group,
    verify,
)
from tests.support.api import Api, User, eventually
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path_factory.mktemp("invitations-node"))
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


async def verified_user(api: Api, node: RunningNode, name: str = "Person") -> User:
    user = await api.register(f"i{secrets.token_hex(5)}@example.com", name=name)
    await verify(api, node, user)
    return user


async def nets(api: Api, group: str, user: User) -> dict[str, int]:
    found = await api.ok("GET", f"/api/v1/groups/{group}/balances", user)
    return {line["user_id"]: line["net"] for line in found["balances"]}


async def test_an_invitee_with_an_account_accepts_and_joins(api: Api, node: RunningNode) -> None:
    """An invitation to a verified account's address waits (listed on the group and to the
    invitee, with a notice in their app) until they accept: then they are a member and it is
    gone from both lists."""
    alice = await verified_user(api, node, "Alice")
    bob = await verified_user(api, node, "Bob")
    group = await new_group(api, alice)
    invite = await api.ok(
        "POST", f"/api/v1/groups/{group}/invites", alice, {"email": bob.email}, status=201
    )
    assert invite["id"].startswith(f"{group}.")
    assert (invite["email"], invite["group_name"], invite["invited_by"]) == (
        bob.email,
        "Trip",
        alice.id,
    )
    listed = await api.ok("GET", f"/api/v1/groups/{group}/invites", alice)
    assert [item["id"] for item in listed["items"]] == [invite["id"]]
    mine = await api.ok("GET", "/api/v1/invites", bob)
    assert [(item["id"], item["invited_by_name"]) for item in mine["items"]] == [
        (invite["id"], "Alice")
    ]

    async def notices() -> list[dict[str, Any]]:
        found = await api.ok("GET", "/api/v1/notifications", bob)
        items: list[dict[str, Any]] = found["items"]
        return [item for item in items if item["kind"] == "MemberInvited"]

    notice = (await eventually(notices, bool, what="the in-app invitation notice"))[0]
    assert notice["title"] == "You are invited to Trip"
    joined = await api.ok("POST", f"/api/v1/invites/{invite['id']}/accept", bob)
    assert {m["user_id"] for m in joined["members"]} == {alice.id, bob.id}
    assert (await api.ok("GET", "/api/v1/invites", bob))["items"] == []
    assert (await api.ok("GET", f"/api/v1/groups/{group}/invites", alice))["items"] == []
    await api.problem(
        "POST", f"/api/v1/invites/{invite['id']}/accept", bob, status=404, code="invite_not_found"
    )


async def test_declining_leaves_the_group_as_it_was(api: Api, node: RunningNode) -> None:
    """A declined invitation is gone and nobody joined."""
    alice = await verified_user(api, node)
    bob = await verified_user(api, node)
    group = await new_group(api, alice)
    invite = await api.ok(
        "POST", f"/api/v1/groups/{group}/invites", alice, {"email": bob.email}, status=201
    )
    reply = await api.call("POST", f"/api/v1/invites/{invite['id']}/decline", bob)
    assert reply.status == 204, reply.body
    assert await members_of(api, group, alice) == {alice.id}
    assert (await api.ok("GET", f"/api/v1/groups/{group}/invites", alice))["items"] == []


async def test_bad_invitations_are_refused_and_change_nothing(api: Api, node: RunningNode) -> None:
    """Inviting yourself (even by an unverified address), a member, or an address invited
    already; accepting someone else's invitation, an unverified caller, a made-up id; and
    withdrawing another member's invitation: each a clear 4xx, the invitation unchanged."""
    alice = await api.register(f"i{secrets.token_hex(5)}@example.com", name="Alice")
    bob = await verified_user(api, node)
    carol = await verified_user(api, node)
    eve = await api.register(f"i{secrets.token_hex(5)}@example.com")
    group = await new_group(api, alice, bob)
    invites = f"/api/v1/groups/{group}/invites"
    yourself = {"email": alice.email.upper()}
    await api.problem(
        "POST", invites, alice, yourself, status=422, code="validation_error", field="$.email"
    )
    member = {"email": bob.email}
    await api.problem(
        "POST", invites, alice, member, status=409, code="already_member", field="$.email"
    )
    await api.problem(
        "POST", invites, alice, {"email": "not an address"}, status=422, code="validation_error"
    )
    invite = await api.ok("POST", invites, alice, {"email": carol.email}, status=201)
    await api.problem(
        "POST", invites, bob, {"email": carol.email}, status=409, code="already_invited"
    )

    accept = f"/api/v1/invites/{invite['id']}/accept"
    await api.problem("POST", accept, bob, status=403, code="not_your_invitation")
    await api.problem("POST", accept, eve, status=403, code="email_not_verified")
    await api.problem("GET", "/api/v1/invites", eve, status=403, code="email_not_verified")
    await api.problem(
        "POST",
        f"/api/v1/invites/{group}.nothing/accept",
        carol,
        status=404,
        code="invite_not_found",
    )
    await api.problem(
        "POST", "/api/v1/invites/garbage/accept", carol, status=404, code="invite_not_found"
    )
    await api.problem(
        "DELETE", f"{invites}/{invite['id']}", bob, status=403, code="not_the_inviter"
    )
    assert [i["id"] for i in (await api.ok("GET", invites, alice))["items"]] == [invite["id"]]
    assert await members_of(api, group, alice) == {alice.id, bob.id}

    withdrawn = await api.call("DELETE", f"{invites}/{invite['id']}", alice)
    assert withdrawn.status == 204
    await api.problem("POST", accept, carol, status=404, code="invite_not_found")


async def test_a_placeholder_is_split_with_and_claimed_with_their_history(
    api: Api, node: RunningNode
) -> None:
    """A placeholder (a name, no account) is named, shares an expense and can be paid in
    cash but not by wallet; a claim link, used once, hands their place, shares and balance to
    the verified person who joins with it."""
    alice = await verified_user(api, node, "Alice")
    group = await new_group(api, alice)
    added = await api.ok(
        "POST", f"/api/v1/groups/{group}/members", alice, {"name": "  Sam   Smith "}, status=201
    )
    sam = next(m for m in added["members"] if m["placeholder"])
    assert sam["name"] == "Sam Smith"  # named by splits at once

    view = await api.ok("GET", f"/api/v1/groups/{group}", alice)
    assert [m["name"] for m in view["members"] if m["user_id"] == sam["user_id"]] == ["Sam Smith"]
    activity = await api.ok("GET", f"/api/v1/groups/{group}/activity", alice)

    async def said() -> str:
        found = await api.ok("GET", f"/api/v1/groups/{group}/activity", alice)
        return " ".join(item["summary"] for item in found["items"])

    # elsewhere (activity texts, notices) a placeholder is named by auth, from the event
    assert "Sam Smith" in await eventually(said, lambda text: "Sam Smith" in text)
    assert activity["items"]
    placeholder = User(id=sam["user_id"], email="", token="")
    body = expense_body(1000, alice.id, equal(alice, placeholder))
    await api.ok("POST", f"/api/v1/groups/{group}/expenses", alice, body, status=201)
    assert await nets(api, group, alice) == {alice.id: 500, sam["user_id"]: -500}
    await api.problem(
        "POST",
        f"/api/v1/groups/{group}/reminders",
        alice,
        {"user_id": sam["user_id"]},
        status=422,
        code="no_account",
    )
    wallet = {"to_user_id": sam["user_id"], "amount": 100, "currency": "EUR", "method": "wallet"}
    await api.problem(
        "POST",
        f"/api/v1/groups/{group}/settlements",
        alice,
        wallet,
        status=422,
        code="no_account",
        field="$.to_user_id",
    )

    link = await api.ok(
        "POST",
        f"/api/v1/groups/{group}/placeholders/{sam['user_id']}/claim-link",
        alice,
        status=201,
    )
    assert (link["max_uses"], link["placeholder_id"]) == (1, sam["user_id"])
    await api.problem(
        "POST",
        f"/api/v1/groups/{group}/placeholders/{alice.id}/claim-link",
        alice,
        status=404,
        code="not_a_placeholder",
    )
    sam_for_real = await verified_user(api, node, "Samuel")
    joined = await api.ok("POST", f"/api/v1/join/{link['token']}", sam_for_real, status=201)
    assert {(m["user_id"], m["placeholder"]) for m in joined["members"]} == {
        (alice.id, False),
        (sam_for_real.id, False),
    }
    assert await nets(api, group, alice) == {alice.id: 500, sam_for_real.id: -500}
    expenses = await api.ok("GET", f"/api/v1/groups/{group}/expenses", sam_for_real)
    shares = {line["user_id"] for line in expenses["items"][0]["shares"]}
    assert shares == {alice.id, sam_for_real.id}
    other = await verified_user(api, node)
    await api.problem(
        "POST", f"/api/v1/join/{link['token']}", other, status=409, code="join_link_used_up"
    )
    assert await members_of(api, group, alice) == {alice.id, sam_for_real.id}


async def test_a_placeholder_name_of_only_spaces_is_refused(api: Api, node: RunningNode) -> None:
    """A name of spaces or control characters, or a body naming two kinds of member, is a
    422 naming the field; nobody is added."""
    alice = await verified_user(api, node)
    group = await new_group(api, alice)
    members = f"/api/v1/groups/{group}/members"
    for name in ("   ", "Sam\u0000", "\u200b"):
        await api.problem(
            "POST",
            members,
            alice,
            {"name": name},
            status=422,
            code="validation_error",
            field="$.name",
        )
    both = {"name": "Sam", "email": "sam@example.com"}
    await api.problem("POST", members, alice, both, status=422, code="validation_error")
    assert await members_of(api, group, alice) == {alice.id}
