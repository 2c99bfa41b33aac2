"""A PostgreSQL for tests: the embedded server in a temporary folder, one per test session.

SPLITGO_TEST_DATABASE_URL points the suite at another server instead (it must let the
test user create and drop databases). Each test gets a database of its own.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from splitgo.db import start_embedded

_admin_url: str | None = None


def admin_url() -> str:
    """The server's admin URL, starting the embedded server on first use."""
    global _admin_url
    if _admin_url is None:
        given = os.environ.get("SPLITGO_TEST_DATABASE_URL")
        if given:
            _admin_url = given
        else:
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            folder = Path(tempfile.mkdtemp(prefix="splitgo-test-pg-"))
            # registered before the server's own exit handler, so it runs after it: the
            # server is stopped first, then its folder goes
            atexit.register(shutil.rmtree, folder, True)
            _admin_url = start_embedded(folder)
    return _admin_url


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """Create an empty database, yield its URL, and drop it afterwards."""
    url = admin_url()
    name = f"t_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl()
    finally:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
