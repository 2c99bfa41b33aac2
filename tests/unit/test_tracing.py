"""Trace context in process: W3C traceparent in and out, and OTLP/HTTP span export to a
tiny local collector."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actors.runtime import (
    Actor,
    ActorSystem,
    DomainError,
    MemoryDeadLetterStore,
    Message,
    bind_trace_id,
    current_trace_id,
    handles,
)
from splitgo.config import ConfigError, load
from splitgo.instrument import instrumented
from splitgo.tracing import (
    Tracing,
    configure,
    format_traceparent,
    parse_traceparent,
    traces_url,
    w3c_trace_id,
)
from splitgo.web import Services, create_app
from splitgo.web.problems import json_response
from transport import Codec, MemoryTransport

Client = TestClient[web.Request, web.Application]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
GOOD = f"00-{TRACE}-{PARENT}-01"


# ── the header ─────────────────────────────────────────────────────────────────────────


def test_a_valid_traceparent_is_read() -> None:
    """A valid traceparent yields its trace id, parent id and sampled flag, and a later version is
    read by its first four fields."""
    parent = parse_traceparent(GOOD)
    assert parent is not None
    assert (parent.trace_id, parent.parent_id, parent.flags) == (TRACE, PARENT, "01")
    assert parent.sampled
    unsampled = parse_traceparent(f"00-{TRACE}-{PARENT}-00")
    assert unsampled is not None
    assert not unsampled.sampled
    # a later version is read by its first four fields
    assert parse_traceparent(f"01-{TRACE}-{PARENT}-01-what-comes-next") is not None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE}-{PARENT}",  # no flags
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE.upper()}-{PARENT}-01",  # hex is lowercase
        f"00-{TRACE[:-1]}-{PARENT}-01",  # short
        f"00-{TRACE}-{PARENT}-1",
        f"00_{TRACE}_{PARENT}_01",
    ],
)
def test_invalid_traceparents_are_ignored(value: str | None) -> None:
    """A missing, malformed, all-zero, upper-case or badly versioned traceparent parses to None."""
    assert parse_traceparent(value) is None


def test_trace_ids_become_w3c_shaped() -> None:
    """A W3C trace id is kept and any other id is hashed to a stable 32-hex id, and traceparent and
    the OTLP traces URL are formatted correctly."""
    assert w3c_trace_id(TRACE) == TRACE
    derived = w3c_trace_id("req-42")
    assert len(derived) == 32
    assert derived == w3c_trace_id("req-42")  # stable
    assert int(derived, 16)
    assert format_traceparent(TRACE, PARENT, "01") == GOOD
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces/") == "http://collector:4318/v1/traces"


def test_no_endpoint_no_export() -> None:
    """Without an OTLP endpoint configured, no tracing is set up."""
    assert configure(load({})) is None


def test_an_endpoint_without_opentelemetry_is_a_clear_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An OTLP endpoint without OpenTelemetry installed is a config error naming the variable and
    the otel extra."""
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ConfigError, match=r"SPLITGO_OTEL_ENDPOINT.*\.\[otel\]"):
        configure(load({"SPLITGO_OTEL_ENDPOINT": "http://127.0.0.1:4318"}))


# ── over HTTP ──────────────────────────────────────────────────────────────────────────

probe_routes = web.RouteTableDef()


