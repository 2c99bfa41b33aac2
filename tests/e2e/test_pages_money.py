"""The money pages over HTTP against a real node, as a browser without JavaScript uses
them: the wallet (balance, statement in words, top-up through the checkout and back,
sending money once however often the form is sent, a refusal at its field), a group's
balances and what makes them, and settling up through the settle page's form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_pages_auth import PASSWORD, Page, submit, visit
from tests.support.api import Api, User
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

GERMAN = {"Accept-Language": "de-DE"}


@dataclass
class World:
    node: RunningNode
    api: Api


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with fresh_database(schema=True) as database:
        env = {
            "SPLITGO_DATABASE_URL": database,
            "SPLITGO_JWT_KEYS": "money-k1:money-pages-e2e-signing-secret-0123456789",
            "SPLITGO_SANDBOX_SECRET": "money-pages-sandbox-secret-0123456789",
        }
        node = await start_node(tmp_path_factory.mktemp("money-node"), env=env)
        try:
            async with aiohttp.ClientSession() as http:
                yield World(node, Api(node.url, http))
        finally:
            await stop_node(node)


@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without JavaScript: keeps cookies (also of 127.0.0.1), asks for HTML."""
    jar = aiohttp.CookieJar(unsafe=True)
    headers = {"Accept": "text/html", **GERMAN}
    async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as session:
        yield session


