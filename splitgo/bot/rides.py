"""`/rides`: rides are a later feature; until a rides actor is reachable from this node,
the bot says so plainly instead of guessing at a protocol that does not exist yet."""

from __future__ import annotations

from aiogram import F, Router, types
from aiogram.enums import ChatType
from aiogram.filters import Command

from actors.runtime import ActorSystem
from splitgo.bot.linking import require_user

NOT_AVAILABLE = "Rides are not available on this server yet."
IN_THE_APP = "Your current ride is shown in the app; the bot cannot show rides yet."


async def current_ride(message: types.Message, system: ActorSystem) -> None:
    if "rides" not in system.routes():
        await message.answer(NOT_AVAILABLE)
        return
    if await require_user(message, system) is None:
        return
    await message.answer(IN_THE_APP)


def build_router() -> Router:
    """A fresh router of this feature (a router joins one dispatcher only)."""
    router = Router(name="rides")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(current_ride, Command("rides"))
    return router
