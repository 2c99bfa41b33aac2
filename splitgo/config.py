"""Settings from the environment (`SPLITGO_*`) and command-line flags, as one typed object.

Each setting is declared once, as a field of `Settings` carrying its `Setting`: variable,
flag, kind (type, bounds, choices), help and whether it is a secret. The environment
parsing, the flags and their `--help`, the validation and the README's configuration table
(`render_table`, `python -m splitgo config-table`) are all derived from those fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from splitgo.event_loop import LOOP_SETTINGS
from splitgo.setting_kinds import (
    Choice,
    ConfigError,
    Folder,
    Integer,
    Kind,
    Listed,
    Seconds,
    Switch,
    Text,
    actor_names,
    one_word,
    optional,
    parse_jwt_keys,
    parse_networks,
    parse_oidc_clients,
    parse_oidc_issuers,
    parse_oidc_names,
    parse_origins,
)
from transport.redis_urls import seed_urls

__all__ = [
    "OPTIONS",
    "SECRET_FIELDS",
    "ConfigError",
    "Setting",
    "Settings",
    "add_flags",
    "definitions",
    "from_argv",
    "load",
    "parse_jwt_keys",
    "parse_networks",
    "parse_origins",
    "refuse_unsafe",
    "render_table",
]

TransportName = Literal["memory", "redis"]
PasswordHashing = Literal["standard", "test"]
LogFormat = Literal["auto", "json", "console"]
T = TypeVar("T")

HTTP = ("http://", "https://")
_SETTING = "splitgo.setting"  # the key of a field's Setting in its metadata


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting's definition: where its value comes from, what it accepts, what it means.

    A secret has no flag: a command line is visible to every user of the machine (ps,
    /proc), so passwords, tokens, keys and URLs that may carry a password come from the
    environment only.
    """

    env: str
    help: str
    kind: Kind
    flag: str | None = None
    secret: bool = False
    shown: str | None = None  # the default as the README shows it, when the value says little

    def __post_init__(self) -> None:
        if self.secret and self.flag is not None:
            raise ValueError(f"{self.env} is a secret: it must not have a flag")


def setting(
    default: T,
    env: str,
    help: str,
    kind: Kind | None = None,
    *,
    flag: str | None = None,
    secret: bool = False,
    shown: str | None = None,
) -> T:
    """A `Settings` field declared with its Setting (text unless another kind is given)."""
    declared = Setting(env, help, kind or Text(), flag, secret, shown)
    # a secret stays out of the repr, so printing or logging Settings does not leak it
    return field(default=default, repr=not secret, metadata={_SETTING: declared})


def made_setting(
    make: Callable[[], T], env: str, help: str, kind: Kind, *, flag: str, shown: str
) -> T:
    """A `Settings` field whose default is made afresh for each Settings (a random name)."""
    declared = Setting(env, help, kind, flag=flag, shown=shown)
    return field(default_factory=make, metadata={_SETTING: declared})


def _node_name() -> str:
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


