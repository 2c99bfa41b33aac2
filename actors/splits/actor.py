"""The Splits actor: one handler per message, each handing it to the feature part that
owns it (`groups`, `expenses`, `recurring`, `settling`, `activity`). Each part is given the
shard's runtime `Context` (database, clock, transactions, messages, timers).

Sharded by group: one shard writes a group's rows, one message at a time, so balances are
kept incrementally without locks. Every change and the events it causes commit in one
transaction (the reliable hand-off); ids are chosen by the caller, so a retried command
finds its first result instead of doing it twice. Who hears the events is declared where
the node is composed (`tx.publish`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from actors.auth.messages import AccountDeleted, EmailVerified, UserRegistered
from actors.payments.messages import TransferCompleted, TransferFailed
from actors.runtime import Actor, Clock, handles, wall_clock
from actors.splits import store
from actors.splits.activity import Activity
from actors.splits.expenses import Expenses
from actors.splits.groups import Groups
from actors.splits.hot import (
    IDLE_SECONDS,
    READS,
    RESIDENT_NAME,
    Holder,
    HotBalances,
    copy_size,
    dropped_by,
)
from actors.splits.importer import Importer
from actors.splits.invites import Invites
from actors.splits.links import Links
from actors.splits.messages import (
    ActivityPage,
    AddComment,
    AddExpense,
    AddMember,
    AnswerInvite,
    BalancesView,
    CancelInvite,
    ChatSubject,
    CommentList,
    CommentView,
    CreateClaimLink,
    CreateGroup,
    CreateJoinLink,
    CreateRecurringCopy,
    CsvExport,
    DeleteExpense,
    DeleteGroup,
    DescribeChatSubject,
    DescribeMySplits,
    Done,
    EditExpense,
    ExpensePage,
    ExpenseView,
    ExportGroup,
    ExportGroupJson,
    FinishSettlement,
    GetActivity,
    GetBalances,
    GetExpense,
    GetGroup,
    GetGroupHeader,
    GetGroupSettings,
    GetInsight,
    GetNetBreakdown,
    GetSettlement,
    GetSettlePlan,
    GetSummary,
    GroupExport,
    GroupHeader,
    GroupList,
    GroupSettings,
    GroupView,
    ImportDryRun,
    ImportProgress,
    ImportSplitwise,
    InsightView,
    InviteList,
    InviteMember,
    InviteView,
    JoinByLink,
    JoinInvited,
    JoinLinkList,
    JoinLinkView,
    ListComments,
    ListExpenses,
    ListGroups,
    ListInvites,
    ListJoinLinks,
    ListMyInvites,
    ListRecurring,
    MySplits,
    NetBreakdown,
    PrepareSettlement,
    RecordSettlement,
    RecurringList,
    RecurringView,
    ReminderView,
    RemindMember,
    RemoveMember,
    RevokeJoinLink,
    SearchExpenses,
    SetRecurrenceEnd,
    SetSimplify,
    SettlementView,
    SettlePlanView,
    StopRecurring,
    SummaryView,
    UpdateGroup,
)
from actors.splits.people import People
from actors.splits.personal_data import PersonalData
from actors.splits.recurring import Recurring
from actors.splits.reminders import Reminders
from actors.splits.searching import Searching
from actors.splits.settling import Settling
from actors.splits.subjects import Subjects
from actors.splits.summary import Summary

if TYPE_CHECKING:
    from actors.runtime.system import ActorSystem


class Splits(Actor):
    """Groups, expenses and balances of friends sharing costs; state lives in PostgreSQL.

    `pool` holds the splits tables; `clock` is what time it is (tests move it);
    `recurring_interval` is the seconds between sweeps for due recurring copies (0: none).
    """

    idempotency_keys = store.KEYS

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock = wall_clock,
        recurring_interval: float = 300.0,
        hot: HotBalances | None = None,
    ) -> None:
        self._pool, self._clock = pool, clock
        context = self.context(pool, clock)
        # issue 20: balances of the shard's groups kept in memory (see hot.py)
        self.hot = hot if hot is not None else HotBalances(self._balances_holder)
        self.groups = Groups(context)
        self.recurring = Recurring(context, interval=recurring_interval)
        self.expenses = Expenses(
            context, on_saved=self.recurring.arm, on_written=self.recurring.written
        )
        self.settling = Settling(context, hot=self.hot)
        self.activity = Activity(context)
        self.summary = Summary(context)
        self.reminders = Reminders(context)
        self.links = Links(context)
        self.invites = Invites(context)
        # issue 17 parts (search and insight; recurring and settling; import and export)
        self.importer = Importer(context)
        self.searching = Searching(context)
        self.subjects = Subjects(context)
        self.people = People(context, settling=self.settling)
        self.personal_data = PersonalData(context)  # issue 19: export, account deletion

    def bind(self, *, name: str, shard: int, system: ActorSystem) -> None:
        """Each handler of a message that may change a group drops that group's kept
        balances once it is done, committed or not (`hot.dropped_by`)."""
        super().bind(name=name, shard=shard, system=system)
        for message_type, handler in list(self.dispatch.items()):
            if message_type not in READS:
                self.dispatch[message_type] = self._dropping(handler)

    def _dropping(
        self, handler: Callable[[Any], Awaitable[Any]]
    ) -> Callable[[Any], Awaitable[Any]]:
        hot = self.hot

        async def handle(message: Any) -> Any:
            try:
                return await handler(message)
            finally:
                hot.drop(dropped_by(message))

        return handle

    def _balances_holder(self) -> Holder:
        """The shard's hot balances (made on first use, while handling)."""
        return self.resident(RESIDENT_NAME, size=copy_size, idle=IDLE_SECONDS, clock=self._clock)

    async def on_start(self) -> None:
        self.recurring.start()
        self.prune_keys(self._pool, self._clock)

    # ── groups and members ─────────────────────────────────────────────────────────────

    @handles(CreateGroup)
    async def create_group(self, message: CreateGroup) -> GroupView:
        return await self.groups.create(message)

    @handles(ListGroups)
    async def list_groups(self, message: ListGroups) -> GroupList:
        return await self.groups.list_groups(message)

    @handles(GetGroup)
    async def get_group(self, message: GetGroup) -> GroupView:
        return await self.groups.get(message)

    @handles(GetGroupHeader)
    async def get_group_header(self, message: GetGroupHeader) -> GroupHeader:
        return await self.groups.header(message)

    @handles(GetNetBreakdown)
    async def net_breakdown(self, message: GetNetBreakdown) -> NetBreakdown:
        return await self.settling.breakdown(message)

    @handles(CreateJoinLink)
    async def create_join_link(self, message: CreateJoinLink) -> JoinLinkView:
        return await self.links.create(message)

    @handles(CreateClaimLink)
    async def create_claim_link(self, message: CreateClaimLink) -> JoinLinkView:
        return await self.links.create_claim(message)

    @handles(ListJoinLinks)
    async def list_join_links(self, message: ListJoinLinks) -> JoinLinkList:
        return await self.links.list(message)

    @handles(RevokeJoinLink)
    async def revoke_join_link(self, message: RevokeJoinLink) -> Done:
        return await self.links.revoke(message)

    @handles(JoinByLink)
    async def join_by_link(self, message: JoinByLink) -> GroupView:
        return await self.links.join(message)

    @handles(RemindMember)
    async def remind(self, message: RemindMember) -> ReminderView:
        return await self.reminders.remind(message)

    @handles(GetSummary)
    async def get_summary(self, message: GetSummary) -> SummaryView:
        return await self.summary.summary(message)

    @handles(UpdateGroup)
    async def update_group(self, message: UpdateGroup) -> GroupView:
        return await self.groups.update(message)

    @handles(DeleteGroup)
    async def delete_group(self, message: DeleteGroup) -> Done:
        return await self.groups.delete(message)

    # ── invitations ────────────────────────────────────────────────────────────────────

    @handles(InviteMember)
    async def invite_member(self, message: InviteMember) -> InviteView:
        return await self.invites.invite(message)

    @handles(ListInvites)
    async def list_invites(self, message: ListInvites) -> InviteList:
        return await self.invites.list(message)

    @handles(ListMyInvites)
    async def list_my_invites(self, message: ListMyInvites) -> InviteList:
        return await self.invites.list_mine(message)

    @handles(AnswerInvite)
    async def answer_invite(self, message: AnswerInvite) -> GroupView | Done:
        return await self.invites.answer(message)

    @handles(CancelInvite)
    async def cancel_invite(self, message: CancelInvite) -> Done:
        return await self.invites.cancel(message)

    @handles(AddMember)
    async def add_member(self, message: AddMember) -> GroupView:
        return await self.groups.add_member(message)

    @handles(EmailVerified)
    async def email_verified(self, message: EmailVerified) -> None:
        await self.invites.email_verified(message)

    @handles(UserRegistered)
    async def user_registered(self, message: UserRegistered) -> None:
        """Signing up admits no one (EmailVerified does); splits no longer subscribes, and
        an entry queued before that changed is consumed without effect."""

    @handles(JoinInvited)
    async def join_invited(self, message: JoinInvited) -> None:
        await self.invites.join_invited(message)

    @handles(DescribeChatSubject)
    async def describe_chat_subject(self, message: DescribeChatSubject) -> ChatSubject:
        return await self.subjects.describe(message)

    @handles(RemoveMember)
    async def remove_member(self, message: RemoveMember) -> Done:
        return await self.groups.remove_member(message)

    # ── expenses ───────────────────────────────────────────────────────────────────────

    @handles(AddExpense)
    async def add_expense(self, message: AddExpense) -> ExpenseView:
        await self.recurring.check(message)  # issue 17: a series' end, checked first
        return await self.expenses.add(message)

    @handles(GetExpense)
    async def get_expense(self, message: GetExpense) -> ExpenseView:
        return await self.expenses.get(message)

    @handles(EditExpense)
    async def edit_expense(self, message: EditExpense) -> ExpenseView:
        await self.recurring.check(message)  # issue 17: a series' end, checked first
        return await self.expenses.edit(message)

    @handles(DeleteExpense)
    async def delete_expense(self, message: DeleteExpense) -> Done:
        return await self.expenses.delete(message)

    @handles(ListExpenses)
    async def list_expenses(self, message: ListExpenses) -> ExpensePage:
        return await self.expenses.page(message)

    @handles(CreateRecurringCopy)
    async def recurring_copy(self, message: CreateRecurringCopy) -> None:
        await self.recurring.copy(message)

    # ── balances and settling up ───────────────────────────────────────────────────────

    @handles(GetBalances)
    async def get_balances(self, message: GetBalances) -> BalancesView:
        return await self.settling.balances(message)

    @handles(GetSettlePlan)
    async def get_settle_plan(self, message: GetSettlePlan) -> SettlePlanView:
        return await self.settling.settle_plan(message)

    @handles(RecordSettlement)
    async def record_settlement(self, message: RecordSettlement) -> SettlementView:
        return await self.settling.record(message)

    @handles(GetSettlement)
    async def get_settlement(self, message: GetSettlement) -> SettlementView:
        return await self.settling.get(message)

    @handles(TransferCompleted)
    async def transfer_completed(self, message: TransferCompleted) -> None:
        await self.settling.transfer_completed(message)

    @handles(TransferFailed)
    async def transfer_failed(self, message: TransferFailed) -> None:
        await self.settling.transfer_failed(message)

    # ── comments, activity, export ─────────────────────────────────────────────────────

    @handles(AddComment)
    async def add_comment(self, message: AddComment) -> CommentView:
        return await self.activity.add_comment(message)

    @handles(ListComments)
    async def list_comments(self, message: ListComments) -> CommentList:
        return await self.activity.comments(message)

    @handles(GetActivity)
    async def get_activity(self, message: GetActivity) -> ActivityPage:
        return await self.activity.page(message)

    @handles(ExportGroup)
    async def export(self, message: ExportGroup) -> CsvExport:
        return await self.activity.export(message)

    # ── issue 17: search and insight ───────────────────────────────────────────────────

    @handles(SearchExpenses)
    async def search_expenses(self, message: SearchExpenses) -> ExpensePage:
        return await self.searching.search(message)

    @handles(GetInsight)
    async def get_insight(self, message: GetInsight) -> InsightView:
        return await self.searching.insight(message)

    # ── issue 17: recurring and settling ───────────────────────────────────────────────

    @handles(ListRecurring)
    async def list_recurring(self, message: ListRecurring) -> RecurringList:
        return await self.recurring.list(message)

    @handles(StopRecurring)
    async def stop_recurring(self, message: StopRecurring) -> RecurringView:
        return await self.recurring.stop(message)

    @handles(SetRecurrenceEnd)
    async def set_recurrence_end(self, message: SetRecurrenceEnd) -> RecurringView:
        return await self.recurring.set_end(message)

    @handles(GetGroupSettings)
    async def group_settings(self, message: GetGroupSettings) -> GroupSettings:
        return await self.people.settings(message)

    @handles(SetSimplify)
    async def set_simplify(self, message: SetSimplify) -> GroupSettings:
        return await self.people.set_simplify(message)

    @handles(PrepareSettlement)
    async def prepare_settlement(self, message: PrepareSettlement) -> SettlementView:
        return await self.people.prepare(message)

    @handles(FinishSettlement)
    async def finish_settlement(self, message: FinishSettlement) -> SettlementView:
        return await self.people.finish(message)

    # ── issue 17: import and export ────────────────────────────────────────────────────

    @handles(ImportSplitwise)
    async def import_splitwise(self, message: ImportSplitwise) -> ImportDryRun | ImportProgress:
        return await self.importer.splitwise(message)

    @handles(ExportGroupJson)
    async def export_json(self, message: ExportGroupJson) -> GroupExport:
        return await self.importer.export_json(message)

    # ── issue 19: a user's own data (export, account deletion) ─────────────────────────

    @handles(DescribeMySplits)
    async def describe_my_splits(self, message: DescribeMySplits) -> MySplits:
        return await self.personal_data.describe(message)

    @handles(AccountDeleted)
    async def on_account_deleted(self, event: AccountDeleted) -> None:
        await self.personal_data.account_deleted(event)
