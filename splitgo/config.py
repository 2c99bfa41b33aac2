"""Settings from the environment (`SPLITGO_*`) and command-line flags, as one typed object."""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

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
    db_pool_size: int = 20
    codec_check: bool = False  # push every in-memory message through the codec (tests)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "splitgo"  # every Redis key starts with it: one Redis, many clusters
    lease_ttl: float = 10.0  # seconds a shard lease lives without renewal (redis)
    plugins: tuple[str, ...] = ()  # extra modules that register actor types at start
    public_url: str | None = None  # base of links in mails; None: http://host:port
    jwt_keys: str | None = None  # "kid:secret,kid2:secret2", first signs; None: generated
    smtp_host: str | None = None  # None: mails are written to data_dir/mail
    smtp_port: int | None = None  # None: the usual port of the TLS mode (587, 465, 25)
    smtp_tls: str = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "splitgo <no-reply@splitgo.local>"
    telegram_bot_username: str = "splitgo_bot"
    telegram_bot_tokens: tuple[str, ...] = ()  # senders in turn; the first runs the bot
    telegram_api_url: str | None = None  # None: api.telegram.org (tests: a fake server)
    telegram_mode: str = "polling"  # polling or webhook
    telegram_webhook_secret: str | None = None  # X-Telegram-Bot-Api-Secret-Token
    rides_offer_timeout: float = 15.0  # seconds a driver has to answer an offer
    sms_provider: str = "log"  # log (development) or webhook
    sms_webhook_url: str | None = None
    sms_webhook_token: str | None = None  # sent as a Bearer token to the webhook
    oauth_google_client_id: str | None = None
    oauth_google_client_secret: str | None = None
    oauth_google_base_url: str | None = None  # tests point it at a fake provider
    oauth_github_client_id: str | None = None
    oauth_github_client_secret: str | None = None
    oauth_github_base_url: str | None = None
    oauth_github_api_url: str | None = None
    payment_provider: str = "sandbox"  # sandbox or stripe: where top-ups are paid
    sandbox_secret: str | None = None  # signs sandbox webhooks; None: generated and kept
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_base_url: str = "https://api.stripe.com"
    cors_origins: tuple[str, ...] = ()  # exact origins allowed cross-origin, or "*"; none
    rate_limit: int = 60  # requests a minute per client address per expensive route group
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-For is believed
    otel_endpoint: str | None = None  # OTLP/HTTP collector; None: no span export

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
    ("SPLITGO_DB_POOL_SIZE", None, "db_pool_size", "largest database pool (20)"),
    ("SPLITGO_CODEC_CHECK", None, "codec_check", "1: encode every in-memory message (tests)"),
    ("SPLITGO_REDIS_URL", None, "redis_url", "Redis for --transport redis (127.0.0.1:6379/0)"),
    ("SPLITGO_REDIS_PREFIX", None, "redis_prefix", "prefix of every Redis key (splitgo)"),
    ("SPLITGO_LEASE_TTL", None, "lease_ttl", "seconds a shard lease lives unrenewed (10)"),
    ("SPLITGO_PLUGINS", None, "plugins", "comma-separated modules registering extra actors"),
    ("SPLITGO_PUBLIC_URL", None, "public_url", "base URL of links in mails (http://host:port)"),
    ("SPLITGO_JWT_KEYS", None, "jwt_keys", "kid:secret,… access-token keys, first signs"),
    ("SPLITGO_SMTP_HOST", None, "smtp_host", "SMTP server; unset: mails go to DATA_DIR/mail"),
    ("SPLITGO_SMTP_PORT", None, "smtp_port", "SMTP port (587, 465 with tls, 25 with none)"),
    ("SPLITGO_SMTP_TLS", None, "smtp_tls", "none, starttls (default) or tls"),
    ("SPLITGO_SMTP_USER", None, "smtp_user", "SMTP user name"),
    ("SPLITGO_SMTP_PASSWORD", None, "smtp_password", "SMTP password"),
    ("SPLITGO_SMTP_SENDER", None, "smtp_sender", "From: address of mails"),
    ("SPLITGO_TELEGRAM_BOT_USERNAME", None, "telegram_bot_username", "bot name in t.me links"),
    ("SPLITGO_TELEGRAM_BOT_TOKENS", None, "telegram_bot_tokens", "bot tokens, comma-separated"),
    ("SPLITGO_TELEGRAM_API_URL", None, "telegram_api_url", "Bot API server (api.telegram.org)"),
    ("SPLITGO_TELEGRAM_MODE", None, "telegram_mode", "polling (default) or webhook"),
    ("SPLITGO_TELEGRAM_WEBHOOK_SECRET", None, "telegram_webhook_secret", "webhook secret"),
    ("SPLITGO_RIDES_OFFER_TIMEOUT", None, "rides_offer_timeout", "seconds to answer an offer (15)"),
    ("SPLITGO_SMS_PROVIDER", None, "sms_provider", "log (default) or webhook"),
    ("SPLITGO_SMS_WEBHOOK_URL", None, "sms_webhook_url", "URL the webhook SMS adapter posts to"),
    ("SPLITGO_SMS_WEBHOOK_TOKEN", None, "sms_webhook_token", "Bearer token for that URL"),
    ("SPLITGO_OAUTH_GOOGLE_CLIENT_ID", None, "oauth_google_client_id", "Google sign-in"),
    ("SPLITGO_OAUTH_GOOGLE_CLIENT_SECRET", None, "oauth_google_client_secret", "Google secret"),
    ("SPLITGO_OAUTH_GOOGLE_BASE_URL", None, "oauth_google_base_url", "another OIDC issuer"),
    ("SPLITGO_OAUTH_GITHUB_CLIENT_ID", None, "oauth_github_client_id", "GitHub sign-in"),
    ("SPLITGO_OAUTH_GITHUB_CLIENT_SECRET", None, "oauth_github_client_secret", "GitHub secret"),
    ("SPLITGO_OAUTH_GITHUB_BASE_URL", None, "oauth_github_base_url", "GitHub login host"),
    ("SPLITGO_OAUTH_GITHUB_API_URL", None, "oauth_github_api_url", "GitHub API host"),
    ("SPLITGO_PAYMENT_PROVIDER", None, "payment_provider", "sandbox (default) or stripe"),
    ("SPLITGO_SANDBOX_SECRET", None, "sandbox_secret", "signs sandbox webhooks; generated"),
    ("SPLITGO_STRIPE_API_KEY", None, "stripe_api_key", "Stripe secret API key"),
    ("SPLITGO_STRIPE_WEBHOOK_SECRET", None, "stripe_webhook_secret", "Stripe whsec_ secret"),
    ("SPLITGO_STRIPE_BASE_URL", None, "stripe_base_url", "Stripe API base (api.stripe.com)"),
    ("SPLITGO_CORS_ORIGINS", None, "cors_origins", "origins allowed cross-origin, or *; none"),
    ("SPLITGO_RATE_LIMIT", None, "rate_limit", "requests/minute per client per route group"),
    ("SPLITGO_TRUSTED_PROXIES", None, "trusted_proxies", "proxies whose X-Forwarded-For counts"),
    ("SPLITGO_OTEL_ENDPOINT", None, "otel_endpoint", "OTLP/HTTP collector for spans; unset: none"),
)

