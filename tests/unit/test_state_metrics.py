"""The node's hot state on /metrics: bytes kept, the budget, entries and evictions."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from actors.runtime.resident import ENTRY_OVERHEAD, MemoryBudget, Resident
from actors.runtime.stats import LiveShard
from splitgo.metrics import Metrics


@dataclass
class Source:
    """An actor system with no shards but a budget, as the collector reads it."""

    node_id: str = "n1"
    state_budget: MemoryBudget = field(default_factory=lambda: MemoryBudget(3 * 1000))

    def live_shards(self) -> list[LiveShard]:
        return []


def scraped(metrics: Metrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("splitgo_state_")
    }


def test_hot_state_and_its_budget_are_exported() -> None:
    """A scrape shows the bytes kept, the budget, the entries and the evictions it caused."""
    source = Source()
    holder: Resident[str, str] = Resident(
        "test", budget=source.state_budget, size=lambda _v: 1000 - ENTRY_OVERHEAD
    )
    for key in ("a", "b", "c", "d"):
        holder.put(key, key)
    metrics = Metrics()
    metrics.watch(source)
    samples = scraped(metrics)
    assert samples["splitgo_state_bytes"] == 3000
    assert samples["splitgo_state_budget_bytes"] == 3000
    assert samples["splitgo_state_entries"] == 3
    assert samples["splitgo_state_evicted_total"] == 1
