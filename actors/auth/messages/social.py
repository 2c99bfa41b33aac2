"""Signing in with a social login provider (OAuth 2.0 / OpenID Connect): where to send
the browser, what it brings back, and the errors of it."""

from __future__ import annotations

from typing import ClassVar

from actors.auth.messages.fields import AuthInput, Provider, UrlText
from actors.runtime import DomainError, Message


class OAuthRedirect(Message, frozen=True):
    """Where to send the browser to sign in at the provider."""

    url: str


class StartOAuth(AuthInput, frozen=True):
    provider: Provider
    redirect_uri: UrlText


class FinishOAuth(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("code", "state")
    provider: Provider
    code: UrlText
    state: UrlText
    redirect_uri: UrlText
    ip: str | None = None
    user_agent: str | None = None


class UnknownProvider(DomainError):
    """No social login provider of that name is configured."""

    code = "unknown_provider"
    category = "not_found"


class OAuthFailed(DomainError):
    """The provider refused, the state did not match, or its answer made no sense."""

    code = "oauth_failed"
    category = "invalid"
