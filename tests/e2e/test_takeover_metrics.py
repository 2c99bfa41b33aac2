"""Shard ownership and takeovers in GET /metrics of real nodes on the Redis transport.

Two nodes host the probe actor (tests/support/probe.py); what their /metrics say about who
holds which shard is compared with the cluster view of /ops/actors, then one node is killed
and the survivor's takeover counter grows by the shards it took over.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.e2e.test_cluster import LEASE_TTL, cluster_on, eventually, owners
from tests.support.node import RunningNode
from tests.support.probe import SHARDS
from tests.support.redis import redis_url

pytestmark = pytest.mark.e2e


async def scrape(node: RunningNode) -> list[Sample]:
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def held(samples: list[Sample]) -> set[int]:
    """The probe shards this node's /metrics says it holds the lease of."""
    return {
        int(s.labels["shard"])
        for s in samples
        if s.name == "splitgo_actor_shard_owned" and s.labels["actor"] == "probe" and s.value == 1
    }


async def settled(node: RunningNode) -> dict[int, str | None]:
    """The probe's leases once every shard is held, by both nodes, the same a renewal apart."""
    before: dict[int, str | None] = {}

    async def still() -> bool:
        nonlocal before
        now = await owners(node)
        spread = None not in now.values() and len(set(now.values())) == 2
        same, before = now == before, now
        if not (spread and same):
            await asyncio.sleep(LEASE_TTL / 2)
        return spread and same

    await eventually(still, 60, "the probe's shards held by both nodes, and staying put")
    return before


def takeovers(samples: list[Sample]) -> float:
    found = [
        s.value
        for s in samples
        if s.name == "splitgo_actor_shard_takeovers_total" and s.labels["actor"] == "probe"
    ]
    return found[0] if found else 0.0


async def test_metrics_show_who_holds_each_shard_and_count_takeovers(tmp_path: Path) -> None:
    """Each node's owned gauges match the cluster's leases, every shard held once; after a
    SIGKILL the survivor holds them all and counted each one it took over."""
    async with cluster_on(tmp_path, redis_url()) as cluster:
        first, second = await cluster.start("n1", "n2")
        leases = await settled(first)
        one, two = await scrape(first), await scrape(second)
        assert held(one) == {shard for shard, node in leases.items() if node == "n1"}
        assert held(two) == {shard for shard, node in leases.items() if node == "n2"}
        assert held(one) | held(two) == set(range(SHARDS))
        assert held(one)
        assert held(two)
        assert takeovers(two) >= len(held(two))  # its first leases count too
        before, lost = takeovers(one), held(two)

        second.process.kill()

        async def survivor_holds_all() -> bool:
            samples = await scrape(first)
            return held(samples) == set(range(SHARDS)) and takeovers(samples) >= before + len(lost)

        await eventually(survivor_holds_all, 60, "n1 holds every shard and counted them")
        assert takeovers(await scrape(first)) == before + len(lost)