@probe_routes.get("/probe/trace")
async def trace_here(_request: web.Request) -> web.Response:
    return json_response({"trace_id": current_trace_id()})


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    codec = Codec()
    built = ActorSystem(
        MemoryTransport(node_id="web", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
    )
    await built.start()
    yield built
    await built.stop(1.0)


async def client_for(system: ActorSystem, tracing: Tracing | None = None) -> Client:
    app = create_app(
        Services(system=system, node_id="web", ops_token="ops-token"),
        extra=[probe_routes],
        tracing=tracing,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_an_incoming_traceparent_names_the_trace(system: ActorSystem) -> None:
    """An incoming traceparent sets the trace id, and the reply's traceparent keeps its trace and
    flags under this server's own span, with the request id echoed."""
    client = await client_for(system)
    try:
        response = await client.get("/probe/trace", headers={"traceparent": GOOD})
        assert (await response.json())["trace_id"] == TRACE
        answer = parse_traceparent(response.headers["traceparent"])
        assert answer is not None
        assert answer.trace_id == TRACE
        assert answer.parent_id != PARENT  # this server's own span
        assert answer.flags == "01"  # the caller's decision stands
        assert response.headers["X-Request-Id"] == TRACE
        # with an X-Request-Id too, the request id is echoed and the trace stays W3C's
        response = await client.get(
            "/probe/trace", headers={"traceparent": GOOD, "X-Request-Id": "req-1"}
        )
        assert (await response.json())["trace_id"] == TRACE
        assert response.headers["X-Request-Id"] == "req-1"
    finally:
        await client.close()


async def test_without_a_valid_traceparent_a_trace_is_made(system: ActorSystem) -> None:
    """An invalid traceparent gets a fresh unsampled trace, an X-Request-Id alone becomes the trace
    id, and error responses carry traceparent too."""
    client = await client_for(system)
    try:
        response = await client.get("/probe/trace", headers={"traceparent": "00-nonsense-01"})
        made = (await response.json())["trace_id"]
        assert len(made) == 32
        assert made != TRACE
        answer = parse_traceparent(response.headers["traceparent"])
        assert answer is not None
        assert answer.trace_id == made
        assert answer.flags == "00"  # nothing is recorded here without export
        # an X-Request-Id alone is the trace id (as before); traceparent carries its digest
        response = await client.get("/probe/trace", headers={"X-Request-Id": "req-42"})
        assert (await response.json())["trace_id"] == "req-42"
        answer = parse_traceparent(response.headers["traceparent"])
        assert answer is not None
        assert answer.trace_id == w3c_trace_id("req-42")
        # problems carry the headers too
        response = await client.get("/no/such/route", headers={"traceparent": GOOD})
        assert response.status == 404
        assert response.headers["traceparent"].startswith(f"00-{TRACE}-")
    finally:
        await client.close()


# ── OTLP/HTTP export ───────────────────────────────────────────────────────────────────


class Collector:
    """A tiny OTLP/HTTP receiver: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.requests: list[tuple[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self.receive)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def receive(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        self.requests.append((request.path, request.content_type))
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        return web.Response(status=200, content_type="application/x-protobuf")

    def named(self, name: str) -> list[Any]:
        return [span for span in self.spans if span.name == name]

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra is not installed")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    built = Collector()
    await built.start()
    yield built
    await built.close()


class Greet(Message, frozen=True):
    name: str


class Greeted(Message, frozen=True):
    text: str


class Nope(DomainError):
    code = "nope_for_tracing_test"


class Greeter(Actor):
    @handles(Greet)
    async def greet(self, message: Greet) -> Greeted:
        if message.name == "nobody":
            raise Nope("no one to greet")
        return Greeted(text=f"hello {message.name}")


async def test_spans_are_exported_over_otlp_http(system: ActorSystem, collector: Collector) -> None:
    """A server span per request (child of the caller's span, in its trace) and a span per
    actor message (in the same trace), POSTed as protobuf to <endpoint>/v1/traces."""
    tracing = Tracing(collector.url, node_id="web")
    system.codec.register(Greet, Greeted)
    system.spawn(Greeter, "greeter", factory=instrumented(Greeter, tracing))
    client = await client_for(system, tracing)
    try:
        response = await client.get("/probe/trace", headers={"traceparent": GOOD})
        assert response.status == 200
        answer = parse_traceparent(response.headers["traceparent"])
        assert answer is not None
        await client.get("/healthz")  # no traceparent: a root span of its own trace

        bind_trace_id(TRACE)
        assert await system.ref("greeter").ask(Greet(name="ada")) == Greeted(text="hello ada")
        with pytest.raises(Nope):
            await system.ref("greeter").ask(Greet(name="nobody"))

        assert await asyncio.to_thread(tracing.flush, 10.0)
    finally:
        await client.close()
        await asyncio.to_thread(tracing.shutdown)

    assert set(collector.requests) == {("/v1/traces", "application/x-protobuf")}
    [server] = collector.named("GET /probe/trace")
    assert server.trace_id.hex() == TRACE
    assert server.parent_span_id.hex() == PARENT
    assert server.span_id.hex() == answer.parent_id  # the span the response named
    assert server.kind == server.SPAN_KIND_SERVER
    attributes = {a.key: a.value for a in server.attributes}
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["http.route"].string_value == "/probe/trace"

    [health] = collector.named("GET /healthz")
    assert health.trace_id.hex() != TRACE
    assert not health.parent_span_id

    handled = collector.named("greeter Greet")
    assert len(handled) == 2
    assert {span.trace_id.hex() for span in handled} == {TRACE}
    refused = [span for span in handled if any(a.key == "splitgo.refused" for a in span.attributes)]
    assert len(refused) == 1
