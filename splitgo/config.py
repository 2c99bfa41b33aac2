"""Settings from the environment (`SPLITGO_*`) and command-line flags, as one typed object."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

TransportName = Literal["memory", "redis"]
LogFormat = Literal["auto", "json", "console"]


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable or flag."""

    code = "config_error"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a node needs to know before it starts. Flags override the environment."""

    host: str = "127.0.0.1"
    port: int = 8080
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{secrets.token_hex(3)}")
    actors: tuple[str, ...] | None = None  # None: every actor this code knows
    transport: TransportName = "memory"
    database_url: str | None = None  # None: an embedded PostgreSQL under data_dir
    data_dir: Path = Path(".data")
    ops_token: str | None = None  # None: one is generated and kept in data_dir/ops-token
    log_format: LogFormat = "auto"
    log_level: str = "info"
    shutdown_timeout: float = 10.0
    ask_timeout: float = 5.0
    db_pool_size: int = 10
    codec_check: bool = False  # push every in-memory message through the codec (tests)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "splitgo"  # every Redis key starts with it: one Redis, many clusters
    lease_ttl: float = 10.0  # seconds a shard lease lives without renewal (redis)
    plugins: tuple[str, ...] = ()  # extra modules that register actor types at start

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None


# (environment variable, flag, field, help) — the README's configuration table mirrors this
OPTIONS: tuple[tuple[str, str | None, str, str], ...] = (
    ("SPLITGO_HOST", "--host", "host", "address to listen on (default 127.0.0.1)"),
    ("SPLITGO_PORT", "--port", "port", "HTTP port (default 8080; 0 picks a free one)"),
    ("SPLITGO_NODE_ID", "--node-id", "node_id", "this node's name (default host-random)"),
    ("SPLITGO_ACTORS", "--actors", "actors", "comma-separated actor types to host (default all)"),
    ("SPLITGO_TRANSPORT", "--transport", "transport", "memory (default) or redis"),
    ("SPLITGO_DATABASE_URL", None, "database_url", "PostgreSQL URL; unset: embedded PostgreSQL"),
    ("SPLITGO_DATA_DIR", "--data-dir", "data_dir", "folder for the embedded database (.data)"),
    ("SPLITGO_OPS_TOKEN", None, "ops_token", "bearer token for /ops/*; unset: generated"),
    ("SPLITGO_LOG_FORMAT", None, "log_format", "auto (console on a terminal), json or console"),
    ("SPLITGO_LOG_LEVEL", None, "log_level", "debug, info (default), warning or error"),
    ("SPLITGO_SHUTDOWN_TIMEOUT", None, "shutdown_timeout", "seconds to drain on SIGTERM (10)"),
    ("SPLITGO_ASK_TIMEOUT", None, "ask_timeout", "default seconds an ask waits (5)"),
    ("SPLITGO_DB_POOL_SIZE", None, "db_pool_size", "largest database pool (10)"),
    ("SPLITGO_CODEC_CHECK", None, "codec_check", "1: encode every in-memory message (tests)"),
    ("SPLITGO_REDIS_URL", None, "redis_url", "Redis for --transport redis (127.0.0.1:6379/0)"),
    ("SPLITGO_REDIS_PREFIX", None, "redis_prefix", "prefix of every Redis key (splitgo)"),
    ("SPLITGO_LEASE_TTL", None, "lease_ttl", "seconds a shard lease lives unrenewed (10)"),
    ("SPLITGO_PLUGINS", None, "plugins", "comma-separated modules registering extra actors"),
)


def _parse(name: str, field_name: str, raw: str) -> object:
    """Turn one raw string into the field's type, or say exactly what is wrong with it."""
    raw = raw.strip()
    try:
        if field_name in ("port", "db_pool_size"):
            value = int(raw)
            low = 0 if field_name == "port" else 1
            if not low <= value <= 65535:
                raise ValueError
            return value
        if field_name in ("shutdown_timeout", "ask_timeout", "lease_ttl"):
            seconds = float(raw)
            if not 0 < seconds <= 3600:
                raise ValueError
            return seconds
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid number for {field_name}") from None
    if field_name == "codec_check":
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no", ""):
            raise ConfigError(f"{name}={raw!r}: use 1 or 0")
        return raw.lower() in ("1", "true", "yes")
    if field_name == "plugins":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if field_name == "redis_url" and not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{name}={raw!r}: a Redis URL starts with redis://, rediss:// or unix://")
    if field_name == "redis_prefix" and (not raw or ":" in raw or " " in raw):
        raise ConfigError(f"{name}={raw!r}: a key prefix is one word without ':' or spaces")
    if field_name == "actors":
        names = tuple(part.strip() for part in raw.split(",") if part.strip())
        return None if names in ((), ("all",)) else names
    if field_name == "transport" and raw not in ("memory", "redis"):
        raise ConfigError(f"{name}={raw!r}: the transport is memory or redis")
    if field_name == "log_format" and raw not in ("auto", "json", "console"):
        raise ConfigError(f"{name}={raw!r}: the log format is auto, json or console")
    if field_name == "log_level" and raw.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"{name}={raw!r}: the log level is debug, info, warning or error")
    if field_name == "data_dir":
        return Path(raw)
    if field_name in ("database_url", "ops_token", "node_id") and not raw:
        return None if field_name != "node_id" else Settings().node_id
    return raw.lower() if field_name == "log_level" else raw


def add_flags(parser: argparse.ArgumentParser) -> None:
    for _env, flag, field_name, help_text in OPTIONS:
        if flag is not None:
            parser.add_argument(flag, dest=field_name, default=None, help=help_text)


def load(environ: Mapping[str, str], flags: argparse.Namespace | None = None) -> Settings:
    """Settings from the environment, then the flags given on the command line."""
    settings = Settings()
    changes: dict[str, object] = {}
    for env, flag, field_name, _help in OPTIONS:
        if env in environ:
            changes[field_name] = _parse(env, field_name, environ[env])
        given = getattr(flags, field_name, None) if flags is not None else None
        if given is not None and flag is not None:
            changes[field_name] = _parse(flag, field_name, str(given))
    return replace(settings, **changes)  # type: ignore[arg-type]


def from_argv(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="run.py", description="Run one splitgo node.")
    add_flags(parser)
    return load(os.environ, parser.parse_args(argv))
