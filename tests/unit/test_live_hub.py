"""The node's live hub: one push reaches every socket of many users in order, and a
reader that stops reading is dropped instead of holding the pusher up."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiohttp import web

from splitgo.web.live import SOCKET_BACKLOG, LiveHub


class FakeSocket:
    """Stands in for a WebSocketResponse: records frames, or never finishes a send."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.sent: list[str] = []
        self.closed = False
        self.close_code: int | None = None
        self._stuck = stuck

    async def send_str(self, text: str) -> None:
        if self._stuck:
            await asyncio.Event().wait()
        self.sent.append(text)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> None:
        self.closed, self.close_code = True, code


def socket(fake: FakeSocket) -> web.WebSocketResponse:
    return cast(web.WebSocketResponse, fake)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_push_reaches_every_socket_of_every_user_in_order() -> None:
    """Two sockets of one user and one of another each get both frames, in order; a user
    with no socket here is skipped."""
    hub = LiveHub()
    a1, a2, b = FakeSocket(), FakeSocket(), FakeSocket()
    hub.add("a", socket(a1))
    hub.add("a", socket(a2))
    hub.add("b", socket(b))
    assert await hub.deliver_many(["a", "b", "nobody"], b'{"n":1}') == 3
    assert await hub.deliver("a", b'{"n":2}') == 2
    await settle()
    assert a1.sent == a2.sent == ['{"n":1}', '{"n":2}']
    assert b.sent == ['{"n":1}']
    hub.remove("a", socket(a1))
    assert hub.connected == 2
    assert hub.is_connected("a")


async def test_a_reader_too_far_behind_is_closed_and_the_others_still_get_frames() -> None:
    """A socket whose sends never finish takes SOCKET_BACKLOG frames, then is closed
    (1013) while a reading socket gets every frame; no push waits on it."""
    hub = LiveHub()
    stuck, reading = FakeSocket(stuck=True), FakeSocket()
    hub.add("slow", socket(stuck))
    hub.add("fast", socket(reading))
    taken: list[Any] = []
    for n in range(SOCKET_BACKLOG + 3):
        taken.append(await hub.deliver_many(["slow", "fast"], str(n).encode()))
        await settle()
    await settle()
    assert stuck.closed
    assert stuck.close_code == 1013
    assert len(reading.sent) == SOCKET_BACKLOG + 3
    assert taken[-1] == 1


@pytest.mark.parametrize("users", [[], ["nobody"]])
async def test_a_push_to_nobody_here_is_nothing(users: list[str]) -> None:
    """No socket, no delivery, no error."""
    assert await LiveHub().deliver_many(users, b"{}") == 0
