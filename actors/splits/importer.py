"""Import and export: a feature part of the Splits actor.

A Splitwise group export comes in as `ImportSplitwise`. Without a mapping it is a dry run:
the file is read (actors/splits/importing.py) and the report answered with each name's
proposed member, nothing stored. With the confirmed mapping it is written in chunks, one
transaction per ask: the placeholders with the first chunk, then the expenses and
settlements in bulk (actors/splits/store/imports.py, `ON CONFLICT DO NOTHING`), the kept
balances moved by what was new, and with the last chunk one activity line; no event per
row, so nobody is notified ten thousand times. Every id is derived from the group, the
file and the row, so a second run adds nothing, and a chunk asked twice writes nothing
twice. The caller (the HTTP edge's import job) asks chunk after chunk and shows how far it
is.

The parsed file is kept for the next chunk (the shard is the group's one writer, so the
plan it keeps is the one it writes from); it is parsed again when it was dropped.

`ExportGroupJson` answers the whole group as one JSON document.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from datetime import datetime
from typing import Any

import structlog

from actors.auth.messages import NAMES_MAX, GetNames, Names
from actors.runtime import Context, DomainError, Transaction, rfc3339
from actors.splits import rules, store
from actors.splits.import_mapping import (
    ImportBatch,
    apply_mapping,
    batch_chunk,
    batch_deltas,
    batch_total,
    dry_run,
)
from actors.splits.import_reading import parse_splitwise
from actors.splits.importing import EXPORT_FORMAT, ImportPlan
from actors.splits.membership import member_group, member_ids
from actors.splits.messages import (
    MAX_MEMBERS,
    ExportedComment,
    ExportedExpense,
    ExportedGroup,
    ExportedLine,
    ExportedMember,
    ExportedSettlement,
    ExportGroupJson,
    GroupExport,
    GroupFull,
    ImportDryRun,
    ImportProgress,
    ImportSplitwise,
    PlaceholderAdded,
)
from actors.splits.store import imports as import_store
from actors.splits.store.groups import GroupRow
from actors.splits.store.placeholders import PlaceholderRow

log = structlog.get_logger("splits")

PLANS_KEPT = 2  # parsed files kept between chunks (per shard)


class Importer:
    """Dry-runs and writes Splitwise imports, and exports a group as JSON.

    `context` is the Splits shard's: the splits tables, its clock, transactions and asks.
    """

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool
        self._plans: OrderedDict[tuple[str, str], ImportPlan] = OrderedDict()
        self._batches: OrderedDict[tuple[str, str, tuple[Any, ...]], ImportBatch] = OrderedDict()

    # ── import ──

    async def splitwise(self, message: ImportSplitwise) -> ImportDryRun | ImportProgress:
        group = await member_group(self._pool, message.group_id, message.user_id, writing=True)
        plan = self._plan(group.id, message.data)
        if message.mapping is None:
            return await self._dry_run(group, plan)
        if message.file_sha256 != plan.file_sha256:
            raise rules.invalid(
                "file_sha256",
                "the file is not the one of the dry run (its SHA-256 differs): run the dry run"
                " on this file and confirm its mapping",
            )
        batch = await self._batch(group, plan, message)
        return await self._write(group, batch, message)

    def _plan(self, group_id: str, data: bytes) -> ImportPlan:
        key = (group_id, hashlib.sha256(data).hexdigest())
        plan = self._plans.get(key)
        if plan is None:
            plan = parse_splitwise(data, group_id=group_id)
            self._plans[key] = plan
            while len(self._plans) > PLANS_KEPT:
                self._plans.popitem(last=False)
        self._plans.move_to_end(key)
        return plan

    async def _dry_run(self, group: GroupRow, plan: ImportPlan) -> ImportDryRun:
        members = await member_ids(self._pool, group.id)
        names = await self._names(group.id, members)
        proposal = dry_run(plan, [(user, names.get(user)) for user in members])
        already = await import_store.existing(
            self._pool,
            [expense.expense_id for expense in plan.expenses],
            [settlement.settlement_id for settlement in plan.settlements],
        )
        return ImportDryRun(
            report=proposal.report, mapping=proposal.mapping, already_imported=already
        )

    async def _batch(
        self, group: GroupRow, plan: ImportPlan, message: ImportSplitwise
    ) -> ImportBatch:
        assert message.mapping is not None
        mapping = {match.name: match.user_id for match in message.mapping}
        key = (group.id, plan.file_sha256, tuple(sorted(mapping.items(), key=str)))
        batch = self._batches.get(key)
        if batch is None:
            members = set(await member_ids(self._pool, group.id))
            # a placeholder of an earlier run of this file is a member now: mapping its
            # name to it (as the dry run proposes) writes to the same ids
            batch = apply_mapping(plan, mapping, members=members)
            self._batches[key] = batch
            while len(self._batches) > PLANS_KEPT:
                self._batches.popitem(last=False)
        self._batches.move_to_end(key)
        return batch

    async def _write(
        self, group: GroupRow, batch: ImportBatch, message: ImportSplitwise
    ) -> ImportProgress:
        total = batch_total(batch)
        start = min(message.start, total)
        expenses, settlements = batch_chunk(batch, start, message.chunk)
        done = start + len(expenses) + len(settlements)
        finished = done >= total
        counts = [message.expenses_added, message.settlements_added, message.placeholders_added]
        if start == 0:
            await self._check_room(group, batch)
        now = self._context.now()
        async with self._context.transaction() as tx:
            if not tx.duplicate:
                if start == 0 and not await self._imported_before(batch):
                    counts[2] += await self._add_placeholders(tx, group, batch, message, now)
                added = await import_store.insert_expenses(
                    tx, group.id, expenses, message.user_id, now
                )
                paid = await import_store.insert_settlements(tx, group.id, settlements, now)
                for currency, deltas in sorted(batch_deltas(added, paid).items()):
                    await store.balances.apply_deltas(tx, group.id, currency, deltas)
                counts[0] += len(added)
                counts[1] += len(paid)
                if finished and (counts[0] or counts[1]):
                    await store.activity.add_activity(
                        tx,
                        group.id,
                        "group_imported",
                        message.user_id,
                        f"{message.user_id} imported {counts[0]:,} expenses from Splitwise",
                        now,
                        data={
                            "source": "splitwise",
                            "expenses": counts[0],
                            "settlements": counts[1],
                            "placeholders": counts[2],
                        },
                    )
        if finished:
            log.info(
                "splitwise_imported",
                group_id=group.id,
                expenses=counts[0],
                settlements=counts[1],
                placeholders=counts[2],
                rows=total,
            )
        return ImportProgress(
            done=done,
            total=total,
            finished=finished,
            expenses_added=counts[0],
            settlements_added=counts[1],
            placeholders_added=counts[2],
        )

    async def _check_room(self, group: GroupRow, batch: ImportBatch) -> None:
        members = set(await member_ids(self._pool, group.id))
        new = [p for p in batch.placeholders if p.placeholder_id not in members]
        if len(members) + len(new) > MAX_MEMBERS:
            raise GroupFull(
                f"A group has at most {MAX_MEMBERS} members; this import would add {len(new)}"
                f" to its {len(members)}.",
                details={"field": "mapping"},
            )

    async def _imported_before(self, batch: ImportBatch) -> bool:
        """Whether every row of the batch is stored already (a second run: it adds no
        placeholder either, whatever the names are mapped to this time)."""
        found = await import_store.existing(
            self._pool,
            [expense.expense_id for expense in batch.expenses],
            [settlement.settlement_id for settlement in batch.settlements],
        )
        return found >= batch_total(batch)

    async def _add_placeholders(
        self,
        tx: Transaction,
        group: GroupRow,
        batch: ImportBatch,
        message: ImportSplitwise,
        now: datetime,
    ) -> int:
        """The new placeholders (one already there from an earlier run is kept); how many
        were added. PlaceholderAdded tells auth their names; no welcome is sent."""
        added = 0
        for placeholder in batch.placeholders:
            row = PlaceholderRow(
                placeholder.placeholder_id, group.id, placeholder.name, message.user_id, now
            )
            if not await store.placeholders.add_placeholder(tx, row):
                continue
            await store.groups.add_member(tx, group.id, placeholder.placeholder_id, now)
            await tx.publish(
                PlaceholderAdded(
                    group_id=group.id,
                    placeholder_id=placeholder.placeholder_id,
                    name=placeholder.name,
                    added_by=message.user_id,
                )
            )
            added += 1
        return added

    async def _names(self, group_id: str, members: list[str]) -> dict[str, str]:
        """Members' display names: auth's, else a placeholder's own (auth may not have
        heard of a new one yet)."""
        names = dict(await store.placeholders.unclaimed(self._pool, [group_id]))
        try:
            for start in range(0, len(members), NAMES_MAX):
                reply: Names = await self._context.ask(
                    "auth", GetNames(user_ids=members[start : start + NAMES_MAX])
                )
                names.update((person.user_id, person.name) for person in reply.people)
        except DomainError as error:
            log.warning("import_names_unavailable", code=error.code)
        return names

    # ── export ──

    async def export_json(self, message: ExportGroupJson) -> GroupExport:
        group = await member_group(self._pool, message.group_id, message.user_id)
        members = (await store.groups.members(self._pool, [group.id]))[group.id]
        placeholders = await store.placeholders.unclaimed(self._pool, [group.id])
        comments: dict[str, list[ExportedComment]] = {}
        for row in await import_store.comments_of(self._pool, group.id):
            comments.setdefault(row["expense_id"], []).append(
                ExportedComment(
                    id=row["id"],
                    user_id=row["user_id"],
                    text=row["body"],
                    created_at=rfc3339(row["created_at"]),
                )
            )
        expenses = [
            ExportedExpense(
                id=e.id,
                date=e.spent_on.isoformat(),
                description=e.description,
                category=e.category,
                amount=e.amount,
                currency=e.currency,
                split_mode=e.split_mode,
                paid_by=[ExportedLine(user_id=u, amount=n) for u, n in e.payers],
                shares=[ExportedLine(user_id=u, amount=n) for u, n in e.shares],
                created_by=e.created_by,
                created_at=rfc3339(e.created_at),
                comments=comments.get(e.id, []),
            )
            for e in await store.expenses.all_expenses(self._pool, group.id)
        ]
        settlements = [
            ExportedSettlement(
                id=row["id"],
                from_user_id=row["from_user_id"],
                to_user_id=row["to_user_id"],
                amount=row["amount"],
                currency=row["currency"],
                method=row["method"],
                settled_at=None if row["settled_at"] is None else rfc3339(row["settled_at"]),
            )
            for row in await import_store.settlements_of(self._pool, group.id)
        ]
        return GroupExport(
            format=EXPORT_FORMAT,
            exported_at=rfc3339(self._context.now()),
            group=ExportedGroup(
                id=group.id,
                name=group.name,
                currency=group.currency,
                created_by=group.created_by,
                created_at=rfc3339(group.created_at),
                archived=group.archived_at is not None,
            ),
            members=[
                ExportedMember(
                    user_id=user,
                    joined_at=rfc3339(joined),
                    placeholder=user in placeholders,
                    name=placeholders.get(user),
                )
                for user, joined in members
            ],
            expenses=expenses,
            settlements=settlements,
        )
