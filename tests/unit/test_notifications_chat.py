"""What a chat message's notices say on each channel (actors/notifications/notices.py), and
the bot's id of a message posted from Telegram (splitgo/bot/chat.py)."""

from __future__ import annotations

from typing import Any

from actors.chat.messages import ChatMessagePosted
from actors.notifications.messages import FindChatReplyTarget, notifications_key
from actors.notifications.notices import (
    CATEGORIES,
    DEFAULT_PREFERENCES,
    PREVIEW_CHARS,
    notices_for,
    preview,
    with_names,
)
from actors.notifications.push_devices import page_of
from actors.notifications.templates import simple_mail
from splitgo.bot.chat import message_id_for

URL = "https://splitgo.example"
ANN, BOB, CY, DEE = (f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 5))
CONVERSATION = "7d1c0c5e-0000-4000-8000-000000000001"


def posted(**fields: Any) -> ChatMessagePosted:
    base: dict[str, Any] = {
        "conversation_id": CONVERSATION,
        "message_id": "8d1c0c5e-0000-4000-8000-000000000001",
        "kind": "group",
        "title": "Trip",
        "author_id": ANN,
        "author_name": "Ann",
        "text": "Who paid the taxi?",
        "mentioned": [],
        "notify": [],
        "group_id": "9d1c0c5e-0000-4000-8000-000000000001",
    }
    return ChatMessagePosted(**{**base, **fields})


def test_chat_is_a_category_with_mail_and_sms_off_by_default() -> None:
    """`chat` is a preference category: the app, Telegram and push on; mail and SMS off."""
    assert "chat" in CATEGORIES
    assert DEFAULT_PREFERENCES["chat"] == {
        "email": False,
        "telegram": True,
        "inapp": True,
        "sms": False,
        "webpush": True,
    }


def test_a_mention_and_a_quiet_conversation_read_differently() -> None:
    """The mentioned hear "Ann mentioned you in Trip: …", the others to tell "Ann in Trip:
    …", both in the chat category, linked to the conversation's page."""
    notices = notices_for(posted(mentioned=[BOB], notify=[CY]), public_url=URL)
    by_user = {notice.user_id: notice for notice in notices}
    assert set(by_user) == {BOB, CY}
    mention, quiet = by_user[BOB], by_user[CY]
    assert mention.kind == "ChatMention"
    assert mention.text == "Ann mentioned you in Trip: Who paid the taxi?"
    assert quiet.kind == "ChatMessage"
    assert quiet.text == "Ann in Trip: Who paid the taxi?"
    for notice in notices:
        assert notice.category == "chat"
        assert not notice.security
        assert notice.data["conversation_id"] == CONVERSATION
        assert notice.data["path"] == f"/messages/{CONVERSATION}"
        assert notice.link == f"{URL}/messages/{CONVERSATION}"
        assert notice.conversation_id == CONVERSATION
        assert notice.conversation_title == "Trip"


def test_each_person_hears_once_and_the_author_never() -> None:
    """Someone both mentioned and due a quiet-spell notice hears the mention only; the
    author, even when named, hears nothing."""
    notices = notices_for(posted(mentioned=[BOB, ANN], notify=[BOB, DEE]), public_url=URL)
    assert [(n.user_id, n.kind) for n in notices] == [(BOB, "ChatMention"), (DEE, "ChatMessage")]


def test_the_message_is_escaped_and_flattened_for_html() -> None:
    """Markup in a name, a title or the text is shown, not run, in Telegram's HTML; line
    breaks become spaces."""
    event = posted(
        author_name="<b>Ann</b>",
        title="Pizza & <i>beer</i>",
        text="line one\nline <script>two</script>",
        mentioned=[BOB],
    )
    (notice,) = notices_for(event, public_url=URL)
    assert notice.text == (
        "<b>Ann</b> mentioned you in Pizza & <i>beer</i>: line one line <script>two</script>"
    )
    assert "<script>" not in notice.telegram
    assert "&lt;script&gt;two&lt;/script&gt;" in notice.telegram
    assert "&lt;b&gt;Ann&lt;/b&gt;" in notice.telegram
    assert "Pizza &amp; &lt;i&gt;beer&lt;/i&gt;" in notice.telegram
    assert "\n" not in notice.text
    assert f'href="{URL}/messages/{CONVERSATION}"' in notice.telegram
    assert "Reply to this message" in notice.telegram


def test_a_long_message_is_quoted_as_a_preview() -> None:
    """A long message is cut to PREVIEW_CHARS characters ending in "…", between words."""
    text = " ".join(["word"] * 1000)
    (notice,) = notices_for(posted(text=text, mentioned=[BOB]), public_url=URL)
    quoted = notice.text.split(": ", 1)[1]
    assert quoted.endswith("…")
    assert len(quoted) <= PREVIEW_CHARS
    assert quoted[:-1].split(" ")[-1] == "word"  # no word cut in half
    assert preview("x" * 500) == "x" * (PREVIEW_CHARS - 1) + "…"  # one long word is cut
    assert preview("  short\n text ") == "short text"


def test_a_user_id_in_the_text_is_quoted_as_written() -> None:
    """Someone's own words keep what looks like a user id: names replace ids only in the
    notices that mention people by id."""
    (notice,) = notices_for(posted(text=f"see {BOB}", mentioned=[CY]), public_url=URL)
    assert with_names(notice, {BOB: "Bob"}).text.endswith(f"see {BOB}")


def test_a_chat_mail_links_to_the_conversation() -> None:
    """A chat notice's mail carries a button and a copyable link to the conversation."""
    (notice,) = notices_for(posted(mentioned=[BOB]), public_url=URL)
    mail = simple_mail(
        "bob@example.com", notice.title, notice.text, kind=notice.kind, link=notice.link
    )
    assert f"{URL}/messages/{CONVERSATION}" in mail.text
    assert mail.html is not None
    assert f'href="{URL}/messages/{CONVERSATION}"' in mail.html
    assert mail.subject == "splitgo: Ann mentioned you in Trip"


def test_chat_notices_shard_by_conversation_and_answers_by_chat() -> None:
    """A chat message's notices are handled on its conversation's shard, whatever the
    group; a look-up of a Telegram answer on its chat's."""
    assert notifications_key(posted()) == CONVERSATION
    assert notifications_key(posted(group_id=None, kind="direct")) == CONVERSATION
    assert notifications_key(FindChatReplyTarget(chat_id=42, message_id=7)) == "42"


def test_a_telegram_message_posts_under_one_id() -> None:
    """The same Telegram message always makes the same chat message id; another message,
    or the same message id in another chat, another."""
    assert message_id_for(42, 7) == message_id_for(42, 7)
    assert message_id_for(42, 7) != message_id_for(42, 8)
    assert message_id_for(42, 7) != message_id_for(43, 7)


def test_a_chat_push_opens_the_conversation() -> None:
    """A chat notice's Web Push opens the conversation's page, not the group's."""
    (notice,) = notices_for(posted(mentioned=[BOB]), public_url=URL)
    assert page_of(notice) == f"/messages/{CONVERSATION}"
