"""Display names for live frames and mentions: a feature part of the Chat actor.

Auth owns names; a shard keeps the ones it asked for a minute (a rename shows in live
frames within that, and at once in every history read, which the edge names itself).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import structlog

from actors.auth.messages import NAMES_MAX, GetNames, Names
from actors.runtime import Context, DomainError

log = structlog.get_logger("actors.chat")

NAME_SECONDS = 60.0  # a name is asked for again after this
_KEPT = 10_000  # names a shard keeps at most
UNKNOWN = "Someone"  # a user auth does not name (gone)


class People:
    """Names by user id, asked of auth in batches and kept for NAME_SECONDS."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._names: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def names(self, user_ids: Sequence[str], *, along: Sequence[str] = ()) -> dict[str, str]:
        """The name of each of `user_ids`, in their order (UNKNOWN for one auth lacks).
        When one must be asked for, so are the missing of `along` (a conversation's other
        people), in the same ask: their first messages then find their names kept, and a
        shard asks once per conversation, not once per person, on its critical path."""
        now = self._context.clock()
        missing = self._missing(user_ids, now)
        if missing and along:
            missing = list(dict.fromkeys([*missing, *self._missing(along, now)]))
        for start in range(0, len(missing), NAMES_MAX):
            await self._ask(missing[start : start + NAMES_MAX], now)
        return {user_id: self._names.get(user_id, (now, UNKNOWN))[1] for user_id in user_ids}

    def _missing(self, user_ids: Sequence[str], now: float) -> list[str]:
        return [
            user_id
            for user_id in dict.fromkeys(user_ids)
            if (kept := self._names.get(user_id)) is None or now - kept[0] > NAME_SECONDS
        ]

    async def name(self, user_id: str) -> str:
        return (await self.names([user_id]))[user_id]

    async def _ask(self, user_ids: list[str], now: float) -> None:
        try:
            found: Names = await self._context.ask("auth", GetNames(user_ids=user_ids))
        except DomainError as error:
            # a frame with "Someone" beats no frame; the history is named by the edge
            log.warning("chat_names_unavailable", error=repr(error))
            return
        named = {person.user_id: person.name for person in found.people}
        for user_id in user_ids:  # one auth does not name is kept as unknown, not asked again
            self._names[user_id] = (now, named.get(user_id, UNKNOWN))
            self._names.move_to_end(user_id)
        while len(self._names) > _KEPT:
            self._names.popitem(last=False)
