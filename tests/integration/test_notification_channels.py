"""The Telegram and SMS channels against real HTTP servers started here: a fake Bot API
(tests/support/fake_telegram.py) and a small SMS webhook. No database is needed.

Each failure a provider can give is mapped to what the notifications actor needs to know:
retry (and how long to wait) or give up for good; and no bot token ever shows in an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command
from aiogram.types import Message
from aiohttp import web
from structlog.testing import capture_logs

from actors.notifications.channels import DeliveryFailed
from actors.notifications.channels.sms import LogSms, WebhookSms, mask_phone
from actors.notifications.channels.telegram import TelegramChannel
from tests.support.fake_telegram import FakeTelegram, NothingSent
from tests.support.node import free_port

TOKEN_A = "111111:AAAA-secret-token-a"
TOKEN_B = "222222:BBBB-secret-token-b"
CHAT = 4242


# ── Telegram ───────────────────────────────────────────────────────────────────────────


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def channel(telegram: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    created = TelegramChannel([TOKEN_A, TOKEN_B], api_url=telegram.base_url, timeout=5.0)
    try:
        yield created
    finally:
        await created.close()


async def test_telegram_takes_bots_in_turn(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    """Consecutive sends alternate between the two bot tokens, and answers name the bot by
    its place, never by its token."""
    assert channel.senders == 2
    answers = [await channel.send(CHAT, f"note {n}") for n in range(4)]

    assert [m["token"] for m in telegram.sent] == [TOKEN_A, TOKEN_B, TOKEN_A, TOKEN_B]
    assert telegram.sent_to(CHAT) == ["note 0", "note 1", "note 2", "note 3"]
    for answer, message, bot in zip(answers, telegram.sent, [1, 2, 1, 2], strict=True):
        assert answer == f"telegram ok message_id={message['message_id']} bot={bot}"
        assert "AAAA" not in answer
        assert "BBBB" not in answer


async def test_telegram_sends_html_without_link_previews(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    """A message goes out as HTML with link previews switched off, its markup untouched."""
    text = '<b>Dinner</b> settled: <a href="https://splitgo.test/g/1">open</a>'
    await channel.send(CHAT, text)

    sent = telegram.sent[0]
    assert sent["chat_id"] == CHAT
    assert sent["text"] == text
    assert sent["parse_mode"] == "HTML"
    assert sent["link_preview_options"] == {"is_disabled": True}
    assert sent["reply_markup"] is None


async def test_telegram_server_error_is_retryable(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    """A 500 from Telegram is a retryable failure, and the next try can succeed."""
    telegram.fail_next(TOKEN_A, 500)
    with pytest.raises(DeliveryFailed) as failure:
        await channel.send(CHAT, "hello")
    assert not failure.value.permanent
    assert failure.value.retry_after is None
    assert "Internal Server Error" in failure.value.answer
    assert "bot=1" in failure.value.answer

    telegram.fail_next(TOKEN_A, 502, description="Bad Gateway")
    assert (await channel.send(CHAT, "again")).startswith("telegram ok")  # bot 2: fine
    assert telegram.sent_to(CHAT) == ["again"]


async def test_telegram_too_many_requests_carries_retry_after(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    """A 429 is retryable and carries Telegram's retry_after as the wait."""
    telegram.fail_next(TOKEN_A, 429, retry_after=7, description="Too Many Requests: retry after 7")
    with pytest.raises(DeliveryFailed) as failure:
        await channel.send(CHAT, "hello")
    assert not failure.value.permanent
    assert failure.value.retry_after == 7


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (403, "Forbidden: bot was blocked by the user"),
        (400, "Bad Request: chat not found"),
    ],
)
async def test_telegram_refusals_are_permanent(
    telegram: FakeTelegram, channel: TelegramChannel, status: int, description: str
) -> None:
    """A blocked bot (403) or an unknown chat (400) fails for good, with Telegram's words."""
    telegram.fail_next(TOKEN_A, status, description=description)
    with pytest.raises(DeliveryFailed) as failure:
        await channel.send(CHAT, "hello")
    assert failure.value.permanent
    assert description in failure.value.answer
    assert str(status) in failure.value.answer


