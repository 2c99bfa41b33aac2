"""How a node is composed: the parts actors are built from, the known actor types, who
hears which event, and each domain actor's factory.

`splitgo/node.py` starts what this module declares; plugins add actor types with `register`.
"""

from __future__ import annotations

import functools
import importlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from types import ModuleType
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog

from actors.auth import messages as auth_messages
from actors.auth.actor import Auth
from actors.auth.messages import (
    AccountDeleted,
    EmailVerified,
    ProfileChanged,
    SessionsRevoked,
    TelegramLinked,
    auth_key,
)
from actors.auth.oauth import ProviderConfig
from actors.auth.passwords import TEST_PARAMETERS, Passwords
from actors.auth.tokens import SigningKeys
from actors.chat import messages as chat_messages
from actors.chat.actor import Chat
from actors.chat.messages import CHAT, ChatMessageDeleted, ChatMessagePosted, chat_key
from actors.files import messages as files_messages
from actors.files.actor import Files
from actors.files.messages import FILES, files_key
from actors.files.storage import LocalFolderStorage, S3Storage, Storage
from actors.notifications import messages as notifications_messages
from actors.notifications.actor import Notifications
from actors.notifications.channels.email import EmailChannel, FolderEmail, SmtpEmail, SmtpSettings
from actors.notifications.channels.sms import LogSms, SmsChannel, WebhookSms
from actors.notifications.channels.webpush import VapidKeys, WebPushChannel
from actors.notifications.messages import NOTIFICATIONS, notifications_key
from actors.payments import messages as payments_messages
from actors.payments.actor import Payments
from actors.payments.messages import (
    TopUpFailed,
    TopUpSucceeded,
    TransferCompleted,
    payments_key,
)
from actors.payments.providers import PaymentProvider
from actors.payments.providers.sandbox import SandboxProvider
from actors.payments.providers.stripe import StripeProvider
from actors.rates import messages as rates_messages
from actors.rates.actor import Rates
from actors.rates.feed import EcbFeed, SingleFlightFeed
from actors.rates.messages import RATES, rates_key
from actors.rides import messages as rides_messages
from actors.rides.actor import Rides
from actors.rides.fares import FareTable
from actors.rides.messages import RideUpdated, rides_key
from actors.rides.regions import RegionMap, RegionsError
from actors.rides.regions import parse as parse_ride_regions
from actors.runtime import Actor, ActorSystem
from actors.runtime.broadcast import BROADCAST
from actors.runtime.system import KeyFunction
from actors.splits import messages as splits_messages
from actors.splits.actor import Splits
from actors.splits.messages import (
    ExpenseAdded,
    ExpenseDeleted,
    ExpenseUpdated,
    GroupDeleted,
    MemberAdded,
    MemberInvited,
    MemberReminded,
    MemberRemoved,
    PlaceholderAdded,
    PlaceholderClaimed,
    SettlementFailed,
    SettlementRecorded,
    splits_key,
)
from splitgo.config import ConfigError, Settings, parse_jwt_keys
from splitgo.db import Database
from splitgo.instrument import instrumented
from splitgo.tracing import Tracing
from splitgo.web.live import LiveHub, RedisLiveBus
from transport import Codec, Message
from transport.broadcast import Broadcast, LocalBroadcast
from transport.redis_broadcast import RedisBroadcast

if TYPE_CHECKING:
    # aiogram takes seconds to import (its types are pydantic models): only a node with a
    # Telegram token pays for it, see `bot_for` and `build_channels`
    from actors.notifications.channels.telegram import TelegramChannel
    from splitgo.bot.app import TelegramBot

log = structlog.get_logger("splitgo.composition")


@dataclass(slots=True)
class NodeParts:
    """What an actor's factory may use to build it."""

    settings: Settings
    system: ActorSystem
    database: Database
    public_url: str  # where people reach this node: the base of links in mails
    jwt_keys: dict[str, bytes]  # access-token keys by kid; the first signs
    http: aiohttp.ClientSession  # for calls out (OAuth providers)
    email: EmailChannel  # SMTP, or files in the data folder
    channels: Channels  # Telegram, SMS and the live push, as configured


