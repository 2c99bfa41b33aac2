"""The files actor through an ActorSystem (codec check on) on a real PostgreSQL, once with
the local folder and once with an S3 server that checks signatures (moto, started by the
tests): store, list, fetch the original and the thumbnail, delete; refusals keep nothing."""

from __future__ import annotations

import asyncio
import io
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from PIL import Image

from actors.files import messages
from actors.files.actor import Files
from actors.files.messages import (
    MAX_PER_EXPENSE,
    AttachmentContent,
    AttachmentDeleted,
    AttachmentList,
    AttachmentNotFound,
    AttachmentView,
    DeleteAttachment,
    GetAttachment,
    InvalidImage,
    ListAttachments,
    StorageUnavailable,
    StoreAttachment,
    TooLarge,
    TooManyAttachments,
    UnsupportedType,
    files_key,
)
from actors.files.storage import LocalFolderStorage, ObjectMissing, S3Storage, Storage
from actors.runtime import (
    ActorRef,
    ActorSystem,
    IdempotencyConflict,
    MemoryDeadLetterStore,
    Message,
    Outbox,
)
from actors.splits import messages as splits_messages
from actors.splits.messages import ExpenseDeleted, GroupDeleted
from tests.support.node import free_port
from tests.support.s3_server import s3_server
from transport import Codec, MemoryTransport

pytestmark = pytest.mark.integration

GPS_IFD = 0x8825


# ── what is uploaded ───────────────────────────────────────────────────────────────────


def photo_with_gps() -> bytes:
    """A 640 x 480 JPEG with GPS, the camera and a comment in it."""
    exif = Image.Exif()
    exif[0x010F] = "CameraCo"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 3.0)}
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(
        buffer, "JPEG", exif=exif.tobytes(), comment=b"secret-comment"
    )
    return buffer.getvalue()


def small_png(shade: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, shade, shade)).save(buffer, "PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming width x height pixels, with no pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def one_page_pdf() -> bytes:
    """A tiny PDF, written by hand (PDFium mends the offsets it does not check)."""
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 600] >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


# ── the storages: a local folder, and a bucket on the S3 server ───────────────────────


@dataclass
class Backend:
    """A storage, and a look at everything kept in it (its keys, sorted)."""

    storage: Storage
    stored: Callable[[], list[str]]


class Flaky:
    """A storage that fails on demand: puts of thumbnails, or every delete."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.fail_thumbnail_puts = False
        self.fail_deletes = False

    @property
    def name(self) -> str:
        return "flaky"

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.fail_thumbnail_puts and key.endswith("/thumbnail"):
            raise StorageUnavailable("the store is down", details={"store": "flaky"})
        await self.inner.put(key, data, content_type)

    async def get(self, key: str) -> bytes:
        return await self.inner.get(key)

    async def delete(self, key: str) -> None:
        if self.fail_deletes:
            raise StorageUnavailable("the store is down", details={"store": "flaky"})
        await self.inner.delete(key)


def folder_keys(root: Path) -> Callable[[], list[str]]:
    def stored() -> list[str]:
        if not root.exists():
            return []
        return sorted(
            path.relative_to(root).as_posix()
            for path in root.rglob("*")
            if path.is_file() or not any(path.iterdir())  # files, and folders left empty
        )

    return stored


@pytest.fixture(params=["local", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each test runs against the local folder and against a fresh bucket on the S3 server."""
    if request.param == "local":
        root = tmp_path / "files"
        yield Backend(LocalFolderStorage(root), folder_keys(root))
        return
    server = await asyncio.to_thread(s3_server)
    bucket = await asyncio.to_thread(server.new_bucket)
    async with aiohttp.ClientSession() as http:
        storage = S3Storage(
            http, server.endpoint, bucket, server.region, server.access_key, server.secret_key
        )

        def stored() -> list[str]:
            return server.keys(bucket)

        yield Backend(storage, stored)


