"""What the files actor does to an upload before it is stored: CPU work with no IO.

`process` takes the bytes as uploaded and answers what to store: the type sniffed from the
content, the file to keep and its thumbnail. It blocks (decoding and encoding images,
rendering a PDF page), so the actor runs it with `asyncio.to_thread`.

- Images (JPEG, PNG, WebP) are decoded only once their size in pixels is known to be under
  MAX_PIXELS (a decompression bomb is refused before it is decoded), turned upright by their
  EXIF orientation, converted to sRGB when they carry an ICC profile, and encoded again
  from the pixels alone: no EXIF (so no GPS position, camera or owner), XMP, ICC profile,
  comment or text chunk survives. The first frame of an animation is kept.
- A PDF must open with PDFium and have a page; it is kept as uploaded, and its first page
  is rendered to the thumbnail.
- A thumbnail fits in 320 x 320 px, as WebP (JPEG where Pillow has no WebP encoder).
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]  # no type hints shipped
from PIL import Image, ImageOps, features

from actors.files.messages import (
    CONTENT_TYPES,
    JPEG,
    PDF,
    PNG,
    WEBP,
    ContentType,
    InvalidImage,
    TooLarge,
)
from actors.files.rules import (
    check_accepted,
    check_pixels,
    check_size,
    is_lossless_webp,
    sniff,
    thumbnail_size,
    thumbnail_type,
)

_PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
JPEG_QUALITY = 90  # a stored photo: visually the same as a camera's
WEBP_QUALITY = 90
WEBP_FALLBACK_QUALITY = 75
THUMBNAIL_QUALITY = 80
# what an image keeps of its metadata: only how its pixels are drawn (a PNG's transparent
# colour), nothing about where, when or with what it was taken
_KEPT_INFO = ("transparency",)
_WEBP = bool(features.check("webp"))
# uploads processed at once in this process, whatever the shards: a 40-megapixel image
# holds a few copies of 120 MB while it is turned and converted
_WORKERS = threading.BoundedSemaphore(2)
# PDFium is not thread-safe (pypdfium2's documentation): one call into it at a time in
# this process, whichever actor shard's thread makes it
_PDFIUM = threading.Lock()
# Pillow's errors for content that is not what it claims: truncated data, bad chunks,
# impossible sizes (UnidentifiedImageError is an OSError)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


@dataclass(frozen=True, slots=True)
class Processed:
    """What to store for one upload."""

    content: bytes  # the file to keep: an image encoded again, a PDF as uploaded
    content_type: ContentType
    sha256: str  # hex digest of `content`
    thumbnail: bytes
    thumbnail_type: ContentType


def process(content: bytes, accepted: tuple[str, ...] = CONTENT_TYPES) -> Processed:
    """The file to store and its thumbnail, from the bytes as uploaded.

    Raises TooLarge (over MAX_UPLOAD_BYTES, or an image over MAX_PIXELS), UnsupportedType
    (not a JPEG, PNG, WebP or PDF by its content, or not one of `accepted`) or
    InvalidImage (it cannot be read as the type it starts as). Blocking: run it with
    `asyncio.to_thread`.
    """
    check_size(len(content))
    content_type = sniff(content)
    check_accepted(content_type, accepted)
    with _WORKERS:
        if content_type == PDF:
            thumbnail = _pdf_thumbnail(content)
            stored = content
        else:
            picture = _decode(content, content_type)
            stored = _encode(picture, content_type, lossless=is_lossless_webp(content))
            thumbnail = _encode_thumbnail(picture)
    return Processed(
        content=stored,
        content_type=content_type,
        sha256=hashlib.sha256(stored).hexdigest(),
        thumbnail=thumbnail,
        thumbnail_type=thumbnail_type(_WEBP),
    )


# ── images ─────────────────────────────────────────────────────────────────────────────


def _decode(content: bytes, content_type: str) -> Image.Image:
    """The upload's pixels, upright and in sRGB, with no metadata but transparency."""
    try:
        with Image.open(io.BytesIO(content), formats=[_PIL_FORMATS[content_type]]) as opened:
            # the header is read, the pixels not yet: refuse a bomb before decoding it
            check_pixels(*opened.size)
            opened.load()
            icc = opened.info.get("icc_profile")
            picture = _to_srgb(_upright(opened), icc)
    except Image.DecompressionBombError:
        # Pillow's own guard, should its reading of the size differ from the header's
        raise TooLarge(
            "the image decodes to too many pixels",
            details={"field": "$.content", "unit": "pixels"},
        ) from None
    except _DECODE_ERRORS as error:
        raise InvalidImage(
            f"the file starts as {_PIL_FORMATS[content_type]} but cannot be read as one",
            details={"field": "$.content", "reason": type(error).__name__},
        ) from None
    return _without_metadata(picture)


def _upright(picture: Image.Image) -> Image.Image:
    """A copy turned as its EXIF orientation says (the stored file has no EXIF to say it)."""
    try:
        upright = ImageOps.exif_transpose(picture)
    except Exception:
        # a malformed EXIF block: the metadata is dropped anyway, the pixels stay as they are
        return picture.copy()
    return upright if upright is not None else picture.copy()


def _to_srgb(picture: Image.Image, icc: bytes | None) -> Image.Image:
    """The pixels converted from their ICC profile to sRGB (the profile itself is not
    kept, and a viewer assumes sRGB without one); unchanged without a usable profile."""
    if picture.mode == "CMYK":
        converted = _convert_profile(picture, icc, "RGB") if icc else None
        return converted if converted is not None else picture.convert("RGB")
    if not icc or picture.mode not in ("RGB", "RGBA"):
        return picture
    converted = _convert_profile(picture, icc, picture.mode)
    return converted if converted is not None else picture


