"""Prometheus metrics of one node: actors per shard, HTTP, database queries, the event loop,
the process, and which shards this node holds (with a lease-keeping transport). Each
`Metrics` owns its registry, so several can live in one process (tests)."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from actors.runtime.stats import LATENCY_BUCKETS, LiveShard

log = structlog.get_logger("splitgo.metrics")

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LOOP_LAG_INTERVAL = 0.5

# the label values a client can choose are bounded: other methods count as "other"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

# what may come before a statement's first keyword: blanks, comments, opening parentheses
_SQL_LEAD = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/|\()*", re.DOTALL)
_SQL_WORD = re.compile(r"[A-Za-z_]+")
_SQL_MAIN = re.compile(r"\b(select|insert|update|delete)\b", re.IGNORECASE)
_OPERATIONS = {
    "select": "select",
    "values": "select",
    "table": "select",
    "insert": "insert",
    "update": "update",
    "delete": "delete",
    "begin": "begin",
    "start": "begin",
    "commit": "commit",
    "end": "commit",
    "rollback": "rollback",
    "abort": "rollback",
    "savepoint": "savepoint",
    "release": "savepoint",
}


@functools.lru_cache(maxsize=1024)
def sql_operation(query: str) -> str:
    """The `operation` label of a statement: its leading keyword (the main statement's after
    a WITH), one of select/insert/update/delete/begin/commit/rollback/savepoint/other."""
    lead = _SQL_LEAD.match(query)
    word = _SQL_WORD.match(query, lead.end() if lead is not None else 0)
    if word is None:
        return "other"
    keyword = word.group().lower()
    if keyword == "with":
        return _main_statement(query[word.end() :])
    return _OPERATIONS.get(keyword, "other")


def _main_statement(rest: str) -> str:
    """After WITH: the first select/insert/update/delete outside the CTEs' parentheses."""
    depth = 0
    outside: list[str] = []
    for char in rest:
        if char == "(":
            depth += 1
            outside.append(" ")
        elif char == ")":
            depth = max(depth - 1, 0)
            outside.append(" ")
        elif depth == 0:
            outside.append(char)
    found = _SQL_MAIN.search("".join(outside))
    return found.group().lower() if found is not None else "other"


class ShardSource(Protocol):
    """What the actor collector reads: an ActorSystem, or a stand-in in tests."""

    @property
    def node_id(self) -> str: ...

    def live_shards(self) -> list[LiveShard]: ...


# the shards of an actor type this node holds the lease of now (the Redis transport's
# `owned_shards`); a transport without leases (in memory) has none to give
OwnedShards = Callable[[str], Mapping[int, float]]


class ActorCollector(Collector):
    """Reads every local shard's statistics at scrape time: nothing runs between scrapes."""

    def __init__(self) -> None:
        self.source: ShardSource | None = None
        self.owned: OwnedShards | None = None

    def collect(self) -> Iterator[Metric]:
        labels = ["actor", "shard", "node"]
        handled = CounterMetricFamily(
            "splitgo_actor_messages_handled", "Messages an actor shard finished.", labels=labels
        )
        failed = CounterMetricFamily(
            "splitgo_actor_messages_failed",
            "Handler crashes (each makes the shard restart; the message is retried).",
            labels=labels,
        )
        rejected = CounterMetricFamily(
            "splitgo_actor_messages_rejected",
            "Messages answered with a typed domain error.",
            labels=labels,
        )
        dead_lettered = CounterMetricFamily(
            "splitgo_actor_dead_lettered",
            "Messages moved to the dead letters after their last attempt.",
            labels=labels,
        )
        expired = CounterMetricFamily(
            "splitgo_actor_messages_expired",
            "Asks dropped unhandled because the asker had given up.",
            labels=labels,
        )
        restarts = CounterMetricFamily(
            "splitgo_actor_restarts", "Restarts of an actor shard by its supervisor.", labels=labels
        )
        mailbox = GaugeMetricFamily(
            "splitgo_actor_mailbox_depth",
            "Messages waiting for an actor shard, including retries in hand.",
            labels=labels,
        )
        up = GaugeMetricFamily(
            "splitgo_actor_up",
            "1 while an actor shard is running; 0 while it starts, restarts, stops or failed.",
            labels=labels,
        )
        latency = HistogramMetricFamily(
            "splitgo_actor_handling_seconds",
            "Time in a handler per message (sampled: one in four on the fast path).",
            labels=labels,
        )
        source = self.source
        shards = source.live_shards() if source is not None else []
        node = source.node_id if source is not None else ""
        if self.owned is not None:
            yield _owned_family(self.owned, shards, node, labels)
        for shard in shards:
            values = [shard.name, str(shard.shard), node]
            stats = shard.stats
            handled.add_metric(values, stats.handled)
            failed.add_metric(values, stats.failed)
            rejected.add_metric(values, stats.rejected)
            dead_lettered.add_metric(values, stats.dead_lettered)
            expired.add_metric(values, stats.expired)
            restarts.add_metric(values, stats.restarts)
            mailbox.add_metric(values, shard.mailbox)
            up.add_metric(values, 1.0 if shard.state == "running" else 0.0)
            counts, total = stats.histogram()
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            latency.add_metric(values, buckets, total)
        yield from (handled, failed, rejected, dead_lettered, expired, restarts, mailbox, up)
        yield latency
        yield from _state_families(source, node)


