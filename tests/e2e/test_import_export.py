"""Splitwise import and the JSON export over HTTP against a real node: the dry run's
report and proposed mapping, the confirm run as a job with its progress, balances that
match the file's nets, a second run that adds nothing, a new group made from a file,
refusals of a foreign or oversized file with nothing stored, the JSON export, and the
import pages as a browser without JavaScript uses them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.splits.import_mapping import (
    ImportedExpense,
    ImportedSettlement,
    apply_mapping,
    batch_chunk,
    batch_deltas,
    batch_total,
)
from actors.splits.import_reading import parse_splitwise
from actors.splits.importing import main_currency
from tests.e2e.test_pages_auth import PASSWORD, Page, page_of, submit, visit
from tests.support.api import Api, User
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database

pytestmark = [pytest.mark.e2e]
ASYNC = pytest.mark.asyncio(loop_scope="module")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "splitwise"
FLAT = (FIXTURES / "flat.csv").read_bytes()
CSV = {"Content-Type": "text/csv"}


# ── the pure chunking (no node) ────────────────────────────────────────────────────────

TRIP = (FIXTURES / "trip.csv").read_bytes()


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=12), names=st.sampled_from(["flat", "trip"]))
def test_chunks_cover_every_row_once(size: int, names: str) -> None:
    """Consecutive chunks of any size cover each expense and settlement once, in order, and
    the deltas of all chunks add up to the file's nets (zero per currency)."""
    plan = parse_splitwise(FLAT if names == "flat" else TRIP, group_id="g")
    batch = apply_mapping(plan, dict.fromkeys(plan.people))
    seen_expenses: list[ImportedExpense] = []
    seen_settlements: list[ImportedSettlement] = []
    totals: dict[tuple[str, str], int] = {}
    for start in range(0, batch_total(batch), size):
        expenses, settlements = batch_chunk(batch, start, size)
        assert 0 < len(expenses) + len(settlements) <= size
        seen_expenses += expenses
        seen_settlements += settlements
        for currency, deltas in batch_deltas(expenses, settlements).items():
            assert sum(deltas.values()) == 0
            for user, delta in deltas.items():
                totals[currency, user] = totals.get((currency, user), 0) + delta
    assert tuple(seen_expenses) == batch.expenses
    assert tuple(seen_settlements) == batch.settlements
    expected = {
        (net.currency, plan.placeholder_ids[net.name]): net.net
        for net in plan.report.nets
        if net.net
    }
    assert {key: value for key, value in totals.items() if value} == expected


def test_main_currency_is_the_most_used() -> None:
    """A new group takes the currency most rows are in (ties by code)."""
    assert main_currency(parse_splitwise(FLAT, group_id="g").report) == "EUR"
    assert main_currency(parse_splitwise(TRIP, group_id="g").report) in ("EUR", "JPY")


@dataclass
class World:
    node: RunningNode
    api: Api
    http: aiohttp.ClientSession


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with fresh_database(schema=True) as database:
        env = {
            "SPLITGO_DATABASE_URL": database,
            "SPLITGO_JWT_KEYS": "imp-k1:import-export-e2e-signing-secret-0123456789",
        }
        node = await start_node(tmp_path_factory.mktemp("import-node"), env=env)
        try:
            async with aiohttp.ClientSession() as http:
                yield World(node, Api(node.url, http), http)
        finally:
            await stop_node(node)


