"""Metrics without a node: the actor collector, the SQL classifier, HTTP timing, loop lag."""

from __future__ import annotations

import asyncio
import time
from collections import namedtuple
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from actors.runtime import (
    Actor,
    ActorSystem,
    DomainError,
    MemoryDeadLetterStore,
    Message,
    RestartPolicy,
    handles,
)
from actors.runtime.stats import LATENCY_BUCKETS, LiveShard, ShardStats
from splitgo.metrics import Metrics, sql_operation
from splitgo.web import Services, create_app
from splitgo.web.keys import SERVICES
from splitgo.web.metrics import http_metrics
from splitgo.web.metrics import routes as metrics_routes
from tests.unit.conftest import keys_on_distinct_shards, wait_until
from transport import Codec, MemoryTransport

Client = TestClient[web.Request, web.Application]
LoggedQuery = namedtuple("LoggedQuery", ["query", "args", "timeout", "elapsed", "exception"])


def scrape(metrics: Metrics) -> list[Sample]:
    """Every sample of the registry, through the text format and its parser."""
    text = generate_latest(metrics.registry).decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample named `name` whose labels include `labels`."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, f"{name} {labels}: {len(found)} samples"
    return found[0]


# ── the SQL classifier ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("query", "operation"),
    [
        ("SELECT 1", "select"),
        ("  select * from users where id = $1", "select"),
        ("\n-- who is owed\n/* a note */ SELECT amount FROM balances", "select"),
        ("(SELECT 1) UNION (SELECT 2)", "select"),
        ("INSERT INTO expenses (id) VALUES ($1)", "insert"),
        ("UPDATE wallets SET balance = balance + $1", "update"),
        ("DELETE FROM sessions WHERE expires_at < now()", "delete"),
        ("BEGIN ISOLATION LEVEL SERIALIZABLE;", "begin"),
        ("COMMIT;", "commit"),
        ("ROLLBACK;", "rollback"),
        ("SAVEPOINT asyncpg_1;", "savepoint"),
        ("WITH moved AS (UPDATE outbox SET sent = true RETURNING id) SELECT count(*)", "select"),
        (
            "WITH RECURSIVE a AS (SELECT 1), b AS(SELECT 2)INSERT INTO t SELECT * FROM a",
            "insert",
        ),
        ("CREATE TABLE IF NOT EXISTS t (id int)", "other"),
        ("", "other"),
        ("-- only a comment", "other"),
    ],
)
def test_sql_operation_is_the_leading_keyword(query: str, operation: str) -> None:
    """The label is the statement's kind, read past comments and CTEs, never its text."""
    assert sql_operation(query) == operation


def test_query_logger_times_statements_by_operation() -> None:
    """asyncpg's logged queries land in the histogram by operation; a bad record is dropped."""
    metrics = Metrics()
    metrics.observe_query(LoggedQuery("SELECT 1", (), None, 0.002, None))
    metrics.observe_query(LoggedQuery("select 2", (), None, 0.004, None))
    metrics.observe_query(LoggedQuery("INSERT INTO t VALUES (1)", (), None, 0.01, None))
    metrics.observe_query(object())  # not a LoggedQuery: ignored, never raised
    samples = scrape(metrics)
    count = "splitgo_db_query_duration_seconds_count"
    assert value(samples, count, operation="select") == 2
    assert value(samples, count, operation="insert") == 1
    assert value(samples, "splitgo_db_query_duration_seconds_sum", operation="select") == (
        pytest.approx(0.006)
    )
    assert not [s for s in samples if "SELECT" in str(s.labels)]


# ── the actor collector ────────────────────────────────────────────────────────────────


def test_shard_stats_histogram_counts_each_latency_in_its_bucket() -> None:
    """A latency counts in the first bucket whose bound it does not exceed; the sum is exact."""
    stats = ShardStats()
    for seconds in (0.0003, 0.001, 0.002, 20.0):
        stats.record(seconds)
    counts, total = stats.histogram()
    assert len(counts) == len(LATENCY_BUCKETS) + 1
    assert counts[LATENCY_BUCKETS.index(0.0005)] == 1
    assert counts[LATENCY_BUCKETS.index(0.001)] == 1  # bounds are inclusive (le)
    assert counts[LATENCY_BUCKETS.index(0.0025)] == 1
    assert counts[-1] == 1  # above every bound: only +Inf holds it
    assert sum(counts) == 4
    assert total == pytest.approx(20.0033)


