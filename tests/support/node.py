"""Start `python run.py` as a real subprocess on a free port, and stop it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
) -> RunningNode:
    """Spawn a node with its own data folder and wait for /readyz to answer 200. `port`:
    this one rather than a free one; `host`: the name in its URL (the node listens on
    127.0.0.1 either way; "localhost" for what needs a domain, such as passkeys)."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
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
