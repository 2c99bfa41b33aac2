"""The auth store's upkeep: deleting what can never matter again."""

from __future__ import annotations

from actors.runtime import Executor, at


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
            "DELETE FROM mfa_challenges WHERE hash IN"
            " (SELECT hash FROM mfa_challenges WHERE expires_at < $1 LIMIT $2)",
            now,
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
