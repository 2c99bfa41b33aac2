"""Chat in the web app: the panel a page shows a conversation in, and what its messages
do (post, edit, delete, typing, read markers, fragments for static/chat.js).

A page that hosts a panel (the group's Chat tab, an expense, a settlement, a
conversation's own page under /messages) opens its conversation with `open_panel`
(the chat actor's OpenConversation: opening twice finds the first) and renders
`templates/chat_panel.html` with the `chat` dict `panel_context` makes: the latest
PAGE_SIZE messages oldest first (or the page before `?before=`, the history's cursor),
each with its author's name and whether the viewer may still change it; showing the
newest page marks it read. The panel's form posts to the host page's own URL, so a
refusal (an empty or too long message, the rate limit) is shown on that page at its
field with what was typed, and a message sent goes back to it (post, redirect, get).

Without JavaScript everything works by forms: editing and deleting have a page each
(`/messages/{id}/{seq}/edit`, `.../delete`). With it (static/chat.js) the form is sent
by fetch: a request with `X-Requested-With: chat` is answered with the message's row as
the server renders it (201) or the form with its refusal; incoming messages are fetched
as rows too (`/messages/{id}/rows`), so the server stays the only renderer.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from actors.chat.messages import (
    EDIT_SECONDS,
    TEXT_INPUT_MAX,
    TEXT_MAX,
    ChatDone,
    ChatMessageNotFound,
    ChatMessagePage,
    ChatMessageView,
    ConversationKind,
    ConversationView,
    DeleteMessage,
    EditMessage,
    GetConversation,
    ListMessages,
    MarkChatRead,
    PostMessage,
    ReadMarker,
    ShowTyping,
)
from splitgo.pages import cookies
from splitgo.pages.chat_files import ACCEPT, read_chat_form, store_chat_file
from splitgo.pages.forms import KEY_FIELD, META_FIELDS, REFUSALS, Form, read_form
from splitgo.pages.guards import local_target, signed_in
from splitgo.pages.render import named, redirect, render, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.web.chat import ask_chat, open_for
from splitgo.web.chat_files import IDS_FIELD, post_with_files
from splitgo.web.problems import FieldError, ProblemError
from splitgo.web.splits.attachments import FILE_FIELD, Upload

routes = web.RouteTableDef()

PAGE_SIZE = 30  # messages a panel shows at once
ROWS_MAX = 50  # messages one fragment of new rows carries
FETCH_HEADER = "X-Requested-With"
FETCH_VALUE = "chat"  # static/chat.js sends its forms with this header
KEY_HEADER = "X-Form-Key"  # a fresh idempotency key for the form's next message
CONVERSATION = "/messages/{cid:[0-9a-fA-F-]{36}}"
# ids of messages sent by forms: one per form key, so a double submit posts once
_FORM_MESSAGES = uuid.UUID("0c3e8f4a-2b1d-4f6e-9a7c-5d8e1f2a3b4c")
KIND_WORDS = {
    "group": "Group",
    "expense": "Expense",
    "settlement": "Payment",
    "direct": "Direct",
}

cookies.FLASHES.update(
    {
        "chat_sent": "Message sent.",
        "chat_edited": "Message edited.",
        "chat_deleted": "Message deleted.",
    }
)

# a page hosting a panel, rendered again with a refused form (status and headers from it)
Rerender = Callable[[Form], Awaitable[web.StreamResponse]]


def cid(request: web.Request) -> str:
    return request.match_info["cid"]


def wants_fragment(request: web.Request) -> bool:
    """Whether static/chat.js sent this (it takes a fragment instead of a page)."""
    return request.headers.get(FETCH_HEADER) == FETCH_VALUE


async def open_panel(
    request: web.Request,
    viewer: Viewer,
    kind: ConversationKind,
    subject_id: str,
    group_id: str | None = None,
) -> ConversationView:
    """The conversation of `kind` about `subject_id`, opened if it was not yet."""
    return await open_for(request, viewer.user_id, kind, subject_id, group_id)


async def get_conversation(
    request: web.Request, viewer: Viewer, conversation_id: str
) -> ConversationView:
    """The conversation, or ConversationNotFound (a 404) when the viewer is not in it."""
    view: ConversationView = await ask_chat(
        request, GetConversation(conversation_id=conversation_id, user_id=viewer.user_id)
    )
    return view


def still_editable(created_at: str, now: datetime | None = None) -> bool:
    """Whether a message posted at `created_at` may still change (the actor decides; this
    only says whether to offer Edit and Delete)."""
    try:
        posted = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return ((now or datetime.now(UTC)) - posted).total_seconds() < EDIT_SECONDS


async def shown_messages(
    request: web.Request, viewer: Viewer, views: list[ChatMessageView]
) -> list[dict[str, Any]]:
    """Messages as a panel shows them: named, with `mine` and `editable`."""
    if not views:
        return []
    shown: list[dict[str, Any]] = await named(request, views)
    now = datetime.now(UTC)
    for item in shown:
        item["mine"] = item["author_id"] == viewer.user_id
        item["editable"] = (
            item["mine"] and not item["deleted"] and still_editable(item["created_at"], now)
        )
    return shown


def before_of(request: web.Request) -> int | None:
    """The `?before=` cursor of the history (a seq), or None for the newest page."""
    value = request.query.get("before")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ProblemError(400, "invalid_cursor", "This page of messages does not exist.")
    return int(value)


async def panel_context(
    request: web.Request,
    viewer: Viewer,
    conversation: ConversationView,
    *,
    here: str,
    form: Form | None = None,
    heading: str = "Chat",
    action: str | None = None,
) -> dict[str, Any]:
    """What templates/chat_panel.html needs (the `chat` of the page's context).

    `here` is the host page's path (the history's links go back to it; the form posts
    to it, or to `action`). Showing the newest page marks the conversation read up to
    its last message."""
    before = before_of(request)
    page: ChatMessagePage = await ask_chat(
        request,
        ListMessages(
            conversation_id=conversation.id,
            user_id=viewer.user_id,
            before=before,
            limit=PAGE_SIZE,
        ),
    )
    newest = page.items[0] if page.items else None
    if before is None and newest is not None and conversation.last_read_seq < newest.seq:
        await mark_read(request, viewer, conversation.id, newest.id)
    return {
        "id": conversation.id,
        "kind": conversation.kind,
        "title": conversation.title,
        "heading": heading,
        "messages": await shown_messages(request, viewer, list(reversed(page.items))),
        "older": page.next_cursor,
        "before": before,
        "live": before is None,
        "here": here,
        "action": action or here,
        "form": form or Form.blank(),
        "text_max": TEXT_MAX,
        "accept": ACCEPT,
    }


async def mark_read(
    request: web.Request, viewer: Viewer, conversation_id: str, message_id: str
) -> ReadMarker:
    marker: ReadMarker = await ask_chat(
        request,
        MarkChatRead(
            conversation_id=conversation_id, user_id=viewer.user_id, message_id=message_id
        ),
    )
    return marker


def text_of(form: Form) -> str:
    """The typed message; one far past the limit is refused here, in the actor's words
    (PostMessage itself refuses it as a bound)."""
    text = form.value("text")
    if len(text) > TEXT_INPUT_MAX:
        words = f"a message is at most {TEXT_MAX:,} characters; this one is {len(text):,}"
        raise ProblemError(422, "invalid_chat_message", words, errors=[FieldError("$.text", words)])
    return text


async def read_message_form(request: web.Request) -> tuple[Form, Upload | None]:
    """The panel's form: a plain one, or `multipart/form-data` with a file to send."""
    if request.content_type != "multipart/form-data":
        return await read_form(request), None
    fields, upload = await read_chat_form(request)
    values = {name: [value] for name, value in fields.items() if name not in META_FIELDS}
    key = (fields.get(KEY_FIELD) or "").strip() or None
    return Form(values={FILE_FIELD: [""], **values}, key=key), upload