async def test_telegram_answer_never_quotes_a_token(
    telegram: FakeTelegram, channel: TelegramChannel
) -> None:
    """Even an error text that quotes the bot's token reaches the answer with it masked."""
    telegram.fail_next(TOKEN_A, 500, description=f"broken at /bot{TOKEN_A}/sendMessage")
    with pytest.raises(DeliveryFailed) as failure:
        await channel.send(CHAT, "hello")
    assert TOKEN_A not in failure.value.answer
    assert "<token of bot 1>" in failure.value.answer


async def test_telegram_unreachable_is_retryable() -> None:
    """With nothing listening at the API URL the failure is retryable and names no token."""
    channel = TelegramChannel([TOKEN_A], api_url=f"http://127.0.0.1:{free_port()}", timeout=2.0)
    try:
        with pytest.raises(DeliveryFailed) as failure:
            await channel.send(CHAT, "hello")
    finally:
        await channel.close()
    assert not failure.value.permanent
    assert TOKEN_A not in failure.value.answer


def test_telegram_refuses_a_malformed_token_without_quoting_it() -> None:
    """A token that is not `<id>:<secret>` is refused at construction, by its place only."""
    with pytest.raises(ValueError, match="token 2") as failure:
        TelegramChannel([TOKEN_A, "not-a-token-secret"])
    assert "not-a-token-secret" not in str(failure.value)
    with pytest.raises(ValueError, match="at least one"):
        TelegramChannel([])


async def test_aiogram_polling_against_the_fake(telegram: FakeTelegram) -> None:
    """An aiogram Dispatcher polling the fake receives pushed updates (commands, a command
    addressed to the bot by name, a shared contact) and its replies are recorded."""
    router = Router()

    @router.message(Command("ping"))
    async def ping(message: Message) -> None:
        await message.answer("pong")

    @router.message(F.contact)
    async def contact(message: Message) -> None:
        assert message.contact is not None
        await message.answer(f"phone {message.contact.phone_number} {message.contact.user_id}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    session = AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url))
    bot = Bot(TOKEN_A, session=session)
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, polling_timeout=5)
    )
    try:
        telegram.push_update(TOKEN_A, telegram.message_update(CHAT, "/ping"))
        first = await telegram.wait_sent(lambda m: m["chat_id"] == CHAT)
        assert first["text"] == "pong"
        assert first["token"] == TOKEN_A

        # Command checks a /cmd@name mention against getMe's username
        telegram.push_update(TOKEN_A, telegram.message_update(77, "/ping@splitgo_bot"))
        assert (await telegram.wait_sent(lambda m: m["chat_id"] == 77))["text"] == "pong"

        shared = telegram.message_update(78, "", contact={"phone_number": "+15550001234"})
        telegram.push_update(TOKEN_A, shared)
        reply = await telegram.wait_sent(lambda m: m["chat_id"] == 78)
        assert reply["text"] == "phone +15550001234 78"
    finally:
        if not polling.done():
            with contextlib.suppress(RuntimeError):  # not started yet: cancel below
                await asyncio.wait_for(dispatcher.stop_polling(), 5)
        if not polling.done():
            polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
    methods = [method for _, method in telegram.calls]
    assert "getMe" in methods
    assert "getUpdates" in methods
    assert telegram.sent_to(999) == []
    with pytest.raises(NothingSent):
        await telegram.wait_sent(lambda m: m["chat_id"] == 999, timeout=0.1)


async def test_fake_telegram_takes_json_and_refuses_unknown_methods(
    telegram: FakeTelegram,
) -> None:
    """The fake accepts a JSON body as the Bot API does and answers an unknown method 404."""
    async with aiohttp.ClientSession() as http:
        url = f"{telegram.base_url}/bot{TOKEN_B}"
        async with http.post(f"{url}/sendMessage", json={"chat_id": "55", "text": "hi"}) as r:
            body = await r.json()
        assert body["ok"]
        assert body["result"]["chat"]["id"] == 55
        async with http.post(f"{url}/noSuchMethod") as r:
            assert r.status == 404
            assert await r.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
    assert telegram.sent_to(55) == ["hi"]
    assert telegram.calls == [(TOKEN_B, "sendMessage"), (TOKEN_B, "noSuchMethod")]


# ── SMS ────────────────────────────────────────────────────────────────────────────────


@dataclass
class SmsWebhook:
    """A provider stand-in: records each request and answers what the test set."""

    status: int = 200
    body: str = '{"id": "sms-1", "status": "queued"}'
    headers: dict[str, str] = field(default_factory=dict)
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.json()))
        return web.Response(status=self.status, text=self.body, headers=self.headers)


