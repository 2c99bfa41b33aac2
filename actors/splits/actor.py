"""The splits actor: groups, members and invites, expenses with several payers and every
split mode, comments, activity and the CSV export. Balances, the settle plan and
settlements are in `settling.py`.

Sharded by group: one shard writes a group's rows, one message at a time, so balances are
kept incrementally without locks. Every change and the events it causes commit in one
transaction (the reliable hand-off); ids are chosen by the caller, so a retried command
finds its first result instead of doing it twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import structlog

from actors.auth.messages import UserRegistered
from actors.runtime import Actor, Message, Transaction, handles
from actors.runtime.clock import rfc3339
from actors.splits import rules, store
from actors.splits.messages import (
    MAX_MEMBERS,
    ActivityItem,
    ActivityPage,
    AddComment,
    AddExpense,
    AddMember,
    AlreadyMember,
    CommentList,
    CommentView,
    CreateGroup,
    CreateRecurringCopy,
    CsvExport,
    DeleteExpense,
    Done,
    EditExpense,
    ExpenseAdded,
    ExpenseDeleted,
    ExpenseNotFound,
    ExpensePage,
    ExpenseUpdated,
    ExpenseView,
    ExportGroup,
    GetActivity,
    GetExpense,
    GetGroup,
    GroupFull,
    GroupList,
    GroupNotFound,
    GroupView,
    Invite,
    JoinInvited,
    ListComments,
    ListExpenses,
    ListGroups,
    Member,
    MemberAdded,
    NotAMember,
    Payer,
    RemoveMember,
    Share,
    ShareLine,
    UnsettledBalance,
)
from actors.splits.settling import Settling
from actors.splits.shares import ShareSpec, compute_shares, expense_deltas, split_payers

log = structlog.get_logger("splits")

RECURRING_CATCH_UP = 24  # copies one CreateRecurringCopy makes at most (a long outage)


def expense_view(expense: store.ExpenseRecord) -> ExpenseView:
    return ExpenseView(
        id=expense.id,
        group_id=expense.group_id,
        description=expense.description,
        amount=expense.amount,
        currency=expense.currency,
        date=expense.spent_on.isoformat(),
        category=expense.category,
        paid_by=[Payer(user_id=user, amount=paid) for user, paid in expense.payers],
        split_mode=expense.split_mode,
        shares=[Share(user_id=user, amount=owed) for user, owed in expense.shares],
        created_by=expense.created_by,
        created_at=rfc3339(expense.created_at),
        updated_at=rfc3339(expense.updated_at),
        version=expense.version,
        recurrence=expense.recurrence,
        recurring_from=expense.recurring_from,
    )


def _specs(lines: Sequence[ShareLine]) -> list[ShareSpec]:
    return [ShareSpec(line.user_id, line.amount, line.percent_bp, line.shares) for line in lines]


def _lines(saved: Sequence[Mapping[str, Any]]) -> list[ShareLine]:
    return [ShareLine(**line) for line in saved]


def _saved(lines: Sequence[ShareLine]) -> list[dict[str, Any]]:
    return [
        {
            k: v
            for k, v in (
                ("user_id", line.user_id),
                ("amount", line.amount),
                ("percent_bp", line.percent_bp),
                ("shares", line.shares),
            )
            if v is not None
        }
        for line in lines
    ]


class Splits(Settling, Actor):
    """Groups, expenses and balances of friends sharing costs; state lives in PostgreSQL."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Callable[[], float] = time.time,
        subscribers: Mapping[type, Sequence[str]] | None = None,
        recurring_interval: float = 300.0,
    ) -> None:
        """`subscribers` maps an event type (ExpenseAdded, SettlementRecorded, ...) to the
        actor types that hear it (none by default)."""
        self._pool = pool
        self._clock = clock
        self._subscribers = {kind: tuple(names) for kind, names in (subscribers or {}).items()}
        self._recurring_interval = recurring_interval

    async def on_start(self) -> None:
        # timers of far-off copies do not survive a restart; one shard sweeps for them
        if self.shard == 0 and self._recurring_interval > 0:
            self.every(self._recurring_interval, self.sweep_recurring, "recurring")

    async def sweep_recurring(self) -> None:
        for group_id, expense_id in await store.due_recurring(self._pool, self._today()):
            await self.tell(
                self.name, CreateRecurringCopy(group_id=group_id, expense_id=expense_id)
            )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _today(self) -> date:
        return self._now().date()

    async def _publish(self, tx: Transaction, event: Message) -> None:
        for target in self._subscribers.get(type(event), ()):
            await tx.tell(target, event)

    async def _member_group(
        self, db: store.Executor, group_id: str, user_id: str
    ) -> store.GroupRow:
        """The group, if `user_id` is in it; to anyone else it does not exist."""
        group = await store.group(db, group_id)
        if group is None or not await store.is_member(db, group_id, user_id):
            raise GroupNotFound("No such group among yours.", details={"field": "group_id"})
        return group

    async def _group_view(self, group: store.GroupRow) -> GroupView:
        members = (await store.members(self._pool, [group.id]))[group.id]
        invited = (await store.invites(self._pool, [group.id]))[group.id]
        return _view(group, members, invited)

    # ── groups and members ─────────────────────────────────────────────────────────────

    @handles(CreateGroup)
    async def create_group(self, message: CreateGroup) -> GroupView:
        name = rules.group_name(message.name)
        currency = rules.currency(message.currency)
        now = self._now()
        async with self.transaction() as tx:
            if not tx.duplicate and await store.insert_group(
                tx, message.group_id, name, currency, message.user_id, now
            ):
                await store.add_activity(
                    tx,
                    message.group_id,
                    "group_created",
                    message.user_id,
                    f"{message.user_id} created the group {name}",
                    now,
                )
        return await self._group_view(
            await self._member_group(self._pool, message.group_id, message.user_id)
        )

    @handles(ListGroups)
    async def list_groups(self, message: ListGroups) -> GroupList:
        groups = await store.groups_of(self._pool, message.user_id)
        ids = [group.id for group in groups]
        members = await store.members(self._pool, ids)
        invited = await store.invites(self._pool, ids)
        return GroupList(groups=[_view(g, members[g.id], invited[g.id]) for g in groups])

    @handles(GetGroup)
    async def get_group(self, message: GetGroup) -> GroupView:
        return await self._group_view(
            await self._member_group(self._pool, message.group_id, message.user_id)
        )

    @handles(AddMember)
    async def add_member(self, message: AddMember) -> GroupView:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        if (message.member_user_id is None) == (message.email is None):
            raise rules.invalid("user_id", "give either user_id or email")
        if await store.member_count(self._pool, group.id) >= MAX_MEMBERS:
            raise GroupFull(f"A group has at most {MAX_MEMBERS} members.")
        now = self._now()
        async with self.transaction() as tx:
            if tx.duplicate:
                pass
            elif message.member_user_id is not None:
                if not await store.add_member(tx, group.id, message.member_user_id, now):
                    raise AlreadyMember(
                        "This user is a member already.", details={"field": "user_id"}
                    )
                await self._joined(tx, group, message.member_user_id, message.user_id, now)
            elif message.email is not None and await store.add_invite(
                tx, group.id, message.email, message.user_id, now
            ):
                await store.add_activity(
                    tx,
                    group.id,
                    "member_invited",
                    message.user_id,
                    f"{message.user_id} invited {message.email}",
                    now,
                    data={"email": message.email},
                )
        return await self._group_view(group)

    async def _joined(
        self, tx: Transaction, group: store.GroupRow, user_id: str, by: str, now: datetime
    ) -> None:
        await store.add_activity(
            tx,
            group.id,
            "member_added",
            by,
            f"{by} added {user_id}",
            now,
            data={"user_id": user_id},
        )
        await self._publish(
            tx,
            MemberAdded(
                group_id=group.id, group_name=group.name, member_user_id=user_id, added_by=by
            ),
        )

    @handles(UserRegistered)
    async def user_registered(self, message: UserRegistered) -> None:
        """Someone signed up: every group that invited their email gets them as a member
        (each group's own shard adds them)."""
        async with self.transaction() as tx:
            if tx.duplicate:
                return
            for group_id in await store.groups_inviting(tx, message.email.lower()):
                await tx.tell(
                    self.name,
                    JoinInvited(
                        group_id=group_id, user_id=message.user_id, email=message.email.lower()
                    ),
                )

    @handles(JoinInvited)
    async def join_invited(self, message: JoinInvited) -> None:
        group = await store.group(self._pool, message.group_id)
        if group is None:
            return
        now = self._now()
        async with self.transaction() as tx:
            if tx.duplicate:
                return
            invited_by = await store.take_invite(tx, group.id, message.email)
            if invited_by is None:
                return
            if await store.add_member(tx, group.id, message.user_id, now):
                await self._joined(tx, group, message.user_id, invited_by, now)

    @handles(RemoveMember)
    async def remove_member(self, message: RemoveMember) -> Done:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        leaving = message.member_user_id
        if not await store.is_member(self._pool, group.id, leaving):
            raise NotAMember(
                "This user is not a member of the group.", details={"field": "user_id"}
            )
        owing = await store.unsettled(self._pool, group.id, leaving)
        if owing:
            shown = ", ".join(rules.money(net, currency) for currency, net in sorted(owing.items()))
            raise UnsettledBalance(
                f"{leaving} still has a balance of {shown} in this group; settle up first.",
                details={"field": "user_id", "balances": owing},
            )
        now = self._now()
        async with self.transaction() as tx:
            if not tx.duplicate:
                await store.remove_member(tx, group.id, leaving)
                kind = "member_left" if leaving == message.user_id else "member_removed"
                await store.add_activity(
                    tx,
                    group.id,
                    kind,
                    message.user_id,
                    f"{leaving} left the group"
                    if kind == "member_left"
                    else f"{message.user_id} removed {leaving}",
                    now,
                    data={"user_id": leaving},
                )
        return Done()

    # ── expenses ───────────────────────────────────────────────────────────────────────

    async def _priced(
        self,
        group: store.GroupRow,
        *,
        amount: int,
        currency: str,
        payers: Sequence[Payer],
        mode: str,
        lines: Sequence[ShareLine],
    ) -> tuple[list[tuple[str, int]], list[tuple[str, int]], list[ShareLine]]:
        """Check who paid and who shares against the members; (payers, shares, lines)."""
        members = [user for user, _ in (await store.members(self._pool, [group.id]))[group.id]]
        known = set(members)
        for index, payer in enumerate(payers):
            if payer.user_id not in known:
                raise NotAMember(
                    f"{payer.user_id} is not a member of this group.",
                    details={"field": f"paid_by[{index}].user_id"},
                )
        for index, line in enumerate(lines):
            if line.user_id not in known:
                raise NotAMember(
                    f"{line.user_id} is not a member of this group.",
                    details={"field": f"split.shares[{index}].user_id"},
                )
        if mode == "equal" and not lines:
            lines = [ShareLine(user_id=user) for user in members]
        shares = compute_shares(rules.amount(amount), mode, _specs(lines))  # type: ignore[arg-type]
        paid = split_payers(amount, [(payer.user_id, payer.amount) for payer in payers])
        rules.currency(currency)
        return paid, shares, list(lines)

    @handles(AddExpense)
    async def add_expense(self, message: AddExpense) -> ExpenseView:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        known = await store.expense(self._pool, message.expense_id)
        if known is not None:  # a retried command: its first result
            if known.group_id != group.id:
                raise ExpenseNotFound("No such expense in this group.")
            return expense_view(known)
        description = rules.description(message.description)
        category = rules.category(message.category)
        spent_on = rules.spent_on(message.date, self._today())
        payers, shares, lines = await self._priced(
            group,
            amount=message.amount,
            currency=message.currency,
            payers=message.paid_by,
            mode=message.split_mode,
            lines=message.shares,
        )
        now = self._now()
        expense = store.ExpenseRecord(
            id=message.expense_id,
            group_id=group.id,
            description=description,
            amount=message.amount,
            currency=message.currency,
            spent_on=spent_on,
            category=category,
            split_mode=message.split_mode,
            split_input=_saved(lines),
            created_by=message.user_id,
            created_at=now,
            updated_at=now,
            recurrence=message.recurrence,
            next_due=None
            if message.recurrence is None
            else rules.next_occurrence(spent_on, message.recurrence),
            payers=payers,
            shares=shares,
        )
        async with self.transaction() as tx:
            if not tx.duplicate:
                await self._add(tx, group, expense, message.user_id, now)
        self._arm(expense)
        return expense_view(expense)

    async def _add(
        self,
        tx: Transaction,
        group: store.GroupRow,
        expense: store.ExpenseRecord,
        by: str,
        now: datetime,
    ) -> bool:
        if not await store.insert_expense(tx, expense):
            return False
        deltas = expense_deltas(expense.payers, expense.shares)
        await store.apply_deltas(tx, group.id, expense.currency, deltas)
        await store.add_activity(
            tx,
            group.id,
            "expense_added",
            by,
            f"{by} added “{expense.description}” ({rules.money(expense.amount, expense.currency)})",
            now,
            expense_id=expense.id,
            data={"amount": expense.amount, "currency": expense.currency},
        )
        await self._publish(
            tx,
            ExpenseAdded(
                group_id=group.id,
                group_name=group.name,
                expense_id=expense.id,
                description=expense.description,
                amount=expense.amount,
                currency=expense.currency,
                created_by=by,
                shares=[Share(user_id=user, amount=owed) for user, owed in expense.shares],
            ),
        )
        return True

    def _arm(self, expense: store.ExpenseRecord) -> None:
        """A timer for the next copy when it is due within the sweep's interval (later
        ones are found by the sweep)."""
        if expense.next_due is None:
            return
        due = datetime(
            expense.next_due.year, expense.next_due.month, expense.next_due.day, tzinfo=UTC
        )
        delay = max(due.timestamp() - self._clock(), 0.0)
        if delay <= self._recurring_interval:
            self.schedule(
                delay, CreateRecurringCopy(group_id=expense.group_id, expense_id=expense.id)
            )

    async def _live_expense(self, group: store.GroupRow, expense_id: str) -> store.ExpenseRecord:
        expense = await store.expense(self._pool, expense_id)
        if expense is None or expense.group_id != group.id or expense.deleted:
            raise ExpenseNotFound("No such expense in this group.", details={"field": "expense_id"})
        return expense

    @handles(GetExpense)
    async def get_expense(self, message: GetExpense) -> ExpenseView:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        return expense_view(await self._live_expense(group, message.expense_id))

    @handles(EditExpense)
    async def edit_expense(self, message: EditExpense) -> ExpenseView:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        old = await self._live_expense(group, message.expense_id)
        new = await self._edited(group, old, message)
        now = self._now()
        new.updated_at, new.version = now, old.version + 1
        async with self.transaction() as tx:
            if tx.duplicate:
                return expense_view(await self._live_expense(group, old.id))
            await store.record_history(tx, old, "edited", message.user_id, now)
            await store.update_expense(tx, new)
            await store.apply_deltas(
                tx,
                group.id,
                old.currency,
                {user: -delta for user, delta in expense_deltas(old.payers, old.shares).items()},
            )
            await store.apply_deltas(
                tx, group.id, new.currency, expense_deltas(new.payers, new.shares)
            )
            await store.add_activity(
                tx,
                group.id,
                "expense_updated",
                message.user_id,
                f"{message.user_id} changed “{new.description}”",
                now,
                expense_id=new.id,
                data={"version": new.version},
            )
            await self._publish(
                tx,
                ExpenseUpdated(
                    group_id=group.id,
                    group_name=group.name,
                    expense_id=new.id,
                    description=new.description,
                    amount=new.amount,
                    currency=new.currency,
                    changed_by=message.user_id,
                    shares=[Share(user_id=user, amount=owed) for user, owed in new.shares],
                ),
            )
        self._arm(new)
        return expense_view(new)

    async def _edited(
        self, group: store.GroupRow, old: store.ExpenseRecord, message: EditExpense
    ) -> store.ExpenseRecord:
        amount = old.amount if message.amount is None else message.amount
        payers = message.paid_by
        if payers is None:
            if amount != old.amount and len(old.payers) > 1:
                raise rules.invalid("paid_by", "give paid_by again when the amount changes")
            payers = [Payer(user_id=user, amount=amount) for user, _ in old.payers]
        mode = message.split_mode or old.split_mode
        lines = (
            message.shares
            if message.shares is not None
            else (_lines(old.split_input) if mode == old.split_mode else [])
        )
        currency = message.currency or old.currency
        paid, shares, kept = await self._priced(
            group, amount=amount, currency=currency, payers=payers, mode=mode, lines=lines
        )
        spent_on = (
            old.spent_on if message.date is None else rules.spent_on(message.date, self._today())
        )
        recurrence = old.recurrence
        if message.recurrence is not None:
            recurrence = None if message.recurrence == "none" else message.recurrence
        return store.ExpenseRecord(
            id=old.id,
            group_id=old.group_id,
            description=old.description
            if message.description is None
            else rules.description(message.description),
            amount=amount,
            currency=currency,
            spent_on=spent_on,
            category=old.category if message.category is None else rules.category(message.category),
            split_mode=mode,
            split_input=_saved(kept),
            created_by=old.created_by,
            created_at=old.created_at,
            updated_at=old.updated_at,
            version=old.version,
            recurrence=recurrence,
            next_due=None
            if recurrence is None
            else old.next_due
            if recurrence == old.recurrence and old.next_due
            else rules.next_occurrence(spent_on, recurrence),
            recurring_from=old.recurring_from,
            seq=old.seq,
            payers=paid,
            shares=shares,
        )

    @handles(DeleteExpense)
    async def delete_expense(self, message: DeleteExpense) -> Done:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        old = await self._live_expense(group, message.expense_id)
        now = self._now()
        async with self.transaction() as tx:
            if tx.duplicate:
                return Done()
            await store.record_history(tx, old, "deleted", message.user_id, now)
            await store.mark_deleted(tx, old.id, now)
            await store.apply_deltas(
                tx,
                group.id,
                old.currency,
                {user: -delta for user, delta in expense_deltas(old.payers, old.shares).items()},
            )
            await store.add_activity(
                tx,
                group.id,
                "expense_deleted",
                message.user_id,
                f"{message.user_id} deleted “{old.description}”",
                now,
                expense_id=old.id,
            )
            participants = sorted({user for user, _ in (*old.payers, *old.shares)})
            await self._publish(
                tx,
                ExpenseDeleted(
                    group_id=group.id,
                    group_name=group.name,
                    expense_id=old.id,
                    description=old.description,
                    deleted_by=message.user_id,
                    participants=participants,
                ),
            )
        return Done()

    @handles(ListExpenses)
    async def list_expenses(self, message: ListExpenses) -> ExpensePage:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        limit = max(1, min(message.limit, 200))
        before = _cursor(message.cursor)
        expenses = await store.expense_page(self._pool, group.id, limit + 1, before)
        more = len(expenses) > limit
        expenses = expenses[:limit]
        return ExpensePage(
            items=[expense_view(expense) for expense in expenses],
            next_cursor=str(expenses[-1].seq) if more else None,
        )

    @handles(CreateRecurringCopy)
    async def recurring_copy(self, message: CreateRecurringCopy) -> None:
        """Make the copies of a recurring expense that are due (each an independent
        expense, id `<original>@<date>`, so a second timer makes nothing twice)."""
        group = await store.group(self._pool, message.group_id)
        original = await store.expense(self._pool, message.expense_id)
        if group is None or original is None or original.deleted or original.recurrence is None:
            return
        today = self._today()
        due = original.next_due
        made = 0
        async with self.transaction() as tx:
            if tx.duplicate:
                return
            while due is not None and due <= today and made < RECURRING_CATCH_UP:
                now = self._now()
                copy = store.ExpenseRecord(
                    id=f"{original.id}@{due.isoformat()}",
                    group_id=group.id,
                    description=original.description,
                    amount=original.amount,
                    currency=original.currency,
                    spent_on=due,
                    category=original.category,
                    split_mode=original.split_mode,
                    split_input=original.split_input,
                    created_by=original.created_by,
                    created_at=now,
                    updated_at=now,
                    recurring_from=original.id,
                    payers=original.payers,
                    shares=original.shares,
                )
                await self._add(tx, group, copy, original.created_by, now)
                due = rules.next_occurrence(due, original.recurrence)
                made += 1
            await store.set_next_due(tx, original.id, due)
        original.next_due = due
        self._arm(original)
        if made:
            log.info("recurring_copies_made", expense_id=original.id, copies=made)

    # ── comments, activity, export ─────────────────────────────────────────────────────

    @handles(AddComment)
    async def add_comment(self, message: AddComment) -> CommentView:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        expense = await self._live_expense(group, message.expense_id)
        body = rules.comment(message.text)
        now = self._now()
        async with self.transaction() as tx:
            if not tx.duplicate and await store.add_comment(
                tx, message.comment_id, expense.id, group.id, message.user_id, body, now
            ):
                await store.add_activity(
                    tx,
                    group.id,
                    "comment_added",
                    message.user_id,
                    f"{message.user_id} commented on “{expense.description}”",
                    now,
                    expense_id=expense.id,
                )
        return CommentView(
            id=message.comment_id,
            expense_id=expense.id,
            user_id=message.user_id,
            text=body,
            created_at=rfc3339(now),
        )

    @handles(ListComments)
    async def list_comments(self, message: ListComments) -> CommentList:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        expense = await self._live_expense(group, message.expense_id)
        rows = await store.comments(self._pool, expense.id)
        return CommentList(
            items=[
                CommentView(
                    id=row["id"],
                    expense_id=row["expense_id"],
                    user_id=row["user_id"],
                    text=row["body"],
                    created_at=rfc3339(row["created_at"]),
                )
                for row in rows
            ]
        )

    @handles(GetActivity)
    async def get_activity(self, message: GetActivity) -> ActivityPage:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        limit = max(1, min(message.limit, 200))
        rows = await store.activity_page(self._pool, group.id, limit + 1, _cursor(message.cursor))
        more = len(rows) > limit
        rows = rows[:limit]
        return ActivityPage(
            items=[_activity(row) for row in rows],
            next_cursor=str(rows[-1]["id"]) if more else None,
        )

    @handles(ExportGroup)
    async def export(self, message: ExportGroup) -> CsvExport:
        group = await self._member_group(self._pool, message.group_id, message.user_id)
        members = [user for user, _ in (await store.members(self._pool, [group.id]))[group.id]]
        rows = [
            rules.ExportRow(
                id=e.id,
                day=e.spent_on,
                description=e.description,
                category=e.category,
                amount=e.amount,
                currency=e.currency,
                payers=e.payers,
                shares=e.shares,
            )
            for e in await store.all_expenses(self._pool, group.id)
        ]
        safe = "".join(c if c.isalnum() else "-" for c in group.name).strip("-") or "group"
        return CsvExport(filename=f"{safe}-expenses.csv", text=rules.export_csv(rows, members))


def _view(
    group: store.GroupRow,
    members: Sequence[tuple[str, datetime]],
    invited: Sequence[tuple[str, str, datetime]],
) -> GroupView:
    return GroupView(
        id=group.id,
        name=group.name,
        currency=group.currency,
        created_by=group.created_by,
        created_at=rfc3339(group.created_at),
        members=[Member(user_id=user, joined_at=rfc3339(at)) for user, at in members],
        invited=[Invite(email=e, invited_by=by, invited_at=rfc3339(at)) for e, by, at in invited],
    )


def _activity(row: Any) -> ActivityItem:
    return ActivityItem(
        id=row["id"],
        kind=row["kind"],
        actor_user_id=row["actor_user_id"],
        summary=row["summary"],
        created_at=rfc3339(row["created_at"]),
        expense_id=row["expense_id"],
        data=None if row["data"] is None else json.loads(row["data"]),
    )


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise rules.invalid("cursor", "cursor is not one this API gave out")
    return int(raw)