@pytest.fixture
def local(tmp_path: Path) -> Backend:
    """The local folder alone, for what does not depend on the storage."""
    root = tmp_path / "files"
    return Backend(LocalFolderStorage(root), folder_keys(root))


# ── the actor running ──────────────────────────────────────────────────────────────────


@dataclass
class Harness:
    system: ActorSystem
    files: ActorRef
    actors: list[Files]
    group: str = field(default_factory=lambda: str(uuid.uuid4()))
    expense: str = field(default_factory=lambda: str(uuid.uuid4()))

    async def ask(self, message: Message) -> Any:
        return await self.files.ask(message)

    async def upload(
        self,
        content: bytes,
        filename: str = "receipt.jpg",
        *,
        attachment_id: str | None = None,
        expense: str | None = None,
        user_id: str = "ann",
    ) -> AttachmentView:
        view: AttachmentView = await self.ask(
            StoreAttachment(
                group_id=self.group,
                expense_id=expense or self.expense,
                attachment_id=attachment_id or str(uuid.uuid4()),
                user_id=user_id,
                filename=filename,
                content=content,
            )
        )
        return view

    async def fetch(self, attachment_id: str, variant: str = "original") -> AttachmentContent:
        content: AttachmentContent = await self.ask(
            GetAttachment(
                group_id=self.group,
                attachment_id=attachment_id,
                variant=variant,  # type: ignore[arg-type]
                expense_id=self.expense,
            )
        )
        return content

    async def listed(self, expense: str | None = None) -> list[str]:
        page: AttachmentList = await self.ask(
            ListAttachments(group_id=self.group, expense_id=expense or self.expense)
        )
        return [view.id for view in page.items]


