"""Your data end to end against a real node: the export as a download over the JSON API
and the page's plain link, and deleting an account over HTTP and through the page's form
as a browser without JavaScript uses it (refused in words while something is owed, then
done: signed out, sign-in refused, the email free again)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_pages_auth import PASSWORD, Page, submit, visit
from tests.support.api import Api, User, eventually
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path_factory.mktemp("me-data-node"))
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser without JavaScript: keeps cookies (also of 127.0.0.1), asks for HTML."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers={"Accept": "text/html"}) as session:
        yield session


async def owing_group(api: Api, creditor: User, debtor: User) -> str:
    """A group where `debtor` owes `creditor` 5.00 EUR for a dinner."""
    body = {"name": "Trip", "currency": "EUR"}
    group = (await api.ok("POST", "/api/v1/groups", creditor, body, 201))["id"]
    await api.ok("POST", f"/api/v1/groups/{group}/members", creditor, {"user_id": debtor.id}, 201)
    dinner = {
        "description": "Dinner",
        "amount": 1000,
        "currency": "EUR",
        "paid_by": creditor.id,
        "split": {"mode": "equal", "shares": [{"user_id": creditor.id}, {"user_id": debtor.id}]},
    }
    await api.ok("POST", f"/api/v1/groups/{group}/expenses", creditor, dinner, 201)
    return str(group)


async def settle_in_cash(api: Api, group: str, debtor: User, creditor: User) -> None:
    body = {"to_user_id": creditor.id, "amount": 500, "currency": "EUR", "method": "cash"}
    await api.ok("POST", f"/api/v1/groups/{group}/settlements", debtor, body, 201)
    await eventually(
        lambda: api.ok("GET", f"/api/v1/groups/{group}/balances", debtor),
        lambda view: all(line["net"] == 0 for line in view["balances"]),
        what="the settlement recorded",
    )


async def test_the_json_export_is_a_dated_download_of_my_data(api: Api) -> None:
    """GET /api/v1/me/export is an attachment named by the day, holding my groups."""
    ann, bob = await api.register(name="Ann"), await api.register(name="Bob")
    group = await owing_group(api, ann, bob)
    reply = await api.call("GET", "/api/v1/me/export", bob)
    assert reply.status == 200
    disposition = reply.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="splitgo-export-20')
    assert disposition.endswith('.json"')
    body: dict[str, Any] = reply.body
    assert [g["group_id"] for g in body["groups"]["groups"]] == [group]
    assert body["groups"]["debts"][0]["amount"] == 500
    assert (await api.call("GET", "/api/v1/me/export")).status == 401


async def test_deleting_over_the_api_is_refused_then_done(api: Api) -> None:
    """DELETE /api/v1/me: 409 saying the debt while Bob owes, then 200 once settled; the
    token and the password are gone, his share shows "Deleted user", he leaves the group,
    and the email signs up again."""
    ann, bob = await api.register(name="Ann"), await api.register(name="Bob")
    group = await owing_group(api, ann, bob)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    refused = await api.call("DELETE", "/api/v1/me", bob, {"password": PASSWORD}, key)
    assert refused.status == 409
    assert refused.body["code"] == "account_not_empty"
    assert refused.body["errors"][0]["message"] == "You owe Ann 5.00 EUR in Trip: settle up first."
    await settle_in_cash(api, group, bob, ann)
    done = await api.call("DELETE", "/api/v1/me", bob, {"password": PASSWORD}, key)
    assert done.status == 200, done.body
    assert (await api.call("GET", "/api/v1/me", bob)).status == 401
    expenses = await api.ok("GET", f"/api/v1/groups/{group}/expenses", ann)
    [dinner] = expenses["items"]
    assert {line["user_id"]: line["name"] for line in dinner["shares"]}[bob.id] == "Deleted user"
    await eventually(
        lambda: api.ok("GET", f"/api/v1/groups/{group}", ann),
        lambda view: bob.id not in {m["user_id"] for m in view["members"]},
        what="the deleted account left the group",
    )
    again = await api.register(email=bob.email, name="Bob")
    assert again.id != bob.id


async def signed_in_page(api: Api, browser: aiohttp.ClientSession, user: User) -> Page:
    form = await visit(browser, f"{api.url}/sign-in")
    home = await submit(browser, form, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert home.status == 200, home.html
    return home


async def test_the_page_downloads_and_deletes_with_reasons_at_the_form(
    api: Api, browser: aiohttp.ClientSession
) -> None:
    """The account page links to Your data; its plain link downloads the file; the delete
    form refuses a wrong password at the input and a debt in words, then deletes, signs
    out and says so."""
    ann, bob = await api.register(name="Ann"), await api.register(name="Bob")
    group = await owing_group(api, ann, bob)
    await signed_in_page(api, browser, bob)
    account = await visit(browser, f"{api.url}/account")
    assert 'href="/account/data"' in account.html
    page = await visit(browser, f"{api.url}/account/data")
    assert page.status == 200
    assert "Download my data" in page.html
    async with browser.get(f"{api.url}/account/data/export") as download:
        assert download.status == 200
        assert "attachment" in download.headers["Content-Disposition"]
        assert (await download.json())["user_id"] == bob.id

    wrong = await submit(browser, page, "/account/data/delete", {"password": "not it at all"})
    assert wrong.status == 422
    assert "The password is wrong" in wrong.html
    owing = await submit(browser, wrong, "/account/data/delete", {"password": PASSWORD})
    assert owing.status == 409
    assert "You owe Ann 5.00 EUR in Trip: settle up first." in owing.html

    await settle_in_cash(api, group, bob, ann)
    gone = await submit(browser, owing, "/account/data/delete", {"password": PASSWORD})
    assert gone.status == 200, gone.html
    assert gone.url.endswith("/sign-in")
    assert "Your account is deleted" in gone.html
    login = await api.call(
        "POST", "/api/v1/auth/login", body={"email": bob.email, "password": PASSWORD}
    )
    assert login.status == 401