def _state_families(source: ShardSource | None, node: str) -> Iterator[Metric]:
    """The node's hot state (issue 20, actors/runtime/resident.py): what its shards keep
    in memory against the budget, and how much the budget made them drop."""
    budget = getattr(source, "state_budget", None)
    if budget is None:
        return
    kept = GaugeMetricFamily(
        "splitgo_state_bytes", "Estimated bytes of hot state the shards keep.", labels=["node"]
    )
    kept.add_metric([node], budget.used)
    limit = GaugeMetricFamily(
        "splitgo_state_budget_bytes", "The node's budget for hot state.", labels=["node"]
    )
    limit.add_metric([node], budget.limit)
    entries = GaugeMetricFamily(
        "splitgo_state_entries", "Keys whose state the shards keep in memory.", labels=["node"]
    )
    entries.add_metric([node], budget.entries())
    evicted = CounterMetricFamily(
        "splitgo_state_evicted",
        "Entries dropped to fit the budget (least recently used first).",
        labels=["node"],
    )
    evicted.add_metric([node], budget.evicted)
    yield from (kept, limit, entries, evicted)


def _owned_family(
    owned: OwnedShards, shards: list[LiveShard], node: str, labels: list[str]
) -> GaugeMetricFamily:
    """1 for each local shard whose lease this node holds now, 0 for the others."""
    family = GaugeMetricFamily(
        "splitgo_actor_shard_owned",
        "1 while this node holds the shard's lease (reads its mailbox), else 0.",
        labels=labels,
    )
    held = {name: set(owned(name)) for name in {shard.name for shard in shards}}
    for shard in shards:
        family.add_metric(
            [shard.name, str(shard.shard), node], 1.0 if shard.shard in held[shard.name] else 0.0
        )
    return family


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class Metrics:
    """The node's registry and its instruments; `watch` the actor system, `start` the
    event-loop sampler, hand `observe_query` to the database pool."""

    def __init__(self, *, loop_lag_interval: float = LOOP_LAG_INTERVAL) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Histogram(
            "splitgo_http_request_duration_seconds",
            "HTTP requests by method, route template and final status.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.db_queries = Histogram(
            "splitgo_db_query_duration_seconds",
            "Database statements by their leading keyword (failed ones included).",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "splitgo_event_loop_lag_seconds",
            f"How late the event loop woke a {loop_lag_interval} s sleep.",
            buckets=LOOP_LAG_BUCKETS,
            registry=self.registry,
        )
        self.takeovers = Counter(
            "splitgo_actor_shard_takeovers",
            "Shards this node took the lease of (its first ones at start included), by actor.",
            ["actor", "node"],
            registry=self.registry,
        )
        self.actors = ActorCollector()
        self.registry.register(self.actors)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._loop_lag_interval = loop_lag_interval
        self._sampler: asyncio.Task[None] | None = None
        # children by label values: labels() validates and locks on every call
        self._http_children: dict[tuple[str, str, int], Histogram] = {}
        self._db_children: dict[str, Histogram] = {}
        self._held: dict[str, frozenset[int]] = {}  # by actor: shards held at the last sample

    def watch(self, source: ShardSource, owned: OwnedShards | None = None) -> None:
        """Export this actor system's shards from the next scrape on; with `owned` (a
        transport that leases shards), also which it holds and how often it took one over."""
        self.actors.source = source
        self.actors.owned = owned

    def sample_ownership(self) -> None:
        """Count the shards held now that were not at the last sample as taken over. The
        sampler calls it every interval: a lease lasts seconds, so no move slips between."""
        source, owned = self.actors.source, self.actors.owned
        if source is None or owned is None:
            return
        for actor in {shard.name for shard in source.live_shards()}:
            now = frozenset(owned(actor))
            gained = len(now - self._held.get(actor, frozenset()))
            self._held[actor] = now
            if gained:
                self.takeovers.labels(actor=actor, node=source.node_id).inc(gained)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One finished request; `route` is its route template, never the raw path."""
        key = (method if method in HTTP_METHODS else "other", route, status)
        child = self._http_children.get(key)
        if child is None:
            child = self.http_requests.labels(method=key[0], route=route, status=str(status))
            self._http_children[key] = child
        child.observe(seconds)

    def observe_query(self, record: Any) -> None:
        """asyncpg's query logger: `record` is a LoggedQuery (query, elapsed, exception…)."""
        try:
            operation = sql_operation(record.query)
            child = self._db_children.get(operation)
            if child is None:
                child = self._db_children[operation] = self.db_queries.labels(operation)
            child.observe(record.elapsed)
        except Exception as error:  # a metric must never break a query's caller
            log.warning("db_metric_failed", error=f"{type(error).__name__}: {error}")

    def start(self) -> None:
        """Start sampling the event loop's lag and shard ownership (on the running loop);
        twice is once."""
        if self._sampler is None or self._sampler.done():
            self._sampler = asyncio.get_running_loop().create_task(
                self._sample_loop_lag(), name="metrics:loop-lag"
            )

    async def stop(self) -> None:
        """Stop the sampler and wait for it; safe to call twice or before start."""
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)

    async def _sample_loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._loop_lag_interval
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            self.loop_lag.observe(max(loop.time() - started - interval, 0.0))
            try:
                self.sample_ownership()
            except Exception as error:  # a metric must never end the sampler
                log.warning("ownership_metric_failed", error=f"{type(error).__name__}: {error}")
