"""The files actor's whole public interface: commands, replies and errors.

Receipts and other attachments of an expense: JPEG, PNG and WebP images and PDFs. The
type is read from the content, never from the name; images are stored re-encoded without
their metadata (EXIF, GPS, XMP, ICC, comments) and every stored file has a thumbnail.

Files of chat conversations (issue 18) go the same way, the same types: uploaded first
(`StoreChatAttachment`), then carried by a message (`AttachChatFiles`, which the edge asks
before it posts the message and undoes with `DetachChatFiles` when the post is refused),
read by participants (`GetChatAttachment`) and deleted with their message
(`DeleteChatFiles`). Files uploaded and never sent are deleted after UNSENT_HOURS.

The files actor trusts its caller on who may do what: the HTTP edge first asks splits
whether the caller is a member of the group (and the expense exists), or chat whether the
caller is in the conversation, and only then asks this actor. Every command names the
group or the conversation (the shard key): an attachment is found only through the group
and expense, or the conversation, it was stored in.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal
from urllib.parse import quote

from msgspec import Meta

from actors.chat.messages import ATTACHMENTS_MAX
from actors.runtime import DomainError, Message
from actors.runtime.bounds import Id, check_bounds, refusal

FILES = "files"  # the actor type's name

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MiB: the largest file accepted
# What a stored file may weigh when read back: a re-encoded image can outgrow its upload
# (a tightly compressed PNG saved again), never by this much.
MAX_STORED_BYTES = 4 * MAX_UPLOAD_BYTES
MAX_PIXELS = 40_000_000  # 40 megapixels (a 7,300 x 5,500 photo): a decoded image's cap
MAX_PER_EXPENSE = 20  # attachments one expense keeps at once
FILENAME_TEXT_MAX = 1_000  # a name as uploaded; it is cut to a safe one of at most ~100
# files a person has uploaded to one conversation and not sent yet, at once
MAX_UNSENT_PER_CONVERSATION = 20
UNSENT_HOURS = 24  # a chat file not sent in a message this long after its upload is deleted

JPEG, PNG, WEBP, PDF = "image/jpeg", "image/png", "image/webp", "application/pdf"
ContentType = Literal["image/jpeg", "image/png", "image/webp", "application/pdf"]
CONTENT_TYPES: tuple[str, ...] = (JPEG, PNG, WEBP, PDF)
CHAT_CONTENT_TYPES: tuple[str, ...] = CONTENT_TYPES  # a chat message carries what a receipt may
Variant = Literal["original", "thumbnail"]

DEFAULT_STEM = "attachment"  # a download's name when nothing of the uploaded one is usable

Filename = Annotated[str, Meta(max_length=FILENAME_TEXT_MAX)]
Content = Annotated[bytes, Meta(max_length=MAX_UPLOAD_BYTES)]


def files_key(message: Any) -> str | None:
    """Shard key: the group, so one group's attachments change in order on one shard; for
    a chat file the conversation (a direct one has no group)."""
    for field in ("group_id", "conversation_id"):
        value = getattr(message, field, None)
        if value:
            return str(value)
    return None


# ── errors ─────────────────────────────────────────────────────────────────────────────


class UnsupportedType(DomainError):
    """The content is not a JPEG, PNG, WebP or PDF (whatever its name says)."""

    code = "unsupported_type"
    category = "invalid"


class TooLarge(DomainError):
    """The file is over MAX_UPLOAD_BYTES, or the image decodes to over MAX_PIXELS;
    `details["limit"]` and `details["unit"]` ("bytes" or "pixels") say which."""

    code = "too_large"
    category = "invalid"


class InvalidImage(DomainError):
    """The content starts as a supported type but cannot be read as one (truncated,
    corrupt, a PDF with no page or behind a password)."""

    code = "invalid_image"
    category = "invalid"


class AttachmentNotFound(DomainError):
    """No such attachment in this group (or expense) or conversation, or it was deleted,
    or it has no thumbnail. For `AttachChatFiles`, `details["field"]` names the id
    (`$.attachment_ids[1]`): not this conversation's, not the caller's, or sent already
    in another message."""

    code = "attachment_not_found"
    category = "not_found"


class InvalidAttachment(DomainError):
    """A field of a command is outside its bounds; `details["field"]` names it."""

    code = "invalid_attachment"
    category = "invalid"


class TooManyAttachments(DomainError):
    """The expense already keeps MAX_PER_EXPENSE attachments: delete one first. Or the
    person has MAX_UNSENT_PER_CONVERSATION files uploaded to the conversation and not
    sent."""

    code = "too_many_attachments"
    category = "conflict"


class StorageUnavailable(DomainError):
    """The file store could not be reached or refused the request; nothing was kept.
    The message names the store and the status, never its credentials."""

    code = "storage_unavailable"
    category = "unavailable"


# ── commands ───────────────────────────────────────────────────────────────────────────


class FilesInput(Message, frozen=True):
    """What the files actor handles: the fields' bounds hold wherever one is made or
    decoded, or it is InvalidAttachment naming the field (`$.filename`)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidAttachment)


