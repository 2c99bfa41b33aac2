"""The Payments table of API.md over HTTP against a real node: wallet, sandbox top-ups and
their signed webhooks, transfers with idempotency keys, the statement, and bad input."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from actors.payments.providers import sign_payload
from tests.support.api import Api, User
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SANDBOX_SECRET = "e2e-sandbox-secret-0123456789abcdef"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(
        tmp_path_factory.mktemp("payments-node"),
        env={"SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET},
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def new_user(node: RunningNode, http: aiohttp.ClientSession) -> User:
    return await Api(node.url, http).register(name="Payer")


def key() -> dict[str, str]:
    return {"Idempotency-Key": secrets.token_hex(8)}


async def balance(node: RunningNode, http: aiohttp.ClientSession, user: User) -> dict[str, Any]:
    async with http.get(f"{node.url}/api/v1/wallet", headers=user.headers) as response:
        assert response.status == 200
        wallet = await response.json()
    return {b["currency"]: b for b in wallet["balances"]}


async def top_up(
    node: RunningNode, http: aiohttp.ClientSession, user: User, amount: int, *, pay: bool = True
) -> dict[str, Any]:
    """A top-up paid (or declined) on the sandbox's checkout page, as a person would."""
    async with http.post(
        f"{node.url}/api/v1/wallet/top-ups",
        json={"amount": amount, "currency": "EUR"},
        headers={**user.headers, **key()},
    ) as response:
        assert response.status == 201, await response.text()
        created = await response.json()
    assert created["status"] == "pending"
    async with http.get(created["checkout_url"]) as response:
        assert response.status == 200
        page = await response.text()
    assert "Pay" in page
    assert "Decline" in page
    action = "pay" if pay else "decline"
    checkout_path = created["checkout_url"].split("/sandbox/checkout/")[1]
    async with http.post(
        f"{node.url}/sandbox/checkout/{checkout_path}/{action}", allow_redirects=False
    ) as response:
        assert response.status == 303, await response.text()
    async with http.get(
        f"{node.url}/api/v1/wallet/top-ups/{created['id']}", headers=user.headers
    ) as response:
        return dict(await response.json())


async def test_wallet_needs_a_token_and_starts_empty(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """GET /wallet is 401 without a token and lists no balance for a new user."""
    async with http.get(f"{node.url}/api/v1/wallet") as response:
        assert response.status == 401
    user = await new_user(node, http)
    assert await balance(node, http, user) == {}


async def test_sandbox_top_up_pays_and_declines(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """Pay credits the wallet once; Decline fails the top-up and credits nothing."""
    user = await new_user(node, http)
    paid = await top_up(node, http, user, 2500)
    assert paid["status"] == "succeeded"
    declined = await top_up(node, http, user, 700, pay=False)
    assert declined["status"] == "failed"
    eur = (await balance(node, http, user))["EUR"]
    assert (eur["available"], eur["held"]) == (2500, 0)


async def test_webhooks_are_verified_and_replays_credit_once(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """A bad signature or stale timestamp is 400 and credits nothing; a replay credits once."""
    user = await new_user(node, http)
    paid = await top_up(node, http, user, 1000)
    event: dict[str, Any] = {
        "id": f"evt_{secrets.token_hex(6)}",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": "cs_forged",
                "client_reference_id": paid["id"],
                "amount_total": 99999,
                "currency": "eur",
                "payment_status": "paid",
                "metadata": {"top_up_id": paid["id"], "user_id": user.id},
            }
        },
    }
    body = json.dumps(event).encode()
    url = f"{node.url}/api/v1/payments/webhooks/sandbox"
    bad = sign_payload("not-the-secret", body, int(time.time()))
    stale = sign_payload(SANDBOX_SECRET, body, int(time.time()) - 3600)
    for header in (bad, stale, ""):
        async with http.post(url, data=body, headers={"Stripe-Signature": header}) as response:
            assert response.status == 400
    assert (await balance(node, http, user))["EUR"]["available"] == 1000

    async with http.post(
        f"{node.url}/api/v1/wallet/top-ups",
        json={"amount": 400, "currency": "EUR"},
        headers={**user.headers, **key()},
    ) as response:
        pending = await response.json()
    obj = event["data"]["object"]
    assert isinstance(obj, dict)
    obj.update(client_reference_id=pending["id"], amount_total=400)
    obj["metadata"] = {"top_up_id": pending["id"], "user_id": user.id}
    genuine = json.dumps({**event, "id": f"evt_{secrets.token_hex(6)}"}).encode()
    for _ in range(2):  # the provider delivers it twice: it credits once
        header = sign_payload(SANDBOX_SECRET, genuine, int(time.time()))
        async with http.post(url, data=genuine, headers={"Stripe-Signature": header}) as response:
            assert response.status == 200, await response.text()
    assert (await balance(node, http, user))["EUR"]["available"] == 1400


async def test_transfers_move_money_once_per_idempotency_key(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """201 completed; the same key and body replays the same answer; another body is 409."""
    payer, payee = await new_user(node, http), await new_user(node, http)
    await top_up(node, http, payer, 5000)
    body = {"to_user_id": payee.id, "amount": 1250, "currency": "EUR", "note": "pizza"}
    headers = {**payer.headers, **key()}
    async with http.post(f"{node.url}/api/v1/transfers", json=body, headers=headers) as response:
        assert response.status == 201, await response.text()
        first = await response.json()
    assert first["status"] == "completed"
    async with http.post(f"{node.url}/api/v1/transfers", json=body, headers=headers) as response:
        assert response.status == 201
        assert await response.json() == first
    async with http.post(
        f"{node.url}/api/v1/transfers", json={**body, "amount": 1}, headers=headers
    ) as response:
        assert response.status == 409
        assert (await response.json())["code"] == "idempotency_conflict"
    assert (await balance(node, http, payer))["EUR"]["available"] == 3750
    assert (await balance(node, http, payee))["EUR"]["available"] == 1250
    async with http.post(
        f"{node.url}/api/v1/transfers",
        json={**body, "amount": 999_999},
        headers={**payer.headers, **key()},
    ) as response:
        assert response.status == 422
        assert (await response.json())["code"] == "insufficient_funds"


async def test_statement_lists_every_movement_newest_first(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """GET /transfers pages through the user's movements, newest first, each once."""
    payer, payee = await new_user(node, http), await new_user(node, http)
    await top_up(node, http, payer, 1000)
    for amount in (100, 200, 300):
        async with http.post(
            f"{node.url}/api/v1/transfers",
            json={"to_user_id": payee.id, "amount": amount, "currency": "EUR"},
            headers={**payer.headers, **key()},
        ) as response:
            assert response.status == 201
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        async with http.get(
            f"{node.url}/api/v1/transfers{query}", headers=payer.headers
        ) as response:
            assert response.status == 200
            page = await response.json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    amounts = [entry["amount"] for entry in seen]
    assert amounts == [-300, -200, -100, 1000]
    assert len({entry["transfer_id"] for entry in seen}) == 4


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 12.5}, "$.amount"),
        ({"amount": 0}, "$.amount"),
        ({"amount": -5}, "$.amount"),
        ({"currency": "XXX"}, "$.currency"),
        ({"currency": "eur"}, "$.currency"),
        ({"note": "n" * 201}, "$.note"),
        ({"to_user_id": "no-such-user"}, "$.to_user_id"),
    ],
)
async def test_bad_transfers_are_422_naming_the_field_and_move_nothing(
    node: RunningNode, http: aiohttp.ClientSession, change: dict[str, Any], field: str
) -> None:
    """Floats, non-positive amounts, unknown currencies, long notes, unknown users: 422."""
    payer, payee = await new_user(node, http), await new_user(node, http)
    await top_up(node, http, payer, 500)
    body = {"to_user_id": payee.id, "amount": 100, "currency": "EUR", **change}
    async with http.post(
        f"{node.url}/api/v1/transfers", json=body, headers={**payer.headers, **key()}
    ) as response:
        assert response.status == 422, await response.text()
        assert (await response.json())["errors"][0]["field"] == field
    assert (await balance(node, http, payer))["EUR"]["available"] == 500