def message_id_of(form: Form, viewer: Viewer, conversation_id: str) -> str:
    """The new message's id: from the form's key (a double submit names the first
    message), else a new one."""
    if not form.key:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_FORM_MESSAGES, f"{viewer.user_id} {conversation_id} {form.key}"))


async def send(
    request: web.Request,
    viewer: Viewer,
    conversation_id: str,
    *,
    back: str,
    rerender: Rerender,
) -> web.StreamResponse:
    """A panel's form posted: the message sent, then back to `back` (the host page); a
    refusal shown by `rerender` (the host page with the form), or, to chat.js, the row
    (201) or the refused form."""
    form, upload = await read_message_form(request)
    try:
        message = PostMessage(
            conversation_id=conversation_id,
            user_id=viewer.user_id,
            message_id=message_id_of(form, viewer, conversation_id),
            text=text_of(form),
        )
        files = []
        if upload is not None:
            kept = await store_chat_file(request, viewer, conversation_id, upload, key=form.key)
            files.append(kept.id)
        view = await post_with_files(request, message, files)
    except REFUSALS as error:
        form.refuse(error, inputs={"$.text": "text", FILE_FIELD: FILE_FIELD, IDS_FIELD: FILE_FIELD})
        if wants_fragment(request):
            return await render_with_form(
                request,
                "chat_form.html",
                {
                    "chat": {
                        "id": conversation_id,
                        "here": back,
                        "action": request.path,
                        "form": form,
                        "text_max": TEXT_MAX,
                        "accept": ACCEPT,
                    }
                },
                form,
            )
        return await rerender(form)
    if wants_fragment(request):
        return await render(
            request,
            "chat_rows.html",
            {"messages": await shown_messages(request, viewer, [view]), "here": back},
            status=201,
            headers={KEY_HEADER: str(uuid.uuid4())},
        )
    cookies.flash(request, "chat_sent")
    return redirect(f"{back}#chat")


async def message_at(
    request: web.Request, viewer: Viewer, conversation_id: str, seq: int
) -> ChatMessageView:
    """The message numbered `seq` in the conversation (ChatMessageNotFound if none)."""
    page: ChatMessagePage = await ask_chat(
        request,
        ListMessages(
            conversation_id=conversation_id, user_id=viewer.user_id, before=seq + 1, limit=1
        ),
    )
    if not page.items or page.items[0].seq != seq:
        raise ChatMessageNotFound("No such message in this conversation.")
    return page.items[0]


