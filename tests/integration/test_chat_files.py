"""The files actor's chat files through an ActorSystem (codec check on) on a real
PostgreSQL, with the local folder and the S3 server: upload to a conversation, send in a
message, read, delete with the message; only images, only your own unsent files of this
conversation; unsent files deleted after a day; receipts and chat files never mix."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from actors.files.messages import (
    MAX_UNSENT_PER_CONVERSATION,
    UNSENT_HOURS,
    AttachChatFiles,
    AttachmentContent,
    AttachmentNotFound,
    ChatAttachmentList,
    ChatAttachmentView,
    ChatFilesDone,
    DeleteChatFiles,
    DetachChatFiles,
    GetAttachment,
    GetChatAttachment,
    StoreAttachment,
    StoreChatAttachment,
    TooManyAttachments,
    UnsupportedType,
    files_key,
)
from actors.files.storage import LocalFolderStorage
from actors.runtime import IdempotencyConflict
from tests.integration.test_files import (
    Backend,
    Harness,
    folder_keys,
    one_page_pdf,
    photo_with_gps,
    rows,
    running,
    small_png,
)
from tests.integration.test_files import backend as backend  # the local folder and S3

pytestmark = pytest.mark.integration


@pytest.fixture
def local(tmp_path: Path) -> Backend:
    """The local folder alone, for what does not depend on the storage."""
    root = tmp_path / "files"
    return Backend(LocalFolderStorage(root), folder_keys(root))


@dataclass
class Chat:
    """A conversation's files, asked of a running files actor."""

    harness: Harness
    conversation: str = field(default_factory=lambda: str(uuid.uuid4()))

    async def ask(self, message: Any) -> Any:
        return await self.harness.ask(message)

    async def upload(
        self,
        content: bytes,
        filename: str = "photo.jpg",
        *,
        user_id: str = "ann",
        conversation: str | None = None,
        attachment_id: str | None = None,
    ) -> ChatAttachmentView:
        view: ChatAttachmentView = await self.ask(
            StoreChatAttachment(
                conversation_id=conversation or self.conversation,
                attachment_id=attachment_id or str(uuid.uuid4()),
                user_id=user_id,
                filename=filename,
                content=content,
            )
        )
        return view

    async def attach(
        self, message_id: str, ids: list[str], *, user_id: str = "ann"
    ) -> ChatAttachmentList:
        found: ChatAttachmentList = await self.ask(
            AttachChatFiles(
                conversation_id=self.conversation,
                user_id=user_id,
                message_id=message_id,
                attachment_ids=ids,
            )
        )
        return found

    async def fetch(
        self, attachment_id: str, *, user_id: str = "bob", variant: str = "original"
    ) -> AttachmentContent:
        content: AttachmentContent = await self.ask(
            GetChatAttachment(
                conversation_id=self.conversation,
                attachment_id=attachment_id,
                user_id=user_id,
                variant=variant,  # type: ignore[arg-type]
            )
        )
        return content


