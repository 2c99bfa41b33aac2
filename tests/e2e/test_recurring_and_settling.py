"""Issue 17 items 5 and 6 over HTTP against a real node: recurring expenses that end, the
list of active ones and stopping one; the simplify switch; settling everything with one
person across groups in cash or in one wallet payment; and the same in the web app, as a
browser without JavaScript uses it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_pages_auth import PASSWORD, Page, submit, visit
from tests.support.api import Api, User, eventually
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SANDBOX_SECRET = "e2e-sandbox-secret-0123456789abcdef"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(
        tmp_path_factory.mktemp("recur-node"),
        env={
            "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
            "SPLITGO_JWT_KEYS": "recur-k1:recurring-and-settling-e2e-signing-secret-0123",
        },
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


async def new_group(api: Api, owner: User, *members: User) -> str:
    group = await api.ok(
        "POST", "/api/v1/groups", owner, {"name": "Flat", "currency": "EUR"}, status=201
    )
    for member in members:
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", owner, {"user_id": member.id}, 201
        )
    return str(group["id"])


async def spend(
    api: Api, group: str, payer: User, amount: int, sharers: list[User], **more: Any
) -> dict[str, Any]:
    body = {
        "description": more.pop("description", "Dinner"),
        "amount": amount,
        "currency": "EUR",
        "paid_by": payer.id,
        "split": {"mode": "equal", "shares": [{"user_id": u.id} for u in sharers]},
        **more,
    }
    created: dict[str, Any] = await api.ok(
        "POST", f"/api/v1/groups/{group}/expenses", payer, body, status=201
    )
    return created


def plan_of(view: dict[str, Any]) -> set[tuple[str, str, int]]:
    return {(t["from_user_id"], t["to_user_id"], t["amount"]) for t in view["transfers"]}


async def eur_wallet(api: Api, user: User) -> int:
    view = await api.ok("GET", "/api/v1/wallet", user)
    return sum(b["available"] for b in view["balances"] if b["currency"] == "EUR")


# ── recurring ──────────────────────────────────────────────────────────────────────────


async def test_recurring_list_end_and_stop(api: Api) -> None:
    """A weekly expense is listed with its next date; an end of 3 times leaves 2 copies to
    come, `until` counts the dates up to it, and stopping it takes it off the list."""
    ana, bo = await api.register(), await api.register()
    group = await new_group(api, ana, bo)
    today = date.today()
    rent = await spend(api, group, ana, 10000, [ana, bo], description="Rent", recurrence="weekly")
    listed = (await api.ok("GET", f"/api/v1/groups/{group}/recurring", bo))["items"]
    assert [(r["expense_id"], r["next_date"], r["remaining"]) for r in listed] == [
        (rent["id"], (today + timedelta(days=7)).isoformat(), None)
    ]
    end = f"/api/v1/groups/{group}/recurring/{rent['id']}/end"
    three = await api.ok("PUT", end, ana, {"times": 3})
    assert (three["times"], three["remaining"], three["copies"]) == (3, 2, 0)
    until = (today + timedelta(days=20)).isoformat()
    dated = await api.ok("PUT", end, ana, {"until": until})
    assert (dated["until"], dated["times"], dated["remaining"]) == (until, None, 2)
    once = await api.ok("PUT", end, ana, {"times": 1})
    assert (once["next_date"], once["remaining"]) == (None, 0)
    assert (await api.ok("GET", f"/api/v1/groups/{group}/recurring", ana))["items"] == []
    again = await api.ok("PUT", end, ana, {})
    assert again["next_date"] == (today + timedelta(days=7)).isoformat()
    stopped = await api.ok("POST", f"/api/v1/groups/{group}/recurring/{rent['id']}/stop", bo)
    assert (stopped["recurrence"], stopped["next_date"]) == (None, None)
    assert (await api.ok("GET", f"/api/v1/groups/{group}/recurring", ana))["items"] == []
    shown = await api.ok("GET", f"/api/v1/groups/{group}/expenses/{rent['id']}", ana)
    assert shown["recurrence"] is None
    feed = (await api.ok("GET", f"/api/v1/groups/{group}/activity", ana))["items"]
    assert feed[0]["kind"] == "recurring_stopped"


async def test_a_past_series_makes_its_copies_and_each_shows_in_the_activity(api: Api) -> None:
    """A weekly expense dated three weeks ago makes its three copies at once, each one an
    expense and an activity line; stopping it keeps them."""
    ana, bo = await api.register(), await api.register()
    group = await new_group(api, ana, bo)
    start = date.today() - timedelta(days=21)
    gym = await spend(
        api,
        group,
        ana,
        3000,
        [ana, bo],
        description="Gym",
        recurrence="weekly",
        date=start.isoformat(),
    )

    async def items() -> list[dict[str, Any]]:
        return list((await api.ok("GET", f"/api/v1/groups/{group}/expenses", bo))["items"])

    made = await eventually(items, lambda found: len(found) == 4, what="three copies")
    assert {e["id"] for e in made} == {gym["id"]} | {
        f"{gym['id']}@{(start + timedelta(days=7 * n)).isoformat()}" for n in (1, 2, 3)
    }
    feed = (await api.ok("GET", f"/api/v1/groups/{group}/activity", bo))["items"]
    copied = [i for i in feed if i["kind"] == "expense_added" and "@" in (i["expense_id"] or "")]
    assert len(copied) == 3
    [listed] = (await api.ok("GET", f"/api/v1/groups/{group}/recurring", ana))["items"]
    assert listed["copies"] == 3
    await api.ok("POST", f"/api/v1/groups/{group}/recurring/{gym['id']}/stop", ana)
    assert len(await items()) == 4


async def test_bad_ends_are_refused_and_change_nothing(api: Api) -> None:
    """Both until and times, an until before the expense, a zero count, an expense that does
    not repeat and a stranger: each a clear 4xx; the series stays as it was."""
    ana, bo = await api.register(), await api.register()
    stranger = await api.register()
    group = await new_group(api, ana, bo)
    rent = await spend(api, group, ana, 1000, [ana, bo], recurrence="monthly")
    once = await spend(api, group, ana, 1000, [ana, bo])
    end = f"/api/v1/groups/{group}/recurring/{rent['id']}/end"
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    await api.problem(
        "PUT",
        end,
        ana,
        {"until": yesterday, "times": 2},
        status=422,
        code="validation_error",
        field="$.times",
    )
    await api.problem(
        "PUT", end, ana, {"until": yesterday}, status=422, code="invalid_expense", field="$.until"
    )
    await api.problem("PUT", end, ana, {"times": 0}, status=422, code="validation_error")
    await api.problem(
        "PUT",
        f"/api/v1/groups/{group}/recurring/{once['id']}/end",
        ana,
        {"times": 2},
        status=422,
        code="invalid_expense",
        field="$.recurrence",
    )
    await api.problem("PUT", end, stranger, {"times": 2}, status=404, code="group_not_found")
    [listed] = (await api.ok("GET", f"/api/v1/groups/{group}/recurring", ana))["items"]
    assert (listed["until"], listed["times"], listed["remaining"]) == (None, None, None)


# ── the simplify switch ────────────────────────────────────────────────────────────────


async def test_the_simplify_switch_chooses_the_plan(api: Api) -> None:
    """Ana paid for Bo and Bo for Cy: simplified, Cy pays Ana; switched off, Bo pays Ana and
    Cy pays Bo; the switch is kept, shown in the activity, and can go back."""
    ana, bo, cy = await api.register(), await api.register(), await api.register()
    group = await new_group(api, ana, bo, cy)
    await spend(api, group, ana, 1000, [bo])
    await spend(api, group, bo, 1000, [cy])
    plan = f"/api/v1/groups/{group}/settle-plan"
    settings = f"/api/v1/groups/{group}/settings"
    assert (await api.ok("GET", settings, bo))["simplify"] is True
    assert plan_of(await api.ok("GET", plan, bo)) == {(cy.id, ana.id, 1000)}
    assert (await api.ok("PATCH", settings, cy, {"simplify": False}))["simplify"] is False
    assert (await api.ok("GET", settings, ana))["simplify"] is False
    assert plan_of(await api.ok("GET", plan, bo)) == {(bo.id, ana.id, 1000), (cy.id, bo.id, 1000)}
    feed = (await api.ok("GET", f"/api/v1/groups/{group}/activity", ana))["items"]
    assert feed[0]["kind"] == "plan_switched"
    cash = {"to_user_id": bo.id, "amount": 1000, "currency": "EUR", "method": "cash"}
    await api.ok("POST", f"/api/v1/groups/{group}/settlements", cy, cash, status=201)
    assert plan_of(await api.ok("GET", plan, bo)) == {(bo.id, ana.id, 1000)}
    await api.ok("PATCH", settings, ana, {"simplify": True})
    assert plan_of(await api.ok("GET", plan, bo)) == {(bo.id, ana.id, 1000)}
    await api.problem(
        "PATCH", settings, ana, {"simplify": "no"}, status=422, code="validation_error"
    )


# ── everything with one person ─────────────────────────────────────────────────────────


async def test_settle_all_with_one_person_in_cash(api: Api) -> None:
    """Ana owes Bo in two groups: one cash request settles both, a retry with the same key
    records nothing more, and then nothing is owed."""
    ana, bo = await api.register(), await api.register()
    flat, trip = await new_group(api, ana, bo), await new_group(api, bo, ana)
    await spend(api, flat, bo, 3000, [ana, bo])
    await spend(api, trip, bo, 1000, [ana])
    key = {"Idempotency-Key": secrets.token_hex(8)}
    path = f"/api/v1/people/{bo.id}/settle"
    reply = await api.call("POST", path, ana, {"method": "cash"}, key)
    assert reply.status == 201, reply.body
    done = {(s["group_id"], s["amount"], s["status"]) for s in reply.body["settlements"]}
    assert done == {(flat, 1500, "completed"), (trip, 1000, "completed")}
    again = await api.call("POST", path, ana, {"method": "cash"}, key)
    assert again.status == 201
    assert {s["id"] for s in again.body["settlements"]} == {
        s["id"] for s in reply.body["settlements"]
    }
    for group in (flat, trip):
        assert (await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", bo))["transfers"] == []
    await api.problem("POST", path, ana, {"method": "cash"}, status=422, code="nothing_owed")
    await api.problem("POST", path, ana, {"method": "card"}, status=422, code="validation_error")
    no_key = await api.call("POST", path, ana, {"method": "cash"})
    assert (no_key.status, no_key.body["code"]) == (400, "idempotency_key_required")


async def test_settle_all_with_one_person_in_one_wallet_payment(api: Api) -> None:
    """Ana owes Bo in two groups: one wallet transfer pays the total, both settlements
    reference it, the wallets move once even when the request is retried."""
    ana, bo = await api.register(), await api.register()
    flat, trip = await new_group(api, ana, bo), await new_group(api, bo, ana)
    await spend(api, flat, bo, 3000, [ana, bo])
    await spend(api, trip, bo, 1000, [ana])
    path = f"/api/v1/people/{bo.id}/settle"
    poor = await api.problem(
        "POST", path, ana, {"method": "wallet"}, status=422, code="insufficient_funds"
    )
    assert poor.body["code"] == "insufficient_funds"
    for group in (flat, trip):
        plan = await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", bo)
        assert plan["transfers"], "a refused payment settles nothing"
    created = await api.top_up(ana, 5000)
    await eventually(
        lambda: api.ok("GET", f"/api/v1/wallet/top-ups/{created['id']}", ana),
        lambda top: top["status"] == "succeeded",
        what="the top-up",
    )
    key = {"Idempotency-Key": secrets.token_hex(8)}
    reply = await api.call("POST", path, ana, {"method": "wallet"}, key)
    assert reply.status == 201, reply.body
    [transfer] = reply.body["transfers"]
    assert (transfer["amount"], transfer["currency"]) == (2500, "EUR")
    settled = reply.body["settlements"]
    assert {(s["group_id"], s["amount"]) for s in settled} == {(flat, 1500), (trip, 1000)}
    assert {(s["method"], s["status"], s["transfer_id"]) for s in settled} == {
        ("wallet", "completed", transfer["id"])
    }
    assert (await eur_wallet(api, ana), await eur_wallet(api, bo)) == (2500, 2500)
    again = await api.call("POST", path, ana, {"method": "wallet"}, key)
    assert again.status == 201, again.body
    assert (await eur_wallet(api, ana), await eur_wallet(api, bo)) == (2500, 2500)
    for group in (flat, trip):
        assert (await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", ana))["transfers"] == []


# ── the web app ────────────────────────────────────────────────────────────────────────


@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without JavaScript: keeps cookies (also of 127.0.0.1), asks for HTML."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as session:
        yield session


async def signed_in(node: RunningNode, browser: aiohttp.ClientSession, user: User) -> None:
    form = await visit(browser, f"{node.url}/sign-in")
    home = await submit(browser, form, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert home.status == 200, home.html


def text(page: Page, element_id: str) -> str:
    return " ".join(page.ids[element_id].split())


async def test_the_recurring_tab_lists_and_stops_a_series(
    node: RunningNode, api: Api, browser: aiohttp.ClientSession
) -> None:
    """The Recurring tab lists the rent with its next date and end; its Stop button stops
    it, says so, and the tab then says nothing repeats."""
    ana, bo = await api.register(name="Ana"), await api.register(name="Bo")
    group = await new_group(api, ana, bo)
    rent = await spend(api, group, ana, 50000, [ana, bo], description="Rent", recurrence="monthly")
    await api.ok("PUT", f"/api/v1/groups/{group}/recurring/{rent['id']}/end", ana, {"times": 12})
    await signed_in(node, browser, bo)
    tab = await visit(browser, f"{node.url}/groups/{group}/recurring")
    assert tab.status == 200, tab.html
    listed = text(tab, "recurring")
    assert "Rent" in listed
    assert "12 times · 11 to come" in listed
    action = f"/groups/{group}/recurring/{rent['id']}/stop"
    stopped = await submit(browser, tab, action, {})
    assert stopped.status == 200, stopped.html
    assert "Stopped." in stopped.html
    assert "Nothing repeats" in text(stopped, "recurring")


async def test_the_members_tab_switches_the_plan(
    node: RunningNode, api: Api, browser: aiohttp.ClientSession
) -> None:
    """The Members tab says the plan is simplified; its button switches to who owes whom
    directly (and the JSON settings agree), and back."""
    ana, bo = await api.register(name="Ana"), await api.register(name="Bo")
    group = await new_group(api, ana, bo)
    await signed_in(node, browser, ana)
    members = await visit(browser, f"{node.url}/groups/{group}/members")
    assert "the fewest transfers" in text(members, "simplify")
    switched = await submit(browser, members, f"/groups/{group}/simplify", {})
    assert switched.status == 200, switched.html
    assert "who owes whom directly" in text(switched, "simplify")
    assert (await api.ok("GET", f"/api/v1/groups/{group}/settings", bo))["simplify"] is False
    back = await submit(browser, switched, f"/groups/{group}/simplify", {})
    assert "the fewest transfers" in text(back, "simplify")


async def test_home_settles_all_with_one_person(
    node: RunningNode, api: Api, browser: aiohttp.ClientSession
) -> None:
    """Home's People row offers "Settle all with Bo"; its page lists both groups, and the
    cash form settles them, once however often it is sent."""
    ana, bo = await api.register(name="Ana"), await api.register(name="Bo")
    flat, trip = await new_group(api, ana, bo), await new_group(api, bo, ana)
    await spend(api, flat, bo, 3000, [ana, bo])
    await spend(api, trip, bo, 1000, [ana])
    await signed_in(node, browser, ana)
    home = await visit(browser, f"{node.url}/")
    assert f'href="/people/{bo.id}/settle"' in home.html
    assert "Settle all with Bo" in text(home, "people")
    page = await visit(browser, f"{node.url}/people/{bo.id}/settle")
    assert page.status == 200, page.html
    assert text(page, "owed").endswith("Flat you owe €15.00 Flat you owe €10.00")
    action = f"/people/{bo.id}/settle"
    missing = await submit(browser, page, action, {"method": "card"})
    assert missing.status == 422
    assert "Choose how you pay" in missing.html
    done = await submit(browser, page, action, {"method": "cash"})
    assert done.status == 200, done.html
    assert "Settled with them in every group." in done.html
    again = await submit(browser, page, action, {"method": "cash"})
    assert again.status == 200, again.html
    for group in (flat, trip):
        assert (await api.ok("GET", f"/api/v1/groups/{group}/settle-plan", bo))["transfers"] == []
    feed = (await api.ok("GET", f"/api/v1/groups/{flat}/activity", bo))["items"]
    assert sum(1 for item in feed if item["kind"] == "settlement_recorded") == 1