async def signed_in(world: World, browser: aiohttp.ClientSession, user: User) -> None:
    """`user` signs in through the sign-in form."""
    form = await visit(browser, f"{world.node.url}/sign-in")
    home = await submit(browser, form, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert home.status == 200, home.html


async def group_of(world: World, owner: User, *others: User) -> str:
    """A EUR group of `owner` with `others` in it; its id."""
    group = await world.api.ok(
        "POST", "/api/v1/groups", owner, {"name": "Lisbon", "currency": "EUR"}, 201
    )
    for other in others:
        body = {"user_id": other.id}
        await world.api.ok("POST", f"/api/v1/groups/{group['id']}/members", owner, body, 201)
    return str(group["id"])


async def dinner(world: World, group_id: str, payer: User, amount: int, *sharing: User) -> None:
    """An expense `payer` paid, split equally among `sharing`."""
    body = {
        "description": "Dinner",
        "amount": amount,
        "currency": "EUR",
        "paid_by": payer.id,
        "split": {"mode": "equal", "shares": [{"user_id": u.id} for u in sharing]},
    }
    await world.api.ok("POST", f"/api/v1/groups/{group_id}/expenses", payer, body, 201)


async def available(world: World, user: User) -> int:
    wallet = await world.api.ok("GET", "/api/v1/wallet", user)
    return sum(b["available"] for b in wallet["balances"] if b["currency"] == "EUR")


def text(page: Page, element_id: str) -> str:
    """An element's text with its spaces (a non-breaking one too) read as one space."""
    return " ".join(page.ids[element_id].split())


async def test_the_wallet_shows_a_top_up_and_its_statement_line_in_words(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """After a top-up paid at the checkout, the wallet answers first with the available
    money in the reader's format and lists the top-up in words, with no ids shown."""
    ana = await world.api.register(name="Ana")
    await world.api.top_up(ana, 5000)
    await signed_in(world, browser, ana)
    wallet = await visit(browser, f"{world.node.url}/wallet")
    assert wallet.status == 200
    assert "50,00 €" in text(wallet, "wallet-balances")
    assert "available" in text(wallet, "wallet-balances")
    statement = text(wallet, "statement")
    assert "Wallet top-up" in statement
    assert "top-up" in statement
    assert "+50,00 €" in statement
    assert wallet.html.index('id="wallet-balances"') < wallet.html.index('id="statement"')


async def test_a_top_up_goes_to_the_checkout_and_comes_back_with_its_result(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The top-up form sends the browser to the sandbox checkout, told to come back to
    /wallet?top_up=<id>; pressing Pay there and following its link back shows the result
    and the credited balance."""
    bo = await world.api.register(name="Bo")
    await signed_in(world, browser, bo)
    wallet = await visit(browser, f"{world.node.url}/wallet")
    assert "Your wallet is empty" in wallet.html
    data = {**wallet.form("/wallet/top-ups")["fields"], "amount": "20,00", "currency": "EUR"}
    async with browser.post(
        f"{world.node.url}/wallet/top-ups", data=data, allow_redirects=False
    ) as response:
        assert response.status == 303, await response.text()
        checkout = response.headers["Location"]
    assert checkout.startswith("/sandbox/checkout/")
    back = parse_qs(urlsplit(checkout).query)["return_to"][0]
    assert back.startswith("/wallet?top_up=")
    pending = await visit(browser, world.node.url + back)
    assert "Pending" in text(pending, "top-up-status")
    async with browser.post(
        world.node.url + checkout.replace("?", "/pay?", 1), allow_redirects=False
    ) as response:
        assert response.status == 303
    paid = await visit(browser, world.node.url + checkout)
    assert f'href="{back}"' in paid.html.replace("&amp;", "&")  # the checkout links back
    result = await visit(browser, world.node.url + back)
    assert "Topped up 20,00 €" in text(result, "top-up-status")
    assert "20,00 €" in text(result, "wallet-balances")
    assert await available(world, bo) == 2000


async def test_money_is_sent_once_however_often_the_form_is_sent(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Sending money to a person picked by name moves it once when the same form is sent
    twice (one idempotency key), confirms it, and the statement says who it went to."""
    cy = await world.api.register(name="Cy")
    di = await world.api.register(name="Di")
    await group_of(world, cy, di)
    await world.api.top_up(cy, 3000)
    await signed_in(world, browser, cy)
    wallet = await visit(browser, f"{world.node.url}/wallet")
    assert f'<option value="{di.id}">Di</option>' in wallet.html
    values = {"to_user_id": di.id, "amount": "12,50", "currency": "EUR", "note": "Tickets"}
    first, second = await asyncio.gather(
        *(submit(browser, wallet, "/wallet/send", values) for _ in range(2))
    )
    assert (first.status, second.status) == (200, 200), first.html
    assert "Sent." in first.html + second.html
    assert await available(world, cy) == 1750
    assert await available(world, di) == 1250
    page = await visit(browser, f"{world.node.url}/wallet")
    statement = text(page, "statement")
    assert statement.count("Sent to Di") == 1
    assert "Tickets" in statement
    assert di.id not in statement


async def test_not_enough_money_is_said_at_the_amount(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Sending more than is available is the API's refusal in words at the amount input,
    tied to it, with what was typed kept; nothing moves."""
    ed = await world.api.register(name="Ed")
    fay = await world.api.register(name="Fay")
    await group_of(world, ed, fay)
    await world.api.top_up(ed, 1000)
    await signed_in(world, browser, ed)
    wallet = await visit(browser, f"{world.node.url}/wallet")
    values = {"to_user_id": fay.id, "amount": "999", "currency": "EUR"}
    refused = await submit(browser, wallet, "/wallet/send", values)
    assert refused.status == 422
    amount = next(i for i in refused.inputs if i.get("id") == "send-f-amount")
    assert amount["value"] == "999"
    assert amount["aria-invalid"] == "true"
    assert "send-f-amount-error" in amount["aria-describedby"].split()
    assert "Not enough money" in refused.ids["send-f-amount-error"]
    assert await available(world, ed) == 1000
    assert await available(world, fay) == 0


async def test_settling_by_cash_through_the_form_changes_the_balances(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """The balances say who owes whom in words; the settle plan says who pays whom and
    why; settling by cash through its form confirms with a flash and settles everyone."""
    gus = await world.api.register(name="Gus")
    hal = await world.api.register(name="Hal")
    group_id = await group_of(world, gus, hal)
    await dinner(world, group_id, gus, 9000, gus, hal)
    await signed_in(world, browser, hal)
    balances = await visit(browser, f"{world.node.url}/groups/{group_id}/balances")
    assert balances.status == 200, balances.html
    said = text(balances, "balances")
    assert "You owe 45,00 €" in said
    assert "Gus is owed +45,00 €" in said
    assert gus.id not in said
    plan = await visit(browser, f"{world.node.url}/groups/{group_id}/settle")
    assert "You pay Gus 45,00 €" in text(plan, "settle-plan")
    assert f"/groups/{group_id}/balances/{hal.id}" in plan.html  # the why's breakdowns
    form = plan.form(f"/groups/{group_id}/settle")
    assert form["fields"]["amount"] == "45,00"
    region = await visit(browser, f"{world.node.url}/groups/{group_id}/live/settle-plan")
    assert "You pay Gus" in " ".join(region.html.split())  # the plan's live fragment
    settled = await submit(browser, plan, f"/groups/{group_id}/settle", {"method": "cash"})
    assert settled.status == 200, settled.html
    assert "Recorded." in settled.html
    assert "Everyone is settled up" in text(settled, "settle-plan")
    after = await world.api.ok("GET", f"/api/v1/groups/{group_id}/balances", hal)
    assert all(line["net"] == 0 for line in after["balances"])
    balances = await visit(browser, f"{world.node.url}/groups/{group_id}/balances")
    assert "You owe" not in text(balances, "balances")


async def test_settling_from_an_empty_wallet_is_refused_at_the_amount(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """A wallet settlement without the money is the API's refusal in words at the amount
    input; the balances stay as they were."""
    ida = await world.api.register(name="Ida")
    jo = await world.api.register(name="Jo")
    group_id = await group_of(world, ida, jo)
    await dinner(world, group_id, ida, 4000, ida, jo)
    await signed_in(world, browser, jo)
    plan = await visit(browser, f"{world.node.url}/groups/{group_id}/settle")
    assert "0,00 €" in text(plan, "settle-form")  # what the wallet has, beside the choice
    values = {"method": "wallet"}
    refused = await submit(browser, plan, f"/groups/{group_id}/settle", values)
    assert refused.status == 422, refused.html
    assert "Not enough money" in refused.ids["f-amount-error"]
    assert refused.field("amount")["aria-invalid"] == "true"
    after = await world.api.ok("GET", f"/api/v1/groups/{group_id}/balances", jo)
    assert {line["user_id"]: line["net"] for line in after["balances"]}[jo.id] == -2000


async def test_the_breakdown_lists_what_makes_a_balance(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """A member's breakdown page lists the expenses behind their net with what they paid,
    their share and the effect, and the net in words; the balances tab links to it."""
    kai = await world.api.register(name="Kai")
    lu = await world.api.register(name="Lu")
    group_id = await group_of(world, kai, lu)
    await dinner(world, group_id, kai, 6000, kai, lu)
    await signed_in(world, browser, lu)
    balances = await visit(browser, f"{world.node.url}/groups/{group_id}/balances")
    path = f"/groups/{group_id}/balances/{kai.id}"
    assert f'href="{path}"' in balances.html
    page = await visit(browser, world.node.url + path)
    assert page.status == 200, page.html
    assert "Kai is owed +30,00 €" in text(page, "breakdown-nets")
    lines = text(page, "breakdown-lines")
    assert "Dinner" in lines
    assert "paid 60,00 €" in lines
    assert "share 30,00 €" in lines
    assert "+30,00 €" in lines
    assert kai.id not in page.ids["breakdown-lines"]


async def test_a_wallet_settlement_is_confirmed_and_named_in_the_statement(
    world: World, browser: aiohttp.ClientSession
) -> None:
    """Settling from the wallet through the form confirms with a flash; the settlement's
    status (on the settle page and as the fragment a script follows) says it is paid and
    asks for nothing more; the statement line names the payee and the group."""
    max_ = await world.api.register(name="Max")
    ned = await world.api.register(name="Ned")
    group_id = await group_of(world, max_, ned)
    await dinner(world, group_id, max_, 3000, max_, ned)
    await world.api.top_up(ned, 2000)
    await signed_in(world, browser, ned)
    plan = await visit(browser, f"{world.node.url}/groups/{group_id}/settle")
    assert plan.form(f"/groups/{group_id}/settle")["fields"]["amount"] == "15,00"
    settled = await submit(browser, plan, f"/groups/{group_id}/settle", {"method": "wallet"})
    assert settled.status == 200, settled.html
    assert "Settled." in settled.html
    assert await available(world, ned) == 500
    assert await available(world, max_) == 1500
    statement = await world.api.ok("GET", "/api/v1/transfers", ned)
    line = next(item for item in statement["items"] if item["kind"] == "settlement")
    settlement_id = line["about"]["id"]
    page = await visit(
        browser, f"{world.node.url}/groups/{group_id}/settle?settlement={settlement_id}"
    )
    assert "Paid Max 15,00 €" in text(page, "settlement-status")
    async with browser.get(
        f"{world.node.url}/groups/{group_id}/settlements/{settlement_id}/status"
    ) as response:
        fragment = await response.text()
    assert response.status == 200
    assert "data-poll" not in fragment
    assert 'data-refresh="settle-plan settle-form"' in fragment
    wallet = await visit(browser, f"{world.node.url}/wallet")
    words = text(wallet, "statement")
    assert "Settle-up paid to Max in Lisbon" in words
    assert "\u221215,00 €" in words
