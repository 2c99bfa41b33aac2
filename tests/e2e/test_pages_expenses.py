"""The web app's expenses over HTTP against a real node, as a browser without JavaScript
uses them: every split mode (and several payers) through the expense form, checked
against the JSON API's shares; refusals at their inputs with what was typed kept; edit;
delete and undo; search and filters narrowing the list; an expense's page with its
comments; the CSV export."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_splits import verify
from tests.support.api import PASSWORD, Api, User
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    env = {"SPLITGO_JWT_KEYS": "exp-k1:expenses-pages-signing-secret-long-enough-0123456789"}
    running = await start_node(tmp_path_factory.mktemp("pages-expenses-node"), env=env)
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


@dataclass
class Page:
    """A page's HTML, its forms' inputs as a browser would send them, and its elements."""

    status: int
    html: str
    headers: Any
    forms: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> attributes
    texts: dict[str, str] = field(default_factory=dict)  # element id -> its text
    labels: set[str] = field(default_factory=set)  # the ids labels are for


class _Reader(HTMLParser):
    VOID = frozenset({"input", "img", "br", "meta", "link", "hr", "source", "col"})

    def __init__(self, page: Page) -> None:
        super().__init__()
        self.page = page
        self.form: str | None = None
        self.select: str | None = None
        self.first_option: str | None = None
        self.chosen = False
        self.textarea: str | None = None
        self.open: list[tuple[str, str | None]] = []

    def _send(self, name: str, value: str) -> None:
        if self.form is not None:
            self.page.forms[self.form].append((name, value))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "id" in found:
            self.page.texts.setdefault(found["id"], "")
        if tag not in self.VOID:
            self.open.append((tag, found.get("id")))
        name = found.get("name", "")
        if tag == "form" and found.get("method") == "post":
            self.form = found.get("action", "")
            self.page.forms[self.form] = []
        elif tag == "input" and name:
            self.page.inputs.setdefault(name, found)
            kind = found.get("type", "text")
            if kind not in ("checkbox", "radio") or "checked" in found:
                self._send(name, found.get("value", ""))
        elif tag == "select" and name:
            self.page.inputs.setdefault(name, found)
            self.select, self.first_option, self.chosen = name, None, False
        elif tag == "option" and self.select is not None:
            if self.first_option is None:
                self.first_option = found.get("value", "")
            if "selected" in found and not self.chosen:
                self.chosen = True
                self._send(self.select, found.get("value", ""))
        elif tag == "label" and "for" in found:
            self.page.labels.add(found["for"])
        elif tag == "textarea" and name:
            self.page.inputs.setdefault(name, found)
            self.textarea = name
            self.page.inputs[name]["text"] = ""

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.page.inputs[self.textarea]["text"] += data
        for _, element in self.open:
            if element is not None:
                self.page.texts[element] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select is not None:
            if not self.chosen and self.first_option is not None:
                self._send(self.select, self.first_option)
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self._send(self.textarea, self.page.inputs[self.textarea]["text"])
            self.textarea = None
        elif tag == "form":
            self.form = None
        while self.open and self.open[-1][0] != tag:
            self.open.pop()
        if self.open:
            self.open.pop()


async def page_of(response: aiohttp.ClientResponse) -> Page:
    page = Page(response.status, await response.text(), response.headers)
    _Reader(page).feed(page.html)
    return page


@dataclass
class Person:
    """An account, and a browser without JavaScript signed in as it."""

    user: User
    browser: aiohttp.ClientSession
    url: str

    async def get(self, path: str) -> Page:
        async with self.browser.get(f"{self.url}{path}") as response:
            return await page_of(response)

    async def send(self, page: Page, action: str, values: dict[str, str | None]) -> Page:
        """The form of `action` as the browser sends it, with `values` typed in (None
        unticks a box); the answer, redirects not followed."""
        sent = [(name, value) for name, value in page.forms[action] if name not in values]
        sent += [(name, value) for name, value in values.items() if value is not None]
        async with self.browser.post(
            f"{self.url}{action}", data=sent, allow_redirects=False
        ) as response:
            return await page_of(response)


@dataclass
class World:
    """Ana, Bo and Cy in one group; Ana's browser reads in German (12,50 €)."""

    node: RunningNode
    api: Api
    ana: Person
    bo: User
    cy: User
    group: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(node: RunningNode, api: Api) -> AsyncIterator[World]:
    users = []
    for name in ("Ana Silva", "Bo Berg", "Cy Chen"):
        user = await api.register(f"e{secrets.token_hex(5)}@example.com", name=name)
        await verify(api, node, user)
        users.append(user)
    ana, bo, cy = users
    group = await api.ok("POST", "/api/v1/groups", ana, {"name": "Lisbon", "currency": "EUR"}, 201)
    for member in (bo, cy):
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", ana, {"user_id": member.id}, 201
        )
    headers = {"Accept": "text/html", "Accept-Language": "de-DE,de;q=0.9"}
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers
    ) as browser:
        person = Person(ana, browser, node.url)
        form = await person.get("/sign-in")
        signed = await person.send(form, "/sign-in", {"email": ana.email, "password": PASSWORD})
        assert signed.status == 303, signed.html
        yield World(node, api, person, bo, cy, group["id"])