@dataclass
class StubSystem:
    """Stands in for an ActorSystem: a node id and its shards' live statistics."""

    node_id: str = "stub-node"
    shards: list[LiveShard] = field(default_factory=list)

    def live_shards(self) -> list[LiveShard]:
        return self.shards


def test_actor_collector_exports_every_shard_from_the_stub() -> None:
    """Counters, mailbox depth, up and the cumulative latency histogram, per actor and shard."""
    busy = ShardStats()
    busy.handled, busy.failed, busy.restarts, busy.dead_lettered, busy.rejected = 7, 2, 1, 1, 3
    busy.record(0.0004)
    busy.record(0.003)
    stub = StubSystem(
        shards=[
            LiveShard("splits", 0, "running", 5, busy),
            LiveShard("splits", 1, "restarting", 0, ShardStats()),
        ]
    )
    metrics = Metrics()
    assert not [s for s in scrape(metrics) if s.name.startswith("splitgo_actor")]
    metrics.watch(stub)
    samples = scrape(metrics)
    first = {"actor": "splits", "shard": "0", "node": "stub-node"}
    second = {**first, "shard": "1"}
    assert value(samples, "splitgo_actor_messages_handled_total", **first) == 7
    assert value(samples, "splitgo_actor_messages_failed_total", **first) == 2
    assert value(samples, "splitgo_actor_messages_rejected_total", **first) == 3
    assert value(samples, "splitgo_actor_restarts_total", **first) == 1
    assert value(samples, "splitgo_actor_dead_lettered_total", **first) == 1
    assert value(samples, "splitgo_actor_mailbox_depth", **first) == 5
    assert value(samples, "splitgo_actor_up", **first) == 1
    assert value(samples, "splitgo_actor_up", **second) == 0
    bucket = "splitgo_actor_handling_seconds_bucket"
    assert value(samples, bucket, **first, le="0.0001") == 0
    assert value(samples, bucket, **first, le="0.0005") == 1
    assert value(samples, bucket, **first, le="0.005") == 2  # cumulative
    assert value(samples, bucket, **first, le="+Inf") == 2
    assert value(samples, "splitgo_actor_handling_seconds_count", **first) == 2
    assert value(samples, "splitgo_actor_handling_seconds_sum", **first) == pytest.approx(0.0034)
    assert value(samples, "splitgo_actor_handling_seconds_count", **second) == 0


class Work(Message, frozen=True):
    key: str


class Done(Message, frozen=True):
    key: str


class Refuse(Message, frozen=True):
    key: str


class Explode(Message, frozen=True):
    key: str


class Refused(DomainError):
    code = "unit_metrics_refused"
    category = "conflict"


class Worker(Actor):
    @handles(Work)
    async def work(self, message: Work) -> Done:
        return Done(key=message.key)

    @handles(Refuse)
    async def refuse(self, message: Refuse) -> None:
        raise Refused("no")

    @handles(Explode)
    async def explode(self, message: Explode) -> None:
        raise RuntimeError("boom")


async def test_actor_collector_reads_a_live_actor_system(system: ActorSystem) -> None:
    """Handled, rejected, failed, restarts and dead letters of a real system reach the scrape."""
    system.codec.register(Done)
    ref = system.spawn(
        Worker,
        "worker",
        shards=2,
        key=lambda message: message.key,
        policy=RestartPolicy(backoff_initial=0.001, backoff_max=0.002),
        max_attempts=2,
    )
    zero, one = keys_on_distinct_shards(2)
    for _ in range(8):
        await ref.tell(Work(key=zero))
    assert await ref.ask(Work(key=one)) == Done(key=one)
    with pytest.raises(Refused):
        await ref.ask(Refuse(key=one))
    await ref.tell(Explode(key=one))
    metrics = Metrics()
    metrics.watch(system)
    await wait_until(lambda: system.live_shards()[1].stats.dead_lettered == 1)
    await wait_until(lambda: system.live_shards()[0].stats.handled == 8)
    samples = scrape(metrics)
    node = system.node_id
    shard0 = {"actor": "worker", "shard": "0", "node": node}
    shard1 = {"actor": "worker", "shard": "1", "node": node}
    assert value(samples, "splitgo_actor_messages_handled_total", **shard0) == 8
    assert value(samples, "splitgo_actor_messages_rejected_total", **shard1) == 1
    assert value(samples, "splitgo_actor_messages_failed_total", **shard1) == 2
    assert value(samples, "splitgo_actor_restarts_total", **shard1) >= 1
    assert value(samples, "splitgo_actor_dead_lettered_total", **shard1) == 1
    assert value(samples, "splitgo_actor_mailbox_depth", **shard0) == 0
    # the fast path times one message in four: 8 tells on shard 0 give 2 observations
    assert value(samples, "splitgo_actor_handling_seconds_count", **shard0) == 2