async def test_a_chat_file_is_stored_sent_read_and_deleted_with_its_message(
    pool: asyncpg.Pool, backend: Backend
) -> None:
    """A photo uploaded to a conversation is stored without its metadata and seen only by
    its uploader until a message carries it; then every participant reads it and its
    thumbnail; deleting the message deletes it from the table's live rows and the storage."""
    async with running(pool, backend.storage) as harness:
        chat = Chat(harness)
        view = await chat.upload(photo_with_gps(), "beach.png")
        assert view.conversation_id == chat.conversation
        assert view.message_id is None
        assert (view.content_type, view.filename) == ("image/jpeg", "beach.jpg")
        assert view.has_thumbnail
        with pytest.raises(AttachmentNotFound):
            await chat.fetch(view.id, user_id="bob")  # not sent: the uploader's alone
        assert (await chat.fetch(view.id, user_id="ann")).content_type == "image/jpeg"

        message_id = str(uuid.uuid4())
        sent = await chat.attach(message_id, [view.id])
        assert [(item.id, item.message_id) for item in sent.items] == [(view.id, message_id)]
        assert (await chat.attach(message_id, [view.id])).items == sent.items  # a retry
        original = await chat.fetch(view.id)
        assert b"CameraCo" not in original.content
        assert b"secret-comment" not in original.content
        thumbnail = await chat.fetch(view.id, variant="thumbnail")
        assert thumbnail.content_type == "image/webp"
        assert len(backend.stored()) == 2

        done = await chat.ask(
            DeleteChatFiles(conversation_id=chat.conversation, message_id=message_id, user_id="ann")
        )
        assert done == ChatFilesDone(ids=[view.id])
        with pytest.raises(AttachmentNotFound):
            await chat.fetch(view.id)
        assert backend.stored() == []
        kept = await rows(pool)
        assert kept[0]["deleted_by"] == "ann"
        assert kept[0]["purged_at"] is not None
        again = await chat.ask(
            DeleteChatFiles(conversation_id=chat.conversation, message_id=message_id, user_id="ann")
        )
        assert again == ChatFilesDone(ids=[])


async def test_a_chat_file_is_an_image_or_a_pdf(pool: asyncpg.Pool, local: Backend) -> None:
    """A PDF is kept like a receipt's (with a thumbnail); anything not a JPEG, PNG, WebP
    or PDF is refused naming the content, whatever its name, and nothing of it is kept."""
    async with running(pool, local.storage) as harness:
        chat = Chat(harness)
        invoice = await chat.upload(one_page_pdf(), "invoice.pdf")
        assert invoice.content_type == "application/pdf"
        assert len(local.stored()) == 2  # the file and its thumbnail
        with pytest.raises(UnsupportedType) as refused:
            await chat.upload(b"just words", "words.png")
        assert refused.value.details["field"] == "$.content"
        assert [row["id"] for row in await rows(pool)] == [invoice.id]
        assert len(local.stored()) == 2


