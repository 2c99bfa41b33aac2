"""Account deletion and the data export against a real node in this process: every actor
real (auth, payments, splits, chat, notifications, rides) on a real PostgreSQL, driven over
its HTTP edge as people would and checked in the actors' own answers and tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pyotp
import pytest

from actors.auth.messages import DELETED_NAME, DeleteAccount, GetNames
from splitgo.config import load
from splitgo.node import Node
from tests.support.api import PASSWORD, Api, User, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def node(database_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    settings = load(
        {
            "SPLITGO_DATABASE_URL": database_url,
            "SPLITGO_JWT_KEYS": "k1:" + "s" * 48,
            "SPLITGO_PORT": "0",
            "SPLITGO_DATA_DIR": str(tmp_path / "data"),
            "SPLITGO_NODE_ID": "deletion-test",
            "SPLITGO_PASSWORD_HASHING": "test",
            "SPLITGO_RATE_LIMIT": "0",
            "SPLITGO_RATES_URL": "http://127.0.0.1:9/stats/eurofxref/",
        }
    )
    running = Node(settings)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def api(node: Node) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


async def group_with(api: Api, owner: User, *members: User) -> str:
    group = await api.ok("POST", "/api/v1/groups", owner, {"name": "Trip", "currency": "EUR"}, 201)
    for member in members:
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": member.id}, 201
        )
    return str(group["id"])


async def dinner(api: Api, group: str, payer: User, *sharing: User, amount: int = 1000) -> str:
    body = {
        "description": "Dinner",
        "amount": amount,
        "currency": "EUR",
        "paid_by": payer.id,
        "split": {"mode": "equal", "shares": [{"user_id": user.id} for user in sharing]},
    }
    created = await api.ok("POST", f"/api/v1/groups/{group}/expenses", payer, body, 201)
    return str(created["id"])


async def chat_in(api: Api, group: str, user: User, text: str) -> str:
    opened = await api.call("POST", "/api/v1/conversations", user, {"group_id": group})
    assert opened.status in (200, 201), opened.body
    conversation = str(opened.body["id"])
    await api.ok(
        "POST", f"/api/v1/conversations/{conversation}/messages", user, {"text": text}, 201
    )
    return conversation


async def delete(api: Api, user: User, password: str = PASSWORD, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    return await api.call("DELETE", "/api/v1/me", user, {"password": password}, headers)


async def ledger_sum(pool: asyncpg.Pool) -> dict[str, int]:
    """Per currency, credits less debits over every ledger line of every account."""
    rows = await pool.fetch(
        "SELECT a.currency, sum(CASE e.side WHEN 'credit' THEN e.amount ELSE -e.amount END)"
        " AS total FROM payment_entries e JOIN payment_accounts a ON a.id = e.account_id"
        " GROUP BY a.currency"
    )
    return {row["currency"]: int(row["total"]) for row in rows}


async def test_the_export_holds_what_i_made_and_nothing_of_others(api: Api) -> None:
    """The export names my profile, my group, my expense and share, my chat message and my
    wallet, and none of another member's messages or private data."""
    ann, bob = await api.register(name="Ann"), await api.register(name="Bob")
    group = await group_with(api, ann, bob)
    mine = await dinner(api, group, ann, ann, bob)
    conversation = await chat_in(api, group, ann, "ann was here")
    await api.ok(
        "POST", f"/api/v1/conversations/{conversation}/messages", bob, {"text": "bob secret"}, 201
    )
    reply = await api.call("GET", "/api/v1/me/export", ann)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Disposition"].startswith('attachment; filename="splitgo-export-')
    document = reply.body
    assert document["format"] == "splitgo-export/1"
    assert document["account"]["profile"]["email"] == ann.email
    assert [g["group_id"] for g in document["groups"]["groups"]] == [group]
    [expense] = document["groups"]["expenses"]
    assert (expense["expense_id"], expense["paid"], expense["owed"]) == (mine, 1000, 500)
    assert [m["text"] for m in document["chat"]["messages"]] == ["ann was here"]
    text = str(document)
    assert "bob secret" not in text
    assert bob.email not in text
    assert document["account"]["sessions"], "my live session is listed"


async def test_delete_is_refused_while_the_wallet_holds_money(api: Api, pool: asyncpg.Pool) -> None:
    """With 12.50 EUR in the wallet deletion is a 409 that says so, and nothing changed."""
    ann = await api.register(name="Ann")
    await api.top_up(ann, 1250)
    await eventually(
        lambda: api.ok("GET", "/api/v1/wallet", ann),
        lambda wallet: any(b["available"] == 1250 for b in wallet["balances"]),
        what="the top-up credited",
    )
    reply = await delete(api, ann)
    assert reply.status == 409, reply.body
    assert reply.body["code"] == "account_not_empty"
    assert "Your wallet holds 12.50 EUR: withdraw or spend it first." in reply.body["detail"]
    me = await api.ok("GET", "/api/v1/me", ann)
    assert me["email"] == ann.email
    assert me["name"] == "Ann"


async def test_delete_is_refused_while_i_owe_someone_in_a_group(api: Api) -> None:
    """Owing Ann 5.00 EUR in Trip refuses Bob's deletion, saying whom, how much and where;
    a wrong password is refused first at $.password. Nothing changed."""
    ann, bob = await api.register(name="Ann"), await api.register(name="Bob")
    group = await group_with(api, ann, bob)
    await dinner(api, group, ann, ann, bob)
    wrong = await delete(api, bob, password="not my password at all")
    assert (wrong.status, wrong.body["code"], wrong.field()) == (
        422,
        "wrong_password",
        "$.password",
    )
    reply = await delete(api, bob)
    assert reply.status == 409, reply.body
    assert "You owe Ann 5.00 EUR in Trip: settle up first." in reply.body["detail"]
    creditor = await delete(api, ann)
    assert "Bob owes you 5.00 EUR in Trip" in creditor.body["detail"]
    assert (await api.ok("GET", "/api/v1/me", bob))["name"] == "Bob"


