"""Files in chat messages (issue 18, item 4): upload an image to a conversation, send it
in a message, fetch it, and its deletion with the message.

The files actor (actors/files) keeps them as it keeps receipts: the type read from the
content (JPEG, PNG or WebP here: a chat message carries images), the metadata stripped,
a thumbnail made, the bytes in the same storage port (a local folder or S3).

Who may: every route first asks chat for the conversation as the caller
(`GetConversation`): to someone not in it, it and its files do not exist (404), and
nothing of the files is read. A file uploaded and not sent yet is its uploader's alone.

The flow: `POST /api/v1/conversations/{id}/attachments` (multipart, the file in the part
`file`) answers the file's id; the message is then posted with `attachment_ids`
(`post_with_files`, which splitgo/web/chat.py's post route calls): the files actor marks
the files as the message's before chat posts it, and unmarks them when chat refuses the
post. Deleting a message (`delete_message_files`, after chat's `DeleteMessage`) deletes
its files. `GET /api/v1/conversations/{id}/attachments/{aid}` sends one, with the same
safe headers as a receipt (splitgo/web/splits/attachments.py).

The web app's pages use the same functions (splitgo/pages/chat_files.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec
import structlog
from aiohttp import web

from actors.chat.messages import (
    ATTACHMENTS_MAX,
    CHAT,
    AttachmentRef,
    ChatMessageView,
    ConversationView,
    GetConversation,
    PostMessage,
)
from actors.files.messages import (
    FILES,
    MAX_UNSENT_PER_CONVERSATION,
    MAX_UPLOAD_BYTES,
    UNSENT_HOURS,
    AttachChatFiles,
    AttachmentContent,
    ChatAttachmentList,
    ChatAttachmentView,
    DetachChatFiles,
    GetChatAttachment,
    StoreChatAttachment,
    Variant,
)
from actors.runtime import DomainError
from splitgo.web.actors import ask
from splitgo.web.declare import Content, Header, Raw, documented, idempotency, streamed
from splitgo.web.idempotency import key_for
from splitgo.web.problems import FieldError, ProblemError, json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.attachments import (
    FILE_FIELD,
    FILE_REPLY,
    READ_TIMEOUT,
    Upload,
    VariantQuery,
    ask_to_store,
    attachment_id_for,
    file_response,
    read_upload,
    variant_of,
)

log = structlog.get_logger("splitgo.web.chat_files")

routes = web.RouteTableDef()

CHAT_ACCEPTED = "image/jpeg,image/png,image/webp,application/pdf"  # the form's file input
IDS_FIELD = "$.attachment_ids"
# chat's refusals of a post after which its files are unsent again (the message surely
# does not exist); after a timeout it may, and an idempotency conflict names another one
_DEFINITE = frozenset({"invalid", "not_found", "forbidden", "rate_limited"})

UPLOAD_BODY = Raw(
    {
        "type": "object",
        "properties": {
            FILE_FIELD: {
                "type": "string",
                "format": "binary",
                "description": "a JPEG, PNG or WebP image or a PDF, at most "
                f"{MAX_UPLOAD_BYTES:,} bytes; the type is read from the content",
            }
        },
        "required": [FILE_FIELD],
    }
)


# ── asking ─────────────────────────────────────────────────────────────────────────────


async def check_participant(
    request: web.Request, conversation_id: str, user_id: str
) -> ConversationView:
    """Chat's word that `user_id` is in the conversation (404 `conversation_not_found`
    otherwise)."""
    view: ConversationView = await ask(
        request, CHAT, GetConversation(conversation_id=conversation_id, user_id=user_id)
    )
    return view


def chat_attachment_id(scope: str, conversation_id: str, key: str) -> str:
    """The id of a chat upload sent with an idempotency key: the same caller, route,
    conversation and key make the same id."""
    return attachment_id_for(f"{scope} {conversation_id}", key)


async def store_chat_upload(
    request: web.Request,
    upload: Upload,
    *,
    conversation_id: str,
    user_id: str,
    attachment_id: str,
) -> ChatAttachmentView:
    """Ask the files actor to keep the upload as a file of the conversation (the caller
    checked they are in it); its refusals name the `file` part."""
    view: ChatAttachmentView = await ask_to_store(
        request,
        upload,
        lambda filename: StoreChatAttachment(
            conversation_id=conversation_id,
            attachment_id=attachment_id,
            user_id=user_id,
            filename=filename,
            content=upload.content,
        ),
    )
    return view


async def chat_file_content(
    request: web.Request,
    conversation_id: str,
    attachment_id: str,
    user_id: str,
    variant: Variant = "original",
) -> AttachmentContent:
    """A conversation's file for a participant (the caller checked they are one)."""
    message = GetChatAttachment(
        conversation_id=conversation_id,
        attachment_id=attachment_id,
        user_id=user_id,
        variant=variant,
    )
    content: AttachmentContent = await ask(request, FILES, message, timeout=READ_TIMEOUT)
    return content


def _ids_refusal(error: DomainError) -> ProblemError | None:
    """A file the message cannot carry is a 422 naming its place in `attachment_ids`."""
    if error.code != "attachment_not_found":
        return None
    field = str(error.details.get("field") or IDS_FIELD)
    return ProblemError(
        422, error.code, error.message, errors=[FieldError(field=field, message=error.message)]
    )


