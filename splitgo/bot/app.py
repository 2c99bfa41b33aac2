"""The aiogram edge: the dispatcher with every feature router, and `TelegramBot`, which
runs it by long polling (the default) or behind a webhook on the HTTP edge.

Handlers get the actor system through aiogram's dependency injection
(`dispatcher["system"]`). Every update is handled under a trace id of its own, so the
actors' log lines for one chat message can be followed, and is logged once when done
(its command name only: a `/start` carries a link token).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import structlog
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import TelegramMethod
from aiogram.types import TelegramObject, Update
from aiohttp import web
from pydantic import ValidationError

from actors.runtime import ActorSystem, bind_trace_id
from splitgo.bot import chat, groups, invites, linking, money, rides
from splitgo.bot import help as bot_help
from splitgo.web.problems import problem_response

log = structlog.get_logger("splitgo.bot")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SETUP_TIMEOUT = 10  # seconds for each set-up call to the Bot API
STOP_TIMEOUT = 10.0  # seconds to wait for updates in flight when stopping

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UpdateTracker(BaseMiddleware):
    """Binds a fresh trace id per update, logs it once handled, and counts updates in
    flight so that stopping can wait for them."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        bind_trace_id(self._system.ids.trace_id())
        self.in_flight += 1
        self.idle.clear()
        started = time.perf_counter()
        try:
            return await handler(event, data)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()
            log.info(
                "bot_update",
                update_id=getattr(event, "update_id", None),
                command=command_name(event),
                ms=round((time.perf_counter() - started) * 1000, 2),
            )


def command_name(event: TelegramObject) -> str | None:
    """The `/command` of a message update, without its arguments (which may be secret)."""
    message = getattr(event, "message", None)
    text = getattr(message, "text", None)
    if not isinstance(text, str) or not text.startswith("/"):
        return None
    return text.split(maxsplit=1)[0][:64]


def build_dispatcher(system: ActorSystem) -> Dispatcher:
    """A dispatcher with every feature router; the catch-all help router comes last."""
    return _build(system)[0]


def _build(system: ActorSystem) -> tuple[Dispatcher, UpdateTracker]:
    dispatcher = Dispatcher(name="splitgo")
    dispatcher["system"] = system
    tracker = UpdateTracker(system)
    dispatcher.update.outer_middleware(tracker)
    dispatcher.include_routers(
        *(
            feature.build_router()
            for feature in (linking, money, groups, invites, rides, chat, bot_help)
        )
    )
    return dispatcher, tracker