async def test_only_your_own_unsent_files_of_this_conversation_go_in_a_message(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """A message takes files its author uploaded to its conversation and not sent in
    another message; any other id is AttachmentNotFound naming its place, and then none
    of the named files is taken."""
    async with running(pool, local.storage) as harness:
        chat = Chat(harness)
        mine = await chat.upload(small_png(1), "a.png")
        bobs = await chat.upload(small_png(2), "b.png", user_id="bob")
        elsewhere = await chat.upload(small_png(3), "c.png", conversation=str(uuid.uuid4()))
        message_id = str(uuid.uuid4())
        for index, other in ((1, bobs.id), (1, elsewhere.id), (1, str(uuid.uuid4()))):
            with pytest.raises(AttachmentNotFound) as refused:
                await chat.attach(message_id, [mine.id, other])
            assert refused.value.details["field"] == f"$.attachment_ids[{index}]"
        assert {row["id"]: row["message_id"] for row in await rows(pool)}[mine.id] is None

        await chat.attach(message_id, [mine.id, mine.id])  # named twice: taken once
        with pytest.raises(AttachmentNotFound) as refused:
            await chat.attach(str(uuid.uuid4()), [mine.id])  # in a message already
        assert refused.value.details["field"] == "$.attachment_ids[0]"


async def test_a_refused_post_leaves_its_files_unsent(pool: asyncpg.Pool, local: Backend) -> None:
    """Detaching a message that was not posted makes its files unsent again: another
    message takes them, and deleting the first one deletes nothing."""
    async with running(pool, local.storage) as harness:
        chat = Chat(harness)
        view = await chat.upload(small_png(), "a.png")
        refused_id, posted_id = str(uuid.uuid4()), str(uuid.uuid4())
        await chat.attach(refused_id, [view.id])
        detached = await chat.ask(
            DetachChatFiles(conversation_id=chat.conversation, message_id=refused_id)
        )
        assert detached == ChatFilesDone(ids=[view.id])
        with pytest.raises(AttachmentNotFound):
            await chat.fetch(view.id, user_id="bob")
        await chat.attach(posted_id, [view.id])
        nothing = await chat.ask(
            DeleteChatFiles(conversation_id=chat.conversation, message_id=refused_id, user_id="ann")
        )
        assert nothing == ChatFilesDone(ids=[])
        assert (await chat.fetch(view.id)).content_type == "image/png"


async def test_unsent_files_are_deleted_after_a_day(pool: asyncpg.Pool, local: Backend) -> None:
    """The upkeep deletes files uploaded UNSENT_HOURS ago and never sent (their bytes
    too), and keeps those sent and those younger."""
    now = [1_800_000_000.0]
    async with running(pool, local.storage, clock=lambda: now[0]) as harness:
        chat = Chat(harness)
        forgotten = await chat.upload(small_png(1), "a.png")
        sent = await chat.upload(small_png(2), "b.png")
        await chat.attach(str(uuid.uuid4()), [sent.id])
        now[0] += UNSENT_HOURS * 3600 - 60
        fresh = await chat.upload(small_png(3), "c.png")
        sweeper = harness.actors[0].chat
        assert await sweeper.sweep_unsent() == 0
        now[0] += 120
        assert await sweeper.sweep_unsent() == 1
        live = {row["id"] for row in await rows(pool) if row["deleted_at"] is None}
        assert live == {sent.id, fresh.id}
        assert forgotten.id not in live
        assert len(local.stored()) == 4  # two files, two thumbnails


async def test_a_person_keeps_a_bounded_number_of_unsent_files(
    pool: asyncpg.Pool, local: Backend
) -> None:
    """Past MAX_UNSENT_PER_CONVERSATION unsent files in one conversation an upload is
    TooManyAttachments; sending one makes room; others and other conversations are apart."""
    async with running(pool, local.storage) as harness:
        chat = Chat(harness)
        views = [
            await chat.upload(small_png(shade), f"{shade}.png")
            for shade in range(MAX_UNSENT_PER_CONVERSATION)
        ]
        with pytest.raises(TooManyAttachments):
            await chat.upload(small_png(250), "more.png")
        await chat.upload(small_png(250), "bob.png", user_id="bob")
        await chat.upload(small_png(250), "there.png", conversation=str(uuid.uuid4()))
        await chat.attach(str(uuid.uuid4()), [views[0].id])
        await chat.upload(small_png(251), "now.png")


async def test_receipts_and_chat_files_never_mix(pool: asyncpg.Pool, local: Backend) -> None:
    """A chat file is not found through a group, and an id of a chat file cannot be reused
    for a receipt (nor the other way round): IdempotencyConflict."""
    async with running(pool, local.storage) as harness:
        chat = Chat(harness)
        view = await chat.upload(small_png(), "a.png")
        with pytest.raises(AttachmentNotFound):
            await harness.ask(GetAttachment(group_id=harness.group, attachment_id=view.id))
        with pytest.raises(IdempotencyConflict):
            await harness.ask(
                StoreAttachment(
                    group_id=harness.group,
                    expense_id=harness.expense,
                    attachment_id=view.id,
                    user_id="ann",
                    filename="a.png",
                    content=small_png(),
                )
            )
        receipt = await harness.upload(small_png(), "r.png")
        with pytest.raises(IdempotencyConflict):
            await chat.upload(small_png(), "r.png", attachment_id=receipt.id)
        with pytest.raises(AttachmentNotFound):
            await chat.fetch(receipt.id, user_id="ann")
        # a retry of the chat upload answers the first
        assert (await chat.upload(small_png(), "a.png", attachment_id=view.id)).id == view.id


def test_chat_files_are_sharded_by_conversation() -> None:
    """Commands about a conversation's files are keyed by the conversation; an expense's
    by the group, as before."""
    conversation = str(uuid.uuid4())
    message = DetachChatFiles(conversation_id=conversation, message_id=str(uuid.uuid4()))
    assert files_key(message) == conversation
    assert files_key(GetAttachment(group_id="g", attachment_id="a")) == "g"
