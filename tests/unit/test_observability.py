"""The observability files under deploy/, checked against what a node really exports.

Every PromQL expression of the Grafana dashboard and of the Prometheus rules may name only
metrics a node's /metrics serves (the names are read from a `Metrics` registry fed one of
everything, with the _total, _bucket, _sum and _count sample names), or rules recorded in
the same file. With promtool on PATH (Debian's `prometheus` package; .ci/run installs it,
so under CI these never skip): `promtool check config`, `check rules`, `test rules`
(rules_test.yml), every dashboard expression parsed as a rule, and `check metrics` on a
node's exposition. No Prometheus, Grafana or Jaeger runs here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from actors.runtime.stats import LiveShard, ShardStats
from splitgo.metrics import Metrics
from splitgo.web.metrics import METRICS_PATH

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "rules_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "splitgo.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
# series Prometheus makes itself for every target
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# what the dashboard must show (issue 20): at least one query names each of these
SHOWN = (
    "python_gc_collections_total",
    "python_gc_objects_collected_total",
    "process_resident_memory_bytes",
    "splitgo_http_request_duration_seconds_bucket",
    "splitgo_http_request_duration_seconds_count",
    "splitgo_db_query_duration_seconds_bucket",
    "splitgo_actor_mailbox_depth",
    "splitgo_actor_messages_handled_total",
    "splitgo_actor_restarts_total",
    "splitgo_actor_dead_lettered_total",
    "splitgo_actor_shard_takeovers_total",
)


def in_ci() -> bool:
    """CI=true (or any value but empty, 0, false, no): the promtool checks must run there."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def load_yaml(path: Path) -> Any:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text())


# ── what a node exports ────────────────────────────────────────────────────────────────


@dataclass
class OneShard:
    """A stand-in actor system with one shard, whose lease this node holds."""

    node_id: str = "node1"
    shards: list[LiveShard] = field(
        default_factory=lambda: [LiveShard("splits", 0, "running", 2, ShardStats())]
    )

    def live_shards(self) -> list[LiveShard]:
        return self.shards

    def owned_shards(self, actor: str) -> dict[int, float]:
        return {0: 0.0}


@dataclass(frozen=True)
class Logged:
    """What asyncpg hands its query logger."""

    query: str
    elapsed: float


@pytest.fixture(scope="module")
def exported() -> frozenset[str]:
    """Every sample name a node's /metrics serves, from a registry fed one of everything."""
    metrics = Metrics()
    system = OneShard()
    metrics.watch(system, owned=system.owned_shards)
    metrics.observe_http("GET", "/api/v1/me", 200, 0.01)
    metrics.observe_query(Logged("SELECT 1", 0.001))
    metrics.loop_lag.observe(0.001)
    metrics.sample_ownership()
    families = list(metrics.registry.collect())
    empty = [family.name for family in families if not family.samples]
    assert not empty, f"families without a sample: the list below would miss them: {empty}"
    return frozenset(sample.name for family in families for sample in family.samples)


def test_the_exported_names_include_the_suffixed_samples(exported: frozenset[str]) -> None:
    """The list holds sample names as Prometheus stores them: counters' _total, histograms'
    _bucket, _sum and _count, and the GC, process and ownership families."""
    assert {
        "splitgo_actor_messages_handled_total",
        "splitgo_actor_handling_seconds_bucket",
        "splitgo_http_request_duration_seconds_sum",
        "splitgo_db_query_duration_seconds_count",
        "splitgo_actor_shard_takeovers_total",
        "splitgo_actor_shard_owned",
        "python_gc_collections_total",
        "process_resident_memory_bytes",
    } <= exported
    assert "splitgo_actor_messages_handled" not in exported  # the family name is no series


# ── PromQL: which metrics an expression names ──────────────────────────────────────────

