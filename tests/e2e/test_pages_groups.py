"""The web app's groups, members, invitations and links over HTTP against a real node, as a
browser without JavaScript uses them: create a group through the form, invite by email and
accept on the mail's page, add a placeholder and claim it through its link, refusals in
words (leaving with a balance), rename and archive, and one group for a double submit."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage

import aiohttp
import pytest
import pytest_asyncio

from splitgo.web.hardening import PAGES_CSP
from tests.e2e.test_pages_auth import Page, submit, visit
from tests.e2e.test_splits import equal, expense_body, verify
from tests.support.api import Api, User, eventually
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.smtp import body_text

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "correct horse battery staple 42"  # tests.support.api registers with it


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    env = {"SPLITGO_JWT_KEYS": "groups-k1:groups-pages-signing-secret-long-enough-0123456789"}
    running = await start_node(tmp_path_factory.mktemp("pages-groups-node"), env=env)
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


@dataclass
class Person:
    """An account and a browser (without JavaScript) signed in as it."""

    user: User
    browser: aiohttp.ClientSession


@pytest_asyncio.fixture(loop_scope="module")
async def people() -> AsyncIterator[list[aiohttp.ClientSession]]:
    """Browsers to sign people into; closed at the test's end."""
    sessions: list[aiohttp.ClientSession] = []
    yield sessions
    for session in sessions:
        await session.close()


async def person(
    node: RunningNode,
    api: Api,
    people: list[aiohttp.ClientSession],
    name: str,
    *,
    verified: bool = True,
) -> Person:
    """A new account (verified by its mail's link unless told) signed in through the form."""
    user = await api.register(f"g{secrets.token_hex(5)}@example.com", name=name)
    if verified:
        await verify(api, node, user)
    browser = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Accept": "text/html"}
    )
    people.append(browser)
    form = await visit(browser, f"{node.url}/sign-in")
    home = await submit(browser, form, "/sign-in", {"email": user.email, "password": PASSWORD})
    assert home.status == 200, home.html
    return Person(user, browser)


async def post(who: Person, page: Page, action: str, values: dict[str, str]) -> Page:
    """Send the form of `action` on `page` without following the answer's redirect."""
    return await submit(who.browser, page, action, values, allow_redirects=False)


async def create_group(node: RunningNode, who: Person, name: str = "Lisbon") -> str:
    """A group made through the /groups form; its id."""
    form = await visit(who.browser, f"{node.url}/groups")
    made = await post(who, form, "/groups", {"name": name, "currency": "EUR"})
    assert made.status == 303, made.html
    found = re.fullmatch(r"/groups/([0-9a-f-]+)", made.headers["Location"])
    assert found is not None, made.headers["Location"]
    return found[1]


