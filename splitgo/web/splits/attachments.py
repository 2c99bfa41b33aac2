"""The receipts and attachments of an expense (issue 17, item 3): upload, list, fetch and
delete, for members only.

Who may: every route first asks splits for the expense as the caller (`GetExpense`): to
someone who is not in the group it does not exist (404), and nothing of the files is
read or sent. Uploads and deletions also need the group not archived (409
`group_archived`). Then the files actor (actors/files) does the work: it sniffs the type
from the content, strips the metadata, makes the thumbnail and keeps the bytes in its
storage.

The upload is `multipart/form-data` with the file in a part named `file`. It is read as
a stream, chunk by chunk, and refused (413 `too_large`, naming `file`) as soon as it
passes MAX_UPLOAD_BYTES: the app's 1 MiB body limit does not apply to a streamed part,
and a larger file is never held whole. With an `Idempotency-Key`, the attachment's id is
derived from the caller, the route and the key, so a retry answers the first attachment
(the files actor compares the bytes; other bytes under the same key are a 409).

A fetched file is sent with headers that keep a browser from doing anything with it but
show an image or save a download: its sniffed type, `nosniff`, a sandboxing CSP,
`Content-Disposition` (inline for images, a download for a PDF), a private cache and its
SHA-256 as ETag.

`read_upload`, `attachment_id_for`, `file_refusal` and `file_response` are shared with the
web app's pages (splitgo/pages/attachments.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import BodyPartReader, web

from actors.files.messages import (
    CONTENT_TYPES,
    FILENAME_TEXT_MAX,
    FILES,
    MAX_PER_EXPENSE,
    MAX_UPLOAD_BYTES,
    AttachmentContent,
    AttachmentList,
    AttachmentView,
    DeleteAttachment,
    GetAttachment,
    ListAttachments,
    StoreAttachment,
    Variant,
    content_disposition,
)
from actors.runtime import DomainError, Message
from actors.splits.messages import GetExpense, GetGroupHeader, GroupArchived, GroupHeader
from splitgo.web.actors import ask
from splitgo.web.declare import (
    Content,
    Header,
    Raw,
    documented,
    idempotency,
    page,
    streamed,
)
from splitgo.web.idempotency import HEADER, key_for
from splitgo.web.problems import (
    FieldError,
    ProblemError,
    from_domain_error,
    json_response,
    to_json,
)
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id

routes = web.RouteTableDef()

FILE_FIELD = "file"  # the multipart part that holds the file
ACCEPTED = ",".join(CONTENT_TYPES)  # what an <input type=file accept=…> offers
CHUNK_BYTES = 64 * 1024  # read from the socket at a time
TEXT_PART_MAX = 4 * 1024  # any other part (a form's CSRF token, its idempotency key)
PARTS_MAX = 8  # parts of one upload: a form's few inputs and the file
# the multipart framing around the file: a declared Content-Length past the file's limit
# plus this is refused before a byte is read
ENVELOPE_BYTES = 64 * 1024
STORE_TIMEOUT = 60.0  # decoding, stripping and thumbnailing 10 MiB, and two puts to S3
READ_TIMEOUT = 30.0
# where attachment ids derived from an idempotency key live (a constant: ids must be the
# same on every node and after a restart)
ATTACHMENT_NAMESPACE = uuid.UUID("6f1d2b9e-41c7-5a8e-9a36-0c7f4e2d8b15")
# a fetched file can run nothing, load nothing and be framed by nobody; an image opened
# on its own is shown by the browser's image viewer, which styles itself inline (and,
# nosniff and a sniffed image type, the bytes are never read as a document of ours)
FILE_CSP = "sandbox; default-src 'none'"
IMAGE_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
FILE_CACHE = "private, max-age=3600"
VARIANTS: dict[str, Variant] = {"original": "original", "thumbnail": "thumbnail"}
# the files actor's fields that are the uploaded file, as the form's part names it
_FILE_FIELDS = frozenset({"$.content", "$.filename"})

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
FILE_REPLY = Content(
    media_type="*/*",
    description="the file: its type sniffed at upload (image/jpeg, image/png, image/webp or "
    "application/pdf; a thumbnail is image/webp or image/jpeg)",
    headers={
        "Content-Disposition": ("inline for an image, attachment for a PDF; its name", True),
        "ETag": ("the SHA-256 of the bytes, quoted", True),
        "Cache-Control": ("private: only the caller's browser keeps it", True),
    },
)


class VariantQuery(msgspec.Struct):
    """`?variant=` of a fetch: the file as stored, or its thumbnail."""

    variant: Annotated[
        Literal["original", "thumbnail"],
        msgspec.Meta(description="`original` (the default) or `thumbnail` (320 px at most)"),
    ] = "original"


@dataclass(frozen=True, slots=True)
class Upload:
    """One multipart upload: the file's name as sent, its bytes, and the other parts
    (short text inputs) by name."""

    filename: str
    content: bytes
    fields: Mapping[str, str]


# ── rules (no IO) ──────────────────────────────────────────────────────────────────────


def attachment_id_for(scope: str, key: str) -> str:
    """The attachment id of an upload sent with an idempotency key: the same scope (the
    caller and the route) and key make the same id, on any node."""
    return str(uuid.uuid5(ATTACHMENT_NAMESPACE, f"{scope}\n{key}"))


def too_large(filename: str | None = None) -> ProblemError:
    """413 `too_large` naming the file."""
    name = f"{filename}: " if filename else ""
    message = f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
    return ProblemError(
        413,
        "too_large",
        f"{name}{message}; send at most {MAX_UPLOAD_BYTES:,} bytes",
        errors=[FieldError(field=FILE_FIELD, message=message)],
    )


def file_refusal(filename: str) -> Callable[[DomainError], ProblemError | None]:
    """How a files actor's refusal of `filename` is answered: an error of the content or
    the name names the `file` part (and the file, in the detail); a reused attachment id
    names the Idempotency-Key header."""

    def refuse(error: DomainError) -> ProblemError | None:
        field = error.details.get("field")
        if field in _FILE_FIELDS:
            problem = from_domain_error(error)
            problem.detail = f"{filename}: {error.message}" if filename else error.message
            problem.errors = [FieldError(field=FILE_FIELD, message=error.message)]
            return problem
        if field == "$.attachment_id":
            problem = from_domain_error(error)
            problem.errors = [FieldError(field=HEADER, message=error.message)]
            return problem
        return None

    return refuse


def file_headers(content: AttachmentContent) -> dict[str, str]:
    """The headers a stored file is sent with (see the module's docstring)."""
    image = content.content_type.startswith("image/")
    return {
        "Content-Disposition": content_disposition(content.filename, inline=image),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": IMAGE_CSP if image else FILE_CSP,
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": FILE_CACHE,
        "ETag": f'"{content.sha256}"',
    }


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header names `etag` (or is `*`)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def file_response(request: web.Request, content: AttachmentContent) -> web.Response:
    """The file, or 304 when the browser holds these very bytes already."""
    headers = file_headers(content)
    if not_modified(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    return web.Response(body=content.content, content_type=content.content_type, headers=headers)


# ── reading an upload ──────────────────────────────────────────────────────────────────


async def _read_capped(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes, or None as soon as they pass `limit` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _malformed(detail: str) -> ProblemError:
    return ProblemError(400, "invalid_multipart", detail)


async def read_upload(
    request: web.Request,
    *,
    on_file: Callable[[Mapping[str, str]], None] | None = None,
    text_max: int = TEXT_PART_MAX,
) -> Upload:
    """The upload of `request`: 415 unless it is multipart/form-data, 413 `too_large` past
    MAX_UPLOAD_BYTES (before it is read, when Content-Length says so), 422 naming `file`
    without one. `on_file` sees the text parts read before the file, before any of the
    file is read (a form checks its CSRF token there). A text part is at most `text_max`
    bytes (a chat form's message is longer than the default)."""
    if request.content_type != "multipart/form-data":
        raise ProblemError(
            415,
            "unsupported_media_type",
            f"send the file as multipart/form-data, in a part named `{FILE_FIELD}`",
        )
    length = request.content_length
    if length is not None and length > MAX_UPLOAD_BYTES + ENVELOPE_BYTES:
        raise too_large()
    try:
        reader = await request.multipart()
    except (ValueError, KeyError, AssertionError) as error:
        raise _malformed(f"the multipart body cannot be read: {error}") from None
    fields: dict[str, str] = {}
    found: Upload | None = None
    parts = 0
    while True:
        try:
            part = await reader.next()
        except (ValueError, AssertionError, RuntimeError) as error:
            raise _malformed(f"the multipart body cannot be read: {error}") from None
        if part is None:
            break
        parts += 1
        if parts > PARTS_MAX:
            raise _malformed(f"at most {PARTS_MAX} parts; the file goes in `{FILE_FIELD}`")
        if not isinstance(part, BodyPartReader):
            raise _malformed("a nested multipart part is not taken")
        if part.name == FILE_FIELD and found is None:
            if on_file is not None:
                on_file(fields)
            filename = part.filename or ""
            content = await _read_capped(part, MAX_UPLOAD_BYTES)
            if content is None:
                raise too_large(filename)
            found = Upload(filename=filename, content=content, fields=fields)
            continue
        text = await _read_capped(part, text_max)
        name = part.name or ""
        if text is None:
            raise ProblemError(
                413,
                "too_large",
                f"the part `{name}` is larger than {text_max:,} bytes",
                errors=[FieldError(field=name or "$", message="too large")],
            )
        if name and part.filename is None:
            fields.setdefault(name, text.decode("utf-8", errors="replace"))
    if found is None:
        raise ProblemError(
            422,
            "validation_error",
            f"{FILE_FIELD}: choose a file to upload",
            errors=[FieldError(field=FILE_FIELD, message="choose a file to upload")],
        )
    return Upload(filename=found.filename, content=found.content, fields=dict(fields))


# ── asking ─────────────────────────────────────────────────────────────────────────────


async def check_member(
    request: web.Request, group: str, expense_id: str, user_id: str, *, changing: bool
) -> None:
    """Splits' word that `user_id` is in the group and the expense is there (404
    otherwise); when `changing`, that the group is not archived (409)."""
    if changing:
        header: GroupHeader = await ask_splits(
            request, GetGroupHeader(group_id=group, user_id=user_id)
        )
        if header.archived:
            raise GroupArchived(
                "the group is archived: it can be read but not changed",
                details={"group_id": group},
            )
    await ask_splits(request, GetExpense(group_id=group, user_id=user_id, expense_id=expense_id))


async def store_upload(
    request: web.Request,
    upload: Upload,
    *,
    group: str,
    expense_id: str,
    user_id: str,
    attachment_id: str,
) -> AttachmentView:
    """Ask the files actor to keep the upload; its refusals name the `file` part."""
    view: AttachmentView = await ask_to_store(
        request,
        upload,
        lambda filename: StoreAttachment(
            group_id=group,
            expense_id=expense_id,
            attachment_id=attachment_id,
            user_id=user_id,
            filename=filename,
            content=upload.content,
        ),
    )
    return view


async def ask_to_store(
    request: web.Request, upload: Upload, command: Callable[[str], Message]
) -> Any:
    """Ask the files actor to keep the upload with the command `command` makes of its
    name; its refusals, as the command is made or by the actor, name the `file` part."""
    refusal = file_refusal(upload.filename)
    try:
        # the bounds are checked as the message is made: a refusal names the file too
        message = command(upload.filename.replace("\x00", "")[:FILENAME_TEXT_MAX])
    except DomainError as error:
        raise (refusal(error) or error) from None
    return await ask(request, FILES, message, timeout=STORE_TIMEOUT, refusal=refusal)


async def list_of(request: web.Request, group: str, expense_id: str) -> AttachmentList:
    """The expense's attachments (the caller checked membership)."""
    found: AttachmentList = await ask(
        request, FILES, ListAttachments(group_id=group, expense_id=expense_id)
    )
    return found


async def content_of(
    request: web.Request, group: str, expense_id: str, attachment_id: str, variant: Variant
) -> AttachmentContent:
    """The stored bytes (the caller checked membership)."""
    message = GetAttachment(
        group_id=group, expense_id=expense_id, attachment_id=attachment_id, variant=variant
    )
    content: AttachmentContent = await ask(request, FILES, message, timeout=READ_TIMEOUT)
    return content


async def delete_one(
    request: web.Request, group: str, expense_id: str, attachment_id: str, user_id: str
) -> None:
    """Delete for everyone (the caller checked membership and the archive)."""
    await ask(
        request,
        FILES,
        DeleteAttachment(
            group_id=group, expense_id=expense_id, attachment_id=attachment_id, user_id=user_id
        ),
    )


def variant_of(query: Mapping[str, str]) -> Variant:
    """`?variant=`, or a 422 naming it."""
    variant = VARIANTS.get(query.get("variant", "original"))
    if variant is None:
        raise ProblemError(
            422,
            "validation_error",
            "variant: original or thumbnail",
            errors=[FieldError(field="variant", message="original or thumbnail")],
        )
    return variant


def _base(request: web.Request) -> str:
    return f"/api/v1/groups/{group_id(request)}/expenses/{request.match_info['eid']}/attachments"


# ── routes ─────────────────────────────────────────────────────────────────────────────


@routes.post("/api/v1/groups/{id}/expenses/{eid}/attachments")
@streamed(
    summary="Attach a receipt or another file to an expense",
    description="`multipart/form-data` with the file in the part `file`: a JPEG, "
    f"PNG or WebP image or a PDF of at most {MAX_UPLOAD_BYTES:,} bytes (413 "
    "`too_large` past it). The type is read from the content, whatever the name "
    "says (422 `unsupported_type`); images are stored without their metadata "
    "(EXIF, GPS), and every file gets a thumbnail. Members only; at most "
    f"{MAX_PER_EXPENSE} per expense (409 `too_many_attachments`). With an "
    "Idempotency-Key, a retry answers the first attachment.",
    tags=["splits"],
    body=UPLOAD_BODY,
    body_media_type="multipart/form-data",
    headers=[idempotency(required=False)],
    responses={
        201: Content(
            AttachmentView,
            headers={"Location": ("the attachment's file", True)},
            description="Created",
        )
    },
    errors=[409],  # group_archived, too_many_attachments, idempotency_conflict
)
async def upload_attachment(request: web.Request) -> web.Response:
    claims = authenticate(request)
    key = key_for(request, None, caller=claims.sub)  # a malformed key: 400 before the body
    group, expense_id = group_id(request), request.match_info["eid"]
    await check_member(request, group, expense_id, claims.sub, changing=True)
    upload = await read_upload(request)
    view = await store_upload(
        request,
        upload,
        group=group,
        expense_id=expense_id,
        user_id=claims.sub,
        attachment_id=attachment_id_for(key.scope, key.key) if key else str(uuid.uuid4()),
    )
    response = json_response(to_json(view), status=201)
    response.headers["Location"] = f"{_base(request)}/{view.id}"
    return response


@routes.get("/api/v1/groups/{id}/expenses/{eid}/attachments")
@documented(
    summary="An expense's attachments",
    description=f"Oldest first; at most {MAX_PER_EXPENSE}, so one page.",
    tags=["splits"],
    responses={200: page(AttachmentView)},
    errors=[422],  # an id out of bounds
)
async def list_attachments(request: web.Request) -> web.Response:
    claims = authenticate(request)
    group, expense_id = group_id(request), request.match_info["eid"]
    await check_member(request, group, expense_id, claims.sub, changing=False)
    found = await list_of(request, group, expense_id)
    return json_response({"items": to_json(found.items), "next_cursor": None})


@routes.get("/api/v1/groups/{id}/expenses/{eid}/attachments/{aid}")
@documented(
    summary="An attachment's file, or its thumbnail",
    description="Members only: to anyone else it does not exist (404). Sent with its "
    "sniffed type, `X-Content-Type-Options: nosniff`, a sandboxing CSP and "
    "`Content-Disposition` (inline for an image, a download for a PDF). "
    "`If-None-Match` with its ETag: 304.",
    tags=["splits"],
    query=VariantQuery,
    headers=[Header("If-None-Match", "the ETag of the copy the caller holds")],
    responses={200: FILE_REPLY, 304: Content(description="Not Modified: the copy held is it")},
    errors=[422],
)
async def fetch_attachment(request: web.Request) -> web.Response:
    claims = authenticate(request)
    variant = variant_of(request.query)
    group, expense_id = group_id(request), request.match_info["eid"]
    await check_member(request, group, expense_id, claims.sub, changing=False)
    content = await content_of(request, group, expense_id, request.match_info["aid"], variant)
    return file_response(request, content)


@routes.delete("/api/v1/groups/{id}/expenses/{eid}/attachments/{aid}")
@documented(
    summary="Delete an attachment",
    description="For everyone in the group; its files go with it. Deleting it again "
    "answers the same.",
    tags=["splits"],
    responses={204: None},
    errors=[409, 422],  # group_archived; an id out of bounds
)
async def delete_attachment(request: web.Request) -> web.Response:
    claims = authenticate(request)
    group, expense_id = group_id(request), request.match_info["eid"]
    await check_member(request, group, expense_id, claims.sub, changing=True)
    await delete_one(request, group, expense_id, request.match_info["aid"], claims.sub)
    return web.Response(status=204)
