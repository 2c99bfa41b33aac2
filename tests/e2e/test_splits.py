"""The Splits table of API.md over HTTP against a real node: groups, members and invites,
expenses in every split mode, balances, the settle plan, cash and wallet settlements, the
activity feed, comments, the CSV export, and bad input that changes nothing."""

from __future__ import annotations

import asyncio
import csv
import email
import email.policy
import io
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support.api import Api, User, eventually, fresh_key
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.smtp import body_text, link_in

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SANDBOX_SECRET = "e2e-sandbox-secret-0123456789abcdef"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(
        tmp_path_factory.mktemp("splits-node"),
        env={"SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET},
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


async def new_user(api: Api) -> User:
    return await api.register(f"s{secrets.token_hex(5)}@example.com")


async def verification_token(node: RunningNode, address: str) -> str:
    """The token of the verification link mailed to `address` (the node has no SMTP server:
    its mails are .eml files in DATA_DIR/mail)."""
    for _ in range(200):
        for path in sorted((node.folder / "data" / "mail").glob("*.eml")):
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(mail, EmailMessage)
            if address in str(mail["To"]) and "/verify-email" in body_text(mail):
                return link_in(mail, "/verify-email").split("token=")[1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no verification mail for {address}")


async def verify(api: Api, node: RunningNode, user: User) -> None:
    """Spend the verification link mailed to `user`, as they would."""
    token = await verification_token(node, user.email)
    reply = await api.call("POST", "/api/v1/auth/verify-email", body={"token": token})
    assert reply.status == 204, reply.body


async def members_of(api: Api, group: str, user: User) -> set[str]:
    view = await api.ok("GET", f"/api/v1/groups/{group}", user)
    return {m["user_id"] for m in view["members"]}


async def until_member(api: Api, group: str, owner: User, member: User) -> set[str]:
    """The members once `member` is among them (a bounded wait: joins go through events)."""
    members: set[str] = set()
    for _ in range(200):
        members = await members_of(api, group, owner)
        if member.id in members:
            break
        await asyncio.sleep(0.05)
    return members


async def new_group(api: Api, owner: User, *members: User, currency: str = "EUR") -> str:
    group = await api.ok(
        "POST", "/api/v1/groups", owner, {"name": "Trip", "currency": currency}, status=201
    )
    for member in members:
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": member.id}, 201
        )
    return str(group["id"])


def equal(*users: User) -> dict[str, Any]:
    return {"mode": "equal", "shares": [{"user_id": user.id} for user in users]}


def expense_body(amount: Any, paid_by: Any, split: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "description": more.pop("description", "Dinner"),
        "amount": amount,
        "currency": more.pop("currency", "EUR"),
        "paid_by": paid_by,
        "split": split,
        **more,
    }


async def add_expense(api: Api, group: str, user: User, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = await api.ok(
        "POST", f"/api/v1/groups/{group}/expenses", user, body, status=201
    )
    return created


def shares_of(expense: dict[str, Any]) -> dict[str, int]:
    return {line["user_id"]: line["amount"] for line in expense["shares"]}


async def nets(api: Api, group: str, user: User) -> dict[tuple[str, str], int]:
    """Each (user, currency) net; the nets of each currency add up to zero."""
    view = await api.ok("GET", f"/api/v1/groups/{group}/balances", user)
    found = {(line["user_id"], line["currency"]): line["net"] for line in view["balances"]}
    totals: dict[str, int] = defaultdict(int)
    for (_, currency), net in found.items():
        totals[currency] += net
    assert all(total == 0 for total in totals.values()), found
    return found


async def eur(api: Api, group: str, user: User) -> dict[str, int]:
    return {
        who: net
        for (who, currency), net in (await nets(api, group, user)).items()
        if currency == "EUR"
    }


async def expense_ids(api: Api, group: str, user: User) -> list[str]:
    page = await api.ok("GET", f"/api/v1/groups/{group}/expenses", user)
    return [item["id"] for item in page["items"]]


async def wallet(api: Api, user: User) -> int:
    view = await api.ok("GET", "/api/v1/wallet", user)
    return sum(b["available"] for b in view["balances"] if b["currency"] == "EUR")


async def top_up(api: Api, user: User, amount: int) -> None:
    """A sandbox top-up paid on its checkout page, as a person would."""
    created = await api.top_up(user, amount)
    top = await api.ok("GET", f"/api/v1/wallet/top-ups/{created['id']}", user)
    assert top["status"] == "succeeded"


# ── groups ────────────────────────────────────────────────────────────────────────────


async def test_groups_need_a_token(api: Api) -> None:
    """Every splits route is 401 without a bearer token."""
    for method, path in [
        ("POST", "/api/v1/groups"),
        ("GET", "/api/v1/groups"),
        ("GET", "/api/v1/groups/x"),
        ("GET", "/api/v1/groups/x/balances"),
    ]:
        reply = await api.call(method, path, body={"name": "x", "currency": "EUR"})
        assert reply.status == 401
        assert reply.body["code"] == "invalid_token"


async def test_create_list_and_get_a_group(api: Api) -> None:
    """POST /groups is 201 with the creator as its only member; list and get show it."""
    alice, outsider = await new_user(api), await new_user(api)
    group = await api.ok(
        "POST", "/api/v1/groups", alice, {"name": "  Lisbon  ", "currency": "EUR"}, status=201
    )
    assert (group["name"], group["currency"], group["created_by"]) == ("Lisbon", "EUR", alice.id)
    assert [m["user_id"] for m in group["members"]] == [alice.id]
    assert group["invited"] == []
    assert "msg_type" not in str(group)
    listed = await api.ok("GET", "/api/v1/groups", alice)
    assert [g["id"] for g in listed["items"]] == [group["id"]]
    assert listed["groups"] == listed["items"]  # the old key, kept for a release
    assert listed["next_cursor"] is None
    assert listed["items"][0]["members"] == group["members"]
    assert await api.ok("GET", f"/api/v1/groups/{group['id']}", alice) == group
    assert (await api.ok("GET", "/api/v1/groups", outsider))["items"] == []
    hidden = await api.call("GET", f"/api/v1/groups/{group['id']}", outsider)
    assert (hidden.status, hidden.body["code"]) == (404, "group_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   ", "currency": "EUR"}, "$.name"),
        ({"name": "x" * 101, "currency": "EUR"}, "$.name"),
        ({"name": "Trip", "currency": "XYZ"}, "$.currency"),
        ({"name": "Trip", "currency": "eur"}, "$.currency"),
        ({}, "$.name"),
        ({"name": "Trip"}, "$.currency"),
        ({"name": "Trip", "currency": "EUR", "owner": "me"}, "$"),
    ],
)
async def test_bad_groups_are_refused_and_not_created(
    api: Api, body: dict[str, Any], field: str
) -> None:
    """A blank or long name, an unknown currency or a wrong field is a 422 naming it."""
    alice = await new_user(api)
    reply = await api.call("POST", "/api/v1/groups", alice, body)
    assert reply.status == 422, reply.body
    assert reply.field() == field
    assert (await api.ok("GET", "/api/v1/groups", alice))["items"] == []


