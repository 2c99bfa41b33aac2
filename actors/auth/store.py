"""Every SQL statement of the auth actor, over its own tables (schema.sql's auth section).

Each function takes what runs the statement: the pool (one statement, autocommit) or an
open `Transaction` (several statements that commit together). Times are passed in, never
taken from the database's clock, so the actor's clock is the only one (and tests move it).
Single-use tokens are consumed with one conditional UPDATE, so two shards racing for the
same token cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import msgspec

from actors.auth.limits import Lockout

Purpose = Literal["verify_email", "reset_password", "telegram_link", "oauth_state"]


class Executor(Protocol):
    """An asyncpg pool or connection, or a runtime Transaction."""

    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


def at(seconds: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (what asyncpg takes for timestamptz)."""
    return datetime.fromtimestamp(seconds, UTC)


def epoch(moment: datetime) -> float:
    return moment.timestamp()


# ── users ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    email: str
    name: str
    password_hash: str | None
    email_verified: bool
    phone: str | None
    phone_verified: bool
    roles: tuple[str, ...]
    telegram_chat_id: int | None
    created_at: datetime


_USER = (
    "id, email, name, password_hash, email_verified, phone, phone_verified, roles,"
    " telegram_chat_id, created_at"
)


def _user(row: Any) -> UserRow | None:
    if row is None:
        return None
    return UserRow(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        password_hash=row["password_hash"],
        email_verified=row["email_verified"],
        phone=row["phone"],
        phone_verified=row["phone_verified"],
        roles=tuple(row["roles"]),
        telegram_chat_id=row["telegram_chat_id"],
        created_at=row["created_at"],
    )


async def user_by_id(db: Executor, user_id: str, *, lock: bool = False) -> UserRow | None:
    lock_clause = " FOR UPDATE" if lock else ""
    return _user(
        await db.fetchrow(f"SELECT {_USER} FROM users WHERE id = $1{lock_clause}", user_id)
    )


async def user_by_email(db: Executor, email: str) -> UserRow | None:
    return _user(await db.fetchrow(f"SELECT {_USER} FROM users WHERE email = $1", email))


async def user_by_chat(db: Executor, chat_id: int) -> UserRow | None:
    return _user(
        await db.fetchrow(f"SELECT {_USER} FROM users WHERE telegram_chat_id = $1", chat_id)
    )


async def insert_user(
    db: Executor,
    *,
    user_id: str,
    email: str,
    name: str,
    password_hash: str | None,
    email_verified: bool,
    roles: Sequence[str],
    now: float,
) -> UserRow | None:
    """The new user, or None when the email is taken."""
    return _user(
        await db.fetchrow(
            f"""
            INSERT INTO users (id, email, name, password_hash, email_verified, roles,
                               created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
            ON CONFLICT (email) DO NOTHING
            RETURNING {_USER}
            """,
            user_id,
            email,
            name,
            password_hash,
            email_verified,
            list(roles),
            at(now),
        )
    )


async def set_password(
    db: Executor, user_id: str, password_hash: str | None, now: float, *, replacing: str | None
) -> bool:
    """Store a new hash; with `replacing`, only if the stored one is still that (a rehash
    must not undo a reset that happened meanwhile)."""
    status = await db.execute(
        "UPDATE users SET password_hash = $2, updated_at = $3"
        " WHERE id = $1 AND ($4::text IS NULL OR password_hash = $4)",
        user_id,
        password_hash,
        at(now),
        replacing,
    )
    return status.endswith(" 1")


async def update_profile(
    db: Executor,
    user_id: str,
    now: float,
    *,
    name: str | None,
    phone: str | None,
    set_phone: bool,
) -> UserRow | None:
    """Change the name (when given) and the phone (when `set_phone`; None clears it). A new
    phone number is unverified."""
    return _user(
        await db.fetchrow(
            f"""
            UPDATE users SET
                name = coalesce($2, name),
                phone_verified = CASE WHEN $4 AND phone IS DISTINCT FROM $3 THEN false
                                      ELSE phone_verified END,
                phone = CASE WHEN $4 THEN $3 ELSE phone END,
                updated_at = $5
            WHERE id = $1
            RETURNING {_USER}
            """,
            user_id,
            name,
            phone,
            set_phone,
            at(now),
        )
    )


async def add_role(db: Executor, user_id: str, role: str, now: float) -> UserRow | None:
    return _user(
        await db.fetchrow(
            f"""
            UPDATE users SET
                roles = CASE WHEN $2 = ANY(roles) THEN roles ELSE array_append(roles, $2) END,
                updated_at = $3
            WHERE id = $1
            RETURNING {_USER}
            """,
            user_id,
            role,
            at(now),
        )
    )


