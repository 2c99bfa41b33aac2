"""A real `python run.py` process: starts on a fresh data folder, serves, stops on SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil  # type: ignore[import-untyped]
import pytest
import pytest_asyncio

from tests.support.node import RunningNode, start_node, stop_node

OPS_TOKEN = "e2e-ops-token"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(
        # its own initdb: the one module whose node runs that path (the others start from
        # a copy of an initialised database, tests/support/node.py)
        tmp_path_factory.mktemp("node"),
        env={"SPLITGO_OPS_TOKEN": OPS_TOKEN},
        initdb=True,
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_readyz_reports_database_and_actors(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """/readyz is 200 and names its checks; /healthz is 200."""
    async with http.get(f"{node.url}/readyz") as response:
        assert response.status == 200
        body = await response.json()
    assert body["checks"] == {"database": True, "revocations": True, "actors": True}
    async with http.get(f"{node.url}/healthz") as response:
        assert response.status == 200


async def test_ops_actors_needs_the_ops_token(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """Without the token /ops/actors is a 401 problem; with it, the node's actor table."""
    async with http.get(f"{node.url}/ops/actors") as response:
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "unauthenticated"
    wrong = {"Authorization": "Bearer not-the-token"}
    async with http.get(f"{node.url}/ops/actors", headers=wrong) as response:
        assert response.status == 401
    good = {"Authorization": f"Bearer {OPS_TOKEN}"}
    async with http.get(f"{node.url}/ops/actors", headers=good) as response:
        assert response.status == 200
        body = await response.json()
    assert set(body) >= {"node", "actors"}
    assert isinstance(body["actors"], list)
    async with http.get(f"{node.url}/ops/dead-letters", headers=good) as response:
        assert response.status == 200
        assert await response.json() == {"items": [], "next_cursor": None}


async def test_unknown_route_and_method_are_problems(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """An unknown route is a 404 problem, a wrong method a 405 problem with Allow."""
    async with http.get(f"{node.url}/api/v1/nothing-here") as response:
        assert response.status == 404
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "not_found"
    async with http.delete(f"{node.url}/healthz") as response:
        assert response.status == 405
        assert response.content_type == "application/problem+json"
        assert "GET" in response.headers["Allow"]


async def test_malformed_json_is_a_400_problem(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """A body that is not JSON is a 400; JSON of the wrong shape a 422 naming the field."""
    headers = {"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"}
    url = f"{node.url}/ops/dead-letters/replay"
    async with http.post(url, data=b'{"ids": [', headers=headers) as response:
        assert response.status == 400
        problem = await response.json(content_type=None)
        assert problem["code"] == "malformed_json"
        assert problem["status"] == 400
    async with http.post(url, data=b'{"ids": [7]}', headers=headers) as response:
        assert response.status == 422
        problem = await response.json(content_type=None)
        assert problem["errors"][0]["field"] == "$.ids[0]"


async def test_request_id_is_echoed(node: RunningNode, http: aiohttp.ClientSession) -> None:
    """Every response carries X-Request-Id, echoing the caller's when it sent one."""
    async with http.get(f"{node.url}/healthz", headers={"X-Request-Id": "req-42"}) as response:
        assert response.headers["X-Request-Id"] == "req-42"
    async with http.get(f"{node.url}/healthz") as response:
        assert len(response.headers["X-Request-Id"]) == 32


async def test_sigterm_stops_the_node_cleanly(node: RunningNode) -> None:
    """SIGTERM drains and exits 0, logging the stop and printing where it listened."""
    assert await stop_node(node) == 0
    output = node.output()
    assert f"listening on {node.url}" in output
    assert '"event": "node_stopped"' in output
    assert "Traceback" not in output


async def test_a_bad_flag_value_exits_with_a_clear_error(tmp_path: Path) -> None:
    """A setting we cannot use stops the start with a message naming it, exit code 2."""
    import subprocess
    import sys

    from tests.support.node import PROJECT_ROOT

    result = subprocess.run(
        [sys.executable, "run.py", "--port", "not-a-port", "--data-dir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--port" in result.stderr


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid postmaster.pid names while the embedded server of `pgdata` runs."""
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None


def running(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


async def test_a_node_started_after_a_sigkill_stops_the_embedded_server_it_adopted(
    tmp_path: Path,
) -> None:
    """A node SIGKILLed leaves its embedded PostgreSQL running; the next node on the same data
    folder adopts it, and on SIGTERM stops it: postmaster.pid is gone and so is the process."""
    pgdata = tmp_path / "data" / "pg"
    first = await start_node(tmp_path, initdb=True)
    postmaster = postmaster_pid(pgdata)
    try:
        assert postmaster is not None
        assert running(postmaster)
        first.process.kill()
        first.process.wait()
        second = await start_node(tmp_path)
        assert postmaster_pid(pgdata) == postmaster  # adopted, not started again
        assert await stop_node(second) == 0
        for _ in range(200):
            if not running(postmaster):
                break
            await asyncio.sleep(0.05)
        assert not running(postmaster)
        assert not (pgdata / "postmaster.pid").exists()
    finally:
        if first.process.poll() is None:
            first.process.kill()
            first.process.wait()
        if postmaster is not None and running(postmaster):  # leave no server behind
            psutil.Process(postmaster).terminate()
