"""`/invites`: the invitations waiting for the linked user's address — who invited them to
which group — each in a message of its own with Accept and Decline buttons that answer it
and say in that message what happened.

Only a verified address sees or answers its invitations, as on the JSON edge: whoever
registered an address has not shown it is theirs. A button carries a short reference to
its invitation (a hash of the id: Telegram allows 64 bytes of callback data, and an id is
longer). Pressing one lists the user's invitations again and answers the one with that
reference, so a button of an invitation answered or withdrawn meanwhile finds nothing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from html import escape
from typing import Literal

import structlog
from aiogram import Bot, F, Router, types
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from actors.auth.messages import NAMES_MAX, GetNames, Names, UserView
from actors.runtime import ActorSystem, DomainError
from actors.splits.messages import (
    AnswerInvite,
    Done,
    GroupFull,
    GroupView,
    InviteList,
    InviteNotFound,
    InviteView,
    ListMyInvites,
    NotYourInvitation,
)
from splitgo.bot.help import NOT_LINKED, explain
from splitgo.bot.linking import linked_user, require_user

log = structlog.get_logger("splitgo.bot")

NO_INVITES = "No invitations are waiting for you."
NOT_VERIFIED = (
    "Verify your email address first: open the link in the mail we sent you. "
    "Invitations to your address are shown and answered here once it is verified."
)
GONE = "This invitation was already answered or withdrawn."
NOT_YOURS = "This invitation was sent to another address."
STALE_BUTTON = "This button no longer works: send /invites again."
UNKNOWN_INVITER = "Someone"
INVITES_SHOWN = 10  # invitations listed at once, one message each; /invites again for more
_REF_BYTES = 12  # 16 characters of base64: the callback data stays far below 64 bytes


class InviteAnswer(CallbackData, prefix="inv"):
    """The callback data of an Accept (`a`) or Decline (`d`) button: `inv:a:<reference>`."""

    action: Literal["a", "d"]
    ref: str


def invite_ref(invite_id: str) -> str:
    """A short reference to the invitation for its buttons (URL-safe base64, no colon)."""
    digest = hashlib.blake2b(invite_id.encode(), digest_size=_REF_BYTES).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def buttons(invite: InviteView) -> InlineKeyboardMarkup:
    ref = invite_ref(invite.id)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text="Accept", callback_data=InviteAnswer(action="a", ref=ref).pack()
                ),
                InlineKeyboardButton(
                    text="Decline", callback_data=InviteAnswer(action="d", ref=ref).pack()
                ),
            ]
        ]
    )


# ── reading ────────────────────────────────────────────────────────────────────────────


async def pending(system: ActorSystem, user: UserView) -> list[InviteView]:
    """The invitations to the user's (verified) address, newest first."""
    listed: InviteList = await system.ref("splits").ask(
        ListMyInvites(user_id=user.id, email=user.email)
    )
    return listed.items


async def inviter_names(system: ActorSystem, user_ids: Iterable[str]) -> dict[str, str]:
    """Display names of these users; someone unknown (a deleted account) is left out."""
    wanted = sorted(set(user_ids))
    names: dict[str, str] = {}
    for start in range(0, len(wanted), NAMES_MAX):
        found: Names = await system.ref("auth").ask(
            GetNames(user_ids=wanted[start : start + NAMES_MAX])
        )
        names.update((person.user_id, person.name) for person in found.people)
    return names


def invite_text(invite: InviteView, names: dict[str, str]) -> str:
    """ "<b>Alice</b> invited you to <b>Trip</b>." """
    inviter = names.get(invite.invited_by, UNKNOWN_INVITER)
    return f"<b>{escape(inviter)}</b> invited you to <b>{escape(invite.group_name)}</b>."


# ── /invites ───────────────────────────────────────────────────────────────────────────


async def list_invites(message: types.Message, system: ActorSystem) -> None:
    user = await require_user(message, system)
    if user is None:
        return
    if not user.email_verified:
        await message.answer(NOT_VERIFIED)
        return
    invites = await pending(system, user)
    if not invites:
        await message.answer(NO_INVITES)
        return
    shown = invites[:INVITES_SHOWN]
    names = await inviter_names(system, (invite.invited_by for invite in shown))
    for invite in shown:
        await message.answer(invite_text(invite, names), reply_markup=buttons(invite))
    if len(invites) > len(shown):
        await message.answer(_more_text(len(invites) - len(shown)))


def _more_text(more: int) -> str:
    waiting = "1 more invitation is" if more == 1 else f"{more} more invitations are"
    return f"{waiting} waiting: answer these, then send /invites again."


# ── the buttons ────────────────────────────────────────────────────────────────────────


async def answer_invite(
    callback: types.CallbackQuery, callback_data: InviteAnswer, system: ActorSystem, bot: Bot
) -> None:
    """Answer the invitation the button names, then say what happened in its message."""
    await callback.answer()  # stops the button's spinner; the edited message says the rest
    chat_id = callback.message.chat.id if callback.message is not None else callback.from_user.id
    user = await linked_user(system, chat_id)
    if user is None:
        text = NOT_LINKED
    elif not user.email_verified:
        text = NOT_VERIFIED
    else:
        text = await _answer(system, user, callback_data)
    if isinstance(callback.message, types.Message):
        await callback.message.edit_text(text)  # without reply_markup: the buttons go
    else:  # too old for the bot to see: say it in a new message
        await bot.send_message(chat_id, text)


async def _answer(system: ActorSystem, user: UserView, data: InviteAnswer) -> str:
    invite = _find(await pending(system, user), data.ref)
    if invite is None:
        return GONE
    accept = data.action == "a"
    message = AnswerInvite(
        group_id=invite.group_id,
        user_id=user.id,
        invite_id=invite.id,
        email=user.email,
        accept=accept,
    )
    try:
        reply: GroupView | Done = await system.ref("splits").ask(message)
    except InviteNotFound:
        return GONE
    except NotYourInvitation:
        return NOT_YOURS
    except GroupFull:
        return f"You cannot join <b>{escape(invite.group_name)}</b>: the group is full."
    except DomainError as error:
        log.info("bot_invite_refused", group_id=invite.group_id, code=error.code)
        return explain(error)
    log.info("bot_invite_answered", group_id=invite.group_id, user_id=user.id, accepted=accept)
    if isinstance(reply, GroupView):
        return f"You joined <b>{escape(reply.name)}</b>. /groups lists it with your balance."
    return f"Declined: you did not join <b>{escape(invite.group_name)}</b>."


def _find(invites: Sequence[InviteView], ref: str) -> InviteView | None:
    return next((invite for invite in invites if invite_ref(invite.id) == ref), None)


async def stale_button(callback: types.CallbackQuery) -> None:
    """An invitation button whose data this version cannot read (sent by an older one)."""
    await callback.answer(STALE_BUTTON, show_alert=True)


def build_router() -> Router:
    """A fresh router of this feature (a router joins one dispatcher only)."""
    router = Router(name="invites")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)
    router.message.register(list_invites, Command("invites"))
    router.callback_query.register(answer_invite, InviteAnswer.filter())
    router.callback_query.register(stale_button, F.data.startswith(f"{InviteAnswer.__prefix__}:"))
    return router