def seq_of(request: web.Request) -> int:
    return int(request.match_info["seq"])


def back_of(request: web.Request, form: Form | None = None) -> str:
    """Where to go after an edit or deletion: the page the message was shown on."""
    wanted = form.value("next") if form is not None else request.query.get("next")
    return local_target(wanted, f"/messages/{cid(request)}")


# ── the fragments static/chat.js asks for, and what it sends ─────────────────────────


@routes.get(CONVERSATION + "/rows")
@signed_in
async def rows(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Rows of messages as a panel shows them: `?after=N` those after seq N (oldest
    first, at most ROWS_MAX), or `?seq=S` that one (after an edit or deletion)."""
    conversation_id = cid(request)
    here = local_target(request.query.get("here"), f"/messages/{conversation_id}")
    seq, after = request.query.get("seq", ""), request.query.get("after", "")
    views: list[ChatMessageView]
    if seq.isdigit() and int(seq) >= 1:
        views = [await message_at(request, viewer, conversation_id, int(seq))]
    elif after.isdigit():
        page: ChatMessagePage = await ask_chat(
            request,
            ListMessages(conversation_id=conversation_id, user_id=viewer.user_id, limit=ROWS_MAX),
        )
        views = [view for view in reversed(page.items) if view.seq > int(after)]
    else:
        raise ProblemError(400, "invalid_query", "Say which messages: after=N or seq=N.")
    return await render(
        request,
        "chat_rows.html",
        {"messages": await shown_messages(request, viewer, views), "here": here},
    )


@routes.post(CONVERSATION + "/typing")
@signed_in
async def typing(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The viewer is typing: the others' open panels say so for a moment."""
    await read_form(request)
    _done: ChatDone = await ask_chat(
        request, ShowTyping(conversation_id=cid(request), user_id=viewer.user_id)
    )
    return web.Response(status=204)


@routes.post(CONVERSATION + "/read")
@signed_in
async def read(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The viewer has read up to `message_id` (the open panel saw it arrive)."""
    form = await read_form(request)
    message_id = form.value("message_id")
    if not message_id:
        raise ProblemError(422, "validation_error", "Say which message was read.")
    await mark_read(request, viewer, cid(request), message_id)
    return web.Response(status=204)


# ── editing and deleting, a page each (without JavaScript too) ───────────────────────


async def _change_page(
    request: web.Request,
    viewer: Viewer,
    template: str,
    form: Form,
    *,
    message: ChatMessageView | None = None,
) -> web.Response:
    conversation_id = cid(request)
    conversation = await get_conversation(request, viewer, conversation_id)
    found = message or await message_at(request, viewer, conversation_id, seq_of(request))
    shown = (await shown_messages(request, viewer, [found]))[0]
    if not form.values.get("text"):
        form.values["text"] = [found.text]
    return await render_with_form(
        request,
        template,
        {
            "title": "Edit your message" if template == "chat_edit.html" else "Delete your message",
            "section": "messages",
            "conversation": conversation,
            "message": shown,
            "form": form,
            "back": back_of(request, form if form.values.get("next") else None),
            "text_max": TEXT_MAX,
        },
        form,
    )


@routes.get(CONVERSATION + r"/{seq:\d{1,12}}/edit")
@signed_in
async def edit_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _change_page(request, viewer, "chat_edit.html", Form.blank())


@routes.post(CONVERSATION + r"/{seq:\d{1,12}}/edit")
@signed_in
async def edit(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    conversation_id = cid(request)
    found = await message_at(request, viewer, conversation_id, seq_of(request))
    try:
        view: ChatMessageView = await ask_chat(
            request,
            EditMessage(
                conversation_id=conversation_id,
                user_id=viewer.user_id,
                message_id=found.id,
                text=text_of(form),
            ),
        )
    except REFUSALS as error:
        form.refuse(error, inputs={"$.text": "text", "message_id": None})
        return await _change_page(request, viewer, "chat_edit.html", form, message=found)
    cookies.flash(request, "chat_edited")
    return redirect(f"{back_of(request, form)}#m-{view.id}")


@routes.get(CONVERSATION + r"/{seq:\d{1,12}}/delete")
@signed_in
async def delete_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _change_page(request, viewer, "chat_delete.html", Form.blank())


@routes.post(CONVERSATION + r"/{seq:\d{1,12}}/delete")
@signed_in
async def delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    conversation_id = cid(request)
    found = await message_at(request, viewer, conversation_id, seq_of(request))
    try:
        await ask_chat(
            request,
            DeleteMessage(
                conversation_id=conversation_id, user_id=viewer.user_id, message_id=found.id
            ),
        )
    except REFUSALS as error:
        form.refuse(error, inputs={"message_id": None})
        return await _change_page(request, viewer, "chat_delete.html", form, message=found)
    cookies.flash(request, "chat_deleted")
    return redirect(f"{back_of(request, form)}#chat")
