"""Telegram, a feature part of the auth actor: linking a chat to an account by a deep link
(`/start <token>`), finding the account of a chat, and the phone number a chat proves."""

from __future__ import annotations

import structlog

from actors.auth import store
from actors.auth.context import AuthContext, user_view
from actors.auth.messages import (
    ConfirmPhone,
    ConsumeTelegramLink,
    CreateTelegramLink,
    FindUserByChat,
    InvalidToken,
    TelegramLink,
    TelegramLinked,
    TelegramNotConfigured,
    UserNotFound,
    UserView,
)
from actors.auth.rules import contact_phone
from actors.auth.store import UserRow
from actors.auth.tokens import new_token, token_digest
from actors.runtime import at, rfc3339

log = structlog.get_logger("actors.auth")

TELEGRAM_LINK_SECONDS = 10 * 60


class Telegram:
    """Links Telegram chats to accounts (publishing TelegramLinked) through the bot named
    `bot_username` ("" when there is none)."""

    def __init__(self, context: AuthContext, *, bot_username: str) -> None:
        self._context = context
        self._bot_username = bot_username.lstrip("@")

    async def create_link(self, message: CreateTelegramLink) -> TelegramLink:
        """A deep link that links the chat that opens it to this user, for ten minutes."""
        if not self._bot_username:
            raise TelegramNotConfigured("No Telegram bot is configured.")
        if await store.user_by_id(self._context.pool, message.user_id) is None:
            raise UserNotFound("No such user.")
        now = self._context.clock()
        token = new_token()
        expires_at = now + TELEGRAM_LINK_SECONDS
        await store.add_one_time_token(
            self._context.pool,
            token_hash=token_digest(token),
            purpose="telegram_link",
            user_id=message.user_id,
            now=now,
            expires_at=expires_at,
        )
        log.info("telegram_link_created", user_id=message.user_id)
        return TelegramLink(
            url=f"https://t.me/{self._bot_username}?start={token}",
            expires_at=rfc3339(at(expires_at), timespec="seconds"),
        )

    async def consume_link(self, message: ConsumeTelegramLink) -> UserView:
        """Spend the link and bind its user to the chat (taking the chat from any other)."""
        digest = token_digest(message.token)
        now = self._context.clock()
        linked: UserRow | None = None
        changed: list[str] = []
        profiles = self._context.profiles
        async with self._context.transaction() as tx:
            if tx.duplicate:
                linked = await store.user_by_chat(tx, message.chat_id)
                if linked is None:
                    raise InvalidToken("This Telegram link is invalid, used or expired.")
                return user_view(linked)
            spent = await store.consume_one_time_token(tx, digest, "telegram_link", now)
            if spent is not None and spent.user_id is not None:
                linked, taken = await store.bind_telegram(tx, spent.user_id, message.chat_id, now)
                if linked is not None:
                    await tx.publish(TelegramLinked(user_id=linked.id, chat_id=message.chat_id))
                # routed by the link: the shards that keep these users forget them
                changed = [*taken, spent.user_id]
                for user_id in changed:
                    await profiles.changing(tx, user_id)
        for user_id in changed:
            await profiles.wrote(user_id, linked)
        if linked is None:
            raise InvalidToken("This Telegram link is invalid, used or expired.")
        log.info("telegram_linked", user_id=linked.id)
        return user_view(linked)

    async def user_of_chat(self, message: FindUserByChat) -> UserView:
        """The account linked to this chat."""
        return user_view(await self._linked(message.chat_id))

    async def confirm_phone(self, message: ConfirmPhone) -> UserView:
        """The chat's own contact proves the phone number of the account linked to it."""
        user = await self._linked(message.chat_id)
        phone = contact_phone(message.phone)
        profiles = self._context.profiles
        # routed by the chat: the shard that keeps the user is told of the change
        async with profiles.writing(user.id), self._context.transaction(dedupe=False) as tx:
            await store.confirm_phone(tx, user.id, phone, self._context.clock())
            await profiles.changing(tx, user.id)
            confirmed = await store.user_by_id(tx, user.id)
        await profiles.wrote(user.id, confirmed)
        assert confirmed is not None
        return user_view(confirmed)

    async def _linked(self, chat_id: int) -> UserRow:
        user = await store.user_by_chat(self._context.pool, chat_id)
        if user is None:
            raise UserNotFound("No account is linked to this Telegram chat.")
        return user
