"""Idempotency-Key end to end, against real node processes (shared/API.md, Conventions).

Each actor records a client's key in its own table, in the transaction that makes the
effect (actors/runtime/idempotency.py), so a retry with the key answers the first result
wherever and whenever it lands: on another node while the first request still runs (409
`idempotency_in_flight`, then the first outcome), on a new process after the first one was
killed between its commit and its reply, and after the edge gave up waiting (503
`ask_timeout`) while the actor carried on. The plain HTTP rules (replay, conflict, the
required key checked before the token, a malformed key) run on one module-scoped node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
import pytest_asyncio

from tests.e2e.test_cluster import cluster_on
from tests.support.api import PASSWORD, Api, Reply, User, eventually
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database
from tests.support.redis import redis_url

pytestmark = pytest.mark.e2e

T = TypeVar("T")

JWT_KEYS = "idem:" + "i" * 48
SANDBOX_SECRET = "idempotency-sandbox-secret-0123456789ab"
TOP_UP = 10_000
OWED = 1_500  # what the payer owes the payee after the set-up's expense
REGISTER = "/api/v1/auth/register"


# ── helpers ────────────────────────────────────────────────────────────────────────────


def node_env(database_url: str, **extra: str) -> dict[str, str]:
    """A node on `database_url` with fixed secrets, so a restarted node honours the tokens
    and the sandbox checkout of the one before it."""
    return {
        "SPLITGO_DATABASE_URL": database_url,
        # a node with SPLITGO_DATABASE_URL refuses to start on a generated signing key
        "SPLITGO_JWT_KEYS": JWT_KEYS,
        "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
        "SPLITGO_SHUTDOWN_TIMEOUT": "5",
        **extra,
    }


def new_key() -> dict[str, str]:
    return {"Idempotency-Key": secrets.token_hex(12)}


def timed_out(reply: Reply) -> bool:
    return reply.status == 503 and isinstance(reply.body, dict) and "code" in reply.body


async def answered(send: Callable[[], Awaitable[Reply]], tries: int = 30) -> Reply:
    """The first answer that is not a 503 (the edge gave up waiting on a busy machine; the
    request carries its key, so sending it again never does the thing twice)."""
    reply = await send()
    for _ in range(tries - 1):
        if not timed_out(reply):
            return reply
        await asyncio.sleep(0.2)
        reply = await send()
    return reply


async def sign_up(api: Api, name: str) -> User:
    """A new account, signed in (set-up: a register that times out is sent again with its
    key, so it never trips over its own first attempt as `email_taken`)."""
    email = f"{name.lower()}-{secrets.token_hex(4)}@example.com"
    body = {"email": email, "password": PASSWORD, "name": name}
    key = new_key()
    created = await answered(lambda: api.call("POST", REGISTER, body=body, headers=key))
    assert created.status == 201, created.body
    credentials = {"email": email, "password": PASSWORD}
    login = await answered(lambda: api.call("POST", "/api/v1/auth/login", body=credentials))
    assert login.status == 200, login.body
    return User(created.body["id"], email, login.body["access_token"])


async def available(api: Api, user: User) -> int:
    """The user's available EUR (0 without a wallet yet)."""
    body = await api.ok("GET", "/api/v1/wallet", user)
    return sum(line["available"] for line in body["balances"] if line["currency"] == "EUR")


async def nets(api: Api, user: User, group_id: str) -> dict[str, int]:
    body = await api.ok("GET", f"/api/v1/groups/{group_id}/balances", user)
    return {line["user_id"]: line["net"] for line in body["balances"]}


def expense_body(payer: User, *others: User, amount: int, description: str) -> dict[str, Any]:
    """An expense `payer` paid, split equally between them and `others`."""
    return {
        "description": description,
        "amount": amount,
        "currency": "EUR",
        "paid_by": payer.id,
        "split": {"mode": "equal", "shares": [{"user_id": u.id} for u in (payer, *others)]},
    }


