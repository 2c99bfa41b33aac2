"""The soak's client: every request it sends, retried with its Idempotency-Key on another
live node until it has a final answer, with the time the person waited for it.

A request goes to a random live node (the nodes a load balancer's health check would list:
a killed node leaves the list at once and returns once it is ready again). No answer, a
5xx, a 202 or 409 `idempotency_in_flight` is sent again, with the same key and body, after
a short pause. The latency recorded is the person's: from the first send to the final
answer, retries included.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.soak.checks import is_final

RETRY_PAUSE = 0.25
GIVE_UP = 90.0  # s: a request with no final answer by then stays unsettled


@dataclass
class Person:
    """A signed-up user and their access token."""

    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Request:
    """One logical request of the load and every answer it got."""

    kind: str
    method: str
    path: str
    body: dict[str, Any] | None
    key: str | None
    person: Person | None
    started: float = 0.0  # s since the load began
    seconds: float = 0.0  # until the final answer
    answers: list[tuple[int, str | None]] = field(default_factory=list)
    reply: Any = None  # the body of the last 2xx

    @property
    def status(self) -> int:
        return self.answers[-1][0] if self.answers else 0

    @property
    def final(self) -> bool:
        return bool(self.answers) and is_final(*self.answers[-1])

    @property
    def succeeded(self) -> bool:
        return self.final and 200 <= self.status < 400  # the sandbox's checkout answers 303

    @property
    def id(self) -> str | None:
        return self.reply.get("id") if isinstance(self.reply, dict) else None


class Client:
    """Sends requests to the live nodes and keeps every one it sent."""

    def __init__(self, http: aiohttp.ClientSession, live: Callable[[], list[str]]) -> None:
        self.http = http
        self.live = live
        self.began = time.monotonic()
        self.sent: list[Request] = []
        self.stop = asyncio.Event()
        self._serial = 0

    def now(self) -> float:
        return time.monotonic() - self.began

    def key(self, kind: str) -> str:
        self._serial += 1
        return f"soak-{kind}-{self._serial}"

    async def send(self, request: Request, *, record: bool = True) -> Request:
        """Send until final (or GIVE_UP s); the request, with its answers."""
        if record:
            self.sent.append(request)
        request.started = self.now()
        while True:
            await self._once(request)
            waited = self.now() - request.started
            if request.final or waited > GIVE_UP:
                request.seconds = waited
                return request
            if request.status != 0:  # a refused connection is tried elsewhere at once
                await asyncio.sleep(RETRY_PAUSE)

    async def _once(self, request: Request) -> None:
        urls = self.live()
        if not urls:
            request.answers.append((0, "no_live_node"))
            await asyncio.sleep(RETRY_PAUSE)
            return
        headers = dict(request.person.headers) if request.person else {}
        if request.key is not None:
            headers["Idempotency-Key"] = request.key
        url = random.choice(urls) + request.path
        try:
            async with self.http.request(
                request.method, url, json=request.body, headers=headers, allow_redirects=False
            ) as response:
                body: Any = None
                with contextlib.suppress(Exception):
                    body = await response.json(content_type=None)
                code = (
                    body.get("code") if isinstance(body, dict) and response.status >= 400 else None
                )
                if 200 <= response.status < 300:
                    request.reply = body
                request.answers.append((response.status, code))
        except (aiohttp.ClientError, TimeoutError) as error:
            request.answers.append((0, type(error).__name__))
            await asyncio.sleep(0.05)  # the node is gone: let the live list catch up

    async def post(
        self,
        kind: str,
        person: Person | None,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        key_in: str | None = None,
        record: bool = True,
    ) -> Request:
        """A POST with a fresh key of its own, also written into `body[key_in]`."""
        key = self.key(kind)
        sent_body = {**(body or {}), key_in: key} if key_in else body
        return await self.send(Request(kind, "POST", path, sent_body, key, person), record=record)

    async def get(self, kind: str, person: Person, path: str) -> Request:
        return await self.send(Request(kind, "GET", path, None, None, person))
