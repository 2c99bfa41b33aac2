"""The files actor's pure parts: type sniffing, limits, safe names, metadata stripping,
thumbnails of images and PDFs, storage keys and the S3 request signature."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import UTC, datetime

import pypdfium2 as pdfium  # type: ignore[import-untyped]  # no type hints shipped
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from actors.files.messages import (
    JPEG,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    PDF,
    PNG,
    WEBP,
    InvalidAttachment,
    InvalidImage,
    StoreAttachment,
    TooLarge,
    UnsupportedType,
    files_key,
)
from actors.files.processing import process
from actors.files.rules import (
    EXTENSIONS,
    STEM_MAX,
    THUMBNAIL_SIDE,
    ascii_filename,
    check_pixels,
    check_size,
    content_disposition,
    is_lossless_webp,
    safe_filename,
    sniff,
    thumbnail_filename,
    thumbnail_size,
)
from actors.files.storage import check_key, encode_path, object_key, sigv4_headers

# as many examples as the suite's Hypothesis profile asks (tests/conftest.py)
PROPERTY = settings(deadline=None)

# EXIF tags: the orientation, the camera's maker, and the pointer to the GPS block
ORIENTATION, MAKE, GPS_IFD = 0x0112, 0x010F, 0x8825
GPS = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 3.0)}
SECRETS = (b"Exif", b"GPS", b"CameraCo", b"secret-comment", b"secret-xmp", b"ICC_PROFILE")


# ── test files, made here ──────────────────────────────────────────────────────────────


def exif_with_gps(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "CameraCo"
    exif[GPS_IFD] = GPS
    return exif.tobytes()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def halves(width: int = 40, height: int = 20) -> Image.Image:
    """Red on the left half, blue on the right: where they end up shows any turn."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    return image


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo_with_gps(fmt: str, orientation: int = 1) -> bytes:
    """A photo as a phone makes it: EXIF with GPS and the camera, XMP, an ICC profile,
    and a comment or text chunk."""
    image = halves()
    exif, icc, xmp = exif_with_gps(orientation), srgb_icc(), b"<x:xmpmeta>secret-xmp</x:xmpmeta>"
    if fmt == "JPEG":
        return encoded(image, fmt, exif=exif, icc_profile=icc, xmp=xmp, comment=b"secret-comment")
    if fmt == "PNG":
        text = PngInfo()
        text.add_text("Comment", "secret-comment")
        text.add_itxt("XML:com.adobe.xmp", "secret-xmp")
        return encoded(image, fmt, exif=exif, icc_profile=icc, pnginfo=text)
    return encoded(image, fmt, exif=exif, icc_profile=icc, xmp=xmp)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels and holds none: a bomb costs nothing to make."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def pdf_by_hand() -> bytes:
    """A one-page PDF (200 x 100 pt) whose left half is painted black, written by hand
    with a correct cross-reference table."""
    drawing = b"0 0 0 rg 0 0 100 100 re f"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(drawing), drawing),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def pdf_by_pdfium(width: float = 595, height: float = 842) -> bytes:
    document = pdfium.PdfDocument.new()
    try:
        document.new_page(width, height).close()
        buffer = io.BytesIO()
        document.save(buffer)
        return buffer.getvalue()
    finally:
        document.close()


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


# ── sniffing: the content says what a file is, never its name ─────────────────────────


def test_a_png_named_pdf_is_a_png() -> None:
    """A PNG uploaded as `receipt.pdf` is stored as a PNG named `receipt.png`."""
    content = encoded(halves(), "PNG")
    done = process(content)
    assert sniff(content) == PNG
    assert done.content_type == PNG
    assert opened(done.content).format == "PNG"
    assert safe_filename("receipt.pdf", done.content_type) == "receipt.png"


