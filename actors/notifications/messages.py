"""The notifications actor's public interface.

Other actors tell it their events; today it handles auth's
(`actors.auth.messages`): `EmailVerificationRequested`, `PasswordResetRequested` and
`PasswordChanged`, each mailed to the address in the event. Send them through the
reliable hand-off (`tx.tell("notifications", event, key=event.user_id)`): the envelope id
is the event's identity, so a redelivered event is delivered once.

`RetryNotificationDelivery` is the actor's own timer message (a message type must be
registered to cross a transport, timers included); no other actor sends it.
"""

from __future__ import annotations

from typing import Any

from actors.runtime import Message

NOTIFICATIONS = "notifications"


def notifications_key(message: Any) -> str | None:
    """The shard key: the user the notification is for (None: any shard).

    One user's notifications are handled in order by one shard; a retry timer always
    returns to the shard that armed it, whatever its key.
    """
    user_id = getattr(message, "user_id", None)
    return str(user_id) if user_id else None


class RetryNotificationDelivery(Message, frozen=True):
    """Internal timer: try delivery `delivery_id` again.

    `attempts` is how many tries the delivery had when the timer was armed; a timer that
    no longer matches (the delivery moved on, or a copy already fired) is ignored.
    """

    delivery_id: str
    attempts: int
