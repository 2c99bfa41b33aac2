"""The trace id of the message or request being handled, bound per task."""

from __future__ import annotations

from contextvars import ContextVar

trace_id_var: ContextVar[str] = ContextVar("splitgo_trace_id", default="")


def current_trace_id() -> str:
    """The trace id bound in this task, or "" outside any message or request."""
    return trace_id_var.get()


def bind_trace_id(trace_id: str) -> None:
    """Bind `trace_id` for the rest of this task (each worker and request runs its own)."""
    trace_id_var.set(trace_id)
