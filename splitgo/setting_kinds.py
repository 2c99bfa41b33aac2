"""The kinds of setting: how a setting's text becomes its value, and what it accepts.

Each kind parses the raw text of an environment variable or flag (already stripped) and
raises `ConfigError` naming that variable or flag when the text cannot be used. `accepts`
says in a few words what a kind takes beyond its help text (choices, bounds), for the
README's configuration table and `--help`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable or flag."""

    code = "config_error"


class Kind(Protocol):
    """How the text of one setting becomes its value."""

    def parse(self, raw: str, name: str, field: str) -> object:
        """`raw` from variable or flag `name` as the value of Settings.`field`."""
        ...

    def accepts(self) -> str:
        """What it takes beyond the help text ("" when the help says it all)."""
        ...


def either(options: Sequence[str]) -> str:
    """ "a", "a or b", "a, b or c": how the error messages list choices."""
    if len(options) < 2:
        return "".join(options)
    return f"{', '.join(options[:-1])} or {options[-1]}"


@dataclass(frozen=True, slots=True)
class Text:
    """Free text; `if_empty` makes an empty value mean something (None, a generated name),
    `starts` names the prefixes it must start with (`what` names the thing in the error)."""

    if_empty: Callable[[], object] | None = None
    starts: tuple[str, ...] = ()
    what: str = ""
    check: Callable[[str, str], object] | None = None  # raises ConfigError

    def parse(self, raw: str, name: str, field: str) -> object:
        if not raw and self.if_empty is not None:
            return self.if_empty()
        if self.starts and not raw.startswith(self.starts):
            raise ConfigError(f"{name}={raw!r}: {self.what} starts with {either(self.starts)}")
        if self.check is not None:
            self.check(raw, name)
        return raw

    def accepts(self) -> str:
        return ""


def _none() -> None:
    return None


def optional(
    *,
    starts: tuple[str, ...] = (),
    what: str = "",
    check: Callable[[str, str], object] | None = None,
) -> Text:
    """Text where an empty value is the same as none at all."""
    return Text(if_empty=_none, starts=starts, what=what, check=check)


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a few words; `what` names the setting in the error ("the transport")."""

    options: tuple[str, ...]
    what: str
    lower: bool = False  # accept any case, keep lower case

    def parse(self, raw: str, name: str, field: str) -> object:
        value = raw.lower() if self.lower else raw
        if value not in self.options:
            raise ConfigError(f"{name}={raw!r}: {self.what} is {either(self.options)}")
        return value

    def accepts(self) -> str:
        return either([f"`{option}`" for option in self.options])


@dataclass(frozen=True, slots=True)
class Integer:
    """A whole number from `low` to `high`."""

    low: int
    high: int

    def parse(self, raw: str, name: str, field: str) -> object:
        try:
            value = int(raw)
        except ValueError:
            value = self.low - 1
        if not self.low <= value <= self.high:
            raise ConfigError(f"{name}={raw!r} is not a valid number for {field}")
        return value

    def accepts(self) -> str:
        return f"{self.low} to {self.high:,}"


@dataclass(frozen=True, slots=True)
class Seconds:
    """A duration in seconds, more than zero and at most `high`."""

    high: float = 3600.0

    def parse(self, raw: str, name: str, field: str) -> object:
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if not 0 < value <= self.high:
            raise ConfigError(f"{name}={raw!r} is not a valid number for {field}")
        return value

    def accepts(self) -> str:
        return f"above 0, at most {self.high:g}"


@dataclass(frozen=True, slots=True)
class Switch:
    """On or off: 1/true/yes or 0/false/no (empty is off)."""

    def parse(self, raw: str, name: str, field: str) -> object:
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no", ""):
            raise ConfigError(f"{name}={raw!r}: use 1 or 0")
        return raw.lower() in ("1", "true", "yes")

    def accepts(self) -> str:
        return "`1` or `0`"


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder path."""

    def parse(self, raw: str, name: str, field: str) -> object:
        return Path(raw)

    def accepts(self) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class Listed:
    """Comma-separated items, each checked by `split` (plain words by default)."""

    split: Callable[[str, str], object] | None = None

    def parse(self, raw: str, name: str, field: str) -> object:
        if self.split is not None:
            return self.split(raw, name)
        return words(raw)

    def accepts(self) -> str:
        return ""