@dataclass(slots=True)
class Channels:
    """The notification channels beside email, and where live pushes go."""

    live: LiveHub
    telegram: TelegramChannel | None = None
    sms: SmsChannel | None = None
    bus: RedisLiveBus | None = None
    webpush: WebPushChannel | None = None

    async def push(self, user_id: str, frame: bytes) -> None:
        await self.push_many([user_id], frame)

    async def push_many(self, user_ids: list[str], frame: bytes) -> None:
        """The frame to every open session of each of `user_ids`, on whichever node."""
        if self.bus is not None:
            await self.bus.push_many(user_ids, frame)
        else:
            await self.live.deliver_many(user_ids, frame)

    async def close(self) -> None:
        await self.live.close()
        if self.bus is not None:
            await self.bus.close()
        if self.telegram is not None:
            await self.telegram.close()
        if isinstance(self.sms, WebhookSms):
            await self.sms.close()
        if self.webpush is not None:
            await self.webpush.close()


def bot_for(settings: Settings, system: ActorSystem, public_url: str) -> TelegramBot | None:
    """The Telegram bot on the first configured token (None: no tokens, no bot)."""
    if not settings.telegram_bot_tokens:
        return None
    from splitgo.bot.app import TelegramBot  # aiogram: only with a token

    try:
        return TelegramBot(
            system,
            token=settings.telegram_bot_tokens[0],
            api_url=settings.telegram_api_url,
            mode=settings.telegram_mode,  # type: ignore[arg-type]  # checked by config
            webhook_secret=settings.telegram_webhook_secret,
            public_url=public_url,
        )
    except ValueError as error:
        raise ConfigError(f"Telegram: {error}") from None


def build_channels(settings: Settings) -> Channels:
    live = LiveHub()
    telegram = None
    if settings.telegram_bot_tokens:
        from actors.notifications.channels.telegram import TelegramChannel

        telegram = TelegramChannel(settings.telegram_bot_tokens, api_url=settings.telegram_api_url)
    sms: SmsChannel = LogSms()
    if settings.sms_provider == "webhook":
        if not settings.sms_webhook_url:
            raise ConfigError("SPLITGO_SMS_PROVIDER=webhook needs SPLITGO_SMS_WEBHOOK_URL")
        sms = WebhookSms(settings.sms_webhook_url, token=settings.sms_webhook_token)
    bus = None
    if settings.transport == "redis":
        bus = RedisLiveBus(settings.redis_url, settings.redis_prefix, live)
    webpush = WebPushChannel(
        vapid_keys_for(settings),
        subject=vapid_subject_for(settings),
        allow_http=settings.webpush_allow_http,
    )
    return Channels(live=live, telegram=telegram, sms=sms, bus=bus, webpush=webpush)


def vapid_keys_for(settings: Settings) -> VapidKeys:
    """SPLITGO_VAPID_PRIVATE_KEY, or a key pair generated once and kept in
    DATA_DIR/vapid-key, so browsers' subscriptions outlive a restart."""
    if settings.vapid_private_key:
        try:
            return VapidKeys.load(settings.vapid_private_key)
        except ValueError as error:
            raise ConfigError(f"SPLITGO_VAPID_PRIVATE_KEY: {error}") from None
    path = settings.data_dir / "vapid-key"
    made = not path.exists()
    keys = VapidKeys.load(kept_secret(settings, "vapid-key", lambda: VapidKeys.generate().to_pem()))
    if made and not settings.embedded_database:
        # another node would make its own: pushes signed there fail for browsers that
        # subscribed here
        log.warning("vapid_key_generated", path=str(path), setting="SPLITGO_VAPID_PRIVATE_KEY")
    return keys


def vapid_subject_for(settings: Settings) -> str:
    """Who push services may contact about our pushes: the setting, else the public URL,
    else the mail sender's address."""
    if settings.vapid_subject:
        return settings.vapid_subject
    if settings.public_url:
        return settings.public_url
    address = parseaddr(settings.smtp_sender)[1]
    return f"mailto:{address}" if "@" in address else "mailto:no-reply@splitgo.local"