class TelegramBot:
    """The aiogram edge: polling by default, webhook mode behind a flag."""

    def __init__(
        self,
        system: ActorSystem,
        *,
        token: str,
        api_url: str | None = None,
        mode: Literal["polling", "webhook"] = "polling",
        webhook_secret: str | None = None,
        public_url: str = "",
        polling_timeout: int = 10,
    ) -> None:
        if mode not in ("polling", "webhook"):
            raise ValueError(f"unknown Telegram mode {mode!r}: polling or webhook")
        if mode == "webhook" and not (webhook_secret and public_url):
            raise ValueError("webhook mode needs a webhook secret and the public URL")
        session = (
            AiohttpSession(api=TelegramAPIServer.from_base(api_url))
            if api_url
            else AiohttpSession()
        )
        self.bot = Bot(
            token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
        )
        self.dispatcher, self._tracker = _build(system)
        self.mode = mode
        self._secret = webhook_secret
        self._public_url = public_url.rstrip("/")
        self._polling_timeout = polling_timeout
        self._polling: asyncio.Task[None] | None = None
        self._feeding: set[asyncio.Task[None]] = set()
        self._stopped = False

    @property
    def webhook_url(self) -> str:
        return f"{self._public_url}{WEBHOOK_PATH}"

    async def start(self) -> None:
        """Announce the commands, then poll in the background or register the webhook."""
        await self._set_commands()
        if self.mode == "webhook":
            await self.bot.set_webhook(
                self.webhook_url,
                secret_token=self._secret,
                drop_pending_updates=False,
                request_timeout=SETUP_TIMEOUT,
            )
            log.info("telegram_webhook_set", url=self.webhook_url)
            return
        await self._drop_webhook()
        self._polling = asyncio.create_task(self._poll(), name="telegram-polling")
        log.info("telegram_polling_started")

    async def _set_commands(self) -> None:
        """Commands only fill Telegram's menu: a failure is logged, not fatal."""
        try:
            await self.bot.set_my_commands(list(bot_help.COMMANDS), request_timeout=SETUP_TIMEOUT)
        except TelegramAPIError as error:
            log.warning("telegram_set_commands_failed", error_type=type(error).__name__)

    async def _drop_webhook(self) -> None:
        """Telegram refuses getUpdates while a webhook is set (after a switch of mode)."""
        try:
            await self.bot.delete_webhook(drop_pending_updates=False, request_timeout=SETUP_TIMEOUT)
        except TelegramAPIError as error:
            log.warning("telegram_delete_webhook_failed", error_type=type(error).__name__)

    async def _poll(self) -> None:
        try:
            await self.dispatcher.start_polling(
                self.bot,
                handle_signals=False,
                close_bot_session=False,
                polling_timeout=self._polling_timeout,
            )
        except Exception as error:
            log.error("telegram_polling_failed", error_type=type(error).__name__, exc_info=error)

    async def stop(self) -> None:
        """Stop taking updates, let those in flight finish (up to a deadline), close the
        session. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        await self._stop_polling()
        await self._drain()
        await self.bot.session.close()
        log.info("telegram_bot_stopped")

    async def _stop_polling(self) -> None:
        task = self._polling
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(self.dispatcher.stop_polling(), STOP_TIMEOUT)
        except (RuntimeError, TimeoutError):  # not started yet, or stuck: cancel it
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _drain(self) -> None:
        if self._feeding:
            await asyncio.wait(self._feeding, timeout=STOP_TIMEOUT)
        try:
            await asyncio.wait_for(self._tracker.idle.wait(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("telegram_updates_unfinished", in_flight=self._tracker.in_flight)
        for task in self._feeding:
            task.cancel()

    def webhook_routes(self) -> web.RouteTableDef:
        """POST /telegram/webhook: Telegram's updates, when they carry our secret."""
        routes = web.RouteTableDef()

        @routes.post(WEBHOOK_PATH)
        async def telegram_webhook(request: web.Request) -> web.StreamResponse:
            if not self._authentic(request):
                log.warning("telegram_webhook_refused")
                return problem_response(401, "unauthenticated", "The webhook secret is wrong.")
            try:
                update = Update.model_validate(await request.json(), context={"bot": self.bot})
            except (ValueError, ValidationError):
                return problem_response(400, "bad_update", "The body is not a Telegram update.")
            if self._stopped:
                return problem_response(503, "unavailable", "The bot is stopping.")
            self._feed_in_background(update)
            return web.json_response({"ok": True})

        return routes

    def _authentic(self, request: web.Request) -> bool:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        expected = (self._secret or "").encode()
        return bool(expected) and hmac.compare_digest(given, expected)

    def _feed_in_background(self, update: Update) -> None:
        """Answer Telegram at once; the update is handled in a task of its own."""
        task = asyncio.get_running_loop().create_task(self._feed(update))
        self._feeding.add(task)
        task.add_done_callback(self._feeding.discard)

    async def _feed(self, update: Update) -> None:
        try:
            result: Any = await self.dispatcher.feed_webhook_update(self.bot, update)
            if isinstance(result, TelegramMethod):
                await self.dispatcher.silent_call_request(self.bot, result)
        except Exception as error:
            log.error("telegram_update_failed", error_type=type(error).__name__, exc_info=error)