# ── HTTP timing and GET /metrics ───────────────────────────────────────────────────────


async def item(request: web.Request) -> web.Response:
    if request.match_info["id"] == "missing":
        raise web.HTTPNotFound()
    if request.match_info["id"] == "moved":
        raise web.HTTPFound("/items/elsewhere")
    return web.json_response({"id": request.match_info["id"]})


@pytest.fixture
async def bare_client() -> AsyncIterator[tuple[Client, Metrics]]:
    """A small app with only the timing middleware, the /metrics route and one route."""
    metrics = Metrics()
    codec = Codec()
    system = ActorSystem(
        MemoryTransport(node_id="http", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
    )
    app = web.Application(middlewares=[http_metrics(metrics)])
    app[SERVICES] = Services(system=system, node_id="http", ops_token="t", metrics=metrics)
    app.router.add_get("/items/{id}", item)
    app.add_routes(metrics_routes)
    async with TestClient(TestServer(app)) as client:
        yield client, metrics


async def test_http_histogram_labels_by_route_template_and_status(
    bare_client: tuple[Client, Metrics],
) -> None:
    """Route templates, not paths; a handler's 404 keeps its route; unknown paths are one label."""
    client, metrics = bare_client
    for path in ("/items/a", "/items/b", "/items/missing", "/nowhere/1", "/nowhere/2"):
        async with client.get(path) as response:
            await response.read()
    async with client.get("/items/moved", allow_redirects=False) as response:
        assert response.status == 302
    async with client.request("PROPFIND", "/items/a") as response:
        assert response.status == 405
    samples = scrape(metrics)
    count = "splitgo_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/items/{id}", status="200") == 2
    assert value(samples, count, method="GET", route="/items/{id}", status="404") == 1
    assert value(samples, count, method="GET", route="/items/{id}", status="302") == 1
    assert value(samples, count, method="GET", route="unmatched", status="404") == 2
    assert value(samples, count, method="other", route="unmatched", status="405") == 1
    routes = {s.labels["route"] for s in samples if s.name == count}
    assert routes == {"/items/{id}", "unmatched"}  # never a raw path, never /metrics


@pytest.fixture
async def app_client(system: ActorSystem) -> AsyncIterator[tuple[Client, Metrics]]:
    """The real application factory with metrics on."""
    metrics = Metrics()
    metrics.watch(system)
    app = create_app(Services(system=system, node_id="unit", ops_token="tok", metrics=metrics))
    async with TestClient(TestServer(app)) as client:
        yield client, metrics


async def test_problems_are_counted_with_their_final_status(
    app_client: tuple[Client, Metrics],
) -> None:
    """Outermost in create_app, the timer sees the problem middleware's 401, not an exception."""
    client, metrics = app_client
    async with client.get("/ops/actors") as response:
        assert response.status == 401
    async with client.get("/healthz") as response:
        assert response.status == 200
    samples = scrape(metrics)
    count = "splitgo_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/ops/actors", status="401") == 1
    assert value(samples, count, method="GET", route="/healthz", status="200") == 1


async def test_get_metrics_serves_the_text_format_without_a_token(
    app_client: tuple[Client, Metrics], system: ActorSystem
) -> None:
    """GET /metrics needs no token, says the text format's type, and parses."""
    system.spawn(Worker, "worker")
    client, _ = app_client
    async with client.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "splitgo_http_request_duration_seconds",
        "splitgo_db_query_duration_seconds",
        "splitgo_event_loop_lag_seconds",
        "splitgo_actor_messages_handled",
        "splitgo_actor_handling_seconds",
        "process_resident_memory_bytes",
    } <= names


async def test_no_metrics_means_no_route(system: ActorSystem) -> None:
    """Without a Metrics in Services there is no /metrics (a 404) and no timing middleware."""
    app = create_app(Services(system=system, node_id="unit", ops_token="tok"))
    async with TestClient(TestServer(app)) as client, client.get("/metrics") as response:
        assert response.status == 404


# ── event-loop lag ─────────────────────────────────────────────────────────────────────


