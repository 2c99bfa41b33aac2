"""A node started with SPLITGO_EVENT_LOOP=uvloop serves on uvloop and says so in its log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.node import RunningNode, start_node, stop_node

pytestmark = pytest.mark.e2e


def log_events(node: RunningNode, event: str) -> list[dict[str, Any]]:
    """The node's JSON log lines (stderr) whose event is `event`."""
    found = []
    for raw in (node.folder / "stderr.log").read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("event") == event:
            found.append(line)
    return found


async def test_a_node_on_uvloop_answers_and_logs_its_loop(tmp_path: Path) -> None:
    """With SPLITGO_EVENT_LOOP=uvloop the node answers /healthz and /readyz, logs one
    `event_loop_chosen` line naming uvloop and its version, and stops cleanly."""
    uvloop = pytest.importorskip("uvloop")
    node = await start_node(tmp_path, env={"SPLITGO_EVENT_LOOP": "uvloop"})
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/healthz", "/readyz"):
                async with http.get(f"{node.url}{path}") as response:
                    assert response.status == 200, path
        chosen = log_events(node, "event_loop_chosen")
        assert len(chosen) == 1
        assert chosen[0]["loop"] == "uvloop"
        assert chosen[0]["setting"] == "uvloop"
        assert chosen[0]["uvloop_version"] == uvloop.__version__
    finally:
        code = await stop_node(node)
    assert code == 0