@dataclass(frozen=True, slots=True)
class ActorSpec:
    """How to route to an actor type, and how to build one where it is hosted.

    Every node declares every known type's route (so it can tell and ask a type hosted
    elsewhere); only the types named by `--actors` are spawned here.
    """

    name: str
    actor_type: type[Actor]
    build: Callable[[NodeParts], Actor]
    messages: ModuleType
    shards: int = 1
    key: KeyFunction | None = None
    mailbox_size: int = 1024


# Who hears which event: every event an actor publishes (`tx.publish`) goes to these actor
# types, wherever they are hosted. The one place the flows between actors are declared.
SUBSCRIPTIONS: dict[type[Message], tuple[str, ...]] = {
    EmailVerified: ("splits",),  # an invited address joins once it is verified
    TelegramLinked: (NOTIFICATIONS,),
    # a deleted account's contacts and notices go; it leaves its groups
    AccountDeleted: (NOTIFICATIONS, "splits"),
    TransferCompleted: (NOTIFICATIONS,),
    TopUpSucceeded: (NOTIFICATIONS,),
    TopUpFailed: (NOTIFICATIONS,),
    ExpenseAdded: (NOTIFICATIONS,),
    ExpenseUpdated: (NOTIFICATIONS,),
    ExpenseDeleted: (NOTIFICATIONS, FILES),  # an expense's receipts go with it
    MemberAdded: (NOTIFICATIONS, CHAT),
    MemberRemoved: (CHAT,),  # who leaves a group leaves its conversations
    GroupDeleted: (CHAT, FILES),  # its conversations and its receipts go with it
    PlaceholderClaimed: (CHAT,),
    ChatMessagePosted: (NOTIFICATIONS,),  # mentions, and messages in quiet conversations
    ChatMessageDeleted: (FILES,),  # a deleted message's files go with it
    MemberReminded: (NOTIFICATIONS,),
    MemberInvited: (NOTIFICATIONS,),
    PlaceholderAdded: ("auth",),  # auth names placeholders like users
    SettlementRecorded: (NOTIFICATIONS,),
    SettlementFailed: (NOTIFICATIONS,),
    RideUpdated: (NOTIFICATIONS,),
    # every node's HTTP edge refuses a revoked session's access tokens: all nodes hear it
    SessionsRevoked: (BROADCAST,),
    # every node's edge names people: a rename reaches every node's name book at once
    ProfileChanged: (BROADCAST,),
}


def broadcast_events() -> list[type[Message]]:
    """The events every node hears (subscribed to BROADCAST): what its relay relays."""
    return [event for event, actors in SUBSCRIPTIONS.items() if BROADCAST in actors]


def build_broadcast(settings: Settings, codec: Codec) -> Broadcast:
    """Messages to every node: this process on the memory transport, pub/sub on Redis."""
    if settings.transport == "redis":
        return RedisBroadcast(
            url=settings.redis_url,
            prefix=settings.redis_prefix,
            codec=codec,
            node_id=settings.node_id,
        )
    return LocalBroadcast()


def subscribe_all(system: ActorSystem) -> None:
    """Declare every subscription of SUBSCRIPTIONS on `system`."""
    for event_type, actors in SUBSCRIPTIONS.items():
        system.subscribe(event_type, *actors)


# Actor type name -> its spec. Each domain issue adds its entry; `--actors` picks among
# them, and SPLITGO_PLUGINS modules may add more with `register`.
ACTORS: dict[str, ActorSpec] = {}


def register(spec: ActorSpec) -> None:
    """Make an actor type known to this node (called at import by domain or plugin modules)."""
    known = ACTORS.get(spec.name)
    if known is not None and known.actor_type is not spec.actor_type:
        raise ConfigError(f"actor type {spec.name!r} is registered twice")
    ACTORS[spec.name] = spec


def load_plugins(settings: Settings) -> None:
    register(rides_spec(ride_regions(settings)))  # the rides' shards follow the setting
    for module in settings.plugins:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ConfigError(f"SPLITGO_PLUGINS: cannot import {module!r}: {error}") from None


