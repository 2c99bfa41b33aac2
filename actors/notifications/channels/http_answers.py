"""What the channels that post to a provider over HTTP (the SMS webhook, Web Push) share:
the session they post through, the provider's answer in words, and whether another try
can get past a refusal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from actors.notifications.channels import DeliveryFailed

# How much of the provider's body goes into the answer.
ANSWER_BODY_CHARS = 200
# Statuses a later try can get past: the provider timed out waiting, or asks us to slow down.
RETRYABLE_4XX = frozenset({408, 429})


class ProviderSession:
    """A channel's HTTP session: the one passed in (its caller's to close), or one made
    on first use and closed with the channel."""

    def __init__(self, http: aiohttp.ClientSession | None) -> None:
        self._http = http
        self._owned = http is None

    def get(self) -> aiohttp.ClientSession:
        """The session to post through."""
        # made on first use: a ClientSession belongs to the running event loop
        if self._http is None or (self._owned and self._http.closed):
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self) -> None:
        """Close the session, if it was made here."""
        if self._owned and self._http is not None and not self._http.closed:
            await self._http.close()


def http_answer(label: str, response: aiohttp.ClientResponse, raw: bytes) -> str:
    """The answer as stored with the attempt: `label`, the status and the start of the
    body, on one line."""
    body = " ".join(raw.decode(response.charset or "utf-8", errors="replace").split())
    return f"{label} {response.status} {body[:ANSWER_BODY_CHARS]}".rstrip()


def accepted(answer: str, response: aiohttp.ClientResponse, failure: type[DeliveryFailed]) -> str:
    """`answer` when the provider took it (2xx); otherwise raises `failure`: permanent for
    a 4xx no later try gets past, else retryable after the provider's Retry-After."""
    status = response.status
    if 200 <= status < 300:
        return answer
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        raise failure(answer, permanent=True)
    raise failure(answer, retry_after=retry_after_seconds(response.headers))


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
