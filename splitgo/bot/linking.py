"""Linking a Telegram chat to a splitgo account: `/start <token>` from the app's deep
link, `/start` alone, and the shared phone contact that confirms the account's number.

Also `linked_user`, which every other feature router uses to find who is asking.
"""

from __future__ import annotations

from html import escape

import structlog
from aiogram import F, Router, types
from aiogram.enums import ChatType
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import KeyboardButton, ReplyKeyboardMarkup, ReplyKeyboardRemove

from actors.auth.messages import (
    ConfirmPhone,
    ConsumeTelegramLink,
    FindUserByChat,
    InvalidField,
    InvalidToken,
    UserNotFound,
    UserView,
)
from actors.runtime import ActorSystem
from splitgo.bot.help import LINK_HOW_TO, NOT_LINKED
from splitgo.web.actors import find_user

log = structlog.get_logger("splitgo.bot")

SHARE_PHONE = "Share my phone number"
# Telegram's start parameter is at most 64 characters of A-Z a-z 0-9 _ -
_TOKEN_MAX = 64


def phone_keyboard() -> ReplyKeyboardMarkup:
    """One button that shares the user's own contact with the bot."""
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=SHARE_PHONE, request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def linked_user(system: ActorSystem, chat_id: int) -> UserView | None:
    """The account linked to this chat, or None."""
    return await find_user(system, FindUserByChat(chat_id=chat_id))


async def require_user(message: types.Message, system: ActorSystem) -> UserView | None:
    """The asker's account; None (after telling them how to link) when there is none."""
    user = await linked_user(system, message.chat.id)
    if user is None:
        await message.answer(NOT_LINKED)
    return user


async def start_with_token(
    message: types.Message, command: CommandObject, system: ActorSystem
) -> None:
    token = (command.args or "").strip()
    if len(token) > _TOKEN_MAX:
        await message.answer(_link_refused())
        return
    try:
        user: UserView = await system.ref("auth").ask(
            ConsumeTelegramLink(token=token, chat_id=message.chat.id)
        )
    except InvalidToken:
        log.info("telegram_link_refused")
        await message.answer(_link_refused())
        return
    log.info("telegram_chat_linked", user_id=user.id)
    text = (
        f"Hello {escape(user.name)}! This chat is now linked to your splitgo account: "
        "you will get your notifications here.\n\n"
        "Try /balance, /groups or /help."
    )
    if user.phone_verified:
        await message.answer(text, reply_markup=ReplyKeyboardRemove())
        return
    await message.answer(
        f"{text}\n\nTap <b>{SHARE_PHONE}</b> below to confirm your phone number too.",
        reply_markup=phone_keyboard(),
    )


def _link_refused() -> str:
    return (
        "This link was already used or has expired. "
        "Ask the app for a new one and open it within a few minutes."
    )


async def start_without_token(message: types.Message, system: ActorSystem) -> None:
    user = await linked_user(system, message.chat.id)
    if user is None:
        await message.answer(f"Welcome to <b>splitgo</b>!\n\n{LINK_HOW_TO}")
        return
    await message.answer(
        f"Welcome back, {escape(user.name)}! This chat is linked to your account. "
        "/help lists what I can do."
    )


async def contact_shared(message: types.Message, system: ActorSystem) -> None:
    """Only the sender's own contact confirms a number: Telegram vouches for that one."""
    contact = message.contact
    sender = message.from_user
    if contact is None or sender is None or contact.user_id != sender.id:
        await message.answer(
            "Thanks, but I can only confirm your own phone number. "
            f"Please use the <b>{SHARE_PHONE}</b> button."
        )
        return
    try:
        user: UserView = await system.ref("auth").ask(
            ConfirmPhone(chat_id=message.chat.id, phone=contact.phone_number)
        )
    except UserNotFound:
        await message.answer(NOT_LINKED)
        return
    except InvalidField:
        await message.answer("That contact has no phone number I can use.")
        return
    log.info("telegram_phone_confirmed", user_id=user.id)
    await message.answer(
        "Thank you! Your phone number is confirmed on your splitgo account.",
        reply_markup=ReplyKeyboardRemove(),
    )


def build_router() -> Router:
    """A fresh router of this feature (a router joins one dispatcher only)."""
    router = Router(name="linking")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(start_with_token, CommandStart(deep_link=True))
    router.message.register(start_without_token, CommandStart())
    router.message.register(contact_shared, F.contact)
    return router
