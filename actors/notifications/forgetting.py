"""A deleted account is forgotten here: a feature part of the Notifications actor.

Auth publishes AccountDeleted through the reliable hand-off when an account is deleted;
this part removes every way notifications kept to reach the person (push devices,
switches, the in-app feed, Telegram answers) and strips the addresses from their delivery
records, in one transaction with the inbox mark (a redelivered event changes nothing more).
Auth no longer gives the account's contacts (GetContacts: UserNotFound), so nothing new is
sent to it after.
"""

from __future__ import annotations

import structlog

from actors.auth.messages import AccountDeleted
from actors.notifications import store
from actors.runtime import Context

log = structlog.get_logger("actors.notifications")


class Forgetting:
    """Forgets a deleted account's contacts and notices."""

    def __init__(self, context: Context) -> None:
        self._context = context

    async def account_deleted(self, event: AccountDeleted) -> None:
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            await store.forget_user(tx, event.user_id, self._context.now())
        log.info("notifications_account_forgotten", user_id=event.user_id)