async def post_file(
    world: World, path: str, user: User, data: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST `data` as the CSV body; (status, JSON body)."""
    sent = {**user.headers, **CSV, **(headers or {})}
    async with world.http.post(f"{world.node.url}{path}", data=data, headers=sent) as response:
        return response.status, await response.json(content_type=None)


async def group_of(world: World, owner: User) -> str:
    group = await world.api.ok(
        "POST", "/api/v1/groups", owner, {"name": "Flat", "currency": "EUR"}, 201
    )
    return str(group["id"])


async def finished(world: World, user: User, job: dict[str, Any]) -> dict[str, Any]:
    """The job once it is no longer running (its progress asked of the node meanwhile)."""
    for _ in range(400):
        if job["state"] != "running":
            return job
        await asyncio.sleep(0.05)
        job = await world.api.ok("GET", f"/api/v1/imports/{job['id']}", user)
        assert 0 <= job["done"] <= job["total"]
    raise AssertionError(f"the import did not finish: {job}")


async def confirm(
    world: World, user: User, group_id: str, dry: dict[str, Any], mapping: list[Any]
) -> dict[str, Any]:
    body = {"file_sha256": dry["report"]["file_sha256"], "mapping": mapping}
    job = await world.api.ok(
        "POST", f"/api/v1/groups/{group_id}/import/splitwise/confirm", user, body, 202
    )
    return await finished(world, user, job)


@ASYNC
async def test_dry_run_confirm_and_second_run(world: World) -> None:
    """A dry run proposes a member for the matching name and placeholders for the others;
    the confirmed import reproduces the file's nets, writes one activity line, and a
    second run reports everything imported and adds nothing."""
    ana = await world.api.register(name="Ana Lima")
    group_id = await group_of(world, ana)
    status, dry = await post_file(world, f"/api/v1/groups/{group_id}/import/splitwise", ana, FLAT)
    assert status == 200, dry
    report = dry["report"]
    assert (report["expenses"], report["settlements"], report["skipped_count"]) == (4, 1, 1)
    proposed = {match["name"]: match["user_id"] for match in dry["mapping"]}
    assert proposed == {"Ana Lima": ana.id, "Bo Chen": None, "Cleo Park": None}
    assert dry["already_imported"] == 0
    expenses = await world.api.ok("GET", f"/api/v1/groups/{group_id}/expenses", ana)
    assert expenses["items"] == []  # a dry run stores nothing

    job = await confirm(world, ana, group_id, dry, dry["mapping"])
    assert job["state"] == "finished", job
    assert job["done"] == job["total"] == 5
    assert job["result"]["expenses_added"] == 4
    assert job["result"]["settlements_added"] == 1
    assert job["result"]["placeholders_added"] == 2

    group = await world.api.ok("GET", f"/api/v1/groups/{group_id}", ana)
    names = {member["user_id"]: member.get("name") for member in group["members"]}
    assert sorted(n for n in names.values() if n) == ["Ana Lima", "Bo Chen", "Cleo Park"]
    by_name = {name: user for user, name in names.items()}
    balances = await world.api.ok("GET", f"/api/v1/groups/{group_id}/balances", ana)
    nets = {line["user_id"]: line["net"] for line in balances["balances"]}
    assert nets == {
        by_name["Ana Lima"]: 41497,
        by_name["Bo Chen"]: 5007,
        by_name["Cleo Park"]: -46504,
    }
    activity = await world.api.ok("GET", f"/api/v1/groups/{group_id}/activity", ana)
    imported = [item for item in activity["items"] if item["kind"] == "group_imported"]
    assert len(imported) == 1
    assert "imported 4 expenses from Splitwise" in imported[0]["summary"]

    status, again = await post_file(world, f"/api/v1/groups/{group_id}/import/splitwise", ana, FLAT)
    assert status == 200
    assert again["already_imported"] == 5, again
    again_proposed = {match["name"]: match["user_id"] for match in again["mapping"]}
    assert again_proposed == {name: by_name[name] for name in proposed}
    second = await confirm(world, ana, group_id, again, again["mapping"])
    assert second["state"] == "finished"
    assert second["result"]["expenses_added"] == 0
    assert second["result"]["placeholders_added"] == 0
    listed = await world.api.ok("GET", f"/api/v1/groups/{group_id}/expenses", ana)
    assert len(listed["items"]) == 4
    balances = await world.api.ok("GET", f"/api/v1/groups/{group_id}/balances", ana)
    assert {line["user_id"]: line["net"] for line in balances["balances"]} == nets


@ASYNC
async def test_refusals_store_nothing(world: World) -> None:
    """A foreign CSV is a 422 naming the file, a broken amount names its row and column,
    an oversized file is a 413, a mapping to a non-member is a 422, and a confirm without
    a dry run is a 409; the group stays empty."""
    bo = await world.api.register(name="Bo")
    group_id = await group_of(world, bo)
    path = f"/api/v1/groups/{group_id}/import/splitwise"
    status, problem = await post_file(world, path, bo, b"iban;amount\nDE00;12\n")
    assert status == 422
    assert problem["code"] == "invalid_import", problem
    assert problem["errors"][0]["field"] == "$.file"
    broken = FLAT.replace(b"45.10", b"45.1x")
    status, problem = await post_file(world, path, bo, broken)
    assert status == 422
    assert "Row 3" in problem["detail"]
    assert "Cost" in problem["detail"]
    status, problem = await post_file(world, path, bo, b"x" * (20 * 1024 * 1024 + 1))
    assert status == 413
    assert problem["code"] == "payload_too_large", problem

    status, dry = await post_file(world, path, bo, FLAT)
    assert status == 200
    mapping = [{"name": m["name"], "user_id": "someone-else"} for m in dry["mapping"]]
    body = {"file_sha256": dry["report"]["file_sha256"], "mapping": mapping}
    await world.api.problem("POST", f"{path}/confirm", bo, body, status=422, code="invalid_import")
    body = {"file_sha256": "0" * 64, "mapping": dry["mapping"]}
    await world.api.problem(
        "POST", f"{path}/confirm", bo, body, status=409, code="import_file_missing"
    )
    listed = await world.api.ok("GET", f"/api/v1/groups/{group_id}/expenses", bo)
    assert listed["items"] == []
    group = await world.api.ok("GET", f"/api/v1/groups/{group_id}", bo)
    assert len(group["members"]) == 1


@ASYNC
async def test_new_group_from_file_and_json_export(world: World) -> None:
    """POST /api/v1/imports/splitwise makes a group in the file's currency (the same one
    when sent again); once imported, the JSON export holds its members, expenses with
    shares summing to their amounts, and the settlement."""
    cleo = await world.api.register(name="Cleo Park")
    status, made = await post_file(world, "/api/v1/imports/splitwise?name=Old+flat", cleo, FLAT)
    assert status == 201, made
    group = made["group"]
    assert (group["name"], group["currency"]) == ("Old flat", "EUR")
    status, again = await post_file(world, "/api/v1/imports/splitwise", cleo, FLAT)
    assert status == 201
    assert again["group"]["id"] == group["id"]
    job = await confirm(world, cleo, group["id"], made["dry_run"], made["dry_run"]["mapping"])
    assert job["state"] == "finished"

    reply = await world.api.call("GET", f"/api/v1/groups/{group['id']}/export.json", cleo)
    assert reply.status == 200
    assert "attachment" in reply.headers["Content-Disposition"]
    export = reply.body
    assert export["group"]["name"] == "Old flat"
    assert {m.get("name") for m in export["members"]} == {"Ana Lima", "Bo Chen", "Cleo Park"}
    assert len(export["expenses"]) == 4
    for expense in export["expenses"]:
        assert sum(line["amount"] for line in expense["shares"]) == expense["amount"]
        assert sum(line["amount"] for line in expense["paid_by"]) == expense["amount"]
    assert [s["amount"] for s in export["settlements"]] == [40000]

    stranger = await world.api.register(name="Stranger")
    reply = await world.api.call("GET", f"/api/v1/groups/{group['id']}/export.json", stranger)
    assert reply.status in (403, 404)


# ── the pages ──────────────────────────────────────────────────────────────────────────


@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without JavaScript: keeps cookies (also of 127.0.0.1), asks for HTML."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as session:
        yield session


async def sign_in(world: World, browser: aiohttp.ClientSession, user: User) -> None:
    form = await visit(browser, f"{world.node.url}/sign-in")
    home = await submit(browser, form, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert home.status == 200, home.html


async def upload(
    world: World, browser: aiohttp.ClientSession, page: Page, action: str, data: bytes
) -> Page:
    """Send the page's upload form with `data` as its file, as a browser does."""
    form = aiohttp.FormData()
    for name, value in page.form(action)["fields"].items():
        if name != "file":
            form.add_field(name, value)
    form.add_field("file", data, filename="export.csv", content_type="text/csv")
    async with browser.post(f"{world.node.url}{action}", data=form) as response:
        return await page_of(response)


