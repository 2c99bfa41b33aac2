"""Groups from the chat: `/groups` (each with your balance), `/add` (an expense you paid,
split equally among the group) and `/settle` (the settle-up plan of each group, with the
transfers that are yours in bold).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from html import escape

import structlog
from aiogram import F, Router, types
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject

from actors.auth.messages import GetUser
from actors.payments.messages import format_money
from actors.runtime import ActorSystem, IdempotencyKey
from actors.runtime.idempotency import fingerprint_of
from actors.splits.messages import (
    AddExpense,
    BalanceLine,
    BalancesView,
    ExpenseView,
    GetBalances,
    GetSettlePlan,
    GroupList,
    GroupView,
    ListGroups,
    Payer,
    PlanTransfer,
    SettlePlanView,
)
from splitgo.bot.help import ADD_USAGE, answer_parts
from splitgo.bot.linking import require_user
from splitgo.bot.parsing import UsageError, parse_add, pick_group, to_minor_units
from splitgo.bot.taps import DoubleTaps
from splitgo.web.actors import find_user
from splitgo.web.splits.rates import ask_with_rate

log = structlog.get_logger("splitgo.bot")

NO_GROUPS = "You are not in any group yet. Create one in the app, or ask a friend to add you."
# the expense id of an /add is derived from its message, so a redelivered update adds nothing
_EXPENSE_IDS = uuid.UUID("0b5c6f0e-6a43-4d2e-9a7c-3f1b2d0e9a11")
TAPS = DoubleTaps()


# ── reading ────────────────────────────────────────────────────────────────────────────


async def my_groups(system: ActorSystem, user_id: str) -> list[GroupView]:
    listed: GroupList = await system.ref("splits").ask(ListGroups(user_id=user_id))
    return listed.groups


async def my_nets(system: ActorSystem, group: GroupView, user_id: str) -> list[BalanceLine]:
    """The user's own non-zero balance lines in the group (one per currency)."""
    view: BalancesView = await system.ref("splits").ask(
        GetBalances(group_id=group.id, user_id=user_id)
    )
    return [line for line in view.balances if line.user_id == user_id and line.net]


async def nets_by_group(
    system: ActorSystem, groups: Sequence[GroupView], user_id: str
) -> list[list[BalanceLine]]:
    """`my_nets` of every group, asked at once, in the order of `groups`."""
    return list(await asyncio.gather(*(my_nets(system, group, user_id) for group in groups)))


def describe_net(lines: Iterable[BalanceLine]) -> str:
    """ "you are owed 8.33 EUR", "you owe 4.17 EUR", or "settled up"."""
    parts = [
        f"you are owed {format_money(line.net, line.currency)}"
        if line.net > 0
        else f"you owe {format_money(-line.net, line.currency)}"
        for line in lines
        if line.net
    ]
    return ", ".join(parts) or "settled up"


async def names_of(system: ActorSystem, user_ids: Iterable[str]) -> dict[str, str]:
    """Display names of these users (asked at once); someone unknown is "a former member"."""
    wanted = sorted(set(user_ids))

    async def name_of(user_id: str) -> str:
        user = await find_user(system, GetUser(user_id=user_id))
        return "a former member" if user is None else user.name

    names = await asyncio.gather(*(name_of(user_id) for user_id in wanted))
    return dict(zip(wanted, names, strict=True))


# ── /groups ────────────────────────────────────────────────────────────────────────────


async def list_groups(message: types.Message, system: ActorSystem) -> None:
    user = await require_user(message, system)
    if user is None:
        return
    groups = await my_groups(system, user.id)
    if not groups:
        await message.answer(NO_GROUPS)
        return
    nets = await nets_by_group(system, groups, user.id)
    lines = [
        f"• <b>{escape(group.name)}</b> ({group.currency}, {_members(group)}): {describe_net(net)}"
        for group, net in zip(groups, nets, strict=True)
    ]
    await answer_parts(message, ["<b>Your groups</b>", "\n".join(lines)])


def _members(group: GroupView) -> str:
    count = len(group.members)
    return "1 member" if count == 1 else f"{count} members"


# ── /add ───────────────────────────────────────────────────────────────────────────────


