"""Installable, with push, against a real node: the manifest, the service worker and the
offline page as a browser fetches them, and Web Push end to end — a user subscribes
through the JSON API with keys the test made, a friend adds an expense, and a fake push
service over HTTP checks the VAPID signature against the node's published key and
decrypts the message; a 410 from it removes the subscription."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_pages_auth import PASSWORD, submit, visit
from tests.support.api import Api, User
from tests.support.fake_push import FakePush
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@dataclass
class World:
    node: RunningNode
    push: FakePush


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    push = FakePush()
    await push.start()
    running = await start_node(
        tmp_path_factory.mktemp("webpush-node"),
        env={"SPLITGO_WEBPUSH_ALLOW_HTTP": "1", "SPLITGO_VAPID_SUBJECT": "mailto:ops@example.com"},
    )
    yield World(running, push)
    if running.process.poll() is None:
        await stop_node(running)
    await push.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def api(world: World) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(world.node.url, session)


async def new_user(api: Api, name: str) -> User:
    return await api.register(f"p{secrets.token_hex(5)}@example.com", name)


async def expense_between(api: Api, payer: User, other: User, description: str) -> None:
    group = await api.ok("POST", "/api/v1/groups", payer, {"name": "Flat", "currency": "EUR"}, 201)
    await api.ok("POST", f"/api/v1/groups/{group['id']}/members", payer, {"user_id": other.id}, 201)
    body = {
        "description": description,
        "amount": 3000,
        "currency": "EUR",
        "paid_by": payer.id,
        "split": {"mode": "equal", "shares": [{"user_id": payer.id}, {"user_id": other.id}]},
    }
    await api.ok("POST", f"/api/v1/groups/{group['id']}/expenses", payer, body, 201)


async def test_a_subscribed_user_gets_the_notice_encrypted_by_web_push(
    api: Api, world: World
) -> None:
    """Bea subscribes a browser (201, listed); being added to Al's group, then his expense,
    reach the fake push service signed with the node's published key, and decrypted the
    expense's message names it and opens its page."""
    key = await api.call("GET", "/api/v1/push/vapid-public-key")
    assert key.status == 200, key.body
    world.push.vapid_public_key = key.body["public_key"]
    al, bea = await new_user(api, "Al"), await new_user(api, "Bea")
    browser = world.push.subscribe()
    made = await api.ok(
        "POST", "/api/v1/me/push-subscriptions", bea, {**browser, "label": "Bea's phone"}, 201
    )
    assert made["endpoint"] == browser["endpoint"]
    assert made["label"] == "Bea's phone"
    listed = await api.ok("GET", "/api/v1/me/push-subscriptions", bea)
    assert [item["id"] for item in listed["items"]] == [made["id"]]
    assert listed["next_cursor"] is None
    assert (await api.ok("GET", "/api/v1/me/push-subscriptions", al))["items"] == []

    await expense_between(api, al, bea, "Groceries")
    token = browser["endpoint"].rsplit("/", 1)[-1]
    added = await world.push.wait_received(lambda m: m.token == token)
    assert added.payload["title"] == "Added to a group"
    message = await world.push.wait_received(
        lambda m: m.token == token and m.payload["kind"] == "ExpenseAdded"
    )
    assert message.payload["title"] == "New expense in Flat"
    assert "Al added “Groceries”" in message.payload["body"]
    assert "15.00 EUR" in message.payload["body"]
    assert message.payload["url"].startswith("/groups/")
    assert message.claims["sub"] == "mailto:ops@example.com"
    assert world.push.refused == []


async def test_a_gone_subscription_is_removed(api: Api, world: World) -> None:
    """When the push service answers 410, the subscription disappears from the list."""
    al, cy = await new_user(api, "Al"), await new_user(api, "Cy")
    browser = world.push.subscribe()
    await api.ok("POST", "/api/v1/me/push-subscriptions", cy, browser, 201)
    world.push.answer(browser["endpoint"], 410)
    await expense_between(api, al, cy, "Taxi")

    async def gone() -> bool:
        listed = await api.ok("GET", "/api/v1/me/push-subscriptions", cy)
        return not listed["items"]

    async with asyncio.timeout(10):
        while not await gone():
            await asyncio.sleep(0.05)