def hosted_actors(settings: Settings) -> list[str]:
    """The actor types this node hosts: all by default, or the `--actors` choice."""
    if settings.actors is None:
        return list(ACTORS)
    unknown = [name for name in settings.actors if name not in ACTORS]
    if unknown:
        known = ", ".join(ACTORS) or "none yet"
        raise ConfigError(f"--actors names unknown actor types {unknown}; known: {known}")
    return list(settings.actors)


def kept_secret(settings: Settings, name: str, make: Callable[[], str]) -> str:
    """A secret generated once and kept (mode 0600) in the data folder."""
    path = settings.data_dir / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = make()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secret + "\n")
    return secret


def ops_token_for(settings: Settings) -> str:
    """SPLITGO_OPS_TOKEN, or a generated one kept in data_dir/ops-token."""
    if settings.ops_token:
        return settings.ops_token
    return kept_secret(settings, "ops-token", lambda: secrets.token_urlsafe(32))


def jwt_keys_for(settings: Settings) -> dict[str, bytes]:
    """SPLITGO_JWT_KEYS, or one generated key kept in data_dir/jwt-keys (first one signs)."""
    raw = settings.jwt_keys or kept_secret(
        settings, "jwt-keys", lambda: f"k{secrets.token_hex(4)}:{secrets.token_urlsafe(48)}"
    )
    return parse_jwt_keys(raw)


def public_jwks_for(jwt_keys: dict[str, bytes]) -> dict[str, Any]:
    """The public JWK Set of the signing keys: what edges verify tokens with and what
    `/.well-known/jwks.json` publishes."""
    return SigningKeys.first_signs(jwt_keys).public_jwks()


def public_url_for(settings: Settings, bound_url: str) -> str:
    return (settings.public_url or bound_url).rstrip("/")


def spawn(
    system: ActorSystem, spec: ActorSpec, parts: NodeParts, tracing: Tracing | None = None
) -> None:
    system.spawn(
        spec.actor_type,
        spec.name,
        # a span per message when spans are exported: splitgo/instrument.py
        factory=instrumented(functools.partial(spec.build, parts), tracing),
        shards=spec.shards,
        key=spec.key,
        mailbox_size=spec.mailbox_size,
    )


# ── the domain actors ──────────────────────────────────────────────────────────────────


def email_channel(settings: Settings) -> EmailChannel:
    """SMTP when SPLITGO_SMTP_HOST is set; else mails land as files in the data folder."""
    if settings.smtp_host is None:
        return FolderEmail(settings.data_dir / "mail", sender=settings.smtp_sender)
    try:
        return SmtpEmail(
            SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                tls=settings.smtp_tls,  # type: ignore[arg-type]
                user=settings.smtp_user,
                password=settings.smtp_password,
                sender=settings.smtp_sender,
            )
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None


def build_notifications(parts: NodeParts) -> Notifications:
    return Notifications(
        parts.database.pool,
        parts.email,
        public_url=parts.public_url,
        telegram=parts.channels.telegram,
        sms=parts.channels.sms,
        webpush=parts.channels.webpush,
        push=parts.channels.push,
    )


register(
    ActorSpec(
        name=NOTIFICATIONS,
        actor_type=Notifications,
        build=build_notifications,
        messages=notifications_messages,
        shards=4,
        key=notifications_key,
    )
)


def oauth_providers(settings: Settings) -> dict[str, ProviderConfig]:
    """The social logins configured by SPLITGO_OAUTH_<PROVIDER>_CLIENT_ID/SECRET, and the
    OpenID Connect providers of SPLITGO_OIDC_PROVIDERS (found by discovery at sign-in).
    Making them does no IO; inconsistent settings are a ConfigError."""
    providers: dict[str, ProviderConfig] = {}
    if settings.oauth_google_client_id and settings.oauth_google_client_secret:
        providers["google"] = ProviderConfig.google(
            settings.oauth_google_client_id,
            settings.oauth_google_client_secret,
            base_url=settings.oauth_google_base_url,
        )
    if settings.oauth_github_client_id and settings.oauth_github_client_secret:
        providers["github"] = ProviderConfig.github(
            settings.oauth_github_client_id,
            settings.oauth_github_client_secret,
            base_url=settings.oauth_github_base_url,
            api_url=settings.oauth_github_api_url,
        )
    if settings.oauth_facebook_client_id and settings.oauth_facebook_client_secret:
        providers["facebook"] = ProviderConfig.facebook(
            settings.oauth_facebook_client_id,
            settings.oauth_facebook_client_secret,
            base_url=settings.oauth_facebook_base_url,
        )
    providers.update(discovered_providers(settings))
    return providers


