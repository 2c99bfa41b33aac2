"""Signing in with a password, refreshing and signing out, a user's sessions, and the
revoked sessions every edge refuses the access tokens of."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from actors.auth.messages.fields import EPOCH_MAX, AuthInput, EmailText, Password, TokenText
from actors.runtime import Message
from actors.runtime.bounds import Id

REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
# the most revoked sessions one ListRevokedSessions answers with
REVOKED_SESSIONS_MAX = 100_000


class TokenPair(Message, frozen=True):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class SessionView(Message, frozen=True):
    id: str
    created_at: str
    last_used_at: str
    user_agent: str | None = None


class SessionList(Message, frozen=True):
    items: list[SessionView]


class RevokedSession(Message, frozen=True):
    """A revoked session, and when (epoch seconds) its last access token has expired."""

    session_id: str
    expires_at: float


class RevokedSessions(Message, frozen=True):
    """The sessions revoked lately, newest first; `truncated`: older ones were left out."""

    items: list[RevokedSession]
    truncated: bool = False


class Login(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    email: EmailText
    password: Password
    ip: str | None = None
    user_agent: str | None = None


class Refresh(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("refresh_token",)
    refresh_token: TokenText
    ip: str | None = None
    user_agent: str | None = None


class Logout(AuthInput, frozen=True):
    secret_fields: ClassVar[tuple[str, ...]] = ("refresh_token",)
    refresh_token: TokenText


class ListSessions(AuthInput, frozen=True):
    user_id: Id


class RevokeSession(AuthInput, frozen=True):
    user_id: Id
    session_id: Id


class ListRevokedSessions(AuthInput, frozen=True):
    """The sessions revoked since `since` (epoch seconds), at most `limit`, newest first:
    what an HTTP edge loads at start and after a reconnect. Replies RevokedSessions."""

    since: Annotated[float, msgspec.Meta(ge=-EPOCH_MAX, le=EPOCH_MAX)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=REVOKED_SESSIONS_MAX)] = REVOKED_SESSIONS_MAX


class SessionsRevoked(Message, frozen=True):
    """These sessions of the user ended (logout, revoked, password reset, refresh-token
    reuse, an email claimed): every node's edge refuses their access tokens until
    `expires_at` (epoch seconds), when the last of them has expired anyway."""

    user_id: str
    session_ids: list[str]
    reason: str
    expires_at: float


class ForgetCachedSessions(AuthInput, frozen=True):
    """A user's sessions changed on a shard that does not own the user (a sign-in by email,
    a refresh or sign-out by token, a reset by link): the owner drops the sessions it keeps
    of them. Told directly before the changing handler replies, and through the outbox."""

    user_id: Id