@asynccontextmanager
async def running(
    pool: asyncpg.Pool, storage: Storage, clock: Callable[[], float] | None = None
) -> AsyncIterator[Harness]:
    codec = Codec()
    for module in (messages, splits_messages):
        codec.register_module(module)
    system = ActorSystem(
        MemoryTransport(node_id="files-test", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        outbox=Outbox(pool, interval=0.05),
        ask_timeout=20.0,
    )
    await system.start()
    actors: list[Files] = []

    def make() -> Files:
        options: dict[str, Any] = {"sweep_interval": 0}
        if clock is not None:
            options["clock"] = clock
        actors.append(Files(pool, storage, **options))
        return actors[-1]

    files = system.spawn(Files, "files", factory=make, shards=2, key=files_key)
    try:
        yield Harness(system, files, actors)
    finally:
        await system.stop(timeout=5)


async def rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT * FROM attachments ORDER BY created_at, id"))


# ── the whole life of an attachment ───────────────────────────────────────────────────


async def test_an_attachment_is_stored_listed_fetched_and_deleted(
    pool: asyncpg.Pool, backend: Backend
) -> None:
    """A photo with GPS and a PDF are stored (the photo without its metadata), listed in
    order, fetched with their thumbnails, and the photo deleted: gone from the list, the
    fetch and the storage, while the PDF stays."""
    async with running(pool, backend.storage) as harness:
        photo = await harness.upload(photo_with_gps(), "../Holiday receipt.pdf")
        assert photo.content_type == "image/jpeg"
        assert photo.filename == "Holiday receipt.jpg"
        assert photo.uploaded_by == "ann"
        assert photo.has_thumbnail
        assert (photo.group_id, photo.expense_id) == (harness.group, harness.expense)
        assert datetime.fromisoformat(photo.created_at) <= datetime.now(UTC)
        paper = await harness.upload(one_page_pdf(), "invoice.pdf", user_id="bob")
        assert paper.content_type == "application/pdf"
        assert await harness.listed() == [photo.id, paper.id]
        assert await harness.listed(expense=str(uuid.uuid4())) == []

        original = await harness.fetch(photo.id)
        assert original.content_type == "image/jpeg"
        assert original.filename == "Holiday receipt.jpg"
        assert len(original.content) == photo.size
        stored = Image.open(io.BytesIO(original.content))
        assert stored.size == (640, 480)
        assert not stored.getexif().get_ifd(GPS_IFD)
        for secret in (b"Exif", b"CameraCo", b"secret-comment"):
            assert secret not in original.content
        thumbnail = await harness.fetch(photo.id, "thumbnail")
        assert thumbnail.content_type == "image/webp"
        assert thumbnail.filename == "Holiday receipt-thumbnail.webp"
        assert Image.open(io.BytesIO(thumbnail.content)).size == (320, 240)

        assert (await harness.fetch(paper.id)).content == one_page_pdf()
        page = Image.open(io.BytesIO((await harness.fetch(paper.id, "thumbnail")).content))
        assert page.size == (213, 320)
        assert len(backend.stored()) == 4  # two originals, two thumbnails

        deleted = await harness.ask(
            DeleteAttachment(group_id=harness.group, attachment_id=photo.id, user_id="bob")
        )
        assert deleted == AttachmentDeleted(id=photo.id)
        assert await harness.listed() == [paper.id]
        for variant in ("original", "thumbnail"):
            with pytest.raises(AttachmentNotFound):
                await harness.fetch(photo.id, variant)
        kept = await rows(pool)
        assert [row["id"] for row in kept] == [photo.id, paper.id]
        assert kept[0]["deleted_by"] == "bob"
        assert kept[0]["purged_at"] is not None
        assert sorted(backend.stored()) == sorted(
            [kept[1]["storage_key"], kept[1]["thumbnail_key"]]
        )
        for key in (kept[0]["storage_key"], kept[0]["thumbnail_key"]):
            with pytest.raises(ObjectMissing):
                await backend.storage.get(key)
        # deleting it again (a retry) answers the same and changes nothing
        again = await harness.ask(
            DeleteAttachment(group_id=harness.group, attachment_id=photo.id, user_id="ann")
        )
        assert again == deleted
        assert (await rows(pool))[0]["deleted_by"] == "bob"


@pytest.mark.parametrize(
    ("content", "filename", "refusal"),
    [
        pytest.param(b"Total: 12.50 EUR, thanks!", "receipt.jpg", UnsupportedType, id="text"),
        pytest.param(photo_with_gps()[:600], "cut.jpg", InvalidImage, id="truncated"),
        pytest.param(b"%PDF-1.4\nnot a document", "broken.pdf", InvalidImage, id="broken-pdf"),
        pytest.param(png_claiming(8_000, 8_000), "bomb.png", TooLarge, id="bomb"),
    ],
)
async def test_a_refused_upload_stores_nothing(
    pool: asyncpg.Pool, backend: Backend, content: bytes, filename: str, refusal: type
) -> None:
    """Text named .jpg, a cut photo, a broken PDF and a bomb are refused with their code,
    and neither a row nor a byte is kept."""
    async with running(pool, backend.storage) as harness:
        with pytest.raises(refusal):
            await harness.upload(content, filename)
        assert await harness.listed() == []
    assert await rows(pool) == []
    assert backend.stored() == []


async def test_an_oversize_upload_is_refused_before_it_is_sent(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """Over 10 MiB is `too_large` where the command is made: the actor never sees it."""
    async with running(pool, local.storage) as harness:
        with pytest.raises(TooLarge):
            await harness.upload(b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024), "huge.jpg")
    assert await rows(pool) == []
    assert local.stored() == []


# ── retries, limits and where an attachment is found ──────────────────────────────────


async def test_a_retry_answers_the_first_and_another_upload_under_its_id_conflicts(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """The same id and bytes answer the first attachment (one row, one set of files);
    the same id with other bytes, another expense or another group is a conflict."""
    async with running(pool, local.storage) as harness:
        attachment_id = str(uuid.uuid4())
        first = await harness.upload(small_png(), "a.png", attachment_id=attachment_id)
        again = await harness.upload(small_png(), "renamed.png", attachment_id=attachment_id)
        assert again == first
        with pytest.raises(IdempotencyConflict):
            await harness.upload(small_png(200), "a.png", attachment_id=attachment_id)
        with pytest.raises(IdempotencyConflict):
            await harness.upload(
                small_png(), "a.png", attachment_id=attachment_id, expense=str(uuid.uuid4())
            )
        other_group = Harness(harness.system, harness.files, harness.actors)
        with pytest.raises(IdempotencyConflict):
            await other_group.upload(small_png(), "a.png", attachment_id=attachment_id)
    assert len(await rows(pool)) == 1
    assert len(local.stored()) == 2


async def test_an_attachment_is_found_only_through_its_group_and_expense(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """Another group, or another expense named in the route, does not find it."""
    async with running(pool, local.storage) as harness:
        view = await harness.upload(small_png(), "a.png")
        strangers = Harness(harness.system, harness.files, harness.actors)
        with pytest.raises(AttachmentNotFound):
            await strangers.fetch(view.id)
        with pytest.raises(AttachmentNotFound):
            await strangers.ask(
                DeleteAttachment(group_id=strangers.group, attachment_id=view.id, user_id="x")
            )
        with pytest.raises(AttachmentNotFound):
            await harness.ask(
                GetAttachment(
                    group_id=harness.group, attachment_id=view.id, expense_id=str(uuid.uuid4())
                )
            )
        assert (await harness.fetch(view.id)).content_type == "image/png"


async def test_an_expense_keeps_at_most_twenty_attachments(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """The 21st attachment of an expense is refused until one is deleted."""
    async with running(pool, local.storage) as harness:
        views = [await harness.upload(small_png(i), f"{i}.png") for i in range(MAX_PER_EXPENSE)]
        with pytest.raises(TooManyAttachments):
            await harness.upload(small_png(99), "one-more.png")
        await harness.ask(
            DeleteAttachment(group_id=harness.group, attachment_id=views[0].id, user_id="ann")
        )
        await harness.upload(small_png(99), "one-more.png")
        assert len(await harness.listed()) == MAX_PER_EXPENSE


# ── failures of the storage ────────────────────────────────────────────────────────────


async def test_a_failed_put_keeps_neither_row_nor_bytes(pool: asyncpg.Pool, local: Backend) -> None:
    """When the thumbnail cannot be put, the upload is refused as `storage_unavailable`
    and the original already put is removed again; a retry then succeeds."""
    flaky = Flaky(local.storage)
    flaky.fail_thumbnail_puts = True
    async with running(pool, flaky) as harness:
        attachment_id = str(uuid.uuid4())
        with pytest.raises(StorageUnavailable):
            await harness.upload(small_png(), attachment_id=attachment_id)
        assert await rows(pool) == []
        assert local.stored() == []
        flaky.fail_thumbnail_puts = False
        view = await harness.upload(small_png(), "a.png", attachment_id=attachment_id)
        assert await harness.listed() == [view.id]


async def test_bytes_a_failed_removal_left_are_swept_later(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """A delete while the storage is down still deletes the attachment; the upkeep removes
    its bytes once the storage is back (and leaves fresh deletions to their handler)."""
    flaky = Flaky(local.storage)
    now = [1_800_000_000.0]
    async with running(pool, flaky, clock=lambda: now[0]) as harness:
        view = await harness.upload(small_png(), "a.png")
        flaky.fail_deletes = True
        await harness.ask(
            DeleteAttachment(group_id=harness.group, attachment_id=view.id, user_id="ann")
        )
        assert await harness.listed() == []
        assert len(local.stored()) == 2
        assert (await rows(pool))[0]["purged_at"] is None
        flaky.fail_deletes = False
        sweeper = harness.actors[0].attachments
        assert await sweeper.sweep() == 0  # too fresh: its own handler may still be at it
        now[0] += 600
        assert await sweeper.sweep() == 1
        assert local.stored() == []
        assert (await rows(pool))[0]["purged_at"] is not None
        assert await sweeper.sweep() == 0


async def test_a_deleted_expense_takes_its_attachments_along(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """splits' ExpenseDeleted deletes the expense's attachments and their bytes (told
    twice, the second changes nothing), and leaves other expenses' alone."""
    async with running(pool, local.storage) as harness:
        await harness.upload(small_png(1), "a.png")
        await harness.upload(one_page_pdf(), "b.pdf")
        other = await harness.upload(small_png(2), "c.png", expense=str(uuid.uuid4()))
        event = ExpenseDeleted(
            group_id=harness.group,
            group_name="Trip",
            expense_id=harness.expense,
            description="Dinner",
            deleted_by="ann",
            participants=["ann", "bob"],
        )
        for _ in range(2):
            await harness.files.tell(event, key=harness.group)

        async def gone() -> bool:
            return await harness.listed() == [] and len(local.stored()) == 2

        async with asyncio.timeout(10):
            while not await gone():
                await asyncio.sleep(0.02)
        assert await harness.listed(expense=other.expense_id) == [other.id]


async def test_a_deleted_group_takes_every_receipt_along(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """splits' GroupDeleted deletes the receipts of all the group's expenses and their
    bytes, and leaves another group's alone."""
    async with running(pool, local.storage) as harness:
        first = await harness.upload(small_png(1), "a.png")
        await harness.upload(small_png(2), "b.png", expense=str(uuid.uuid4()))
        other_group = Harness(harness.system, harness.files, harness.actors)
        kept = await other_group.upload(small_png(3), "c.png")
        event = GroupDeleted(group_id=harness.group, group_name="Trip", deleted_by="ann")
        await harness.files.tell(event, key=harness.group)

        async def gone() -> bool:
            return await harness.listed() == [] and len(local.stored()) == 2

        async with asyncio.timeout(10):
            while not await gone():
                await asyncio.sleep(0.02)
        assert await other_group.listed() == [kept.id]
        assert first.id not in {row["id"] for row in await rows(pool) if row["deleted_at"] is None}


# ── the S3 adapter on its own ──────────────────────────────────────────────────────────


async def test_the_s3_server_refuses_a_wrong_signature() -> None:
    """The server checks signatures: a wrong secret key is refused (`storage_unavailable`
    naming S3's code), the right one is not."""
    server = await asyncio.to_thread(s3_server)
    bucket = await asyncio.to_thread(server.new_bucket)
    async with aiohttp.ClientSession() as http:
        wrong = S3Storage(http, server.endpoint, bucket, server.region, server.access_key, "no")
        with pytest.raises(StorageUnavailable) as refused:
            await wrong.put("attachments/aa/aa/original", b"x", "image/png")
        assert refused.value.details["code"] == "SignatureDoesNotMatch"
        right = S3Storage(
            http, server.endpoint, bucket, server.region, server.access_key, server.secret_key
        )
        await right.put("attachments/aa/aa/original", b"x", "image/png")
        assert await right.get("attachments/aa/aa/original") == b"x"
    assert "secret" not in repr(right)
    assert server.secret_key not in repr(right)


async def test_the_s3_adapter_retries_a_server_error_and_then_gives_up() -> None:
    """A 503 is tried again and the next answer counts; a store that keeps failing, or
    cannot be reached, is `storage_unavailable` after three tries."""
    answers: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        status = answers.pop(0) if answers else 503
        return web.Response(status=status, body=b"stored" if request.method == "GET" else b"")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            store = S3Storage(http, f"http://127.0.0.1:{port}", "b", "us-east-1", "AK", "SK")
            answers[:] = [503, 200]
            assert await store.get("attachments/aa/aa/original") == b"stored"
            answers[:] = [500, 500, 500]
            with pytest.raises(StorageUnavailable) as refused:
                await store.put("attachments/aa/aa/original", b"x", "image/png")
            assert refused.value.details["status"] == 500
            gone = S3Storage(http, f"http://127.0.0.1:{free_port()}", "b", "r", "AK", "SK")
            with pytest.raises(StorageUnavailable):
                await gone.delete("attachments/aa/aa/original")
    finally:
        await runner.cleanup()
