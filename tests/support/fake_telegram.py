"""A fake Telegram Bot API the tests run themselves: a real HTTP server on 127.0.0.1.

aiogram talks to it as to api.telegram.org once its session points here
(`AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))`): every call is
`POST {base}/bot{token}/{method}`. aiogram sends the parameters as a form (urlencoded, or
multipart when a file goes along) with every non-string value JSON-encoded; other clients
send a JSON body or a query string. All three are accepted and decoded to the same dict.

It records what bots send (`sent`, `calls`), feeds them updates (`push_update`,
`message_update` → `getUpdates`, long-polled like the real one but for at most a second so
a test's shutdown never waits long), and fails on request (`fail_next`: 500, 429 with
retry_after, 403 …) for the unhappy paths.

    async with FakeTelegram() as tg:
        bot = Bot("111:AAA", session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
        tg.push_update("111:AAA", tg.message_update(42, "/ping"))
        reply = await tg.wait_sent(lambda m: m["chat_id"] == 42)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# How long one getUpdates may wait for an update, whatever `timeout` the bot asked for: long
# enough that a polling bot is not busy-looping, short enough that stopping a test is quick.
MAX_LONG_POLL_SECONDS = 1.0

# Parameters that are strings in the Bot API. aiogram JSON-encodes every non-string form
# value, so the others are decoded as JSON; these are kept as sent, or a text of "123" or
# "true" would come back as a number or a boolean.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "url",
        "secret_token",
        "action",
        "language_code",
        "business_connection_id",
        "message_effect_id",
        "description",
        "short_description",
        "ip_address",
    }
)

Sent = dict[str, Any]


class NothingSent(AssertionError, TimeoutError):
    """`wait_sent` saw no matching message in time.

    Both an AssertionError (pytest reports it as a failed expectation) and a TimeoutError
    (what a caller waiting with a timeout would naturally catch).
    """


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    description: str
    retry_after: int | None


class FakeTelegram:
    """A Bot API server for tests: records what bots send, feeds them updates."""

    def __init__(self, *, bot_username: str = "splitgo_bot") -> None:
        self.bot_username = bot_username
        self.base_url = ""
        # every sendMessage that succeeded, parameters decoded, plus "token" and "message_id"
        self.sent: list[Sent] = []
        # (token, method) of every call, in order, including failed and unknown ones
        self.calls: list[tuple[str, str]] = []
        # every editMessageText, parameters decoded, plus "token"
        self.edited: list[Sent] = []
        self._updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._last_update_id: dict[str, int] = defaultdict(int)
        self._arrived: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._waiters: list[tuple[Callable[[Sent], bool], asyncio.Future[Sent]]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._closing = False

    # ── lifecycle ──────────────────────────────────────────────────────────────────────

    async def start(self) -> str:
        """Serve on 127.0.0.1 and a free port; the base URL, e.g. http://127.0.0.1:54321."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._closing = False
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        # wake every pending long poll, so the server's shutdown does not wait for them
        for event in self._arrived.values():
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # ── what the test does ─────────────────────────────────────────────────────────────

    def push_update(self, token: str, update: dict[str, Any]) -> None:
        """Queue an update for that token's getUpdates.

        The update is copied. It gets an update_id if it has none, or if its id is not above
        the last one queued for the token: ids only rise per bot, as Telegram's do, and a
        bot confirms with `offset` everything below the id it saw last, so an update with a
        lower id would never be delivered.
        """
        update = dict(update)
        update_id = update.get("update_id")
        if not isinstance(update_id, int) or update_id <= self._last_update_id[token]:
            update_id = next(self._update_ids)
            while update_id <= self._last_update_id[token]:
                update_id = next(self._update_ids)
            update["update_id"] = update_id
        self._last_update_id[token] = update_id
        self._updates[token].append(update)
        self._arrived[token].set()

    def message_update(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Tess",
        contact: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An Update with a Message from a user in a private chat.

        A leading /command gets its `bot_command` entity, as Telegram adds one. With
        `contact` (at least `phone_number`) the message carries that Contact instead of
        text; its first_name and user_id default to the sender's.
        """
        sender_id = user_id if user_id is not None else chat_id
        user = {"id": sender_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": first_name},
            "from": user,
        }
        if contact is not None:
            message["contact"] = {"first_name": first_name, "user_id": sender_id, **contact}
        else:
            message["text"] = text
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_length(command)}
                ]
        return {"update_id": next(self._update_ids), "message": message}

    def fail_next(
        self,
        token: str,
        status: int,
        *,
        retry_after: int | None = None,
        times: int = 1,
        description: str = "Internal Server Error",
    ) -> None:
        """The next `times` sendMessage calls for that token answer this error."""
        failure = _Failure(status=status, description=description, retry_after=retry_after)
        self._failures[token].extend([failure] * times)

    async def wait_sent(self, predicate: Callable[[Sent], bool], timeout: float = 5.0) -> Sent:
        """The first sent message matching, already sent or sent within `timeout` seconds."""
        for message in self.sent:
            if predicate(message):
                return message
        future: asyncio.Future[Sent] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            texts = [(m["chat_id"], m.get("text")) for m in self.sent]
            raise NothingSent(
                f"no matching message sent within {timeout}s; sent so far: {texts}"
            ) from None
        finally:
            self._waiters.remove(waiter)

    def sent_to(self, chat_id: int) -> list[str]:
        """The texts sent to that chat, in order."""
        return [str(m.get("text")) for m in self.sent if m.get("chat_id") == chat_id]

    # ── the Bot API ────────────────────────────────────────────────────────────────────

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        self.calls.append((token, method))
        try:
            params = await _params(request)
        except ValueError as error:
            return _error(400, f"Bad Request: {error}")
        # Bot API method names are case-insensitive
        name = method.lower()
        if name == "getme":
            return _ok(self._bot_user(token))
        if name == "getupdates":
            return await self._get_updates(token, params)
        if name == "sendmessage":
            return self._send_message(token, params)
        if name == "editmessagetext":
            return self._edit_message_text(token, params)
        if name == "getwebhookinfo":
            pending = len(self._updates[token])
            return _ok(
                {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
            )
        if name in _TRUE_METHODS:
            return _ok(True)
        return _error(404, "Not Found: method not found")

    async def _get_updates(self, token: str, params: dict[str, Any]) -> web.Response:
        offset = params.get("offset")
        queue = self._updates[token]
        if isinstance(offset, int) and offset > 0:
            # an offset confirms every update below it: Telegram forgets them
            queue[:] = [u for u in queue if u["update_id"] >= offset]
        wait = min(_number(params.get("timeout"), 0.0), MAX_LONG_POLL_SECONDS)
        if not queue and wait > 0 and not self._closing:
            arrived = self._arrived[token]
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), wait)
        limit = int(_number(params.get("limit"), 100)) or 100
        return _ok(queue[: max(1, min(limit, 100))])

    def _send_message(self, token: str, params: dict[str, Any]) -> web.Response:
        failures = self._failures[token]
        if failures:
            failure = failures.popleft()
            return _error(failure.status, failure.description, retry_after=failure.retry_after)
        chat_id = _chat_id(params.get("chat_id"))
        if chat_id is None:
            return _error(400, "Bad Request: chat_id is empty")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        message_id = next(self._message_ids)
        record: Sent = {"parse_mode": None, "reply_markup": None, **params}
        record.update(token=token, chat_id=chat_id, text=text, message_id=message_id)
        self.sent.append(record)
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(record):
                future.set_result(record)
        return _ok(self._message(token, chat_id, message_id, text, params.get("reply_markup")))

    def _edit_message_text(self, token: str, params: dict[str, Any]) -> web.Response:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        self.edited.append({**params, "token": token})
        chat_id = _chat_id(params.get("chat_id"))
        message_id = params.get("message_id")
        if chat_id is None or not isinstance(message_id, int):
            # an inline message: Telegram answers just `true`
            return _ok(True)
        return _ok(self._message(token, chat_id, message_id, text, params.get("reply_markup")))

    def _bot_user(self, token: str) -> dict[str, Any]:
        return {
            "id": _bot_id(token),
            "is_bot": True,
            "first_name": "splitgo",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _message(
        self, token: str, chat_id: int | str, message_id: int, text: str, markup: Any
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": self._bot_user(token),
            "text": text,
        }
        # a Message carries only inline keyboards; echoing a reply keyboard would not parse
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message


# Methods this fake accepts and answers with a bare `true`.
_TRUE_METHODS = frozenset(
    {
        "setwebhook",
        "deletewebhook",
        "setmycommands",
        "deletemycommands",
        "answercallbackquery",
        "sendchataction",
        "close",
        "logout",
    }
)


async def _params(request: web.Request) -> dict[str, Any]:
    """The call's parameters from the query string and the body (form or JSON)."""
    params: dict[str, Any] = {k: _decode(k, v) for k, v in request.query.items()}
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError as error:
            raise ValueError(f"can't parse JSON body: {error}") from None
        if not isinstance(body, dict):
            raise ValueError("the JSON body is not an object")
        params.update(body)
        return params
    form = await request.post()  # urlencoded or multipart
    for key, value in form.items():
        if isinstance(value, str):
            params[key] = _decode(key, value)
        elif isinstance(value, web.FileField):  # an upload: what it was, not its bytes
            params[key] = {"filename": value.filename, "content_type": value.content_type}
        else:
            params[key] = bytes(value)
    return params


def _decode(key: str, value: str) -> Any:
    if key in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string such as "@channel"


def _chat_id(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        # a JSON client may send the id as a string; Telegram accepts both
        return int(value) if value.lstrip("-").isdigit() else value
    return None


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, str):  # "@channelname"
        return {"id": -1000000000000 - _crc(chat_id), "type": "channel", "username": chat_id[1:]}
    if chat_id > 0:
        return {"id": chat_id, "type": "private"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": "a group"}


def _bot_id(token: str) -> int:
    # a real token starts with the bot's id: "123456:AAE…"
    head = token.partition(":")[0]
    return int(head) if head.isdigit() else _crc(token)


def _crc(value: str) -> int:
    return zlib.crc32(value.encode()) or 1


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _utf16_length(text: str) -> int:
    # entity offsets and lengths count UTF-16 code units
    return len(text.encode("utf-16-le")) // 2


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, *, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)
