"""One HTTP call to a sign-in provider, bounded in time and size, failing as `OAuthFailed`.

Shared by the OAuth flow (`oauth`: token, userinfo; `github`, `facebook`: their APIs), the
discovery cache (`discovery`) and the signing-key cache (`id_tokens`), so that every call to
a provider fails the same way. `get_json` and `refuse` are the common reading of answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

import aiohttp
import structlog

from actors.auth.messages import OAuthFailed

# Social login logs under one name, whichever of its modules speaks.
log = structlog.get_logger("actors.auth.oauth")

# Every call to a provider gives up after this many seconds (read at call time, so tests can
# shorten it).
HTTP_TIMEOUT_SECONDS = 10.0
# Provider answers are small JSON documents; anything larger is not an answer we want to parse.
MAX_RESPONSE_BYTES = 1024 * 1024


USER_AGENT = "splitgo-oauth"


async def call(
    provider: str, what: str, request: Any, *, limit: int | None = None
) -> tuple[int, bytes]:
    """Run one HTTP request to the provider named `provider`: its status and (bounded) body.

    `request` is the un-awaited aiohttp request context manager, so that connection errors
    and timeouts from every call end here, as `OAuthFailed`. `limit` lowers the size bound.
    """
    most = MAX_RESPONSE_BYTES if limit is None else min(limit, MAX_RESPONSE_BYTES)
    try:
        async with request as response:
            body = await response.content.read(most + 1)
            if len(body) > most:
                log.warning("oauth answer too large", provider=provider, step=what)
                raise OAuthFailed(f"{provider} answered the {what} request with too much")
            return response.status, body
    except TimeoutError:
        log.warning("oauth provider timed out", provider=provider, step=what)
        raise OAuthFailed(f"{provider} did not answer the {what} request in time") from None
    except aiohttp.ClientError as exc:
        log.warning(
            "oauth provider unreachable",
            provider=provider,
            step=what,
            error=type(exc).__name__,
        )
        raise OAuthFailed(f"could not reach {provider} for the {what} request") from None


def timeout() -> aiohttp.ClientTimeout:
    """The timeout for one provider call, from HTTP_TIMEOUT_SECONDS as it is now."""
    return aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS)


async def get_json(
    provider: str,
    what: str,
    url: str,
    *,
    http: aiohttp.ClientSession,
    token: str,
    params: Mapping[str, str] | None = None,
) -> Any:
    """GET a JSON document with the access token as bearer; `OAuthFailed` on any failure."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,  # GitHub's API refuses requests without one
    }
    request = http.get(url, headers=headers, params=params, timeout=timeout())
    status, body = await call(provider, what, request)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if status >= 300 or document is None:
        refuse(provider, what, status, document if isinstance(document, dict) else None)
    return document


def refuse(provider: str, what: str, status: int, answer: Mapping[str, Any] | None) -> NoReturn:
    """Raise `OAuthFailed` naming the provider's error code (never its full body, which could
    echo what we sent)."""
    raw_error = answer.get("error") if answer is not None else None
    description = answer.get("error_description") if answer is not None else None
    if isinstance(raw_error, Mapping):
        # The Graph API (Facebook) answers {"error": {"message", "type", "code"}}.
        description = raw_error.get("message")
        raw_error = raw_error.get("type") or raw_error.get("code") or "error"
    error = safe_code(raw_error)
    log.warning(
        "oauth provider refused",
        provider=provider,
        step=what,
        status=status,
        error=error,
        description=str(description)[:200] if description is not None else None,
    )
    if error:
        raise OAuthFailed(
            f"{provider} refused the {what} request ({error})",
            details={"provider": provider, "error": error},
        )
    raise OAuthFailed(
        f"{provider} answered the {what} request with HTTP {status}",
        details={"provider": provider, "status": status},
    )


def safe_code(value: Any) -> str | None:
    """An OAuth error code fit to show: short, and only the characters codes are made of."""
    if value is None:
        return None
    text = "".join(c for c in str(value) if c.isalnum() or c in "_-.")[:64]
    return text or "error"
