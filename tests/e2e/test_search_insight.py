"""Search and insight over HTTP against a real node (issue 17, item 4): the JSON routes
GET /api/v1/groups/{id}/search (each filter, paging by cursor, each refusal naming its
parameter) and GET /api/v1/groups/{id}/insight (totals by category and by month for the
group and for one member's shares, matching sums made by hand); and the web app's search
and Insight pages as a browser without JavaScript uses them."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_pages_expenses import Page, Person, page_of
from tests.e2e.test_splits import verify
from tests.support.api import PASSWORD, Api, User
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    env = {"SPLITGO_JWT_KEYS": "srch-k1:search-insight-signing-secret-long-enough-0123456789"}
    running = await start_node(tmp_path_factory.mktemp("search-insight-node"), env=env)
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


@dataclass
class World:
    """Ana, Bo and Cy in a EUR group with five expenses (`ids` by short name); Ana's
    browser reads in German (12,50 €)."""

    api: Api
    ana: Person
    bo: User
    cy: User
    group: str
    ids: dict[str, str]

    async def search(self, **query: Any) -> dict[str, Any]:
        found: dict[str, Any] = await self.api.ok(
            "GET", f"/api/v1/groups/{self.group}/search?{urlencode(query)}", self.ana.user
        )
        return found

    def names(self, page: dict[str, Any]) -> list[str]:
        """The short names of a page's expenses, in order."""
        by_id = {ident: name for name, ident in self.ids.items()}
        return [by_id[item["id"]] for item in page["items"]]


# (short name, description, amount, category, date, payer, split: equal among, or exact)
EXPENSES: list[tuple[str, str, int, str, str, str, Any]] = [
    ("lupo", "Dinner at Lupo", 9000, "food", "2026-01-15", "ana", ["ana", "bo", "cy"]),
    ("taxi", "Taxi to the airport", 2400, "transport", "2026-01-20", "bo", ["bo", "cy"]),
    ("shop", "Groceries 100% organic", 4550, "groceries", "2026-02-03", "cy", ["ana", "cy"]),
    ("beach", "Dinner on the beach", 6000, "food", "2026-03-10", "ana", {"ana": 1000, "bo": 5000}),
    ("museum", "Museum", 3000, "fun", "2026-03-11", "bo", ["ana", "bo", "cy"]),
]


async def add_expenses(api: Api, group: str, people: dict[str, User]) -> dict[str, str]:
    ids = {}
    for name, description, amount, category, day, payer, split in EXPENSES:
        if isinstance(split, dict):
            lines = [{"user_id": people[who].id, "amount": part} for who, part in split.items()]
            split_body = {"mode": "exact", "shares": lines}
        else:
            split_body = {"mode": "equal", "shares": [{"user_id": people[who].id} for who in split]}
        body = {
            "description": description,
            "amount": amount,
            "currency": "EUR",
            "paid_by": people[payer].id,
            "split": split_body,
            "date": day,
            "category": category,
        }
        made = await api.ok("POST", f"/api/v1/groups/{group}/expenses", people[payer], body, 201)
        ids[name] = made["id"]
    return ids


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(node: RunningNode, api: Api) -> AsyncIterator[World]:
    users = []
    for name in ("Ana Silva", "Bo Berg", "Cy Chen"):
        user = await api.register(f"s{secrets.token_hex(5)}@example.com", name=name)
        await verify(api, node, user)
        users.append(user)
    ana, bo, cy = users
    group = await api.ok("POST", "/api/v1/groups", ana, {"name": "Lisbon", "currency": "EUR"}, 201)
    for member in (bo, cy):
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", ana, {"user_id": member.id}, 201
        )
    ids = await add_expenses(api, group["id"], {"ana": ana, "bo": bo, "cy": cy})
    headers = {"Accept": "text/html", "Accept-Language": "de-DE,de;q=0.9"}
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers
    ) as browser:
        person = Person(ana, browser, node.url)
        form = await person.get("/sign-in")
        signed = await person.send(form, "/sign-in", {"email": ana.email, "password": PASSWORD})
        assert signed.status == 303, signed.html
        yield World(api, person, bo, cy, group["id"], ids)


