"""The auth store's OpenID Connect codes, grants and refresh tokens (tables oidc_codes,
oidc_grants, oidc_refresh_tokens). A code is spent and a refresh token rotated under a
row lock, so two shards racing on the same one cannot both win."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actors.runtime import Executor, at


@dataclass(frozen=True, slots=True)
class CodeRow:
    """An authorization code as issued; `grant_id` set once it was exchanged."""

    client_id: str
    user_id: str
    redirect_uri: str
    scopes: list[str]
    code_challenge: str
    nonce: str | None
    auth_time: float
    expires_at: float
    used: bool
    grant_id: str | None


@dataclass(frozen=True, slots=True)
class GrantRow:
    """What an exchanged code granted an app for a user."""

    id: str
    client_id: str
    user_id: str
    scopes: list[str]
    nonce: str | None
    auth_time: float
    revoked: bool


@dataclass(frozen=True, slots=True)
class OidcRefreshRow:
    """A refresh token of a grant, and the grant."""

    grant: GrantRow
    expires_at: float
    used: bool


async def session_signed_in_at(
    db: Executor, user_id: str, session_id: str, now: float
) -> float | None:
    """When this live session of the user was signed in (auth_time); None if it is not."""
    found = await db.fetchval(
        "SELECT created_at FROM auth_sessions WHERE id = $1 AND user_id = $2"
        " AND revoked_at IS NULL AND expires_at > $3",
        session_id,
        user_id,
        at(now),
    )
    return None if found is None else float(found.timestamp())


async def add_code(
    db: Executor,
    *,
    code_hash: bytes,
    client_id: str,
    user_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    code_challenge: str,
    nonce: str | None,
    auth_time: float,
    now: float,
    expires_at: float,
) -> None:
    await db.execute(
        """
        INSERT INTO oidc_codes (hash, client_id, user_id, redirect_uri, scopes, code_challenge,
                                nonce, auth_time, created_at, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """,
        code_hash,
        client_id,
        user_id,
        redirect_uri,
        list(scopes),
        code_challenge,
        nonce,
        at(auth_time),
        at(now),
        at(expires_at),
    )


async def code_for_update(db: Executor, code_hash: bytes) -> CodeRow | None:
    """The code, locked until the transaction ends."""
    row = await db.fetchrow(
        """
        SELECT client_id, user_id, redirect_uri, scopes, code_challenge, nonce, auth_time,
               expires_at, used_at IS NOT NULL AS used, grant_id
        FROM oidc_codes WHERE hash = $1 FOR UPDATE
        """,
        code_hash,
    )
    if row is None:
        return None
    return CodeRow(
        client_id=row["client_id"],
        user_id=row["user_id"],
        redirect_uri=row["redirect_uri"],
        scopes=list(row["scopes"]),
        code_challenge=row["code_challenge"],
        nonce=row["nonce"],
        auth_time=row["auth_time"].timestamp(),
        expires_at=row["expires_at"].timestamp(),
        used=row["used"],
        grant_id=row["grant_id"],
    )


async def spend_code(db: Executor, code_hash: bytes, grant_id: str | None, now: float) -> None:
    """Mark the code used (and what it was exchanged for, if anything)."""
    await db.execute(
        "UPDATE oidc_codes SET used_at = $2, grant_id = $3 WHERE hash = $1",
        code_hash,
        at(now),
        grant_id,
    )


async def add_grant(
    db: Executor,
    *,
    grant_id: str,
    client_id: str,
    user_id: str,
    scopes: Sequence[str],
    nonce: str | None,
    auth_time: float,
    now: float,
) -> None:
    await db.execute(
        """
        INSERT INTO oidc_grants (id, client_id, user_id, scopes, nonce, auth_time, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        grant_id,
        client_id,
        user_id,
        list(scopes),
        nonce,
        at(auth_time),
        at(now),
    )


def _grant(row: Any) -> GrantRow:
    return GrantRow(
        id=row["id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        scopes=list(row["scopes"]),
        nonce=row["nonce"],
        auth_time=row["auth_time"].timestamp(),
        revoked=row["revoked"],
    )


_GRANT = (
    "g.id, g.client_id, g.user_id, g.scopes, g.nonce, g.auth_time,"
    " g.revoked_at IS NOT NULL AS revoked"
)


async def grant_by_id(db: Executor, grant_id: str) -> GrantRow | None:
    row = await db.fetchrow(f"SELECT {_GRANT} FROM oidc_grants g WHERE g.id = $1", grant_id)
    return None if row is None else _grant(row)


async def revoke_grant(db: Executor, grant_id: str, now: float, reason: str) -> bool:
    """True when this revoked it (it was live)."""
    status = await db.execute(
        "UPDATE oidc_grants SET revoked_at = $2, revoked_reason = $3"
        " WHERE id = $1 AND revoked_at IS NULL",
        grant_id,
        at(now),
        reason,
    )
    return status.endswith(" 1")


async def revoke_user_grants(db: Executor, user_id: str, client_id: str, now: float) -> int:
    """Revoke every live grant the app holds for the user; how many."""
    status = await db.execute(
        "UPDATE oidc_grants SET revoked_at = $3, revoked_reason = 'revoked'"
        " WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
        user_id,
        client_id,
        at(now),
    )
    return int(status.split()[-1])


async def add_oidc_refresh_token(
    db: Executor, token_hash: bytes, grant_id: str, now: float, expires_at: float
) -> None:
    await db.execute(
        "INSERT INTO oidc_refresh_tokens (hash, grant_id, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        token_hash,
        grant_id,
        at(now),
        at(expires_at),
    )


async def oidc_refresh_for_update(db: Executor, token_hash: bytes) -> OidcRefreshRow | None:
    """The refresh token and its grant, both locked until the transaction ends."""
    row = await db.fetchrow(
        f"""
        SELECT {_GRANT}, t.expires_at, t.used_at IS NOT NULL AS used
        FROM oidc_refresh_tokens t JOIN oidc_grants g ON g.id = t.grant_id
        WHERE t.hash = $1
        FOR UPDATE OF t, g
        """,
        token_hash,
    )
    if row is None:
        return None
    return OidcRefreshRow(
        grant=_grant(row), expires_at=row["expires_at"].timestamp(), used=row["used"]
    )


async def rotate_oidc_refresh_token(
    db: Executor, *, old_hash: bytes, new_hash: bytes, grant_id: str, now: float, expires_at: float
) -> None:
    """Spend the presented token and store its successor."""
    await db.execute(
        "UPDATE oidc_refresh_tokens SET used_at = $2 WHERE hash = $1", old_hash, at(now)
    )
    await add_oidc_refresh_token(db, new_hash, grant_id, now, expires_at)


async def prune_oidc(db: Executor, now: float, keep: float, chunk: int = 5_000) -> int:
    """Delete expired codes and refresh tokens, and grants revoked long ago; how many."""
    removed = 0
    statements = (
        (
            "DELETE FROM oidc_codes WHERE hash IN"
            " (SELECT hash FROM oidc_codes WHERE expires_at < $1 LIMIT $2)",
            now - keep,
        ),
        (
            "DELETE FROM oidc_refresh_tokens WHERE hash IN"
            " (SELECT hash FROM oidc_refresh_tokens WHERE expires_at < $1 LIMIT $2)",
            now,
        ),
    )
    for query, before in statements:
        while True:
            deleted = int((await db.execute(query, at(before), chunk)).split()[-1])
            removed += deleted
            if deleted < chunk:
                break
    return removed