async def test_subscriptions_are_validated_and_only_their_owner_removes_them(
    api: Api, world: World
) -> None:
    """A bad key is a 422 naming `$.keys.p256dh`; another user's DELETE is a 404; the
    owner's is a 204; without a token, 401."""
    dee, eve = await new_user(api, "Dee"), await new_user(api, "Eve")
    browser = world.push.subscribe()
    bad = {**browser, "keys": {**browser["keys"], "p256dh": "AAAA"}}
    refused = await api.call("POST", "/api/v1/me/push-subscriptions", dee, bad)
    assert refused.status == 422, refused.body
    assert refused.body["code"] == "invalid_push_subscription"
    assert refused.body["errors"][0]["field"] == "$.keys.p256dh"
    made = await api.ok("POST", "/api/v1/me/push-subscriptions", dee, browser, 201)
    other = await api.call("DELETE", f"/api/v1/me/push-subscriptions/{made['id']}", eve)
    assert other.status == 404, other.body
    mine = await api.call("DELETE", f"/api/v1/me/push-subscriptions/{made['id']}", dee)
    assert mine.status == 204
    assert (await api.ok("GET", "/api/v1/me/push-subscriptions", dee))["items"] == []
    assert (await api.call("GET", "/api/v1/me/push-subscriptions", None)).status == 401


async def fetch(api: Api, path: str) -> tuple[aiohttp.ClientResponse, bytes]:
    async with aiohttp.ClientSession() as session, session.get(api.url + path) as response:
        return response, await response.read()


async def test_the_manifest_worker_and_offline_page_are_served_for_installing(
    api: Api,
) -> None:
    """The manifest is JSON naming the app, its start URL and icons that load; the worker
    is JavaScript at the root with Service-Worker-Allowed and a short cache life, listing
    the shell; the offline page holds no one's data and keeps the strict CSP."""
    response, body = await fetch(api, "/manifest.webmanifest")
    assert response.status == 200
    assert response.content_type == "application/manifest+json"
    manifest: dict[str, Any] = json.loads(body)
    assert manifest["name"] == "splitgo"
    assert manifest["start_url"] == "/home"
    assert manifest["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        loaded, data = await fetch(api, icon["src"])
        assert loaded.status == 200
        assert loaded.content_type == icon["type"]
        assert data

    response, body = await fetch(api, "/sw.js")
    assert response.status == 200
    assert response.content_type == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert "max-age=0" in response.headers["Cache-Control"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    source = body.decode()
    shell = json.loads(source.split("const SHELL = ", 1)[1].split(";\n", 1)[0])
    assert "/offline" in shell
    assert any(url.startswith("/static/app.") and url.endswith(".css") for url in shell)
    assert not any(url.startswith("/api/") for url in shell)

    response, body = await fetch(api, "/offline")
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "worker-src 'self'" in policy
    assert "You are offline" in body.decode()
    assert "Sign out" not in body.decode()


async def test_the_push_devices_page_turns_push_on_and_removes_a_device(
    api: Api, world: World
) -> None:
    """Signed in through the forms, a person sees no device yet; the form push.js fills
    (the subscription in hidden inputs) adds this browser, named from its user agent, and
    the API lists it; refused keys come back as an error on the page; Remove takes it
    away."""
    jar = aiohttp.CookieJar(unsafe=True)
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    headers = {"Accept": "text/html", "User-Agent": firefox}
    async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as browser:
        email = f"p{secrets.token_hex(5)}@example.com"
        form = await visit(browser, f"{world.node.url}/sign-up")
        values = {"name": "Fay", "email": email, "password": PASSWORD}
        assert (await submit(browser, form, "/sign-up", values)).status == 201
        form = await visit(browser, f"{world.node.url}/sign-in")
        signed_in = await submit(browser, form, "/sign-in", {"email": email, "password": PASSWORD})
        assert signed_in.status == 200

        page = await visit(browser, f"{world.node.url}/account/push")
        assert page.status == 200
        assert "No devices yet" in page.html
        subscription = world.push.subscribe()
        bad = {"endpoint": subscription["endpoint"], "keys.p256dh": "AAAA", "keys.auth": "x"}
        refused = await submit(browser, page, "/account/push", bad)
        assert refused.status == 422
        assert "p256dh" in refused.html
        fields = {
            "endpoint": subscription["endpoint"],
            "keys.p256dh": subscription["keys"]["p256dh"],
            "keys.auth": subscription["keys"]["auth"],
        }
        page = await visit(browser, f"{world.node.url}/account/push")
        listed = await submit(browser, page, "/account/push", fields)
        assert listed.status == 200
        assert "Notifications are on in this browser." in listed.html
        assert "Firefox on Linux" in listed.html

        reply = await api.call(
            "POST", "/api/v1/auth/login", body={"email": email, "password": PASSWORD}
        )
        fay = User("", email, reply.body["access_token"])
        items = (await api.ok("GET", "/api/v1/me/push-subscriptions", fay))["items"]
        assert [item["endpoint"] for item in items] == [subscription["endpoint"]]
        removed = await submit(browser, listed, f"/account/push/{items[0]['id']}/remove", {})
        assert removed.status == 200
        assert "No devices yet" in removed.html
        assert (await api.ok("GET", "/api/v1/me/push-subscriptions", fay))["items"] == []
