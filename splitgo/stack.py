"""The parts of a running node as one stack: stopped in reverse order of start, each once.

A part is pushed with its stop as soon as it is started (or about to be, when a failed start
still leaves something to close). Closing the stack stops every part, last pushed first;
a stop that fails is logged and never keeps the parts below it from stopping.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("splitgo.stack")

Stop = Callable[[], Awaitable[object] | object]


class PartStack:
    """Stops for the started parts of `owner` (a node id, for the logs)."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._stack = contextlib.AsyncExitStack()
        self._pushed: list[str] = []
        self.stopped: list[str] = []  # parts in the order they were stopped
        self.failed: list[str] = []  # parts whose stop raised

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts still to stop, in the order they were pushed."""
        return tuple(self._pushed)

    def push(self, part: str, stop: Stop) -> None:
        """Stop `part` with `stop` (sync or async) when the stack closes, before earlier ones."""
        self._pushed.append(part)
        self._stack.push_async_callback(self._stop, part, stop)

    async def close(self) -> None:
        """Stop every pushed part, last pushed first; twice is once."""
        stack, self._stack = self._stack, contextlib.AsyncExitStack()
        await stack.aclose()

    async def _stop(self, part: str, stop: Stop) -> None:
        self._pushed.pop()  # last pushed, first stopped: it is this part
        self.stopped.append(part)
        try:
            result = stop()
            if inspect.isawaitable(result):
                await result
        except Exception as error:
            self.failed.append(part)
            log.error(
                "node_part_stop_failed",
                node=self._owner,
                part=part,
                error=f"{type(error).__name__}: {error}",
            )