async def mark_email_verified(db: Executor, user_id: str, email: str, now: float) -> bool:
    """True when this changed the user (verified now, not before)."""
    status = await db.execute(
        "UPDATE users SET email_verified = true, updated_at = $3"
        " WHERE id = $1 AND email = $2 AND NOT email_verified",
        user_id,
        email,
        at(now),
    )
    return status.endswith(" 1")


async def confirm_phone(db: Executor, user_id: str, phone: str, now: float) -> None:
    """Set the phone number as verified (its owner proved it, e.g. Telegram's own contact)."""
    await db.execute(
        "UPDATE users SET phone = $2, phone_verified = true, updated_at = $3 WHERE id = $1",
        user_id,
        phone,
        at(now),
    )


async def bind_telegram(db: Executor, user_id: str, chat_id: int, now: float) -> UserRow | None:
    """Link the chat to this user, taking it from any other account it was linked to."""
    await db.execute(
        "UPDATE users SET telegram_chat_id = NULL, updated_at = $3"
        " WHERE telegram_chat_id = $2 AND id <> $1",
        user_id,
        chat_id,
        at(now),
    )
    return _user(
        await db.fetchrow(
            f"UPDATE users SET telegram_chat_id = $2, updated_at = $3 WHERE id = $1"
            f" RETURNING {_USER}",
            user_id,
            chat_id,
            at(now),
        )
    )


async def secure_takeover(db: Executor, user_id: str, now: float) -> None:
    """The email's owner proved it through a provider on an account whose email was never
    verified: whoever registered it may not be them, so their password stops working."""
    await db.execute(
        "UPDATE users SET password_hash = NULL, email_verified = true, updated_at = $2"
        " WHERE id = $1",
        user_id,
        at(now),
    )


# ── social identities ──────────────────────────────────────────────────────────────────


async def identity_user(db: Executor, provider: str, subject: str) -> str | None:
    user_id: str | None = await db.fetchval(
        "SELECT user_id FROM oauth_identities WHERE provider = $1 AND subject = $2",
        provider,
        subject,
    )
    return user_id


async def link_identity(
    db: Executor, *, provider: str, subject: str, user_id: str, email: str | None, now: float
) -> None:
    await db.execute(
        """
        INSERT INTO oauth_identities (provider, subject, user_id, email, created_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (provider, subject) DO UPDATE SET email = EXCLUDED.email
        """,
        provider,
        subject,
        user_id,
        email,
        at(now),
    )


