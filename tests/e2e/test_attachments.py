"""Receipts and attachments of an expense against real nodes: through the JSON API
(upload, list, fetch the file or its thumbnail, delete) and through the web app as a
browser without JavaScript uses it (the expense page's upload form, thumbnails, delete
with its confirmation page).

What is checked: photos with a GPS position in their EXIF come back without any EXIF; a
PDF gets a thumbnail and downloads; the type is read from the content (a text file named
`.jpg` is a 422 naming the file); an oversized upload is refused, declared or streamed,
and nothing is kept; someone outside the group gets 404 and never the bytes; a retry with
the same Idempotency-Key makes one attachment; the fetched file's safe headers; and the
same flow with the files in an S3-compatible store (moto, started here).
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from PIL import Image

from actors.files.messages import MAX_UPLOAD_BYTES
from splitgo.pages.attachments import size_words
from splitgo.web.splits.attachments import attachment_id_for, not_modified
from tests.e2e.test_pages_expenses import Page, page_of
from tests.e2e.test_splits import add_expense, equal, expense_body, new_group, verify
from tests.support.api import PASSWORD, Api, Reply, User
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.s3_server import S3Server, s3_server

pytestmark = [pytest.mark.e2e]
# the async tests share the module's node, so its event loop (the rules' tests need none)
on_module_loop = pytest.mark.asyncio(loop_scope="module")

JWT = {"SPLITGO_JWT_KEYS": "att-k1:attachments-signing-secret-long-enough-0123456789"}
GPS_IFD = 0x8825
MAKE = 0x010F


# ── files made here ────────────────────────────────────────────────────────────────────


def exif_with_gps() -> Image.Exif:
    """EXIF naming a camera and a position (Berlin)."""
    exif = Image.Exif()
    exif[MAKE] = "SpyCam"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    return exif


def photo(kind: str, size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG or PNG with a GPS position in its EXIF (checked: it is there)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, kind, exif=exif_with_gps().tobytes())
    data = buffer.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD), "the test photo has GPS"
    return data


def pdf() -> bytes:
    """A one-page PDF."""
    buffer = io.BytesIO()
    Image.new("RGB", (300, 400), (40, 40, 200)).save(buffer, "PDF")
    return buffer.getvalue()


def form_of(filename: str, content: bytes, **fields: str) -> aiohttp.FormData:
    """A multipart body: `fields` first (as a page's form puts its guard), then the file."""
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", content, filename=filename, content_type="application/octet-stream")
    return form


# ── the node and its people ────────────────────────────────────────────────────────────


@dataclass
class World:
    """Ana and Bo share a group with an expense; Eve is in none of theirs."""

    node: RunningNode
    api: Api
    ana: User
    bo: User
    eve: User
    group: str
    expense: str

    def path(self, expense: str | None = None) -> str:
        return f"/api/v1/groups/{self.group}/expenses/{expense or self.expense}/attachments"


async def new_world(node: RunningNode, api: Api) -> World:
    ana, bo, eve = [await api.register(name=name) for name in ("Ana", "Bo", "Eve")]
    await verify(api, node, ana)
    group = await new_group(api, ana, bo)
    expense = await add_expense(api, group, ana, expense_body(9000, ana.id, equal(ana, bo)))
    return World(node, api, ana, bo, eve, group, str(expense["id"]))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path_factory.mktemp("attachments-node"), env=JWT)
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


@pytest_asyncio.fixture(loop_scope="module")
async def world(node: RunningNode, api: Api) -> World:
    return await new_world(node, api)


async def upload(
    world: World,
    user: User,
    filename: str,
    content: bytes,
    *,
    key: str | None = None,
    expense: str | None = None,
) -> Reply:
    headers = {**user.headers, **({"Idempotency-Key": key} if key else {})}
    async with world.api.http.post(
        f"{world.api.url}{world.path(expense)}",
        data=form_of(filename, content),
        headers=headers,
    ) as response:
        body: Any = await response.text()
        if response.content_type.endswith("json"):
            body = await response.json(content_type=None)
        return Reply(response.status, body, response.content_type, dict(response.headers))


