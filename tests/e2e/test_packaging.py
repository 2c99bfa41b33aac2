"""A wheel built from the project installs (not editable) and runs: the `splitgo` command,
`python -m splitgo`, and a node that applies the schema shipped inside the package."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.node import PROJECT_ROOT, free_port
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.e2e

# what a source distribution carries: the packages, the thin entry and the metadata
SOURCES = ("actors", "transport", "splitgo", "run.py", "pyproject.toml", "README.md")


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built into a wheel from a copy of its sources and installed into a
    folder of its own (dependencies come from the test's environment)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        path = PROJECT_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    wheels = root / "wheels"
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", str(wheels), str(source), cwd=root,
    )  # fmt: skip
    (wheel,) = wheels.glob("splitgo-*.whl")
    target = root / "site"
    _run(
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
        str(target), str(wheel), cwd=root,
    )  # fmt: skip
    return target


def _environment(site: Path, **extra: str) -> dict[str, str]:
    # the installed copy comes first; the checkout is nowhere on the path
    return {**os.environ, "PYTHONPATH": str(site), "SPLITGO_LOG_FORMAT": "json", **extra}


def test_the_wheel_carries_the_schema_and_the_command(installed: Path) -> None:
    """The installed package holds its schema steps and a `splitgo` console script."""
    steps = sorted((installed / "splitgo" / "schema").glob("*.sql"))
    assert steps, "no schema steps inside the installed package"
    assert (installed / "bin" / "splitgo").is_file()


def test_python_m_splitgo_help_lists_every_command(installed: Path, tmp_path: Path) -> None:
    """`python -m splitgo --help` from the installed copy names run, admin and simulate."""
    env = _environment(installed)
    shown = _run(sys.executable, "-m", "splitgo", "--help", cwd=tmp_path, env=env)
    for command in ("run", "admin", "simulate"):
        assert command in shown
    where = _run(
        sys.executable, "-c", "import splitgo; print(splitgo.__file__)",
        cwd=tmp_path, env=_environment(installed),
    )  # fmt: skip
    assert where.strip().startswith(str(installed))


async def test_the_installed_command_starts_a_node(installed: Path, tmp_path: Path) -> None:
    """The installed `splitgo` command starts a node on a fresh database, applies the packaged
    schema, answers /readyz and stops cleanly on SIGTERM."""
    port = free_port()
    async with fresh_database() as url:
        env = _environment(
            installed,
            SPLITGO_DATABASE_URL=url,
            SPLITGO_JWT_KEYS="k1:" + "s" * 48,
            SPLITGO_RATE_LIMIT="0",
        )
        process = subprocess.Popen(
            [str(installed / "bin" / "splitgo"), "--port", str(port), "--data-dir", "data"],
            cwd=tmp_path,
            env=env,
            stdout=(tmp_path / "stdout.log").open("wb"),
            stderr=(tmp_path / "stderr.log").open("wb"),
            stdin=subprocess.DEVNULL,
        )
        try:
            status = await _ready(f"http://127.0.0.1:{port}/readyz", process)
            assert status == 200, _output(tmp_path)
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, 30)
        assert code == 0, _output(tmp_path)


async def _ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline and process.poll() is None:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return 200
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    return -1 if process.poll() is not None else 0


def _output(folder: Path) -> str:
    return (folder / "stdout.log").read_text() + (folder / "stderr.log").read_text()
