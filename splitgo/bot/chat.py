"""Chat in Telegram: `/chats` lists the linked user's conversations (unread first in the
order of the latest message, each with its last message), and a reply to the notice of a
chat message is posted to that conversation, as the person the notice was for.

The notifications actor remembers which of its Telegram messages carries which
conversation (`FindChatReplyTarget`). A text reply to one of them is posted with
`via="telegram"`; the message id is derived from the Telegram chat and message, so an
update Telegram delivers twice posts once. A reply to anything else, and any command, is
left to the other routers.
"""

from __future__ import annotations

import uuid
from html import escape
from typing import Any

import structlog
from aiogram import F, Router, types
from aiogram.enums import ChatType
from aiogram.filters import Command

from actors.auth.messages import NAMES_MAX, GetNames, Names
from actors.chat.messages import (
    CHAT,
    TEXT_MAX,
    ChatMessageView,
    ChatRateLimited,
    ConversationList,
    ConversationNotFound,
    ConversationView,
    InvalidChatMessage,
    ListConversations,
    PostMessage,
)
from actors.notifications.messages import (
    NOTIFICATIONS,
    ChatReplyTarget,
    ChatReplyTargetNotFound,
    FindChatReplyTarget,
)
from actors.runtime import ActorSystem
from splitgo.bot.help import NOT_LINKED, explain
from splitgo.bot.linking import linked_user, require_user

log = structlog.get_logger("splitgo.bot")

NOT_IN_CONVERSATION = "You are no longer in this conversation, so your answer was not posted."
NOT_YOUR_NOTICE = (
    "That notice was for another splitgo account than the one this chat is linked to, "
    "so your answer was not posted."
)
UNUSABLE_TEXT = (
    f"Your answer was not posted: a message must have some text, at most {TEXT_MAX} characters."
)
CHATS_SHOWN = 10  # conversations /chats lists
PREVIEW_CHARS = 60
NO_CHATS = (
    "No conversations yet. Open a group in the app and write in its Chat tab; "
    "mentions of you and news from quiet conversations then reach you here."
)
CHATS_FOOTER = (
    "Reply to a chat notice here to answer in its conversation; "
    "every conversation is under Messages in the app."
)
# uuid5 namespace of the ids of messages posted from Telegram (fixed: the same on every node)
_MESSAGE_IDS = uuid.UUID("3f6c2a8e-9b1d-4c57-8e2a-6d0b7f4a1c93")


def message_id_for(chat_id: int, message_id: int) -> str:
    """The chat message id of Telegram message `message_id` in chat `chat_id`: the same
    for every delivery of the update."""
    return str(uuid.uuid5(_MESSAGE_IDS, f"{chat_id}:{message_id}"))


async def chat_notice(message: types.Message, system: ActorSystem) -> dict[str, Any] | bool:
    """The filter: a text reply to a chat notice, with the notice's `target`; False for
    anything else, which the next routers get."""
    replied = message.reply_to_message
    text = message.text
    if replied is None or text is None or text.startswith("/"):
        return False
    if replied.from_user is not None and not replied.from_user.is_bot:
        return False  # notices come from the bot: no need to ask
    try:
        target: ChatReplyTarget = await system.ref(NOTIFICATIONS).ask(
            FindChatReplyTarget(chat_id=message.chat.id, message_id=replied.message_id)
        )
    except ChatReplyTargetNotFound:
        return False
    return {"target": target}


async def answer_notice(
    message: types.Message, system: ActorSystem, target: ChatReplyTarget
) -> None:
    """Post the reply to the notice's conversation as its linked user, and say so."""
    user = await linked_user(system, message.chat.id)
    if user is None:
        await message.answer(NOT_LINKED)
        return
    if user.id != target.user_id:
        # the chat was linked to another account since the notice went out
        log.info("bot_chat_answer_refused", reason="another_account")
        await message.answer(NOT_YOUR_NOTICE)
        return
    try:
        posted: ChatMessageView = await system.ref(CHAT).ask(
            PostMessage(
                conversation_id=target.conversation_id,
                user_id=user.id,
                message_id=message_id_for(message.chat.id, message.message_id),
                text=message.text or "",
                via="telegram",
            )
        )
    except ConversationNotFound:
        await message.answer(NOT_IN_CONVERSATION)
        return
    except InvalidChatMessage:
        await message.answer(UNUSABLE_TEXT)
        return
    except ChatRateLimited as error:
        await message.answer(explain(error))
        return
    log.info(
        "bot_chat_answer_posted",
        conversation_id=target.conversation_id,
        message_id=posted.id,
    )
    await message.answer(f"Posted to <b>{escape(target.title)}</b>.")


async def list_chats(message: types.Message, system: ActorSystem) -> None:
    """`/chats`: the latest conversations, with what is unread and the last message."""
    user = await require_user(message, system)
    if user is None:
        return
    found: ConversationList = await system.ref(CHAT).ask(
        ListConversations(user_id=user.id, limit=CHATS_SHOWN)
    )
    if not found.items:
        await message.answer(NO_CHATS)
        return
    names = await _names(system, found.items)
    lines = [_chat_line(item, user.id, names) for item in found.items]
    await message.answer("\n\n".join([*lines, CHATS_FOOTER]))


async def _names(system: ActorSystem, items: list[ConversationView]) -> dict[str, str]:
    """The names of the people the list shows: the other person of a direct conversation
    and the author of each last message."""
    wanted = {p.user_id for item in items if item.kind == "direct" for p in item.participants}
    wanted |= {item.last_message.author_id for item in items if item.last_message}
    found: Names = await system.ref("auth").ask(GetNames(user_ids=sorted(wanted)[:NAMES_MAX]))
    return {person.user_id: person.name for person in found.people}


def _chat_line(item: ConversationView, viewer: str, names: dict[str, str]) -> str:
    title = item.title
    if item.kind == "direct":
        others = [p.user_id for p in item.participants if p.user_id != viewer]
        title = names.get(others[0], "Someone") if others else "Just you"
    head = f"<b>{escape(title or 'Conversation')}</b>"
    if item.unread:
        head += f" — {'99+' if item.unread >= 100 else item.unread} unread"
    last = item.last_message
    if last is None:
        return f"{head}\nNo messages yet."
    if last.deleted:
        said = "<i>deleted a message</i>"
    else:
        text = " ".join(last.text.split()) or "sent a file"
        short = text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
        said = escape(short)
    who = "You" if last.author_id == viewer else names.get(last.author_id, "Someone")
    return f"{head}\n{escape(who)}: {said}"


def build_router() -> Router:
    """A fresh router of this feature (a router joins one dispatcher only)."""
    router = Router(name="chat")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(list_chats, Command("chats"))
    router.message.register(answer_notice, F.reply_to_message, F.text, chat_notice)
    return router
