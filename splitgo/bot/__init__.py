"""The Telegram edge (aiogram): one Router per feature — linking, money, groups, rides,
help — over the actors' messages. `TelegramBot` runs it by polling or behind a webhook."""

from __future__ import annotations

from splitgo.bot.app import TelegramBot, build_dispatcher

__all__ = ["TelegramBot", "build_dispatcher"]