async def test_self_transfer_and_missing_key_are_refused(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """Paying yourself is 422 on `$.to_user_id`; no Idempotency-Key is a 400."""
    payer = await new_user(node, http)
    body = {"to_user_id": payer.id, "amount": 100, "currency": "EUR"}
    async with http.post(
        f"{node.url}/api/v1/transfers", json=body, headers={**payer.headers, **key()}
    ) as response:
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "$.to_user_id"
    other = await new_user(node, http)
    async with http.post(
        f"{node.url}/api/v1/transfers",
        json={**body, "to_user_id": other.id},
        headers=payer.headers,
    ) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "idempotency_key_required"
    await asyncio.sleep(0)


async def test_logs_show_only_a_prefix_of_checkout_ids(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """A checkout id opens a page that pays: the node's logs (payments' own and the access
    log of the checkout page) show its first characters, never the whole id."""
    user = await new_user(node, http)
    async with http.post(
        f"{node.url}/api/v1/wallet/top-ups",
        json={"amount": 900, "currency": "EUR"},
        headers={**user.headers, **key()},
    ) as response:
        assert response.status == 201, await response.text()
        checkout = (await response.json())["checkout_url"].split("/sandbox/checkout/")[1]
    async with http.get(f"{node.url}/sandbox/checkout/{checkout}") as response:
        assert response.status == 200
    async with http.post(
        f"{node.url}/sandbox/checkout/{checkout}/pay", allow_redirects=False
    ) as response:
        assert response.status == 303
    shown = f"{checkout[:15]}…"
    lines: list[dict[str, Any]] = []
    for _ in range(100):
        lines = [
            json.loads(line)
            for line in node.output().splitlines()
            if line.startswith("{") and checkout[:15] in line
        ]
        paths = {line.get("path") for line in lines if line.get("event") == "http_request"}
        if f"/sandbox/checkout/{shown}/pay" in paths:
            break
        await asyncio.sleep(0.05)
    created = [line for line in lines if line.get("event") == "sandbox_checkout_created"]
    assert [line["checkout"] for line in created] == [shown]
    assert {line.get("path") for line in lines if line.get("event") == "http_request"} == {
        f"/sandbox/checkout/{shown}",
        f"/sandbox/checkout/{shown}/pay",
    }
    assert checkout not in node.output()