# ── members ───────────────────────────────────────────────────────────────────────────


async def test_add_members_by_id_and_by_email(api: Api, node: RunningNode) -> None:
    """A member joins by user id or by the verified email of their account (any case); 201
    group. The email of an account not verified yet is an invite until it is."""
    alice, bob, carol = await new_user(api), await new_user(api), await new_user(api)
    await verify(api, node, carol)
    group = await new_group(api, alice)
    by_id = await api.ok(
        "POST", f"/api/v1/groups/{group}/members", alice, {"user_id": bob.id}, status=201
    )
    assert {m["user_id"] for m in by_id["members"]} == {alice.id, bob.id}
    by_email = await api.ok(
        "POST",
        f"/api/v1/groups/{group}/members",
        bob,
        {"email": carol.email.upper()},
        status=201,
    )
    assert {m["user_id"] for m in by_email["members"]} == {alice.id, bob.id, carol.id}
    assert by_email["invited"] == []
    seen_by_carol = await api.ok("GET", "/api/v1/groups", carol)
    assert [g["id"] for g in seen_by_carol["items"]] == [group]
    again = await api.call("POST", f"/api/v1/groups/{group}/members", alice, {"user_id": bob.id})
    assert (again.status, again.body["code"]) == (409, "already_member")
    dan = await new_user(api)  # signed up, never verified
    unproven = await api.ok(
        "POST", f"/api/v1/groups/{group}/members", alice, {"email": dan.email}, status=201
    )
    assert dan.id not in {m["user_id"] for m in unproven["members"]}
    assert [i["email"] for i in unproven["invited"]] == [dan.email]
    await verify(api, node, dan)
    assert dan.id in await until_member(api, group, alice, dan)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "no-such-user"}, "$.user_id"),
        ({"email": "not-an-email"}, "$.email"),
        ({}, "$.user_id"),
        ({"user_id": "x", "email": "x@example.com"}, "$.email"),
        ({"user_id": "x", "role": "admin"}, "$"),
    ],
)
async def test_bad_member_requests_name_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    """An unknown user id, a malformed email, neither or both: 422, and no one is added."""
    alice = await new_user(api)
    group = await new_group(api, alice)
    reply = await api.call("POST", f"/api/v1/groups/{group}/members", alice, body)
    assert reply.status == 422, reply.body
    assert reply.field() == field
    view = await api.ok("GET", f"/api/v1/groups/{group}", alice)
    assert [m["user_id"] for m in view["members"]] == [alice.id]
    assert view["invited"] == []


async def test_an_invited_email_joins_once_verified_not_on_sign_up(
    api: Api, node: RunningNode
) -> None:
    """An unknown email is invited (201); registering that address does not join it (its
    verification mail has gone out and it is still only invited); verifying it does."""
    alice = await new_user(api)
    group = await new_group(api, alice)
    address = f"invitee{secrets.token_hex(4)}@example.com"
    invited = await api.ok(
        "POST", f"/api/v1/groups/{group}/members", alice, {"email": f" {address.title()} "}, 201
    )
    assert [i["email"] for i in invited["invited"]] == [address]
    assert [m["user_id"] for m in invited["members"]] == [alice.id]
    newcomer = await api.register(address)
    token = await verification_token(node, address)  # sign-up is done and told
    view = await api.ok("GET", f"/api/v1/groups/{group}", alice)
    assert [m["user_id"] for m in view["members"]] == [alice.id]
    assert [i["email"] for i in view["invited"]] == [address]
    assert (await api.ok("GET", "/api/v1/groups", newcomer))["items"] == []
    verified = await api.call("POST", "/api/v1/auth/verify-email", body={"token": token})
    assert verified.status == 204, verified.body
    assert await until_member(api, group, alice, newcomer) == {alice.id, newcomer.id}
    view = await api.ok("GET", f"/api/v1/groups/{group}", alice)
    assert view["invited"] == []
    assert [g["id"] for g in (await api.ok("GET", "/api/v1/groups", newcomer))["groups"]] == [group]


async def test_remove_member_only_with_a_zero_balance(api: Api) -> None:
    """204 for a member with nothing owed; 409 unsettled_balance while they owe or are owed."""
    alice, bob, carol = await new_user(api), await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob, carol)
    await add_expense(api, group, alice, expense_body(1000, alice.id, equal(alice, bob)))
    owing = await api.call("DELETE", f"/api/v1/groups/{group}/members/{bob.id}", alice)
    assert (owing.status, owing.body["code"]) == (409, "unsettled_balance")
    owed = await api.call("DELETE", f"/api/v1/groups/{group}/members/{alice.id}", alice)
    assert (owed.status, owed.body["code"]) == (409, "unsettled_balance")
    removed = await api.call("DELETE", f"/api/v1/groups/{group}/members/{carol.id}", alice)
    assert removed.status == 204
    view = await api.ok("GET", f"/api/v1/groups/{group}", alice)
    assert {m["user_id"] for m in view["members"]} == {alice.id, bob.id}
    gone = await api.call("GET", f"/api/v1/groups/{group}", carol)
    assert gone.status == 404
    not_there = await api.call("DELETE", f"/api/v1/groups/{group}/members/{carol.id}", alice)
    assert (not_there.status, not_there.body["code"]) == (422, "not_a_member")
    assert await eur(api, group, alice) == {alice.id: 500, bob.id: -500}


# ── expenses ──────────────────────────────────────────────────────────────────────────


async def test_equal_split_spreads_the_remainder(api: Api) -> None:
    """10.00 among three is 3.34 + 3.33 + 3.33; no lines means every member shares."""
    alice, bob, carol = await new_user(api), await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob, carol)
    named = await add_expense(
        api, group, alice, expense_body(1000, alice.id, equal(alice, bob, carol))
    )
    assert sorted(shares_of(named).values()) == [333, 333, 334]
    assert sum(shares_of(named).values()) == 1000
    assert named["paid_by"] == [{"user_id": alice.id, "amount": 1000, "name": "Friend"}]
    assert named["split_mode"] == "equal"
    everyone = await add_expense(api, group, bob, expense_body(600, bob.id, {"mode": "equal"}))
    assert shares_of(everyone) == {alice.id: 200, bob.id: 200, carol.id: 200}
    balances = await eur(api, group, alice)
    assert balances[alice.id] == 1000 - shares_of(named)[alice.id] - 200
    assert balances[bob.id] == 600 - shares_of(named)[bob.id] - 200
    assert balances[carol.id] == -shares_of(named)[carol.id] - 200


