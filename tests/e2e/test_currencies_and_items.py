"""Issue 17, items 1 and 2 over HTTP against a real node reading a fake ECB: expenses in
another currency than the group's (the day's rate looked up, a rate given, or the group
amount), balances and the settle plan converted with `?convert=true`, settling in either
currency, itemized bills with tax and tip, and bad input that changes nothing."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.support.api import Api, User
from tests.support.fake_rates import FakeRates
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

DAY = "2024-05-10"
ECB_DAY = {"USD": "1.0772", "GBP": "0.8612", "JPY": "167.50"}
# EUR per 1 USD on DAY, as the rates actor crosses it: 1 / 1.0772 to 10 digits
EUR_PER_USD = "0.9283327144"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ecb() -> AsyncIterator[FakeRates]:
    async with FakeRates() as fake:
        fake.set_day(DAY, ECB_DAY)
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(
    tmp_path_factory: pytest.TempPathFactory, ecb: FakeRates
) -> AsyncIterator[RunningNode]:
    running = await start_node(
        tmp_path_factory.mktemp("money-node"), env={"SPLITGO_RATES_URL": ecb.url}
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


async def people(api: Api, count: int) -> list[User]:
    return [await api.register(f"m{secrets.token_hex(5)}@example.com") for _ in range(count)]


async def new_group(api: Api, owner: User, *members: User, currency: str = "EUR") -> str:
    group = await api.ok(
        "POST", "/api/v1/groups", owner, {"name": "Trip", "currency": currency}, status=201
    )
    for member in members:
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": member.id}, 201
        )
    return str(group["id"])


def body(amount: int | None, payer: User, *among: User, **more: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "description": more.pop("description", "Dinner"),
        "currency": more.pop("currency", "USD"),
        "paid_by": payer.id,
        **more,
    }
    if amount is not None:
        made["amount"] = amount
    if among:
        made["split"] = {"mode": "equal", "shares": [{"user_id": u.id} for u in among]}
    return made


async def add(api: Api, group: str, user: User, sent: dict[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = await api.ok(
        "POST", f"/api/v1/groups/{group}/expenses", user, sent, status=201
    )
    return made


async def nets(api: Api, group: str, user: User, *, convert: bool) -> dict[tuple[str, str], int]:
    query = "?convert=true" if convert else ""
    view = await api.ok("GET", f"/api/v1/groups/{group}/balances{query}", user)
    assert view["converted"] is convert
    return {(line["user_id"], line["currency"]): line["net"] for line in view["balances"]}


async def state(api: Api, group: str, user: User) -> tuple[Any, ...]:
    """What a refusal must leave as it was: the expenses and both views of the balances."""
    listed = await api.ok("GET", f"/api/v1/groups/{group}/expenses", user)
    return (
        listed["items"],
        await nets(api, group, user, convert=False),
        await nets(api, group, user, convert=True),
    )


async def test_a_usd_expense_gets_the_rate_of_its_day(api: Api) -> None:
    """No rate given: the node looks the expense's day up at the (fake) ECB and converts
    100.00 USD into 92.83 EUR, each share converted, the source and day shown."""
    amy, bob = await people(api, 2)
    group = await new_group(api, amy, bob)
    made = await add(api, group, amy, body(10_000, amy, amy, bob, date=DAY))
    assert (made["rate"], made["rate_source"], made["rate_day"]) == (EUR_PER_USD, "ecb", DAY)
    assert made["group_amount"] == 9283
    assert [s["amount"] for s in made["group_shares"]] == [4642, 4641]
    assert await nets(api, group, amy, convert=False) == {
        (amy.id, "USD"): 5000,
        (bob.id, "USD"): -5000,
        (amy.id, "EUR"): 0,
        (bob.id, "EUR"): 0,
    }
    assert await nets(api, group, bob, convert=True) == {
        (amy.id, "EUR"): 4641,
        (bob.id, "EUR"): -4641,
    }


async def test_a_given_rate_or_group_amount_is_kept(api: Api) -> None:
    """A rate given is used as given; the amount in the group's currency derives the rate
    (card fees included)."""
    amy, bob = await people(api, 2)
    group = await new_group(api, amy, bob)
    given = await add(api, group, amy, body(2000, amy, amy, bob, rate="0.95"))
    assert (given["rate"], given["rate_source"], given["group_amount"]) == ("0.95", "given", 1900)
    derived = await add(
        api, group, bob, body(5000, bob, amy, bob, currency="GBP", group_amount=5913)
    )
    assert (derived["rate"], derived["rate_source"]) == ("1.1826", "derived")
    assert sum(s["amount"] for s in derived["group_shares"]) == 5913


@pytest.mark.parametrize(
    ("more", "status", "code", "field"),
    [
        ({"rate": "0"}, 422, "invalid_rate", "$.rate"),
        ({"rate": "-1.5"}, 422, "invalid_rate", "$.rate"),
        ({"rate": "one"}, 422, "invalid_rate", "$.rate"),
        ({"rate": "NaN"}, 422, "invalid_rate", "$.rate"),
        ({"rate": 1.1}, 422, "validation_error", "$.rate"),
        ({"rate": "1.1", "group_amount": 900}, 422, "validation_error", "$.group_amount"),
        ({"group_amount": 0}, 422, "validation_error", "$.group_amount"),
        ({"currency": "EUR", "rate": "1.1"}, 422, "invalid_expense", "$.rate"),
        ({"date": "1998-06-01"}, 422, "rate_unavailable", "$.rate"),
        ({"date": "2099-06-01"}, 422, "rate_unavailable", "$.rate"),
    ],
)
async def test_bad_currency_input_is_refused_and_changes_nothing(
    api: Api, more: dict[str, Any], status: int, code: str, field: str
) -> None:
    """A zero, negative or malformed rate, a rate and a group amount, a rate for the
    group's own currency, a day no rate exists for: each a 4xx naming the field, nothing
    stored."""
    amy, bob = await people(api, 2)
    group = await new_group(api, amy, bob)
    before = await state(api, group, amy)
    await api.problem(
        "POST",
        f"/api/v1/groups/{group}/expenses",
        amy,
        body(1000, amy, amy, bob, **more),
        status=status,
        code=code,
        field=field,
    )
    assert await state(api, group, amy) == before


async def test_converted_balances_and_plan_sum_to_zero_and_settle_either_way(api: Api) -> None:
    """EUR 90.00 by amy (three ways) and USD 60.00 at 0.9 by bob (54.00 EUR, three ways):
    converted, amy +42.00, bob +6.00, cy -48.00; the plan's transfers zero them; cy settles
    20.00 USD with bob (at today's rate, looked up) and the rest in EUR with amy, and both
    views follow."""
    amy, bob, cy = await people(api, 3)
    group = await new_group(api, amy, bob, cy)
    await add(api, group, amy, body(9000, amy, amy, bob, cy, currency="EUR"))
    await add(api, group, bob, body(6000, bob, amy, bob, cy, rate="0.9"))
    converted = await nets(api, group, cy, convert=True)
    assert converted == {(amy.id, "EUR"): 4200, (bob.id, "EUR"): 600, (cy.id, "EUR"): -4800}
    plain = await nets(api, group, cy, convert=False)
    assert {k: v for k, v in plain.items() if k[1] == "USD"} == {
        (amy.id, "USD"): -2000,
        (bob.id, "USD"): 4000,
        (cy.id, "USD"): -2000,
    }
    plan = await api.ok("GET", f"/api/v1/groups/{group}/settle-plan?convert=true", amy)
    assert plan["converted"] is True
    left = dict(converted)
    for transfer in plan["transfers"]:
        assert transfer["currency"] == "EUR"
        assert transfer["amount"] > 0
        left[(transfer["from_user_id"], "EUR")] += transfer["amount"]
        left[(transfer["to_user_id"], "EUR")] -= transfer["amount"]
    assert set(left.values()) == {0}
    settled = await api.ok(
        "POST",
        f"/api/v1/groups/{group}/settlements",
        cy,
        {"to_user_id": bob.id, "amount": 2000, "currency": "USD", "method": "cash"},
        status=201,
    )
    assert settled["rate_source"] in ("ecb", "cache", "fixed")
    moved = settled["group_amount"]
    assert moved > 0
    after = await nets(api, group, cy, convert=True)
    assert after[(cy.id, "EUR")] == -4800 + moved
    assert after[(bob.id, "EUR")] == 600 - moved
    plain = await nets(api, group, cy, convert=False)
    assert plain[(cy.id, "USD")] == 0
    assert plain[(bob.id, "USD")] == 2000
    await api.ok(
        "POST",
        f"/api/v1/groups/{group}/settlements",
        cy,
        {"to_user_id": amy.id, "amount": 4800 - moved, "currency": "EUR", "method": "cash"},
        status=201,
    )
    final = await nets(api, group, amy, convert=True)
    assert final[(cy.id, "EUR")] == 0
    assert sum(final.values()) == 0


async def test_an_itemized_bill_with_tax_and_tip_is_exact_to_the_cent(api: Api) -> None:
    """Wine 30.00 for amy and bob, pizza 20.00 for everyone, tax 5.00, tip 7.01: the
    shares are derived (exact to the cent, summing to 62.01), each item shows its part;
    a PATCH of the tip prices it again."""
    amy, bob, cy = await people(api, 3)
    group = await new_group(api, amy, bob, cy)
    sent = {
        "description": "Pizzeria",
        "currency": "EUR",
        "paid_by": cy.id,
        "items": [
            {
                "description": "Wine",
                "amount": 3000,
                "split": {"mode": "equal", "shares": [{"user_id": amy.id}, {"user_id": bob.id}]},
            },
            {"description": "Pizza", "amount": 2000},
        ],
        "tax": 500,
        "tip": 701,
    }
    made = await add(api, group, cy, sent)
    assert made["amount"] == 6201
    assert made["split_mode"] == "items"
    assert [(i["extra"], i["adjusted"]) for i in made["items"]] == [(721, 3721), (480, 2480)]
    shares = {s["user_id"]: s["amount"] for s in made["shares"]}
    assert shares == {amy.id: 1861 + 827, bob.id: 1860 + 827, cy.id: 826}
    patched = await api.ok("PATCH", f"/api/v1/groups/{group}/expenses/{made['id']}", cy, {"tip": 0})
    assert patched["amount"] == 5500
    assert patched["tip"] == 0
    assert sum(s["amount"] for s in patched["shares"]) == 5500
    balances = await nets(api, group, amy, convert=False)
    assert balances[(cy.id, "EUR")] == 5500 - next(
        s["amount"] for s in patched["shares"] if s["user_id"] == cy.id
    )


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"amount": 9999}, "invalid_expense", "$.amount"),
        ({"items": []}, "validation_error", "$.items"),
        (
            {"items": [{"description": "Wine", "amount": 0}]},
            "validation_error",
            "$.items[0].amount",
        ),
        (
            {
                "items": [
                    {"description": "Wine", "amount": 3000},
                    {
                        "description": "Cake",
                        "amount": 500,
                        "split": {"mode": "exact", "shares": [{"user_id": "ME", "amount": 1}]},
                    },
                ]
            },
            "invalid_split",
            "$.items[1].split.shares",
        ),
        ({"split": {"mode": "equal"}}, "validation_error", "$.split"),
        ({"tax": -1}, "validation_error", "$.tax"),
    ],
)
async def test_bad_items_are_refused_at_their_path_and_change_nothing(
    api: Api, change: dict[str, Any], code: str, field: str
) -> None:
    """Items that don't add up, none, a zero item, an item split that does not add up, a
    split beside items, a negative tax: 422 naming the path, nothing stored."""
    amy, bob = await people(api, 2)
    group = await new_group(api, amy, bob)
    sent: dict[str, Any] = {
        "description": "Bill",
        "currency": "EUR",
        "paid_by": amy.id,
        "items": [{"description": "Wine", "amount": 3000}],
        **change,
    }
    sent = json.loads(json.dumps(sent).replace('"ME"', json.dumps(amy.id)))
    before = await state(api, group, amy)
    await api.problem(
        "POST",
        f"/api/v1/groups/{group}/expenses",
        amy,
        sent,
        status=422,
        code=code,
        field=field,
    )
    assert await state(api, group, amy) == before


async def test_with_the_feed_down_and_nothing_held_the_fixed_table_answers(
    api: Api, ecb: FakeRates
) -> None:
    """The feed down and no day held near the expense's: the node falls back to its fixed
    table (source `fixed`, an approximate rate) rather than refusing."""
    amy, bob = await people(api, 2)
    group = await new_group(api, amy, bob)
    ecb.go_down(status=503)
    try:
        made = await add(api, group, amy, body(1000, amy, amy, bob, date="2021-03-03"))
    finally:
        ecb.come_up()
    assert made["rate_source"] == "fixed"
    assert made["group_amount"] > 0
