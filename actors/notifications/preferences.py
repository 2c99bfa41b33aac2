"""Each user's switches per category and channel: a feature part of the Notifications actor.

The defaults (`notices.DEFAULT_PREFERENCES`) hold until the user changes a switch.
Security messages ignore the switches; GetPreferences names them as locked.
"""

from __future__ import annotations

from collections.abc import Sequence

from actors.notifications import store
from actors.notifications.messages import (
    GetPreferences,
    InvalidPreference,
    Preferences,
    SetPreferences,
)
from actors.notifications.notices import AUTH_MAILS, CATEGORIES, CHANNELS, DEFAULT_PREFERENCES
from actors.runtime import Context

# what no switch turns off
SECURITY_KINDS = [*AUTH_MAILS, "TelegramLinked"]


class UserPreferences:
    """Reads and changes the users' switches.

    `context` is the Notifications shard's; its pool holds the preferences table.
    """

    def __init__(self, context: Context) -> None:
        self._pool = context.pool

    async def switches(self, user_id: str) -> dict[str, dict[str, bool]]:
        """category -> channel -> on: the defaults with the user's own choices over them."""
        return _over_defaults(await store.preferences(self._pool, user_id))

    async def switches_and_devices(
        self, user_ids: Sequence[str], device_users: Sequence[str]
    ) -> tuple[dict[str, dict[str, dict[str, bool]]], set[str]]:
        """`switches` of several users, and which of `device_users` have a Web Push device,
        read in one query (what routing needs of a batch's recipients)."""
        chosen, pushable = await store.preferences_and_devices(self._pool, user_ids, device_users)
        return {user_id: _over_defaults(own) for user_id, own in chosen.items()}, pushable

    async def get(self, message: GetPreferences) -> Preferences:
        return Preferences(categories=await self.switches(message.user_id), locked=SECURITY_KINDS)

    async def set(self, message: SetPreferences) -> Preferences:
        """Change the switches named, after checking every one (a bad one changes nothing)."""
        for category, channels in message.changes.items():
            if category not in CATEGORIES:
                raise InvalidPreference(
                    f"{category!r} is not a category; use one of {', '.join(CATEGORIES)}",
                    details={"field": f"$.{category}"},
                )
            for channel, enabled in channels.items():
                if channel not in CHANNELS or not isinstance(enabled, bool):
                    raise InvalidPreference(
                        f"{category}.{channel}: channels are {', '.join(CHANNELS)}, each"
                        " true or false",
                        details={"field": f"$.{category}.{channel}"},
                    )
        await store.set_preferences(self._pool, message.user_id, message.changes)
        return await self.get(GetPreferences(user_id=message.user_id))


def _over_defaults(own: Sequence[tuple[str, str, bool]]) -> dict[str, dict[str, bool]]:
    """The defaults with a user's own choices (category, channel, on) over them."""
    chosen = {category: dict(channels) for category, channels in DEFAULT_PREFERENCES.items()}
    for category, channel, enabled in own:
        if category in chosen and channel in chosen[category]:
            chosen[category][channel] = enabled
    return chosen
