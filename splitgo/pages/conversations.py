"""Pages: the conversations a person is in (`/messages`, with unread counts, and the
navigation's unread badge) and the pages that show one conversation's panel — its own
page (`/messages/{id}`), a group's Chat tab (`/groups/{id}/chat`) and a settlement's
page (`/groups/{id}/settlements/{sid}`); the expense page's panel is in expenses.py.
Each hosting page answers its panel's form at its own URL (splitgo/pages/chat.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.chat.messages import ConversationList, CountUnread, UnreadCount
from actors.chat.messages import ListConversations as ListChats
from actors.runtime.bounds import ID_MAX
from splitgo.pages import chat
from splitgo.pages.chat import CONVERSATION, KIND_WORDS, cid, open_panel, panel_context, send
from splitgo.pages.forms import Form, read_form
from splitgo.pages.group_page import group_context, header_context
from splitgo.pages.guards import signed_in
from splitgo.pages.render import named, redirect, render, render_with_form
from splitgo.pages.sessions import Viewer, viewer_of
from splitgo.pages.settle import settlement_of
from splitgo.web.chat import ask_chat
from splitgo.web.problems import FieldError, ProblemError

routes = web.RouteTableDef()

MESSAGES = "/messages"
LIST_SIZE = 20
PREVIEW_CHARS = 80


def subject_link(kind: str, group: str | None, subject: str) -> tuple[str, str] | None:
    """Where a conversation's subject is shown (path, words), when it has a page."""
    if kind == "group":
        return f"/groups/{subject}", "Open the group"
    if kind == "expense" and group:
        return f"/groups/{group}/expenses/{subject}", "Open the expense"
    if kind == "settlement" and group:
        return f"/groups/{group}/settlements/{subject}", "Open the payment"
    return None


def preview(text: str) -> str:
    """The first words of a message, on one line."""
    line = " ".join(text.split())
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1].rstrip() + "…"


def direct_title(conversation: dict[str, Any], viewer: Viewer) -> str:
    """A direct conversation is titled by the other person's name."""
    for person in conversation.get("participants", []):
        if person.get("user_id") != viewer.user_id:
            return str(person.get("name") or "Someone")
    return "Just you"


async def listing(request: web.Request, viewer: Viewer, cursor: str | None) -> dict[str, Any]:
    """A page of the viewer's conversations, the latest message first, as the list shows it."""
    found: ConversationList = await ask_chat(
        request, ListChats(user_id=viewer.user_id, limit=LIST_SIZE, before=cursor)
    )
    items: list[dict[str, Any]] = (await named(request, found.items)) if found.items else []
    for item in items:
        item["kind_words"] = KIND_WORDS.get(item["kind"], item["kind"])
        if item["kind"] == "direct":
            item["title"] = direct_title(item, viewer)
        item["about"] = subject_link(item["kind"], item.get("group_id"), item["subject_id"])
        last = item.get("last_message")
        if last:
            last["preview"] = preview(last.get("text") or "")
            last["mine"] = last.get("author_id") == viewer.user_id
    return {"items": items, "next_cursor": found.next_cursor, "cursor": cursor}


async def chat_unread(request: web.Request, viewer: Viewer) -> int:
    count: UnreadCount = await ask_chat(request, CountUnread(user_id=viewer.user_id))
    return count.total