def discovered_providers(settings: Settings) -> dict[str, ProviderConfig]:
    """SPLITGO_OIDC_PROVIDERS with their SPLITGO_OIDC_CLIENTS and display names; every
    provider needs a client and every client or display name a provider."""
    clients = {name: (client_id, secret) for name, client_id, secret in settings.oidc_clients}
    shown = dict(settings.oidc_display_names)
    issuers = dict(settings.oidc_providers)
    unmatched = (
        ("SPLITGO_OIDC_PROVIDERS", "has no client in SPLITGO_OIDC_CLIENTS", issuers, clients),
        ("SPLITGO_OIDC_CLIENTS", "is not one of SPLITGO_OIDC_PROVIDERS", clients, issuers),
        ("SPLITGO_OIDC_DISPLAY_NAMES", "is not one of SPLITGO_OIDC_PROVIDERS", shown, issuers),
    )
    for setting, problem, named, known in unmatched:
        missing = sorted(named.keys() - known.keys())
        if missing:
            raise ConfigError(f"{setting}: {missing[0]!r} {problem}")
    return {
        name: ProviderConfig.discovered(
            name, issuer, *clients[name], display_name=shown.get(name, "")
        )
        for name, issuer in issuers.items()
    }


@functools.cache
def shared_passwords(hashing: str = "standard") -> Passwords:
    """One hasher per process: it bounds how many 64 MiB argon2id hashes run at once.
    `hashing` "test" is the cheap profile of test suites (SPLITGO_PASSWORD_HASHING)."""
    if hashing == "test":
        log.warning("password_hashing_for_tests", time_cost=1, memory_kib=8)
        return Passwords(TEST_PARAMETERS)
    return Passwords()


def build_auth(parts: NodeParts) -> Auth:
    settings = parts.settings
    return Auth(
        parts.database.pool,
        SigningKeys.first_signs(parts.jwt_keys),
        providers=oauth_providers(settings),
        http=parts.http,
        # a link is handed out only when a bot runs to answer it
        bot_username=settings.telegram_bot_username if settings.telegram_bot_tokens else "",
        public_url=parts.public_url,
        passwords=shared_passwords(settings.password_hashing),
        data_keys=parse_jwt_keys(settings.data_keys, "SPLITGO_DATA_KEYS")
        if settings.data_keys
        else None,
    )


register(
    ActorSpec(
        name="auth",
        actor_type=Auth,
        build=build_auth,
        messages=auth_messages,
        # reads are database round trips, one at a time per shard: shards are concurrency
        shards=16,
        key=auth_key,
    )
)


def payment_providers(parts: NodeParts) -> dict[str, PaymentProvider]:
    """The configured provider first (it takes the top-ups). The sandbox exists only when it
    is the provider: its checkout page would otherwise hand out free money."""
    settings = parts.settings
    if settings.payment_provider == "stripe":
        if not settings.stripe_api_key or not settings.stripe_webhook_secret:
            raise ConfigError(
                "SPLITGO_PAYMENT_PROVIDER=stripe needs SPLITGO_STRIPE_API_KEY and "
                "SPLITGO_STRIPE_WEBHOOK_SECRET"
            )
        return {
            "stripe": StripeProvider(
                settings.stripe_api_key,
                settings.stripe_webhook_secret,
                base_url=settings.stripe_base_url,
                http=parts.http,
            )
        }
    secret = settings.sandbox_secret or kept_secret(
        settings, "sandbox-secret", lambda: secrets.token_urlsafe(32)
    )
    return {"sandbox": SandboxProvider(secret.encode(), parts.public_url)}