@pytest.mark.parametrize(
    "content",
    [
        b"just some text, saved as photo.jpg",
        b"MZ\x90\x00\x03 an executable",
        b"<html><body>%PDF-1.4</body></html>",  # a polyglot: HTML first
        b"GIF89a\x01\x00\x01\x00",  # an image, but not one we take
        b"\xff\xd8",  # too short to be a JPEG
        b"RIFF\x00\x00\x00\x00WAVEfmt ",  # RIFF, but sound
    ],
)
def test_anything_else_is_refused_whatever_its_name(content: bytes) -> None:
    """Text, executables, polyglots and other formats are `unsupported_type`, even named .jpg."""
    with pytest.raises(UnsupportedType) as refused:
        process(content)
    assert refused.value.code == "unsupported_type"
    assert refused.value.details == {"field": "$.content"}


def test_an_empty_file_is_refused() -> None:
    """An empty upload has no type."""
    with pytest.raises(UnsupportedType, match="empty"):
        sniff(b"")


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (b"\xff\xd8\xff\xe0", JPEG),
        (b"\x89PNG\r\n\x1a\n", PNG),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", WEBP),
        (b"%PDF-1.7\n", PDF),
    ],
)
def test_each_signature_names_its_type(head: bytes, content_type: str) -> None:
    """The four signatures, each read as its type."""
    assert sniff(head + b"\x00" * 16) == content_type


@PROPERTY
@given(st.binary(max_size=64))
def test_sniffing_any_bytes_answers_a_type_only_for_its_signature(content: bytes) -> None:
    """Whatever the bytes, sniffing names a type only when they start with its signature."""
    try:
        found = sniff(content)
    except UnsupportedType:
        return
    starts = {
        JPEG: content.startswith(b"\xff\xd8\xff"),
        PNG: content.startswith(b"\x89PNG\r\n\x1a\n"),
        WEBP: content[:4] == b"RIFF" and content[8:12] == b"WEBP",
        PDF: content.startswith(b"%PDF-"),
    }
    assert starts[found]


# ── limits ─────────────────────────────────────────────────────────────────────────────


def test_a_file_over_ten_mebibytes_is_refused() -> None:
    """One byte over 10 MiB is `too_large` (in bytes); exactly 10 MiB passes the check."""
    check_size(MAX_UPLOAD_BYTES)
    oversize = b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_UPLOAD_BYTES
    with pytest.raises(TooLarge) as refused:
        process(oversize)
    assert refused.value.code == "too_large"
    assert refused.value.details["unit"] == "bytes"


def test_an_oversize_command_is_refused_where_it_is_made() -> None:
    """StoreAttachment with over 10 MiB of content is `too_large` at construction (the
    edge's refusal), and is also a ValueError (a decoder's refusal)."""
    with pytest.raises(TooLarge) as refused:
        StoreAttachment(
            group_id="g",
            expense_id="e",
            attachment_id="a",
            user_id="u",
            filename="big.jpg",
            content=b"\xff" * (MAX_UPLOAD_BYTES + 1),
        )
    assert isinstance(refused.value, ValueError)
    assert refused.value.details["field"] == "$.content"


def test_a_command_field_out_of_bounds_names_the_field() -> None:
    """An empty group id is `invalid_attachment` naming `$.group_id`."""
    with pytest.raises(InvalidAttachment) as refused:
        StoreAttachment(
            group_id="",
            expense_id="e",
            attachment_id="a",
            user_id="u",
            filename="x.png",
            content=b"x",
        )
    assert refused.value.details == {"field": "$.group_id"}


def test_commands_shard_by_group() -> None:
    """Every command of one group lands on one shard key: the group."""
    message = StoreAttachment(
        group_id="g1", expense_id="e", attachment_id="a", user_id="u", filename="", content=b"x"
    )
    assert files_key(message) == "g1"


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    """A small PNG claiming 8,000 x 8,000 pixels (over the cap, under Pillow's own guard)
    is `too_large` in pixels: refused from its header, not decoded (its data is junk)."""
    bomb = png_header_only(8_000, 8_000)
    assert len(bomb) < 200
    with pytest.raises(TooLarge) as refused:
        process(bomb)
    assert refused.value.details == {"field": "$.content", "limit": MAX_PIXELS, "unit": "pixels"}