async def group_of(api: Api, owner: User, *members: User) -> str:
    """A EUR group of `owner` with `members` added; its id."""
    group = await api.ok("POST", "/api/v1/groups", owner, {"name": "Flat", "currency": "EUR"}, 201)
    for member in members:
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": member.id}, 201
        )
    return str(group["id"])


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


# ── 1. two nodes, one key, one settlement ─────────────────────────────────────────────


async def test_same_key_wallet_settlements_on_two_nodes_settle_once(tmp_path: Path) -> None:
    """Two same-key wallet settlements sent at once to two nodes: one is 409
    idempotency_in_flight while the money is held up, the other 201; one settlement, one
    transfer, balances and wallets moved once, and a later retry answers the first 201."""
    async with cluster_on(tmp_path, redis_url()) as cluster:
        env = {**cluster.env(), **node_env(cluster.database_url), "SPLITGO_PLUGINS": ""}
        node_a, node_b = await asyncio.gather(
            *(
                start_node(tmp_path / name, "--transport", "redis", "--node-id", name, env=env)
                for name in ("a", "b")
            )
        )
        cluster.nodes += [node_a, node_b]
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            a, b = Api(node_a.url, http), Api(node_b.url, http)
            payer, payee = await sign_up(a, "Payer"), await sign_up(b, "Payee")
            await a.top_up(payer, TOP_UP)
            await eventually(lambda: available(a, payer), lambda eur: eur == TOP_UP, what="top-up")
            group_id = await group_of(a, payer, payee)
            await a.ok(
                "POST",
                f"/api/v1/groups/{group_id}/expenses",
                payee,
                expense_body(payee, payer, amount=2 * OWED, description="Rent"),
                201,
            )
            assert await nets(a, payer, group_id) == {payer.id: -OWED, payee.id: OWED}

            path = f"/api/v1/groups/{group_id}/settlements"
            body = {"to_user_id": payee.id, "amount": OWED, "currency": "EUR", "method": "wallet"}
            key = new_key()
            # payments locks the payer's wallet account to move the money: while this test
            # holds that row, the first settlement stays pending (its key in flight)
            lock = await asyncpg.connect(cluster.database_url)
            held = lock.transaction()
            await held.start()
            sent: list[asyncio.Task[Reply]] = []
            try:
                locked = await lock.fetch(
                    "SELECT id FROM payment_accounts WHERE owner_kind = 'user' AND owner = $1"
                    " AND currency = 'EUR' FOR UPDATE",
                    payer.id,
                )
                assert len(locked) == 1, "the payer's EUR wallet account"
                sent = [
                    asyncio.create_task(api.call("POST", path, payer, body, key)) for api in (a, b)
                ]
                done, waiting = await asyncio.wait(
                    sent, timeout=15, return_when=asyncio.FIRST_COMPLETED
                )
                assert len(done) == 1, [task.result() for task in done]
                refused = done.pop().result()
                assert refused.status == 409, refused.body
                assert refused.body["code"] == "idempotency_in_flight", refused.body
                assert len(waiting) == 1
            finally:
                await held.rollback()  # the money may move now
                await lock.close()
                if len(sent) == 2 and not all(task.done() for task in sent):
                    await asyncio.wait(sent, timeout=20)
                for task in sent:
                    if not task.done():
                        task.cancel()
            first = waiting.pop().result()
            assert first.status == 201, first.body
            settled = first.body
            assert (settled["status"], settled["amount"], settled["method"]) == (
                "completed",
                OWED,
                "wallet",
            )

            rows = await fetch(
                cluster.database_url,
                "SELECT id, status, transfer_id FROM splits_settlements WHERE group_id = $1",
                group_id,
            )
            assert [tuple(row) for row in rows] == [
                (settled["id"], "completed", settled["transfer_id"])
            ]
            transfers = await fetch(
                cluster.database_url,
                "SELECT id, amount FROM payment_transfers WHERE kind = 'settlement'"
                " AND from_user_id = $1",
                payer.id,
            )
            assert [tuple(row) for row in transfers] == [(settled["transfer_id"], OWED)]
            assert await available(b, payer) == TOP_UP - OWED
            assert await available(b, payee) == OWED
            assert await nets(b, payee, group_id) == {payer.id: 0, payee.id: 0}

            again = await b.call("POST", path, payer, body, key)
            assert (again.status, again.body) == (201, settled)
            assert await available(a, payer) == TOP_UP - OWED


