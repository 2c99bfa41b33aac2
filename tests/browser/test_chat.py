"""Chat in a real browser: two people in one group; what one sends (Enter sends,
Shift+Enter starts a new line) appears on the other's open page without a reload, once
on each; the other sees "… is typing…" while the first types; the navigation's unread
badge counts a message that arrives elsewhere and clears once it is read; the panel fits
a 360 px phone."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from actors.chat.messages import conversation_id_for
from tests.browser.conftest import NewPage
from tests.browser.harness import LIVE_CONNECT_MS, Site, sign_in
from tests.browser.test_groups import verified
from tests.support.api import User


def group_of(site: Site, owner: User, *members: User) -> str:
    """A EUR group of `owner` with `members` in it, made through the JSON API."""
    made = site.call("POST", "/api/v1/groups", owner, {"name": "Lisbon", "currency": "EUR"})
    assert made.status == 201, made.body
    for member in members:
        added = site.call(
            "POST", f"/api/v1/groups/{made.body['id']}/members", owner, {"user_id": member.id}
        )
        assert added.status == 201, added.body
    return str(made.body["id"])


def open_chat(page: Page, group: str) -> None:
    """The group's Chat tab, once its panel listens on the live socket."""
    page.goto(f"/groups/{group}/chat")
    expect(page.locator("[data-chat]")).to_have_attribute(
        "data-live", "connected", timeout=LIVE_CONNECT_MS
    )


def chat_badge(page: Page) -> Locator:
    return page.locator("[data-chat-badge] .nav-badge")


def test_a_message_and_typing_arrive_live_and_the_badge_follows(
    page: Page, new_page: NewPage, site: Site
) -> None:
    """Bo, elsewhere, sees the Messages badge count Ana's message; on the Chat tab he sees
    her typing and her next message arrive in the same document (no reload), and it is
    read at once (the badge clears); Ana's own page shows each message once."""
    ana, bo = verified(site, "Ana"), verified(site, "Bo")
    group = group_of(site, ana, bo)
    sign_in(page, ana)
    open_chat(page, group)

    theirs = new_page(viewport={"width": 360, "height": 740})
    sign_in(theirs, bo)
    expect(theirs.locator("[data-chat-badge]")).to_have_attribute("data-refreshed", re.compile("."))
    expect(chat_badge(theirs)).to_be_hidden()

    # sent from another of Ana's devices (the API): her open page shows it too
    posted = site.call(
        "POST",
        f"/api/v1/conversations/{conversation_id_for('group', group)}/messages",
        ana,
        {"text": "Who has the keys?"},
    )
    assert posted.status == 201, posted.body
    expect(page.locator(".chat-message")).to_contain_text("Who has the keys?")
    expect(chat_badge(theirs)).to_have_text(re.compile(r"^1"))

    open_chat(theirs, group)
    expect(theirs.locator(".chat-message")).to_have_count(1)
    expect(theirs.locator(".chat-message")).to_contain_text("Who has the keys?")
    expect(chat_badge(theirs)).to_be_hidden()
    theirs.evaluate("window.sameDocument = true")

    box = page.get_by_label("Message")
    box.press_sequentially("I do", delay=20)
    expect(theirs.locator("[data-chat-typing]")).to_have_text("Ana is typing…")
    box.press("Shift+Enter")
    box.press_sequentially("and the map")
    box.press("Enter")
    expect(page.locator("[data-chat-status]")).to_have_text("Sent.")
    expect(box).to_have_value("")
    arrived = theirs.locator(".chat-message").nth(1)
    expect(arrived).to_contain_text("I do\nand the map")
    expect(arrived).to_contain_text("Ana")
    expect(theirs.locator("[data-chat-typing]")).to_have_text("")
    assert theirs.evaluate("window.sameDocument") is True
    expect(page.locator(".chat-message")).to_have_count(2)
    expect(page.locator(".chat-message", has_text="and the map")).to_have_count(1)
    # read while seen: the badge, asked again after the read marker, stays clear
    expect(chat_badge(theirs)).to_be_hidden()

    # Bo answers from the phone; the panel and the page fit 360 px
    theirs.get_by_label("Message").fill("Great, thanks")
    theirs.get_by_role("button", name="Send").click()
    expect(page.locator(".chat-message", has_text="Great, thanks")).to_have_count(1)
    expect(theirs.locator(".chat-message", has_text="Great, thanks")).to_have_count(1)
    width = theirs.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, width


def test_without_javascript_the_form_sends_and_comes_back(new_page: NewPage, site: Site) -> None:
    """With JavaScript off the message is sent by the form and the page shows it; an
    empty one is refused next to the box."""
    ana, bo = verified(site, "Ana"), verified(site, "Bo")
    group = group_of(site, ana, bo)
    plain = new_page(java_script_enabled=False)
    sign_in(plain, ana)
    plain.goto(f"/groups/{group}/chat")
    plain.get_by_role("button", name="Send").click()
    expect(plain.locator("#chat-text-error")).to_contain_text("cannot be empty")
    plain.get_by_label("Message").fill("No script needed")
    plain.get_by_role("button", name="Send").click()
    expect(plain).to_have_url(re.compile(rf"/groups/{group}/chat#chat$"))
    expect(plain.locator(".chat-message")).to_contain_text("No script needed")