async def test_loop_lag_sampler_sees_a_blocked_loop_and_stops_cleanly() -> None:
    """A 50 ms block shows as lag; stop() ends the sampler, twice is fine, restart works."""
    metrics = Metrics(loop_lag_interval=0.01)
    await metrics.stop()  # before start: nothing to stop
    metrics.start()
    metrics.start()  # twice is once
    await asyncio.sleep(0.02)
    time.sleep(0.05)  # noqa: ASYNC251  # block the loop on purpose
    await asyncio.sleep(0.03)
    await metrics.stop()
    await metrics.stop()
    samples = scrape(metrics)
    assert value(samples, "splitgo_event_loop_lag_seconds_count") >= 2
    assert value(samples, "splitgo_event_loop_lag_seconds_sum") >= 0.03
    assert value(samples, "splitgo_event_loop_lag_seconds_bucket", le="+Inf") >= 2
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "metrics:loop-lag"]
    assert tasks == []


async def test_two_metrics_keep_separate_registries() -> None:
    """Each Metrics has its own registry: one's observations never show in another's."""
    first, second = Metrics(), Metrics()
    first.observe_http("GET", "/x", 200, 0.01)
    assert value(scrape(first), "splitgo_http_request_duration_seconds_count", route="/x") == 1
    assert not [
        s for s in scrape(second) if s.name == "splitgo_http_request_duration_seconds_count"
    ]


# ── shard ownership (a transport with leases) ──────────────────────────────────────────


@dataclass
class StubLeases:
    """Stands in for the Redis transport's `owned_shards`: what this node holds, by actor."""

    held: dict[str, set[int]] = field(default_factory=dict)

    def owned_shards(self, actor: str) -> dict[int, float]:
        return dict.fromkeys(self.held.get(actor, set()), 0.0)


def test_shard_ownership_and_takeovers_are_exported() -> None:
    """Held shards show as 1, the rest 0; each shard newly held at a sample is one takeover,
    a shard given back and taken again is another, and nothing held is none."""
    stub = StubSystem(
        shards=[LiveShard("rides", n, "running", 0, ShardStats()) for n in range(3)]
        + [LiveShard("splits", 0, "running", 0, ShardStats())]
    )
    leases = StubLeases({"rides": {0, 1}})
    metrics = Metrics()
    metrics.watch(stub, owned=leases.owned_shards)
    metrics.sample_ownership()
    metrics.sample_ownership()  # nothing moved: nothing more counted
    samples = scrape(metrics)
    rides = {"actor": "rides", "node": "stub-node"}
    assert value(samples, "splitgo_actor_shard_owned", **rides, shard="0") == 1
    assert value(samples, "splitgo_actor_shard_owned", **rides, shard="2") == 0
    assert value(samples, "splitgo_actor_shard_owned", actor="splits", shard="0") == 0
    assert value(samples, "splitgo_actor_shard_takeovers_total", **rides) == 2
    assert not [s for s in samples if s.labels.get("actor") == "splits" and "takeovers" in s.name]
    leases.held["rides"] = {1, 2}  # shard 0 went to another node, shard 2 came here
    metrics.sample_ownership()
    leases.held["rides"] = {0, 1, 2}  # and shard 0 came back
    metrics.sample_ownership()
    assert value(scrape(metrics), "splitgo_actor_shard_takeovers_total", **rides) == 4


def test_without_leases_no_ownership_is_exported() -> None:
    """A transport without leases (in memory) gives no ownership gauge and no takeovers."""
    metrics = Metrics()
    metrics.watch(StubSystem(shards=[LiveShard("rides", 0, "running", 0, ShardStats())]))
    metrics.sample_ownership()
    names = {sample.name for sample in scrape(metrics)}
    assert "splitgo_actor_shard_owned" not in names
    assert "splitgo_actor_shard_takeovers_total" not in names


async def test_the_sampler_counts_takeovers_on_its_own() -> None:
    """Started, the sampler notices a shard taken over without anyone calling it."""
    leases = StubLeases()
    metrics = Metrics(loop_lag_interval=0.01)
    metrics.watch(
        StubSystem(shards=[LiveShard("rides", 0, "running", 0, ShardStats())]),
        owned=leases.owned_shards,
    )
    metrics.start()
    try:
        leases.held["rides"] = {0}
        await wait_until(
            lambda: [s for s in scrape(metrics) if s.name == "splitgo_actor_shard_takeovers_total"]
        )
    finally:
        await metrics.stop()
    assert value(scrape(metrics), "splitgo_actor_shard_takeovers_total", actor="rides") == 1