class StoreAttachment(FilesInput, frozen=True):
    """Keep `content` as an attachment of the expense. `attachment_id` is the caller's
    (a UUID): a retry with the same id and content answers the first attachment; the same
    id with anything else is `IdempotencyConflict`. The bytes as uploaded; the type is
    sniffed from them, and `filename` only names the download."""

    group_id: Id
    expense_id: Id
    attachment_id: Id
    user_id: Id  # the uploader (a member: the edge checked)
    filename: Filename
    content: Content

    def __post_init__(self) -> None:
        _check_upload_size(self.content)
        super().__post_init__()


def _check_upload_size(content: object) -> None:
    """The size first, as its own refusal: the generic bound would only say "invalid"."""
    if isinstance(content, bytes | bytearray) and len(content) > MAX_UPLOAD_BYTES:
        raise refusal(TooLarge)(
            f"the file is {len(content):,} bytes; at most {MAX_UPLOAD_BYTES:,}",
            details={"field": "$.content", "limit": MAX_UPLOAD_BYTES, "unit": "bytes"},
        )


class ListAttachments(FilesInput, frozen=True):
    """The expense's attachments, oldest first."""

    group_id: Id
    expense_id: Id


class GetAttachment(FilesInput, frozen=True):
    """The stored file (`original`) or its thumbnail. With `expense_id`, the attachment
    must belong to that expense too (the route names it)."""

    group_id: Id
    attachment_id: Id
    variant: Variant = "original"
    expense_id: Id | None = None


class DeleteAttachment(FilesInput, frozen=True):
    """Delete an attachment for everyone; its stored files go with it. Deleting one that
    is gone already answers the same (a retry)."""

    group_id: Id
    attachment_id: Id
    user_id: Id  # who deletes it (a member: the edge checked)
    expense_id: Id | None = None


class StoreChatAttachment(FilesInput, frozen=True):
    """Keep `content` (a JPEG, PNG or WebP image or a PDF) as a file of the conversation, not yet
    sent in a message. `attachment_id` is the caller's, as for `StoreAttachment`."""

    conversation_id: Id
    attachment_id: Id
    user_id: Id  # the uploader (a participant: the edge checked)
    filename: Filename
    content: Content

    def __post_init__(self) -> None:
        _check_upload_size(self.content)
        super().__post_init__()


class GetChatAttachment(FilesInput, frozen=True):
    """A conversation's file or its thumbnail, for `user_id` (a participant: the edge
    checked): one sent in a message, or one they uploaded and have not sent yet."""

    conversation_id: Id
    attachment_id: Id
    user_id: Id
    variant: Variant = "original"


