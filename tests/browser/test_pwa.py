"""Installable in a real browser: every page links a valid manifest, the service worker
registers, activates and takes the page over, and with the network gone a reload shows
the offline page from the worker's cache (never a signed-in page). The push devices page
loads its module and removes a device. (Subscribing needs a real push service, which
Chromium cannot reach here: the node's side is tested against a fake one in
tests/e2e/test_web_push.py.)"""

from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Page, expect

from actors.notifications.channels.webpush import b64u, public_bytes
from tests.browser.harness import Site, sign_in

WORKER_READY = """async () => {
  const registration = await navigator.serviceWorker.ready;
  return { scope: registration.scope, state: registration.active && registration.active.state };
}"""
# evaluated (awaited), not polled: wait_for_function takes an async function's promise for
# a truthy answer at once
ACTIVATED = """async () => {
  const registration = await navigator.serviceWorker.ready;
  const worker = registration.active;
  while (worker.state !== "activated") {
    await new Promise((resolve) => worker.addEventListener("statechange", resolve, { once: true }));
  }
  return true;
}"""
CONTROLLED = "() => navigator.serviceWorker.controller !== null"
SHELL_CACHED = """async () => {
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    const urls = (await cache.keys()).map((request) => new URL(request.url).pathname);
    if (urls.includes("/offline")) return urls;
  }
  return [];
}"""


def test_the_manifest_is_linked_and_valid(page: Page, site: Site) -> None:
    """The welcome page links /manifest.webmanifest, which is JSON with a name, a start
    URL and icons of 192 and 512 pixels that the browser can load."""
    page.goto("/")
    href = page.locator("link[rel=manifest]").get_attribute("href")
    assert href == "/manifest.webmanifest"
    answer = page.request.get(href)
    assert answer.ok
    manifest = json.loads(answer.text())
    assert manifest["name"] == "splitgo"
    assert manifest["start_url"] == "/home"
    assert {"192x192", "512x512"} <= {icon["sizes"] for icon in manifest["icons"]}
    for icon in manifest["icons"]:
        assert page.request.get(icon["src"]).ok


def test_the_worker_activates_and_an_offline_reload_shows_the_offline_page(
    page: Page, site: Site
) -> None:
    """The worker registers for the whole site and activates; it has cached the shell
    (the offline page, our CSS) and no signed-in page; offline, a reload shows "You are
    offline" styled by the cached CSS; back online, the page itself returns."""
    page.goto("/")
    assert page.evaluate(ACTIVATED)
    worker = page.evaluate(WORKER_READY)
    assert worker["scope"] == site.url.rstrip("/") + "/"
    assert worker["state"] == "activated"
    page.wait_for_function(CONTROLLED)
    cached = page.evaluate(SHELL_CACHED)
    assert "/offline" in cached
    assert any(url.startswith("/static/app.") and url.endswith(".css") for url in cached)
    assert not any(url in ("/", "/home", "/account") for url in cached)

    page.context.set_offline(True)
    try:
        page.reload()
        heading = page.get_by_role("heading", level=1)
        assert heading.inner_text() == "You are offline"
        # the cached stylesheet applies: the brand's mark is drawn, not a bare document
        assert page.evaluate("() => document.styleSheets.length") >= 1
        assert page.locator(".site-header").is_visible()
    finally:
        page.context.set_offline(False)
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() != "You are offline"


def test_the_push_devices_page_lists_and_removes_a_device(page: Page, site: Site) -> None:
    """A device subscribed through the API is listed by name on /account/push, with the
    button that turns push on here; Remove takes it off the page and out of the API."""
    user = site.register("Gus")
    browser_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    subscription = {
        "endpoint": "https://push.example.com/wpush/" + b64u(os.urandom(12)),
        "keys": {"p256dh": b64u(public_bytes(browser_key)), "auth": b64u(os.urandom(16))},
        "label": "Gus's tablet",
    }
    made = site.call("POST", "/api/v1/me/push-subscriptions", user, subscription)
    assert made.status == 201, made.body
    sign_in(page, user)
    page.goto("/account/push")
    expect(page.get_by_role("button", name="Turn on in this browser")).to_be_visible()
    device = page.locator(f"[data-endpoint='{subscription['endpoint']}']")
    expect(device).to_contain_text("Gus's tablet")
    expect(device.locator(".this-browser")).to_be_hidden()
    device.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status").first).to_contain_text("no longer gets notifications")
    expect(page.get_by_text("No devices yet")).to_be_visible()
    listed = site.call("GET", "/api/v1/me/push-subscriptions", user)
    assert listed.body["items"] == []