@pytest.fixture
async def webhook() -> AsyncIterator[SmsWebhook]:
    hook = SmsWebhook()
    app = web.Application()
    app.router.add_post("/sms", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    hook.url = f"http://{host}:{port}/sms"
    try:
        yield hook
    finally:
        await runner.cleanup()


async def test_sms_webhook_posts_json_with_bearer_token(webhook: SmsWebhook) -> None:
    """A 2xx is success: the provider got {to, text} as JSON with the bearer token, and the
    answer holds its status and body."""
    sms = WebhookSms(webhook.url, token="sms-secret")
    try:
        answer = await sms.send("+15550001234", "Your ride is here")
    finally:
        await sms.close()
    headers, payload = webhook.received[0]
    assert payload == {"to": "+15550001234", "text": "Your ride is here"}
    assert headers["Authorization"] == "Bearer sms-secret"
    assert headers["Content-Type"].startswith("application/json")
    assert answer == 'webhook 200 {"id": "sms-1", "status": "queued"}'


async def test_sms_webhook_answer_keeps_200_chars_of_body(webhook: SmsWebhook) -> None:
    """A long provider body is cut to its first 200 characters in the answer."""
    webhook.status, webhook.body = 202, "x" * 1000
    sms = WebhookSms(webhook.url)
    try:
        answer = await sms.send("+15550001234", "hi")
    finally:
        await sms.close()
    assert answer == "webhook 202 " + "x" * 200
    assert "Authorization" not in webhook.received[0][0]


@pytest.mark.parametrize(("status", "retry_after"), [(429, "30"), (503, None)])
async def test_sms_webhook_busy_is_retryable(
    webhook: SmsWebhook, status: int, retry_after: str | None
) -> None:
    """429 and 5xx are retryable; a Retry-After header becomes the wait."""
    webhook.status, webhook.body = status, "slow down"
    if retry_after is not None:
        webhook.headers["Retry-After"] = retry_after
    sms = WebhookSms(webhook.url)
    try:
        with pytest.raises(DeliveryFailed) as failure:
            await sms.send("+15550001234", "hi")
    finally:
        await sms.close()
    assert not failure.value.permanent
    assert failure.value.retry_after == (float(retry_after) if retry_after else None)
    assert failure.value.answer == f"webhook {status} slow down"


async def test_sms_webhook_refusal_is_permanent(webhook: SmsWebhook) -> None:
    """A 400 (the provider refuses the number or text) fails for good."""
    webhook.status, webhook.body = 400, json.dumps({"error": "invalid number"})
    sms = WebhookSms(webhook.url)
    try:
        with pytest.raises(DeliveryFailed) as failure:
            await sms.send("12", "hi")
    finally:
        await sms.close()
    assert failure.value.permanent
    assert "invalid number" in failure.value.answer


async def test_sms_webhook_connection_refused_is_retryable() -> None:
    """With nothing listening the failure is retryable, and the answer shows neither the
    URL's query (it may hold a key) nor the token."""
    url = f"http://127.0.0.1:{free_port()}/sms?key=provider-key"
    sms = WebhookSms(url, token="sms-secret", timeout=2.0)
    try:
        with pytest.raises(DeliveryFailed) as failure:
            await sms.send("+15550001234", "hi")
    finally:
        await sms.close()
    assert not failure.value.permanent
    assert "provider-key" not in failure.value.answer
    assert "sms-secret" not in failure.value.answer


async def test_sms_webhook_leaves_a_given_session_open(webhook: SmsWebhook) -> None:
    """close() closes only a session the adapter made itself, not the caller's."""
    async with aiohttp.ClientSession() as http:
        sms = WebhookSms(webhook.url, http=http)
        await sms.send("+15550001234", "hi")
        await sms.close()
        assert not http.closed


async def test_log_sms_masks_the_number() -> None:
    """LogSms logs `sms_logged` with only the last three digits and the length, never the
    text, and keeps what it was given."""
    sms = LogSms()
    with capture_logs() as logs:
        assert await sms.send("+49 151 2345678", "code 123456") == "logged"
    assert sms.sent == [("+49 151 2345678", "code 123456")]
    [event] = [e for e in logs if e["event"] == "sms_logged"]
    assert event["to"] == "+*********678"
    assert event["length"] == len("code 123456")
    assert "2345678" not in str(logs)
    assert "123456" not in str(logs)
    assert mask_phone("12") == "12"