class AttachChatFiles(FilesInput, frozen=True):
    """The files `user_id` uploaded to the conversation go in the message `message_id`
    (about to be posted): answered in the order named. Each must be theirs, of this
    conversation, not deleted and not in another message (a retry for the same message
    answers the same); else AttachmentNotFound naming the id, and none is taken."""

    conversation_id: Id
    user_id: Id
    message_id: Id
    attachment_ids: Annotated[list[Id], Meta(min_length=1, max_length=ATTACHMENTS_MAX)]


class DetachChatFiles(FilesInput, frozen=True):
    """The message `message_id` was not posted after all: its files are unsent again."""

    conversation_id: Id
    message_id: Id


class DeleteChatFiles(FilesInput, frozen=True):
    """The message `message_id` was deleted: so are its files, for everyone (again:
    nothing more happens)."""

    conversation_id: Id
    message_id: Id
    user_id: Id  # who deleted the message


# ── replies ────────────────────────────────────────────────────────────────────────────


class AttachmentView(Message, frozen=True):
    id: str
    group_id: str
    expense_id: str
    filename: str  # safe for a Content-Disposition header, extension of the real type
    content_type: str  # sniffed from the content: one of CONTENT_TYPES
    size: int  # bytes of the stored original
    uploaded_by: str
    created_at: str  # RFC 3339, UTC
    has_thumbnail: bool


class AttachmentList(Message, frozen=True):
    items: list[AttachmentView]


class ChatAttachmentView(Message, frozen=True):
    """A conversation's file: `message_id` is the message that carries it, None until it
    is sent."""

    id: str
    conversation_id: str
    filename: str  # safe for a Content-Disposition header, extension of the real type
    content_type: str  # sniffed from the content: one of CHAT_CONTENT_TYPES
    size: int  # bytes of the stored original
    uploaded_by: str
    created_at: str  # RFC 3339, UTC
    has_thumbnail: bool
    message_id: str | None = None


class ChatAttachmentList(Message, frozen=True):
    items: list[ChatAttachmentView]


class AttachmentContent(Message, frozen=True):
    """A stored file's bytes, what they are and the name to download them under."""

    content: bytes
    content_type: str
    filename: str
    sha256: str  # hex digest of `content`: an ETag


class AttachmentDeleted(Message, frozen=True):
    id: str


class ChatFilesDone(Message, frozen=True):
    """What `DetachChatFiles` and `DeleteChatFiles` changed: the files' ids."""

    ids: list[str]


# ── download names (the edge sends them as Content-Disposition) ─────────────────────────

_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._()\- ]")
# RFC 8187 attr-char beyond letters and digits (quote keeps those and "_.-~" anyway)
_ATTR_CHARS = "!#$&+-.^_`|~"


def ascii_filename(filename: str) -> str:
    """An ASCII stand-in for `filename`, for clients that ignore `filename*`: accents
    dropped (é → e), anything else outside a small safe set as `_`, and a stem with no
    letter or digit left (a name in Cyrillic) replaced by DEFAULT_STEM."""
    stem, dot, extension = filename.rpartition(".")
    if not dot:
        stem, extension = filename, ""
    stem = _ascii(stem).strip(" .")
    if not any(c.isalnum() for c in stem):
        stem = DEFAULT_STEM
    extension = _ascii(extension).strip(" .")
    return f"{stem}.{extension}" if extension else stem


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return _ASCII_UNSAFE.sub("_", decomposed.encode("ascii", "ignore").decode("ascii"))


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """The Content-Disposition header of a download named `filename` (RFC 6266): an
    ASCII `filename` and the exact name as RFC 8187 `filename*`. `inline` lets a browser
    show it in place (only for images; a PDF is always downloaded)."""
    kind = "inline" if inline else "attachment"
    fallback = ascii_filename(filename)
    exact = quote(filename, safe=_ATTR_CHARS)
    if exact == fallback:
        return f'{kind}; filename="{fallback}"'
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