async def test_every_split_mode_and_several_payers(api: Api) -> None:
    """exact, percent, shares and adjustment give the shares asked; several payers count."""
    alice, bob, carol = await new_user(api), await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob, carol)
    exact = await add_expense(
        api,
        group,
        alice,
        expense_body(
            9000,
            alice.id,
            {
                "mode": "exact",
                "shares": [
                    {"user_id": alice.id, "amount": 1000},
                    {"user_id": bob.id, "amount": 3000},
                    {"user_id": carol.id, "amount": 5000},
                ],
            },
        ),
    )
    assert shares_of(exact) == {alice.id: 1000, bob.id: 3000, carol.id: 5000}
    percent = await add_expense(
        api,
        group,
        alice,
        expense_body(
            10000,
            bob.id,
            {
                "mode": "percent",
                "shares": [
                    {"user_id": alice.id, "percent": 50},
                    {"user_id": bob.id, "percent": 25.5},
                    {"user_id": carol.id, "percent": 24.5},
                ],
            },
        ),
    )
    assert shares_of(percent) == {alice.id: 5000, bob.id: 2550, carol.id: 2450}
    weights = await add_expense(
        api,
        group,
        alice,
        expense_body(
            4000,
            carol.id,
            {
                "mode": "shares",
                "shares": [
                    {"user_id": alice.id, "shares": 1},
                    {"user_id": bob.id, "shares": 1},
                    {"user_id": carol.id, "shares": 2},
                ],
            },
        ),
    )
    assert shares_of(weights) == {alice.id: 1000, bob.id: 1000, carol.id: 2000}
    adjusted = await add_expense(
        api,
        group,
        alice,
        expense_body(
            3000,
            alice.id,
            {
                "mode": "adjustment",
                "shares": [
                    {"user_id": alice.id, "amount": 600},
                    {"user_id": bob.id},
                    {"user_id": carol.id},
                ],
            },
        ),
    )
    assert shares_of(adjusted) == {alice.id: 1400, bob.id: 800, carol.id: 800}
    together = await add_expense(
        api,
        group,
        alice,
        expense_body(
            6000,
            [
                {"user_id": alice.id, "amount": 2000},
                {"user_id": bob.id, "amount": 4000, "currency": "EUR"},
            ],
            equal(alice, bob, carol),
        ),
    )
    assert {p["user_id"]: p["amount"] for p in together["paid_by"]} == {
        alice.id: 2000,
        bob.id: 4000,
    }
    paid = {alice.id: 9000 + 3000 + 2000, bob.id: 10000 + 4000, carol.id: 4000}
    owed: dict[str, int] = defaultdict(int)
    for created in (exact, percent, weights, adjusted, together):
        for user, share in shares_of(created).items():
            owed[user] += share
    assert await eur(api, group, alice) == {u: paid[u] - owed[u] for u in paid}
    listed = await expense_ids(api, group, bob)
    assert set(listed) == {e["id"] for e in (exact, percent, weights, adjusted, together)}


async def test_expense_fields_are_kept_and_read_back(api: Api) -> None:
    """date, category and recurrence are kept; GET one returns what POST returned."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    created = await add_expense(
        api,
        group,
        alice,
        expense_body(
            120000,
            alice.id,
            equal(alice, bob),
            description="Rent",
            date="2024-02-29",
            category="home",
            recurrence="monthly",
        ),
    )
    assert (created["date"], created["category"], created["recurrence"]) == (
        "2024-02-29",
        "home",
        "monthly",
    )
    assert "msg_type" not in str(created)
    assert await api.ok("GET", f"/api/v1/groups/{group}/expenses/{created['id']}", bob) == created
    missing = await api.call("GET", f"/api/v1/groups/{group}/expenses/nope", bob)
    assert (missing.status, missing.body["code"]) == (404, "expense_not_found")


async def test_editing_an_expense_moves_the_balances(api: Api) -> None:
    """PATCH changes amount, payer and split; balances follow; `recurrence: none` stops it."""
    alice, bob, carol = await new_user(api), await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob, carol)
    created = await add_expense(
        api,
        group,
        alice,
        expense_body(3000, alice.id, equal(alice, bob, carol), recurrence="weekly"),
    )
    path = f"/api/v1/groups/{group}/expenses/{created['id']}"
    assert await eur(api, group, alice) == {alice.id: 2000, bob.id: -1000, carol.id: -1000}
    bigger = await api.ok("PATCH", path, bob, {"amount": 6000, "recurrence": "none"})
    assert bigger["paid_by"] == [{"user_id": alice.id, "amount": 6000, "name": "Friend"}]
    assert bigger["version"] == created["version"] + 1
    assert bigger["recurrence"] is None
    assert await eur(api, group, alice) == {alice.id: 4000, bob.id: -2000, carol.id: -2000}
    moved = await api.ok(
        "PATCH",
        path,
        alice,
        {
            "paid_by": bob.id,
            "split": {"mode": "exact", "shares": [{"user_id": alice.id, "amount": 6000}]},
        },
    )
    assert shares_of(moved) == {alice.id: 6000}
    assert await eur(api, group, alice) == {alice.id: -6000, bob.id: 6000, carol.id: 0}
    renamed = await api.ok("PATCH", path, alice, {"description": "Taxi", "category": "travel"})
    assert (renamed["description"], renamed["category"]) == ("Taxi", "travel")
    assert renamed["shares"] == moved["shares"]
    assert await api.ok("GET", path, carol) == renamed


async def test_deleting_an_expense_takes_it_out_of_the_balances(api: Api) -> None:
    """DELETE is 204; the expense is gone from the list and from every balance."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    kept = await add_expense(api, group, alice, expense_body(1000, alice.id, equal(alice, bob)))
    dropped = await add_expense(api, group, bob, expense_body(5000, bob.id, equal(alice, bob)))
    assert await eur(api, group, alice) == {alice.id: -2000, bob.id: 2000}
    reply = await api.call("DELETE", f"/api/v1/groups/{group}/expenses/{dropped['id']}", alice)
    assert reply.status == 204
    assert await eur(api, group, alice) == {alice.id: 500, bob.id: -500}
    assert await expense_ids(api, group, alice) == [kept["id"]]
    again = await api.call("DELETE", f"/api/v1/groups/{group}/expenses/{dropped['id']}", alice)
    assert (again.status, again.body["code"]) == (404, "expense_not_found")
    gone = await api.call("GET", f"/api/v1/groups/{group}/expenses/{dropped['id']}", alice)
    assert gone.status == 404


