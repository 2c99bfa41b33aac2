"""A real node in this process stops its parts in the order that loses nothing: intake first,
then the actors drain, then the pools; a part that fails to stop skips none of the rest."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import structlog

from splitgo.config import load
from splitgo.node import Channels, Node

pytestmark = pytest.mark.integration

# reverse of start: what the actors use starts before them and so stops after them
STOP_ORDER = [
    "live",  # open WebSockets first, or the web runner's cleanup waits on them
    "web",
    "revocations",
    "actors",
    "listener",  # closed with the web runner already: a no-op by now
    "http",
    "channels",
    "broadcast",
    "transport",
    "database",
    "metrics",
]


async def test_a_node_stops_in_reverse_order_past_a_failing_part(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the channels failing to close, every other part still stops, in reverse order of
    start, the failure is logged, and the database pool ends closed."""

    async def broken_close(self: Channels) -> None:
        raise RuntimeError("channels would not close")

    monkeypatch.setattr(Channels, "close", broken_close)
    settings = load(
        {
            "SPLITGO_DATABASE_URL": database_url,
            "SPLITGO_JWT_KEYS": "k1:" + "s" * 48,
            "SPLITGO_PORT": "0",
            "SPLITGO_DATA_DIR": str(tmp_path / "data"),
            "SPLITGO_NODE_ID": "stack-test",
        }
    )
    node = Node(settings)
    try:
        await node.start()
        assert node.stack.parts == tuple(reversed(STOP_ORDER))
        async with aiohttp.ClientSession() as http, http.get(f"{node.url}/healthz") as response:
            assert response.status == 200
    finally:
        with structlog.testing.capture_logs() as logs:
            await node.stop()
    assert node.stack.stopped == STOP_ORDER
    assert node.stack.failed == ["channels"]
    failed = [entry for entry in logs if entry["event"] == "node_part_stop_failed"]
    assert [(entry["part"], entry["error"]) for entry in failed] == [
        ("channels", "RuntimeError: channels would not close")
    ]
    assert node.database is not None
    assert node.database.pool.is_closing()
    assert node.system is not None
    assert node.system.closed
    assert logs[-1]["event"] == "node_stopped"