# Fields that hold secrets (or URLs that may carry a password): environment only, never a
# flag, because a command line is visible to every user of the machine (ps, /proc).
SECRET_FIELDS = frozenset(
    {
        "database_url", "redis_url", "ops_token", "jwt_keys", "smtp_password",
        "telegram_bot_tokens", "telegram_webhook_secret", "sms_webhook_token",
        "oauth_google_client_secret", "oauth_github_client_secret", "sandbox_secret",
        "stripe_api_key", "stripe_webhook_secret",
    }
)  # fmt: skip

_OPTIONAL_TEXT = {
    "database_url", "ops_token", "public_url", "jwt_keys", "smtp_host", "smtp_user",
    "smtp_password", "oauth_google_client_id", "oauth_google_client_secret",
    "oauth_google_base_url", "oauth_github_client_id", "oauth_github_client_secret",
    "oauth_github_base_url", "oauth_github_api_url", "sandbox_secret", "stripe_api_key",
    "stripe_webhook_secret", "telegram_api_url", "telegram_webhook_secret", "sms_webhook_url",
    "sms_webhook_token", "otel_endpoint",
}  # fmt: skip


def _parse(name: str, field_name: str, raw: str) -> object:
    """Turn one raw string into the field's type, or say exactly what is wrong with it."""
    raw = raw.strip()
    try:
        if field_name in ("port", "db_pool_size", "smtp_port"):
            value = int(raw)
            low = 0 if field_name == "port" else 1
            if not low <= value <= 65535:
                raise ValueError
            return value
        if field_name == "rate_limit":
            value = int(raw)
            if not 0 <= value <= 1_000_000:
                raise ValueError
            return value
        if field_name in ("shutdown_timeout", "ask_timeout", "lease_ttl", "rides_offer_timeout"):
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
    if field_name in ("plugins", "telegram_bot_tokens"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if field_name == "cors_origins":
        return parse_origins(raw, name)
    if field_name == "trusted_proxies":
        return parse_networks(raw, name)
    if field_name == "otel_endpoint" and raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={raw!r}: an OTLP/HTTP endpoint starts with http:// or https://")
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
    if field_name in _OPTIONAL_TEXT and not raw:
        return None
    if field_name == "node_id" and not raw:
        return Settings().node_id
    if field_name == "payment_provider" and raw not in ("sandbox", "stripe"):
        raise ConfigError(f"{name}={raw!r}: the payment provider is sandbox or stripe")
    if field_name == "telegram_mode" and raw not in ("polling", "webhook"):
        raise ConfigError(f"{name}={raw!r}: the Telegram mode is polling or webhook")
    if field_name == "sms_provider" and raw not in ("log", "webhook"):
        raise ConfigError(f"{name}={raw!r}: the SMS provider is log or webhook")
    if field_name == "smtp_tls" and raw not in ("none", "starttls", "tls"):
        raise ConfigError(f"{name}={raw!r}: the SMTP TLS mode is none, starttls or tls")
    if field_name == "jwt_keys":
        parse_jwt_keys(raw, name)
    if field_name == "public_url" and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={raw!r}: a public URL starts with http:// or https://")
    return raw.lower() if field_name == "log_level" else raw


def parse_origins(raw: str, name: str = "SPLITGO_CORS_ORIGINS") -> tuple[str, ...]:
    """`https://app.example,http://localhost:3000` or `*`: exact origins, as browsers send them."""
    origins: list[str] = []
    for part in raw.split(","):
        origin = part.strip()
        if not origin:
            continue
        if origin != "*":
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or parts.path
                or parts.query
                or parts.fragment
                or "@" in parts.netloc
            ):
                raise ConfigError(
                    f"{name}: {origin!r} is not an origin (scheme://host[:port], no path) nor *"
                )
            origin = f"{parts.scheme}://{parts.netloc.lower()}"
        origins.append(origin)
    return tuple(dict.fromkeys(origins))


