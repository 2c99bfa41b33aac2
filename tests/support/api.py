"""The end-to-end tests' HTTP client: requests to a running node as one user or another,
with the JSON answer read, and the few steps every suite takes (signing up, topping up at
the sandbox's checkout)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import pytest

PASSWORD = "correct horse battery staple 42"


T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    *,
    timeout: float = 15.0,
    interval: float = 0.1,
    what: str = "",
) -> T:
    """Poll `probe` until `check` accepts its answer; fail with the last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if loop.time() >= deadline:
            pytest.fail(f"not within {timeout}s: {what or 'the check'}; last: {value!r}")
        await asyncio.sleep(interval)


def fresh_key(method: str) -> dict[str, str]:
    """A new Idempotency-Key header for a POST; nothing for other methods."""
    return {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}


@dataclass
class User:
    """A signed-up user and their access token."""

    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Reply:
    """What the node answered: the status, the body (JSON decoded when it is JSON)."""

    status: int
    body: Any
    content_type: str
    headers: dict[str, str]

    def field(self) -> str:
        """The field the problem's first error names."""
        return str(self.body["errors"][0]["field"])


@dataclass
class Api:
    """Requests to the node at `url` as one user or another, with the JSON answer read."""

    url: str
    http: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        user: User | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = {**(user.headers if user else {}), **(headers or {})}
        async with self.http.request(
            method, f"{self.url}{path}", json=body, headers=sent
        ) as response:
            text = await response.text()
            parsed: Any = text
            if response.content_type.endswith("json") and text:
                parsed = await response.json(content_type=None)
            return Reply(response.status, parsed, response.content_type, dict(response.headers))

    async def ok(
        self, method: str, path: str, user: User, body: Any = None, status: int = 200
    ) -> Any:
        """The body of a request that must answer `status` (a POST with a fresh
        Idempotency-Key, as every well-behaved client sends)."""
        reply = await self.call(method, path, user, body, fresh_key(method))
        assert reply.status == status, f"{method} {path}: {reply.status} {reply.body}"
        return reply.body

    async def problem(
        self,
        method: str,
        path: str,
        user: User | None,
        body: Any = None,
        *,
        status: int,
        code: str,
        field: str | None = None,
        mentions: str | None = None,
    ) -> Reply:
        """A refused request: its status, its stable code, the field it names (and a word
        its detail mentions: an unknown or missing field is named in the message)."""
        reply = await self.call(method, path, user, body, fresh_key(method))
        assert reply.status == status, f"{method} {path}: {reply.status} {reply.body}"
        assert reply.body["code"] == code, reply.body
        if field is not None:
            assert reply.field() == field, reply.body
        if mentions is not None:
            assert mentions in reply.body["detail"], reply.body
        return reply

    async def register(self, email: str | None = None, name: str = "Friend") -> User:
        """A new account (a fresh address unless given), signed in."""
        email = email or f"u{secrets.token_hex(5)}@example.com"
        body = {"email": email, "password": PASSWORD, "name": name}
        created = await self.call("POST", "/api/v1/auth/register", body=body)
        assert created.status == 201, created.body
        login = await self.call(
            "POST", "/api/v1/auth/login", body={"email": email, "password": PASSWORD}
        )
        assert login.status == 200, login.body
        return User(created.body["id"], email, login.body["access_token"])

    async def top_up(self, user: User, amount: int, *, pay: bool = True) -> dict[str, Any]:
        """A EUR top-up paid (or declined) on the sandbox's checkout page, as a person
        would; the top-up as it was created."""
        created = await self.call(
            "POST",
            "/api/v1/wallet/top-ups",
            user,
            {"amount": amount, "currency": "EUR"},
            headers={"Idempotency-Key": secrets.token_hex(8)},
        )
        assert created.status == 201, created.body
        checkout = created.body["checkout_url"].split("/sandbox/checkout/")[1]
        action = "pay" if pay else "decline"
        async with self.http.post(
            f"{self.url}/sandbox/checkout/{checkout}/{action}", allow_redirects=False
        ) as response:
            assert response.status == 303, await response.text()
        return dict(created.body)