async def invite_link(node: RunningNode, address: str) -> str:
    """The /invites/{iid} link of the invitation mailed to `address` (DATA_DIR/mail)."""
    for _ in range(200):
        for path in sorted((node.folder / "data" / "mail").glob("*.eml")):
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(mail, EmailMessage)
            found = re.search(r"https?://\S+(/invites/[\w.-]+)", body_text(mail))
            if address in str(mail["To"]) and found:
                return found[1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no invitation mail for {address}")


async def test_groups_list_create_and_the_group_shell(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """An empty /groups says what to do; the form makes a group (the creator its member,
    settled), which the list shows with its member count and the shell with its tabs."""
    ana = await person(node, api, people, "Ana Silva")
    empty = await visit(ana.browser, f"{node.url}/groups")
    assert empty.status == 200
    assert "No groups yet" in empty.html
    assert "f-currency" in empty.labels
    assert "f-name" in empty.labels

    refused = await submit(ana.browser, empty, "/groups", {"name": "  ", "currency": "EUR"})
    assert refused.status == 422
    assert refused.field("name")["aria-invalid"] == "true"

    group = await create_group(node, ana)
    listed = await visit(ana.browser, f"{node.url}/groups")
    assert "Lisbon" in listed.html
    assert "1 member" in listed.html
    assert "Your group is ready" in listed.html or f"/groups/{group}" in listed.html
    shell = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    assert shell.status == 200, shell.html
    assert "All settled" in shell.html
    for tab in ("", "/balances", "/activity", "/members"):
        assert f'href="/groups/{group}{tab}"' in shell.html
    assert 'aria-current="page">Members' in shell.html
    assert "Ana Silva" in shell.html
    activity = await visit(ana.browser, f"{node.url}/groups/{group}/activity")
    assert activity.status == 200
    assert "Ana Silva" in activity.html  # the creation, by name

    stranger = await person(node, api, people, "Stranger")
    hidden = await visit(stranger.browser, f"{node.url}/groups/{group}/members")
    assert hidden.status == 404


async def test_a_double_submit_makes_one_group_and_csrf_is_checked(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """The same form sent twice (its idempotency key) makes one group and lands on it both
    times; a form without its CSRF token is refused and makes none."""
    bo = await person(node, api, people, "Bo")
    form = await visit(bo.browser, f"{node.url}/groups")
    first = await post(bo, form, "/groups", {"name": "Flat", "currency": "EUR"})
    second = await post(bo, form, "/groups", {"name": "Flat", "currency": "EUR"})
    assert first.status == second.status == 303
    assert first.headers["Location"] == second.headers["Location"]
    found = await api.ok("GET", "/api/v1/groups", bo.user)
    assert [group["name"] for group in found["items"]] == ["Flat"]
    async with bo.browser.post(
        f"{node.url}/groups", data={"name": "Forged", "currency": "EUR"}
    ) as response:
        assert response.status == 403
    found = await api.ok("GET", "/api/v1/groups", bo.user)
    assert len(found["items"]) == 1


async def test_invite_by_email_then_accept_on_the_invitation_page(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """A member invites an address through the Members tab; signed out, the mail's page
    says to sign in and come back; its owner sees it waiting on /groups and /invites and
    accepts on the mail's page, landing in the group, which then lists them."""
    ana = await person(node, api, people, "Ana")
    bo = await person(node, api, people, "Bo Invitee")
    group = await create_group(node, ana, "Porto")
    tab = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    bad = await submit(ana.browser, tab, f"/groups/{group}/invites", {"email": "nope"})
    assert bad.status == 422
    assert bad.field("email")["value"] == "nope"
    assert "f-email-error" in bad.field("email")["aria-describedby"]
    sent = await submit(ana.browser, tab, f"/groups/{group}/invites", {"email": bo.user.email})
    assert sent.status == 200, sent.html
    assert "The invitation is sent." in sent.html
    assert bo.user.email in sent.html
    assert "Withdraw" in sent.html

    link = await invite_link(node, bo.user.email)
    async with aiohttp.ClientSession(headers={"Accept": "text/html"}) as anonymous:
        outside = await visit(anonymous, f"{node.url}{link}")
    assert outside.status == 200
    assert "/sign-in?next=" in outside.html
    assert "Sign up" in outside.html

    groups = await visit(bo.browser, f"{node.url}/groups")
    assert "Invitations" in groups.html
    waiting = await visit(bo.browser, f"{node.url}/invites")
    assert "Porto" in waiting.html
    assert "Ana invited you" in waiting.html
    page = await visit(bo.browser, f"{node.url}{link}")
    assert page.status == 200
    assert "Join Porto?" in page.html
    assert "Ana" in page.html
    iid = link.rsplit("/", 1)[1]
    joined = await post(bo, page, f"/invites/{iid}/accept", {})
    assert joined.status == 303
    assert joined.headers["Location"] == f"/groups/{group}"
    members = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    assert "Bo Invitee" in members.html
    assert "No invitations waiting" in members.html
    again = await visit(bo.browser, f"{node.url}{link}")
    assert again.status == 404  # answered: it no longer waits


async def test_a_placeholder_is_claimed_through_its_link(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """A placeholder added by name is marked as having no account; its claim link (shown
    once) lets a verified person join in its place; an unverified one is told to verify."""
    ana = await person(node, api, people, "Ana")
    cy = await person(node, api, people, "Cy Claimer")
    group = await create_group(node, ana, "Cabin")
    tab = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    added = await submit(ana.browser, tab, f"/groups/{group}/placeholders", {"name": "Sam"})
    assert added.status == 200
    assert "Sam" in added.html
    assert "No account yet" in added.html
    placeholder = re.search(rf"/groups/{group}/placeholders/([0-9a-f-]+)/claim-link", added.html)
    assert placeholder is not None
    shown = await submit(ana.browser, added, placeholder[0], {})
    assert shown.status == 201
    link = next(i["value"] for i in shown.inputs if i.get("id") == "f-new-link")
    assert "/join/" in link
    assert "Sam" in shown.ids["new-link"]
    path = "/join/" + link.split("/join/")[1]

    late = await person(node, api, people, "Unverified", verified=False)
    told = await visit(late.browser, f"{node.url}{path}")
    assert "Verify your email address first" in told.html

    page = await visit(cy.browser, f"{node.url}{path}")
    assert page.status == 200
    joined = await post(cy, page, path, {})
    assert joined.status == 303
    assert joined.headers["Location"] == f"/groups/{group}"
    members = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    assert "Cy Claimer" in members.html
    assert "No account yet" not in members.html
    used = await submit(cy.browser, page, path, {})
    assert used.status in (404, 409)
    assert "There is a problem" in used.html


async def test_leave_is_refused_with_a_balance_and_settings_rename_and_archive(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """Leaving with a balance is refused in words (and the header says what they owe);
    rename changes the name; archive hides the group from the list and shows the badge,
    and bringing it back returns it; a settled member may leave."""
    ana = await person(node, api, people, "Ana")
    dee = await person(node, api, people, "Dee")
    group = await create_group(node, ana, "Road trip")
    await api.ok("POST", f"/api/v1/groups/{group}/members", ana.user, {"user_id": dee.user.id}, 201)
    body = expense_body(3000, ana.user.id, equal(ana.user, dee.user))
    await api.ok("POST", f"/api/v1/groups/{group}/expenses", ana.user, body, 201)
    tab = await visit(dee.browser, f"{node.url}/groups/{group}/members")
    assert re.search(r"You owe\s*<span class=\"money is-owing\">€15\.00", tab.html), tab.html
    refused = await submit(dee.browser, tab, f"/groups/{group}/leave", {})
    assert refused.status == 409
    assert "You cannot leave yet: you owe €15.00 in this group." in refused.html
    assert dee.user.id not in refused.html  # people, never ids
    owed = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    assert "You are owed" in owed.html

    renamed = await submit(ana.browser, owed, f"/groups/{group}/settings", {"name": "Alps"})
    assert renamed.status == 200
    assert "<h1>Alps</h1>" in renamed.html
    archived = await submit(ana.browser, renamed, f"/groups/{group}/settings", {"archived": "true"})
    assert "Archived" in archived.html
    assert "Bring back" in archived.html
    active = await visit(ana.browser, f"{node.url}/groups")
    assert "Alps" not in active.html
    shelf = await visit(ana.browser, f"{node.url}/groups?archived=true")
    assert "Alps" in shelf.html
    back = await submit(ana.browser, archived, f"/groups/{group}/settings", {"archived": "false"})
    assert "Bring back" not in back.html
    assert "Alps" in (await visit(ana.browser, f"{node.url}/groups")).html

    lone = await create_group(node, dee, "Solo")
    tab = await visit(dee.browser, f"{node.url}/groups/{lone}/members")
    confirm = await visit(dee.browser, f"{node.url}/groups/{lone}/delete")
    assert confirm.status == 200
    assert "cannot be undone" in confirm.html
    gone = await post(dee, confirm, f"/groups/{lone}/delete", {})
    assert gone.status == 303
    assert gone.headers["Location"] == "/groups"
    missing = await api.call("GET", f"/api/v1/groups/{lone}", dee.user)
    assert missing.status == 404


async def test_join_links_made_shown_once_and_revoked(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """A join link made on the Members tab is shown once, lets a verified person join, is
    listed with its uses, and once revoked no longer works."""
    ana = await person(node, api, people, "Ana")
    eve = await person(node, api, people, "Eve Joiner")
    fay = await person(node, api, people, "Fay Late")
    group = await create_group(node, ana, "Choir")
    tab = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    made = await submit(
        ana.browser, tab, f"/groups/{group}/join-links", {"expires_in": "86400", "max_uses": "5"}
    )
    assert made.status == 201
    link = next(i["value"] for i in made.inputs if i.get("id") == "f-new-link")
    path = "/join/" + link.split("/join/")[1]
    page = await visit(eve.browser, f"{node.url}{path}")
    joined = await post(eve, page, path, {})
    assert joined.status == 303

    async def listed() -> Page:
        return await visit(ana.browser, f"{node.url}/groups/{group}/members")

    members = await eventually(listed, lambda p: "Eve Joiner" in p.html, what="Eve joined")
    assert "used 1 of 5" in members.html
    revoke = re.search(rf"/groups/{group}/join-links/[^/\"]+/revoke", members.html)
    assert revoke is not None
    revoked = await submit(ana.browser, members, revoke[0], {})
    assert "No join links" in revoked.html
    late = await visit(fay.browser, f"{node.url}{path}")
    refused = await post(fay, late, path, {})
    assert refused.status == 404
    assert "There is a problem" in refused.html


async def test_the_live_socket_signs_in_by_cookie_and_fragments_render_regions(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """GET /live opens a WebSocket for the session's person (hello, then a frame when an
    expense of theirs is added), refuses a page of another origin and anyone signed out;
    the balance and members fragments render what the regions show."""
    ana = await person(node, api, people, "Ana")
    gus = await person(node, api, people, "Gus Live")
    group = await create_group(node, ana, "Band")
    await api.ok("POST", f"/api/v1/groups/{group}/members", ana.user, {"user_id": gus.user.id}, 201)
    socket = await gus.browser.ws_connect(f"{node.url}/live", headers={"Origin": node.url})
    try:
        hello = await socket.receive_json(timeout=10)
        assert hello == {"type": "hello", "user_id": gus.user.id}
        body = expense_body(1000, ana.user.id, equal(ana.user, gus.user))
        await api.ok("POST", f"/api/v1/groups/{group}/expenses", ana.user, body, 201)
        frame = await socket.receive_json(timeout=10)
        while frame["notification"]["kind"] != "ExpenseAdded":
            frame = await socket.receive_json(timeout=10)
        assert frame["notification"]["data"]["group_id"] == group
    finally:
        await socket.close()

    with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
        await gus.browser.ws_connect(f"{node.url}/live", headers={"Origin": "https://evil.test"})
    assert foreign.value.status == 403
    async with aiohttp.ClientSession() as anonymous:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await anonymous.ws_connect(f"{node.url}/live")

    balance = await visit(gus.browser, f"{node.url}/groups/{group}/live/balance")
    assert balance.status == 200
    assert "You owe" in balance.html
    assert "<html" not in balance.html  # a fragment, not a page
    listed = await visit(gus.browser, f"{node.url}/groups/{group}/live/members")
    assert "Gus Live" in listed.html
    assert "Ana" in listed.html


async def test_withdraw_is_the_inviters_and_activity_comes_a_page_at_a_time(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """Only the member who invited sees Withdraw, and withdrawing empties the list; the
    Activity tab shows the newest 20 with a link to older ones, which end in the first."""
    ana = await person(node, api, people, "Ana")
    hal = await person(node, api, people, "Hal")
    group = await create_group(node, ana, "Club")
    await api.ok("POST", f"/api/v1/groups/{group}/members", ana.user, {"user_id": hal.user.id}, 201)
    for number in range(20):
        await api.ok(
            "POST", f"/api/v1/groups/{group}/members", ana.user, {"name": f"Guest {number}"}, 201
        )
    tab = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    await submit(ana.browser, tab, f"/groups/{group}/invites", {"email": "ivy@example.com"})
    theirs = await visit(hal.browser, f"{node.url}/groups/{group}/members")
    assert "ivy@example.com" in theirs.html
    assert "/withdraw" not in theirs.html
    mine = await visit(ana.browser, f"{node.url}/groups/{group}/members")
    withdraw = re.search(rf"/groups/{group}/invites/[^/\"]+/withdraw", mine.html)
    assert withdraw is not None
    withdrawn = await submit(ana.browser, mine, withdraw[0], {})
    assert "The invitation is withdrawn." in withdrawn.html
    assert "No invitations waiting" in withdrawn.html

    newest = await visit(ana.browser, f"{node.url}/groups/{group}/activity")
    assert newest.html.count('<li class="row">') == 20
    assert "Ana withdrew the invitation of ivy@example.com" in newest.html
    older = re.search(rf"/groups/{group}/activity\?cursor=[^\"]+", newest.html)
    assert older is not None
    rest = await visit(ana.browser, f"{node.url}{older[0].replace('&amp;', '&')}")
    assert rest.status == 200
    assert "created the group Club" in rest.html
    assert "Older activity" not in rest.html


async def test_every_groups_page_has_the_csp_labelled_inputs_and_unique_ids(
    node: RunningNode, api: Api, people: list[aiohttp.ClientSession]
) -> None:
    """Each page of this area carries the pages' CSP, a label for every visible input,
    existing aria-describedby targets and no id twice (the Members tab has two forms with
    an input named `name`)."""
    ana = await person(node, api, people, "Ana")
    group = await create_group(node, ana, "Checks")
    paths = [
        "/groups",
        "/groups?archived=true",
        f"/groups/{group}/members",
        f"/groups/{group}/activity",
        f"/groups/{group}/delete",
        "/invites",
        f"/invites/{group}.abc",
        f"/join/{group}.abc",
    ]
    for path in paths:
        page = await visit(ana.browser, f"{node.url}{path}")
        assert page.headers["Content-Security-Policy"] == PAGES_CSP, path
        for found in page.inputs:
            if found.get("type", "text") not in ("hidden", "submit", "button"):
                assert found.get("id") in page.labels, (path, found)
            for described in found.get("aria-describedby", "").split():
                assert described in page.ids, (path, described)
        ids = re.findall(r'\sid="([^"]+)"', page.html)
        assert len(ids) == len(set(ids)), (path, sorted(i for i in ids if ids.count(i) > 1))
