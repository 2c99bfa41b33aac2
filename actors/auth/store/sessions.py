"""The auth store's sessions and their refresh tokens (tables auth_sessions,
refresh_tokens): each session is one family of rotated refresh tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from actors.runtime import Executor, at


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session as the user's list of sessions shows it."""

    id: str
    user_id: str
    user_agent: str | None
    created_at: datetime
    last_used_at: datetime
    # when its refresh tokens stop working: a list kept in memory filters by it at each read
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshRow:
    """A refresh token, its session, and the session's user."""

    session_id: str
    user_id: str
    expires_at: float
    used: bool
    session_revoked: bool
    # how the session was signed in (RFC 8176 amr): its refreshed access tokens say it too
    amr: tuple[str, ...] = ()


async def open_session(
    db: Executor,
    *,
    session_id: str,
    user_id: str,
    user_agent: str | None,
    ip: str | None,
    token_hash: bytes,
    now: float,
    expires_at: float,
    amr: Sequence[str] = (),
) -> None:
    """A new session with its first refresh token; `amr` says how it was signed in."""
    await db.execute(
        """
        INSERT INTO auth_sessions (id, user_id, user_agent, ip, created_at, last_used_at,
                                   expires_at, amr)
        VALUES ($1, $2, $3, $4, $5, $5, $6, $7::text[])
        """,
        session_id,
        user_id,
        user_agent,
        ip,
        at(now),
        at(expires_at),
        list(amr),
    )
    await add_refresh_token(db, token_hash, session_id, now, expires_at)


async def add_refresh_token(
    db: Executor, token_hash: bytes, session_id: str, now: float, expires_at: float
) -> None:
    await db.execute(
        "INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        token_hash,
        session_id,
        at(now),
        at(expires_at),
    )


async def refresh_token_for_update(db: Executor, token_hash: bytes) -> RefreshRow | None:
    """The token and its session, both locked until the transaction ends (one rotation at
    a time per session, even across shards)."""
    row = await db.fetchrow(
        """
        SELECT t.session_id, t.expires_at, t.used_at IS NOT NULL AS used,
               s.user_id, s.revoked_at IS NOT NULL AS session_revoked, s.amr
        FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id
        WHERE t.hash = $1
        FOR UPDATE OF t, s
        """,
        token_hash,
    )
    if row is None:
        return None
    return RefreshRow(
        session_id=row["session_id"],
        user_id=row["user_id"],
        expires_at=row["expires_at"].timestamp(),
        used=row["used"],
        session_revoked=row["session_revoked"],
        amr=tuple(row["amr"]),
    )


async def rotate_refresh_token(
    db: Executor,
    *,
    old_hash: bytes,
    new_hash: bytes,
    session_id: str,
    now: float,
    expires_at: float,
    user_agent: str | None,
    ip: str | None,
) -> None:
    """Mark the presented token used, issue its successor, and note the session's use."""
    await db.execute("UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1", old_hash, at(now))
    await add_refresh_token(db, new_hash, session_id, now, expires_at)
    await db.execute(
        """
        UPDATE auth_sessions SET last_used_at = $2, expires_at = $3,
            user_agent = coalesce($4, user_agent), ip = coalesce($5, ip)
        WHERE id = $1
        """,
        session_id,
        at(now),
        at(expires_at),
        user_agent,
        ip,
    )


async def session_of_refresh_token(db: Executor, token_hash: bytes) -> tuple[str, str] | None:
    """(session id, user id) of any refresh token ever issued and not yet pruned."""
    row = await db.fetchrow(
        "SELECT s.id, s.user_id FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id"
        " WHERE t.hash = $1",
        token_hash,
    )
    return None if row is None else (row["id"], row["user_id"])


async def revoke_session(db: Executor, session_id: str, now: float, reason: str) -> bool:
    """True when this revoked it (it was live)."""
    status = await db.execute(
        "UPDATE auth_sessions SET revoked_at = $2, revoked_reason = $3"
        " WHERE id = $1 AND revoked_at IS NULL",
        session_id,
        at(now),
        reason,
    )
    return status.endswith(" 1")


async def revoke_user_session(db: Executor, user_id: str, session_id: str, now: float) -> bool:
    """Revoke one live session of this user; False when it is not theirs, or not live."""
    status = await db.execute(
        "UPDATE auth_sessions SET revoked_at = $3, revoked_reason = 'revoked'"
        " WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL AND expires_at > $3",
        user_id,
        session_id,
        at(now),
    )
    return status.endswith(" 1")


async def revoke_user_sessions(db: Executor, user_id: str, now: float, reason: str) -> list[str]:
    """Revoke every live session of this user; the ids of those it revoked."""
    rows = await db.fetch(
        "UPDATE auth_sessions SET revoked_at = $2, revoked_reason = $3"
        " WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
        user_id,
        at(now),
        reason,
    )
    return [row["id"] for row in rows]


async def revoke_other_sessions(
    db: Executor, user_id: str, keep: str, now: float, reason: str
) -> list[str]:
    """Revoke every live session of this user but `keep`; the ids of those it revoked."""
    rows = await db.fetch(
        "UPDATE auth_sessions SET revoked_at = $2, revoked_reason = $3"
        " WHERE user_id = $1 AND revoked_at IS NULL AND id <> $4 RETURNING id",
        user_id,
        at(now),
        reason,
        keep,
    )
    return [row["id"] for row in rows]


async def revoked_since(db: Executor, since: float, limit: int) -> list[tuple[str, float]]:
    """(session id, revoked at) of the sessions revoked after `since`, newest first, at
    most `limit` (the partial index auth_sessions_revoked_at serves it)."""
    rows = await db.fetch(
        "SELECT id, revoked_at FROM auth_sessions"
        " WHERE revoked_at IS NOT NULL AND revoked_at > $1"
        " ORDER BY revoked_at DESC, id LIMIT $2",
        at(since),
        limit,
    )
    return [(row["id"], row["revoked_at"].timestamp()) for row in rows]


# the most sessions a list shows
LIVE_SESSIONS_MAX = 200


async def live_sessions(
    db: Executor, user_id: str, now: float, limit: int = LIVE_SESSIONS_MAX
) -> list[SessionRow]:
    """The user's sessions that still work, most recently used first (at most `limit`)."""
    rows = await db.fetch(
        """
        SELECT id, user_id, user_agent, created_at, last_used_at, expires_at FROM auth_sessions
        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
        ORDER BY last_used_at DESC, id
        LIMIT $3
        """,
        user_id,
        at(now),
        limit,
    )
    return [
        SessionRow(
            id=row["id"],
            user_id=row["user_id"],
            user_agent=row["user_agent"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            expires_at=row["expires_at"],
        )
        for row in rows
    ]
