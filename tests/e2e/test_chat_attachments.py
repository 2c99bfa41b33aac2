"""Files in chat messages against real nodes: an image uploaded to a conversation, sent in
a message and fetched by another participant (its metadata stripped, as for receipts),
through the JSON API and the web app's page route; a stranger gets 404; the refusals (a
file that is no image or PDF, more than four files, another conversation's file, someone
else's file); deleting the message deletes its files; and the same flow with the files in
an S3-compatible store."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.test_attachments import JWT, form_of, no_exif, photo
from tests.e2e.test_splits import new_group
from tests.support.api import PASSWORD, Api, Reply, User, eventually
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.s3_server import S3Server, s3_server

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path_factory.mktemp("chat-files-node"), env=JWT)
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


@dataclass
class Talk:
    """Ana and Bo share a group and its conversation (and a direct one); Eve is in none."""

    api: Api
    ana: User
    bo: User
    eve: User
    group_chat: str
    direct_chat: str

    def files(self, conversation: str | None = None) -> str:
        return f"/api/v1/conversations/{conversation or self.group_chat}/attachments"

    def messages(self, conversation: str | None = None) -> str:
        return f"/api/v1/conversations/{conversation or self.group_chat}/messages"

    async def upload(
        self,
        user: User,
        filename: str,
        content: bytes,
        *,
        conversation: str | None = None,
    ) -> Reply:
        async with self.api.http.post(
            f"{self.api.url}{self.files(conversation)}",
            data=form_of(filename, content),
            headers=user.headers,
        ) as response:
            body: Any = await response.text()
            if response.content_type.endswith("json"):
                body = await response.json(content_type=None)
            return Reply(response.status, body, response.content_type, dict(response.headers))

    async def uploaded(self, user: User, filename: str = "photo.jpg", **options: Any) -> str:
        """The id of a photo `user` uploads (201)."""
        reply = await self.upload(user, filename, photo("JPEG"), **options)
        assert reply.status == 201, reply.body
        return str(reply.body["id"])

    async def fetch(
        self, user: User, attachment: str, variant: str = "original"
    ) -> tuple[int, bytes, Any]:
        async with self.api.http.get(
            f"{self.api.url}{self.files()}/{attachment}",
            params={"variant": variant},
            headers=user.headers,
        ) as response:
            return response.status, await response.read(), response.headers

    async def post(self, user: User, ids: list[str], text: str = "") -> dict[str, Any]:
        posted: dict[str, Any] = await self.api.ok(
            "POST", self.messages(), user, {"text": text, "attachment_ids": ids}, 201
        )
        return posted


async def new_talk(api: Api) -> Talk:
    ana, bo, eve = [await api.register(name=name) for name in ("Ana", "Bo", "Eve")]
    group = await new_group(api, ana, bo)
    group_chat = await api.ok("POST", "/api/v1/conversations", ana, {"group_id": group}, 201)
    direct = await api.ok("POST", "/api/v1/conversations", ana, {"user_id": bo.id}, 201)
    return Talk(api, ana, bo, eve, str(group_chat["id"]), str(direct["id"]))


@pytest_asyncio.fixture(loop_scope="module")
async def talk(api: Api) -> Talk:
    return await new_talk(api)


async def test_an_image_sent_in_a_message_reaches_the_other_participant(talk: Talk) -> None:
    """A photo with GPS uploaded to the group's conversation answers its id, name, type
    and size; only its uploader sees it until a message (with no text) carries it; then
    the other participant finds it in the history and fetches it and its thumbnail with
    no EXIF left, while someone outside the conversation gets 404 for it and its upload."""
    reply = await talk.upload(talk.ana, "beach.jpg", photo("JPEG"))
    assert reply.status == 201, reply.body
    view = reply.body
    assert (view["filename"], view["content_type"]) == ("beach.jpg", "image/jpeg")
    assert view["size"] > 0
    assert reply.headers["Location"] == f"{talk.files()}/{view['id']}"
    assert (await talk.fetch(talk.bo, view["id"]))[0] == 404  # not sent yet

    posted = await talk.post(talk.ana, [view["id"]])
    assert posted["text"] == ""
    assert posted["attachments"] == [
        {
            "id": view["id"],
            "filename": "beach.jpg",
            "content_type": "image/jpeg",
            "size": view["size"],
        }
    ]
    history = await talk.api.ok("GET", talk.messages(), talk.bo)
    assert history["items"][0]["attachments"] == posted["attachments"]

    status, data, headers = await talk.fetch(talk.bo, view["id"])
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"].startswith("inline; ")
    assert "beach.jpg" in headers["Content-Disposition"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert no_exif(data)
    status, thumbnail, headers = await talk.fetch(talk.bo, view["id"], "thumbnail")
    assert status == 200
    assert headers["Content-Type"] in ("image/webp", "image/jpeg")
    assert len(thumbnail) < len(data)

    status, data, _ = await talk.fetch(talk.eve, view["id"])
    assert status == 404
    assert b"\xff\xd8" not in data
    stranger = await talk.upload(talk.eve, "x.jpg", photo("JPEG"))
    assert (stranger.status, stranger.body["code"]) == (404, "conversation_not_found")


async def test_what_a_message_cannot_carry_is_refused(talk: Talk) -> None:
    """A file that is no image or PDF is refused 422 naming `file`; more than four files,
    another conversation's
    file or someone else's are refused 422 naming the field, and a refused message takes
    none of its files (they can be sent after)."""
    refused = await talk.upload(talk.ana, "invoice.pdf", b"%PDX not a pdf at all")
    assert refused.status == 422, refused.body
    assert refused.body["code"] == "unsupported_type"
    assert refused.field() == "file"

    mine = [await talk.uploaded(talk.ana, f"{n}.jpg") for n in range(5)]
    await talk.api.problem(
        "POST",
        talk.messages(),
        talk.ana,
        {"text": "five", "attachment_ids": mine},
        status=422,
        code="validation_error",
        field="$.attachment_ids",
    )
    direct = await talk.uploaded(talk.ana, conversation=talk.direct_chat)
    await talk.api.problem(
        "POST",
        talk.messages(),
        talk.ana,
        {"text": "elsewhere", "attachment_ids": [mine[0], direct]},
        status=422,
        code="attachment_not_found",
        field="$.attachment_ids[1]",
    )
    await talk.api.problem(
        "POST",
        talk.messages(),
        talk.bo,
        {"text": "not mine", "attachment_ids": [mine[1]]},
        status=422,
        code="attachment_not_found",
        field="$.attachment_ids[0]",
    )
    await talk.api.problem(
        "POST",
        talk.messages(),
        talk.ana,
        {"text": "   ", "attachment_ids": []},
        status=422,
        code="invalid_chat_message",
        field="$.text",
    )
    posted = await talk.post(talk.ana, mine[:4], "four")
    assert [ref["id"] for ref in posted["attachments"]] == mine[:4]
    await talk.api.problem(
        "POST",
        talk.messages(),
        talk.ana,
        {"text": "again", "attachment_ids": [mine[0]]},
        status=422,
        code="attachment_not_found",
        field="$.attachment_ids[0]",
    )


async def test_deleting_a_message_deletes_its_files(talk: Talk) -> None:
    """The author deletes a message with a file: the message stays as deleted without
    it, and the file is soon gone for everyone (404: the files actor hears of it through
    the outbox); deleting again answers the same."""
    attachment = await talk.uploaded(talk.ana)
    posted = await talk.post(talk.ana, [attachment], "look")
    assert (await talk.fetch(talk.bo, attachment))[0] == 200
    path = f"{talk.messages()}/{posted['id']}"
    deleted = await talk.api.ok("DELETE", path, talk.ana)
    assert (deleted["deleted"], deleted["attachments"]) == (True, [])
    for person in (talk.bo, talk.ana):
        await eventually(
            functools.partial(talk.fetch, person, attachment),
            lambda answer: answer[0] == 404,
            what="the deleted message's file is gone",
        )
    assert (await talk.api.ok("DELETE", path, talk.ana))["deleted"] is True


# ── the web app's page route ───────────────────────────────────────────────────────────


async def signed_in_browser(session: aiohttp.ClientSession, url: str, user: User) -> None:
    """Sign `user` in on the session's cookie jar, through the sign-in form."""
    async with session.get(f"{url}/sign-in") as response:
        html = await response.text()
    token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    async with session.post(
        f"{url}/sign-in",
        data={"csrf_token": token, "email": user.email, "password": PASSWORD},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()


async def test_the_page_route_serves_a_file_to_participants_only(
    talk: Talk, node: RunningNode
) -> None:
    """`/messages/{conversation}/attachments/{id}` sends a sent file to a participant
    signed in with a cookie (with its thumbnail), and the 404 page to someone else."""
    attachment = await talk.uploaded(talk.ana)
    await talk.post(talk.ana, [attachment], "for the page")
    page = f"/messages/{talk.group_chat}/attachments/{attachment}"
    for user, status in ((talk.bo, 200), (talk.eve, 404)):
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Accept": "text/html"}
        ) as session:
            await signed_in_browser(session, node.url, user)
            async with session.get(f"{node.url}{page}") as response:
                assert response.status == status
                data = await response.read()
                if status == 200:
                    assert response.headers["Content-Type"] == "image/jpeg"
                    assert no_exif(data)
                else:
                    assert response.content_type == "text/html"
            async with session.get(f"{node.url}{page}?variant=thumbnail") as response:
                assert response.status == status


# ── the same with an S3-compatible store ───────────────────────────────────────────────


async def test_chat_files_in_an_s3_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With SPLITGO_S3_* set, a sent photo's stripped original and thumbnail are objects in
    the bucket, fetched back through the node, and deleting the message removes both."""
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
    s3_node = await start_node(tmp_path_factory.mktemp("chat-files-s3-node"), env=env)
    try:
        async with aiohttp.ClientSession() as session:
            s3_talk = await new_talk(Api(s3_node.url, session))
            attachment = await s3_talk.uploaded(s3_talk.ana)
            posted = await s3_talk.post(s3_talk.ana, [attachment])
            assert len(await asyncio.to_thread(server.keys, bucket)) == 2
            status, data, _ = await s3_talk.fetch(s3_talk.bo, attachment)
            assert status == 200
            assert no_exif(data)
            await s3_talk.api.ok("DELETE", f"{s3_talk.messages()}/{posted['id']}", s3_talk.ana)
            # the files actor hears of the deletion through the outbox
            await eventually(
                functools.partial(asyncio.to_thread, server.keys, bucket),
                lambda keys: keys == [],
                what="the deleted message's file is gone from the bucket",
            )
    finally:
        await stop_node(s3_node)
