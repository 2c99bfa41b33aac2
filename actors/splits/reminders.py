"""Reminders: a member tells another what they owe in a group, on the debtor's own
channels (notifications decides which); a feature part of the Splits actor.

At most one a day from one member to another in a group (409 `already_reminded`), only
for someone who owes something there (422 `nothing_owed`), never to yourself.
"""

from __future__ import annotations

from datetime import timedelta

from actors.runtime import Context, rfc3339
from actors.splits import rules, store
from actors.splits.membership import member_group
from actors.splits.messages import (
    AlreadyReminded,
    MemberReminded,
    NoAccount,
    NotAMember,
    NothingOwed,
    Owed,
    ReminderView,
    RemindMember,
)

EVERY = timedelta(days=1)


class Reminders:
    """Sends a reminder of a debt through the MemberReminded event."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool

    async def remind(self, message: RemindMember) -> ReminderView:
        replayed = await self._context.replayed(message, ReminderView)
        if replayed is not None:
            return replayed
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        debtor = message.member_user_id
        if debtor == message.user_id:
            raise rules.invalid("user_id", "a reminder goes to someone else")
        if not await store.groups.is_member(self._pool, group.id, debtor):
            raise NotAMember(
                "This user is not a member of the group.", details={"field": "user_id"}
            )
        if debtor in await store.placeholders.unclaimed(self._pool, [group.id]):
            raise NoAccount(
                "They have no account yet, so nothing reaches them: send them a claim link.",
                details={"field": "user_id"},
            )
        owing = await store.balances.unsettled(self._pool, group.id, debtor)
        owed = [Owed(currency=c, amount=-net) for c, net in sorted(owing.items()) if net < 0]
        if not owed:
            raise NothingOwed("They owe nothing in this group.", details={"field": "user_id"})
        now = self._context.now()
        view = ReminderView(
            group_id=group.id,
            from_user_id=message.user_id,
            to_user_id=debtor,
            owed=owed,
            sent_at=rfc3339(now),
        )
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return view
            if not await store.reminders.claim_reminder(
                tx, group.id, message.user_id, debtor, now, now - EVERY
            ):
                raise AlreadyReminded(
                    "You reminded them in this group within the last day; try again tomorrow."
                )
            await tx.publish(
                MemberReminded(
                    group_id=group.id,
                    group_name=group.name,
                    from_user_id=message.user_id,
                    to_user_id=debtor,
                    owed=owed,
                )
            )
            await self._context.remember(tx, message, view)
        return view