PORTS = Integer(1, 65535)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a node needs to know before it starts. Flags override the environment."""

    # setting() returns a dataclasses.field (ruff's RUF009 cannot see it); one setting a
    # field, laid out by hand so each stays a few lines
    # fmt: off
    host: str = setting("127.0.0.1", "SPLITGO_HOST", "address to listen on", flag="--host")
    port: int = setting(
        8080, "SPLITGO_PORT", "HTTP port; 0 picks a free one", Integer(0, 65535), flag="--port"
    )
    node_id: str = made_setting(
        _node_name, "SPLITGO_NODE_ID", "this node's name", Text(if_empty=_node_name),
        flag="--node-id", shown="host name and a random suffix",
    )
    actors: tuple[str, ...] | None = setting(
        None, "SPLITGO_ACTORS", "comma-separated actor types to host, or `all`",
        Listed(actor_names), flag="--actors", shown="all",
    )
    transport: TransportName = setting(  # noqa: RUF009
        "memory", "SPLITGO_TRANSPORT", "how messages travel between actors",
        Choice(("memory", "redis"), "the transport"), flag="--transport",
    )
    database_url: str | None = setting(
        None, "SPLITGO_DATABASE_URL", "PostgreSQL URL; unset: an embedded PostgreSQL",
        optional(), secret=True,
    )
    data_dir: Path = setting(  # noqa: RUF009
        Path(".data"), "SPLITGO_DATA_DIR",
        "folder for the embedded database, generated secrets and mails", Folder(),
        flag="--data-dir",
    )
    ops_token: str | None = setting(
        None, "SPLITGO_OPS_TOKEN", "bearer token for /ops/*; unset: generated into "
        "DATA_DIR/ops-token", optional(), secret=True,
    )
    password_hashing: PasswordHashing = setting(  # noqa: RUF009
        "standard", "SPLITGO_PASSWORD_HASHING", "argon2id cost: standard (64 MiB, 3 passes); "
        "test (8 KiB, 1 pass) is for test suites only, never for real accounts",
        Choice(("standard", "test"), "the password hashing"),
    )
    log_format: LogFormat = setting(  # noqa: RUF009
        "auto", "SPLITGO_LOG_FORMAT", "log lines: auto is console on a terminal, JSON lines "
        "otherwise", Choice(("auto", "json", "console"), "the log format"),
    )
    log_level: str = setting(
        "info", "SPLITGO_LOG_LEVEL", "least important log lines shown",
        Choice(("debug", "info", "warning", "error"), "the log level", lower=True),
    )
    shutdown_timeout: float = setting(
        10.0, "SPLITGO_SHUTDOWN_TIMEOUT", "seconds to drain mailboxes on SIGTERM", Seconds()
    )
    ask_timeout: float = setting(
        5.0, "SPLITGO_ASK_TIMEOUT", "default seconds an ask waits for its reply", Seconds()
    )
    db_pool_size: int = setting(20, "SPLITGO_DB_POOL_SIZE", "largest database pool", PORTS)
    # ── event loop (issue 20) ──
    event_loop: str = setting(
        "auto", "SPLITGO_EVENT_LOOP", "the node's event loop: auto is uvloop when it is "
        "installed (every platform but Windows), asyncio's own otherwise; uvloop refuses to "
        "start without it", Choice(LOOP_SETTINGS, "the event loop", lower=True),
        flag="--event-loop",
    )
    # ── hot state in the actor (issue 20) ──
    state_budget_mb: int = setting(
        256, "SPLITGO_STATE_BUDGET_MB", "megabytes the node's shards may keep of hot state "
        "(profiles, balances…), least recently used dropped first past it; 0: none kept",
        Integer(0, 1_000_000),
    )
    reply_cache_mb: int = setting(
        32, "SPLITGO_REPLY_CACHE_MB", "megabytes of named, encoded replies the edge keeps "
        "whole (a group's balances, ~78 KB for 1,000 members), least recently used dropped "
        "first; 0: none kept",
        Integer(0, 1_000_000),
    )
    codec_check: bool = setting(
        False, "SPLITGO_CODEC_CHECK", "tests: encode every in-memory message, as a network "
        "would", Switch(),
    )
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0", "SPLITGO_REDIS_URL", "Redis for `--transport redis`; on a "
        "Redis Cluster, several of its nodes comma-separated (a node starts while one is down; the "
        "first URL's password and options apply to all)",
        Text(starts=("redis://", "rediss://", "unix://"), what="a Redis URL"), secret=True,
    )
    redis_prefix: str = setting(
        "splitgo", "SPLITGO_REDIS_PREFIX", "prefix of every Redis key: several clusters can "
        "share one Redis", Text(check=one_word),
    )
    # ── Redis Cluster (issue 20) ──
    redis_cluster: bool = setting(
        False, "SPLITGO_REDIS_CLUSTER", "SPLITGO_REDIS_URL names nodes of a Redis Cluster "
        "(`redis://` or `rediss://`, database 0; one or more): the others are found from them",
        Switch(),
    )
    lease_ttl: float = setting(
        10.0, "SPLITGO_LEASE_TTL", "seconds a shard lease lives without renewal; a dead "
        "node's shards move after it", Seconds(),
    )
    plugins: tuple[str, ...] = setting(
        (), "SPLITGO_PLUGINS", "comma-separated modules to import at start that register "
        "extra actor types", Listed(),
    )
    public_url: str | None = setting(
        None, "SPLITGO_PUBLIC_URL", "base URL of the links in mails; unset: http://HOST:PORT",
        optional(starts=HTTP, what="a public URL"),
    )
    jwt_keys: str | None = setting(
        None, "SPLITGO_JWT_KEYS", "`kid:secret,kid:secret` access-token keys (32+ chars "
        "each); the first signs, all verify, so keys rotate; unset: generated into "
        "DATA_DIR/jwt-keys (embedded database only)", optional(check=parse_jwt_keys),
        secret=True,
    )
    data_keys: str | None = setting(
        None, "SPLITGO_DATA_KEYS", "`kid:secret,kid:secret` keys (32+ chars each) that "
        "encrypt TOTP secrets at rest; the first seals, all open, so keys rotate; unset: "
        "keys derived from SPLITGO_JWT_KEYS (then keep the old JWT key listed until its "
        "users signed in again)", optional(check=parse_jwt_keys), secret=True,
    )
    smtp_host: str | None = setting(
        None, "SPLITGO_SMTP_HOST", "SMTP server for mail; unset: mails are written as .eml "
        "files to DATA_DIR/mail", optional(),
    )
    smtp_port: int | None = setting(
        None, "SPLITGO_SMTP_PORT", "SMTP port", PORTS,
        shown="587 with starttls, 465 with tls, 25 with none",
    )
    smtp_tls: str = setting(
        "starttls", "SPLITGO_SMTP_TLS", "how SMTP is encrypted",
        Choice(("none", "starttls", "tls"), "the SMTP TLS mode"),
    )
    smtp_user: str | None = setting(None, "SPLITGO_SMTP_USER", "SMTP user name", optional())
    smtp_password: str | None = setting(
        None, "SPLITGO_SMTP_PASSWORD", "SMTP password", optional(), secret=True
    )
    smtp_sender: str = setting(
        "splitgo <no-reply@splitgo.local>", "SPLITGO_SMTP_SENDER", "the From: of mails"
    )
    telegram_bot_username: str = setting(
        "splitgo_bot", "SPLITGO_TELEGRAM_BOT_USERNAME",
        "the bot named in `https://t.me/<bot>?start=<token>` links",
    )
    telegram_bot_tokens: tuple[str, ...] = setting(
        (), "SPLITGO_TELEGRAM_BOT_TOKENS", "bot tokens, comma-separated: notifications go "
        "out through them in turn; the first one runs the bot (unset: no bot, no Telegram "
        "channel)", Listed(), secret=True,
    )
    telegram_api_url: str | None = setting(
        None, "SPLITGO_TELEGRAM_API_URL", "Bot API server; unset: https://api.telegram.org "
        "(the tests point it at a fake)", optional(),
    )
    telegram_mode: str = setting(
        "polling", "SPLITGO_TELEGRAM_MODE", "how updates arrive: polled, or posted to "
        "`POST /telegram/webhook`", Choice(("polling", "webhook"), "the Telegram mode"),
    )
    telegram_webhook_secret: str | None = setting(
        None, "SPLITGO_TELEGRAM_WEBHOOK_SECRET", "webhook mode: updates must carry it in "
        "`X-Telegram-Bot-Api-Secret-Token`", optional(), secret=True,
    )
    rides_offer_timeout: float = setting(
        15.0, "SPLITGO_RIDES_OFFER_TIMEOUT", "seconds a driver has to answer a ride offer "
        "before it goes to the next", Seconds(),
    )
    rides_max_trip_km: int = setting(
        200, "SPLITGO_RIDES_MAX_TRIP_KM", "longest trip, in straight-line km, that is quoted "
        "or requested; a longer one is 422 `trip_too_long`", Integer(1, 20_000),
    )
    # rides by region (issue 20): see actors/rides/regions.py
    ride_regions: str = setting(
        "", "SPLITGO_RIDE_REGIONS", "rides sharded by region: `grid:ROWSxCOLS` (over the "
        "world) or `grid:ROWSxCOLS@S,W,N,E`, or named boxes `name=S,W,N,E;...`; empty: one "
        "rides shard for the world. Every node must have the same value", shown="empty",
    )
    ride_border_m: int = setting(
        1_000, "SPLITGO_RIDE_BORDER_M", "with regions: a free driver this many metres from a "
        "neighbouring region is offered its requests too", Integer(0, 100_000),
    )
    sms_provider: str = setting(
        "log", "SPLITGO_SMS_PROVIDER", "where texts go: the log, or a webhook",
        Choice(("log", "webhook"), "the SMS provider"),
    )
    sms_webhook_url: str | None = setting(
        None, "SPLITGO_SMS_WEBHOOK_URL", "where the webhook SMS adapter posts `{to, text}` "
        "as JSON", optional(),
    )
    sms_webhook_token: str | None = setting(
        None, "SPLITGO_SMS_WEBHOOK_TOKEN", "sent to that URL as `Authorization: Bearer …`",
        optional(), secret=True,
    )
    vapid_private_key: str | None = setting(
        None, "SPLITGO_VAPID_PRIVATE_KEY", "Web Push: the VAPID P-256 private key (PEM, or "
        "its 32 octets in base64url); every node must share it; unset: generated into "
        "DATA_DIR/vapid-key (browsers subscribed with a key lost with that folder get "
        "nothing until they subscribe again)", optional(), secret=True,
    )
    vapid_subject: str | None = setting(
        None, "SPLITGO_VAPID_SUBJECT", "Web Push: the `mailto:` or `https:` contact push "
        "services see; unset: the public URL, else the mail sender's address",
        optional(starts=("mailto:", *HTTP), what="a mailto: or https: URL"),
    )
    webpush_allow_http: bool = setting(
        False, "SPLITGO_WEBPUSH_ALLOW_HTTP", "tests: accept push endpoints at http:// and "
        "local addresses (a fake push service)", Switch(),
    )
    oauth_google_client_id: str | None = setting(
        None, "SPLITGO_OAUTH_GOOGLE_CLIENT_ID", "enables Google sign-in (with the secret)",
        optional(),
    )
    oauth_google_client_secret: str | None = setting(
        None, "SPLITGO_OAUTH_GOOGLE_CLIENT_SECRET", "Google client secret", optional(),
        secret=True,
    )
    oauth_google_base_url: str | None = setting(
        None, "SPLITGO_OAUTH_GOOGLE_BASE_URL", "another OIDC issuer instead of Google's "
        "endpoints (tests use a local one)", optional(),
    )
    oauth_github_client_id: str | None = setting(
        None, "SPLITGO_OAUTH_GITHUB_CLIENT_ID", "enables GitHub sign-in (with the secret)",
        optional(),
    )
    oauth_github_client_secret: str | None = setting(
        None, "SPLITGO_OAUTH_GITHUB_CLIENT_SECRET", "GitHub client secret", optional(),
        secret=True,
    )
    oauth_github_base_url: str | None = setting(
        None, "SPLITGO_OAUTH_GITHUB_BASE_URL", "GitHub's login host (for GitHub Enterprise "
        "or tests)", optional(),
    )
    oauth_github_api_url: str | None = setting(
        None, "SPLITGO_OAUTH_GITHUB_API_URL", "GitHub's API host (for GitHub Enterprise or "
        "tests)", optional(),
    )
    # ── social login by discovery (issue 19) ──
    oauth_facebook_client_id: str | None = setting(
        None, "SPLITGO_OAUTH_FACEBOOK_CLIENT_ID", "enables Facebook sign-in (with the "
        "secret): the app id", optional(),
    )
    oauth_facebook_client_secret: str | None = setting(
        None, "SPLITGO_OAUTH_FACEBOOK_CLIENT_SECRET", "Facebook app secret", optional(),
        secret=True,
    )
    oauth_facebook_base_url: str | None = setting(
        None, "SPLITGO_OAUTH_FACEBOOK_BASE_URL", "one host for Facebook's login dialog and "
        "Graph API instead of facebook.com's (tests use a local one)",
        optional(starts=HTTP, what="a Facebook base URL"),
    )
    oidc_providers: tuple[tuple[str, str], ...] = setting(
        (), "SPLITGO_OIDC_PROVIDERS", "sign-in with any OpenID Connect provider, its "
        "endpoints read from its discovery document: comma-separated `name=issuer` "
        "(`okta=https://acme.okta.com`); each needs its client in SPLITGO_OIDC_CLIENTS",
        Listed(parse_oidc_issuers),
    )
    oidc_clients: tuple[tuple[str, str, str], ...] = setting(
        (), "SPLITGO_OIDC_CLIENTS", "`name=client_id:client_secret` for each of "
        "SPLITGO_OIDC_PROVIDERS, comma-separated", Listed(parse_oidc_clients), secret=True,
    )
    oidc_display_names: tuple[tuple[str, str], ...] = setting(
        (), "SPLITGO_OIDC_DISPLAY_NAMES", "`name=Shown name` for the sign-in buttons of "
        "SPLITGO_OIDC_PROVIDERS, comma-separated; unset: the name, capitalised",
        Listed(parse_oidc_names),
    )
    payment_provider: str = setting(
        "sandbox", "SPLITGO_PAYMENT_PROVIDER", "where top-ups are paid",
        Choice(("sandbox", "stripe"), "the payment provider"),
    )
    sandbox_secret: str | None = setting(
        None, "SPLITGO_SANDBOX_SECRET", "signs the sandbox's webhooks; unset: generated into "
        "DATA_DIR/sandbox-secret", optional(), secret=True,
    )
    stripe_api_key: str | None = setting(
        None, "SPLITGO_STRIPE_API_KEY", "Stripe secret key (with "
        "`SPLITGO_PAYMENT_PROVIDER=stripe`)", optional(), secret=True,
    )
    stripe_webhook_secret: str | None = setting(
        None, "SPLITGO_STRIPE_WEBHOOK_SECRET", "the `whsec_…` secret Stripe signs webhooks "
        "with", optional(), secret=True,
    )
    stripe_base_url: str = setting(
        "https://api.stripe.com", "SPLITGO_STRIPE_BASE_URL", "Stripe's API base (tests use "
        "a fake)",
    )
    rates_url: str = setting(
        "https://www.ecb.europa.eu/stats/eurofxref/", "SPLITGO_RATES_URL",
        "where exchange rates come from: the folder of the ECB's eurofxref files (tests use "
        "a fake)", Text(starts=HTTP, what="a rates URL"),
    )
    files_dir: Path | None = setting(  # noqa: RUF009
        None, "SPLITGO_FILES_DIR", "folder for attachments (receipts) when no S3 store is set",
        Folder(), flag="--files-dir", shown="DATA_DIR/files",
    )
    s3_endpoint: str | None = setting(
        None, "SPLITGO_S3_ENDPOINT", "S3-compatible store for attachments (path-style URL); "
        "unset: the local folder", optional(starts=HTTP, what="an S3 endpoint URL"),
    )
    s3_bucket: str | None = setting(
        None, "SPLITGO_S3_BUCKET", "the attachments' bucket in the S3 store", optional()
    )
    s3_region: str = setting(
        "us-east-1", "SPLITGO_S3_REGION", "the bucket's region (signatures name it)"
    )
    s3_access_key: str | None = setting(
        None, "SPLITGO_S3_ACCESS_KEY", "S3 access key id", optional(), secret=True
    )
    s3_secret_key: str | None = setting(
        None, "SPLITGO_S3_SECRET_KEY", "S3 secret access key", optional(), secret=True
    )
    cors_origins: tuple[str, ...] = setting(
        (), "SPLITGO_CORS_ORIGINS", "comma-separated exact origins (`https://app.example`) "
        "allowed cross-origin with credentials, and/or `*` for any other origin without "
        "them", Listed(parse_origins),
    )
    rate_limit: int = setting(
        60, "SPLITGO_RATE_LIMIT", "requests a minute per client address on each expensive "
        "route group (sign-up, login, password mails, top-ups, ride requests, settlements, "
        "expense writes); 0: off", Integer(0, 1_000_000),
    )
    trusted_proxies: tuple[str, ...] = setting(
        (), "SPLITGO_TRUSTED_PROXIES", "comma-separated addresses or networks of reverse "
        "proxies: behind them the client is the nearest untrusted `X-Forwarded-For` "
        "address", Listed(parse_networks),
    )
    otel_endpoint: str | None = setting(
        None, "SPLITGO_OTEL_ENDPOINT", "OTLP/HTTP collector (`http://collector:4318`): "
        "export a span per HTTP request and per actor message; needs "
        "`pip install -e '.[otel]'`", optional(starts=HTTP, what="an OTLP/HTTP endpoint"),
    )
    admin_password: str | None = setting(
        None, "SPLITGO_ADMIN_PASSWORD", "`splitgo admin create`: the password of an admin "
        "it creates; unset: asked on a terminal", optional(), secret=True,
    )
    mfa_required_for_admins: bool = setting(
        False, "SPLITGO_MFA_REQUIRED_FOR_ADMINS", "admins reach the admin API and the console "
        "only from a session that passed a second factor (a TOTP code or a passkey)", Switch(),
    )
    # fmt: on

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None


@dataclass(frozen=True, slots=True)
class Definition:
    """A Settings field with its Setting and its default value."""

    field: str
    setting: Setting
    default: object


def definitions() -> tuple[Definition, ...]:
    """Every setting, in the order Settings declares them."""
    found = []
    for declared in dataclasses.fields(Settings):
        made = declared.default_factory
        default = made() if made is not dataclasses.MISSING else declared.default
        found.append(Definition(declared.name, declared.metadata[_SETTING], default))
    return tuple(found)


DEFINITIONS = definitions()

# (environment variable, flag, field, help) of every setting
OPTIONS: tuple[tuple[str, str | None, str, str], ...] = tuple(
    (d.setting.env, d.setting.flag, d.field, d.setting.help) for d in DEFINITIONS
)

# Fields that hold secrets (or URLs that may carry a password): environment only
SECRET_FIELDS = frozenset(d.field for d in DEFINITIONS if d.setting.secret)


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
    if settings.redis_cluster:
        for url in seed_urls(settings.redis_url):
            _refuse_cluster_url(url)
    elif len(seed_urls(settings.redis_url)) > 1:
        raise ConfigError(
            "SPLITGO_REDIS_URL names several URLs: that is for the nodes of a Redis Cluster "
            "(SPLITGO_REDIS_CLUSTER=1); a single Redis has one (a comma in a password is "
            "written %2C)"
        )


def _refuse_cluster_url(url: str) -> None:
    """A Redis Cluster is reached over TCP and has database 0 only (the URL is a secret: it
    may carry a password, so the messages never repeat it)."""
    if not url.startswith(("redis://", "rediss://")):
        raise ConfigError(
            "SPLITGO_REDIS_CLUSTER=1 needs a redis:// or rediss:// SPLITGO_REDIS_URL naming "
            "nodes of the cluster (comma-separated): a unix socket reaches one server, not a "
            "cluster"
        )
    database = urlsplit(url).path.strip("/")
    if database not in ("", "0"):
        raise ConfigError(
            "SPLITGO_REDIS_CLUSTER=1: a Redis Cluster has database 0 only; end each URL of "
            "SPLITGO_REDIS_URL with /0 or no database"
        )


def _parse(name: str, definition: Definition, raw: str) -> object:
    return definition.setting.kind.parse(raw.strip(), name, definition.field)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """A flag for every setting that has one; its value is checked by `load`."""
    for definition in DEFINITIONS:
        declared = definition.setting
        if declared.flag is not None:
            help_text = f"{declared.help} ({_accepts_and_default(definition)})".replace("`", "")
            # argparse formats help with %: a literal percent sign must be doubled
            parser.add_argument(
                declared.flag,
                dest=definition.field,
                default=None,
                help=help_text.replace("%", "%%"),
            )


def load(environ: Mapping[str, str], flags: argparse.Namespace | None = None) -> Settings:
    """Settings from the environment, then the flags given on the command line."""
    changes: dict[str, object] = {}
    for definition in DEFINITIONS:
        declared = definition.setting
        if declared.env in environ:
            changes[definition.field] = _parse(declared.env, definition, environ[declared.env])
        given = getattr(flags, definition.field, None) if flags is not None else None
        if given is not None and declared.flag is not None:
            changes[definition.field] = _parse(declared.flag, definition, str(given))
    return replace(Settings(), **changes)  # type: ignore[arg-type]


def from_argv(argv: Sequence[str] | None = None, prog: str = "run.py") -> Settings:
    """Settings from this process's environment and `argv` (the node's flags only)."""
    parser = argparse.ArgumentParser(prog=prog, description="Run one splitgo node.")
    add_flags(parser)
    return load(os.environ, parser.parse_args(argv))


# ── the README's table ─────────────────────────────────────────────────────────────────


def shown_default(definition: Definition) -> str:
    """The default as the README shows it: a value in backticks, or words."""
    value = definition.default
    if definition.setting.shown is not None:
        return definition.setting.shown
    if value is None:
        return "unset"
    if value == ():
        return "none"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def meaning(setting: Setting) -> str:
    """The help text, with what the setting's kind accepts (choices, bounds)."""
    accepts = setting.kind.accepts()
    return f"{setting.help} ({accepts})" if accepts else setting.help


def _accepts_and_default(definition: Definition) -> str:
    accepts = definition.setting.kind.accepts()
    default = f"default {shown_default(definition)}"
    return f"{accepts}; {default}" if accepts else default


def render_table() -> str:
    """The README's configuration table (markdown), one row per setting."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for definition in DEFINITIONS:
        declared = definition.setting
        flag = f"`{declared.flag}`" if declared.flag else "—"
        default, text = shown_default(definition), meaning(declared)
        rows.append(f"| `{declared.env}` | {flag} | {cell(default)} | {cell(text)} |")
    return "\n".join(rows)