async def test_expenses_page_with_a_cursor(api: Api) -> None:
    """?limit=2 pages through every expense once, with next_cursor null at the end."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    made = {
        (await add_expense(api, group, alice, expense_body(100 * n, alice.id, equal(alice, bob))))[
            "id"
        ]
        for n in range(1, 6)
    }
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await api.ok("GET", f"/api/v1/groups/{group}/expenses{query}", bob)
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    bad = await api.call("GET", f"/api/v1/groups/{group}/expenses?limit=0", bob)
    assert (bad.status, bad.field()) == (422, "limit")


@pytest.mark.parametrize("cursor", ["abc", "%C2%B9", "1" * 19, "-1"])
async def test_a_bad_cursor_is_invalid_cursor_on_every_list(api: Api, cursor: str) -> None:
    """Every list that pages answers a cursor it never gave out alike: 422 `invalid_cursor`
    naming the `cursor` query parameter."""
    alice = await new_user(api)
    group = await new_group(api, alice)
    for path in (
        f"/api/v1/groups/{group}/expenses",
        f"/api/v1/groups/{group}/activity",
        "/api/v1/transfers",
        "/api/v1/notifications",
    ):
        reply = await api.call("GET", f"{path}?cursor={cursor}", alice)
        assert (reply.status, reply.body["code"], reply.field()) == (
            422,
            "invalid_cursor",
            "cursor",
        ), (path, reply.body)


# ── balances and settling up ──────────────────────────────────────────────────────────


async def test_balances_sum_to_zero_and_the_plan_settles_them(api: Api) -> None:
    """Nets add up to zero per currency; following the settle plan zeroes every balance."""
    users = [await new_user(api) for _ in range(4)]
    alice, bob, carol, dan = users
    group = await new_group(api, alice, bob, carol, dan)
    await add_expense(api, group, alice, expense_body(10000, alice.id, equal(*users)))
    await add_expense(api, group, bob, expense_body(2999, bob.id, equal(alice, bob, carol)))
    await add_expense(api, group, carol, expense_body(4500, carol.id, equal(carol, dan)))
    await add_expense(
        api, group, dan, expense_body(7000, dan.id, equal(alice, dan), currency="USD")
    )
    balances = await nets(api, group, alice)
    assert balances[(dan.id, "USD")] == 3500
    assert balances[(alice.id, "USD")] == -3500
    plan = await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", bob)
    transfers = plan["transfers"]
    assert transfers
    left = dict(balances)
    for transfer in transfers:
        assert transfer["amount"] > 0
        left[(transfer["from_user_id"], transfer["currency"])] += transfer["amount"]
        left[(transfer["to_user_id"], transfer["currency"])] -= transfer["amount"]
    assert all(net == 0 for net in left.values()), left
    in_eur = [t for t in transfers if t["currency"] == "EUR"]
    assert len(in_eur) <= 3
    for transfer in transfers:
        reply = await api.call(
            "POST",
            f"/api/v1/groups/{group}/settlements",
            next(u for u in users if u.id == transfer["from_user_id"]),
            {
                "to_user_id": transfer["to_user_id"],
                "amount": transfer["amount"],
                "currency": transfer["currency"],
                "method": "cash",
            },
            fresh_key("POST"),
        )
        assert reply.status == 201, reply.body
    assert all(net == 0 for net in (await nets(api, group, dan)).values())
    assert (await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", alice))["transfers"] == []


async def test_cash_settlement_is_recorded_at_once(api: Api) -> None:
    """A cash settlement is 201 completed, moves the balances and shows in the activity."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    await add_expense(api, group, bob, expense_body(4000, bob.id, equal(alice, bob)))
    paid = await api.ok(
        "POST",
        f"/api/v1/groups/{group}/settlements",
        alice,
        {"to_user_id": bob.id, "amount": 1500, "currency": "EUR", "method": "cash"},
        status=201,
    )
    assert (paid["status"], paid["method"], paid["from_user_id"], paid["to_user_id"]) == (
        "completed",
        "cash",
        alice.id,
        bob.id,
    )
    assert await eur(api, group, bob) == {alice.id: -500, bob.id: 500}
    assert await api.ok("GET", f"/api/v1/groups/{group}/settlements/{paid['id']}", bob) == paid
    latest = (await api.ok("GET", f"/api/v1/groups/{group}/activity", bob))["items"][0]
    assert latest["kind"] == "settlement_recorded"
    assert latest["data"]["settlement_id"] == paid["id"]
    assert await wallet(api, alice) == 0


