"""Chat in the web app over HTTP against a real node, as a browser without JavaScript
uses it: the group's Chat tab, an expense's and a settlement's panels, sending by the
form (post, redirect, get), refusals at the field, the rate limit, editing and deleting
one's own message on pages of their own, the messages page with unread counts and the
navigation's badge, and a conversation one is not in (404). Also the fragments the
page's script asks for."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio

from actors.chat.messages import RATE_BURST, TEXT_MAX, conversation_id_for
from tests.e2e.test_attachments import pdf, photo
from tests.e2e.test_pages_expenses import Page, Person, page_of
from tests.e2e.test_splits import add_expense, equal, expense_body, verify
from tests.support.api import PASSWORD, Api, User
from tests.support.node import RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    env = {"SPLITGO_JWT_KEYS": "chat-k1:chat-pages-signing-secret-long-enough-0123456789"}
    running = await start_node(tmp_path_factory.mktemp("pages-chat-node"), env=env)
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


@dataclass
class World:
    """Ana and Bo in the group "Lisbon" (Ana in a browser, Bo through the API), and Cy,
    who is in no group, in a browser of his own."""

    node: RunningNode
    api: Api
    ana: Person
    bo: User
    cy: Person
    group: str

    @property
    def group_chat(self) -> str:
        return conversation_id_for("group", self.group)


async def person(api: Api, node: RunningNode, name: str, browser: aiohttp.ClientSession) -> Person:
    """A verified account, signed in through the sign-in form in `browser`."""
    user = await api.register(f"c{secrets.token_hex(5)}@example.com", name=name)
    await verify(api, node, user)
    signed_in = Person(user, browser, node.url)
    form = await signed_in.get("/sign-in")
    answer = await signed_in.send(form, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert answer.status == 303, answer.html
    return signed_in


def browser_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Accept": "text/html"}
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(node: RunningNode, api: Api) -> AsyncIterator[World]:
    async with browser_session() as ana_browser, browser_session() as cy_browser:
        ana = await person(api, node, "Ana Silva", ana_browser)
        cy = await person(api, node, "Cy Chen", cy_browser)
        bo = await api.register(f"c{secrets.token_hex(5)}@example.com", name="Bo Berg")
        group = await api.ok(
            "POST", "/api/v1/groups", ana.user, {"name": "Lisbon", "currency": "EUR"}, 201
        )
        await api.ok(
            "POST", f"/api/v1/groups/{group['id']}/members", ana.user, {"user_id": bo.id}, 201
        )
        yield World(node, api, ana, bo, cy, group["id"])


async def api_post(world: World, user: User, conversation: str, text: str) -> dict[str, str]:
    # the conversation exists once someone opened it (the page does, or this)
    posted: dict[str, str] = await world.api.ok(
        "POST", f"/api/v1/conversations/{conversation}/messages", user, {"text": text}, 201
    )
    return posted


def words(html: str) -> str:
    """The page's text in one line (tags dropped), for reading sentences."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def panel_text(page: Page) -> str:
    return " ".join(page.texts.get("chat", "").split())


async def test_a_message_sent_by_the_form_shows_on_the_chat_tab(world: World) -> None:
    """The group's Chat tab has a labelled message box; sending by the form redirects
    back to the tab, which then shows the message with its author's name beside Bo's
    (posted through the API), Edit and Delete only on Ana's own; Bo's history has it."""
    tab = await world.ana.get(f"/groups/{world.group}/chat")
    assert tab.status == 200, tab.html
    action = f"/groups/{world.group}/chat"
    assert action in tab.forms
    assert tab.inputs["text"]["id"] == "chat-text"
    assert "chat-text" in tab.labels
    assert 'aria-current="page">Chat<' in tab.html
    await api_post(world, world.bo, world.group_chat, "Who paid for the taxi?")

    sent = await world.ana.send(tab, action, {"text": "I did, 12 euros"})
    assert sent.status == 303
    assert sent.headers["Location"] == f"/groups/{world.group}/chat#chat"
    shown = await world.ana.get(f"/groups/{world.group}/chat")
    text = panel_text(shown)
    assert "Bo Berg" in text
    assert "Who paid for the taxi?" in text
    assert "Ana Silva" in text
    assert "I did, 12 euros" in text
    assert text.index("Who paid for the taxi?") < text.index("I did, 12 euros")
    assert "Message sent." in words(shown.html)
    assert shown.html.count("/edit?next=") == 1  # Ana's own message only

    history = await world.api.ok(
        "GET", f"/api/v1/conversations/{world.group_chat}/messages", world.bo
    )
    assert history["items"][0]["text"] == "I did, 12 euros"
    assert history["items"][0]["author_id"] == world.ana.user.id