# ── JSON: search ──────────────────────────────────────────────────────────────────────


async def test_search_by_each_filter(world: World) -> None:
    """Each filter alone, and several together, find exactly the expenses that match,
    newest date first; no filter finds them all."""
    assert world.names(await world.search()) == ["museum", "beach", "shop", "taxi", "lupo"]
    assert world.names(await world.search(text="dinner")) == ["beach", "lupo"]
    assert world.names(await world.search(text="  DINNER   on ")) == ["beach"]
    # the wildcards of a LIKE pattern are taken literally
    assert world.names(await world.search(text="100%")) == ["shop"]
    assert world.names(await world.search(text="%")) == ["shop"]
    assert world.names(await world.search(text="_")) == []
    assert world.names(await world.search(person=world.cy.id)) == [
        "museum",
        "shop",
        "taxi",
        "lupo",
    ]
    # a payer who shares nothing still counts: Bo paid the taxi and shares it
    assert world.names(await world.search(person=world.bo.id)) == [
        "museum",
        "beach",
        "taxi",
        "lupo",
    ]
    assert world.names(await world.search(category="food")) == ["beach", "lupo"]
    assert world.names(await world.search(category="Food")) == ["beach", "lupo"]
    assert world.names(await world.search(currency="EUR")) == [
        "museum",
        "beach",
        "shop",
        "taxi",
        "lupo",
    ]
    assert world.names(await world.search(currency="USD")) == []
    assert world.names(await world.search(date_from="2026-01-20", date_to="2026-03-10")) == [
        "beach",
        "shop",
        "taxi",
    ]
    assert world.names(await world.search(date_from="2026-03-11")) == ["museum"]
    assert world.names(await world.search(date_to="2026-01-15")) == ["lupo"]
    assert world.names(await world.search(amount_min=3000, amount_max=6000)) == [
        "museum",
        "beach",
        "shop",
    ]
    assert world.names(await world.search(amount_min=9000)) == ["lupo"]
    assert world.names(await world.search(amount_max=2400)) == ["taxi"]
    both = await world.search(text="dinner", person=world.bo.id, date_from="2026-02-01")
    assert world.names(both) == ["beach"]
    found = await world.search(text="museum")
    assert found["next_cursor"] is None
    item = found["items"][0]
    assert (item["amount"], item["category"], item["date"]) == (3000, "fun", "2026-03-11")


async def test_search_pages_by_cursor(world: World) -> None:
    """Pages of two follow one another by `next_cursor` without repeats or gaps, the
    last one without a cursor; an expense added meanwhile does not shift them."""
    first = await world.search(limit=2)
    assert world.names(first) == ["museum", "beach"]
    second = await world.search(limit=2, cursor=first["next_cursor"])
    assert world.names(second) == ["shop", "taxi"]
    third = await world.search(limit=2, cursor=second["next_cursor"])
    assert world.names(third) == ["lupo"]
    assert third["next_cursor"] is None
    filtered = await world.search(limit=1, category="food")
    assert world.names(filtered) == ["beach"]
    rest = await world.search(limit=1, category="food", cursor=filtered["next_cursor"])
    assert world.names(rest) == ["lupo"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({"category": "nope"}, "invalid_search", "category"),
        ({"person": "someone-else"}, "invalid_search", "person"),
        ({"currency": "XYZ"}, "invalid_search", "currency"),
        ({"date_from": "2026-13-01"}, "invalid_search", "date_from"),
        ({"date_to": "15.01.2026"}, "invalid_search", "date_to"),
        ({"date_from": "2026-03-01", "date_to": "2026-02-01"}, "invalid_search", "date_to"),
        ({"amount_min": "abc"}, "validation_error", "amount_min"),
        ({"amount_max": "-5"}, "validation_error", "amount_max"),
        ({"amount_max": "1" * 40}, "validation_error", "amount_max"),
        ({"amount_min": "5000", "amount_max": "100"}, "invalid_search", "amount_max"),
        ({"text": "a" * 101}, "invalid_search", "text"),
        ({"text": "a" * 2000}, "invalid_expense", "text"),
        ({"text": "bell\x07here"}, "invalid_search", "text"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor", None),
        ({"limit": "0"}, "validation_error", "limit"),
    ],
)
async def test_search_refusals_name_their_parameter(
    world: World, query: dict[str, str], code: str, field: str | None
) -> None:
    """A wrong filter is a 422 with a stable code naming the query parameter."""
    path = f"/api/v1/groups/{world.group}/search?{urlencode(query)}"
    reply = await world.api.problem("GET", path, world.ana.user, status=422, code=code)
    if field is not None:
        assert reply.field() == field, reply.body


