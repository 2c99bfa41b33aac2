"""A PostgreSQL for tests: the embedded server in a temporary folder, one per test session.

SPLITGO_TEST_DATABASE_URL points the suite at another server instead (it must let the
test user create and drop databases). Each test gets a database of its own.

Most tests want the schema already applied. Applying it costs a good part of a second, so
the session applies it once, to a template database of its own, and each such test's
database is a copy of it (CREATE DATABASE … TEMPLATE): still a database of its own, that
no other test touches. Creating and dropping a database still costs a round of disk
flushes on the server, so a thread of the session's own does both off the tests' path: it
keeps the next copies ready, and drops each database once its test is done with it.

Making a copy is also most of the server's CPU in a run (it creates some 670 files), so a
copy a test is done with goes to a later test instead, once it is made what a new copy is
(tests/support/pg_reuse.py): renamed first, so that whatever the test left connecting to
it finds it gone, as if dropped; rows deleted, sequences and planner counters put back.
One whose structure the test changed is dropped instead.

The embedded server of a session never flushes to disk (`fsync` and `full_page_writes`
off, see `UNFLUSHED`): its data lives as long as the session, and on a busy disk each
commit's flush was most of a write's time.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import sys
import tempfile
import threading
import warnings
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from splitgo.db import apply_schema, start_embedded
from tests.support.pg_reuse import Pristine, pristine, reset

T = TypeVar("T")

# copies of the template made ahead of the tests that will take them
SPARES = 2
# CREATE DATABASE copies a template by WAL (no checkpoint) from PostgreSQL 15 on; before
# that each copy forces a checkpoint, slower than applying the schema to an empty database
_WAL_LOG_COPY = 15
# how long the session's end waits for the last drops
_CLOSE_TIMEOUT = 60.0
# how long a used database's last connections may take to close before it is dropped
_DISCONNECT_TIMEOUT = 5.0

# What a flush to disk guards against (the machine losing power) cannot matter to a server
# that lives as long as its test session. A crash of the server itself still loses nothing:
# what it wrote is in the operating system's cache; and synchronous_commit stays on, so a
# commit is in the WAL before it is acknowledged, as in production.
UNFLUSHED = {"fsync": "off", "full_page_writes": "off"}

_admin_url: str | None = None
_databases: Databases | None = None
_databases_lock = threading.Lock()


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
            url = start_embedded(folder)
            unflushed(url)
            _admin_url = url
    return _admin_url


def unflushed(url: str) -> None:
    """Turn a throwaway server's flushes to disk off (`UNFLUSHED`), from any thread or loop;
    blocking until the server is told to reload its settings."""

    async def apply() -> None:
        connection = await asyncpg.connect(url)
        try:
            for name, value in UNFLUSHED.items():
                await connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            await connection.execute("SELECT pg_reload_conf()")
        finally:
            await connection.close()

    # a thread of its own: the caller may be inside a running event loop
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, apply()).result()


def database_url(name: str) -> str:
    """The URL of database `name` on the session's server."""
    return urlsplit(admin_url())._replace(path=f"/{name}").geturl()


@asynccontextmanager
async def fresh_database(*, schema: bool = False) -> AsyncIterator[str]:
    """A database of the caller's own: yields its URL, and drops it afterwards.

    Empty unless `schema` is true; then it holds the schema as splitgo/schema/'s steps make
    it, every step recorded, so apply_schema finds nothing left to do.
    """
    databases = session_databases()
    made = databases.take() if schema else databases.create_empty()
    try:
        name = await asyncio.shield(asyncio.wrap_future(made))
    except asyncio.CancelledError:
        made.add_done_callback(databases.drop_when_made)  # cancelled while it was made
        raise
    try:
        yield database_url(name)
    finally:
        databases.drop(name)


def session_databases() -> Databases:
    """The session's maker of databases, started on first use (and the server with it)."""
    global _databases
    with _databases_lock:
        if _databases is None:
            _databases = Databases(admin_url())
            # registered after the embedded server's exit handler, so it runs before it
            atexit.register(_databases.close)
        return _databases