def rows_of(page: Page) -> dict[str, int]:
    """The form's row of each member: user id -> row number."""
    rows = {}
    for name, attrs in page.inputs.items():
        found = re.fullmatch(r"split\.shares\.(\d+)\.user_id", name)
        if found:
            rows[attrs["value"]] = int(found[1])
    return rows


async def newest(world: World) -> dict[str, Any]:
    listed = await world.api.ok("GET", f"/api/v1/groups/{world.group}/expenses", world.ana.user)
    expense: dict[str, Any] = listed["items"][0]
    return expense


def shares(expense: dict[str, Any]) -> dict[str, int]:
    return {line["user_id"]: line["amount"] for line in expense["shares"]}


async def add(world: World, values: dict[str, str | None]) -> Page:
    form = await world.ana.get(f"/groups/{world.group}/expenses/new")
    assert form.status == 200, form.html
    return await world.ana.send(form, f"/groups/{world.group}/expenses/new", values)


async def test_every_split_mode_through_the_form(world: World) -> None:
    """Each split mode (equal with one person unticked, exact, percent, shares with
    several payers, adjustment) makes the shares the JSON API then reports."""
    form = await world.ana.get(f"/groups/{world.group}/expenses/new")
    rows = rows_of(form)
    a, b, c = rows[world.ana.user.id], rows[world.bo.id], rows[world.cy.id]
    ana, bo, cy = world.ana.user.id, world.bo.id, world.cy.id
    assert form.inputs["currency"]["id"] == "f-currency"
    cases: list[tuple[dict[str, str | None], dict[str, int], dict[str, int]]] = [
        (
            {"description": "Bread", "amount": "10,01", f"split.shares.{b}.user_id": None},
            {ana: 501, cy: 500},
            {ana: 1001},
        ),
        (
            {
                "description": "Dinner",
                "amount": "90,00",
                "split.mode": "exact",
                f"split.shares.{a}.amount": "20",
                f"split.shares.{b}.amount": "30,00",
                f"split.shares.{c}.amount": "40.00",
            },
            {ana: 2000, bo: 3000, cy: 4000},
            {ana: 9000},
        ),
        (
            {
                "description": "Museum",
                "amount": "99,99",
                "split.mode": "percent",
                f"split.shares.{a}.percent": "50",
                f"split.shares.{b}.percent": "25",
                f"split.shares.{c}.percent": "25",
            },
            {ana: 4999, bo: 2500, cy: 2500},
            {ana: 9999},
        ),
        (
            {
                "description": "Boat",
                "amount": "60,00",
                "split.mode": "shares",
                f"split.shares.{a}.shares": "1",
                f"split.shares.{b}.shares": "2",
                f"split.shares.{c}.shares": "3",
                f"paid_by.{a}.amount": "35",
                f"paid_by.{b}.amount": "25,00",
            },
            {ana: 1000, bo: 2000, cy: 3000},
            {ana: 3500, bo: 2500},
        ),
        (
            {
                "description": "Taxi",
                "amount": "30",
                "split.mode": "adjustment",
                f"split.shares.{c}.amount": "6",
                f"split.shares.{a}.amount": "-1,50",
            },
            {ana: 700, bo: 850, cy: 1450},
            {ana: 3000},
        ),
    ]
    for values, expected, paid in cases:
        sent = await add(world, values)
        assert sent.status == 303, sent.html
        assert sent.headers["Location"] == f"/groups/{world.group}"
        made = await newest(world)
        assert made["description"] == values["description"]
        assert shares(made) == expected, values
        assert {line["user_id"]: line["amount"] for line in made["paid_by"]} == paid
    listing = await world.ana.get(f"/groups/{world.group}")
    assert "Expense added." in listing.html
    assert "Taxi" in listing.html
    assert "Ana Silva paid · you owe" not in listing.html  # Ana is "you" to herself
    assert "You paid · you lent" in listing.html
    assert "23,00\xa0€" in listing.html  # what Ana lent on the taxi, in her language


