"""The Chat routes of API.md: conversations about a group, an expense, a settlement or
between two people, their messages (history by cursor, edits and deletions within 15
minutes), read markers and typing. New messages reach every participant's WebSocket
(`/api/v1/ws`) as `{"type": "chat_message", ...}`; edits, deletions, read markers and
typing as `chat_message_edited`, `chat_message_deleted`, `chat_read` and `chat_typing`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from aiohttp import web

from actors.chat.messages import (
    ATTACHMENTS_MAX,
    CHAT,
    TEXT_INPUT_MAX,
    ChatDone,
    ChatMessagePage,
    ChatMessageView,
    ConversationKind,
    ConversationList,
    ConversationView,
    CountUnread,
    DeleteMessage,
    EditMessage,
    GetConversation,
    ListConversations,
    ListMessages,
    MarkChatRead,
    OpenConversation,
    PostMessage,
    ReadMarker,
    ShowTyping,
    UnreadCount,
    conversation_id_for,
)
from actors.runtime import Message, row_cursor
from actors.runtime.bounds import ID_MAX
from splitgo.web.actors import ask
from splitgo.web.chat_files import post_with_files
from splitgo.web.declare import PageQuery, documented, idempotency
from splitgo.web.idempotency import client_key
from splitgo.web.ops import page_params
from splitgo.web.problems import FieldError, ProblemError, json_response, to_json
from splitgo.web.security import authenticate

routes = web.RouteTableDef()

Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX)]
_MESSAGE_IDS = uuid.UUID("3d5c2b8e-8f7a-4a1e-b0c4-5e9d2a7f6c10")  # ids from Idempotency-Keys


class ConversationBody(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly one of `group_id`, `expense_id`, `settlement_id` or `user_id` (the other
    person of a direct conversation); `group_id` may come beside an expense or settlement."""

    group_id: Ref | None = None
    expense_id: Ref | None = None
    settlement_id: Ref | None = None
    user_id: Ref | None = None


class MessageBody(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(max_length=TEXT_INPUT_MAX)] = ""


class PostBody(MessageBody, forbid_unknown_fields=True):
    """A new message: `text`, and files uploaded to the conversation first (their ids:
    splitgo/web/chat_files.py); with files the text may be empty."""

    attachment_ids: Annotated[list[Ref], msgspec.Meta(max_length=ATTACHMENTS_MAX)] = []


class ReadBody(msgspec.Struct, forbid_unknown_fields=True):
    message_id: Ref


def _one_subject(body: ConversationBody) -> tuple[ConversationKind, str, str | None]:
    """(kind, subject, group hint) from the body, or a 422 naming the field."""
    named: list[tuple[ConversationKind, str | None]] = [
        ("expense", body.expense_id),
        ("settlement", body.settlement_id),
        ("direct", body.user_id),
    ]
    given = [(kind, value) for kind, value in named if value is not None]
    if len(given) > 1 or (not given and body.group_id is None):
        field = "$." + ("group_id" if not given else f"{given[1][0]}_id")
        raise ProblemError(
            422,
            "validation_error",
            "give exactly one of group_id, expense_id, settlement_id or user_id",
            errors=[
                FieldError(field, "exactly one of group_id, expense_id, settlement_id, user_id")
            ],
        )
    if not given:
        assert body.group_id is not None
        return "group", body.group_id, None
    kind, subject = given[0]
    if kind == "direct" and body.group_id is not None:
        raise ProblemError(
            422,
            "validation_error",
            "a direct conversation is not about a group: give user_id alone",
            errors=[FieldError("$.group_id", "not with user_id")],
        )
    return kind, subject, body.group_id


async def ask_chat(request: web.Request, message: Message) -> Any:
    return await ask(request, CHAT, message)


def _conversation_id(request: web.Request) -> str:
    return request.match_info["id"]


@routes.post("/api/v1/conversations")
@documented(
    summary="Open a conversation",
    description="About a group (`group_id`: its members are in it), an expense "
    "(`expense_id`) or a settlement (`settlement_id`) of a group you are in, or direct with "
    "someone you share a group with (`user_id`). 201 when this made it, 200 when it "
    "existed (its id is the same for everyone).",
    tags=["chat"],
    body=ConversationBody,
    responses={201: ConversationView, 200: ConversationView},
    errors=[404],
)
async def open_conversation(request: web.Request, body: ConversationBody) -> web.Response:
    claims = authenticate(request)
    kind, subject, group_hint = _one_subject(body)
    if kind == "direct" and subject == claims.sub:
        raise ProblemError(
            422,
            "validation_error",
            "a direct conversation is with someone else",
            errors=[FieldError("$.user_id", "someone other than you")],
        )
    view = await open_for(request, claims.sub, kind, subject, group_hint)
    return json_response(to_json(view), status=201 if view.created else 200)


async def open_for(
    request: web.Request,
    user_id: str,
    kind: ConversationKind,
    subject_id: str,
    group_id: str | None = None,
) -> ConversationView:
    """The conversation of `kind` about `subject_id` as `user_id` sees it, opened if it
    was not yet (the JSON route and the pages both open through here)."""
    view: ConversationView = await ask_chat(
        request,
        OpenConversation(
            conversation_id=conversation_id_for(kind, subject_id, user_id),
            user_id=user_id,
            kind=kind,
            subject_id=subject_id,
            group_id=group_id,
        ),
    )
    return view


@routes.get("/api/v1/conversations")
@documented(
    summary="Your conversations",
    description="The latest message first, each with `unread` (counted up to 100), your "
    "`last_read_seq`, its last message, `participant_count` and the first 10 `participants`.",
    tags=["chat"],
    query=PageQuery,
    responses={200: ConversationList},
)
async def list_conversations(request: web.Request) -> web.Response:
    claims = authenticate(request)
    limit, cursor = page_params(request)
    found: ConversationList = await ask_chat(
        request, ListConversations(user_id=claims.sub, limit=limit, before=cursor)
    )
    return json_response(to_json(found))