def test_a_bomb_past_pillows_own_guard_is_refused_too() -> None:
    """A PNG claiming 20,000 x 20,000 pixels trips Pillow's guard first: still `too_large`."""
    with pytest.raises(TooLarge):
        process(png_header_only(20_000, 20_000))


def test_the_pixel_cap_is_inclusive() -> None:
    """MAX_PIXELS pixels pass; one row more, or no pixels at all, is refused."""
    check_pixels(MAX_PIXELS // 1000, 1000)
    for width, height in ((MAX_PIXELS // 1000, 1001), (0, 10), (10, 0)):
        with pytest.raises(TooLarge):
            check_pixels(width, height)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_truncated_image_is_invalid(fmt: str) -> None:
    """An image cut short is `invalid_image`, not a crash."""
    whole = encoded(halves(400, 400), fmt)
    with pytest.raises(InvalidImage) as refused:
        process(whole[: len(whole) // 2])
    assert refused.value.code == "invalid_image"


def test_a_broken_pdf_is_invalid() -> None:
    """A file that starts as a PDF but is not one is `invalid_image`."""
    with pytest.raises(InvalidImage, match="PDF"):
        process(b"%PDF-1.4\nthis is no PDF at all\n")


SEEDS = {
    "jpeg": photo_with_gps("JPEG"),
    "png": photo_with_gps("PNG"),
    "webp": photo_with_gps("WEBP"),
    "pdf": pdf_by_hand(),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns of corrupt EXIF, then copes
@settings(deadline=None)
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(min_value=0),
)
def test_damaged_files_are_refused_never_crashed_on(
    seed: str, changes: list[tuple[int, int]], cut: int
) -> None:
    """Any file of ours with bytes changed and its end cut off is stored or refused with a
    code (`invalid_image`, …), never an unexpected error."""
    damaged = bytearray(SEEDS[seed])
    for position, value in changes:
        damaged[position % len(damaged)] = value
    damaged = damaged[: max(1, len(damaged) - cut % len(damaged))]
    try:
        done = process(bytes(damaged))
    except (UnsupportedType, InvalidImage, TooLarge):
        return
    assert done.thumbnail


# ── metadata stripped, orientation applied ─────────────────────────────────────────────


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_gps_xmp_icc_and_comments_are_stripped(fmt: str) -> None:
    """A photo with GPS in its EXIF, XMP, an ICC profile and a comment is stored with none
    of them: its bytes hold no trace, and Pillow reads no EXIF or profile back."""
    upload = photo_with_gps(fmt)
    assert opened(upload).getexif().get_ifd(GPS_IFD)  # the upload does carry a position
    done = process(upload)
    stored = opened(done.content)
    assert stored.format == fmt
    assert dict(stored.getexif()) == {}
    assert not stored.getexif().get_ifd(GPS_IFD)
    assert "icc_profile" not in stored.info
    assert "xmp" not in stored.info
    assert "comment" not in stored.info
    for secret in SECRETS:
        assert secret not in done.content
    for chunk in (b"eXIf", b"iCCP", b"tEXt", b"iTXt", b"zTXt"):
        assert chunk not in done.content


def test_the_exif_orientation_is_applied_before_it_is_dropped() -> None:
    """A 40 x 20 photo tagged "turn 90° clockwise" is stored as 20 x 40, red on top: it
    shows the right way up with no EXIF left to say so."""
    done = process(photo_with_gps("JPEG", orientation=6))
    stored = opened(done.content).convert("RGB")
    assert stored.size == (20, 40)
    top, bottom = stored.getpixel((10, 5)), stored.getpixel((10, 35))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 200 > top[2]
    assert bottom[2] > 200 > bottom[0]


def test_transparency_survives_and_a_lossless_webp_stays_lossless() -> None:
    """Stripping keeps what draws the pixels: a PNG's alpha, a WebP's losslessness."""
    image = Image.new("RGBA", (30, 30), (10, 20, 30, 0))
    stored_png = opened(process(encoded(image, "PNG")).content)
    assert stored_png.mode == "RGBA"
    assert stored_png.getpixel((0, 0)) == (10, 20, 30, 0)
    lossless = encoded(halves(), "WEBP", lossless=True, exif=exif_with_gps())
    assert is_lossless_webp(lossless)
    assert is_lossless_webp(process(lossless).content)
    assert not is_lossless_webp(process(encoded(halves(), "WEBP", quality=70)).content)


# ── thumbnails ─────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("size", "expected"), [((1600, 1200), (320, 240)), ((90, 4000), (7, 320))])
def test_an_image_thumbnail_fits_in_320_px(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    """A thumbnail keeps the picture's shape within 320 x 320 px, as WebP."""
    done = process(encoded(Image.new("RGB", size, "white"), "JPEG"))
    thumbnail = opened(done.thumbnail)
    assert done.thumbnail_type == WEBP
    assert thumbnail.format == "WEBP"
    assert thumbnail.size == expected


def test_a_pdf_thumbnail_is_its_first_page_rendered() -> None:
    """A hand-written PDF is kept as uploaded; its thumbnail shows the page, black on the
    left where it was painted, white on the right."""
    upload = pdf_by_hand()
    done = process(upload)
    assert done.content_type == PDF
    assert done.content == upload
    thumbnail = opened(done.thumbnail).convert("L")
    assert thumbnail.size == (200, 100)  # never larger than the page
    left, right = thumbnail.getpixel((50, 50)), thumbnail.getpixel((150, 50))
    assert isinstance(left, int | float)
    assert isinstance(right, int | float)
    assert left < 60 < 200 < right


def test_a_large_pdf_page_is_rendered_down_to_the_thumbnail() -> None:
    """An A4 page made with PDFium renders straight to 226 x 320."""
    done = process(pdf_by_pdfium())
    assert opened(done.thumbnail).size == (226, 320)


@PROPERTY
@given(st.integers(min_value=1, max_value=50_000), st.integers(min_value=1, max_value=50_000))
def test_a_thumbnail_fits_keeps_the_shape_and_never_grows(width: int, height: int) -> None:
    """Within the box, at least 1 px, never larger than the picture, the long side at 320
    when it had more, and the shape within rounding."""
    thumb_width, thumb_height = thumbnail_size(width, height)
    assert 1 <= thumb_width <= min(width, THUMBNAIL_SIDE)
    assert 1 <= thumb_height <= min(height, THUMBNAIL_SIDE)
    if max(width, height) > THUMBNAIL_SIDE:
        assert max(thumb_width, thumb_height) == THUMBNAIL_SIDE
        # the short side is the exact one rounded to nearest (or 1 when it would be 0)
        if width >= height:
            assert (
                thumb_height == 1
                or 2 * abs(thumb_height * width - height * THUMBNAIL_SIDE) <= width
            )
        else:
            assert (
                thumb_width == 1 or 2 * abs(thumb_width * height - width * THUMBNAIL_SIDE) <= height
            )
    else:
        assert (thumb_width, thumb_height) == (width, height)


# ── names ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("uploaded", "content_type", "expected"),
    [
        ("receipt.pdf", PNG, "receipt.png"),
        ("Receipt 2024-05.JPG", JPEG, "Receipt 2024-05.jpg"),
        ("../../etc/passwd", PDF, "passwd.pdf"),
        ("C:\\Users\\me\\scan.pdf", PDF, "scan.pdf"),
        ('a"b;c\r\nSet-Cookie: x.png', PNG, "a_b_cSet-Cookie_ x.png"),
        ("", WEBP, "attachment.webp"),
        ("....", JPEG, "attachment.jpg"),
        (".hidden", PNG, "hidden.png"),
        ("invoice\u202egpj.exe", PDF, "invoicegpj.pdf"),  # a right-to-left override
        ("Квитанция.jpg", JPEG, "Квитанция.jpg"),
        ("CON.png", PNG, "_CON.png"),
        ("x" * 300 + ".png", PNG, "x" * STEM_MAX + ".png"),
    ],
)
def test_a_safe_name_is_made_from_what_was_uploaded(
    uploaded: str, content_type: str, expected: str
) -> None:
    """No folders, controls, quotes or reserved names; the real type's extension."""
    assert safe_filename(uploaded, content_type) == expected


@PROPERTY
@given(st.text(max_size=400), st.sampled_from([JPEG, PNG, WEBP, PDF]))
def test_any_name_becomes_a_safe_one(uploaded: str, content_type: str) -> None:
    """Whatever was uploaded: no separator, control or quote, the right extension, a
    bounded length, not hidden, and making it safe again changes nothing."""
    name = safe_filename(uploaded, content_type)
    stem, _, extension = name.rpartition(".")
    assert extension == EXTENSIONS[content_type]
    assert 1 <= len(stem) <= STEM_MAX + 1
    assert not name.startswith(".")
    assert not any(c in name for c in '/\\"<>|:*?;\r\n\x00')
    assert all(c.isprintable() for c in name)
    assert safe_filename(name, content_type) == name


@pytest.mark.parametrize(
    ("filename", "inline", "header"),
    [
        ("receipt.png", False, 'attachment; filename="receipt.png"'),
        ("receipt.png", True, 'inline; filename="receipt.png"'),
        (
            "Quittung Café.pdf",
            False,
            "attachment; filename=\"Quittung Cafe.pdf\"; filename*=UTF-8''Quittung%20Caf%C3%A9.pdf",
        ),
        (
            "Квитанция.jpg",
            False,
            "attachment; filename=\"attachment.jpg\"; filename*=UTF-8''"
            "%D0%9A%D0%B2%D0%B8%D1%82%D0%B0%D0%BD%D1%86%D0%B8%D1%8F.jpg",
        ),
    ],
)
def test_the_content_disposition_header(filename: str, inline: bool, header: str) -> None:
    """An ASCII name for every client, and the exact one (RFC 8187) beside it when they differ."""
    assert content_disposition(filename, inline=inline) == header


@PROPERTY
@given(st.text(max_size=200), st.sampled_from([JPEG, PNG, WEBP, PDF]))
def test_any_header_is_ascii_and_cannot_be_broken_out_of(uploaded: str, content_type: str) -> None:
    """The header is printable ASCII, and its quoted name holds no quote or backslash."""
    header = content_disposition(safe_filename(uploaded, content_type))
    assert header.isascii()
    assert header.isprintable()
    quoted = header.split('filename="', 1)[1].split('"', 1)[0]
    assert "\\" not in quoted
    assert header.count('"') == 2
    assert ascii_filename(safe_filename(uploaded, content_type)).endswith(
        "." + EXTENSIONS[content_type]
    )


def test_a_thumbnail_is_named_after_its_file() -> None:
    """`receipt.pdf`'s thumbnail downloads as `receipt-thumbnail.webp`."""
    assert thumbnail_filename("receipt.pdf", WEBP) == "receipt-thumbnail.webp"
    assert thumbnail_filename("scan.png", JPEG) == "scan-thumbnail.jpg"


# ── storage keys and the S3 signature ──────────────────────────────────────────────────


def test_storage_keys_are_random_and_safe() -> None:
    """Keys made by the actor pass the check; anything that could leave the folder fails."""
    key = object_key("original")
    assert check_key(key) == key
    assert key.startswith("attachments/")
    assert key.endswith("/original")
    assert object_key("original") != key
    for bad in ("../x", "/etc/passwd", "a//b", "a/../b", "A/b", "a/b/", "", "a b", "a\\b"):
        with pytest.raises(ValueError, match="storage key"):
            check_key(bad)


def test_the_s3_signature_matches_aws_worked_example() -> None:
    """AWS's own SigV4 example for S3 (GET /test.txt with a Range, 2013-05-24) signs to
    the signature AWS documents."""
    headers = sigv4_headers(
        method="GET",
        host="examplebucket.s3.amazonaws.com",
        path=encode_path("/test.txt"),
        headers={"Range": "bytes=0-9"},
        payload_sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        when=datetime(2013, 5, 24, tzinfo=UTC),
    )
    assert headers["x-amz-date"] == "20130524T000000Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