async def fetch(
    world: World, user: User, attachment: str, variant: str = "original", **headers: str
) -> tuple[int, bytes, Any]:
    async with world.api.http.get(
        f"{world.api.url}{world.path()}/{attachment}",
        params={"variant": variant},
        headers={**user.headers, **headers},
    ) as response:
        return response.status, await response.read(), response.headers


async def listed(world: World, user: User | None = None) -> list[dict[str, Any]]:
    body = await world.api.ok("GET", world.path(), user or world.ana)
    assert body["next_cursor"] is None
    items: list[dict[str, Any]] = body["items"]
    return items


def no_exif(data: bytes) -> bool:
    image = Image.open(io.BytesIO(data))
    return not image.getexif() and b"SpyCam" not in data and "exif" not in image.info


# ── the JSON API ───────────────────────────────────────────────────────────────────────


@on_module_loop
@pytest.mark.parametrize(("kind", "name", "content_type"), [
    ("JPEG", "beach photo.jpg", "image/jpeg"),
    ("PNG", "Quittung.png", "image/png"),
])  # fmt: skip
async def test_a_photo_comes_back_without_its_gps(
    world: World, kind: str, name: str, content_type: str
) -> None:
    """A JPEG or PNG with a GPS position is stored re-encoded: the file fetched back is the
    same picture with no EXIF at all, sent with its sniffed type and the safe headers,
    and its thumbnail is a small image; the list shows it."""
    created = await upload(world, world.bo, name, photo(kind))
    assert created.status == 201, created.body
    view = created.body
    assert view["content_type"] == content_type
    assert view["has_thumbnail"] is True
    assert view["uploaded_by"] == world.bo.id
    assert view["expense_id"] == world.expense
    assert created.headers["Location"] == f"{world.path()}/{view['id']}"

    status, data, headers = await fetch(world, world.ana, view["id"])
    assert status == 200
    assert headers["Content-Type"] == content_type
    assert no_exif(data)
    assert Image.open(io.BytesIO(data)).size == (640, 480)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"].startswith("sandbox")
    assert headers["Content-Disposition"].startswith("inline; filename=")
    assert headers["Cache-Control"].startswith("private")

    again = await fetch(world, world.ana, view["id"], **{"If-None-Match": headers["ETag"]})
    assert again[0] == 304
    assert again[1] == b""

    status, thumb, thumb_headers = await fetch(world, world.ana, view["id"], "thumbnail")
    assert status == 200
    assert thumb_headers["Content-Type"].startswith("image/")
    assert max(Image.open(io.BytesIO(thumb)).size) <= 320
    assert no_exif(thumb)
    assert [item["id"] for item in await listed(world)] == [view["id"]]


@on_module_loop
async def test_a_pdf_gets_a_thumbnail_and_downloads(world: World) -> None:
    """A PDF is kept as sent and downloaded (Content-Disposition: attachment); its first
    page is rendered to a thumbnail."""
    document = pdf()
    created = await upload(world, world.ana, "invoice.pdf", document)
    assert created.status == 201, created.body
    assert created.body["content_type"] == "application/pdf"
    assert created.body["has_thumbnail"]
    status, data, headers = await fetch(world, world.bo, created.body["id"])
    assert status == 200
    assert data == document
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"].startswith('attachment; filename="invoice.pdf"')
    status, thumb, _ = await fetch(world, world.bo, created.body["id"], "thumbnail")
    assert status == 200
    assert Image.open(io.BytesIO(thumb)).size[1] == 320  # a portrait page: 320 px high


@on_module_loop
async def test_the_type_comes_from_the_content_not_the_name(world: World) -> None:
    """A text file named `.jpg` is a 422 `unsupported_type` naming the file part and the
    file, and nothing is kept; a PNG named `.pdf` is kept as a PNG, renamed `.png`."""
    refused = await upload(world, world.ana, "receipt.jpg", b"just some notes, not a photo\n")
    assert refused.status == 422, refused.body
    assert refused.body["code"] == "unsupported_type"
    assert refused.field() == "file"
    assert "receipt.jpg" in refused.body["detail"]
    assert await listed(world) == []

    renamed = await upload(world, world.ana, "scan.pdf", photo("PNG", (20, 20)))
    assert renamed.status == 201, renamed.body
    assert renamed.body["content_type"] == "image/png"
    assert renamed.body["filename"] == "scan.png"


