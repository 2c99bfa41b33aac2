"""GET /metrics of a real node parses as Prometheus text and carries every promised series."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.node import RunningNode, start_node, stop_node

PASSWORD = "correct horse battery staple 42"
DOMAINS = ("auth", "payments", "splits", "rides", "notifications")
COUNTERS = (
    "splitgo_actor_messages_handled_total",
    "splitgo_actor_messages_failed_total",
    "splitgo_actor_restarts_total",
    "splitgo_actor_dead_lettered_total",
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(
        tmp_path_factory.mktemp("metrics-node"), env={"SPLITGO_OPS_TOKEN": "metrics-ops"}
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def samples(node: RunningNode) -> list[Sample]:
    """A few requests (health, a sign-up, a 404, a 401 on a templated route), then a scrape."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.url}/healthz") as response:
            assert response.status == 200
        body = {"email": "metrics@example.com", "password": PASSWORD, "name": "Meg"}
        async with http.post(f"{node.url}/api/v1/auth/register", json=body) as response:
            assert response.status == 201, await response.text()
        async with http.get(f"{node.url}/api/v1/no-such-thing") as response:
            assert response.status == 404
        async with http.get(f"{node.url}/api/v1/groups/g-123") as response:
            assert response.status == 401
        # sign-up tells notifications to mail the link, and the loop-lag sampler wakes every
        # 0.5 s: scrape until both have happened
        for _ in range(100):
            scraped = await scrape(http, node)
            lag = named(scraped, "splitgo_event_loop_lag_seconds_count")
            if sum(handled(scraped, "notifications")) >= 1 and lag and lag[0].value >= 1:
                break
            await asyncio.sleep(0.05)
    return scraped


async def scrape(http: aiohttp.ClientSession, node: RunningNode) -> list[Sample]:
    """GET /metrics without a token, parsed by prometheus_client's text parser."""
    async with http.get(f"{node.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def handled(samples: list[Sample], actor: str) -> list[float]:
    return [
        s.value
        for s in samples
        if s.name == "splitgo_actor_messages_handled_total" and s.labels["actor"] == actor
    ]


def named(samples: list[Sample], name: str) -> list[Sample]:
    return [s for s in samples if s.name == name]


async def test_actor_series_cover_every_domain_shard(samples: list[Sample]) -> None:
    """Each domain actor's shards carry counters, mailbox depth, up and a latency histogram."""
    names = (*COUNTERS, "splitgo_actor_mailbox_depth", "splitgo_actor_up")
    for name in names:
        actors = {s.labels["actor"] for s in named(samples, name)}
        assert set(DOMAINS) <= actors, name
    shards = {
        s.labels["shard"] for s in named(samples, "splitgo_actor_up") if s.labels["actor"] == "auth"
    }
    assert len(shards) > 1  # auth is sharded: one series per shard
    assert {s.value for s in named(samples, "splitgo_actor_up")} == {1.0}
    assert all(s.labels["node"] for s in named(samples, "splitgo_actor_mailbox_depth"))
    assert sum(handled(samples, "auth")) >= 1
    assert sum(handled(samples, "notifications")) >= 1
    assert {s.value for s in named(samples, "splitgo_actor_messages_failed_total")} == {0.0}
    latency = named(samples, "splitgo_actor_handling_seconds_bucket")
    assert {s.labels["actor"] for s in latency} >= set(DOMAINS)
    assert sum(s.value for s in named(samples, "splitgo_actor_handling_seconds_count")) >= 1


async def test_http_histogram_has_route_templates_and_statuses(samples: list[Sample]) -> None:
    """Requests count by route template (never the raw path) and final status, 404s included."""
    counts = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in named(samples, "splitgo_http_request_duration_seconds_count")
    }
    assert counts[("GET", "/healthz", "200")] >= 1
    assert counts[("POST", "/api/v1/auth/register", "201")] == 1
    assert counts[("GET", "unmatched", "404")] >= 1
    assert counts[("GET", "/api/v1/groups/{id}", "401")] == 1
    routes = {route for _, route, _ in counts}
    assert not any("g-123" in route or "no-such-thing" in route for route in routes)
    assert "/metrics" not in routes
    assert named(samples, "splitgo_http_request_duration_seconds_bucket")


async def test_db_histogram_counts_selects_and_inserts(samples: list[Sample]) -> None:
    """The sign-up's statements reach the database histogram by operation, not by SQL text."""
    counts = {
        s.labels["operation"]: s.value
        for s in named(samples, "splitgo_db_query_duration_seconds_count")
    }
    assert counts["select"] > 0
    assert counts["insert"] > 0
    assert set(counts) <= {
        "select", "insert", "update", "delete", "begin", "commit", "rollback", "savepoint", "other"
    }  # fmt: skip


async def test_event_loop_lag_and_process_memory(samples: list[Sample]) -> None:
    """The loop-lag histogram has samples and the process reports its resident memory."""
    assert named(samples, "splitgo_event_loop_lag_seconds_count")[0].value >= 1
    assert named(samples, "splitgo_event_loop_lag_seconds_bucket")
    assert named(samples, "process_resident_memory_bytes")[0].value > 10_000_000
