"""The token endpoint's rate limits (splitgo/web/oidc_limits.py): per address, every
request; per client_id, refused requests only; 429 slow_down with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from splitgo.web.hardening import Hardening
from splitgo.web.oidc_limits import ADDRESS_FACTOR, RefusalBuckets, TokenLimits
from tests.unit.test_oidc_edge import CODE_FORM, Client, FakeAuth, basic, edge_client, token


class Clock:
    """A monotonic clock the tests move."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    """The edge with SPLITGO_RATE_LIMIT 2: 20 token requests a minute per address, 2
    refusals a minute per client."""
    async with edge_client("oidc-limits", Hardening(rate_limit=2)) as made:
        yield made


def spent(client_id: str) -> dict[str, str]:
    return {**CODE_FORM, "code": "spent", "client_id": client_id}


async def test_refusals_of_a_client_slow_it_down_and_no_other(client: Client) -> None:
    """After two refused requests of a client its next request, even a good one, is 429
    slow_down with Retry-After, never reaching auth; another client is answered."""
    for _ in range(2):
        status, body, _ = await token(client, spent("sg_guessed"))
        assert (status, body["error"]) == (400, "invalid_grant")
    asked = len(FakeAuth.seen)
    status, body, headers = await token(client, {**CODE_FORM, "client_id": "sg_guessed"})
    assert (status, body["error"]) == (429, "slow_down")
    assert int(headers["Retry-After"]) >= 1
    assert headers["Cache-Control"] == "no-store"
    assert len(FakeAuth.seen) == asked
    status, _, _ = await token(client, CODE_FORM, **basic("sg_other", "s"))
    assert status == 200


async def test_good_requests_of_a_client_never_spend_its_refusals(client: Client) -> None:
    """A client's answered requests do not count against its refusal limit."""
    for _ in range(5):
        status, _, _ = await token(client, {**CODE_FORM, "client_id": "sg_busy"})
        assert status == 200


async def test_an_address_is_limited_however_many_clients_it_names(client: Client) -> None:
    """Past 10 x SPLITGO_RATE_LIMIT requests from one address, any request is 429
    slow_down, a malformed one too."""
    for index in range(2 * ADDRESS_FACTOR):
        status, _, _ = await token(client, {**CODE_FORM, "client_id": f"sg_{index}"})
        assert status == 200
    status, body, headers = await token(client, {**CODE_FORM, "client_id": "sg_new"})
    assert (status, body["error"]) == (429, "slow_down")
    assert int(headers["Retry-After"]) >= 1
    status, body, _ = await token(client, {})
    assert (status, body["error"]) == (429, "slow_down")


def test_refusal_buckets_refill_over_a_minute() -> None:
    """An empty bucket waits for the refill of one refusal, and is open again after it."""
    clock = Clock()
    buckets = RefusalBuckets(2, clock=clock)
    assert buckets.wait("c") == 0.0
    buckets.refused("c")
    buckets.refused("c")
    assert buckets.wait("c") == pytest.approx(30.0)
    clock.now += 30.0
    assert buckets.wait("c") == 0.0


def test_no_limit_when_the_rate_limit_is_off() -> None:
    """SPLITGO_RATE_LIMIT 0 turns the token endpoint's limits off too."""
    limits = TokenLimits(0)
    for _ in range(100):
        limits.refused("c")
        assert limits.address_wait("a") is None
    assert limits.client_wait("c") is None


def test_a_long_client_id_is_cut_for_its_key() -> None:
    """client_ids differing only past 200 characters share one bucket (memory stays bounded)."""
    limits = TokenLimits(1, clock=Clock())
    limits.refused("x" * 200 + "a")
    assert limits.client_wait("x" * 200 + "b") is not None
