"""The files actor's rules with no IO: what a file is (from its first bytes, never its
name), how big it may be, and the names it is stored and downloaded under."""

from __future__ import annotations

import re
import unicodedata

from actors.files.messages import (
    DEFAULT_STEM,
    JPEG,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    PDF,
    PNG,
    WEBP,
    ContentType,
    TooLarge,
    UnsupportedType,
)

# the download names' header moved to messages.py (the edge sends it); kept here by name
from actors.files.messages import ascii_filename as ascii_filename
from actors.files.messages import content_disposition as content_disposition

# the signatures ("magic numbers") of the formats we take, at the very start of the file
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PDF_MAGIC = b"%PDF-"

EXTENSIONS: dict[str, str] = {JPEG: "jpg", PNG: "png", WEBP: "webp", PDF: "pdf"}
THUMBNAIL_SIDE = 320  # px: a thumbnail fits in a square of this side
STEM_MAX = 100  # characters of a name before its extension
_CHUNKS_MAX = 64  # chunks looked at before a WebP's image data is given up on

# Windows refuses these as file names whatever the extension: a download named so fails
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{n}" for n in range(1, 10)}
    | {f"LPT{n}" for n in range(1, 10)}
)
# characters no file system or header should see in a name (besides controls)
_UNSAFE = re.compile(r'[\\/:*?"<>|;\x00-\x1f\x7f]')
_SPACES = re.compile(r"\s+")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def sniff(content: bytes) -> ContentType:
    """The type of `content` from its signature: JPEG, PNG, WebP or PDF, else
    `UnsupportedType` (an empty file, text, an executable… whatever it is named)."""
    if not content:
        raise UnsupportedType("the file is empty", details={"field": "$.content"})
    if content.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    if content.startswith(_PNG_MAGIC):
        return "image/png"
    if len(content) >= 12 and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    # strictly at the start: readers that hunt for the header further in disagree on
    # what such a file is, and a polyglot (HTML before the header) is one file as two types
    if content.startswith(_PDF_MAGIC):
        return "application/pdf"
    raise UnsupportedType(
        "the file is not a JPEG, PNG, WebP image or a PDF", details={"field": "$.content"}
    )


_KINDS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WebP", PDF: "PDF"}


def check_accepted(content_type: str, accepted: tuple[str, ...]) -> None:
    """`UnsupportedType` for a type sniffed that is not one of `accepted` (a chat message
    carries images, not PDFs)."""
    if content_type not in accepted:
        kinds = [_KINDS.get(kind, kind) for kind in accepted]
        listed = ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else kinds[0]
        raise UnsupportedType(
            f"the file is a {_KINDS.get(content_type, content_type)}; send a {listed} file",
            details={"field": "$.content"},
        )


def check_size(size: int) -> None:
    """`TooLarge` for more than MAX_UPLOAD_BYTES."""
    if size > MAX_UPLOAD_BYTES:
        raise TooLarge(
            f"the file is {size:,} bytes; at most {MAX_UPLOAD_BYTES:,}",
            details={"field": "$.content", "limit": MAX_UPLOAD_BYTES, "unit": "bytes"},
        )


def check_pixels(width: int, height: int) -> None:
    """`TooLarge` for an image of more than MAX_PIXELS (a decompression bomb: a small
    file that decodes to gigabytes), or of no pixels at all."""
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise TooLarge(
            f"the image is {width:,} x {height:,} pixels; at most {MAX_PIXELS:,} pixels",
            details={"field": "$.content", "limit": MAX_PIXELS, "unit": "pixels"},
        )


def thumbnail_size(width: int, height: int, side: int = THUMBNAIL_SIDE) -> tuple[int, int]:
    """The size of a thumbnail of a width x height picture: its shape kept, fitting in
    side x side, never larger than the picture, at least 1 x 1."""
    if width <= 0 or height <= 0:
        raise ValueError("a picture has a positive width and height")
    longest = max(width, height)
    if longest <= side:
        return width, height
    # integer arithmetic, rounded to nearest: the long side is exactly `side`
    if width >= height:
        return side, max(1, (height * side + longest // 2) // longest)
    return max(1, (width * side + longest // 2) // longest), side


def is_lossless_webp(content: bytes) -> bool:
    """True for a WebP whose (first) image is lossless, a `VP8L` chunk rather than `VP8 `:
    it is stored again losslessly. Walks the RIFF chunks (the extended format puts `VP8X`,
    `ICCP`, `ANIM`… first), at most `_CHUNKS_MAX` of them."""
    offset = 12
    for _ in range(_CHUNKS_MAX):
        header = content[offset : offset + 8]
        if len(header) < 8:
            return False
        fourcc, size = header[:4], int.from_bytes(header[4:], "little")
        if fourcc == b"VP8L":
            return True
        if fourcc == b"VP8 ":
            return False
        if fourcc == b"ANMF":
            # an animation frame holds its image's chunks after a 16-byte frame header
            offset += 8 + 16
            continue
        offset += 8 + size + (size & 1)  # chunks are padded to an even size
    return False


def safe_filename(name: str, content_type: str) -> str:
    """The name an attachment is kept and downloaded under: the last part of what was
    uploaded (no folders), without control or reserved characters, at most STEM_MAX
    characters before the extension, which is always the real type's (`receipt.pdf` that
    is a PNG becomes `receipt.png`). Letters of any script stay."""
    extension = EXTENSIONS[content_type]
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    # controls, format characters (bidirectional overrides that disguise an extension),
    # unassigned and private-use code points
    base = "".join(c for c in base if not unicodedata.category(c).startswith("C"))
    base = _UNSAFE.sub("_", base)
    base = _SPACES.sub(" ", base).strip(" .")
    stem = _EXTENSION.sub("", base).strip(" .")
    stem = stem[:STEM_MAX].strip(" .") or DEFAULT_STEM
    if stem.split(".")[0].upper() in _RESERVED:
        stem = f"_{stem}"
    return f"{stem}.{extension}"


def thumbnail_filename(filename: str, content_type: str) -> str:
    """The download name of a thumbnail of `filename`: `receipt.pdf` → `receipt-thumbnail.webp`."""
    stem = filename.rpartition(".")[0] or DEFAULT_STEM
    return f"{stem}-thumbnail.{EXTENSIONS.get(content_type, 'jpg')}"


def thumbnail_type(webp: bool) -> ContentType:
    """Thumbnails are WebP (smaller), or JPEG where Pillow has no WebP encoder."""
    return "image/webp" if webp else "image/jpeg"