async def post_with_files(
    request: web.Request, message: PostMessage, attachment_ids: Sequence[str]
) -> ChatMessageView:
    """Post `message` carrying the caller's files `attachment_ids` (uploaded to this
    conversation first): each is resolved by the files actor into the message's
    AttachmentRef (422 naming `$.attachment_ids[i]` for one that is not the caller's, of
    this conversation, or that went in another message). Without files, just the post."""
    if not attachment_ids:
        posted: ChatMessageView = await ask(request, CHAT, message)
        return posted
    if len(attachment_ids) > ATTACHMENTS_MAX:
        raise ProblemError(
            422,
            "validation_error",
            f"a message carries at most {ATTACHMENTS_MAX} files",
            errors=[FieldError(field=IDS_FIELD, message=f"at most {ATTACHMENTS_MAX} files")],
        )
    # a stranger hears 404 of the conversation before anything of its files
    await check_participant(request, message.conversation_id, message.user_id)
    found: ChatAttachmentList = await ask(
        request,
        FILES,
        AttachChatFiles(
            conversation_id=message.conversation_id,
            user_id=message.user_id,
            message_id=message.message_id,
            attachment_ids=list(attachment_ids),
        ),
        refusal=_ids_refusal,
    )
    refs = [
        AttachmentRef(
            id=item.id, filename=item.filename, content_type=item.content_type, size=item.size
        )
        for item in found.items
    ]
    try:
        posted = await ask(request, CHAT, msgspec.structs.replace(message, attachments=refs))
    except DomainError as error:
        if error.category in _DEFINITE:
            await _detach(request, message)
        raise
    return posted


async def _detach(request: web.Request, message: PostMessage) -> None:
    """The post was refused: its files are unsent again (best effort: the upkeep deletes
    unsent ones after UNSENT_HOURS, and a retry with the same key takes them again)."""
    try:
        await ask(
            request,
            FILES,
            DetachChatFiles(conversation_id=message.conversation_id, message_id=message.message_id),
        )
    except DomainError as error:
        log.warning(
            "chat_files_not_detached",
            conversation_id=message.conversation_id,
            message_id=message.message_id,
            error=error.code,
        )


# ── routes ─────────────────────────────────────────────────────────────────────────────


def _conversation_id(request: web.Request) -> str:
    return request.match_info["id"]


@routes.post("/api/v1/conversations/{id}/attachments")
@streamed(
    summary="Upload a file to send in a message",
    description="`multipart/form-data` with the file in the part `file`: a JPEG, "
    f"PNG or WebP image or a PDF of at most {MAX_UPLOAD_BYTES:,} bytes (413 "
    "`too_large` past it). The type is read from the content (422 "
    "`unsupported_type` for anything else); an image is stored without its "
    "metadata (EXIF, GPS), and every file gets a thumbnail. Participants only "
    "(404). Send it by naming its id in a message's `attachment_ids`; until then "
    "only you can fetch it, and after "
    f"{UNSENT_HOURS} hours unsent it is deleted. At most "
    f"{MAX_UNSENT_PER_CONVERSATION} unsent files per conversation (409 "
    "`too_many_attachments`). With an Idempotency-Key, a retry answers the first.",
    tags=["chat"],
    body=UPLOAD_BODY,
    body_media_type="multipart/form-data",
    headers=[idempotency(required=False)],
    responses={
        201: Content(
            ChatAttachmentView,
            headers={"Location": ("the file", True)},
            description="Created",
        )
    },
    errors=[404, 409, 413],
)
async def upload_chat_file(request: web.Request) -> web.Response:
    claims = authenticate(request)
    key = key_for(request, None, caller=claims.sub)  # a malformed key: 400 before the body
    conversation_id = _conversation_id(request)
    await check_participant(request, conversation_id, claims.sub)
    upload = await read_upload(request)
    view = await store_chat_upload(
        request,
        upload,
        conversation_id=conversation_id,
        user_id=claims.sub,
        attachment_id=(
            chat_attachment_id(key.scope, conversation_id, key.key) if key else str(uuid.uuid4())
        ),
    )
    response = json_response(to_json(view), status=201)
    response.headers["Location"] = f"/api/v1/conversations/{conversation_id}/attachments/{view.id}"
    return response


@routes.get("/api/v1/conversations/{id}/attachments/{aid}")
@documented(
    summary="A file of a message, or its thumbnail",
    description="Participants only: to anyone else it does not exist (404); a file not "
    "sent yet, its uploader only. Sent with its sniffed type, `X-Content-Type-Options: "
    "nosniff`, a sandboxing CSP and `Content-Disposition: inline`. `If-None-Match` with "
    "its ETag: 304.",
    tags=["chat"],
    query=VariantQuery,
    headers=[Header("If-None-Match", "the ETag of the copy the caller holds")],
    responses={200: FILE_REPLY, 304: Content(description="Not Modified: the copy held is it")},
    errors=[404, 422],
)
async def fetch_chat_file(request: web.Request) -> web.Response:
    claims = authenticate(request)
    variant = variant_of(request.query)
    conversation_id = _conversation_id(request)
    await check_participant(request, conversation_id, claims.sub)
    content = await chat_file_content(
        request, conversation_id, request.match_info["aid"], claims.sub, variant
    )
    return file_response(request, content)