# ── 2. killed between the commit and the reply ────────────────────────────────────────


async def post_without_reading(
    url: str, path: str, user: User, key: dict[str, str], body: dict[str, Any]
) -> asyncio.StreamWriter:
    """Send a POST over a raw socket and leave its reply unread; the open connection."""
    where = urlsplit(url)
    assert where.hostname is not None
    assert where.port is not None
    _, writer = await asyncio.open_connection(where.hostname, where.port)
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {where.hostname}:{where.port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"Authorization: Bearer {user.token}\r\n"
        f"Idempotency-Key: {key['Idempotency-Key']}\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    writer.write(head.encode() + payload)
    await writer.drain()
    return writer


async def test_a_retry_after_a_kill_between_commit_and_reply_returns_the_original(
    tmp_path: Path,
) -> None:
    """An expense whose node is SIGKILLed once it is committed (its reply never read) is
    retried with its key on a new node: 201 with that expense, which exists once."""
    async with fresh_database(schema=True) as database_url:
        env = node_env(database_url)
        node = await start_node(tmp_path / "first", env=env)
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(node.url, http)
                alice, bob = await sign_up(api, "Alice"), await sign_up(api, "Bob")
                group_id = await group_of(api, alice, bob)
            path = f"/api/v1/groups/{group_id}/expenses"
            body = expense_body(alice, bob, amount=3_000, description="Groceries")
            key = new_key()
            writer = await post_without_reading(node.url, path, alice, key, body)

            async def expense_ids() -> list[str]:
                rows = await fetch(
                    database_url, "SELECT id FROM splits_expenses WHERE group_id = $1", group_id
                )
                return [row["id"] for row in rows]

            (expense_id,) = await eventually(expense_ids, lambda ids: len(ids) == 1, what="commit")
            node.process.kill()
            await asyncio.to_thread(node.process.wait)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        finally:
            if node.process.poll() is None:
                node.process.kill()
                await asyncio.to_thread(node.process.wait)

        node = await start_node(tmp_path / "second", env=env)
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(node.url, http)
                retried = await api.call("POST", path, alice, body, key)
                assert retried.status == 201, retried.body
                assert retried.body["id"] == expense_id
                assert retried.body["amount"] == 3_000
                again = await api.call("POST", path, alice, body, key)
                assert (again.status, again.body) == (201, retried.body)
                assert await expense_ids() == [expense_id]
                assert await nets(api, bob, group_id) == {alice.id: 1_500, bob.id: -1_500}
        finally:
            await stop_node(node)


# ── 3. the edge gave up, the actor did not ────────────────────────────────────────────


async def test_a_register_that_timed_out_is_retried_with_its_key_to_the_same_account(
    tmp_path: Path,
) -> None:
    """A register answered 503 ask_timeout (the hash outlasts a 0.1 s ask) and retried with
    its key answers 201 with one account, never 409 email_taken; the key then replays that
    201 and refuses another body with 409 idempotency_conflict."""
    async with fresh_database(schema=True) as database_url:
        node = await start_node(
            tmp_path / "node", env=node_env(database_url, SPLITGO_ASK_TIMEOUT="0.1")
        )
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(node.url, http)
                email = f"slow-{secrets.token_hex(4)}@example.com"
                body = {"email": email, "password": PASSWORD, "name": "Ada"}
                key = new_key()

                async def register(sent: dict[str, Any] = body) -> Reply:
                    return await api.call("POST", REGISTER, body=sent, headers=key)

                answers = [await register()]
                for _ in range(30):
                    if answers[-1].status == 201:
                        break
                    await asyncio.sleep(0.2)
                    answers.append(await register())
                outcomes = [(r.status, r.body.get("code")) for r in answers]
                # only timeouts until the first 201 (never email_taken, never a conflict)
                assert set(outcomes[:-1]) <= {(503, "ask_timeout")}, outcomes
                created = answers[-1]
                assert created.status == 201, outcomes

                rows = await fetch(database_url, "SELECT id FROM users WHERE email = $1", email)
                assert [row["id"] for row in rows] == [created.body["id"]]
                assert created.body["email"] == email

                replayed = await answered(register)
                assert (replayed.status, replayed.body) == (201, created.body)
                other = await answered(lambda: register({**body, "name": "Grace"}))
                assert other.status == 409, other.body
                assert other.body["code"] == "idempotency_conflict"
                rows = await fetch(database_url, "SELECT name FROM users WHERE email = $1", email)
                assert [row["name"] for row in rows] == ["Ada"]
                print(f"register answers until 201: {outcomes}")
        finally:
            await stop_node(node)


# ── 4. the HTTP rules, on one node ────────────────────────────────────────────────────


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plain_node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    async with fresh_database(schema=True) as database_url:
        node = await start_node(
            tmp_path_factory.mktemp("idempotency-node"), env=node_env(database_url)
        )
        try:
            yield node
        finally:
            await stop_node(node)


@pytest_asyncio.fixture(loop_scope="module")
async def api(plain_node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(plain_node.url, http)


@pytest.mark.asyncio(loop_scope="module")
async def test_an_expense_posted_twice_with_one_key_is_created_once(api: Api) -> None:
    """The same key and body answer the first 201 and add nothing; the key with another body
    is 409 idempotency_conflict; another member's same key is their own."""
    alice, bob = await sign_up(api, "Alice"), await sign_up(api, "Bob")
    group_id = await group_of(api, alice, bob)
    path = f"/api/v1/groups/{group_id}/expenses"
    body = expense_body(alice, bob, amount=2_000, description="Dinner")
    key = new_key()

    first = await api.call("POST", path, alice, body, key)
    assert first.status == 201, first.body
    again = await api.call("POST", path, alice, body, key)
    assert (again.status, again.body) == (201, first.body)
    changed = await api.call("POST", path, alice, {**body, "amount": 2_002}, key)
    assert changed.status == 409, changed.body
    assert changed.body["code"] == "idempotency_conflict"
    listed = await api.ok("GET", path, bob)
    assert [item["id"] for item in listed["items"]] == [first.body["id"]]
    assert await nets(api, bob, group_id) == {alice.id: 1_000, bob.id: -1_000}

    # the key is scoped to its caller: Bob's request with it is a request of his own
    bobs = await api.call(
        "POST", path, bob, expense_body(bob, alice, amount=2_000, description="Taxi"), key
    )
    assert bobs.status == 201, bobs.body
    assert bobs.body["id"] != first.body["id"]
    assert await nets(api, bob, group_id) == {alice.id: 0, bob.id: 0}


@pytest.mark.asyncio(loop_scope="module")
async def test_retried_ride_steps_answer_their_first_result(api: Api) -> None:
    """A whole trip with a key on every step: a retried request, accept and complete answer
    their first result (not 409 invalid_transition), and the fare is charged once."""
    rider, cabbie = await sign_up(api, "Rider"), await sign_up(api, "Cabbie")
    await api.top_up(rider, TOP_UP)
    await eventually(lambda: available(api, rider), lambda eur: eur == TOP_UP, what="top-up")
    pickup, dropoff = {"lat": 48.0, "lon": 11.0}, {"lat": 48.012, "lon": 11.015}
    await api.ok("POST", "/api/v1/drivers", cabbie, {"vehicle": "VW Golf", "plate": "M-SG 1"}, 201)
    moved = await api.call(
        "POST", "/api/v1/drivers/me/location", cabbie, {"lat": 48.001, "lon": 11.0}
    )
    assert moved.status == 204, moved.body
    await api.ok("POST", "/api/v1/drivers/me/status", cabbie, {"status": "online"})

    wanted = {"pickup": pickup, "dropoff": dropoff}
    request_key = new_key()
    requested = await api.call("POST", "/api/v1/rides", rider, wanted, request_key)
    assert requested.status == 201, requested.body
    ride_id = requested.body["id"]
    rerequested = await api.call("POST", "/api/v1/rides", rider, wanted, request_key)
    assert (rerequested.status, rerequested.body) == (201, requested.body)

    async def offered() -> list[str]:
        body = await api.ok("GET", "/api/v1/drivers/me/offers", cabbie)
        return [offer["ride_id"] for offer in body["offers"]]

    await eventually(offered, lambda rides: ride_id in rides, what="the offer")
    steps: dict[str, tuple[dict[str, str], Reply]] = {}
    for action in ("accept", "arrive", "start", "complete"):
        if action == "complete":
            for fraction in (0.5, 1.0):
                place = {
                    "lat": pickup["lat"] + (dropoff["lat"] - pickup["lat"]) * fraction,
                    "lon": pickup["lon"] + (dropoff["lon"] - pickup["lon"]) * fraction,
                }
                ping = await api.call("POST", "/api/v1/drivers/me/location", cabbie, place)
                assert ping.status == 204, ping.body
        key = new_key()
        reply = await api.call("POST", f"/api/v1/rides/{ride_id}/{action}", cabbie, headers=key)
        assert reply.status == 200, (action, reply.body)
        steps[action] = (key, reply)
    done = steps["complete"][1].body
    assert done["status"] == "completed"
    fare = done["fare"]
    assert 0 < fare <= TOP_UP

    for action in ("complete", "accept"):
        key, first = steps[action]
        retried = await api.call("POST", f"/api/v1/rides/{ride_id}/{action}", cabbie, headers=key)
        assert (retried.status, retried.body) == (200, first.body), action
    # without its key the same step is a second step, refused as out of order
    await api.problem(
        "POST", f"/api/v1/rides/{ride_id}/complete", cabbie, status=409, code="invalid_transition"
    )
    await eventually(
        lambda: api.ok("GET", "/api/v1/wallet", rider),
        lambda body: {"currency": "EUR", "available": TOP_UP - fare, "held": 0} in body["balances"],
        what="the fare charged once",
    )


@pytest.mark.asyncio(loop_scope="module")
async def test_money_routes_require_a_key_before_the_token(api: Api) -> None:
    """Settlements and ride requests without a key are 400 idempotency_key_required even
    with no token; a key over 200 characters is 400 invalid_idempotency_key."""
    alice, bob = await sign_up(api, "Alice"), await sign_up(api, "Bob")
    group_id = await group_of(api, alice, bob)
    settle: dict[str, Any] = {
        "to_user_id": bob.id,
        "amount": 100,
        "currency": "EUR",
        "method": "cash",
    }
    settlements = f"/api/v1/groups/{group_id}/settlements"
    ride: dict[str, Any] = {
        "pickup": {"lat": 48.0, "lon": 11.0},
        "dropoff": {"lat": 48.01, "lon": 11.01},
    }
    for path, body in ((settlements, settle), ("/api/v1/rides", ride)):
        for user in (None, alice):
            reply = await api.call("POST", path, user, body)
            assert reply.status == 400, (path, user, reply.body)
            assert reply.body["code"] == "idempotency_key_required", reply.body
            assert reply.field() == "Idempotency-Key"

    too_long = {"Idempotency-Key": "k" * 201}
    for path, user, body in (
        (settlements, None, settle),
        (settlements, alice, settle),
        (
            f"/api/v1/groups/{group_id}/expenses",
            alice,
            expense_body(alice, bob, amount=10, description="Tea"),
        ),
        (REGISTER, None, {"email": "long-key@example.com", "password": PASSWORD, "name": "L"}),
    ):
        reply = await api.call("POST", path, user, body, too_long)
        assert reply.status == 400, (path, reply.body)
        assert reply.body["code"] == "invalid_idempotency_key", reply.body
    # nothing was done by any of them
    assert await nets(api, alice, group_id) == {alice.id: 0, bob.id: 0}
    assert (await api.ok("GET", f"/api/v1/groups/{group_id}/expenses", alice))["items"] == []
    exactly = await api.call("POST", settlements, alice, settle, {"Idempotency-Key": "k" * 200})
    assert exactly.status == 201, exactly.body