async def test_a_double_submit_of_one_form_posts_once(world: World) -> None:
    """The same form sent twice (its idempotency key) makes one message."""
    tab = await world.ana.get(f"/groups/{world.group}/chat")
    action = f"/groups/{world.group}/chat"
    first = await world.ana.send(tab, action, {"text": "Only once, please"})
    second = await world.ana.send(tab, action, {"text": "Only once, please"})
    assert first.status == second.status == 303
    history = await world.api.ok(
        "GET", f"/api/v1/conversations/{world.group_chat}/messages", world.bo
    )
    assert [m["text"] for m in history["items"]].count("Only once, please") == 1


async def test_empty_and_too_long_messages_are_refused_at_the_field(world: World) -> None:
    """An empty message and one past 4,000 characters (even far past) come back as the
    tab itself with the refusal in words next to the box, what was typed kept."""
    tab = await world.ana.get(f"/groups/{world.group}/chat")
    action = f"/groups/{world.group}/chat"
    empty = await world.ana.send(tab, action, {"text": "   "})
    assert empty.status == 422
    assert "cannot be empty" in empty.texts["chat-text-error"]
    assert empty.inputs["text"]["aria-invalid"] == "true"
    for size in (TEXT_MAX + 1, 3 * TEXT_MAX):
        long = await world.ana.send(tab, action, {"text": "x" * size})
        assert long.status == 422
        assert "at most 4,000 characters" in long.texts["chat-text-error"]
        assert long.inputs["text"]["text"].strip() == "x" * size


async def test_posting_too_fast_says_so_on_the_page(world: World, node: RunningNode) -> None:
    """Past the burst of messages, the form's answer is a 429 saying to wait, with
    Retry-After, and what was typed kept."""
    async with browser_session() as browser:
        dee = await person(world.api, node, "Dee Dias", browser)
        await world.api.ok(
            "POST",
            f"/api/v1/groups/{world.group}/members",
            world.ana.user,
            {"user_id": dee.user.id},
            201,
        )
        tab = await dee.get(f"/groups/{world.group}/chat")
        assert tab.status == 200, tab.html
        for number in range(RATE_BURST):
            await api_post(world, dee.user, world.group_chat, f"flood {number}")
        refused = await dee.send(tab, f"/groups/{world.group}/chat", {"text": "one more"})
    assert refused.status == 429
    assert "Retry-After" in refused.headers
    assert "posting too fast" in refused.texts["chat-refused"]
    assert refused.inputs["text"]["text"].strip() == "one more"


async def test_the_expense_and_settlement_pages_have_their_own_panels(world: World) -> None:
    """An expense's page and a settlement's page each show their own conversation; a
    message sent on one shows there and not in the group's chat."""
    expense = await add_expense(
        world.api,
        world.group,
        world.bo,
        expense_body(4000, world.bo.id, equal(world.ana.user, world.bo)),
    )
    path = f"/groups/{world.group}/expenses/{expense['id']}"
    page = await world.ana.get(path)
    assert page.status == 200, page.html
    assert "Chat about this expense" in panel_text(page)
    sent = await world.ana.send(page, f"{path}/chat", {"text": "Thanks for dinner!"})
    assert sent.status == 303
    assert sent.headers["Location"] == f"{path}#chat"
    assert "Thanks for dinner!" in panel_text(await world.ana.get(path))
    assert "Thanks for dinner!" not in panel_text(
        await world.ana.get(f"/groups/{world.group}/chat")
    )

    paid = await world.api.ok(
        "POST",
        f"/api/v1/groups/{world.group}/settlements",
        world.ana.user,
        {"to_user_id": world.bo.id, "amount": 2000, "currency": "EUR", "method": "cash"},
        201,
    )
    here = f"/groups/{world.group}/settlements/{paid['id']}"
    activity = await world.ana.get(f"/groups/{world.group}/activity")
    assert f'href="{here}"' in activity.html
    settlement = await world.ana.get(here)
    assert settlement.status == 200, settlement.html
    assert "About this payment" in panel_text(settlement)
    assert "Paid" in words(settlement.html)
    answered = await world.ana.send(settlement, here, {"text": "Sent you the cash"})
    assert answered.status == 303
    assert "Sent you the cash" in panel_text(await world.ana.get(here))


