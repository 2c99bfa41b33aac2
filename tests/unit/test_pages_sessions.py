"""Browser sessions' parts: one token refresh shared by the requests that need it at once,
?next= targets that never leave the site, and the sign-in redirect that keeps the page."""

from __future__ import annotations

import asyncio

import pytest

from actors.auth.messages import TokenPair, TokenReused
from splitgo.pages.guards import local_target, sign_in_url
from splitgo.pages.refreshing import Refreshes

PAIR = TokenPair(access_token="a2", refresh_token="r2", expires_in=900)


async def test_concurrent_refreshes_of_one_token_ask_once() -> None:
    """Three requests with the same refresh token get the same new pair from one exchange;
    one arriving just after is answered from the kept result."""
    asked: list[str] = []
    release = asyncio.Event()

    async def fetch() -> TokenPair:
        asked.append("r1")
        await release.wait()
        return PAIR

    refreshes = Refreshes()
    waiting = [asyncio.create_task(refreshes.exchange("r1", fetch)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [PAIR] * 3
    assert await refreshes.exchange("r1", fetch) == PAIR
    assert asked == ["r1"]


async def test_a_failed_refresh_is_everyones_and_not_kept() -> None:
    """Every waiter gets the refusal; the next request asks again."""
    calls = 0

    async def refused() -> TokenPair:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise TokenReused("reused")

    refreshes = Refreshes()
    results = await asyncio.gather(
        *(refreshes.exchange("r1", refused) for _ in range(2)), return_exceptions=True
    )
    assert all(isinstance(result, TokenReused) for result in results)
    with pytest.raises(TokenReused):
        await refreshes.exchange("r1", refused)
    assert calls == 2


async def test_kept_answers_expire() -> None:
    """An answer is kept only a few seconds (then a refresh is asked again)."""
    now = [0.0]
    refreshes = Refreshes(keep=10.0, clock=lambda: now[0])
    calls = 0

    async def fetch() -> TokenPair:
        nonlocal calls
        calls += 1
        return PAIR

    await refreshes.exchange("r1", fetch)
    now[0] = 11.0
    await refreshes.exchange("r1", fetch)
    assert calls == 2


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("/groups/1?tab=2", "/groups/1?tab=2"),
        ("//evil.example/x", "/home"),
        ("https://evil.example/", "/home"),
        ("/\\evil.example", "/home"),
        ("javascript:alert(1)", "/home"),
        ("", "/home"),
        (None, "/home"),
        ("/ok\nSet-Cookie: x=1", "/home"),
    ],
)
def test_next_targets_stay_on_this_site(given: str | None, target: str) -> None:
    """Only a path of this site is followed after sign-in."""
    assert local_target(given) == target


def test_the_sign_in_redirect_keeps_the_wanted_page() -> None:
    """A wanted page travels as ?next=; home needs none."""
    assert sign_in_url("/home") == "/sign-in"
    assert sign_in_url("/groups?x=1") == "/sign-in?next=%2Fgroups%3Fx%3D1"
