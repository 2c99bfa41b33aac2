"""Node start-up: seconds from spawning `run.py` to a 200 from /readyz, and idle memory.

The contract with run.py: `python run.py --port <port> --data-dir <dir>` with the
environment variable SPLITGO_OPS_TOKEN set starts a node that answers
GET http://127.0.0.1:<port>/readyz with 200 once it is ready, and exits on SIGTERM.

The first run points --data-dir at a folder that does not exist yet, so the node has to
create its database (cold start, initdb included); every later run reuses that folder
(warm start, the common case, with a target of under 3 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

WARM_STARTUP_TARGET_S = 3.0
IDLE_SECONDS = 2.0
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
LEFTOVER_GRACE_S = 5.0
POLL_INTERVAL_S = 0.02
OPS_TOKEN = "bench"

Progress = Callable[[str], None]


class NodeStartError(RuntimeError):
    """The node exited or did not become ready in time."""


def free_port() -> int:
    """A TCP port nothing listens on right now (another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float | None:
    """The resident set size of one process, from /proc/<pid>/status, in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    return None


class _Proc(NamedTuple):
    ppid: int
    pgid: int
    started: int  # clock ticks after boot: with the pid, tells a reused pid apart
    cmdline: str


def _processes() -> dict[int, _Proc]:
    """Every live (non-zombie) process, from /proc."""
    found: dict[int, _Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: parse after the last ")"
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            cmdline = raw.replace(b"\0", b" ").decode(errors="replace")
            found[int(entry.name)] = _Proc(int(fields[1]), int(fields[2]), int(fields[19]), cmdline)
    return found


def _descendants(roots: list[int], processes: dict[int, _Proc]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, proc in processes.items():
        children.setdefault(proc.ppid, []).append(pid)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def helper_processes(node_pid: int, data_dir: Path) -> dict[int, int]:
    """The node's helpers, pid to start time: its descendants, and what runs on its data.

    An embedded PostgreSQL daemonizes (pg_ctl): it is neither a child of the node nor in
    its process group, but its command line names the data folder, which is unique here.
    """
    processes = _processes()
    marker = str(data_dir)
    roots = [
        pid
        for pid, proc in processes.items()
        if marker in proc.cmdline and pid not in (node_pid, os.getpid())
    ]
    helpers = set(roots) | _descendants([node_pid, *roots], processes)
    helpers.discard(node_pid)
    return {pid: processes[pid].started for pid in sorted(helpers)}


def pss_mib(pid: int) -> float | None:
    """Proportional set size (shared pages split between their users), in MiB."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return None


def _leftovers(node_pid: int, data_dir: Path, helpers: dict[int, int]) -> list[int]:
    """What still runs after the node exited: its process group, what runs on its data
    folder, and the helpers it had before it was stopped."""
    marker = str(data_dir)
    return sorted(
        pid
        for pid, proc in _processes().items()
        if pid != os.getpid()
        and (proc.pgid == node_pid or marker in proc.cmdline or helpers.get(pid) == proc.started)
    )


def _signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, started: float, timeout: float
) -> float:
    """Poll `url` until it answers 200; returns seconds since `started`."""
    # no proxy: an http_proxy in the environment must not swallow requests to 127.0.0.1
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = started + timeout
    while True:
        code = process.poll()
        if code is not None:
            raise NodeStartError(f"the node exited with code {code} before it was ready")
        try:
            with opener.open(url, timeout=1.0) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except urllib.error.HTTPError as error:
            error.close()  # 503 while starting: keep polling
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        if time.perf_counter() > deadline:
            raise NodeStartError(f"{url} did not answer 200 within {timeout:.0f} s")
        time.sleep(POLL_INTERVAL_S)


def stop_node(process: subprocess.Popen[bytes], data_dir: Path, timeout: float) -> dict[str, Any]:
    """SIGTERM, wait for the exit; SIGKILL the node's process group if it hangs.

    Helpers still running after the node exited (a database it should have stopped) are
    counted as leftovers, given a grace period, then stopped by their pids so that the
    next run starts from the same place.
    """
    helpers = helper_processes(process.pid, data_dir)
    stopped = time.perf_counter()
    killed = False
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    shutdown_s = time.perf_counter() - stopped
    leftovers = _leftovers(process.pid, data_dir, helpers)
    grace = time.perf_counter() + LEFTOVER_GRACE_S
    while leftovers and time.perf_counter() < grace:
        time.sleep(0.1)
        leftovers = _leftovers(process.pid, data_dir, helpers)
    counted = len(leftovers)
    if leftovers:
        _signal_all(leftovers, signal.SIGTERM)
        grace = time.perf_counter() + LEFTOVER_GRACE_S
        while leftovers and time.perf_counter() < grace:
            time.sleep(0.1)
            leftovers = _leftovers(process.pid, data_dir, helpers)
        _signal_all(leftovers, signal.SIGKILL)
    return {
        "exit_code": process.returncode,
        "shutdown_s": round(shutdown_s, 3),
        "killed": killed,
        "leftover_processes": counted,
    }


def _describe_run(run: dict[str, Any]) -> str:
    line = (
        f"      ready in {run['startup_s']:.2f} s, idle RSS {run['rss_mib']} MiB "
        f"(helpers: {_processes_word(run['helpers'])}, {run['helpers_pss_mib']} MiB PSS), "
        f"exit {run['exit_code']} after {run['shutdown_s']:.2f} s"
    )
    if run["killed"]:
        line += " (killed: SIGTERM was not enough)"
    if run["leftover_processes"]:
        line += f", {_processes_word(run['leftover_processes'])} left running"
    return line