async def test_editing_and_deleting_your_message_on_their_pages(world: World) -> None:
    """Ana edits her message on its edit page (shown as edited with the new words) and
    deletes it after a confirmation (shown as deleted, its words gone); Bo's message
    offers her no edit form."""
    tab = await world.ana.get(f"/groups/{world.group}/chat")
    await world.ana.send(tab, f"/groups/{world.group}/chat", {"text": "Lunch was 30"})
    tab = await world.ana.get(f"/groups/{world.group}/chat")
    edit_links = re.findall(r'href="(/messages/[^"]+/(\d+)/edit\?next=[^"]+)"', tab.html)
    link, seq = edit_links[-1]
    edit_page = await world.ana.get(link.replace("&amp;", "&"))
    assert edit_page.status == 200, edit_page.html
    assert edit_page.inputs["text"]["text"] == "Lunch was 30"
    action = f"/messages/{world.group_chat}/{seq}/edit"
    blank = await world.ana.send(edit_page, action, {"text": ""})
    assert blank.status == 422
    assert "cannot be empty" in blank.texts["f-text-error"]
    edited = await world.ana.send(edit_page, action, {"text": "Lunch was 32"})
    assert edited.status == 303
    assert edited.headers["Location"].startswith(f"/groups/{world.group}/chat#m-")
    after = panel_text(await world.ana.get(f"/groups/{world.group}/chat"))
    assert "Lunch was 32 " in after + " "
    assert "edited" in after
    assert "Lunch was 30" not in after

    confirm = await world.ana.get(f"/messages/{world.group_chat}/{seq}/delete")
    assert confirm.status == 200
    assert "Lunch was 32" in words(confirm.html)
    deleted = await world.ana.send(confirm, f"/messages/{world.group_chat}/{seq}/delete", {})
    assert deleted.status == 303
    gone = panel_text(await world.ana.get(f"/messages/{world.group_chat}"))
    assert "This message was deleted." in gone
    assert "Lunch was 32" not in gone

    theirs = await api_post(world, world.bo, world.group_chat, "Mine, not yours")
    history = await world.api.ok(
        "GET", f"/api/v1/conversations/{world.group_chat}/messages", world.bo
    )
    bo_seq = next(m["seq"] for m in history["items"] if m["id"] == theirs["id"])
    not_hers = await world.ana.get(f"/messages/{world.group_chat}/{bo_seq}/edit")
    assert "text" not in not_hers.inputs
    assert "Only its author may change a message." in words(not_hers.html)


async def test_the_messages_page_lists_conversations_with_unread_counts(world: World) -> None:
    """Bo's two new messages show on Ana's messages page as 2 unread with a preview of the
    last, and on her navigation's badge; opening the conversation reads them (0 after)."""
    await world.ana.get(f"/groups/{world.group}/chat")  # everything so far is read
    await api_post(world, world.bo, world.group_chat, "Are we")
    await api_post(world, world.bo, world.group_chat, "going to the beach tomorrow?")
    listed = await world.ana.get("/messages")
    assert listed.status == 200, listed.html
    row = re.search(
        rf'<li class="row conversation has-unread" data-conversation="{world.group_chat}">'
        r"(.*?)</li>",
        listed.html,
        re.S,
    )
    assert row is not None, listed.html
    assert 'data-unread="2"' in row[1]
    assert "Lisbon" in words(row[1])
    assert "Bo Berg: going to the beach tomorrow?" in words(row[1])
    assert "2 unread messages." in listed.texts["chat-total"]
    badge = await world.ana.get("/messages/badge")
    assert 'data-unread="2"' in badge.html

    opened = await world.ana.get(f"/messages/{world.group_chat}")
    assert opened.status == 200
    assert "going to the beach tomorrow?" in panel_text(opened)
    assert 'data-unread="0"' in (await world.ana.get("/messages/badge")).html
    assert "Nothing unread." in (await world.ana.get("/messages")).texts["chat-total"]