# ── sessions and refresh tokens ────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: str
    user_agent: str | None
    created_at: datetime
    last_used_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshRow:
    """A refresh token, its session, and the session's user."""

    session_id: str
    user_id: str
    expires_at: float
    used: bool
    session_revoked: bool


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
) -> None:
    """A new session with its first refresh token."""
    await db.execute(
        """
        INSERT INTO auth_sessions (id, user_id, user_agent, ip, created_at, last_used_at,
                                   expires_at)
        VALUES ($1, $2, $3, $4, $5, $5, $6)
        """,
        session_id,
        user_id,
        user_agent,
        ip,
        at(now),
        at(expires_at),
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
               s.user_id, s.revoked_at IS NOT NULL AS session_revoked
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
        expires_at=epoch(row["expires_at"]),
        used=row["used"],
        session_revoked=row["session_revoked"],
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


async def revoke_user_sessions(db: Executor, user_id: str, now: float, reason: str) -> int:
    status = await db.execute(
        "UPDATE auth_sessions SET revoked_at = $2, revoked_reason = $3"
        " WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
        at(now),
        reason,
    )
    return int(status.split()[-1])


async def live_sessions(db: Executor, user_id: str, now: float) -> list[SessionRow]:
    """The user's sessions that still work, most recently used first."""
    rows = await db.fetch(
        """
        SELECT id, user_id, user_agent, created_at, last_used_at FROM auth_sessions
        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
        ORDER BY last_used_at DESC, id
        LIMIT 200
        """,
        user_id,
        at(now),
    )
    return [
        SessionRow(
            id=row["id"],
            user_id=row["user_id"],
            user_agent=row["user_agent"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
        )
        for row in rows
    ]


# ── single-use tokens ──────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class OneTimeRow:
    user_id: str | None
    data: dict[str, Any]
    expires_at: float


_json_encode = msgspec.json.Encoder().encode


async def add_one_time_token(
    db: Executor,
    *,
    token_hash: bytes,
    purpose: Purpose,
    user_id: str | None,
    data: dict[str, Any] | None = None,
    now: float,
    expires_at: float,
) -> None:
    await db.execute(
        """
        INSERT INTO one_time_tokens (hash, purpose, user_id, data, created_at, expires_at)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6)
        """,
        token_hash,
        purpose,
        user_id,
        _json_encode(data or {}).decode(),
        at(now),
        at(expires_at),
    )


def _one_time(row: Any) -> OneTimeRow | None:
    if row is None:
        return None
    data = msgspec.json.decode(row["data"]) if isinstance(row["data"], str) else row["data"]
    return OneTimeRow(user_id=row["user_id"], data=dict(data), expires_at=epoch(row["expires_at"]))


async def consume_one_time_token(
    db: Executor, token_hash: bytes, purpose: Purpose, now: float
) -> OneTimeRow | None:
    """Spend the token if it is of this purpose, unused and unexpired; None otherwise."""
    return _one_time(
        await db.fetchrow(
            """
            UPDATE one_time_tokens SET used_at = $3
            WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
            RETURNING user_id, data, expires_at
            """,
            token_hash,
            purpose,
            at(now),
        )
    )


async def peek_one_time_token(
    db: Executor, token_hash: bytes, purpose: Purpose, now: float
) -> OneTimeRow | None:
    """The token if it would be accepted now, without spending it."""
    return _one_time(
        await db.fetchrow(
            """
            SELECT user_id, data, expires_at FROM one_time_tokens
            WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
            """,
            token_hash,
            purpose,
            at(now),
        )
    )


async def tokens_issued_since(db: Executor, user_id: str, purpose: Purpose, since: float) -> int:
    """How many tokens of this purpose the user was sent since then (used or not)."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM one_time_tokens"
        " WHERE user_id = $1 AND purpose = $2 AND created_at > $3",
        user_id,
        purpose,
        at(since),
    )
    return count


async def spend_user_tokens(db: Executor, user_id: str, purpose: Purpose, now: float) -> None:
    """Spend every outstanding token of this purpose for the user (one reset ends all)."""
    await db.execute(
        "UPDATE one_time_tokens SET used_at = $3"
        " WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        user_id,
        purpose,
        at(now),
    )


# ── login limits ───────────────────────────────────────────────────────────────────────


async def lockouts(db: Executor, keys: Sequence[str]) -> dict[str, Lockout]:
    rows = await db.fetch(
        "SELECT key, until, count FROM lockouts WHERE key = ANY($1::text[])", list(keys)
    )
    return {row["key"]: Lockout(until=epoch(row["until"]), count=row["count"]) for row in rows}


async def record_failure(db: Executor, email: str, ip: str | None, now: float) -> None:
    await db.execute(
        "INSERT INTO login_failures (email, ip, at) VALUES ($1, $2, $3)", email, ip, at(now)
    )


async def failures_for_email(db: Executor, email: str, since: float) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM login_failures WHERE email = $1 AND at > $2", email, at(since)
    )
    return count


async def failures_for_ip(db: Executor, ip: str, since: float) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM login_failures WHERE ip = $1 AND at > $2", ip, at(since)
    )
    return count


async def set_lockout(db: Executor, key: str, lockout: Lockout, now: float) -> None:
    await db.execute(
        """
        INSERT INTO lockouts (key, until, count, updated_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (key) DO UPDATE
            SET until = EXCLUDED.until, count = EXCLUDED.count, updated_at = EXCLUDED.updated_at
        """,
        key,
        at(lockout.until),
        lockout.count,
        at(now),
    )


async def forget_email_failures(db: Executor, email: str, lockout_key: str) -> None:
    """The owner signed in (or reset the password): their failures and lockouts are history."""
    await db.execute("DELETE FROM login_failures WHERE email = $1", email)
    await db.execute("DELETE FROM lockouts WHERE key = $1", lockout_key)


# ── housekeeping ───────────────────────────────────────────────────────────────────────


async def prune(
    db: Executor, now: float, *, failures_older_than: float, keep: float, chunk: int = 5_000
) -> int:
    """Delete what can never matter again, in chunks; how many rows went.

    Refresh tokens stay until they expire, used or not: a rotated token presented again
    must still be recognised as reuse while it could have worked.
    """
    removed = 0
    statements = (
        (
            "DELETE FROM login_failures WHERE id IN"
            " (SELECT id FROM login_failures WHERE at < $1 LIMIT $2)",
            now - failures_older_than,
        ),
        (
            "DELETE FROM lockouts WHERE key IN"
            " (SELECT key FROM lockouts WHERE until < $1 LIMIT $2)",
            now - keep,
        ),
        (
            "DELETE FROM one_time_tokens WHERE hash IN"
            " (SELECT hash FROM one_time_tokens WHERE expires_at < $1 LIMIT $2)",
            now - keep,
        ),
        (
            "DELETE FROM refresh_tokens WHERE hash IN"
            " (SELECT hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)",
            now,
        ),
        (
            "DELETE FROM auth_sessions WHERE id IN"
            " (SELECT id FROM auth_sessions WHERE expires_at < $1 LIMIT $2)",
            now - keep,
        ),
    )
    for query, before in statements:
        while True:
            status = await db.execute(query, at(before), chunk)
            deleted = int(status.split()[-1])
            removed += deleted
            if deleted < chunk:
                break
    return removed