async def test_wallet_settlement_moves_the_money_end_to_end(api: Api) -> None:
    """Alice owes Bob 25.00, tops up, settles by wallet: wallets and balances both move."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    await add_expense(api, group, bob, expense_body(5000, bob.id, equal(alice, bob)))
    assert await eur(api, group, alice) == {alice.id: -2500, bob.id: 2500}
    plan = await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", alice)
    assert plan["transfers"] == [
        {
            "from_user_id": alice.id,
            "to_user_id": bob.id,
            "amount": 2500,
            "currency": "EUR",
            "from_net": -2500,
            "to_net": 2500,
            "from_user_name": "Friend",
            "to_user_name": "Friend",
        }
    ]
    await top_up(api, alice, 4000)
    body = {"to_user_id": bob.id, "amount": 2500, "currency": "EUR", "method": "wallet"}
    key = {"Idempotency-Key": secrets.token_hex(8)}
    reply = await api.call("POST", f"/api/v1/groups/{group}/settlements", alice, body, key)
    assert reply.status == 201, reply.body
    settled = reply.body
    assert (settled["status"], settled["method"]) == ("completed", "wallet")
    assert settled["transfer_id"]
    assert (await wallet(api, alice), await wallet(api, bob)) == (1500, 2500)
    assert await eur(api, group, bob) == {alice.id: 0, bob.id: 0}
    assert (await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", bob))["transfers"] == []
    replay = await api.call("POST", f"/api/v1/groups/{group}/settlements", alice, body, key)
    assert (replay.status, replay.body["id"]) == (201, settled["id"])
    assert (await wallet(api, alice), await wallet(api, bob)) == (1500, 2500)
    other = await api.call(
        "POST", f"/api/v1/groups/{group}/settlements", alice, {**body, "amount": 100}, key
    )
    assert (other.status, other.body["code"]) == (409, "idempotency_conflict")
    feed = (await api.ok("GET", f"/api/v1/groups/{group}/activity", bob))["items"]
    assert feed[0]["kind"] == "settlement_recorded"
    assert feed[0]["data"]["settlement_id"] == settled["id"]
    assert feed[0]["data"]["method"] == "wallet"
    fetched = await api.ok("GET", f"/api/v1/groups/{group}/settlements/{settled['id']}", bob)
    assert fetched["status"] == "completed"


async def test_wallet_settlement_without_funds_changes_nothing(api: Api) -> None:
    """With an empty wallet, a wallet settlement is 422 insufficient_funds, balances kept."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    await add_expense(api, group, bob, expense_body(5000, bob.id, equal(alice, bob)))
    await top_up(api, alice, 1000)
    reply = await api.call(
        "POST",
        f"/api/v1/groups/{group}/settlements",
        alice,
        {"to_user_id": bob.id, "amount": 2500, "currency": "EUR", "method": "wallet"},
        fresh_key("POST"),
    )
    assert reply.status == 422, reply.body
    assert reply.body["code"] == "insufficient_funds"
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert await eur(api, group, alice) == {alice.id: -2500, bob.id: 2500}
    assert (await wallet(api, alice), await wallet(api, bob)) == (1000, 0)
    kinds = [
        item["kind"]
        for item in (await api.ok("GET", f"/api/v1/groups/{group}/activity", bob))["items"]
    ]
    assert "settlement_recorded" not in kinds


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"amount": 0}, 422, "validation_error", "$.amount"),
        ({"amount": -100}, 422, "validation_error", "$.amount"),
        ({"amount": 25.5}, 422, "validation_error", "$.amount"),
        ({"currency": "XYZ"}, 422, "validation_error", "$.currency"),
        ({"method": "card"}, 422, "validation_error", "$.method"),
        ({"to_user_id": "SELF"}, 422, "validation_error", "$.to_user_id"),
        ({"to_user_id": "OUTSIDER"}, 422, "not_a_member", "$.to_user_id"),
    ],
)
async def test_bad_settlements_are_refused_and_change_nothing(
    api: Api, change: dict[str, Any], status: int, code: str, field: str
) -> None:
    """Bad amounts, currencies, methods or payees are refused naming the field."""
    alice, bob, outsider = await new_user(api), await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    await add_expense(api, group, bob, expense_body(1000, bob.id, equal(alice, bob)))
    body = {"to_user_id": bob.id, "amount": 500, "currency": "EUR", "method": "cash", **change}
    body["to_user_id"] = {"SELF": alice.id, "OUTSIDER": outsider.id}.get(
        body["to_user_id"], body["to_user_id"]
    )
    reply = await api.call(
        "POST", f"/api/v1/groups/{group}/settlements", alice, body, fresh_key("POST")
    )
    assert (reply.status, reply.body["code"]) == (status, code), reply.body
    assert reply.field() == field
    assert await eur(api, group, alice) == {alice.id: -500, bob.id: 500}


# ── activity, comments, export ────────────────────────────────────────────────────────


async def test_activity_is_newest_first_and_pages(api: Api) -> None:
    """The feed lists what happened, newest first, and pages with a cursor."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    first = await add_expense(api, group, alice, expense_body(800, alice.id, equal(alice, bob)))
    await api.ok("PATCH", f"/api/v1/groups/{group}/expenses/{first['id']}", bob, {"amount": 900})
    await api.ok(
        "POST",
        f"/api/v1/groups/{group}/settlements",
        bob,
        {"to_user_id": alice.id, "amount": 450, "currency": "EUR", "method": "cash"},
        status=201,
    )
    feed = (await api.ok("GET", f"/api/v1/groups/{group}/activity", alice))["items"]
    assert [item["kind"] for item in feed] == [
        "settlement_recorded",
        "expense_updated",
        "expense_added",
        "member_added",
        "group_created",
    ]
    assert [item["created_at"] for item in feed] == sorted(
        (item["created_at"] for item in feed), reverse=True
    )
    assert feed[2]["expense_id"] == first["id"]
    assert feed[2]["actor_user_id"] == alice.id
    paged: list[int] = []
    cursor: str | None = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await api.ok("GET", f"/api/v1/groups/{group}/activity{query}", bob)
        paged += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == [item["id"] for item in feed]


async def test_comments_on_an_expense(api: Api) -> None:
    """POST a comment is 201; GET lists them in order; blank or unknown expense refused."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    spent = await add_expense(api, group, alice, expense_body(800, alice.id, equal(alice, bob)))
    path = f"/api/v1/groups/{group}/expenses/{spent['id']}/comments"
    one = await api.ok("POST", path, bob, {"text": "Thanks for dinner!"}, status=201)
    assert (one["user_id"], one["text"], one["expense_id"]) == (
        bob.id,
        "Thanks for dinner!",
        spent["id"],
    )
    two = await api.ok("POST", path, alice, {"text": "Any time"}, status=201)
    listed = await api.ok("GET", path, alice)
    assert [c["id"] for c in listed["items"]] == [one["id"], two["id"]]
    for body, field in [({"text": ""}, "$.text"), ({"text": "   "}, "$.text"), ({}, "$.text")]:
        reply = await api.call("POST", path, alice, body)
        assert (reply.status, reply.field()) == (422, field)
    unknown = await api.call(
        "POST", f"/api/v1/groups/{group}/expenses/nope/comments", alice, {"text": "hi"}
    )
    assert (unknown.status, unknown.body["code"]) == (404, "expense_not_found")
    assert len((await api.ok("GET", path, bob))["items"]) == 2


async def test_export_csv_has_every_expense_and_share(api: Api) -> None:
    """export.csv is an attachment with one row per expense and a share column per person,
    people shown by name (two of one name told apart by their ids' start)."""
    alice = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Alice")
    bob = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Bob")
    carol = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Bob")
    column = {alice.id: "share:Alice", bob.id: f"share:Bob ({bob.id[:8]})"}
    column[carol.id] = f"share:Bob ({carol.id[:8]})"
    group = await new_group(api, alice, bob, carol)
    dinner = await add_expense(
        api,
        group,
        alice,
        expense_body(3000, alice.id, equal(alice, bob, carol), description="Dinner"),
    )
    taxi = await add_expense(
        api,
        group,
        bob,
        expense_body(
            1250,
            bob.id,
            {
                "mode": "exact",
                "shares": [
                    {"user_id": bob.id, "amount": 250},
                    {"user_id": carol.id, "amount": 1000},
                ],
            },
            description="=Taxi",
        ),
    )
    reply = await api.call("GET", f"/api/v1/groups/{group}/export.csv", carol)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert reply.headers["Content-Disposition"].startswith('attachment; filename="')
    assert reply.headers["Content-Disposition"].endswith('.csv"')
    rows = {row["expense_id"]: row for row in csv.DictReader(io.StringIO(reply.body))}
    assert set(rows) == {dinner["id"], taxi["id"]}
    assert rows[dinner["id"]]["description"] == "Dinner"
    assert rows[dinner["id"]]["amount"] == "30.00"
    assert {rows[dinner["id"]][column[u.id]] for u in (alice, bob, carol)} == {"10.00"}
    assert rows[dinner["id"]]["paid_by"] == "Alice=30.00"
    assert rows[taxi["id"]]["description"] == "'=Taxi"
    assert rows[taxi["id"]][column[bob.id]] == "2.50"
    assert rows[taxi["id"]][column[carol.id]] == "10.00"
    assert rows[taxi["id"]][column[alice.id]] == ""
    assert rows[taxi["id"]]["paid_by"] == f"Bob ({bob.id[:8]})=12.50"