async def test_search_and_insight_are_for_members_only(world: World, api: Api) -> None:
    """To someone outside the group, and without a token, neither route answers."""
    stranger = await api.register(name="Stranger")
    for route in ("search", "insight"):
        path = f"/api/v1/groups/{world.group}/{route}"
        await api.problem("GET", path, stranger, status=404, code="group_not_found")
        reply = await api.call("GET", path)
        assert reply.status == 401


# ── JSON: insight ─────────────────────────────────────────────────────────────────────


def series_of(view: dict[str, Any], kind: str) -> dict[str, tuple[int, int, int]]:
    """The one (EUR) series of `kind` as {key: (amount, count, percent)}."""
    (series,) = view[kind]
    assert series["currency"] == "EUR"
    return {s["key"]: (s["amount"], s["count"], s["percent"]) for s in series["slices"]}


async def insight(world: World, **query: Any) -> dict[str, Any]:
    path = f"/api/v1/groups/{world.group}/insight?{urlencode(query)}"
    view: dict[str, Any] = await world.api.ok("GET", path, world.ana.user)
    return view


async def test_insight_totals_match_hand_sums(world: World) -> None:
    """The group's totals by category (largest first) and by month (every month, oldest
    first) are the sums of its expenses by hand, each series' percents adding to 100."""
    view = await insight(world)
    assert view["person"] is None
    by_category = series_of(view, "by_category")
    assert by_category == {
        "food": (9000 + 6000, 2, 60),
        "groceries": (4550, 1, 18),
        "fun": (3000, 1, 12),
        "transport": (2400, 1, 10),
    }
    assert [s["key"] for s in view["by_category"][0]["slices"]] == [
        "food",
        "groceries",
        "fun",
        "transport",
    ]
    (category_series,) = view["by_category"]
    assert (category_series["total"], category_series["count"]) == (24950, 5)
    assert series_of(view, "by_month") == {
        "2026-01": (9000 + 2400, 2, 46),
        "2026-02": (4550, 1, 18),
        "2026-03": (6000 + 3000, 2, 36),
    }
    assert [s["key"] for s in view["by_month"][0]["slices"]] == ["2026-01", "2026-02", "2026-03"]


async def test_insight_of_one_members_shares(world: World) -> None:
    """`shares_of` sums that member's own shares (the taxi, not shared by Ana, is not in
    hers), by category and by month."""
    view = await insight(world, shares_of=world.ana.user.id)
    assert view["person"] == world.ana.user.id
    assert series_of(view, "by_category") == {
        "food": (3000 + 1000, 2, 55),
        "groceries": (2275, 1, 31),
        "fun": (1000, 1, 14),
    }
    assert series_of(view, "by_month") == {
        "2026-01": (3000, 1, 41),
        "2026-02": (2275, 1, 31),
        "2026-03": (1000 + 1000, 2, 28),
    }
    cy = await insight(world, shares_of=world.cy.id, category="food")
    assert series_of(cy, "by_category") == {"food": (3000, 1, 100)}