def _processes_word(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _one_run(
    python: str,
    project_root: Path,
    data_dir: Path,
    log_path: Path,
    *,
    idle_seconds: float,
    ready_timeout: float,
    stop_timeout: float,
) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "SPLITGO_OPS_TOKEN": OPS_TOKEN}
    command = [python, "run.py", "--port", str(port), "--data-dir", str(data_dir)]
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=project_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a hung node can be killed
        )
        try:
            try:
                startup_s = _wait_ready(
                    process, f"http://127.0.0.1:{port}/readyz", started, ready_timeout
                )
            except NodeStartError as error:
                raise NodeStartError(f"{error}; last output:\n{_tail(log_path)}") from None
            time.sleep(idle_seconds)
            if process.poll() is not None:
                raise NodeStartError(
                    f"the node exited with code {process.returncode} while idle; "
                    f"last output:\n{_tail(log_path)}"
                )
            rss = rss_mib(process.pid)
            helpers = helper_processes(process.pid, data_dir)
            helpers_pss = [pss_mib(pid) for pid in helpers]
        finally:
            stop = stop_node(process, data_dir, stop_timeout)
    return {
        "port": port,
        "startup_s": round(startup_s, 3),
        "rss_mib": None if rss is None else round(rss, 1),
        "helpers": len(helpers),
        "helpers_pss_mib": round(sum(p for p in helpers_pss if p is not None), 1),
        **stop,
    }


def measure_node_startup(
    python: str,
    project_root: Path,
    runs: int,
    *,
    idle_seconds: float = IDLE_SECONDS,
    ready_timeout: float = READY_TIMEOUT_S,
    stop_timeout: float = STOP_TIMEOUT_S,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Start the node `runs` times: once cold on a new data folder, then warm on the same.

    Each run records seconds from spawn to the first 200 from /readyz, the node process's
    VmRSS after `idle_seconds` idle (its helper processes, such as an embedded PostgreSQL,
    are reported apart as `helpers_pss_mib`), then stops it with SIGTERM and waits.
    Warm figures are medians over runs 2..runs. The data folder is removed afterwards.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    project_root = Path(project_root)
    if not (project_root / "run.py").is_file():
        raise FileNotFoundError(f"{project_root / 'run.py'} does not exist")
    scratch = Path(tempfile.mkdtemp(prefix="splitgo-bench-node-"))
    data_dir = scratch / "data"  # does not exist yet: the first run is a cold start
    results: list[dict[str, Any]] = []
    try:
        for index in range(runs):
            kind = "cold" if index == 0 else "warm"
            if progress is not None:
                progress(f"  run {index + 1}/{runs} ({kind}) ...")
            run = _one_run(
                python,
                project_root,
                data_dir,
                scratch / f"node-{index + 1}.log",
                idle_seconds=idle_seconds,
                ready_timeout=ready_timeout,
                stop_timeout=stop_timeout,
            )
            run = {"run": index + 1, "kind": kind, **run}
            results.append(run)
            if progress is not None:
                progress(_describe_run(run))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cold = results[0]
    warm = results[1:]
    warm_startup = statistics.median(r["startup_s"] for r in warm) if warm else None
    warm_rss_values = [r["rss_mib"] for r in warm if r["rss_mib"] is not None]
    return {
        "python": python,
        "idle_seconds": idle_seconds,
        "runs": results,
        "cold_startup_s": cold["startup_s"],
        "cold_rss_mib": cold["rss_mib"],
        "warm_startup_s": None if warm_startup is None else round(warm_startup, 3),
        "warm_rss_mib": round(statistics.median(warm_rss_values), 1) if warm_rss_values else None,
        "warm_target_s": WARM_STARTUP_TARGET_S,
        "warm_passed": None if warm_startup is None else warm_startup < WARM_STARTUP_TARGET_S,
        "clean_exits": all(
            r["exit_code"] == 0 and not r["killed"] and not r["leftover_processes"] for r in results
        ),
    }


def format_node_report(result: dict[str, Any]) -> str:
    """Cold and warm start-up and idle RSS, and the warm start-up against its target."""

    def mib(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f} MiB"

    runs = result["runs"]
    lines = [
        "",
        f"{'node start-up':<22} {'seconds':>9} {'idle RSS':>12} {'helpers PSS':>13}",
        "-" * 91,
        f"{'cold (new data dir)':<22} {result['cold_startup_s']:>9.2f} "
        f"{mib(result['cold_rss_mib']):>12} {mib(runs[0]['helpers_pss_mib']):>13}",
    ]
    warm = result["warm_startup_s"]
    if warm is None:
        lines.append("warm: not measured (needs runs >= 2)")
    else:
        label = f"warm (median of {len(runs) - 1})"
        helpers = statistics.median(run["helpers_pss_mib"] for run in runs[1:])
        lines.append(
            f"{label:<22} {warm:>9.2f} {mib(result['warm_rss_mib']):>12} {mib(helpers):>13}"
        )
    lines.append(
        f"(idle RSS: the run.py process after {result['idle_seconds']:g} s idle; "
        "helpers PSS: its database "
        "server and other helper processes)"
    )
    if warm is not None:
        target = result["warm_target_s"]
        verdict = "PASS" if result["warm_passed"] else f"MISS by {warm - target:.2f} s"
        lines.append(f"warm start-up {warm:.2f} s vs target < {target:.0f} s: {verdict}")
    if not result["clean_exits"]:
        lines.append(
            "note: some run did not exit cleanly on SIGTERM or left processes running (see JSON)"
        )
    return "\n".join(lines)
