"""`/balance`: the wallet (available and held, per currency) and the net balance in each
of your groups."""

from __future__ import annotations

from html import escape

from aiogram import F, Router, types
from aiogram.enums import ChatType
from aiogram.filters import Command

from actors.payments.messages import GetWallet, WalletView, format_money
from actors.runtime import ActorSystem
from splitgo.bot.groups import describe_net, my_groups, nets_by_group
from splitgo.bot.help import answer_parts
from splitgo.bot.linking import require_user


async def balance(message: types.Message, system: ActorSystem) -> None:
    user = await require_user(message, system)
    if user is None:
        return
    wallet: WalletView = await system.ref("payments").ask(GetWallet(user_id=user.id))
    groups = await my_groups(system, user.id)
    nets = await nets_by_group(system, groups, user.id)
    group_lines = [
        f"• {escape(group.name)}: {describe_net(net)}"
        for group, net in zip(groups, nets, strict=True)
    ]
    await answer_parts(
        message,
        [
            _wallet_text(wallet),
            "<b>Groups</b>\n" + ("\n".join(group_lines) or "You are not in any group yet."),
        ],
    )


def _wallet_text(wallet: WalletView) -> str:
    lines = [
        f"• {format_money(b.available, b.currency)} available"
        + (f", {format_money(b.held, b.currency)} held" if b.held else "")
        for b in wallet.balances
        if b.available or b.held
    ]
    return "<b>Wallet</b>\n" + ("\n".join(lines) or "Your wallet is empty.")


def build_router() -> Router:
    """A fresh router of this feature (a router joins one dispatcher only)."""
    router = Router(name="money")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(balance, Command("balance"))
    return router