# ── bad input changes nothing ─────────────────────────────────────────────────────────


def bad_expenses(alice: str, bob: str, outsider: str) -> list[tuple[dict[str, Any], int, str, str]]:
    """(body, status, code, field) for expenses the node must refuse."""
    pair = {"mode": "equal", "shares": [{"user_id": alice}, {"user_id": bob}]}
    return [
        (
            expense_body(
                1000,
                alice,
                {"mode": "equal", "shares": [{"user_id": alice}, {"user_id": outsider}]},
            ),
            422,
            "not_a_member",
            "$.split.shares[1].user_id",
        ),
        (expense_body(1000, outsider, pair), 422, "not_a_member", "$.paid_by"),
        (
            expense_body(
                1000,
                alice,
                {
                    "mode": "exact",
                    "shares": [{"user_id": alice, "amount": 600}, {"user_id": bob, "amount": 300}],
                },
            ),
            422,
            "invalid_split",
            "$.split.shares",
        ),
        (
            expense_body(
                1000,
                alice,
                {
                    "mode": "percent",
                    "shares": [{"user_id": alice, "percent": 60}, {"user_id": bob, "percent": 30}],
                },
            ),
            422,
            "invalid_split",
            "$.split.shares",
        ),
        (
            expense_body(
                1000,
                alice,
                {
                    "mode": "percent",
                    "shares": [
                        {"user_id": alice, "percent": 66.667},
                        {"user_id": bob, "percent": 33.333},
                    ],
                },
            ),
            422,
            "validation_error",
            "$.split.shares[0].percent",
        ),
        (
            expense_body(
                1000,
                alice,
                {
                    "mode": "exact",
                    "shares": [
                        {"user_id": alice, "amount": 500, "currency": "USD"},
                        {"user_id": bob, "amount": 500},
                    ],
                },
            ),
            422,
            "mixed_currencies",
            "$.split.shares[0].currency",
        ),
        (
            expense_body(1000, [{"user_id": alice, "amount": 1000, "currency": "GBP"}], pair),
            422,
            "mixed_currencies",
            "$.paid_by[0].currency",
        ),
        (
            expense_body(
                1000, [{"user_id": alice, "amount": 400}, {"user_id": bob, "amount": 500}], pair
            ),
            422,
            "validation_error",
            "$.paid_by",
        ),
        (expense_body(0, alice, pair), 422, "validation_error", "$.amount"),
        (expense_body(-500, alice, pair), 422, "validation_error", "$.amount"),
        (expense_body(10.5, alice, pair), 422, "validation_error", "$.amount"),
        (expense_body("1000", alice, pair), 422, "validation_error", "$.amount"),
        (expense_body(1000, alice, pair, currency="XYZ"), 422, "validation_error", "$.currency"),
        (expense_body(1000, alice, pair, description=""), 422, "validation_error", "$.description"),
        (expense_body(1000, alice, pair, date="2024-13-01"), 422, "validation_error", "$.date"),
        (
            expense_body(1000, alice, pair, recurrence="daily"),
            422,
            "validation_error",
            "$.recurrence",
        ),
        (expense_body(1000, alice, {"mode": "halves"}), 422, "validation_error", "$.split.mode"),
        (expense_body(1000, alice, pair, tip=100), 422, "validation_error", "$"),
    ]


async def test_bad_expenses_name_the_field_and_change_nothing(api: Api) -> None:
    """Every bad expense is refused with a problem naming the field; nothing is recorded."""
    alice, bob, outsider = await new_user(api), await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    await add_expense(api, group, alice, expense_body(2000, alice.id, equal(alice, bob)))
    before = (await eur(api, group, alice), await expense_ids(api, group, alice))
    feed_before = await api.ok("GET", f"/api/v1/groups/{group}/activity", alice)
    for body, status, code, field in bad_expenses(alice.id, bob.id, outsider.id):
        reply = await api.call("POST", f"/api/v1/groups/{group}/expenses", alice, body)
        assert (reply.status, reply.body["code"]) == (status, code), (body, reply.body)
        assert reply.field().startswith(field), (body, reply.body)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert (await eur(api, group, alice), await expense_ids(api, group, alice)) == before
    assert await api.ok("GET", f"/api/v1/groups/{group}/activity", alice) == feed_before


async def test_bad_edits_change_nothing(api: Api) -> None:
    """A PATCH that does not add up or names a non-member is refused; the expense stays."""
    alice, bob, outsider = await new_user(api), await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    created = await add_expense(api, group, alice, expense_body(2000, alice.id, equal(alice, bob)))
    path = f"/api/v1/groups/{group}/expenses/{created['id']}"
    for body, code, field in [
        (
            {"split": {"mode": "exact", "shares": [{"user_id": alice.id, "amount": 1}]}},
            "invalid_split",
            "$.split.shares",
        ),
        ({"paid_by": outsider.id}, "not_a_member", "$.paid_by"),
        ({"amount": 12.5}, "validation_error", "$.amount"),
        ({"recurrence": "hourly"}, "validation_error", "$.recurrence"),
        (
            {
                "currency": "USD",
                "paid_by": [{"user_id": alice.id, "amount": 2000, "currency": "EUR"}],
            },
            "mixed_currencies",
            "$.paid_by[0].currency",
        ),
    ]:
        reply = await api.call("PATCH", path, bob, body)
        assert (reply.status, reply.body["code"]) == (422, code), (body, reply.body)
        assert reply.field().startswith(field)
    assert await api.ok("GET", path, alice) == created
    assert await eur(api, group, alice) == {alice.id: 1000, bob.id: -1000}