async def test_no_conversations_yet_says_what_to_do(world: World) -> None:
    """Someone in no conversation sees the empty state with a way to their groups."""
    empty = await world.cy.get("/messages")
    assert empty.status == 200
    assert "No conversations yet" in words(empty.html)
    assert 'href="/groups"' in empty.html


async def test_a_conversation_you_are_not_in_is_not_found(world: World) -> None:
    """Cy, in no group with them, gets 404 pages for the group's conversation, its rows,
    its form and its group's Chat tab."""
    assert (await world.cy.get(f"/messages/{world.group_chat}")).status == 404
    assert (await world.cy.get(f"/messages/{world.group_chat}/rows?after=0")).status == 404
    assert (await world.cy.get(f"/groups/{world.group}/chat")).status == 404
    tab = await world.ana.get(f"/groups/{world.group}/chat")
    guard = [(k, v) for k, v in tab.forms[f"/groups/{world.group}/chat"] if k != "csrf_token"]
    own = await world.cy.get("/messages")  # Cy's own CSRF token
    token = re.search(r'name="csrf_token" value="([^"]+)"', own.html)
    assert token is not None
    async with world.cy.browser.post(
        f"{world.cy.url}/messages/{world.group_chat}",
        data=[*guard, ("csrf_token", token[1]), ("text", "let me in")],
        allow_redirects=False,
    ) as response:
        assert response.status == 404


async def test_the_script_gets_rows_and_refusals_as_fragments(world: World) -> None:
    """Sent by the page's script, a message is answered 201 with its row (and a fresh key
    for the next), a refusal with the form showing it; rows after a seq come in order."""
    tab = await world.ana.get(f"/groups/{world.group}/chat")
    sent = [(k, v) for k, v in tab.forms[f"/groups/{world.group}/chat"] if k != "text"]
    headers = {"X-Requested-With": "chat"}
    async with world.ana.browser.post(
        f"{world.ana.url}/groups/{world.group}/chat",
        data=[*sent, ("text", "By script")],
        headers=headers,
        allow_redirects=False,
    ) as response:
        row = await page_of(response)
        assert response.status == 201
        assert response.headers.get("X-Form-Key")
    seq = int(re.search(r'data-seq="(\d+)"', row.html)[1])  # type: ignore[index]
    assert "By script" in row.html
    assert "<form" not in row.html
    async with world.ana.browser.post(
        f"{world.ana.url}/groups/{world.group}/chat",
        data=[*sent, ("text", "")],
        headers=headers,
        allow_redirects=False,
    ) as response:
        refused = await page_of(response)
    assert refused.status == 422
    assert "cannot be empty" in refused.texts["chat-text-error"]
    assert "<html" not in refused.html

    await api_post(world, world.bo, world.group_chat, "After the script")
    rows = await world.ana.get(f"/messages/{world.group_chat}/rows?after={seq - 1}")
    found = [int(n) for n in re.findall(r'data-seq="(\d+)"', rows.html)]
    assert found == [seq, seq + 1]
    assert "After the script" in rows.html


async def test_load_older_pages_back_through_the_history(world: World) -> None:
    """With more messages than a panel shows, the newest 30 come oldest first with a
    "Load older messages" link, which shows the ones before them and a way back."""
    eve = await world.api.register(f"c{secrets.token_hex(5)}@example.com", name="Eve")
    fay = await world.api.register(f"c{secrets.token_hex(5)}@example.com", name="Fay")
    group = await world.api.ok(
        "POST", "/api/v1/groups", world.ana.user, {"name": "Porto", "currency": "EUR"}, 201
    )
    for member in (eve, fay):
        await world.api.ok(
            "POST",
            f"/api/v1/groups/{group['id']}/members",
            world.ana.user,
            {"user_id": member.id},
            201,
        )
    tab_path = f"/groups/{group['id']}/chat"
    assert (await world.ana.get(tab_path)).status == 200  # opens the conversation
    conversation = conversation_id_for("group", group["id"])
    for number in range(16):  # two people: within each one's burst
        await api_post(world, eve, conversation, f"eve {number}")
        await api_post(world, fay, conversation, f"fay {number}")
    newest = await world.ana.get(tab_path)
    seqs = [int(n) for n in re.findall(r'data-seq="(\d+)"', newest.html)]
    assert seqs == list(range(3, 33))
    older = re.search(r'href="([^"]+\?before=3#chat)">Load older messages<', newest.html)
    assert older is not None, newest.html
    before = await world.ana.get(older[1].split("#")[0])
    assert [int(n) for n in re.findall(r'data-seq="(\d+)"', before.html)] == [1, 2]
    assert "Load older messages" not in before.html
    assert "Back to the newest messages" in before.html