def parse_networks(raw: str, name: str = "SPLITGO_TRUSTED_PROXIES") -> tuple[str, ...]:
    """Addresses or networks (`10.0.0.5,10.1.0.0/16,::1`), each checked."""
    networks: list[str] = []
    for part in raw.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ConfigError(f"{name}: {text!r} is not an IP address or network") from None
    return tuple(networks)


def refuse_unsafe(settings: Settings) -> None:
    """Settings that parse but must not run. Called before a node starts.

    With a database of its own (SPLITGO_DATABASE_URL), a node is a deployment, maybe one of
    several: a signing key generated into one node's data folder would not verify on the
    others and would silently change when the folder is lost. The embedded default is a
    laptop: there the generated key is a convenience.
    """
    if settings.database_url is not None and settings.jwt_keys is None:
        raise ConfigError(
            "SPLITGO_JWT_KEYS must be set when SPLITGO_DATABASE_URL is: a generated signing "
            "key is for the embedded database only (every node needs the same keys; make one "
            "with: python -c \"import secrets; print('k1:' + secrets.token_urlsafe(48))\")"
        )


def parse_jwt_keys(raw: str, name: str = "SPLITGO_JWT_KEYS") -> dict[str, bytes]:
    """`kid:secret,kid:secret` into {kid: secret}; the first is the signing key."""
    keys: dict[str, bytes] = {}
    for part in raw.split(","):
        kid, _, secret = part.strip().partition(":")
        if not kid or len(secret) < 32:
            raise ConfigError(f"{name}: each key is kid:secret with a secret of 32+ characters")
        keys[kid] = secret.encode()
    return keys


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