async def add_expense(message: types.Message, command: CommandObject, system: ActorSystem) -> None:
    user = await require_user(message, system)
    if user is None:
        return
    try:
        args = parse_add(command.args)
        group = pick_group(await my_groups(system, user.id), args.group)
        currency = args.currency or group.currency
        amount = to_minor_units(args.amount, currency)
    except UsageError as error:
        await message.answer(f"{escape(error.sentence)}\n\n{ADD_USAGE}")
        return
    # another currency than the group's: the day's rate is looked up (as the JSON route does)
    expense: ExpenseView = await ask_with_rate(
        system,
        AddExpense(
            group_id=group.id,
            user_id=user.id,
            expense_id=_expense_id(message),
            description=args.description,
            amount=amount,
            currency=currency,
            paid_by=[Payer(user_id=user.id, amount=amount)],
            split_mode="equal",
            shares=[],
            idempotency=_key(message, user.id, command),
        ),
    )
    log.info("bot_expense_added", group_id=group.id, expense_id=expense.id)
    await message.answer(_added_text(expense, group, user.id))


def _key(message: types.Message, user_id: str, command: CommandObject) -> IdempotencyKey:
    """The send's key (see taps.py): Telegram delivering the message again, or the same
    /add double-tapped, replays the first expense's answer instead of adding another."""
    args = command.args or ""
    sent_at = message.date.timestamp()
    return IdempotencyKey(
        scope=f"{user_id} telegram /add",
        key=TAPS.key(message.chat.id, args, message.message_id, sent_at),
        fingerprint=fingerprint_of(args),
    )


def _expense_id(message: types.Message) -> str:
    return str(uuid.uuid5(_EXPENSE_IDS, f"{message.chat.id}:{message.message_id}"))


def _added_text(expense: ExpenseView, group: GroupView, user_id: str) -> str:
    mine = sum(share.amount for share in expense.shares if share.user_id == user_id)
    people = len(expense.shares)
    converted = ""
    if expense.group_amount is not None and expense.currency != group.currency:
        converted = f" ({format_money(expense.group_amount, group.currency)} at {expense.rate})"
    return (
        f"Added <b>{escape(expense.description)}</b> to <b>{escape(group.name)}</b>: "
        f"{format_money(expense.amount, expense.currency)}{converted}, paid by you, split equally "
        f"among {people} {'person' if people == 1 else 'people'} "
        f"(your share {format_money(mine, expense.currency)})."
    )


# ── /settle ────────────────────────────────────────────────────────────────────────────


async def settle_plan(message: types.Message, system: ActorSystem) -> None:
    user = await require_user(message, system)
    if user is None:
        return
    groups = await my_groups(system, user.id)
    if not groups:
        await message.answer(NO_GROUPS)
        return
    plans: list[SettlePlanView] = await asyncio.gather(
        *(
            system.ref("splits").ask(GetSettlePlan(group_id=group.id, user_id=user.id))
            for group in groups
        )
    )
    people = {t.from_user_id for p in plans for t in p.transfers}
    people |= {t.to_user_id for p in plans for t in p.transfers}
    names = await names_of(system, people - {user.id})
    sections = [
        _plan_section(group, plan, user.id, names)
        for group, plan in zip(groups, plans, strict=True)
    ]
    await answer_parts(message, ["<b>Settling up</b>", *sections])


def _plan_section(
    group: GroupView, plan: SettlePlanView, user_id: str, names: dict[str, str]
) -> str:
    title = f"<b>{escape(group.name)}</b>"
    if not plan.transfers:
        return f"{title}: all settled up."
    lines = [_transfer_line(transfer, user_id, names) for transfer in plan.transfers]
    return title + "\n" + "\n".join(lines)


def _transfer_line(transfer: PlanTransfer, user_id: str, names: dict[str, str]) -> str:
    amount = format_money(transfer.amount, transfer.currency)
    if transfer.from_user_id == user_id:
        return f"• <b>You pay {escape(names[transfer.to_user_id])} {amount}</b>"
    if transfer.to_user_id == user_id:
        return f"• <b>{escape(names[transfer.from_user_id])} pays you {amount}</b>"
    payer, payee = names[transfer.from_user_id], names[transfer.to_user_id]
    return f"• {escape(payer)} pays {escape(payee)} {amount}"


def build_router() -> Router:
    """A fresh router of this feature (a router joins one dispatcher only)."""
    router = Router(name="groups")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(list_groups, Command("groups"))
    router.message.register(add_expense, Command("add"))
    router.message.register(settle_plan, Command("settle"))
    return router