async def send_with_photo(
    person: Person, page: Page, action: str, text: str, filename: str, content: bytes
) -> Page:
    """The chat form sent as a browser sends it with a file chosen: multipart/form-data."""
    data = aiohttp.FormData()
    for name, value in page.forms[action]:
        if name not in ("text", "file"):
            data.add_field(name, value or "")
    data.add_field("text", text)
    data.add_field("file", content, filename=filename, content_type="application/octet-stream")
    async with person.browser.post(
        f"{person.url}{action}", data=data, allow_redirects=False
    ) as response:
        return await page_of(response)


async def test_a_photo_or_a_pdf_goes_with_a_message_and_other_files_are_refused(
    world: World,
) -> None:
    """The form has a labelled file input; a photo sent with it shows on the tab as a
    link to the conversation's file, which opens for the participant, and so does a PDF;
    a file that is neither comes back at the file input with what was typed, and nothing
    is posted."""
    action = f"/groups/{world.group}/chat"
    tab = await world.ana.get(action)
    assert tab.inputs["file"]["id"] == "chat-file"
    assert "chat-file" in tab.labels
    sent = await send_with_photo(world.ana, tab, action, "the receipt", "r.jpg", photo("JPEG"))
    assert sent.status == 303, sent.html
    shown = await world.ana.get(action)
    link = re.search(rf'href="(/messages/{world.group_chat}/attachments/[^"?]+)"', shown.html)
    assert link is not None, shown.html
    opened = await world.ana.browser.get(f"{world.node.url}{link.group(1)}")
    assert opened.status == 200
    assert opened.headers["Content-Type"].startswith("image/")
    history = await world.api.ok(
        "GET", f"/api/v1/conversations/{world.group_chat}/messages", world.bo
    )
    assert history["items"][0]["text"] == "the receipt"
    assert len(history["items"][0]["attachments"]) == 1

    invoice = await send_with_photo(world.ana, shown, action, "the invoice", "bill.pdf", pdf())
    assert invoice.status == 303, invoice.html
    shown = await world.ana.get(action)
    assert "bill.pdf" in shown.html
    refused = await send_with_photo(world.ana, shown, action, "and notes", "a.pdf", b"plain words")
    assert refused.status == 422, refused.html
    assert refused.texts["chat-file-error"].strip(), refused.html
    assert refused.inputs["file"]["aria-invalid"] == "true"
    assert refused.inputs["text"]["text"].strip() == "and notes"
    after = await world.api.ok(
        "GET", f"/api/v1/conversations/{world.group_chat}/messages", world.bo
    )
    assert after["items"][0]["text"] == "the invoice"
    assert after["items"][0]["attachments"][0]["content_type"] == "application/pdf"


async def test_a_member_s_message_button_opens_a_direct_conversation(world: World) -> None:
    """The members list offers Message beside everyone but oneself; it opens the direct
    conversation with that person, titled by their name here and on the messages page,
    the same one the API opens; writing to oneself is refused."""
    members = await world.ana.get(f"/groups/{world.group}/members")
    assert members.status == 200, members.html
    assert f'name="user_id" value="{world.bo.id}"' in members.html
    assert f'name="user_id" value="{world.ana.user.id}"' not in members.html
    opened = await world.ana.send(members, "/messages/direct", {"user_id": world.bo.id})
    assert opened.status == 303, opened.html
    direct = conversation_id_for("direct", world.bo.id, world.ana.user.id)
    assert opened.headers["Location"] == f"/messages/{direct}#chat"
    page = await world.ana.get(f"/messages/{direct}")
    assert "<h1>Bo Berg</h1>" in page.html
    sent = await world.ana.send(page, f"/messages/{direct}", {"text": "just between us"})
    assert sent.status == 303
    listed = await world.ana.get("/messages")
    assert "Bo Berg" in words(listed.html)
    bo_side = await world.api.ok(
        "POST", "/api/v1/conversations", world.bo, {"user_id": world.ana.user.id}
    )
    assert bo_side["id"] == direct
    myself = await world.ana.send(members, "/messages/direct", {"user_id": world.ana.user.id})
    assert myself.status == 422
