"""What the browser tests' fixtures hand out (`conftest.py` says how to use them): the node
with its mailbox (`Site`), an event loop on a thread of its own for the async parts
(`BackgroundLoop`), and the watch over a test's pages (`Watch`)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
import time
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    WebError,
    WebSocket,
    expect,
)
from playwright.sync_api import Error as PlaywrightError

from tests.support.api import PASSWORD, Api, Reply, User
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database
from tests.support.smtp import SmtpServer, link_in

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = (
    "the browser tests drive Debian's chromium, and there is none at "
    f"{CHROMIUM}: install it with `apt-get install -y chromium` "
    "(`playwright install` cannot work here)"
)
JWT_KEYS = "browser:" + "b" * 48
SANDBOX_SECRET = "browser-sandbox-secret-0123456789abcdef"
OPS_TOKEN = "browser-ops-token-0123456789"
# schemes that never leave the page: inline documents, blobs, Chromium's own pages
LOCAL_SCHEMES = {"data", "blob", "about", "chrome-error"}
WEB_SCHEMES = {"ws": "http", "wss": "https"}


def chromium() -> str | None:
    """Debian's chromium: /usr/bin/chromium, else a `chromium` on PATH, else None."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def in_ci() -> bool:
    """CI=true (or any value but empty, 0, false, no): the browser tests must run there."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class BackgroundLoop:
    """An asyncio event loop on a thread of its own, for the async parts of a browser test.

    Playwright's sync API marks its own event loop as running in the test's thread for as
    long as the browser lives, so nothing else may run an event loop there: the node, the
    SMTP server and the aiohttp client live on this loop instead, and `run` waits for a
    coroutine from the test's thread.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="browser-tests-loop", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run `coroutine` on the loop and return its result (or raise its error)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


@dataclass
class Site:
    """A running node with a real SMTP server in front of its mail, for one test module.

    `url` is the node's address (every page's base URL); `api` its JSON API as the e2e
    tests use it (`tests.support.api.Api`, over aiohttp on the background loop: call its
    coroutines through `run`, or use the shortcuts `register` and `call`).
    """

    url: str
    node: RunningNode
    smtp: SmtpServer
    api: Api
    loop: BackgroundLoop
    ops_token: str = OPS_TOKEN
    stack: AsyncExitStack = field(default_factory=AsyncExitStack, repr=False)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Await `coroutine` (e.g. `site.api.top_up(user, 500)`) on the background loop."""
        return self.loop.run(coroutine, timeout)

    def register(self, name: str = "Friend", email: str | None = None) -> User:
        """A new account through the JSON API (a fresh address unless given), signed in."""
        return self.run(self.api.register(email, name))

    def call(
        self,
        method: str,
        path: str,
        user: User | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request to the JSON API as `user` (or nobody); the answer, JSON decoded."""
        return self.run(self.api.call(method, path, user, body, headers))

    def mails(self, to: str | None = None) -> list[EmailMessage]:
        """The mails the node has sent so far (to `to` only, when given), oldest first."""
        inbox = self.smtp.inbox
        return list(inbox.mails) if to is None else inbox.to(to)

    def wait_for_mail(self, to: str, *, count: int = 1, timeout: float = 15.0) -> EmailMessage:
        """The `count`-th mail to `to`, once it has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            mails = self.mails(to)
            if len(mails) >= count:
                return mails[count - 1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail #{count} to {to} within {timeout}s")
            time.sleep(0.05)

    def last_link(self, to: str, path: str = "/verify-email", *, timeout: float = 15.0) -> str:
        """The link to `path` (`…{path}?token=…`) in the newest mail to `to` that has one,
        waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            for mail in reversed(self.mails(to)):
                try:
                    return link_in(mail, path)
                except AssertionError:
                    continue
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} with a {path} link within {timeout}s")
            time.sleep(0.05)

    def output(self) -> str:
        """What the node has logged so far."""
        return self.node.output()


