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
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import structlog

from actors.notifications.channels import DeliveryFailed
from actors.notifications.channels.http_answers import ProviderSession, accepted, http_answer

log = structlog.get_logger("actors.notifications.sms")

# How much of the provider's body is read at all (the answer keeps less of it).
_MAX_BODY_BYTES = 64 * 1024


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
        self._http = ProviderSession(http)
        self._timeout = timeout
        # the URL may carry a provider key in its query; answers show it without one
        self._safe_url = _without_query(url)

    async def send(self, phone: str, text: str) -> str:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.get().post(
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
        return accepted(http_answer("webhook", response, raw), response, SmsDeliveryFailed)

    async def close(self) -> None:
        """Close the HTTP session, if this adapter made it."""
        await self._http.close()

    def _scrub(self, text: str) -> str:
        text = text.replace(self.url, self._safe_url)
        return text.replace(self._token, "***") if self._token else text


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    # no query, fragment or user:password: any of them may hold a credential
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
