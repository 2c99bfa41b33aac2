"""Where a user stands across all their groups: a feature part of the Splits actor.

Totals per currency (owed to you, you owe, net), each person you and they owe each other
across groups, each group's net, and the newest activity of all of them. Who owes whom is
read from each group's settle plan (the kept one, as `GET /groups/{id}/settle-plan` shows it),
so "Bob owes you 12.50" here is what settling up in those groups would move. Reads only:
the groups' own shards keep writing their rows; nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict

from actors.runtime import Context
from actors.splits import store
from actors.splits.messages import (
    CurrencyTotal,
    GetSummary,
    GroupNet,
    PersonNet,
    RecentActivity,
    SummaryView,
)
from actors.splits.shares import PlannedTransfer, settle_plan
from actors.splits.views import activity_item

RECENT = 20  # activity lines across groups


class Summary:
    """Answers GetSummary from the kept balances, plans and activity of the user's groups."""

    def __init__(self, context: Context) -> None:
        self._pool = context.pool

    async def summary(self, message: GetSummary) -> SummaryView:
        me = message.user_id
        groups = {g.id: g for g in await store.groups.groups_of(self._pool, me)}
        ids = list(groups)
        nets: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for group_id, user, currency, net in await store.balances.balances_of_groups(
            self._pool, ids
        ):
            nets[(group_id, currency)][user] = net
        plans = await store.balances.saved_plans_of_groups(self._pool, ids)
        people: dict[tuple[str, str], int] = defaultdict(int)
        by_group: list[GroupNet] = []
        for (group_id, currency), balances in sorted(nets.items()):
            mine = balances.get(me, 0)
            if mine:
                name = groups[group_id].name
                by_group.append(
                    GroupNet(group_id=group_id, group_name=name, currency=currency, net=mine)
                )
            previous = [PlannedTransfer(a, b, n) for a, b, n in plans.get((group_id, currency), [])]
            for transfer in settle_plan(balances, previous):
                if transfer.to_user_id == me:
                    people[(transfer.from_user_id, currency)] += transfer.amount
                elif transfer.from_user_id == me:
                    people[(transfer.to_user_id, currency)] -= transfer.amount
        rows = await store.activity.recent_in_groups(self._pool, ids, RECENT)
        return SummaryView(
            totals=_totals(by_group),
            people=[
                PersonNet(user_id=user, currency=currency, net=net)
                for (user, currency), net in sorted(people.items())
                if net
            ],
            groups=by_group,
            recent=[
                RecentActivity(
                    group_id=row["group_id"],
                    group_name=groups[row["group_id"]].name,
                    item=activity_item(row),
                )
                for row in rows
            ],
        )


def _totals(by_group: list[GroupNet]) -> list[CurrencyTotal]:
    owed: dict[str, int] = defaultdict(int)
    owing: dict[str, int] = defaultdict(int)
    for line in by_group:
        if line.net > 0:
            owed[line.currency] += line.net
        else:
            owing[line.currency] -= line.net
    return [
        CurrencyTotal(
            currency=currency,
            owed_to_you=owed[currency],
            you_owe=owing[currency],
            net=owed[currency] - owing[currency],
        )
        for currency in sorted(set(owed) | set(owing))
    ]