async def test_refusals_are_shown_at_their_inputs_with_what_was_typed(world: World) -> None:
    """Percentages short of 100 and exact shares off the amount are said in money at the
    shares, tied by aria-describedby, every typed value kept; nothing is added. Every
    input of the form has its label."""
    before = await newest(world)
    form = await world.ana.get(f"/groups/{world.group}/expenses/new")
    shown = [attrs for attrs in form.inputs.values() if attrs.get("type") != "hidden"]
    assert len(shown) > 10
    assert all(attrs["id"] in form.labels for attrs in shown)  # a label on every input
    rows = rows_of(form)
    a, b, c = rows[world.ana.user.id], rows[world.bo.id], rows[world.cy.id]
    exact = await world.ana.send(
        form,
        f"/groups/{world.group}/expenses/new",
        {
            "description": "Concert",
            "amount": "90,00",
            "split.mode": "exact",
            f"split.shares.{a}.amount": "20,00",
            f"split.shares.{b}.amount": "30,00",
            f"split.shares.{c}.amount": "35,00",
        },
    )
    assert exact.status == 422
    error = exact.texts["f-split-shares-error"]
    assert "Shares add up to 85,00\xa0€; the expense is 90,00\xa0€." in error
    typed = exact.inputs[f"split.shares.{c}.amount"]
    assert typed["value"] == "35,00"
    assert "f-split-shares-error" in typed["aria-describedby"].split()
    assert exact.inputs["description"]["value"] == "Concert"
    assert 'value="exact" selected' in exact.html
    percent = await world.ana.send(
        exact,
        f"/groups/{world.group}/expenses/new",
        {
            "split.mode": "percent",
            f"split.shares.{a}.percent": "50",
            f"split.shares.{b}.percent": "40",
            f"split.shares.{c}.percent": None,
        },
    )
    assert percent.status == 422
    assert "Percentages add up to 90 %" in percent.texts["f-split-shares-error"]
    assert percent.inputs[f"split.shares.{b}.percent"]["value"] == "40"
    amount = await world.ana.send(
        percent, f"/groups/{world.group}/expenses/new", {"amount": "12,5x"}
    )
    assert amount.status == 422
    assert amount.inputs["amount"]["aria-invalid"] == "true"
    assert "Enter an amount such as 12,50" in amount.texts["f-amount-error"]
    assert amount.inputs["amount"]["value"] == "12,5x"
    assert (await newest(world))["id"] == before["id"]