@routes.get(MESSAGES)
@signed_in
async def messages(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    cursor = request.query.get("cursor") or None
    if cursor is not None and len(cursor) > 100:
        raise ProblemError(400, "invalid_cursor", "This page of conversations does not exist.")
    return await render(
        request,
        "messages.html",
        {
            "title": "Messages",
            "section": "messages",
            "conversations": await listing(request, viewer, cursor),
            "chat_unread": await chat_unread(request, viewer),
        },
    )


@routes.get(MESSAGES + "/live")
@signed_in
async def messages_region(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The list's live region: its newest page again (static/chat.js)."""
    context = {
        "conversations": await listing(request, viewer, None),
        "chat_unread": await chat_unread(request, viewer),
    }
    return await render(request, "messages_list.html", context)


@routes.get(MESSAGES + "/badge")
async def badge(request: web.Request) -> web.StreamResponse:
    """The navigation's unread badge of messages alone, for static/badge.js."""
    viewer = await viewer_of(request)
    if viewer is None:
        return web.Response(status=204)
    count = await chat_unread(request, viewer)
    return await render(request, "chat_badge.html", {"chat_unread": count})


# ── one conversation's own page ──────────────────────────────────────────────────────


async def conversation_page(
    request: web.Request, viewer: Viewer, form: Form | None = None
) -> web.StreamResponse:
    conversation = await chat.get_conversation(request, viewer, cid(request))
    here = f"{MESSAGES}/{conversation.id}"
    title = conversation.title
    if conversation.kind == "direct":
        title = direct_title(await named(request, conversation), viewer)
    panel = await panel_context(
        request, viewer, conversation, here=here, form=form, heading="Messages"
    )
    return await render_with_form(
        request,
        "messages_conversation.html",
        {
            "title": title or "Conversation",
            "heading": title or "Conversation",
            "section": "messages",
            "conversation": conversation,
            "kind_words": KIND_WORDS.get(conversation.kind, conversation.kind),
            "about": subject_link(
                conversation.kind, conversation.group_id, conversation.subject_id
            ),
            "chat": panel,
        },
        form,
    )


@routes.get(CONVERSATION)
@signed_in
async def conversation(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await conversation_page(request, viewer)


@routes.post(CONVERSATION)
@signed_in
async def post_in_conversation(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    conversation_id = cid(request)

    async def again(form: Form) -> web.StreamResponse:
        return await conversation_page(request, viewer, form)

    return await send(
        request, viewer, conversation_id, back=f"{MESSAGES}/{conversation_id}", rerender=again
    )


@routes.post(MESSAGES + "/direct")
@signed_in
async def start_direct(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """A member's Message button: the conversation with them (opened the first time)."""
    form = await read_form(request)
    other = form.value("user_id").strip()
    if not other or other == viewer.user_id or len(other) > ID_MAX:
        words = "Choose someone other than you to write to."
        raise ProblemError(422, "validation_error", words, errors=[FieldError("user_id", words)])
    view = await open_panel(request, viewer, "direct", other)
    return redirect(f"{MESSAGES}/{view.id}#chat")


# ── a group's Chat tab ───────────────────────────────────────────────────────────────


async def group_chat_page(
    request: web.Request, viewer: Viewer, form: Form | None = None
) -> web.StreamResponse:
    group_id = request.match_info["id"]
    layout = await header_context(request, viewer, group_id)
    conversation = await open_panel(request, viewer, "group", group_id)
    here = f"/groups/{group_id}/chat"
    return await render_with_form(
        request,
        "group_chat.html",
        {
            **layout,
            "tab": "chat",
            "title": f"Chat · {layout['title']}",
            "chat": await panel_context(
                request, viewer, conversation, here=here, form=form, heading="Chat"
            ),
        },
        form,
    )


@routes.get("/groups/{id}/chat")
@signed_in
async def group_chat(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await group_chat_page(request, viewer)


@routes.post("/groups/{id}/chat")
@signed_in
async def post_in_group(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    conversation = await open_panel(request, viewer, "group", group_id)

    async def again(form: Form) -> web.StreamResponse:
        return await group_chat_page(request, viewer, form)

    return await send(
        request, viewer, conversation.id, back=f"/groups/{group_id}/chat", rerender=again
    )


# ── a settlement's page: its status and its conversation ─────────────────────────────


async def settlement_page(
    request: web.Request, viewer: Viewer, form: Form | None = None
) -> web.StreamResponse:
    group_id, settlement_id = request.match_info["id"], request.match_info["sid"]
    layout = await group_context(request, viewer, group_id)
    settlement = await settlement_of(request, viewer, group_id, settlement_id)
    conversation = await open_panel(request, viewer, "settlement", settlement_id, group_id)
    here = f"/groups/{group_id}/settlements/{settlement_id}"
    return await render_with_form(
        request,
        "settlement.html",
        {
            **layout,
            "tab": "settle",
            "title": f"Payment · {layout['title']}",
            "settlement": settlement,
            "group_id": group_id,
            "group_currency": layout["group"]["currency"],
            "chat": await panel_context(
                request, viewer, conversation, here=here, form=form, heading="About this payment"
            ),
        },
        form,
    )


@routes.get("/groups/{id}/settlements/{sid}")
@signed_in
async def settlement(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await settlement_page(request, viewer)


@routes.post("/groups/{id}/settlements/{sid}")
@signed_in
async def post_about_settlement(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id, settlement_id = request.match_info["id"], request.match_info["sid"]
    conversation = await open_panel(request, viewer, "settlement", settlement_id, group_id)

    async def again(form: Form) -> web.StreamResponse:
        return await settlement_page(request, viewer, form)

    return await send(
        request,
        viewer,
        conversation.id,
        back=f"/groups/{group_id}/settlements/{settlement_id}",
        rerender=again,
    )
