"""The SMS channel: a port (`SmsChannel`) and two adapters.

- `LogSms` only logs that a text would go out (to a masked number): the development
  default, so nothing needs an SMS provider to run.
- `WebhookSms` POSTs `{"to": phone, "text": text}` as JSON to a URL, with an optional
  bearer token: one adapter for any provider, or for a small relay in front of one.

Each `send` is one try; retries are the actor's business. A failure raises
`SmsDeliveryFailed` with the provider's answer. Nothing here logs a text's content (it may
hold a one-time code) or a whole phone number.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import structlog

from actors.notifications.channels import DeliveryFailed

log = structlog.get_logger("actors.notifications.sms")

# How much of the provider's body goes into the answer, and how much of it is read at all.
ANSWER_BODY_CHARS = 200
_MAX_BODY_BYTES = 64 * 1024
# Statuses a later try can get past: the provider timed out waiting, or asks us to slow down.
_RETRYABLE_4XX = frozenset({408, 429})


class SmsDeliveryFailed(DeliveryFailed):
    """The text was not accepted; `answer` is the provider's reply or the local error."""

    code = "sms_delivery_failed"


class SmsChannel(Protocol):
    """The port: send one text to one phone number, once; return the provider's answer."""

    async def send(self, phone: str, text: str) -> str:
        """Raises SmsDeliveryFailed when the text was not accepted."""
        ...


def mask_phone(phone: str) -> str:
    """The number for logs: every digit but the last three starred (`+*********678`)."""
    digits = sum(c.isdigit() for c in phone)
    shown, masked = 0, []
    for c in reversed(phone.strip()):
        if c.isdigit():
            shown += 1
            masked.append(c if shown <= 3 else "*")
        elif c == "+":
            masked.append(c)
    return "".join(reversed(masked)) if digits else "?"


class LogSms:
    """Logs each text as `sms_logged` (masked number, length) instead of sending it.

    `sent` keeps every (phone, text) in memory, for tests and a development shell.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, phone: str, text: str) -> str:
        self.sent.append((phone, text))
        log.info("sms_logged", to=mask_phone(phone), length=len(text))
        return "logged"

    async def close(self) -> None:
        """Nothing to close; here so that either adapter can be closed alike."""


class WebhookSms:
    """POSTs each text as JSON to `url`; 2xx is accepted.

    429, 408, 5xx and network errors are retryable (a Retry-After header sets the wait);
    any other 4xx is permanent (the provider refused this text or number). Redirects are
    not followed: a POST redirected would be resent as a GET, and a webhook that moved is a
    setting to fix.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        http: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"SPLITGO_SMS_WEBHOOK_URL={_without_query(url)!r}: not an http(s) URL")
        if timeout <= 0:
            raise ValueError("the SMS webhook timeout must be positive")
        self.url = url
        self._token = token or None
        self._http = http
        # a session made here is ours to close; one passed in belongs to the caller
        self._owns_http = http is None
        self._timeout = timeout
        # the URL may carry a provider key in its query; answers show it without one
        self._safe_url = _without_query(url)

    async def send(self, phone: str, text: str) -> str:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._session().post(
                    self.url,
                    json={"to": phone, "text": text},
                    headers=headers,
                    allow_redirects=False,
                )
                async with response:
                    raw = b""
                    # read() gives what has arrived so far: gather up to the bound
                    while len(raw) < _MAX_BODY_BYTES and (
                        chunk := await response.content.read(_MAX_BODY_BYTES - len(raw))
                    ):
                        raw += chunk
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            # connection refused, DNS, TLS, timeouts: all worth another try
            raise SmsDeliveryFailed(
                self._scrub(f"webhook {type(error).__name__}: {error}")
            ) from None
        status = response.status
        body = " ".join(raw.decode(response.charset or "utf-8", errors="replace").split())
        answer = f"webhook {status} {body[:ANSWER_BODY_CHARS]}".rstrip()
        if 200 <= status < 300:
            return answer
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            raise SmsDeliveryFailed(answer, permanent=True)
        raise SmsDeliveryFailed(answer, retry_after=retry_after_seconds(response.headers))

    async def close(self) -> None:
        """Close the HTTP session, if this adapter made it."""
        if self._owns_http and self._http is not None and not self._http.closed:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        # made on first use: a ClientSession belongs to the running event loop
        if self._http is None or (self._owns_http and self._http.closed):
            self._http = aiohttp.ClientSession()
        return self._http

    def _scrub(self, text: str) -> str:
        text = text.replace(self.url, self._safe_url)
        return text.replace(self._token, "***") if self._token else text


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date), or None."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    # no query, fragment or user:password: any of them may hold a credential
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