class Databases:
    """Makes and drops the session's databases on a thread and event loop of its own.

    Its methods may be called from any thread or event loop; each answers at once with a
    concurrent Future that the work on the thread completes.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="test-databases", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._template: Future[str] | None = None
        self._pristine: Pristine | None = None  # the template's state, when reuse is possible
        self._spares: deque[Future[str]] = deque()
        self._reused: deque[str] = deque()  # used copies made new again, to give out first
        self._copies: set[str] = set()  # the copies of the template given out
        self._resetting = 0  # used copies being made new
        self._drops: set[Future[None]] = set()
        self._failed_drops: list[BaseException] = []

    def take(self) -> Future[str]:
        """A database holding the schema: one made ahead when there is one, and the making
        of the next callers' starts."""
        with self._lock:
            if self._template is None:
                self._template = self._run(self._make_template())
            if self._reused:
                taken: Future[str] = Future()
                taken.set_result(self._reused.popleft())
            elif self._spares:
                taken = self._spares.popleft()
            else:
                taken = self._run(self._copy())
            # the copies being made new count as ready: they are ready before a copy is made
            while len(self._spares) + len(self._reused) + self._resetting < SPARES:
                self._spares.append(self._run(self._copy()))
        return taken

    def resetting(self) -> int:
        """How many used copies are being made new (or dropped) right now."""
        with self._lock:
            return self._resetting

    def reused(self) -> list[str]:
        """The used copies made new, waiting for a test."""
        with self._lock:
            return list(self._reused)

    def create_empty(self) -> Future[str]:
        """A new, empty database; the future holds its name."""
        return self._run(self._create(""))

    def drop(self, name: str) -> None:
        """Drop database `name` soon (closing whatever still uses it), without waiting; a
        copy of the template is made new for a later test instead, when it can be."""
        with self._lock:
            reuse = name in self._copies and self._pristine is not None
            self._copies.discard(name)
            if reuse:
                self._resetting += 1
        dropping = self._run(self._reuse(name) if reuse else _drop(self.url, name))
        with self._lock:
            self._drops.add(dropping)
        dropping.add_done_callback(self._dropped)

    def drop_when_made(self, made: Future[str]) -> None:
        """A done-callback: drop the database a future made, if it made one."""
        if not made.cancelled() and made.exception() is None:
            self.drop(made.result())

    def close(self) -> None:
        """At the session's end: finish the drops, then drop the spares and the template."""
        with self._lock:
            spares = list(self._spares)
            self._spares.clear()
            drops = list(self._drops)
            template = self._template
        pending: list[Future[Any]] = [*drops, *spares, *([template] if template else [])]
        wait(pending, _CLOSE_TIMEOUT)
        with self._lock:
            for name in self._reused:
                spares.append(Future())
                spares[-1].set_result(name)
            self._reused.clear()
        last = [made for made in spares if made.done()]
        if template is not None and template.done():
            last.append(template)  # after the spares: they are copies of it
        for made in last:
            if not made.cancelled() and made.exception() is None and made.result():
                try:
                    self._run(_drop(self.url, made.result())).result(_CLOSE_TIMEOUT)
                except Exception as error:
                    self._failed_drops.append(error)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CLOSE_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()
        if self._failed_drops:
            print(
                f"tests/support/postgres.py: {len(self._failed_drops)} test database(s) not"
                f" dropped, the first: {self._failed_drops[0]!r}",
                file=sys.stderr,
            )

    def _run(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def _dropped(self, dropping: Future[None]) -> None:
        with self._lock:
            self._drops.discard(dropping)
            if not dropping.cancelled() and dropping.exception() is not None:
                self._failed_drops.append(dropping.exception())  # type: ignore[arg-type]

    async def _copy(self) -> str:
        """A copy of the template, or an empty database given the schema when there is none."""
        assert self._template is not None
        template = await asyncio.wrap_future(self._template)
        name = await self._create(template)
        if not template:
            try:
                await _apply(database_url(name))
            except BaseException:
                await _drop(self.url, name)
                raise
        with self._lock:
            self._copies.add(name)
        return name

    async def _reuse(self, name: str) -> None:
        """Make used copy `name` new, under a new name, for a later test; drop it when that
        cannot be done."""
        current, made_new = name, False
        try:
            renamed = f"t_{secrets.token_hex(6)}"
            if await _rename(self.url, name, renamed):
                current = renamed
                assert self._pristine is not None
                connection = await asyncpg.connect(database_url(renamed))
                try:
                    made_new = await reset(connection, self._pristine)
                finally:
                    await connection.close()
        except Exception:
            made_new = False  # whatever went wrong, a new copy will do instead
        finally:
            with self._lock:
                self._resetting -= 1
                if made_new:
                    self._copies.add(current)
                    self._reused.append(current)
        if not made_new:
            await _drop(self.url, current)

    async def _create(self, template: str) -> str:
        name = f"t_{secrets.token_hex(6)}"
        connection = await asyncpg.connect(self.url)
        try:
            if template:
                await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return name

    async def _make_template(self) -> str:
        """A database with the schema applied, to copy; its name, or "" when copies are slow
        (each database then gets the schema applied)."""
        connection = await asyncpg.connect(self.url)
        try:
            if connection.get_server_version().major < _WAL_LOG_COPY:
                return ""
            name = f"t_template_{secrets.token_hex(6)}"
            await connection.execute(f'CREATE DATABASE "{name}"')
            try:
                await _apply(database_url(name))
                seen = await asyncpg.connect(database_url(name))
                try:
                    self._pristine = await pristine(seen)
                finally:
                    await seen.close()
                # nothing may connect to a template while it is copied
                await connection.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            except BaseException:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                raise
        finally:
            await connection.close()
        return name


async def _apply(url: str) -> None:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        await apply_schema(pool)
    finally:
        await pool.close()


async def _rename(url: str, name: str, renamed: str) -> bool:
    """Rename database `name`, closing the connections still on it first; False when some
    are still there after _DISCONNECT_TIMEOUT."""
    connection = await asyncpg.connect(url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _DISCONNECT_TIMEOUT
        while True:
            await connection.execute(
                """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE datname = $1 AND pid <> pg_backend_pid()""",
                name,
            )
            try:
                await connection.execute(f'ALTER DATABASE "{name}" RENAME TO "{renamed}"')
                return True
            except asyncpg.ObjectInUseError:
                if loop.time() > deadline:
                    return False
                await asyncio.sleep(0.01)  # the terminated sessions are still closing
    finally:
        await connection.close()


async def _drop(url: str, name: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
