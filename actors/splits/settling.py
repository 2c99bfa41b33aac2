"""Balances, the settle plan and settlements: a feature part of the Splits actor.

Balances are read as kept (never recomputed from expenses), from the shard's memory once
loaded (`hot.py`). The settle plan is the greedy largest-first one, kept per currency while
it still settles the balances, so paying one suggestion leaves the others as they were. A
`cash` settlement is recorded at once; a `wallet` one asks payments for a transfer through
the reliable hand-off and is recorded only when payments' `TransferCompleted` arrives (or
marked failed, balances untouched, on `TransferFailed`).

Every balance and plan is also kept converted into the group's currency at the stored
rates (`converted=True` reads them): a settlement in the group's currency moves both views
by its amount; one in another currency carries its rate (looked up by the edge, as for an
expense) and moves the per-currency view by its amount and the converted one by its amount
in the group's currency.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import structlog

from actors.payments.messages import Transfer, TransferCompleted, TransferFailed, format_money
from actors.runtime import Context, Transaction
from actors.splits import store
from actors.splits.expense_money import conversion_for
from actors.splits.hot import HotBalances
from actors.splits.membership import check_new_settlement, member_group
from actors.splits.messages import (
    SETTLEMENT_REFERENCE,
    BalanceLine,
    BalancesView,
    GetBalances,
    GetNetBreakdown,
    GetSettlement,
    GetSettlePlan,
    NetBreakdown,
    NetLine,
    NoAccount,
    NotAMember,
    PlanTransfer,
    RecordSettlement,
    SettlementFailed,
    SettlementNotFound,
    SettlementRecorded,
    SettlementView,
    SettlePlanView,
    settlement_reference,
)
from actors.splits.people import direct_plan_of
from actors.splits.shares import PlannedTransfer, plan_after_payment, settle_plan
from actors.splits.store.groups import GroupRow
from actors.splits.store.settlements import SettlementRow
from actors.splits.views import settlement_view

log = structlog.get_logger("splits")


def _planned(saved: list[tuple[str, str, int]]) -> list[PlannedTransfer]:
    return [PlannedTransfer(from_user_id=a, to_user_id=b, amount=n) for a, b, n in saved]


def _saved(plan: list[PlannedTransfer]) -> list[tuple[str, str, int]]:
    return [(t.from_user_id, t.to_user_id, t.amount) for t in plan]


class Settling:
    """Shows balances and the settle plan, records settlements and hears how wallet
    transfers ended.

    `context` is the Splits shard's: the splits tables, its clock and transactions;
    `hot` keeps the balances of the shard's groups in memory (dropped by the actor when a
    message may change them).
    """

    def __init__(self, context: Context, *, hot: HotBalances | None = None) -> None:
        self._context = context
        self._pool = context.pool
        self.hot = hot if hot is not None else HotBalances(None)

    async def balances(self, message: GetBalances) -> BalancesView:
        """Each member's net per currency, or (`converted`) in the group's currency at the
        stored rates, with what has no rate apart in its own currency."""
        kept = self.hot.get(message)
        if kept is not None:
            return kept
        group = await member_group(self._pool, message.group_id, message.user_id)
        converted = message.converted
        lines = await store.balances.balances(self._pool, group.id, converted=converted)
        members = (await store.groups.members(self._pool, [group.id]))[group.id]
        if converted:  # a member who left with nothing owed shows no more
            current = {u for u, _ in members}
            lines = [line for line in lines if line[2] or line[0] in current]
        seen = {(user, currency) for user, currency, _ in lines}
        # every member shows in the group's currency, with 0 when nothing touched them
        lines += [(u, group.currency, 0) for u, _ in members if (u, group.currency) not in seen]
        lines.sort(key=lambda line: (line[1], line[0]))
        view = BalancesView(
            balances=[BalanceLine(user_id=u, currency=c, net=net) for u, c, net in lines],
            converted=converted,
        )
        # the view as kept: with its version (issue 20: the edge's reply cache)
        return self.hot.put(group.id, converted, frozenset(u for u, _ in members), view)

    async def breakdown(self, message: GetNetBreakdown) -> NetBreakdown:
        """Why a member's net is what it is: every expense and settlement behind it, whose
        effects add up to the kept net in each currency."""
        group = await member_group(self._pool, message.group_id, message.user_id)
        member = message.member_user_id
        if not await store.groups.is_member(self._pool, group.id, member):
            raise NotAMember(
                "This user is not a member of the group.", details={"field": "user_id"}
            )
        lines = []
        for row in await store.balances.behind_net(self._pool, group.id, member):
            settlement = row["kind"] == "settlement"
            effect = row["paid"] - row["owed"]
            lines.append(
                NetLine(
                    kind=row["kind"],
                    id=row["id"],
                    day=None if row["day"] is None else row["day"].isoformat(),
                    description=row["description"],
                    currency=row["currency"],
                    paid=row["paid"],
                    owed=row["owed"],
                    effect=effect,
                    counterpart_id=row["counterpart"] if settlement else None,
                )
            )
        nets = {
            c: n for u, c, n in await store.balances.balances(self._pool, group.id) if u == member
        }
        return NetBreakdown(user_id=member, nets=nets, lines=lines)

    async def settle_plan(self, message: GetSettlePlan) -> SettlePlanView:
        kept = self.hot.plan(message)
        if kept is not None:
            return kept
        group = await member_group(self._pool, message.group_id, message.user_id)
        converted = message.converted  # issue 17: currencies and items
        nets: dict[str, dict[str, int]] = defaultdict(dict)
        # from the kept balances (loaded and kept now if they were not), so the plan is kept
        # beside the balances it was made from
        read = GetBalances(group_id=group.id, user_id=message.user_id, converted=converted)
        for line in (await self.balances(read)).balances:
            if line.net:
                nets[line.currency][line.user_id] = line.net
        saved = await store.balances.saved_plans(self._pool, group.id, converted=converted)
        transfers: list[PlanTransfer] = []
        direct = await direct_plan_of(self._pool, group.id)  # issue 17: None when simplified
        if converted:  # who owes whom directly is per currency: converted, always simplified
            direct = None
        for currency in sorted(nets):
            previous = _planned(saved.get(currency, []))
            plan = (direct or {}).get(currency) or settle_plan(nets[currency], previous)
            if plan != previous:
                await store.balances.save_plan(
                    self._pool, group.id, currency, _saved(plan), converted=converted
                )
            transfers += [
                PlanTransfer(
                    from_user_id=t.from_user_id,
                    to_user_id=t.to_user_id,
                    amount=t.amount,
                    currency=currency,
                    from_net=nets[currency].get(t.from_user_id, 0),
                    to_net=nets[currency].get(t.to_user_id, 0),
                )
                for t in plan
            ]
        view = SettlePlanView(transfers=transfers, converted=converted)
        # kept beside the group's kept balances, dropped with them by any change (hot.py)
        self.hot.keep_plan(group.id, converted, view)
        return view

    async def record(self, message: RecordSettlement) -> SettlementView:
        replayed = await self._context.replayed(message, SettlementView)
        if replayed is not None:
            return replayed
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        known = await store.settlements.settlement(self._pool, message.settlement_id)
        if known is not None:  # a retried command: its first result
            return settlement_view(known)
        await check_new_settlement(
            self._pool, group, message.user_id, message.to_user_id, message.amount, message.currency
        )
        now = self._context.now()
        # another currency than the group's: its rate, or the edge is asked to look it up
        converted = conversion_for(
            group,
            amount=message.amount,
            currency=message.currency,
            spent_on=now.date(),
            rate=message.rate,
            group_amount=message.group_amount,
            source=message.rate_source,
            day=message.rate_day,
            lookup=message.rate_lookup,
        )
        if message.method == "wallet" and message.to_user_id in await store.placeholders.unclaimed(
            self._pool, [group.id]
        ):
            raise NoAccount(
                "They have no account yet, so no wallet: record a cash settlement, or send"
                " them a claim link.",
                details={"field": "to_user_id"},
            )
        row = SettlementRow(
            id=message.settlement_id,
            group_id=group.id,
            from_user_id=message.user_id,
            to_user_id=message.to_user_id,
            amount=message.amount,
            currency=message.currency,
            method=message.method,
            status="completed" if message.method == "cash" else "pending",
            created_at=now,
            rate=None if converted is None else converted.rate,
            rate_source=None if converted is None else converted.source,
            rate_day=None if converted is None else converted.day,
            group_amount=None if converted is None else converted.group_amount,
        )
        async with self._context.transaction() as tx:
            if tx.duplicate:
                pass
            elif message.method == "cash":
                await store.settlements.insert_settlement(tx, row, now)
                await self._settled(tx, group, row, now)
                await self._context.remember(tx, message, await self._view(tx, row.id))
            elif await store.settlements.insert_settlement(tx, row, None):
                # a retry while payments moves the money is in flight; the outcome answers it
                await self._context.remember(tx, message, None, pending=True, subject=row.id)
                await tx.tell(
                    "payments",
                    Transfer(
                        idempotency_key=f"splits-settlement:{row.id}",
                        from_user_id=row.from_user_id,
                        to_user_id=row.to_user_id,
                        amount=row.amount,
                        currency=row.currency,
                        kind="settlement",
                        reference=settlement_reference(group.id, row.id),
                        note=f"Settle up in {group.name}"[:200],
                        notify="splits",
                    ),
                )
        return settlement_view(await self._settlement(group.id, row.id))

    async def _view(self, tx: Transaction, settlement_id: str) -> SettlementView:
        row = await store.settlements.settlement(tx, settlement_id)
        assert row is not None, "finished in this transaction"
        return settlement_view(row)

    async def _settlement(self, group_id: str, settlement_id: str) -> SettlementRow:
        row = await store.settlements.settlement(self._pool, settlement_id)
        if row is None or row.group_id != group_id:
            raise SettlementNotFound("No such settlement in this group.")
        return row

    async def get(self, message: GetSettlement) -> SettlementView:
        group = await member_group(self._pool, message.group_id, message.user_id)
        return settlement_view(await self._settlement(group.id, message.settlement_id))

    async def _settled(
        self, tx: Transaction, group: GroupRow, row: SettlementRow, now: datetime
    ) -> None:
        """The money moved: the payer's debt shrinks, the payee is owed less (per currency
        and converted), the kept plans lose what was paid, and everyone hears of it."""
        plain = {row.from_user_id: row.amount, row.to_user_id: -row.amount}
        if row.rate is None or row.group_amount is None:  # the same in both views
            await store.balances.apply_deltas(tx, group.id, row.currency, plain)
            converted_in, converted_amount = row.currency, row.amount
        else:
            await store.balances.apply_deltas(tx, group.id, row.currency, plain, converted=False)
            converted_in, converted_amount = group.currency, row.group_amount
            await store.balances.apply_converted(
                tx,
                group.id,
                group.currency,
                {row.from_user_id: converted_amount, row.to_user_id: -converted_amount},
            )
        await self._paid_off(tx, group.id, row, row.currency, row.amount, converted=False)
        if converted_amount:
            await self._paid_off(tx, group.id, row, converted_in, converted_amount, converted=True)
        await store.activity.add_activity(
            tx,
            group.id,
            "settlement_recorded",
            row.from_user_id,
            f"{row.from_user_id} paid {row.to_user_id} {format_money(row.amount, row.currency)}"
            f" ({row.method})",
            now,
            data={
                "settlement_id": row.id,
                "to_user_id": row.to_user_id,
                "amount": row.amount,
                "currency": row.currency,
                "method": row.method,
            },
        )
        await tx.publish(
            SettlementRecorded(
                group_id=group.id,
                group_name=group.name,
                settlement_id=row.id,
                from_user_id=row.from_user_id,
                to_user_id=row.to_user_id,
                amount=row.amount,
                currency=row.currency,
                method=row.method,
            ),
        )

    async def _paid_off(
        self,
        tx: Transaction,
        group_id: str,
        row: SettlementRow,
        currency: str,
        amount: int,
        *,
        converted: bool,
    ) -> None:
        """The kept plan in `currency` (`converted`: the converted one) less the payment."""
        saved = (await store.balances.saved_plans(tx, group_id, converted=converted)).get(currency)
        if saved:
            plan = plan_after_payment(_planned(saved), row.from_user_id, row.to_user_id, amount)
            await store.balances.save_plan(
                tx, group_id, currency, _saved(plan), converted=converted
            )

    async def _pending(self, reference: str | None) -> tuple[GroupRow, SettlementRow] | None:
        """The pending wallet settlement a payments event is about (None: not ours)."""
        if not reference or not reference.startswith(SETTLEMENT_REFERENCE):
            return None
        parts = reference.split(":")
        if len(parts) != 3:
            return None
        group = await store.groups.group(self._pool, parts[1])
        row = await store.settlements.settlement(self._pool, parts[2])
        if group is None or row is None or row.group_id != group.id or row.status != "pending":
            return None
        return group, row

    async def transfer_completed(self, message: TransferCompleted) -> None:
        if message.kind != "settlement":
            return
        found = await self._pending(message.reference)
        if found is None:
            return
        group, row = found
        now = self._context.now()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            if await store.settlements.finish_settlement(
                tx, row.id, "completed", now, transfer_id=message.transfer_id
            ):
                await self._settled(tx, group, row, now)
                await self._context.complete(tx, row.id, await self._view(tx, row.id))

    async def transfer_failed(self, message: TransferFailed) -> None:
        found = await self._pending(message.reference)
        if found is None:
            return
        group, row = found
        now = self._context.now()
        async with self._context.transaction() as tx:
            if tx.duplicate:
                return
            if not await store.settlements.finish_settlement(
                tx, row.id, "failed", now, failure=(message.code, message.message)
            ):
                return
            await self._context.complete(tx, row.id, await self._view(tx, row.id))
            await store.activity.add_activity(
                tx,
                group.id,
                "settlement_failed",
                row.from_user_id,
                f"{row.from_user_id}'s payment of {format_money(row.amount, row.currency)} to"
                f" {row.to_user_id} failed: {message.message}",
                now,
                data={"settlement_id": row.id, "code": message.code},
            )
            await tx.publish(
                SettlementFailed(
                    group_id=group.id,
                    group_name=group.name,
                    settlement_id=row.id,
                    from_user_id=row.from_user_id,
                    to_user_id=row.to_user_id,
                    amount=row.amount,
                    currency=row.currency,
                    code=message.code,
                    message=message.message,
                ),
            )
        log.info("settlement_failed", settlement_id=row.id, code=message.code)