async def test_edit_an_expense(world: World) -> None:
    """The edit form comes filled in; what is changed in it is what the API then shows."""
    sent = await add(world, {"description": "Lunch", "amount": "12,00"})
    assert sent.status == 303
    made = await newest(world)
    edit = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}/edit")
    assert edit.status == 200
    assert edit.inputs["description"]["value"] == "Lunch"
    assert edit.inputs["amount"]["value"] == "12,00"
    saved = await world.ana.send(
        edit,
        f"/groups/{world.group}/expenses/{made['id']}/edit",
        {"description": "Long lunch", "amount": "15,00"},
    )
    assert saved.status == 303, saved.html
    assert saved.headers["Location"] == f"/groups/{world.group}/expenses/{made['id']}"
    edited = await world.api.ok(
        "GET", f"/api/v1/groups/{world.group}/expenses/{made['id']}", world.ana.user
    )
    assert (edited["description"], edited["amount"]) == ("Long lunch", 1500)
    assert sorted(shares(edited).values()) == [500, 500, 500]
    detail = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}")
    assert "Expense saved." in detail.html
    assert "Bo Berg" in detail.html
    assert "5,00\xa0€" in detail.html


async def test_delete_then_undo(world: World) -> None:
    """Deleting takes the expense out of the list (a second click changes nothing) and
    offers Undo once; Undo adds it again with the same shares (under a new id)."""
    sent = await add(world, {"description": "Ferry", "amount": "7,00"})
    assert sent.status == 303
    made = await newest(world)
    detail = await world.ana.get(f"/groups/{world.group}/expenses/{made['id']}")
    gone = await world.ana.send(detail, f"/groups/{world.group}/expenses/{made['id']}/delete", {})
    assert gone.status == 303
    twice = await world.ana.send(detail, f"/groups/{world.group}/expenses/{made['id']}/delete", {})
    assert twice.status == 303  # a second click finds it gone, and says so
    assert (await newest(world))["id"] != made["id"]
    listing = await world.ana.get(f"/groups/{world.group}")
    assert "“Ferry” deleted." in listing.html
    undo = await world.ana.send(listing, f"/groups/{world.group}/expenses/undo", {})
    assert undo.status == 303, undo.html
    back = await newest(world)
    assert back["id"] != made["id"]
    assert (back["description"], back["amount"], back["split_mode"]) == ("Ferry", 700, "equal")
    assert shares(back) == shares(made)
    again = await world.ana.get(f"/groups/{world.group}")
    assert "Expense restored." in again.html
    assert "deleted." not in again.html  # offered once


async def test_search_and_filters_narrow_the_list(world: World) -> None:
    """Words, a person and a month (query parameters) each narrow the list; no match
    says so; a group with no expenses says to add the first one."""
    bo = {"paid_by": world.bo.id}
    await add(world, {"description": "Night bus", "amount": "4,00", "date": "2026-02-10", **bo})
    await add(world, {"description": "Breakfast", "amount": "9,00", "date": "2026-03-03"})
    found = await world.ana.get(f"/groups/{world.group}?q=night+BUS")
    assert "Night bus" in found.html
    assert "Breakfast" not in found.html
    assert "Bo Berg paid · you owe" in found.html
    march = await world.ana.get(f"/groups/{world.group}?month=2026-03")
    assert "Breakfast" in march.html
    assert "Night bus" not in march.html
    paid_by_bo = await world.ana.get(f"/groups/{world.group}?person={world.bo.id}&q=b")
    assert "Night bus" in paid_by_bo.html
    assert "Breakfast" in paid_by_bo.html  # Bo has a share of it
    nothing = await world.ana.get(f"/groups/{world.group}?q=zeppelin")
    assert "No expenses match" in nothing.html
    fresh = await world.api.ok(
        "POST", "/api/v1/groups", world.ana.user, {"name": "Flat", "currency": "EUR"}, 201
    )
    empty = await world.ana.get(f"/groups/{fresh['id']}")
    assert empty.status == 200
    assert "No expenses yet — add the first one" in empty.html