_GRAFANA_VARIABLE = re.compile(r"\$(?:__\w+|\{\w+\}|\w+)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
)
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.DOTALL)


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression as Prometheus would get it: Grafana's $variables filled in."""
    return _GRAFANA_VARIABLE.sub(lambda match: "5m" if "interval" in match.group() else ".*", expr)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names in matchers or groupings, or durations."""
    text = _STRING.sub('""', grafana_to_promql(expr))
    text = _RANGE.sub("", _MATCHERS.sub("", text))
    text = _GROUPING.sub("", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        if name.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(name)
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{x="y"}[$__interval])))',
            {"a_bucket"},
        ),
        ('count by (actor) (b{actor=~"$actor"} == 0) and on (actor) c > bool 1e-9', {"b", "c"}),
        ('sum(rate(d_total{s=~"5.."}[5m] offset 1h)) without (node) / e', {"d_total", "e"}),
        ("rec:ord:rule > 1 unless up", {"rec:ord:rule", "up"}),
    ],
)
def test_metric_names_finds_only_the_selected_metrics(expr: str, names: set[str]) -> None:
    """The extractor the checks below rely on: metrics, never functions or label names."""
    assert metric_names(expr) == names


# ── the dashboard ──────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable's metric selector."""
    found = [
        (f"panel {panel['title']!r}", target["expr"])
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        inner = _LABEL_VALUES.match(text)
        assert inner is not None, f"variable {variable['name']}: not label_values(...)"
        found.append((f"variable {variable['name']!r}", inner.group(1)))
    return found


def test_every_dashboard_query_names_only_exported_metrics(
    dashboard: dict[str, Any], exported: frozenset[str]
) -> None:
    """Each panel's and variable's PromQL selects metrics a node serves at /metrics."""
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 20
    unknown = {
        f"{where}: {name}"
        for where, expr in queries
        for name in metric_names(expr)
        if name not in exported | SYNTHETIC
    }
    assert not unknown, sorted(unknown)
    for where, expr in queries:
        assert metric_names(expr), f"{where} selects no metric: {expr}"


def test_the_dashboard_shows_what_the_issue_asks(dashboard: dict[str, Any]) -> None:
    """GC, memory, HTTP rates and percentiles, database buckets as a heatmap, and per actor
    mailbox depth, rates, restarts, dead letters and takeovers each have a panel."""
    named = {name for _, expr in dashboard_queries(dashboard) for name in metric_names(expr)}
    assert set(SHOWN) <= named, set(SHOWN) - named
    exprs = " ".join(expr for _, expr in dashboard_queries(dashboard))
    assert "histogram_quantile(0.5," in exprs
    assert "histogram_quantile(0.99," in exprs
    heatmaps = [p for p in all_panels(dashboard["panels"]) if p["type"] == "heatmap"]
    assert [t["format"] for p in heatmaps for t in p["targets"]] == ["heatmap"]
    assert "splitgo_db_query_duration_seconds_bucket" in heatmaps[0]["targets"][0]["expr"]


def test_the_dashboard_is_well_formed_for_grafana(dashboard: dict[str, Any]) -> None:
    """A fixed uid, unique panel ids, panels within the 24-column grid, every target with a
    refId and the provisioned Prometheus data source's uid."""
    datasources = load_yaml(DATASOURCES)["datasources"]
    prometheus = next(d for d in datasources if d["type"] == "prometheus")
    assert prometheus["url"] == "http://prometheus:9090"
    assert dashboard["uid"] == "splitgo"
    panels = list(all_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["refId"]
            assert target["datasource"]["uid"] == prometheus["uid"], panel["title"]
    # the provider reads the folder compose.yaml mounts this file into
    provider = load_yaml(DASHBOARD_PROVIDERS)["providers"][0]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"


# ── the Prometheus configuration and rules ─────────────────────────────────────────────


def test_every_rule_names_only_exported_or_recorded_metrics(exported: frozenset[str]) -> None:
    """Alerts and recording rules select node metrics, `up`, or a rule recorded here; and
    the alerts the issue names exist."""
    rules = [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    unknown = {
        f"{rule.get('alert') or rule['record']}: {name}"
        for rule in rules
        for name in metric_names(rule["expr"])
        if name not in exported | SYNTHETIC | recorded
    }
    assert not unknown, sorted(unknown)
    alerts = {rule["alert"] for rule in rules if "alert" in rule}
    assert {
        "SplitgoNodeDown",
        "SplitgoDeadLettersGrowing",
        "SplitgoHttpP99High",
        "SplitgoMailboxBackingUp",
    } <= alerts


def test_the_rule_tests_feed_series_a_node_exports(exported: frozenset[str]) -> None:
    """rules_test.yml's made-up series carry real metric names, so its passing means
    something for real scrapes, and every alert has a test."""
    tests = load_yaml(RULES_TEST)["tests"]
    series = {item["series"].partition("{")[0] for test in tests for item in test["input_series"]}
    assert series <= exported | SYNTHETIC, series - exported - SYNTHETIC
    tested = {check["alertname"] for test in tests for check in test["alert_rule_test"]}
    rules = [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules if "alert" in rule} <= tested


def test_prometheus_scrapes_each_compose_node_without_credentials() -> None:
    """One target per node service of compose.yaml, on its port and GET /metrics, with no
    credentials (the route is open); the rules file it loads is the one checked here."""
    config = load_yaml(PROMETHEUS_CONFIG)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "splitgo"]
    assert job["metrics_path"] == METRICS_PATH
    assert not {"authorization", "basic_auth", "oauth2"} & set(job)
    targets = {target for static in job["static_configs"] for target in static["targets"]}
    compose = load_yaml(ROOT / "compose.yaml")
    nodes = {name for name in compose["services"] if name.startswith("node")}
    assert targets == {f"{name}:8080" for name in nodes}
    assert [PROMETHEUS_CONFIG.parent / name for name in config["rule_files"]] == [RULES]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in mounts


# ── promtool ───────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def promtool() -> str:
    """Debian's promtool (package `prometheus`); required under CI, skipped elsewhere."""
    found = shutil.which("promtool")
    if found is not None:
        return found
    if in_ci():
        pytest.fail("promtool is not on PATH under CI: .ci/run installs Debian's prometheus")
    pytest.skip(
        "promtool is not on PATH (`apt-get install -y prometheus` gives /usr/bin/promtool); "
        "under CI=true this fails instead"
    )


def run(promtool: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_promtool_checks_the_config_and_the_rules(promtool: str) -> None:
    """`promtool check config` (which also checks the rule file it loads) and `check rules`."""
    run(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert "SUCCESS" in run(promtool, "check", "rules", str(RULES))


def test_promtool_runs_the_rule_tests(promtool: str) -> None:
    """Each alert fires on series showing its condition and not on ones that do not."""
    assert "SUCCESS" in run(promtool, "test", "rules", str(RULES_TEST))


def test_promtool_parses_every_dashboard_query(
    promtool: str, dashboard: dict[str, Any], tmp_path: Path
) -> None:
    """Each dashboard expression, Grafana's variables filled in, is valid PromQL: written
    as a recording rule, `promtool check rules` parses it."""
    yaml = pytest.importorskip("yaml")
    rules = [
        {"record": f"dashboard:query_{index}", "expr": grafana_to_promql(expr)}
        for index, (_, expr) in enumerate(dashboard_queries(dashboard))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run(promtool, "check", "rules", str(path))


def test_promtool_finds_nothing_to_lint_in_a_nodes_metrics(promtool: str) -> None:
    """`promtool check metrics` on a node's exposition: names, units and help pass its lint."""
    metrics = Metrics()
    system = OneShard()
    metrics.watch(system, owned=system.owned_shards)
    metrics.observe_http("GET", "/api/v1/me", 200, 0.01)
    metrics.sample_ownership()
    run(promtool, "check", "metrics", stdin=generate_latest(metrics.registry).decode())