@routes.get("/api/v1/conversations/unread")
@documented(
    summary="Your unread messages",
    description="`total` unread messages over your conversations, and how many "
    "`conversations` have any.",
    tags=["chat"],
    responses={200: UnreadCount},
)
async def unread(request: web.Request) -> web.Response:
    claims = authenticate(request)
    count: UnreadCount = await ask_chat(request, CountUnread(user_id=claims.sub))
    return json_response(to_json(count))


@routes.get("/api/v1/conversations/{id}")
@documented(
    summary="A conversation",
    tags=["chat"],
    responses={200: ConversationView},
    errors=[404],
)
async def get_conversation(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view: ConversationView = await ask_chat(
        request, GetConversation(conversation_id=_conversation_id(request), user_id=claims.sub)
    )
    return json_response(to_json(view))


@routes.post("/api/v1/conversations/{id}/messages")
@documented(
    summary="Post a message",
    description="`text`: 1 to 4,000 characters once trimmed. `@Name` mentions a "
    "participant (they are notified). `attachment_ids`: up to 4 images you uploaded to "
    "this conversation (`POST /api/v1/conversations/{id}/attachments`) and have not sent "
    "(422 naming the id otherwise); with them the text may be empty. With an "
    "Idempotency-Key, a retry answers the first message. At most 20 messages at once per "
    "person, then one a second (429).",
    tags=["chat"],
    body=PostBody,
    headers=[idempotency(required=False)],
    responses={201: ChatMessageView},
    errors=[404, 409, 429],
)
async def post_message(request: web.Request, body: PostBody) -> web.Response:
    claims = authenticate(request)
    view = await post_with_files(
        request,
        PostMessage(
            conversation_id=_conversation_id(request),
            user_id=claims.sub,
            message_id=message_id_for(request, claims.sub),
            text=body.text,
        ),
        body.attachment_ids,
    )
    return json_response(to_json(view), status=201)


def message_id_for(request: web.Request, caller: str) -> str:
    """A new message's id: derived from the caller's Idempotency-Key, so a retry names the
    first message; else a new one."""
    key = client_key(request)
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_MESSAGE_IDS, f"{caller} {_conversation_id(request)} {key}"))


@routes.get("/api/v1/conversations/{id}/messages")
@documented(
    summary="A conversation's messages",
    description="Newest first; `next_cursor` pages back. Deleted messages stay as "
    "`deleted: true` with no text; edited ones carry `edited_at`.",
    tags=["chat"],
    query=PageQuery,
    responses={200: ChatMessagePage},
    errors=[404],
)
async def list_messages(request: web.Request) -> web.Response:
    claims = authenticate(request)
    limit, cursor = page_params(request)
    page: ChatMessagePage = await ask_chat(
        request,
        ListMessages(
            conversation_id=_conversation_id(request),
            user_id=claims.sub,
            before=row_cursor(cursor) or None,
            limit=limit,
        ),
    )
    return json_response(to_json(page))


@routes.patch("/api/v1/conversations/{id}/messages/{mid}")
@documented(
    summary="Edit your message",
    description="Within 15 minutes of posting it (409 `edit_window_closed` after); "
    "someone else's: 403 `not_your_message`.",
    tags=["chat"],
    body=MessageBody,
    responses={200: ChatMessageView},
    errors=[403, 404, 409],
)
async def edit_message(request: web.Request, body: MessageBody) -> web.Response:
    claims = authenticate(request)
    view: ChatMessageView = await ask_chat(
        request,
        EditMessage(
            conversation_id=_conversation_id(request),
            user_id=claims.sub,
            message_id=request.match_info["mid"],
            text=body.text,
        ),
    )
    return json_response(to_json(view))


@routes.delete("/api/v1/conversations/{id}/messages/{mid}")
@documented(
    summary="Delete your message",
    description="For everyone, within 15 minutes of posting it: it stays in the history as "
    "deleted, and its files are deleted. Deleting it again answers the same.",
    tags=["chat"],
    responses={200: ChatMessageView},
    errors=[403, 404, 409],
)
async def delete_message(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view: ChatMessageView = await ask_chat(
        request,
        DeleteMessage(
            conversation_id=_conversation_id(request),
            user_id=claims.sub,
            message_id=request.match_info["mid"],
        ),
    )
    # its files go with it: chat tells the files actor (ChatMessageDeleted, via the outbox)
    return json_response(to_json(view))


@routes.post("/api/v1/conversations/{id}/read")
@documented(
    summary="Mark read",
    description="You have read up to and including `message_id` (a marker never goes "
    "back). Your other open sessions hear `chat_read`.",
    tags=["chat"],
    body=ReadBody,
    responses={204: None},
    errors=[404],
)
async def mark_read(request: web.Request, body: ReadBody) -> web.Response:
    claims = authenticate(request)
    _read: ReadMarker = await ask_chat(
        request,
        MarkChatRead(
            conversation_id=_conversation_id(request),
            user_id=claims.sub,
            message_id=body.message_id,
        ),
    )
    return web.Response(status=204)


@routes.post("/api/v1/conversations/{id}/typing")
@documented(
    summary="You are typing",
    description="The other participants' open sessions hear `chat_typing` (at most every 2 "
    "s per person). Never stored.",
    tags=["chat"],
    responses={204: None},
    errors=[404],
)
async def typing(request: web.Request) -> web.Response:
    claims = authenticate(request)
    _done: ChatDone = await ask_chat(
        request, ShowTyping(conversation_id=_conversation_id(request), user_id=claims.sub)
    )
    return web.Response(status=204)
