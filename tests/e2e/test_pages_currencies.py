"""Issue 17 in the web app over HTTP against a real node reading a fake ECB, as a browser
without JavaScript uses it: an expense in another currency than the group's with the day's
rate looked up or a rate given (the detail page and the list saying the converted amount,
the rate and where it came from), a bad rate refused at its field; an itemized bill with
tax and tip whose shares the JSON API confirms; a weekly expense ending after 3 times; the
balances and the settle plan converted into the group's currency, and settling in a
foreign currency at the looked-up rate."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_pages_expenses import Page, Person
from tests.e2e.test_splits import verify
from tests.support.api import PASSWORD, Api, User
from tests.support.fake_rates import FakeRates
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

DAY = "2024-05-10"
# EUR per 1 USD on DAY, as the rates actor crosses the ECB's 1.0772 USD per EUR
EUR_PER_USD = "0.9283327144"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ecb() -> AsyncIterator[FakeRates]:
    async with FakeRates() as fake:
        fake.set_day(DAY, {"USD": "1.0772", "GBP": "0.8612"})
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(
    tmp_path_factory: pytest.TempPathFactory, ecb: FakeRates
) -> AsyncIterator[RunningNode]:
    env = {
        "SPLITGO_RATES_URL": ecb.url,
        "SPLITGO_JWT_KEYS": "cur-k1:currencies-pages-signing-secret-long-enough-0123",
    }
    running = await start_node(tmp_path_factory.mktemp("pages-currencies-node"), env=env)
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@dataclass
class World:
    """Ana (whose browser reads German: 12,50 €), Bo and Cy in a EUR group."""

    node: RunningNode
    api: Api
    ana: Person
    bo: User
    cy: User
    group: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(node: RunningNode) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as http:
        api = Api(node.url, http)
        users = []
        for name in ("Ana Silva", "Bo Berg", "Cy Chen"):
            user = await api.register(f"c{secrets.token_hex(5)}@example.com", name=name)
            await verify(api, node, user)
            users.append(user)
        ana, bo, cy = users
        group = await new_group(api, ana, bo, cy)
        headers = {"Accept": "text/html", "Accept-Language": "de-DE,de;q=0.9"}
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers
        ) as browser:
            person = Person(ana, browser, node.url)
            form = await person.get("/sign-in")
            signed = await person.send(form, "/sign-in", {"email": ana.email, "password": PASSWORD})
            assert signed.status == 303, signed.html
            yield World(node, api, person, bo, cy, group)


async def new_group(api: Api, owner: User, *others: User) -> str:
    group = await api.ok("POST", "/api/v1/groups", owner, {"name": "Trip", "currency": "EUR"}, 201)
    for other in others:
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": other.id}, 201
        )
    return str(group["id"])


async def expenses(world: World, group: str | None = None) -> list[dict[str, Any]]:
    path = f"/api/v1/groups/{group or world.group}/expenses"
    listed = await world.api.ok("GET", path, world.ana.user)
    found: list[dict[str, Any]] = listed["items"]
    return found


async def add(world: World, values: dict[str, str | None], group: str | None = None) -> Page:
    """The add form of the group, sent with `values` typed in (redirects not followed)."""
    path = f"/groups/{group or world.group}/expenses/new"
    form = await world.ana.get(path)
    assert form.status == 200, form.html
    return await world.ana.send(form, path, values)


def described_by(page: Page, name: str) -> list[str]:
    return page.inputs[name].get("aria-describedby", "").split()


async def test_a_foreign_expense_gets_the_days_rate_and_says_where_it_came_from(
    world: World,
) -> None:
    """100,00 USD with no rate typed: the day's ECB rate is looked up (92,83 € in the
    group's currency); the expense's page and the list say the converted amount, the
    rate and "ECB rate of 10 May 2024"."""
    sent = await add(
        world, {"description": "Taxi", "amount": "100,00", "currency": "USD", "date": DAY}
    )
    assert sent.status == 303, sent.html
    made = (await expenses(world))[0]
    assert (made["rate"], made["rate_source"], made["rate_day"]) == (EUR_PER_USD, "ecb", DAY)
    assert made["group_amount"] == 9283
    detail = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}")
    said = detail.texts["conversion"]
    assert "92,83\xa0€" in said
    assert "1 USD = 0,9283327144 EUR" in said
    assert "ECB rate of 10 May 2024" in said
    listing = await world.ana.get(f"/groups/{world.group}")
    row = listing.html[listing.html.index(f'data-expense-id="{made["id"]}"') :]
    row = row[: row.index("</li>")]
    assert "92,83\xa0€" in row
    assert "ECB rate of 10 May 2024" in row


async def test_a_rate_typed_is_used_and_a_bad_one_is_refused_at_its_field(world: World) -> None:
    """A rate typed as German writes it ("0,95") is the expense's own ("your rate"); a
    negative rate, and a day no rate exists for, are refused at the rate input (tied by
    aria-describedby), what was typed kept and nothing added."""
    sent = await add(
        world, {"description": "Museum", "amount": "20", "currency": "USD", "rate": "0,95"}
    )
    assert sent.status == 303, sent.html
    made = (await expenses(world))[0]
    assert (made["rate"], made["rate_source"], made["group_amount"]) == ("0.95", "given", 1900)
    detail = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}")
    assert "your rate" in detail.texts["conversion"]
    assert "19,00\xa0€" in detail.texts["conversion"]
    before = len(await expenses(world))
    refused = await add(
        world, {"description": "Boat", "amount": "20", "currency": "USD", "rate": "-1"}
    )
    assert refused.status == 422, refused.html
    assert refused.inputs["rate"]["value"] == "-1"
    assert refused.inputs["rate"]["aria-invalid"] == "true"
    assert "f-rate-error" in described_by(refused, "rate")
    assert refused.texts["f-rate-error"].strip()
    assert refused.inputs["description"]["value"] == "Boat"
    too_old = await add(
        world, {"description": "Boat", "amount": "20", "currency": "USD", "date": "1998-06-01"}
    )
    assert too_old.status == 422, too_old.html
    assert "f-rate-error" in described_by(too_old, "rate")
    assert len(await expenses(world)) == before


async def test_an_itemized_bill_with_tax_and_tip_through_the_form(world: World) -> None:
    """Wine 30,00 for Ana and Bo, pizza 20,00 for everyone (nobody ticked), tax 5,00 and
    tip 7,01: the shares the JSON API reports are the bill's, exact to the cent, and the
    expense's page lists each item with its part of tax and tip. An amount that is not
    the bill's total is said in money at the amount; a bad item amount at its row; more
    rows come with ?items=."""
    form = await world.ana.get(f"/groups/{world.group}/expenses/new")
    ana, bo, cy = world.ana.user.id, world.bo.id, world.cy.id
    bill: dict[str, str | None] = {
        "description": "Pizzeria",
        "split.mode": "items",
        "items.0.description": "Wine",
        "items.0.amount": "30,00",
        f"items.0.shared_by.{ana}": "yes",
        f"items.0.shared_by.{bo}": "yes",
        "items.3.description": "Pizza",  # rows between left blank are skipped
        "items.3.amount": "20,00",
        "tax": "5,00",
        "tip": "7,01",
    }
    mismatched = await world.ana.send(
        form, f"/groups/{world.group}/expenses/new", {**bill, "amount": "60,00"}
    )
    assert mismatched.status == 422, mismatched.html
    words = mismatched.texts["f-amount-error"]
    assert "62,01\xa0€" in words
    assert "60,00\xa0€" in words
    assert mismatched.inputs["items.3.amount"]["value"] == "20,00"
    bad_item = await world.ana.send(
        form, f"/groups/{world.group}/expenses/new", {**bill, "items.3.amount": "zwanzig"}
    )
    assert bad_item.status == 422, bad_item.html
    assert "f-items-3-amount-error" in described_by(bad_item, "items.3.amount")
    sent = await world.ana.send(form, f"/groups/{world.group}/expenses/new", bill)
    assert sent.status == 303, sent.html
    made = (await expenses(world))[0]
    assert (made["split_mode"], made["amount"], made["tax"], made["tip"]) == (
        "items",
        6201,
        500,
        701,
    )
    assert {s["user_id"]: s["amount"] for s in made["shares"]} == {
        ana: 1861 + 827,
        bo: 1860 + 827,
        cy: 826,
    }
    detail = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}")
    items = detail.texts["items"]
    assert "+ 7,21\xa0€ tax and tip" in items
    assert "37,21\xa0€" in items
    edit = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}/edit")
    assert edit.inputs["items.1.description"]["value"] == "Pizza"
    assert edit.inputs["tip"]["value"] == "7,01"
    longer = await world.ana.get(f"/groups/{world.group}/expenses/new?items=8")
    assert "items.7.description" in longer.inputs
    assert "items.8.description" not in longer.inputs


async def test_a_weekly_expense_ends_after_three_times(world: World) -> None:
    """Repeats weekly, ends after 3 times: the series has 3 dates in all (2 copies to
    come); its edit form shows that end, and "never" there takes it away; a count of 0
    is refused at its input."""
    refused = await add(
        world,
        {
            "description": "Cleaner",
            "amount": "40",
            "recurrence": "weekly",
            "ends": "times",
            "times": "0",
        },
    )
    assert refused.status == 422, refused.html
    assert "f-times-error" in described_by(refused, "times")
    sent = await add(
        world,
        {
            "description": "Cleaner",
            "amount": "40",
            "recurrence": "weekly",
            "ends": "times",
            "times": "3",
        },
    )
    assert sent.status == 303, sent.html
    made = (await expenses(world))[0]
    listed = await world.api.ok("GET", f"/api/v1/groups/{world.group}/recurring", world.bo)
    series = next(item for item in listed["items"] if item["expense_id"] == made["id"])
    assert (series["times"], series["remaining"]) == (3, 2)
    edit = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}/edit")
    assert ("ends", "times") in edit.forms[f"/groups/{world.group}/expenses/{made['id']}/edit"]
    assert edit.inputs["times"]["value"] == "3"
    action = f"/groups/{world.group}/expenses/{made['id']}/edit"
    unended = await world.ana.send(edit, action, {"ends": "never"})
    assert unended.status == 303, unended.html
    listed = await world.api.ok("GET", f"/api/v1/groups/{world.group}/recurring", world.bo)
    series = next(item for item in listed["items"] if item["expense_id"] == made["id"])
    assert (series["times"], series["until"]) == (None, None)


async def test_balances_and_the_plan_in_the_group_currency_and_settling_in_usd(
    world: World,
) -> None:
    """Bo paid 100,00 USD at 0,90 for Ana and him: per currency Ana owes $50.00, in EUR
    45,00 € (a link, no script); the converted plan says so, and Ana settles 10,00 USD in
    cash from the converted settle page at the day's rate, which both views follow."""
    group = await new_group(world.api, world.ana.user, world.bo)
    sent = {
        "description": "Hotel",
        "amount": 10_000,
        "currency": "USD",
        "rate": "0.9",
        "paid_by": world.bo.id,
        "split": {"mode": "equal"},
    }
    await world.api.ok("POST", f"/api/v1/groups/{group}/expenses", world.bo, sent, status=201)
    plain = await world.ana.get(f"/groups/{group}/balances")
    assert "50,00\xa0$" in plain.texts["balances"]
    assert f'href="/groups/{group}/balances?convert=true"' in plain.html
    converted = await world.ana.get(f"/groups/{group}/balances?convert=true")
    assert "45,00\xa0€" in converted.texts["balances"]
    assert "$" not in converted.texts["balances"]
    assert f'href="/groups/{group}/balances?convert=true" aria-current="page"' in converted.html
    settle = await world.ana.get(f"/groups/{group}/settle?convert=true")
    assert "45,00\xa0€" in settle.texts["settle-plan"]
    action = f"/groups/{group}/settle"
    assert ("convert", "true") in settle.forms[action]
    paid = await world.ana.send(
        settle, action, {"amount": "10,00", "currency": "USD", "method": "cash"}
    )
    assert paid.status == 303, paid.html
    assert paid.headers["Location"] == f"/groups/{group}/settle?convert=true"
    view = await world.api.ok("GET", f"/api/v1/groups/{group}/balances", world.ana.user)
    nets = {(line["user_id"], line["currency"]): line["net"] for line in view["balances"]}
    assert nets[(world.ana.user.id, "USD")] == -4000
    query = f"/api/v1/groups/{group}/balances?convert=true"
    after = await world.api.ok("GET", query, world.ana.user)
    converted_net = next(
        line["net"] for line in after["balances"] if line["user_id"] == world.ana.user.id
    )
    assert -4500 < converted_net < -4500 + 1000  # 10 USD at the day's rate, about 9 EUR
    again = await world.ana.get(f"/groups/{group}/balances?convert=true")
    assert again.texts["balances"].count("€") >= 1