async def test_insight_follows_the_filter(world: World) -> None:
    """The filter narrows the sums; the month series covers the whole range asked for,
    zero where nothing was spent; nothing found is no series at all."""
    view = await insight(world, date_from="2025-12-01", date_to="2026-01-31")
    assert series_of(view, "by_month") == {
        "2025-12": (0, 0, 0),
        "2026-01": (11400, 2, 100),
    }
    assert series_of(view, "by_category") == {"food": (9000, 1, 79), "transport": (2400, 1, 21)}
    food = await insight(world, category="food", amount_min=7000)
    assert series_of(food, "by_category") == {"food": (9000, 1, 100)}
    nothing = await insight(world, text="no such words")
    assert nothing["by_category"] == []
    assert nothing["by_month"] == []


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({"shares_of": "someone-else"}, "invalid_search", "shares_of"),
        ({"person": "someone-else"}, "invalid_search", "person"),
        ({"date_from": "yesterday"}, "invalid_search", "date_from"),
        ({"amount_min": "1.5"}, "validation_error", "amount_min"),
        ({"category": "nope"}, "invalid_search", "category"),
    ],
)
async def test_insight_refusals_name_their_parameter(
    world: World, query: dict[str, str], code: str, field: str
) -> None:
    """A wrong filter of the insight is a 422 naming its query parameter."""
    path = f"/api/v1/groups/{world.group}/insight?{urlencode(query)}"
    reply = await world.api.problem("GET", path, world.ana.user, status=422, code=code)
    assert reply.field() == field, reply.body


# ── pages: search ─────────────────────────────────────────────────────────────────────


def listed(world: World, page: Page) -> list[str]:
    """The short names of the expenses a page lists, in order."""
    by_id = {ident: name for name, ident in world.ids.items()}
    return [by_id[ident] for ident in re.findall(r'data-expense-id="([^"]+)"', page.html)]


async def search_page(world: World, **query: str) -> Page:
    return await world.ana.get(f"/groups/{world.group}/search?{urlencode(query)}")


async def test_search_page_finds_by_each_filter(world: World) -> None:
    """The search page's form lists the members and labels every input; each filter
    (amounts typed as money in the reader's language) lists what the JSON route finds."""
    blank = await search_page(world)
    assert blank.status == 200, blank.html
    assert listed(world, blank) == []
    for name in ("text", "person", "category", "date_from", "date_to", "amount_min"):
        assert blank.inputs[name]["id"] in blank.labels, name
    assert f'value="{world.cy.id}"' in blank.html
    assert "Cy Chen" in blank.html
    assert 'role="search"' in blank.html
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({"text": "dinner"}, ["beach", "lupo"]),
        ({"person": world.cy.id}, ["museum", "shop", "taxi", "lupo"]),
        ({"category": "food"}, ["beach", "lupo"]),
        ({"date_from": "2026-01-20", "date_to": "2026-03-10"}, ["beach", "shop", "taxi"]),
        ({"amount_min": "30,00", "amount_max": "60"}, ["museum", "beach", "shop"]),
        ({"amount_min": "90"}, ["lupo"]),
    ]
    for query, expected in cases:
        page = await search_page(world, **query)
        assert page.status == 200, (query, page.html)
        assert listed(world, page) == expected, query
        for name, value in query.items():
            if name != "person":
                assert page.inputs[name]["value"] == value, name
    chosen = await search_page(world, person=world.cy.id)
    assert re.search(rf'<option value="{world.cy.id}" selected>', chosen.html)
    found = await search_page(world, text="museum")
    assert "30,00\xa0€" in found.html or "30,00 €" in found.html
    none = await search_page(world, text="no such words")
    assert listed(world, none) == []
    assert "No expenses match" in none.html


@pytest.mark.parametrize(
    ("query", "input_name", "words"),
    [
        ({"date_from": "2026-02-30"}, "date_from", "YYYY-MM-DD"),
        ({"date_from": "2026-03-01", "date_to": "2026-02-01"}, "date_to", "before"),
        ({"amount_min": "abc"}, "amount_min", "Enter an amount"),
        ({"amount_min": "50", "amount_max": "10"}, "amount_max", "below"),
        ({"category": "nope"}, "category", "not a category"),
        ({"text": "x" * 150}, "text", "100"),
    ],
)
async def test_search_page_refusals_at_their_fields(
    world: World, query: dict[str, str], input_name: str, words: str
) -> None:
    """A refused filter is said at its input (aria-describedby names the error), what
    was typed kept, and nothing is listed."""
    page = await search_page(world, **query)
    assert page.status == 422, page.html
    attrs = page.inputs[input_name]
    assert attrs.get("aria-invalid") == "true"
    error_id = f"f-{input_name}-error"
    assert error_id in attrs.get("aria-describedby", "").split()
    assert words in page.texts[error_id], page.texts[error_id]
    assert attrs["value"] == query[input_name]
    assert listed(world, page) == []
    assert "There is a problem" in page.html