async def test_a_deleted_account_is_anonymous_and_its_email_registers_again(
    api: Api, node: Node, pool: asyncpg.Pool
) -> None:
    """Once settled, deletion anonymises the account: sign-in and its tokens are refused,
    its expense and chat message show "Deleted user", the ledger still sums to zero, the
    same delete again answers the same, and the email makes a new account."""
    ann, bob = await api.register(name="Ann"), await api.register(name="Bob")
    group = await group_with(api, ann, bob)
    await api.top_up(bob, 500)
    await eventually(
        lambda: api.ok("GET", "/api/v1/wallet", bob),
        lambda wallet: any(b["available"] == 500 for b in wallet["balances"]),
        what="the top-up credited",
    )
    expense = await dinner(api, group, ann, ann, bob)
    conversation = await chat_in(api, group, bob, "thanks for dinner")
    settle = {"to_user_id": ann.id, "amount": 500, "currency": "EUR", "method": "wallet"}
    await api.ok("POST", f"/api/v1/groups/{group}/settlements", bob, settle, 201)
    await eventually(
        lambda: api.ok("GET", f"/api/v1/groups/{group}/balances", bob),
        lambda view: all(line["net"] == 0 for line in view["balances"]),
        what="the settlement recorded",
    )
    key = str(uuid.uuid4())
    deleted = await delete(api, bob, key=key)
    assert deleted.status == 200, deleted.body
    assert deleted.body["user_id"] == bob.id

    signed_in = await api.call(
        "POST", "/api/v1/auth/login", body={"email": bob.email, "password": PASSWORD}
    )
    assert signed_in.status == 401
    refused = await api.call("GET", "/api/v1/me", bob)
    assert (refused.status, refused.body["code"]) == (401, "session_revoked")
    names = await node.system.ref("auth").ask(GetNames(user_ids=[bob.id]))  # type: ignore[union-attr]
    assert [person.name for person in names.people] == [DELETED_NAME]
    again = await node.system.ref("auth").ask(  # type: ignore[union-attr]
        DeleteAccount(user_id=bob.id, session_id=str(uuid.uuid4()), password=PASSWORD)
    )
    assert again.user_id == bob.id
    assert again.deleted_at == deleted.body["deleted_at"]

    shown = await api.ok("GET", f"/api/v1/groups/{group}/expenses/{expense}", ann)
    shares = {line["user_id"]: line.get("name") for line in shown["shares"]}
    assert shares[bob.id] == DELETED_NAME
    history = await api.ok("GET", f"/api/v1/conversations/{conversation}/messages", ann)
    [message] = [m for m in history["items"] if m["author_id"] == bob.id]
    assert message["author_name"] == DELETED_NAME
    assert message["text"] == "thanks for dinner"

    assert set((await ledger_sum(pool)).values()) == {0}
    lines = await pool.fetchval(
        "SELECT count(*) FROM payment_entries e JOIN payment_accounts a ON a.id = e.account_id"
        " WHERE a.owner_kind = 'user' AND a.owner = $1",
        bob.id,
    )
    assert lines > 0, "the ledger lines of the deleted account stay"
    row = await pool.fetchrow(
        "SELECT email, name, password_hash, deleted_at FROM users WHERE id = $1", bob.id
    )
    assert row["email"] != bob.email
    assert row["password_hash"] is None
    assert row["deleted_at"]

    again_registered = await api.register(email=bob.email, name="Bob again")
    assert again_registered.id != bob.id


async def test_a_deleted_account_loses_its_contacts(api: Api, pool: asyncpg.Pool) -> None:
    """Notifications forgets a deleted account's switches and in-app notices."""
    ann = await api.register(name="Ann")
    await api.ok("PUT", "/api/v1/notifications/preferences", ann, {"splits": {"email": False}})
    assert await pool.fetchval(
        "SELECT count(*) FROM notification_preferences WHERE user_id = $1", ann.id
    )
    assert (await delete(api, ann)).status == 200
    await eventually(
        lambda: pool.fetchval(
            "SELECT count(*) FROM notification_preferences WHERE user_id = $1", ann.id
        ),
        lambda count: count == 0,
        what="notifications forgot the switches",
    )


async def test_with_two_factor_on_only_a_session_that_passed_it_deletes(api: Api) -> None:
    """With TOTP on, a session that began before it was turned on cannot delete the account
    (403 mfa_required, nothing changed), while the session that turned it on can."""
    ann = await api.register(name="Ann")
    login = await api.call(
        "POST", "/api/v1/auth/login", body={"email": ann.email, "password": PASSWORD}
    )
    enrolling = User(ann.id, ann.email, login.body["access_token"])
    setup = await api.ok("POST", "/api/v1/me/mfa/totp", enrolling, {}, 201)
    code = pyotp.TOTP(setup["secret"]).now()
    await api.ok("POST", "/api/v1/me/mfa/totp/confirm", enrolling, {"code": code}, 200)
    refused = await delete(api, ann)
    assert (refused.status, refused.body["code"]) == (403, "mfa_required"), refused.body
    assert (await api.ok("GET", "/api/v1/me", ann))["name"] == "Ann"
    refreshed = await api.call(
        "POST", "/api/v1/auth/refresh", body={"refresh_token": login.body["refresh_token"]}
    )
    strong = User(ann.id, ann.email, refreshed.body["access_token"])
    deleted = await delete(api, strong)
    assert deleted.status == 200, deleted.body