async def test_a_group_you_are_not_in_does_not_exist(api: Api) -> None:
    """To an outsider every route of a group is 404 group_not_found, and nothing changes."""
    alice, bob, outsider = await new_user(api), await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    spent = await add_expense(api, group, alice, expense_body(2000, alice.id, equal(alice, bob)))
    base = f"/api/v1/groups/{group}"
    attempts: list[tuple[str, str, Any]] = [
        ("GET", base, None),
        ("POST", f"{base}/members", {"user_id": outsider.id}),
        ("DELETE", f"{base}/members/{bob.id}", None),
        ("POST", f"{base}/expenses", expense_body(500, outsider.id, {"mode": "equal"})),
        ("GET", f"{base}/expenses", None),
        ("GET", f"{base}/expenses/{spent['id']}", None),
        ("PATCH", f"{base}/expenses/{spent['id']}", {"amount": 1}),
        ("DELETE", f"{base}/expenses/{spent['id']}", None),
        ("GET", f"{base}/balances", None),
        ("GET", f"{base}/settle-plan", None),
        (
            "POST",
            f"{base}/settlements",
            {"to_user_id": alice.id, "amount": 1, "currency": "EUR", "method": "cash"},
        ),
        ("GET", f"{base}/activity", None),
        ("POST", f"{base}/expenses/{spent['id']}/comments", {"text": "hi"}),
        ("GET", f"{base}/expenses/{spent['id']}/comments", None),
        ("GET", f"{base}/export.csv", None),
    ]
    for method, path, body in attempts:
        reply = await api.call(method, path, outsider, body, fresh_key(method))
        assert (reply.status, reply.body["code"]) == (404, "group_not_found"), (method, path)
    unknown = await api.call("GET", "/api/v1/groups/no-such-group/balances", alice)
    assert (unknown.status, unknown.body["code"]) == (404, "group_not_found")
    view = await api.ok("GET", base, alice)
    assert {m["user_id"] for m in view["members"]} == {alice.id, bob.id}
    assert await expense_ids(api, group, alice) == [spent["id"]]
    assert await eur(api, group, alice) == {alice.id: 1000, bob.id: -1000}


# ── people, not UUIDs ─────────────────────────────────────────────────────────────────