async def test_editing_keeps_the_rate_and_undo_brings_back_rate_and_items(world: World) -> None:
    """Editing a USD expense's description through the form keeps its looked-up rate; a
    bill edited with a smaller tip is priced again; deleting either and undoing adds it
    back as it was: the typed rate kept, the items with their tax and tip."""
    sent = await add(
        world,
        {"description": "Ferry", "amount": "10,00", "currency": "USD", "date": DAY},
    )
    assert sent.status == 303, sent.html
    ferry = (await expenses(world))[0]
    path = f"/groups/{world.group}/expenses/{ferry['id']}/edit"
    form = await world.ana.get(path)
    assert form.inputs["rate"]["value"] == ""
    assert "ECB rate of 10 May 2024" in form.texts["conversion-hint"]
    edited = await world.ana.send(form, path, {"description": "Night ferry"})
    assert edited.status == 303, edited.html
    ferry = next(e for e in await expenses(world) if e["id"] == ferry["id"])
    assert (ferry["description"], ferry["rate_source"], ferry["group_amount"]) == (
        "Night ferry",
        "ecb",
        928,
    )

    bill: dict[str, str | None] = {
        "description": "Bar",
        "split.mode": "items",
        "items.0.description": "Beer",
        "items.0.amount": "12,00",
        f"items.0.shared_by.{world.bo.id}": "yes",
        "items.1.description": "Nuts",
        "items.1.amount": "3,00",
        "tip": "1,50",
        "currency": "USD",
        "rate": "0,9",
    }
    assert (await add(world, bill)).status == 303
    bar = (await expenses(world))[0]
    path = f"/groups/{world.group}/expenses/{bar['id']}/edit"
    form = await world.ana.get(path)
    assert form.inputs["items.0.description"]["value"] == "Beer"
    edited = await world.ana.send(form, path, {"tip": "0,30"})
    assert edited.status == 303, edited.html
    bar = next(e for e in await expenses(world) if e["id"] == bar["id"])
    assert (bar["amount"], bar["tip"], bar["rate"]) == (1530, 30, "0.9")
    assert sum(s["amount"] for s in bar["shares"]) == 1530

    for made in (ferry, bar):
        detail = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}")
        gone = await world.ana.send(
            detail, f"/groups/{world.group}/expenses/{made['id']}/delete", {}
        )
        assert gone.status == 303, gone.html
        listing = await world.ana.get(f"/groups/{world.group}")
        undo = await world.ana.send(listing, f"/groups/{world.group}/expenses/undo", {})
        assert undo.status == 303, undo.html
        back = (await expenses(world))[0]
        assert back["id"] != made["id"]
        kept = ("description", "amount", "currency", "rate", "group_amount", "shares", "tip")
        assert {key: back.get(key) for key in kept} == {key: made.get(key) for key in kept}
        assert back["split_mode"] == made["split_mode"]
