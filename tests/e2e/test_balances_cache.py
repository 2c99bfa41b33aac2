"""Group balances from the edge's reply cache (issue 20) against a real node: a repeated
read sends the same bytes with the same ETag, a change (an expense, a member coming or
going, a rename) shows in the very next read, If-None-Match is answered 304, and someone
who is not a member is refused though the reply is kept."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support.api import Api, Reply, User, eventually
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path_factory.mktemp("balances-cache-node"))
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


async def new_user(api: Api, name: str = "Friend") -> User:
    return await api.register(f"b{secrets.token_hex(5)}@example.com", name=name)


async def group_of(api: Api, owner: User, *members: User) -> str:
    group = await api.ok(
        "POST", "/api/v1/groups", owner, {"name": "Trip", "currency": "EUR"}, status=201
    )
    for member in members:
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": member.id}, 201
        )
    return str(group["id"])


async def dinner(api: Api, group: str, payer: User, *sharing: User, amount: int) -> None:
    body = {
        "description": "Dinner",
        "amount": amount,
        "currency": "EUR",
        "paid_by": payer.id,
        "split": {"mode": "equal", "shares": [{"user_id": u.id} for u in (payer, *sharing)]},
    }
    await api.ok("POST", f"/api/v1/groups/{group}/expenses", payer, body, status=201)


async def balances(
    api: Api, group: str, user: User, headers: dict[str, str] | None = None
) -> Reply:
    return await api.call("GET", f"/api/v1/groups/{group}/balances", user, headers=headers)


def etag(reply: Reply) -> str:
    """The reply's ETag (the client spells the header's name its own way)."""
    return {name.lower(): value for name, value in reply.headers.items()}["etag"]


def nets(reply: Reply) -> dict[str, int]:
    return {line["user_id"]: line["net"] for line in reply.body["balances"]}


def names(reply: Reply) -> dict[str, Any]:
    return {line["user_id"]: line["name"] for line in reply.body["balances"]}


async def test_a_repeated_read_is_the_same_reply_and_a_change_shows_at_once(api: Api) -> None:
    """Two reads of an unchanged group give the same body and ETag; after an expense and
    after a member joins, the very next read shows it, with a new version and ETag."""
    amy, bob, cy = await new_user(api, "Amy"), await new_user(api, "Bob"), await new_user(api)
    group = await group_of(api, amy, bob)
    first, second = await balances(api, group, amy), await balances(api, group, bob)
    assert first.status == second.status == 200
    assert first.body == second.body
    assert etag(first) == etag(second)
    assert first.body["version"]
    assert names(first) == {amy.id: "Amy", bob.id: "Bob"}

    await dinner(api, group, amy, bob, amount=1000)
    after = await balances(api, group, bob)
    assert nets(after) == {amy.id: 500, bob.id: -500}
    assert etag(after) != etag(first)
    assert after.body["version"] != first.body["version"]

    await api.ok("POST", f"/api/v1/groups/{group}/members", amy, {"user_id": cy.id}, 201)
    joined = await balances(api, group, amy)
    assert nets(joined) == {amy.id: 500, bob.id: -500, cy.id: 0}
    assert (await balances(api, group, cy)).body == joined.body


async def test_a_rename_shows_in_the_next_reads(api: Api) -> None:
    """A member renamed is named anew in the kept reply's place (once the rename is heard)."""
    amy, bob = await new_user(api, "Amy"), await new_user(api, "Bob")
    group = await group_of(api, amy, bob)
    before = await balances(api, group, amy)
    assert names(before)[bob.id] == "Bob"
    await api.ok("PATCH", "/api/v1/me", bob, {"name": "Robert"})
    renamed = await eventually(
        lambda: balances(api, group, amy),
        lambda reply: names(reply)[bob.id] == "Robert",
        interval=0.05,
        what="the new name in the balances",
    )
    assert etag(renamed) != etag(before)
    assert renamed.body["version"] == before.body["version"]  # the balances did not change


async def test_if_none_match_is_answered_304_until_the_balances_change(api: Api) -> None:
    """The reply's ETag (strong or weak, in a list) brings a 304 with no body; once an
    expense changed the balances the same ETag brings the new reply."""
    amy, bob = await new_user(api), await new_user(api)
    group = await group_of(api, amy, bob)
    first = await balances(api, group, amy)
    held_tag = etag(first)
    for held in (held_tag, f"W/{held_tag}", f'"other", {held_tag}'):
        same = await balances(api, group, amy, {"If-None-Match": held})
        assert same.status == 304
        assert same.body == ""
        assert etag(same) == held_tag
    assert (await balances(api, group, amy, {"If-None-Match": '"other"'})).status == 200
    await dinner(api, group, bob, amy, amount=300)
    changed = await balances(api, group, amy, {"If-None-Match": held_tag})
    assert changed.status == 200
    assert nets(changed) == {amy.id: -150, bob.id: 150}
    assert etag(changed) != held_tag


async def test_converted_reads_are_kept_apart_from_plain_ones(api: Api) -> None:
    """`?convert=true` is its own reply (its own `converted` and ETag), changed by the same
    expense as the plain one."""
    amy, bob = await new_user(api), await new_user(api)
    group = await group_of(api, amy, bob)
    plain = await balances(api, group, amy)
    path = f"/api/v1/groups/{group}/balances?convert=true"
    converted = await api.call("GET", path, amy)
    assert (plain.body["converted"], converted.body["converted"]) == (False, True)
    assert etag(plain) != etag(converted)
    await dinner(api, group, amy, bob, amount=800)
    again = await api.call("GET", path, amy)
    assert nets(again) == {amy.id: 400, bob.id: -400}


async def test_strangers_and_members_gone_are_refused_while_the_reply_is_kept(api: Api) -> None:
    """With the reply kept (read twice by a member), a stranger still gets 404, with or
    without its ETag, and a member removed gets 404 on the next read."""
    amy, bob, eve = await new_user(api), await new_user(api), await new_user(api)
    group = await group_of(api, amy, bob)
    kept = await balances(api, group, amy)
    await balances(api, group, amy)
    for headers in (None, {"If-None-Match": etag(kept)}):
        refused = await balances(api, group, eve, headers)
        assert (refused.status, refused.body["code"]) == (404, "group_not_found")
    await balances(api, group, bob)
    gone = await api.call("DELETE", f"/api/v1/groups/{group}/members/{bob.id}", amy)
    assert gone.status == 204, gone.body
    refused = await balances(api, group, bob, {"If-None-Match": etag(kept)})
    assert (refused.status, refused.body["code"]) == (404, "group_not_found")
    assert bob.id not in nets(await balances(api, group, amy))