async def test_search_page_pages_by_cursor(world: World, api: Api) -> None:
    """Past a page of 50, "Older results" leads to the rest with the filter kept, and
    the last page has no further link."""
    group = await api.ok(
        "POST", "/api/v1/groups", world.ana.user, {"name": "Coffee", "currency": "EUR"}, 201
    )
    me = world.ana.user.id
    for number in range(53):
        body = {
            "description": f"Coffee {number:02d}",
            "amount": 250 + number,
            "currency": "EUR",
            "paid_by": me,
            "split": {"mode": "equal", "shares": [{"user_id": me}]},
            "date": f"2026-01-{1 + number % 28:02d}",
        }
        await api.ok("POST", f"/api/v1/groups/{group['id']}/expenses", world.ana.user, body, 201)
    base = f"/groups/{group['id']}/search"
    first = await world.ana.get(f"{base}?text=coffee")
    assert first.html.count("data-expense-id=") == 50
    older = re.search(r'href="([^"]*cursor=[^"]*)"[^>]*>Older results', first.html)
    assert older is not None, first.html
    link = older[1].replace("&amp;", "&")
    assert "text=coffee" in link
    rest = await world.ana.get(link)
    assert rest.status == 200
    assert rest.html.count("data-expense-id=") == 3
    assert "Older results" not in rest.html
    assert "Back to the first results" in rest.html
    seen = set(re.findall(r'data-expense-id="([^"]+)"', first.html + rest.html))
    assert len(seen) == 53


async def test_large_group_person_is_a_name_field(world: World, api: Api) -> None:
    """In a group of more than 50 members the Person filter is a name field: one name
    finds that member's expenses; a name nobody or several members have is refused at
    the field."""
    group = await api.ok(
        "POST", "/api/v1/groups", world.ana.user, {"name": "Club", "currency": "EUR"}, 201
    )
    gid = group["id"]
    for number in range(50):
        await api.ok(
            "POST",
            f"/api/v1/groups/{gid}/members",
            world.ana.user,
            {"name": f"Guest {number}"},
            201,
        )
    await api.ok(
        "POST", f"/api/v1/groups/{gid}/members", world.ana.user, {"name": "Zoe Quill"}, 201
    )
    view = await api.ok("GET", f"/api/v1/groups/{gid}", world.ana.user)
    zoe = next(m["user_id"] for m in view["members"] if m.get("name") == "Zoe Quill")
    me = world.ana.user.id
    for description, sharers in (("Tickets", [me, zoe]), ("Snacks", [me])):
        body = {
            "description": description,
            "amount": 1000,
            "currency": "EUR",
            "paid_by": me,
            "split": {"mode": "equal", "shares": [{"user_id": who} for who in sharers]},
        }
        await api.ok("POST", f"/api/v1/groups/{gid}/expenses", world.ana.user, body, 201)
    base = f"/groups/{gid}/search"
    blank = await world.ana.get(base)
    assert blank.inputs["who"]["type"] == "search"
    assert "person" not in blank.inputs
    found = await world.ana.get(f"{base}?who=zoe")
    assert found.status == 200, found.html
    assert "Tickets" in found.html
    assert "Snacks" not in found.html
    mine = await world.ana.get(f"{base}?who=you")
    assert "Tickets" in mine.html
    assert "Snacks" in mine.html
    for who, words in (("nobody-here", "Nobody here"), ("guest", "members are called")):
        refused = await world.ana.get(f"{base}?{urlencode({'who': who})}")
        assert refused.status == 422, refused.html
        assert words in refused.texts["f-who-error"]
        assert refused.inputs["who"]["value"] == who


