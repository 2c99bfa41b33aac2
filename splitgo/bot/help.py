"""Help, usage and the bot's safety net: `/help`, answers to unknown commands and stray
text, domain errors as plain sentences, and the error handler that keeps tracebacks out
of the chat.

Its router is included last: its catch-all handlers see only what no feature router
took. aiogram propagates the error event of an update through every router, so the
error handler here serves them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import structlog
from aiogram import F, Router, types
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.types import BotCommand, ErrorEvent

from actors.runtime import DomainError

log = structlog.get_logger("splitgo.bot")


# What Telegram shows in its command menu (set_my_commands).
COMMANDS: tuple[BotCommand, ...] = (
    BotCommand(command="balance", description="Your wallet and what you owe or are owed"),
    BotCommand(command="groups", description="Your groups with your balance in each"),
    BotCommand(command="add", description="Add an expense: /add 12.50 Pizza @Trip"),
    BotCommand(command="settle", description="Who pays whom to settle up"),
    BotCommand(command="invites", description="Invitations to groups: accept or decline"),
    BotCommand(command="chats", description="Your conversations and what is unread"),
    BotCommand(command="rides", description="Your current ride"),
    BotCommand(command="help", description="What I can do"),
)

LINK_HOW_TO = (
    "To link this chat to your splitgo account, open the app and choose "
    "<b>Link Telegram</b> (it calls <code>POST /api/v1/me/telegram-link</code>): "
    "you get a t.me link that brings you back here with /start."
)
NOT_LINKED = f"This chat is not linked to a splitgo account yet.\n\n{LINK_HOW_TO}"

ADD_USAGE = (
    "Usage: <code>/add 12.50 Pizza @Trip</code> or <code>/add 12.50 USD Pizza @Trip</code>\n"
    "The amount is in the group's currency unless a currency follows it (<code>12,50</code> "
    "works too); another currency is converted at the day's rate. "
    "The <code>@group</code> part may be left out when you are in one group only; "
    'write a name with spaces in quotes: <code>@"Road trip"</code>.'
)

HELP_TEXT = (
    "<b>splitgo</b> — shared expenses and your wallet, from this chat.\n\n"
    "/balance — your wallet and your balance in each group\n"
    "/groups — your groups\n"
    "/add <i>amount</i> [<i>currency</i>] <i>description</i> @<i>group</i> — an expense you paid, "
    "split equally among everyone in the group\n"
    "/settle — who pays whom to settle up\n"
    "/invites — invitations to groups waiting for you, to accept or decline\n"
    "/chats — your conversations and what is unread (reply to a chat notice to answer it)\n"
    "/rides — your current ride\n"
    "/help — this message\n\n"
    f"{ADD_USAGE}"
)

SOMETHING_WENT_WRONG = "Something went wrong on our side. Please try again in a moment."
MESSAGE_MAX = 4096  # Telegram's limit for one message's text
PRIVATE_ONLY = "Let's talk in a private chat: my answers are about your own money."

# Domain errors whose own message would not read well in a chat.
_SENTENCES = {
    "group_not_found": "That group does not exist, or you are not a member of it.",
    "user_not_found": "This chat is not linked to a splitgo account.",
    "invalid_token": "This link was already used or has expired. Ask the app for a new one.",
    "ask_timeout": "The server is busy right now. Please try again in a moment.",
    "system_stopping": "The server is restarting. Please try again in a moment.",
}
# Categories whose message is written for the person who asked.
_TOLD_AS_IS = frozenset({"invalid", "not_found", "conflict", "forbidden", "rate_limited"})


async def answer_parts(message: types.Message, parts: Sequence[str]) -> None:
    """Answer with the parts joined by blank lines, in as few messages as Telegram's length
    limit allows; a part is cut only between its lines, so its HTML tags stay whole."""
    pieces: list[str] = []
    for part in parts:
        pieces += [part] if len(part) <= MESSAGE_MAX else _pack(part.split("\n"), "\n")
    for text in _pack(pieces, "\n\n"):
        await message.answer(text)


def _pack(items: Sequence[str], separator: str) -> list[str]:
    """The items joined by `separator` into texts of at most MESSAGE_MAX characters."""
    texts: list[str] = []
    for item in items:
        if texts and len(texts[-1]) + len(separator) + len(item) <= MESSAGE_MAX:
            texts[-1] += separator + item
        else:
            texts.append(item[:MESSAGE_MAX])
    return texts


def explain(error: DomainError) -> str:
    """A domain error as one plain sentence, escaped for Telegram's HTML."""
    sentence = _SENTENCES.get(error.code)
    if sentence is not None:
        return sentence
    if error.category in _TOLD_AS_IS and error.message:
        return escape(error.message)
    return SOMETHING_WENT_WRONG


async def show_help(message: types.Message) -> None:
    await message.answer(HELP_TEXT)


async def private_only(message: types.Message) -> None:
    """In a group chat the feature commands are off: balances are nobody else's business."""
    await message.answer(PRIVATE_ONLY)


async def unknown_command(message: types.Message) -> None:
    command = (message.text or "").split(maxsplit=1)[0]
    await message.answer(f"I don't know {escape(command)}.\n\n{HELP_TEXT}")


async def anything_else(message: types.Message) -> None:
    await message.answer("I answer commands; /help lists them.")


async def on_error(event: ErrorEvent) -> None:
    """A refusal becomes its sentence; anything else is logged and answered politely."""
    error = event.exception
    message = event.update.message
    if isinstance(error, DomainError):
        log.info("bot_refused", update_id=event.update.update_id, code=error.code)
        text = explain(error)
    else:
        log.error(
            "bot_update_failed",
            update_id=event.update.update_id,
            error_type=type(error).__name__,
            exc_info=error,
        )
        text = SOMETHING_WENT_WRONG
    if message is not None:
        try:
            await message.answer(text)
        except Exception as reply_error:  # the reply itself may be what failed
            log.warning("bot_reply_failed", error_type=type(reply_error).__name__)


def build_router() -> Router:
    """A fresh router of this feature (a router joins one dispatcher only)."""
    router = Router(name="help")
    router.message.register(show_help, Command("help"))
    router.message.register(private_only, F.chat.type != ChatType.PRIVATE, F.text.startswith("/"))
    router.message.register(unknown_command, F.text.startswith("/"))
    router.message.register(anything_else, F.chat.type == ChatType.PRIVATE)
    router.errors.register(on_error)
    return router