def words(raw: str) -> tuple[str, ...]:
    """`a, b,,c` into ("a", "b", "c")."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def actor_names(raw: str, name: str) -> tuple[str, ...] | None:
    """Actor types to host; none named, or `all`, is None: every actor type."""
    names = words(raw)
    return None if names in ((), ("all",)) else names


def one_word(raw: str, name: str) -> None:
    """A Redis key prefix: one word without ':', spaces or braces (a brace would change
    which part of a key a Redis Cluster hashes: each shard's keys carry a `{...}` tag)."""
    if not raw or any(c in raw for c in ": {}"):
        raise ConfigError(f"{name}={raw!r}: a key prefix is one word without ':', spaces or braces")


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


def parse_jwt_keys(raw: str, name: str = "SPLITGO_JWT_KEYS") -> dict[str, bytes]:
    """`kid:secret,kid:secret` into {kid: secret}; the first is the signing key."""
    keys: dict[str, bytes] = {}
    for part in raw.split(","):
        kid, _, secret = part.strip().partition(":")
        if not kid or len(secret) < 32:
            raise ConfigError(f"{name}: each key is kid:secret with a secret of 32+ characters")
        keys[kid] = secret.encode()
    return keys


# ── social login by discovery (issue 19) ──

# A provider's name is part of its sign-in URLs (/sign-in/<name>) and of its accounts' keys.
PROVIDER_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
BUILT_IN_PROVIDERS = ("google", "github", "facebook")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _named_items(raw: str, name: str, shape: str) -> list[tuple[str, str]]:
    """`a=x,b=y` into [("a", "x"), ("b", "y")], each name a valid, unrepeated provider
    name. Errors name the provider, never the value (it may be a secret)."""
    items: list[tuple[str, str]] = []
    for part in raw.split(","):
        text = part.strip()
        if not text:
            continue
        key, sep, value = (piece.strip() for piece in text.partition("="))
        if not sep or not key or not value:
            raise ConfigError(f"{name}: each item is {shape}")
        if not PROVIDER_NAME.fullmatch(key):
            raise ConfigError(
                f"{name}: {key!r} is not a provider name (a lower-case letter, then up to 31 "
                "lower-case letters, digits or '-')"
            )
        if key in BUILT_IN_PROVIDERS:
            raise ConfigError(
                f"{name}: {key!r} is built in; set SPLITGO_OAUTH_{key.upper()}_* instead"
            )
        if any(key == seen for seen, _ in items):
            raise ConfigError(f"{name}: {key!r} is named twice")
        items.append((key, value))
    return items


def parse_oidc_issuers(
    raw: str, name: str = "SPLITGO_OIDC_PROVIDERS"
) -> tuple[tuple[str, str], ...]:
    """`name=https://issuer,...` into ((name, issuer), ...). The issuer is kept exactly as
    written: its discovery document must name the very same string. Plain http only for
    this machine (a provider in tests)."""
    issuers = _named_items(raw, name, "name=https://issuer")
    for key, issuer in issuers:
        parts = urlsplit(issuer)
        local = parts.hostname in LOOPBACK_HOSTS
        if (
            parts.scheme not in (("https", "http") if local else ("https",))
            or not parts.hostname
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
        ):
            raise ConfigError(
                f"{name}: {key}'s issuer {issuer!r} is not an https URL without query or "
                "fragment (plain http only for localhost)"
            )
    return tuple(issuers)


def parse_oidc_clients(
    raw: str, name: str = "SPLITGO_OIDC_CLIENTS"
) -> tuple[tuple[str, str, str], ...]:
    """`name=client_id:client_secret,...` into ((name, client id, secret), ...); the client
    id ends at the first ':' (the secret may hold more)."""
    clients = []
    for key, value in _named_items(raw, name, "name=client_id:client_secret"):
        client_id, _, secret = value.partition(":")
        if not client_id or not secret:
            raise ConfigError(f"{name}: {key}'s client is client_id:client_secret")
        clients.append((key, client_id, secret))
    return tuple(clients)


def parse_oidc_names(
    raw: str, name: str = "SPLITGO_OIDC_DISPLAY_NAMES"
) -> tuple[tuple[str, str], ...]:
    """`name=Shown name,...` into ((name, shown), ...): how the sign-in buttons name them."""
    shown = _named_items(raw, name, "name=Shown name")
    for key, words in shown:
        if len(words) > 40:
            raise ConfigError(f"{name}: {key}'s shown name is longer than 40 characters")
    return tuple(shown)
