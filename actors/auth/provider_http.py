"""One HTTP call to a sign-in provider, bounded in time and size, failing as `OAuthFailed`.

Shared by the OAuth flow (`oauth`: token, userinfo, GitHub API) and the signing-key cache
(`id_tokens`: the provider's JWKS), so that every call to a provider fails the same way.
"""

from __future__ import annotations

from typing import Any

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


async def call(provider: str, what: str, request: Any) -> tuple[int, bytes]:
    """Run one HTTP request to the provider named `provider`: its status and (bounded) body.

    `request` is the un-awaited aiohttp request context manager, so that connection errors
    and timeouts from every call end here, as `OAuthFailed`.
    """
    try:
        async with request as response:
            body = await response.content.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
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
