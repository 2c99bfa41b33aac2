"""The Telegram channel: sends a notification as a chat message through a bot (aiogram).

With several bot tokens (SPLITGO_TELEGRAM_TOKENS) the channel takes them in turn, one per
`send`: Telegram limits how fast one bot may send, so more bots carry more notifications.
All bots share one HTTP session (one connection pool).

Each `send` is one try; retries are the actor's business. A failure raises
`TelegramDeliveryFailed`, classified for the actor:

- 429 Too Many Requests: retryable, with Telegram's own `retry_after`;
- 403 (the user blocked the bot) and 400 (chat not found, text refused): permanent, since
  the same message to the same chat cannot succeed later;
- 5xx, network errors, timeouts, answers that are not the Bot API's: retryable.

A bot token is a credential (it is in every request's URL). Answers and logs name a bot
by its place in the list, `bot=2`, never by its token.

`send_message` says which message Telegram made (`Sent.message_id`): a chat notice is
remembered by it, so that an answer to it can be posted to its conversation. Such a
notice goes through the first bot (`bot=0`), the one the node's bot edge listens to: an
answer to any other bot would reach no one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import structlog
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
)
from aiogram.types import LinkPreviewOptions
from aiogram.utils.token import TokenValidationError

from actors.notifications.channels import DeliveryFailed

log = structlog.get_logger("actors.notifications.telegram")


class TelegramDeliveryFailed(DeliveryFailed):
    """The message was not accepted; `answer` is Telegram's reply or the local error."""

    code = "telegram_delivery_failed"


@dataclass(frozen=True, slots=True)
class Sent:
    """A message Telegram accepted: its id in the chat, and the answer for the attempt."""

    message_id: int
    answer: str


class TelegramChannel:
    """Sends notifications through one or more bots, in turn (round robin across tokens)."""

    def __init__(
        self, tokens: Sequence[str], *, api_url: str | None = None, timeout: float = 10.0
    ) -> None:
        if not tokens:
            raise ValueError("SPLITGO_TELEGRAM_TOKENS: at least one bot token is needed")
        if timeout <= 0:
            raise ValueError("the Telegram timeout must be positive")
        self._tokens = tuple(tokens)
        api = PRODUCTION if api_url is None else TelegramAPIServer.from_base(api_url)
        self._session = AiohttpSession(api=api, timeout=timeout)
        self._bots: list[Bot] = []
        for number, token in enumerate(self._tokens, start=1):
            try:
                self._bots.append(Bot(token, session=self._session))
            except TokenValidationError:
                # aiogram's message is safe, but say which one without quoting it
                raise ValueError(
                    f"SPLITGO_TELEGRAM_TOKENS: token {number} is not a bot token "
                    "(expected <bot id>:<secret> from @BotFather)"
                ) from None
        self._timeout = timeout
        self._next = 0

    @property
    def senders(self) -> int:
        """How many bots take turns."""
        return len(self._bots)

    async def send(self, chat_id: int, text: str) -> str:
        """Send `text` (Telegram HTML) to `chat_id` with the next bot; Telegram's answer.

        Raises TelegramDeliveryFailed when Telegram did not accept it.
        """
        return (await self.send_message(chat_id, text)).answer

    async def send_message(self, chat_id: int, text: str, *, bot: int | None = None) -> Sent:
        """Send `text` (Telegram HTML) to `chat_id` with bot number `bot` (from 0), or the
        next in turn; the message Telegram made.

        Raises TelegramDeliveryFailed when Telegram did not accept it.
        """
        if bot is None:
            index = self._next
            # the turn passes on failure too: a bot held back by a 429 should not stall the rest
            self._next = (index + 1) % len(self._bots)
        elif 0 <= bot < len(self._bots):
            index = bot
        else:
            raise ValueError(f"there is no bot {bot}: {len(self._bots)} take turns")
        sender, label = self._bots[index], f"bot={index + 1}"
        try:
            # aiogram bounds each HTTP request; this bounds the whole call (pool waits too),
            # with a margin so that aiogram's own, more telling, timeout error comes first
            async with asyncio.timeout(self._timeout + 1):
                message = await sender.send_message(
                    chat_id=chat_id,
                    text=text,
                    parse_mode="HTML",
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
        except TelegramRetryAfter as error:
            raise TelegramDeliveryFailed(
                self._answer(f"telegram 429 {error.message} {label}"),
                retry_after=float(error.retry_after),
            ) from None
        except (TelegramForbiddenError, TelegramBadRequest) as error:
            # blocked by the user, chat not found, text refused: the same again fails again
            status = 403 if isinstance(error, TelegramForbiddenError) else 400
            raise TelegramDeliveryFailed(
                self._answer(f"telegram {status} {error.message} {label}"), permanent=True
            ) from None
        except TelegramMigrateToChat as error:
            # the group became a supergroup under a new id: this chat id is gone for good
            raise TelegramDeliveryFailed(
                self._answer(
                    f"telegram chat migrated to {error.migrate_to_chat_id}: {error.message} {label}"
                ),
                permanent=True,
            ) from None
        except TelegramAPIError as error:
            # 5xx and the rest (401 revoked token, 404 wrong API URL): not the recipient's
            # fault, so worth another try (perhaps through another bot)
            raise TelegramDeliveryFailed(
                self._answer(f"telegram {type(error).__name__}: {error.message} {label}")
            ) from None
        except (AiogramError, aiohttp.ClientError, TimeoutError, OSError) as error:
            # network errors (TelegramNetworkError), an answer that is not JSON, timeouts
            raise TelegramDeliveryFailed(
                self._answer(f"telegram {type(error).__name__}: {error} {label}")
            ) from None
        log.debug("telegram_sent", bot=index + 1, message_id=message.message_id)
        return Sent(
            message_id=message.message_id,
            answer=f"telegram ok message_id={message.message_id} {label}",
        )

    async def close(self) -> None:
        """Close the shared HTTP session (all bots at once)."""
        await self._session.close()

    def _answer(self, text: str) -> str:
        # an error's text may quote the request URL, and the token is in that URL
        for number, token in enumerate(self._tokens, start=1):
            text = text.replace(token, f"<token of bot {number}>")
        return text