async def test_expenses_tab_links_to_advanced_search_and_insight(world: World) -> None:
    """The Expenses tab's filter form links to the advanced search, and the group's tabs
    include Insight."""
    tab = await world.ana.get(f"/groups/{world.group}")
    assert f'href="/groups/{world.group}/search">Advanced search' in tab.html
    assert f'href="/groups/{world.group}/insight">Insight' in tab.html


# ── pages: insight ────────────────────────────────────────────────────────────────────


def table_rows(page: Page, chart_id: str) -> list[tuple[str, str]]:
    """The (label, amount) rows of the table after the chart `chart_id`."""
    start = page.html.index(f'id="{chart_id}"')
    table = page.html[start : page.html.index("</table>", start)]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = re.findall(r'<th scope="row">([^<]*)</th><td class="num">(.*?)</td>', body)
    return [(label, re.sub(r"<[^>]+>", "", amount).replace("\xa0", " ")) for label, amount in rows]


async def test_insight_page_draws_charts_with_tables(world: World) -> None:
    """The Insight tab draws one SVG chart by category and one by month, each with a
    table of the same numbers (money in the reader's language); "Just my share" shows
    the viewer's own shares."""
    page = await world.ana.get(f"/groups/{world.group}/insight")
    assert page.status == 200, page.html
    assert 'aria-current="page">Insight' in page.html
    assert page.html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart') == 2
    assert 'class="chart chart-bars"' in page.html
    assert 'class="chart chart-months"' in page.html
    assert "/static/charts." in page.html
    assert " style=" not in page.html
    assert table_rows(page, "category-group-EUR") == [
        ("Food", "150,00 €"),
        ("Groceries", "45,50 €"),
        ("Fun", "30,00 €"),
        ("Transport", "24,00 €"),
    ]
    assert table_rows(page, "month-group-EUR") == [
        ("Jan 2026", "114,00 €"),
        ("Feb 2026", "45,50 €"),
        ("Mar 2026", "90,00 €"),
    ]
    mine = await world.ana.get(f"/groups/{world.group}/insight?view=mine")
    assert mine.status == 200
    assert re.search(r'aria-current="page">Just my share', mine.html)
    assert table_rows(mine, "category-mine-EUR") == [
        ("Food", "40,00 €"),
        ("Groceries", "22,75 €"),
        ("Fun", "10,00 €"),
    ]
    dated = await world.ana.get(
        f"/groups/{world.group}/insight?view=mine&date_from=2026-03-01&date_to=2026-03-31"
    )
    assert table_rows(dated, "month-mine-EUR") == [("Mar 2026", "20,00 €")]
    assert dated.inputs["view"]["value"] == "mine"


async def test_insight_page_empty_and_refused(world: World, api: Api) -> None:
    """A group with no expenses says so and offers to add one; wrong dates are refused at
    their field with what was typed kept."""
    group = await api.ok(
        "POST", "/api/v1/groups", world.ana.user, {"name": "Empty", "currency": "EUR"}, 201
    )
    empty = await world.ana.get(f"/groups/{group['id']}/insight")
    assert empty.status == 200
    assert "No spending to show yet" in empty.html
    assert "<svg" not in empty.html.split("</nav>")[-1]
    refused = await world.ana.get(
        f"/groups/{world.group}/insight?date_from=2026-03-01&date_to=2026-01-01"
    )
    assert refused.status == 422
    assert "before" in refused.texts["f-date_to-error"]
    assert refused.inputs["date_to"]["value"] == "2026-01-01"
    outsider = await api.register(name="Outsider")
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Accept": "text/html"}
    ) as browser:
        person = Person(outsider, browser, world.ana.url)
        form = await person.get("/sign-in")
        await person.send(form, "/sign-in", {"email": outsider.email, "password": PASSWORD})
        for path in ("insight", "search"):
            async with browser.get(f"{world.ana.url}/groups/{world.group}/{path}") as response:
                assert response.status == 404
                await page_of(response)