def chosen(html: str) -> dict[str, str]:
    """The option each <select> of the page has selected."""
    return dict(
        re.findall(r'<select[^>]*name="([^"]+)"[\s\S]*?<option value="([^"]*)" selected', html)
    )


@ASYNC
async def test_import_pages(world: World, browser: aiohttp.ClientSession) -> None:
    """Without JavaScript: the upload form, the report with a labelled choice per name,
    a refusal of a foreign file shown at the file input, the confirm showing a progress
    bar until done, a new group's upload page reaching the same review, and the export
    links beside the CSV download."""
    dana = await world.api.register(name="Ana Lima")
    group_id = await group_of(world, dana)
    await sign_in(world, browser, dana)
    action = f"/groups/{group_id}/import"
    page = await visit(browser, f"{world.node.url}{action}")
    assert page.status == 200
    assert 'type="file"' in page.html
    assert 'enctype="multipart/form-data"' in page.html
    assert "f-file" in page.labels

    refused = await upload(world, browser, page, action, b"iban;amount\n")
    assert refused.status == 422
    assert 'aria-describedby="f-file-error' in refused.html
    assert "not a Splitwise" in refused.ids["f-file-error"]

    page = await visit(browser, f"{world.node.url}{action}")
    review = await upload(world, browser, page, action, FLAT)
    assert review.status == 200, review.html
    assert "4 expenses" in review.html
    assert "Bo Chen" in review.html
    assert {"f-map-0", "f-map-1", "f-map-2"} <= review.labels
    selected = chosen(review.html)
    assert selected["map.0"] == dana.id
    assert selected["map.1"] == "new"
    running = await submit(browser, review, f"{action}/confirm", selected)
    assert running.status == 200, running.html
    assert "<progress" in running.html
    for _ in range(200):
        if "Imported" in running.html:
            break
        await asyncio.sleep(0.05)
        running = await visit(browser, running.url)
    assert "Imported 4 expenses" in running.html

    fresh = await visit(browser, f"{world.node.url}/imports/splitwise")
    assert fresh.status == 200
    made = await upload(world, browser, fresh, "/imports/splitwise", FLAT)
    assert made.status == 200, made.html
    assert "Who is who" in made.html

    expenses = await visit(browser, f"{world.node.url}/groups/{group_id}")
    assert f"/groups/{group_id}/export.json" in expenses.html
    async with browser.get(f"{world.node.url}/groups/{group_id}/export.json") as response:
        assert response.status == 200
        assert len((await response.json(content_type=None))["expenses"]) == 4
