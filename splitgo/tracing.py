"""Trace context: W3C `traceparent` in and out, and optional OpenTelemetry span export.

Every HTTP request and bot update has a trace id, bound in the runtime's context variable:
it travels in every envelope the request causes (to any node) and is on every log line.
An incoming `traceparent` header (W3C Trace Context) gives that id; the response carries a
`traceparent` with the same trace id and this server's span id.

With `SPLITGO_OTEL_ENDPOINT` set, spans are exported over OTLP/HTTP: a server span per HTTP
request and a span per actor message handled (splitgo/instrument.py). OpenTelemetry is an
optional extra (`pip install -e '.[otel]'`) and is imported only then, through importlib,
so that nothing here needs it installed (not even the type checker).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from actors.runtime import current_trace_id
from splitgo.config import ConfigError, Settings

log = structlog.get_logger("splitgo.tracing")

TRACEPARENT = "traceparent"
# version - trace id - parent id - flags; a later version may append fields after a '-'
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_W3C_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
SAMPLED = "01"
NOT_SAMPLED = "00"


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A parsed `traceparent`: whose trace this is, the caller's span, and its flags."""

    trace_id: str  # 32 lowercase hex digits, not all zero
    parent_id: str  # 16 lowercase hex digits, not all zero
    flags: str  # 2 hex digits; bit 0 set: the caller records this trace

    @property
    def sampled(self) -> bool:
        return bool(int(self.flags, 16) & 1)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The header's parts, or None when it is missing or invalid (then it is ignored).

    Version 00 must be exactly four fields. A later version is read by its first four
    fields, as the W3C recommendation asks; version ff is invalid.
    """
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id=trace_id, parent_id=parent_id, flags=flags)


def w3c_trace_id(trace_id: str) -> str:
    """`trace_id` as a W3C trace id: itself when it has that shape, else a stable digest.

    The runtime's own ids are W3C-shaped; a client's free-form `X-Request-Id` used as the
    trace id maps to the same 32 hex digits every time.
    """
    if _W3C_TRACE_ID.match(trace_id) and trace_id != _ZERO_TRACE:
        return trace_id
    return hashlib.sha256(trace_id.encode()).hexdigest()[:32]


def new_span_id() -> str:
    """16 random hex digits, never all zero."""
    return f"{random.getrandbits(64) or 1:016x}"


def format_traceparent(trace_id: str, span_id: str, flags: str) -> str:
    return f"00-{w3c_trace_id(trace_id)}-{span_id}-{flags}"


def traces_url(endpoint: str) -> str:
    """The collector's traces URL: `<endpoint>/v1/traces`, unless the path says it already."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


class Span:
    """One exported span in progress (a thin wrapper, so callers need no OpenTelemetry)."""

    __slots__ = ("_error", "_span")

    def __init__(self, span: Any, error: Callable[[str], Any]) -> None:
        self._span = span
        self._error = error  # description -> an OpenTelemetry error Status

    @property
    def span_id(self) -> str:
        return f"{self._span.get_span_context().span_id:016x}"

    def set(self, key: str, value: str | int | float | bool) -> None:
        self._span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        self._span.set_status(self._error(description))

    def end(self) -> None:
        self._span.end()


class Tracing:
    """OpenTelemetry's SDK with one OTLP/HTTP exporter: builds spans, flushes at the end."""

    def __init__(self, endpoint: str, *, node_id: str, service_name: str = "splitgo") -> None:
        try:
            otel_trace = importlib.import_module("opentelemetry.trace")
            sdk_trace = importlib.import_module("opentelemetry.sdk.trace")
            sdk_export = importlib.import_module("opentelemetry.sdk.trace.export")
            sdk_ids = importlib.import_module("opentelemetry.sdk.trace.id_generator")
            resources = importlib.import_module("opentelemetry.sdk.resources")
            exporter_module = importlib.import_module(
                "opentelemetry.exporter.otlp.proto.http.trace_exporter"
            )
        except ImportError as error:
            raise ConfigError(
                "SPLITGO_OTEL_ENDPOINT is set but OpenTelemetry is not installed "
                f"({error.name or error}): pip install -e '.[otel]'"
            ) from None
        self._trace = otel_trace
        self.url = traces_url(endpoint)
        ids = _trace_ids_type(sdk_ids.RandomIdGenerator)()
        resource = resources.Resource.create(
            {"service.name": service_name, "service.instance.id": node_id}
        )
        self._provider = sdk_trace.TracerProvider(resource=resource, id_generator=ids)
        self._provider.add_span_processor(
            sdk_export.BatchSpanProcessor(exporter_module.OTLPSpanExporter(endpoint=self.url))
        )
        self._tracer = self._provider.get_tracer("splitgo")
        self._kinds = {
            "server": otel_trace.SpanKind.SERVER,
            "consumer": otel_trace.SpanKind.CONSUMER,
            "internal": otel_trace.SpanKind.INTERNAL,
        }
        self._error = functools.partial(otel_trace.Status, otel_trace.StatusCode.ERROR)

    def start(
        self,
        name: str,
        *,
        kind: str = "internal",
        parent: TraceParent | None = None,
        attributes: Mapping[str, str | int | float | bool] | None = None,
    ) -> Span:
        """A span in the trace bound in this task (or the one `parent` names, under it).

        Without a parent it is a root span whose trace id is the bound trace id (made
        W3C-shaped), so exported spans and log lines name the same trace.
        """
        context = None
        if parent is not None:
            trace = self._trace
            remote = trace.SpanContext(
                trace_id=int(parent.trace_id, 16),
                span_id=int(parent.parent_id, 16),
                is_remote=True,
                trace_flags=trace.TraceFlags(int(parent.flags, 16)),
            )
            context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        span = self._tracer.start_span(
            name, context=context, kind=self._kinds[kind], attributes=dict(attributes or {})
        )
        return Span(span, self._error)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return bool(self._provider.force_flush(int(timeout_s * 1000)))

    def shutdown(self) -> None:
        """Export what is left and stop the exporter's thread (blocking: run in a thread)."""
        self._provider.shutdown()


def _trace_ids_type(base: Any) -> Any:
    """An id generator whose root spans take the trace id bound in the running task."""

    def generate_trace_id(self: Any) -> int:
        bound = current_trace_id()
        if bound:
            return int(w3c_trace_id(bound), 16)
        generated: int = base.generate_trace_id(self)
        return generated

    def is_trace_id_random(self: Any) -> bool:
        return False

    return type(
        "BoundTraceIds",
        (base,),
        {"generate_trace_id": generate_trace_id, "is_trace_id_random": is_trace_id_random},
    )


def configure(settings: Settings) -> Tracing | None:
    """The span exporter SPLITGO_OTEL_ENDPOINT asks for, or None (no export)."""
    if not settings.otel_endpoint:
        return None
    tracing = Tracing(settings.otel_endpoint, node_id=settings.node_id)
    log.info("otel_export_enabled", url=tracing.url)
    return tracing
