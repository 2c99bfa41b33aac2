"""Settling choices: a feature part of the Splits actor (issue 17, item 6).

A group's simplify switch picks its settle plan: simplified (the fewest transfers, as
before) or who owes whom directly (`direct.py`, read from the group's expenses and
settlements). Settling with one person across groups in one payment is led by the edge,
which makes one wallet transfer per currency; each group's own shard keeps its part: a
settlement prepared as pending (its amount fixed, balances untouched), then finished with
the transfer's id (completed exactly as a wallet settlement whose transfer completed) or
with the transfer's failure. Ids are derived by the edge, so a retry finds the first.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import structlog

from actors.payments.messages import TransferCompleted, TransferFailed
from actors.runtime import Context, Executor
from actors.splits import store
from actors.splits.direct import direct_plans, plan_nets
from actors.splits.membership import check_new_settlement, member_group
from actors.splits.messages import (
    FinishSettlement,
    GetGroupSettings,
    GroupSettings,
    PrepareSettlement,
    SetSimplify,
    SettlementNotFound,
    SettlementView,
    settlement_reference,
)
from actors.splits.shares import PlannedTransfer, settle_plan
from actors.splits.store.settlements import SettlementRow
from actors.splits.views import settlement_view

if TYPE_CHECKING:  # settling imports this module (its plan asks for the direct one)
    from actors.splits.settling import Settling

log = structlog.get_logger("splits")


async def direct_plan_of(db: Executor, group_id: str) -> dict[str, list[PlannedTransfer]] | None:
    """The group's who-owes-whom plan per currency, or None when its plan is simplified.

    A currency whose direct plan would not zero the kept balances exactly (rows written by
    a path the direct reading does not know) gets the simplified plan of its kept balances
    instead, and a warning says so: a plan never moves anyone off zero.
    """
    if await store.recurring.simplify(db, group_id):
        return None
    plans = direct_plans(await store.recurring.movements(db, group_id))
    kept: dict[str, dict[str, int]] = defaultdict(dict)
    for user, currency, net in await store.balances.balances(db, group_id):
        if net:
            kept[currency][user] = net
    for currency in sorted(set(plans) | set(kept)):
        if plan_nets(plans.get(currency, [])) != kept.get(currency, {}):
            log.warning("direct_plan_mismatch", group_id=group_id, currency=currency)
            plans[currency] = settle_plan(kept.get(currency, {}))
    return plans


class People:
    """The simplify switch, and the parts of a payment to one person across groups.

    `context` is the Splits shard's; `settling` finishes a prepared settlement the way a
    wallet settlement's transfer outcome does.
    """

    def __init__(self, context: Context, *, settling: Settling) -> None:
        self._context = context
        self._pool = context.pool
        self._settling = settling

    async def settings(self, message: GetGroupSettings) -> GroupSettings:
        group = await member_group(self._pool, message.group_id, message.user_id)
        return GroupSettings(
            group_id=group.id, simplify=await store.recurring.simplify(self._pool, group.id)
        )

    async def set_simplify(self, message: SetSimplify) -> GroupSettings:
        """Switch the plan (any member); the activity says who did."""
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        if await store.recurring.simplify(self._pool, group.id) != message.simplify:
            now = self._context.now()
            how = "the fewest transfers" if message.simplify else "who owes whom directly"
            async with self._context.transaction() as tx:
                if not tx.duplicate:
                    await store.recurring.set_simplify(tx, group.id, message.simplify)
                    await store.activity.add_activity(
                        tx,
                        group.id,
                        "plan_switched",
                        message.user_id,
                        f"{message.user_id} set the settle plan to {how}",
                        now,
                        data={"simplify": message.simplify},
                    )
        return GroupSettings(group_id=group.id, simplify=message.simplify)

    async def prepare(self, message: PrepareSettlement) -> SettlementView:
        """Keep the settlement pending with its amount; a retry answers the first."""
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        known = await store.settlements.settlement(self._pool, message.settlement_id)
        if known is not None:
            if known.group_id != group.id or known.from_user_id != message.user_id:
                raise SettlementNotFound("No such settlement in this group.")
            return settlement_view(known)
        await check_new_settlement(
            self._pool, group, message.user_id, message.to_user_id, message.amount, message.currency
        )
        row = SettlementRow(
            id=message.settlement_id,
            group_id=group.id,
            from_user_id=message.user_id,
            to_user_id=message.to_user_id,
            amount=message.amount,
            currency=message.currency,
            method="wallet",
            status="pending",
            created_at=self._context.now(),
        )
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                await store.settlements.insert_settlement(tx, row, None)
        return settlement_view(await self._row(group.id, row.id, message.user_id))

    async def finish(self, message: FinishSettlement) -> SettlementView:
        """Complete (with the transfer) or fail a prepared settlement, as payments' own
        outcome of a wallet settlement would; a finished one stays as it is."""
        group = await member_group(self._pool, message.group_id, message.user_id)
        row = await self._row(group.id, message.settlement_id, message.user_id)
        if row.status == "pending":
            reference = settlement_reference(group.id, row.id)
            if message.transfer_id is not None:
                await self._settling.transfer_completed(
                    TransferCompleted(
                        transfer_id=message.transfer_id,
                        from_user_id=row.from_user_id,
                        to_user_id=row.to_user_id,
                        amount=row.amount,
                        currency=row.currency,
                        kind="settlement",
                        reference=reference,
                    )
                )
            else:
                await self._settling.transfer_failed(
                    TransferFailed(
                        reference=reference,
                        from_user_id=row.from_user_id,
                        code=message.failure_code or "transfer_failed",
                        message=message.failure_message or "the wallet transfer did not go through",
                    )
                )
        return settlement_view(await self._row(group.id, row.id, message.user_id))

    async def _row(self, group_id: str, settlement_id: str, user_id: str) -> SettlementRow:
        row = await store.settlements.settlement(self._pool, settlement_id)
        if row is None or row.group_id != group_id or row.from_user_id != user_id:
            raise SettlementNotFound("No such settlement in this group.")
        return row
