"""Pages: files in chat messages (issue 18, item 4), for the web app's chat pages
(splitgo/pages/chat.py renders a message's files as links to `file_url`).

- `GET /messages/{cid}/attachments/{aid}` (`?variant=thumbnail` for the small one) sends
  a conversation's file to a participant, with the same safe headers as a receipt; to
  anyone else it does not exist (the 404 page). A file not sent yet, its uploader only.
- `read_chat_form` reads a chat form sent as `multipart/form-data` (its message text and
  an optional file input named `file`), checking the CSRF token before the file is read.
- `store_chat_file` keeps an uploaded image as a file of the conversation (the files
  actor: type from the content, metadata stripped, a thumbnail); its id then goes in the
  message (`splitgo.web.chat_files.post_with_files`). Its refusals (a PDF, too large, a
  damaged image) name the `file` input, as `Form.refuse` shows them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from aiohttp import web

from actors.chat.messages import TEXT_INPUT_MAX
from actors.files.messages import ChatAttachmentView
from splitgo.pages import csrf
from splitgo.pages.guards import signed_in
from splitgo.pages.sessions import Viewer
from splitgo.web.chat_files import (
    CHAT_ACCEPTED,
    chat_attachment_id,
    chat_file_content,
    check_participant,
    store_chat_upload,
)
from splitgo.web.splits.attachments import (
    FILE_FIELD,
    TEXT_PART_MAX,
    Upload,
    file_response,
    read_upload,
    variant_of,
)

routes = web.RouteTableDef()

ACCEPT = CHAT_ACCEPTED  # the file input's `accept`
# a chat form's text part: the message, at most TEXT_INPUT_MAX characters of up to 4 bytes
CHAT_TEXT_BYTES = max(TEXT_PART_MAX, 4 * TEXT_INPUT_MAX)
_CONVERSATION = "{cid:[0-9a-fA-F-]{36}}"


def file_url(conversation_id: str, attachment_id: str, *, thumbnail: bool = False) -> str:
    """Where a page links a message's file (or shows its thumbnail from)."""
    url = f"/messages/{conversation_id}/attachments/{attachment_id}"
    return f"{url}?variant=thumbnail" if thumbnail else url


async def read_chat_form(request: web.Request) -> tuple[dict[str, str], Upload | None]:
    """A chat form posted as `multipart/form-data`: its text inputs by name (the CSRF
    token checked before a byte of the file is read: csrf.CsrfRefused) and the file, or
    None when the file input was left empty. 413 `too_large` past the size limit, while
    it streams in."""

    def guard(fields: Mapping[str, str]) -> None:
        csrf.check(request, fields.get(csrf.FIELD))

    sent = await read_upload(request, on_file=guard, text_max=CHAT_TEXT_BYTES)
    fields = dict(sent.fields)
    if not sent.content and not sent.filename:  # a browser sends an empty input so
        return fields, None
    return fields, sent


async def store_chat_file(
    request: web.Request,
    viewer: Viewer,
    conversation_id: str,
    upload: Upload,
    *,
    key: str | None = None,
) -> ChatAttachmentView:
    """Keep `upload` as the viewer's file of the conversation, not sent yet: chat's word
    that they are in it first (ConversationNotFound: the 404 page). `key` is the form's
    idempotency key: the same key makes the same file (a form sent twice). Refusals name
    the `file` input (ProblemError)."""
    await check_participant(request, conversation_id, viewer.user_id)
    scope = f"{viewer.user_id} page {FILE_FIELD}"
    return await store_chat_upload(
        request,
        upload,
        conversation_id=conversation_id,
        user_id=viewer.user_id,
        attachment_id=(
            chat_attachment_id(scope, conversation_id, key) if key else str(uuid.uuid4())
        ),
    )


@routes.get(f"/messages/{_CONVERSATION}/attachments/{{aid}}")
@signed_in
async def open_chat_file(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    conversation_id = request.match_info["cid"]
    variant = variant_of(request.query)
    await check_participant(request, conversation_id, viewer.user_id)
    content = await chat_file_content(
        request, conversation_id, request.match_info["aid"], viewer.user_id, variant
    )
    return file_response(request, content)