def _convert_profile(picture: Image.Image, icc: bytes, mode: str) -> Image.Image | None:
    try:
        from PIL import ImageCms  # needs Pillow built with littlecms (its wheels are)

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(picture, source, target, outputMode=mode)
    except Exception:
        # ImageCms.PyCMSError, or an ImportError without littlecms: a damaged or unusable
        # profile keeps the pixels as they are (they are shown as sRGB, a little off)
        return None


def _without_metadata(picture: Image.Image) -> Image.Image:
    """`picture` (a copy made here, never the decoded file) holding nothing in `info` but
    transparency: Pillow's encoders fall back to what `info` holds (a JPEG's comment, a
    PNG's ICC profile). EXIF is refused at each `save` (`exif=b""`) besides."""
    picture.info = {key: picture.info[key] for key in _KEPT_INFO if key in picture.info}
    return picture


def _encode(picture: Image.Image, content_type: str, *, lossless: bool) -> bytes:
    """The stored image: the same format as uploaded, with nothing but pixels."""
    # exif=b"" everywhere: no encoder may reach for EXIF the image once had
    if content_type == JPEG:
        if picture.mode not in ("RGB", "L"):
            picture = picture.convert("RGB")
        return _saved(picture, "JPEG", {"quality": JPEG_QUALITY, "optimize": True, "exif": b""})
    if content_type == PNG:
        return _saved(picture, "PNG", {"exif": b""})
    picture = _displayable(picture)
    if lossless:
        return _saved(picture, "WEBP", {"lossless": True, "exif": b""})
    # libwebp's fast method first (a 24-megapixel photo in a second or two, not ten);
    # it can overflow its first partition on a very detailed picture, which its default
    # method at a lower quality does not
    return _saved(
        picture,
        "WEBP",
        {"quality": WEBP_QUALITY, "method": 2, "exif": b""},
        {"quality": WEBP_FALLBACK_QUALITY, "exif": b""},
    )


def _saved(picture: Image.Image, fmt: str, *attempts: dict[str, Any]) -> bytes:
    """`picture` encoded as `fmt` with the first options the encoder takes; InvalidImage
    when none does (the upload is refused, not crashed on)."""
    failure: Exception | None = None
    for options in attempts:
        buffer = io.BytesIO()
        try:
            picture.save(buffer, fmt, **options)
        except (OSError, ValueError) as error:
            failure = error
            continue
        return buffer.getvalue()
    raise InvalidImage(
        f"the image cannot be stored as {fmt}",
        details={"field": "$.content", "reason": type(failure).__name__},
    )


def _displayable(picture: Image.Image) -> Image.Image:
    """The picture as RGB, or RGBA when it has transparency (what WebP and a thumbnail
    take); 16-bit grey is scaled down, not clipped."""
    if picture.mode in ("RGB", "RGBA"):
        return picture
    if picture.mode.startswith("I"):
        picture = picture.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    transparent = picture.mode in ("LA", "La", "PA", "RGBa") or "transparency" in picture.info
    return picture.convert("RGBA" if transparent else "RGB")


def _encode_thumbnail(picture: Image.Image) -> bytes:
    """`picture` made to fit THUMBNAIL_SIDE, as WebP (or JPEG, on white)."""
    small = _displayable(picture)
    size = thumbnail_size(*small.size)
    if size != small.size:
        small = small.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if _WEBP:
        return _saved(small, "WEBP", {"quality": THUMBNAIL_QUALITY})
    if small.mode == "RGBA":
        backdrop = Image.new("RGB", small.size, "white")
        backdrop.paste(small, mask=small.getchannel("A"))
        small = backdrop
    return _saved(small, "JPEG", {"quality": THUMBNAIL_QUALITY})


# ── PDFs ───────────────────────────────────────────────────────────────────────────────


def _pdf_thumbnail(content: bytes) -> bytes:
    """The first page of the PDF, rendered to a thumbnail; InvalidImage when PDFium cannot
    open it (damaged, encrypted with a password) or it has no page to show."""
    with _PDFIUM:
        # every PDFium object is closed here, under the lock: left to the garbage collector,
        # it would be closed later on whatever thread, beside another render
        try:
            document = pdfium.PdfDocument(content)
        except pdfium.PdfiumError as error:
            raise _unreadable_pdf(error) from None
        try:
            if len(document) < 1:
                raise InvalidImage("the PDF has no page", details={"field": "$.content"})
            rendered = _render_first_page(document)
        finally:
            document.close()
    return _encode_thumbnail(rendered)


def _render_first_page(document: pdfium.PdfDocument) -> Image.Image:
    try:
        page = document[0]
    except pdfium.PdfiumError as error:
        raise _unreadable_pdf(error) from None
    try:
        width, height = page.get_size()  # in points
        if not (width > 0 and height > 0):
            raise InvalidImage("the PDF's first page has no size", details={"field": "$.content"})
        # rendered straight at the thumbnail's size: a page of any size costs the same
        target = thumbnail_size(max(1, round(width)), max(1, round(height)))
        scale = min(target[0] / width, target[1] / height)
        bitmap = page.render(scale=scale, may_draw_forms=False)
        try:
            # a copy: the bitmap's memory is PDFium's and goes when it is closed
            rendered: Image.Image = bitmap.to_pil().convert("RGB")
        finally:
            bitmap.close()
    except pdfium.PdfiumError as error:
        raise _unreadable_pdf(error) from None
    finally:
        page.close()
    # PDFium rounds the bitmap's sides its own way: a pixel off at most
    return rendered if rendered.size == target else rendered.resize(target)


def _unreadable_pdf(error: Exception) -> InvalidImage:
    return InvalidImage(
        "the PDF cannot be opened: it is damaged or protected by a password",
        details={"field": "$.content", "reason": type(error).__name__},
    )