@on_module_loop
async def test_an_oversized_upload_is_refused_and_nothing_is_kept(world: World) -> None:
    """A file one byte over the limit is refused with 413 `too_large` naming the file
    part, whether its size is declared (Content-Length) or it is streamed (chunked)
    until it passes the limit; no attachment is made."""
    big = b"\xff\xd8\xff" + b"\x00" * (MAX_UPLOAD_BYTES - 2)
    declared = await upload(world, world.ana, "huge.jpg", big)
    assert declared.status == 413, declared.body
    assert declared.body["code"] == "too_large"
    assert declared.field() == "file"

    boundary = "attachments-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        chunk = b"\x00" * (1024 * 1024)
        for _ in range(MAX_UPLOAD_BYTES // len(chunk) + 1):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        async with world.api.http.post(
            f"{world.api.url}{world.path()}",
            data=body(),
            headers={
                **world.ana.headers,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        ) as response:
            assert response.status == 413
            assert (await response.json())["code"] == "too_large"
    except aiohttp.ClientError:
        pass  # the node answered and closed while the rest was being sent: refused too
    assert await listed(world) == []


@on_module_loop
async def test_no_file_and_not_multipart_are_refused(world: World) -> None:
    """A multipart body without a `file` part is a 422 naming `file`; a JSON body is 415."""
    form = aiohttp.MultipartWriter("form-data")
    form.append("no file here").set_content_disposition("form-data", name="note")
    async with world.api.http.post(
        f"{world.api.url}{world.path()}", data=form, headers=world.ana.headers
    ) as response:
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "file"
    reply = await world.api.call("POST", world.path(), world.ana, {"file": "x"})
    assert reply.status == 415, reply.body


@on_module_loop
async def test_only_members_see_attachments(world: World) -> None:
    """Someone outside the group gets 404 for the upload, the list, the file, its thumbnail
    and the deletion, never the bytes; the attachment stays; no token is a 401."""
    created = await upload(world, world.ana, "r.png", photo("PNG", (30, 30)))
    assert created.status == 201, created.body
    aid = created.body["id"]

    stranger = await upload(world, world.eve, "mine.png", photo("PNG", (30, 30)))
    assert stranger.status == 404, stranger.body
    reply = await world.api.call("GET", world.path(), world.eve)
    assert reply.status == 404
    for variant in ("original", "thumbnail"):
        status, data, headers = await fetch(world, world.eve, aid, variant)
        assert status == 404
        assert headers["Content-Type"] == "application/problem+json"
        assert b"PNG" not in data
    reply = await world.api.call("DELETE", f"{world.path()}/{aid}", world.eve)
    assert reply.status == 404
    reply = await world.api.call("GET", f"{world.path()}/{aid}")
    assert reply.status == 401
    assert [item["id"] for item in await listed(world, world.bo)] == [aid]


@on_module_loop
async def test_a_retry_with_the_same_key_makes_one_attachment(world: World) -> None:
    """The same Idempotency-Key and file answer the first attachment (201, same id); other
    bytes under that key are a 409 `idempotency_conflict`; one attachment is kept."""
    key = secrets.token_hex(8)
    data = photo("JPEG", (50, 50))
    first = await upload(world, world.ana, "a.jpg", data, key=key)
    second = await upload(world, world.ana, "a.jpg", data, key=key)
    assert first.status == second.status == 201, (first.body, second.body)
    assert first.body == second.body
    other = await upload(world, world.ana, "b.jpg", photo("JPEG", (60, 60)), key=key)
    assert other.status == 409, other.body
    assert other.body["code"] == "idempotency_conflict"
    assert [item["id"] for item in await listed(world)] == [first.body["id"]]


@on_module_loop
async def test_delete_removes_it_for_everyone(world: World) -> None:
    """Deleting is 204 and the file is gone (404) for every member; deleting again is 204;
    an attachment of another expense cannot be reached through this one."""
    created = await upload(world, world.ana, "r.webp.png", photo("PNG", (30, 30)))
    aid = created.body["id"]
    other = await add_expense(
        world.api, world.group, world.bo, expense_body(100, world.bo.id, equal(world.bo))
    )
    status, _, _ = await fetch(world, world.ana, aid)
    assert status == 200
    wrong = await world.api.call("GET", f"{world.path(str(other['id']))}/{aid}", world.ana)
    assert wrong.status == 404
    assert wrong.body["code"] == "attachment_not_found"

    deleted = await world.api.call("DELETE", f"{world.path()}/{aid}", world.bo)
    assert deleted.status == 204
    status, _, _ = await fetch(world, world.ana, aid)
    assert status == 404
    assert await listed(world) == []
    again = await world.api.call("DELETE", f"{world.path()}/{aid}", world.ana)
    assert again.status == 204


@on_module_loop
async def test_a_bad_variant_is_named(world: World) -> None:
    """`?variant=` other than original or thumbnail is a 422 naming `variant`."""
    created = await upload(world, world.ana, "r.png", photo("PNG", (30, 30)))
    status, data, _ = await fetch(world, world.ana, created.body["id"], "huge")
    assert status == 422
    assert b'"variant"' in data


# ── the same with an S3-compatible store ───────────────────────────────────────────────


@on_module_loop
async def test_attachments_in_an_s3_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With SPLITGO_S3_* set, a photo's stripped original and thumbnail are objects in the
    bucket, fetched back through the node, and deleting removes both objects."""
    server: S3Server = await asyncio.to_thread(s3_server)
    bucket = await asyncio.to_thread(server.new_bucket)
    env = {
        **JWT,
        "SPLITGO_S3_ENDPOINT": server.endpoint,
        "SPLITGO_S3_BUCKET": bucket,
        "SPLITGO_S3_REGION": server.region,
        "SPLITGO_S3_ACCESS_KEY": server.access_key,
        "SPLITGO_S3_SECRET_KEY": server.secret_key,
    }
    s3_node = await start_node(tmp_path_factory.mktemp("attachments-s3-node"), env=env)
    try:
        async with aiohttp.ClientSession() as session:
            world = await new_world(s3_node, Api(s3_node.url, session))
            created = await upload(world, world.ana, "gps.jpg", photo("JPEG"))
            assert created.status == 201, created.body
            keys = await asyncio.to_thread(server.keys, bucket)
            assert len(keys) == 2, keys  # the original and its thumbnail
            status, data, _ = await fetch(world, world.bo, created.body["id"])
            assert status == 200
            assert no_exif(data)
            deleted = await world.api.call(
                "DELETE", f"{world.path()}/{created.body['id']}", world.ana
            )
            assert deleted.status == 204
            assert await asyncio.to_thread(server.keys, bucket) == []
    finally:
        await stop_node(s3_node)


# ── the web app, as a browser without JavaScript ───────────────────────────────────────


@dataclass
class Browser:
    """A browser without JavaScript, signed in."""

    session: aiohttp.ClientSession
    url: str

    async def get(self, path: str) -> Page:
        async with self.session.get(f"{self.url}{path}") as response:
            return await page_of(response)

    async def post_form(self, path: str, data: Any) -> Page:
        async with self.session.post(
            f"{self.url}{path}", data=data, allow_redirects=False
        ) as response:
            return await page_of(response)


@pytest_asyncio.fixture(loop_scope="module")
async def browser(world: World) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Accept": "text/html"}
    ) as session:
        person = Browser(session, world.node.url)
        form = await person.get("/sign-in")
        fields = dict(form.forms["/sign-in"])
        signed = await person.post_form(
            "/sign-in", {**fields, "email": world.ana.email, "password": PASSWORD}
        )
        assert signed.status == 303, signed.html
        yield person


def guard_of(page: Page, action: str) -> dict[str, str]:
    """The hidden inputs (CSRF token, idempotency key) of the form posting to `action`."""
    return {
        name: value
        for name, value in page.forms[action]
        if name in ("csrf_token", "idempotency_key")
    }


@on_module_loop
async def test_the_expense_page_uploads_shows_and_deletes(world: World, browser: Browser) -> None:
    """On the expense page: a labelled file input taking images and PDFs in a multipart
    form; an upload (sent twice with its key: one attachment) shows its thumbnail, served
    from this site as an image; the strict CSP allows images from the site itself; the
    confirmation page deletes it."""
    page_path = f"/groups/{world.group}/expenses/{world.expense}"
    action = f"{page_path}/attachments"
    page = await browser.get(page_path)
    assert page.status == 200, page.html
    assert "img-src 'self'" in page.headers["Content-Security-Policy"]
    file_input = page.inputs["file"]
    assert file_input["type"] == "file"
    assert file_input["id"] in page.labels
    assert file_input["accept"] == "image/jpeg,image/png,image/webp,application/pdf"
    assert re.search(rf'action="{action}" enctype="multipart/form-data"', page.html)

    guard = guard_of(page, action)
    for _ in range(2):
        sent = await browser.post_form(action, form_of("till.jpg", photo("JPEG"), **guard))
        assert sent.status == 303, sent.html
        assert sent.headers["Location"] == f"{page_path}#attachments"
    items = await listed(world)
    assert len(items) == 1
    aid = items[0]["id"]

    shown = await browser.get(page_path)
    assert "Attachment added." in shown.html
    thumb = f"{action}/{aid}/thumbnail"
    assert f'src="{thumb}"' in shown.html
    assert "till.jpg" in shown.html
    async with browser.session.get(f"{world.node.url}{thumb}") as response:
        assert response.status == 200
        assert response.content_type.startswith("image/")
    async with browser.session.get(f"{world.node.url}{action}/{aid}") as response:
        assert response.status == 200
        assert response.content_type == "image/jpeg"
        assert no_exif(await response.read())

    confirm = await browser.get(f"{action}/{aid}/delete")
    assert confirm.status == 200
    assert "Delete till.jpg?" in confirm.html
    done = await browser.post_form(
        f"{action}/{aid}/delete", dict(confirm.forms[f"{action}/{aid}/delete"])
    )
    assert done.status == 303, done.html
    assert await listed(world) == []


@on_module_loop
async def test_the_form_shows_a_refusal_at_the_file_input(world: World, browser: Browser) -> None:
    """A text file named `.jpg` comes back as the expense page with the error at the file
    input (aria-describedby names it); a post without the CSRF token is a 403; a stranger's
    expense page and files are the 404 page."""
    page_path = f"/groups/{world.group}/expenses/{world.expense}"
    action = f"{page_path}/attachments"
    page = await browser.get(page_path)
    refused = await browser.post_form(
        action, form_of("notes.jpg", b"plain text\n", **guard_of(page, action))
    )
    assert refused.status == 422, refused.html
    described = refused.inputs["file"]["aria-describedby"].split()
    error_id = f"{refused.inputs['file']['id']}-error"
    assert error_id in described
    assert "JPEG, PNG, WebP" in refused.texts[error_id]
    assert refused.inputs["file"]["aria-invalid"] == "true"

    forged = await browser.post_form(action, form_of("r.png", photo("PNG", (20, 20))))
    assert forged.status == 403
    assert await listed(world) == []

    theirs = await new_group(world.api, world.eve)
    other = await add_expense(
        world.api, theirs, world.eve, expense_body(100, world.eve.id, equal(world.eve))
    )
    stranger = await browser.get(f"/groups/{theirs}/expenses/{other['id']}/attachments/x")
    assert stranger.status == 404


# ── rules ──────────────────────────────────────────────────────────────────────────────


def test_sizes_in_words() -> None:
    """Sizes read as people say them, in binary units, one decimal below ten."""
    assert [size_words(n) for n in (0, 1, 512, 1024, 1536, 10 * 1024 + 1, 10 * 1024 * 1024)] == [
        "0 bytes",
        "1 byte",
        "512 bytes",
        "1 KB",
        "1.5 KB",
        "10 KB",
        "10 MB",
    ]


def test_attachment_ids_follow_the_key() -> None:
    """The same scope and key make the same UUID; another key or scope another."""
    first = attachment_id_for("u1 POST /x", "k")
    assert first == attachment_id_for("u1 POST /x", "k")
    assert uuid.UUID(first).version == 5
    assert first != attachment_id_for("u1 POST /x", "k2")
    assert first != attachment_id_for("u2 POST /x", "k")


def test_if_none_match() -> None:
    """An If-None-Match naming the ETag (among others, weak or not) or `*` matches."""
    assert not_modified('"a", W/"b"', '"b"')
    assert not_modified("*", '"b"')
    assert not not_modified('"a"', '"b"')
    assert not not_modified(None, '"b"')