async def test_a_large_groups_person_filter_is_a_name_field(world: World) -> None:
    """A group of more members than the Person list shows (50) filters by a typed name:
    part of a name or "you" narrows the list, a name nobody has says so."""
    ana = world.ana.user
    big = await world.api.ok(
        "POST", "/api/v1/groups", ana, {"name": "Choir", "currency": "EUR"}, 201
    )
    members = f"/api/v1/groups/{big['id']}/members"
    await world.api.ok("POST", members, ana, {"user_id": world.bo.id}, 201)
    for number in range(50):
        await world.api.ok("POST", members, ana, {"name": f"Singer {number:02d}"}, 201)
    page = f"/groups/{big['id']}"
    await world.ana.send(
        await world.ana.get(f"{page}/expenses/new"),
        f"{page}/expenses/new",
        {"description": "Sheet music", "amount": "30,00", "paid_by": world.bo.id},
    )
    listing = await world.ana.get(page)
    assert listing.status == 200, listing.html
    assert listing.inputs["who"]["type"] == "search"
    assert "person" not in listing.inputs
    assert "52 members: type part of a name." in listing.html
    by_bo = await world.ana.get(f"{page}?who=bo+BERG")
    assert "Sheet music" in by_bo.html
    by_me = await world.ana.get(f"{page}?who=you")
    assert "Sheet music" in by_me.html  # Ana has a share
    unknown = await world.ana.get(f"{page}?who=Zelda")
    assert "Sheet music" not in unknown.html
    assert "Nobody here is called “Zelda”" in unknown.html


async def test_comments_and_the_csv_export(world: World) -> None:
    """A comment posted on an expense's page is shown there; a blank one is refused at
    its field; the CSV link gives the group's export."""
    made = await newest(world)
    path = f"/groups/{world.group}/expenses/{made['id']}"
    detail = await world.ana.get(path)
    blank = await world.ana.send(detail, f"{path}/comments", {"text": "   "})
    assert blank.status == 422
    assert blank.inputs["text"]["aria-describedby"] == "f-text-error"
    posted = await world.ana.send(detail, f"{path}/comments", {"text": "Thanks, Bo!"})
    assert posted.status == 303
    shown = await world.ana.get(path)
    assert "Thanks, Bo!" in shown.html
    async with world.ana.browser.get(f"{world.node.url}/groups/{world.group}/export.csv") as reply:
        assert reply.status == 200
        assert reply.content_type == "text/csv"
        assert "attachment" in reply.headers["Content-Disposition"]
        assert made["description"] in await reply.text()


async def test_pages_follow_the_api_cursor(world: World) -> None:
    """A group with more expenses than a page shows the newest 50 and a link to the older
    ones (the API's cursor), which shows the rest and the way back."""
    made = await world.api.ok(
        "POST", "/api/v1/groups", world.ana.user, {"name": "Long trip", "currency": "EUR"}, 201
    )
    group = made["id"]
    for number in range(52):
        body = {
            "description": f"Coffee {number:02d}",
            "amount": 250,
            "currency": "EUR",
            "paid_by": world.ana.user.id,
            "split": {"mode": "equal", "shares": [{"user_id": world.ana.user.id}]},
        }
        await world.api.ok("POST", f"/api/v1/groups/{group}/expenses", world.ana.user, body, 201)
    first = await world.ana.get(f"/groups/{group}")
    assert first.html.count('class="row expense-row"') == 50
    assert "Coffee 51" in first.html
    assert "Coffee 01" not in first.html
    older = re.search(r'href="(/groups/[^"]+\?cursor=[^"]+)">Older expenses', first.html)
    assert older is not None
    rest = await world.ana.get(older[1].replace("&amp;", "&"))
    assert rest.html.count('class="row expense-row"') == 2
    assert "Coffee 00" in rest.html
    assert "Back to the newest" in rest.html
    assert "Older expenses" not in rest.html