async def test_people_are_named_everywhere_and_a_rename_shows_at_once(api: Api) -> None:
    """Members, payers, shares, the settle plan and the activity feed name people beside
    their ids (never their emails); after a rename every read says the new name."""
    alice = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Alice")
    bob = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Bob")
    group = await new_group(api, alice, bob)
    spent = await add_expense(api, group, alice, expense_body(1000, alice.id, equal(alice, bob)))
    assert spent["paid_by"][0]["name"] == "Alice"
    assert {share["name"] for share in spent["shares"]} == {"Alice", "Bob"}
    view = await api.ok("GET", f"/api/v1/groups/{group}", bob)
    assert {m["user_id"]: m["name"] for m in view["members"]} == {alice.id: "Alice", bob.id: "Bob"}
    assert alice.email not in str(view)
    assert bob.email not in str(view)
    plan = (await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", bob))["transfers"]
    assert (plan[0]["from_user_name"], plan[0]["to_user_name"]) == ("Bob", "Alice")
    feed = (await api.ok("GET", f"/api/v1/groups/{group}/activity", bob))["items"]
    assert not any(alice.id in item["summary"] for item in feed)
    assert any(item["summary"].startswith("Alice ") for item in feed)
    assert {item["actor_user_name"] for item in feed} == {"Alice"}

    await api.ok("PATCH", "/api/v1/me", alice, {"name": "Alicia"})
    view = await api.ok("GET", f"/api/v1/groups/{group}", bob)
    assert {m["user_id"]: m["name"] for m in view["members"]}[alice.id] == "Alicia"
    feed = (await api.ok("GET", f"/api/v1/groups/{group}/activity", bob))["items"]
    assert any(item["summary"].startswith("Alicia ") for item in feed)
    balances = (await api.ok("GET", f"/api/v1/groups/{group}/balances", bob))["balances"]
    assert {line["name"] for line in balances} == {"Alicia", "Bob"}


# ── the group's lifecycle ─────────────────────────────────────────────────────────────


async def test_rename_archive_bring_back_and_delete_a_group(api: Api) -> None:
    """A member renames the group; archived it is read-only and listed only with
    ?archived=true; brought back it takes changes again; it is deleted only once every
    balance is zero, and then it is gone for everyone."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    path = f"/api/v1/groups/{group}"
    renamed = await api.ok("PATCH", path, bob, {"name": "  Lisbon 2027 "})
    assert (renamed["name"], renamed["archived"]) == ("Lisbon 2027", False)
    await api.problem("PATCH", path, bob, {"name": "   "}, status=422, code="validation_error")
    await api.problem("PATCH", path, bob, {}, status=422, code="validation_error")

    archived = await api.ok("PATCH", path, alice, {"archived": True})
    assert archived["archived"] is True
    assert (await api.ok("GET", "/api/v1/groups", alice))["items"] == []
    listed = await api.ok("GET", "/api/v1/groups?archived=true", alice)
    assert [g["id"] for g in listed["items"]] == [group]
    body = expense_body(1000, alice.id, equal(alice, bob))
    await api.problem("POST", f"{path}/expenses", alice, body, status=409, code="group_archived")
    await api.problem("PATCH", path, bob, {"name": "X"}, status=409, code="group_archived")
    assert (await api.ok("GET", path, bob))["name"] == "Lisbon 2027"  # still readable

    await api.ok("PATCH", path, bob, {"archived": False})
    await add_expense(api, group, alice, body)
    await api.problem("DELETE", path, bob, status=409, code="unsettled_balance")
    await api.ok(
        "POST",
        f"{path}/settlements",
        bob,
        {"to_user_id": alice.id, "amount": 500, "currency": "EUR", "method": "cash"},
        status=201,
    )
    reply = await api.call("DELETE", path, bob)
    assert reply.status == 204
    await api.problem("GET", path, alice, status=404, code="group_not_found")
    assert (await api.ok("GET", "/api/v1/groups", alice))["items"] == []
    feed_kinds = await api.call("GET", f"{path}/activity", alice)
    assert feed_kinds.status == 404


async def test_the_summary_says_where_you_stand_across_groups(api: Api) -> None:
    """Across two groups: totals per currency, who owes you by name, each group's net, and
    the newest activity first; a newcomer's summary is empty."""
    alice = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Alice")
    bob = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Bob")
    carol = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Carol")
    trip = await new_group(api, alice, bob, carol)
    flat = await new_group(api, alice, bob)
    await add_expense(api, trip, alice, expense_body(3000, alice.id, equal(alice, bob, carol)))
    await add_expense(api, flat, bob, expense_body(1000, bob.id, equal(alice, bob)))
    summary = await api.ok("GET", "/api/v1/me/summary", alice)
    assert summary["totals"] == [
        {"currency": "EUR", "owed_to_you": 2000, "you_owe": 500, "net": 1500}
    ]
    people = {p["user_id"]: (p["name"], p["net"]) for p in summary["people"]}
    assert people == {bob.id: ("Bob", 500), carol.id: ("Carol", 1000)}
    assert {g["group_id"]: g["net"] for g in summary["groups"]} == {trip: 2000, flat: -500}
    recent = summary["recent"]
    assert recent[0]["group_id"] == flat
    assert recent[0]["item"]["kind"] == "expense_added"
    assert recent[0]["item"]["actor_user_name"] == "Bob"
    newcomer = await new_user(api)
    assert await api.ok("GET", "/api/v1/me/summary", newcomer) == {
        "totals": [],
        "people": [],
        "groups": [],
        "recent": [],
    }


async def test_why_a_balance_is_what_it_is(api: Api) -> None:
    """The settle plan shows the nets behind each transfer, and a member's breakdown lists
    the expenses and settlements whose effects add up to their net."""
    alice, bob = await new_user(api), await new_user(api)
    group = await new_group(api, alice, bob)
    boat = await add_expense(
        api, group, alice, expense_body(3000, alice.id, equal(alice, bob), description="Boat")
    )
    taxi = await add_expense(
        api, group, bob, expense_body(1000, bob.id, equal(alice, bob), description="Taxi")
    )
    plan = (await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", alice))["transfers"]
    assert [(t["amount"], t["from_net"], t["to_net"]) for t in plan] == [(1000, -1000, 1000)]
    paid = await api.ok(
        "POST",
        f"/api/v1/groups/{group}/settlements",
        bob,
        {"to_user_id": alice.id, "amount": 400, "currency": "EUR", "method": "cash"},
        status=201,
    )
    why = await api.ok("GET", f"/api/v1/groups/{group}/balances/{bob.id}", alice)
    assert why["nets"] == {"EUR": -600}
    assert [(line["kind"], line["id"], line["effect"]) for line in why["lines"]] == [
        ("expense", boat["id"], -1500),
        ("expense", taxi["id"], 500),
        ("settlement", paid["id"], 400),
    ]
    assert sum(line["effect"] for line in why["lines"]) == why["nets"]["EUR"]
    assert why["lines"][2]["counterpart_name"] == "Friend"
    stranger = await new_user(api)
    await api.problem(
        "GET",
        f"/api/v1/groups/{group}/balances/{stranger.id}",
        alice,
        status=422,
        code="not_a_member",
    )


async def test_a_reminder_reaches_the_debtor_once_a_day(api: Api) -> None:
    """A member reminds someone who owes them: the debtor's feed says who and how much, by
    name; a second reminder the same day, one to someone who owes nothing, or to yourself
    is refused and sends nothing."""
    alice = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Alice")
    bob = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Bob")
    group = await new_group(api, alice, bob)
    await add_expense(api, group, alice, expense_body(2500, alice.id, equal(alice, bob)))
    path = f"/api/v1/groups/{group}/reminders"
    sent = await api.ok("POST", path, alice, {"user_id": bob.id}, status=201)
    assert sent["owed"] == [{"currency": "EUR", "amount": 1250}]
    assert sent["to_user_name"] == "Bob"
    await api.problem("POST", path, alice, {"user_id": bob.id}, status=409, code="already_reminded")
    await api.problem("POST", path, bob, {"user_id": alice.id}, status=422, code="nothing_owed")
    await api.problem(
        "POST", path, alice, {"user_id": alice.id}, status=422, code="invalid_expense"
    )

    async def reminded() -> list[dict[str, Any]]:
        feed = (await api.ok("GET", "/api/v1/notifications", bob))["items"]
        return [item for item in feed if item["kind"] == "MemberReminded"]

    for _ in range(100):
        found = await reminded()
        if found:
            break
        await asyncio.sleep(0.05)
    assert len(found) == 1
    assert found[0]["body"] == "Alice reminds you that you owe 12.50 EUR in Trip."


async def test_join_links_admit_verified_people_until_used_up_or_revoked(
    api: Api, node: RunningNode
) -> None:
    """A member makes a link; a verified person joins with it (named in the group); an
    unverified one may not; past its use limit, revoked, or mistyped, it admits nobody."""
    alice, carol, dave, eve = [await new_user(api) for _ in range(4)]
    for person in (carol, dave):
        await verify(api, node, person)
    group = await new_group(api, alice)
    link = await api.ok("POST", f"/api/v1/groups/{group}/links", alice, {"max_uses": 1}, status=201)
    assert link["token"].startswith(f"{group}.")
    assert (link["uses"], link["max_uses"]) == (0, 1)
    join = f"/api/v1/join/{link['token']}"
    await api.problem("POST", join, eve, status=403, code="email_not_verified")
    joined = await api.ok("POST", join, carol, status=201)
    assert carol.id in {m["user_id"] for m in joined["members"]}
    await api.problem("POST", join, carol, status=409, code="already_member")
    await api.problem("POST", join, dave, status=409, code="join_link_used_up")
    listed = (await api.ok("GET", f"/api/v1/groups/{group}/links", alice))["items"]
    assert [(item["id"], item["uses"], item["token"]) for item in listed] == [(link["id"], 1, None)]

    second = await api.ok("POST", f"/api/v1/groups/{group}/links", carol, status=201)
    reply = await api.call("DELETE", f"/api/v1/groups/{group}/links/{second['id']}", alice)
    assert reply.status == 204
    await api.problem(
        "POST", f"/api/v1/join/{second['token']}", dave, status=404, code="join_link_not_found"
    )
    await api.problem(
        "POST", f"/api/v1/join/{group}.wrong", dave, status=404, code="join_link_not_found"
    )
    await api.problem("POST", "/api/v1/join/nonsense", dave, status=404, code="join_link_not_found")
    assert await members_of(api, group, alice) == {alice.id, carol.id}


async def test_an_invitation_is_mailed_and_only_its_sender_withdraws_it(
    api: Api, node: RunningNode
) -> None:
    """Inviting an address with no account mails it (naming the inviter and the group); a
    member who did not send it cannot withdraw it; its sender can, once."""
    alice = await api.register(f"s{secrets.token_hex(5)}@example.com", name="Alice")
    bob = await new_user(api)
    group = await new_group(api, alice, bob)
    address = f"new-{secrets.token_hex(4)}@example.com"
    invited = await api.ok(
        "POST", f"/api/v1/groups/{group}/members", alice, {"email": address}, status=201
    )
    assert [i["email"] for i in invited["invited"]] == [address]

    async def invitation_mail() -> str:
        for path in sorted((node.folder / "data" / "mail").glob("*.eml")):
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(mail, EmailMessage)
            if address in str(mail["To"]):
                return f"{mail['Subject']}\n{body_text(mail)}"
        return ""

    mailed = await eventually(invitation_mail, bool, what="the invitation mail")
    assert "You are invited to Trip" in mailed
    assert "Alice invited you to split expenses in Trip" in mailed
    path = f"/api/v1/groups/{group}/invitations/{address}"
    await api.problem("DELETE", path, bob, status=403, code="not_the_inviter")
    reply = await api.call("DELETE", path, alice)
    assert reply.status == 204
    assert (await api.ok("GET", f"/api/v1/groups/{group}", alice))["invited"] == []
    await api.problem("DELETE", path, alice, status=404, code="invite_not_found")