def build_payments(parts: NodeParts) -> Payments:
    return Payments(
        parts.database.pool,
        providers=payment_providers(parts),
        public_url=parts.public_url,
    )


register(
    ActorSpec(
        name="payments",
        actor_type=Payments,
        build=build_payments,
        messages=payments_messages,
        # few shards, big batches: each shard commits a batch of transfers in one
        # transaction, and 2 shards batch ~70 transfers at once where 8 batch ~4 (make bench)
        shards=2,
        key=payments_key,
        mailbox_size=4096,
    )
)


register(
    ActorSpec(
        name="splits",
        actor_type=Splits,
        build=lambda parts: Splits(parts.database.pool),
        messages=splits_messages,
        # one group's messages in order on one shard; groups spread over the shards
        shards=8,
        key=splits_key,
    )
)


def build_rates(parts: NodeParts) -> Rates:
    """One shard, so one single-flight feed per node: concurrent asks share one fetch and
    a failure stops requests for a minute."""
    feed = SingleFlightFeed(EcbFeed(parts.http, parts.settings.rates_url))
    return Rates(parts.database.pool, feed)


register(
    ActorSpec(
        name=RATES,
        actor_type=Rates,
        build=build_rates,
        messages=rates_messages,
        # one shard: an answer is one indexed read; the fetch is shared per node
        shards=1,
        key=rates_key,
    )
)


def file_storage(parts: NodeParts) -> Storage:
    """S3 when SPLITGO_S3_ENDPOINT is set; else a folder (SPLITGO_FILES_DIR, DATA_DIR/files)."""
    settings = parts.settings
    if not settings.s3_endpoint:
        return LocalFolderStorage(settings.files_dir or settings.data_dir / "files")
    needed = (
        ("SPLITGO_S3_BUCKET", settings.s3_bucket),
        ("SPLITGO_S3_ACCESS_KEY", settings.s3_access_key),
        ("SPLITGO_S3_SECRET_KEY", settings.s3_secret_key),
    )
    missing = [name for name, value in needed if not value]
    if missing:
        raise ConfigError(f"SPLITGO_S3_ENDPOINT needs {', '.join(missing)}")
    try:
        return S3Storage(
            parts.http,
            settings.s3_endpoint,
            settings.s3_bucket or "",
            settings.s3_region,
            settings.s3_access_key or "",
            settings.s3_secret_key or "",
        )
    except ValueError as error:
        raise ConfigError(f"S3: {error}") from None


register(
    ActorSpec(
        name=FILES,
        actor_type=Files,
        build=lambda parts: Files(parts.database.pool, file_storage(parts)),
        messages=files_messages,
        shards=4,
        key=files_key,
        mailbox_size=32,  # a message carries up to 10 MiB
    )
)


register(
    ActorSpec(
        name=CHAT,
        actor_type=Chat,
        build=lambda parts: Chat(parts.database.pool, push=parts.channels.push_many),
        messages=chat_messages,
        # one conversation's messages in order on one shard; conversations spread
        shards=4,
        key=chat_key,
    )
)


def rides_spec(regions: RegionMap) -> ActorSpec:
    """Without regions one shard: the live map of drivers and every dispatch decision in
    one place. With SPLITGO_RIDE_REGIONS (issue 20) a shard per region and two desks, so
    nodes lease different regions."""
    return ActorSpec(
        name="rides",
        actor_type=Rides,
        build=lambda parts: Rides(
            parts.database.pool,
            offer_timeout=parts.settings.rides_offer_timeout,
            table=FareTable(max_trip_m=parts.settings.rides_max_trip_km * 1_000),
            regions=regions,
        ),
        messages=rides_messages,
        shards=regions.shards,
        key=regions.key if regions.regional else rides_key,
        mailbox_size=8192,
    )


def ride_regions(settings: Settings) -> RegionMap:
    try:
        return parse_ride_regions(settings.ride_regions, settings.ride_border_m)
    except RegionsError as error:
        raise ConfigError(f"SPLITGO_RIDE_REGIONS: {error}") from None


register(rides_spec(parse_ride_regions("")))