async def start_site(
    folder: Path,
    loop: BackgroundLoop,
    env: dict[str, str],
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
) -> Site:
    """SMTP server, a database of its own, the node on it, and a client session (on the
    background loop; `stop_site` ends them in reverse). `port` and `host` as for
    `start_node` (the site's URL is http://host:port)."""
    stack = AsyncExitStack()
    try:
        smtp = SmtpServer()
        await asyncio.to_thread(smtp.start)
        stack.callback(smtp.stop)
        database = await stack.enter_async_context(fresh_database(schema=True))
        settings = {
            "SPLITGO_DATABASE_URL": database,
            # a node with SPLITGO_DATABASE_URL refuses to start on a generated signing key
            "SPLITGO_JWT_KEYS": JWT_KEYS,
            "SPLITGO_SANDBOX_SECRET": SANDBOX_SECRET,
            "SPLITGO_OPS_TOKEN": OPS_TOKEN,
            "SPLITGO_SMTP_HOST": "127.0.0.1",
            "SPLITGO_SMTP_PORT": str(smtp.port),
            "SPLITGO_SMTP_TLS": "none",
            "SPLITGO_SHUTDOWN_TIMEOUT": "5",
            **env,
        }
        node = await start_node(folder, env=settings, port=port, host=host)
        stack.push_async_callback(stop_if_running, node)
        http = await stack.enter_async_context(aiohttp.ClientSession())
    except BaseException:
        await stack.aclose()
        raise
    return Site(node.url, node, smtp, Api(node.url, http), loop, stack=stack)


async def stop_if_running(node: RunningNode) -> None:
    if node.process.poll() is None:
        await stop_node(node)


async def stop_site(site: Site) -> None:
    await site.stack.aclose()


FAILED_RESOURCE = "Failed to load resource: the server responded with a status of"


@dataclass
class Watch:
    """What went wrong in a test's browser contexts, whatever the test looked at: console
    errors, uncaught page errors, and requests (WebSockets too) to any host but the node's.

    The `page` fixture's test fails at its end when `problems()` is not empty. A test that
    provokes a console error on purpose says so first: `watch.allow_console_error(regex)`.
    """

    origin: str  # scheme://host:port of the node
    contexts: list[BrowserContext] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    # pages answered with a 4xx status (a refused form, a 404 page): Chromium logs each as a
    # failed resource, but it is the page a person is shown, not something broken
    refused_documents: set[str] = field(default_factory=set)

    def attach(self, context: BrowserContext) -> None:
        self.contexts.append(context)
        context.on("console", self._console)
        context.on("response", self._response)
        context.on("weberror", self._web_error)
        context.on("request", self._request)
        context.on("page", self._page)

    def allow_console_error(self, pattern: str) -> None:
        """Console errors matching `pattern` (a regex searched in the text) are expected."""
        self.allowed.append(re.compile(pattern))

    def problems(self) -> list[str]:
        return [
            *(f"console error: {text}" for text in self.console_errors),
            *(f"uncaught error: {text}" for text in self.page_errors),
            *(f"request to another host: {url}" for url in self.foreign_requests),
        ]

    def settle(self) -> None:
        """A round trip to every open page, so that what it logged last has arrived."""
        for context in self.contexts:
            try:
                pages = list(context.pages)
            except PlaywrightError:
                continue
            for page in pages:
                if page.is_closed():
                    continue
                try:
                    page.evaluate("0")
                except PlaywrightError:
                    continue  # closed or navigating meanwhile: nothing more to hear

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        if any(pattern.search(text) for pattern in self.allowed):
            return
        where = message.location.get("url", "") if message.location else ""
        if text.startswith(FAILED_RESOURCE) and where in self.refused_documents:
            return
        self.console_errors.append(f"{text} ({where})" if where else text)

    def _response(self, response: Response) -> None:
        if response.request.resource_type == "document" and 400 <= response.status < 500:
            self.refused_documents.add(response.url)

    def _web_error(self, error: WebError) -> None:
        self.page_errors.append(str(error.error))

    def _request(self, request: Request) -> None:
        self._check(request.url)

    def _page(self, page: Page) -> None:
        page.on("websocket", self._websocket)

    def _websocket(self, socket: WebSocket) -> None:
        self._check(socket.url)

    def _check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES:
            return
        scheme = WEB_SCHEMES.get(parts.scheme, parts.scheme)
        if f"{scheme}://{parts.netloc}" != self.origin:
            self.foreign_requests.append(url)


def sign_in(page: Page, user: User) -> None:
    """`user` signs in through the sign-in form (with the tests' one password)."""
    page.goto("/sign-in")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/home$"))


# How long a page may take to open its live socket: a first try that fails is retried after
# 1 s, then 2 s (static/live_socket.js), and a loaded CI machine adds seconds to each.
LIVE_CONNECT_MS = 20_000
