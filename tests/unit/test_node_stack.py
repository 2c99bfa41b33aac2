"""A node's parts stop as one stack: in reverse order of start, each once, and one failing
stop never keeps the others from stopping."""

from __future__ import annotations

import structlog

from splitgo.config import load
from splitgo.node import Node
from splitgo.stack import PartStack


class FakePart:
    """A part that records when it is stopped, and may fail doing so."""

    def __init__(self, name: str, stopped: list[str], fail: bool = False) -> None:
        self.name = name
        self._stopped = stopped
        self._fail = fail

    async def close(self) -> None:
        self._stopped.append(self.name)
        if self._fail:
            raise RuntimeError(f"{self.name} would not close")


async def test_parts_stop_in_reverse_order_of_start() -> None:
    """The last part pushed stops first, sync and async stops alike."""
    stopped: list[str] = []
    stack = PartStack("n1")
    stack.push("database", FakePart("database", stopped).close)
    stack.push("listener", lambda: stopped.append("listener"))
    stack.push("web", FakePart("web", stopped).close)
    assert stack.parts == ("database", "listener", "web")
    await stack.close()
    assert stopped == ["web", "listener", "database"]
    assert stack.stopped == ["web", "listener", "database"]
    assert list(stack.parts) == []


async def test_a_failing_stop_is_logged_and_skips_nothing() -> None:
    """A stop that raises is logged as node_part_stop_failed; the parts below it still stop
    and closing the stack does not raise."""
    stopped: list[str] = []
    stack = PartStack("n1")
    for name in ("database", "transport", "channels", "actors"):
        stack.push(name, FakePart(name, stopped, fail=name in ("channels", "actors")).close)
    with structlog.testing.capture_logs() as logs:
        await stack.close()
    assert stopped == ["actors", "channels", "transport", "database"]
    assert stack.failed == ["actors", "channels"]
    failures = [entry for entry in logs if entry["event"] == "node_part_stop_failed"]
    assert [entry["part"] for entry in failures] == ["actors", "channels"]
    assert failures[0]["node"] == "n1"
    assert failures[0]["error"] == "RuntimeError: actors would not close"


async def test_closing_twice_stops_each_part_once() -> None:
    """A second close finds nothing left to stop."""
    stopped: list[str] = []
    stack = PartStack("n1")
    stack.push("database", FakePart("database", stopped).close)
    await stack.close()
    await stack.close()
    assert stopped == ["database"]


async def test_node_stop_unwinds_its_stack_and_says_so() -> None:
    """Node.stop stops whatever its start pushed, in reverse, past a failing part, and logs
    node_stopped naming the part that failed."""
    stopped: list[str] = []
    node = Node(load({"SPLITGO_NODE_ID": "n1"}))
    for name in ("tracing", "metrics", "database", "actors", "web", "bot"):
        node.stack.push(name, FakePart(name, stopped, fail=name == "web").close)
    with structlog.testing.capture_logs() as logs:
        await node.stop()
    assert stopped == ["bot", "web", "actors", "database", "metrics", "tracing"]
    assert logs[-1]["event"] == "node_stopped"
    assert logs[-1]["failed"] == ["web"]


async def test_a_node_that_never_started_stops_cleanly() -> None:
    """Stopping a node whose start failed before any part began is a no-op."""
    node = Node(load({}))
    await node.stop()
    assert node.stack.stopped == []
